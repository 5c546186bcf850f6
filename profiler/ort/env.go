package ort

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrNoLibrary is returned (wrapped) when no usable ONNX Runtime library was found.
var ErrNoLibrary = errors.New("no usable ONNX Runtime library")

// Info describes the ONNX Runtime library this process found and loaded.
type Info struct {
	LibraryPath string   `json:"library_path,omitempty"` // the library that loaded ("" when none did)
	Version     string   `json:"version,omitempty"`      // e.g. "1.29.0"
	BuildInfo   string   `json:"build_info,omitempty"`   // "ORT Build Info: git-branch=…"
	Providers   []string `json:"providers,omitempty"`    // execution providers this build offers
	Tried       []string `json:"tried"`                  // every candidate looked at, "path: outcome"
	Err         error    `json:"-"`                      // why no library loaded (nil on success)
}

// OK reports whether a library loaded.
func (i Info) OK() bool { return i.Err == nil && i.LibraryPath != "" }

// HasProvider reports whether the build offers the named execution provider
// (e.g. "CUDAExecutionProvider").
func (i Info) HasProvider(name string) bool {
	for _, p := range i.Providers {
		if p == name {
			return true
		}
	}
	return false
}

// env is the process's ONNX Runtime environment: initialized at most once.
var env struct {
	mu      sync.Mutex
	info    Info
	api     *capi
	plugins map[string]bool // registered EP plugin libraries
	// sessions counts CreateSession calls per model path (SessionsCreated).
	sessions map[string]int
}

// Probe finds the ONNX Runtime library (explicit is the --ort-lib value, ""
// for the default search), initializes the environment and reports what it
// offers. The first success is kept for the life of the process: later calls
// return it whatever path they pass. A failure is not kept, so a later call
// with a better path can still succeed.
func Probe(explicit string) Info {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.info.OK() {
		return env.info
	}
	info, api := load(processSearchEnv(explicit))
	if info.OK() {
		env.info, env.api = info, api
	}
	return info
}

// Init is Probe for callers that only need to know whether the runtime is
// usable: it returns the Info and its error.
func Init(explicit string) (Info, error) {
	info := Probe(explicit)
	return info, info.Err
}

// load walks the candidates and initializes onnxruntime_go with the first
// library that opens and speaks the C API version quantscope needs.
func load(e searchEnv) (Info, *capi) {
	var info Info
	for _, c := range candidates(e) {
		api, err := tryCandidate(c)
		if err != nil {
			info.Tried = append(info.Tried, fmt.Sprintf("%s: %v", c.path, err))
			if c.explicit {
				break
			}
			continue
		}
		info.Tried = append(info.Tried, c.path+": loaded")
		info.LibraryPath = c.path
		info.Version = ort.GetVersion()
		info.BuildInfo = api.buildInfo()
		provs, err := api.availableProviders()
		if err != nil {
			info.Providers = []string{"CPUExecutionProvider"}
		} else {
			info.Providers = provs
		}
		return info, api
	}
	info.Err = noLibraryError(e, info.Tried)
	return info, nil
}

func tryCandidate(c candidate) (*capi, error) {
	if !c.system {
		st, err := os.Stat(c.path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, errors.New("not found")
		case err != nil:
			return nil, err
		case st.IsDir():
			return nil, errors.New("is a directory, not the library file")
		}
	}
	api, err := openCAPI(c.path)
	if err != nil {
		if c.system {
			return nil, errors.New("not on the system library path")
		}
		return nil, err
	}
	if api.api == nil {
		api.close()
		return nil, fmt.Errorf("ONNX Runtime %s is too old: quantscope needs 1.24 or newer (C API %d)", api.version, apiVersion)
	}
	if ort.IsInitialized() {
		// Another path already initialized the environment in this process.
		return api, nil
	}
	ort.SetSharedLibraryPath(c.path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		api.close()
		return nil, fmt.Errorf("initialize ONNX Runtime %s: %w", api.version, err)
	}
	return api, nil
}

// noLibraryError names every place looked at and how to fix it.
func noLibraryError(e searchEnv, tried []string) error {
	var b strings.Builder
	if e.explicit != "" || e.envLib != "" {
		src := "--ort-lib"
		if e.explicit == "" {
			src = "$" + EnvLibrary
		}
		fmt.Fprintf(&b, "the ONNX Runtime library named by %s could not be used", src)
	} else {
		b.WriteString("no ONNX Runtime library found")
	}
	b.WriteString("; tried:")
	for _, t := range tried {
		b.WriteString("\n  ")
		b.WriteString(t)
	}
	b.WriteString("\nfix: run `make setup` in the quantscope checkout (installs ONNX Runtime 1.29.0 into .ort/),")
	b.WriteString("\n     or point at an installed ONNX Runtime >= 1.24 with --ort-lib PATH or " + EnvLibrary + "=PATH")
	return fmt.Errorf("%w: %s", ErrNoLibrary, b.String())
}
