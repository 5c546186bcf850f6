package ort

import (
	"os"
	"path/filepath"
)

// LibraryName is the file name of the ONNX Runtime shared library on Linux.
const LibraryName = "libonnxruntime.so"

// EnvLibrary names the environment variable that points at the library.
const EnvLibrary = "QUANTSCOPE_ORT_LIB"

// candidate is one place the library may be, and whether the user named it.
type candidate struct {
	path     string
	explicit bool // from --ort-lib or QUANTSCOPE_ORT_LIB: no fallback past it
	system   bool // a bare name left to the dynamic loader's search
}

// searchEnv is what the lookup reads from the process, injectable for tests.
type searchEnv struct {
	explicit string // --ort-lib
	envLib   string // $QUANTSCOPE_ORT_LIB
	exe      string // os.Executable()
	cwd      string
	dataDir  string // user data dir ($XDG_DATA_HOME or ~/.local/share)
}

func processSearchEnv(explicit string) searchEnv {
	e := searchEnv{explicit: explicit, envLib: os.Getenv(EnvLibrary)}
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		e.exe = exe
	}
	e.cwd, _ = os.Getwd()
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		e.dataDir = d
	} else if h, err := os.UserHomeDir(); err == nil {
		e.dataDir = filepath.Join(h, ".local", "share")
	}
	return e
}

// candidates lists, in lookup order: --ort-lib, $QUANTSCOPE_ORT_LIB, .ort/
// beside the binary (and its parent, for bin/quantscope in a checkout), .ort/
// in the working directory or any directory above it, the user data dir, and
// finally the system library search path. An explicit path ends the list: a
// library the user named is never silently replaced by another.
func candidates(e searchEnv) []candidate {
	if e.explicit != "" {
		return []candidate{{path: e.explicit, explicit: true}}
	}
	if e.envLib != "" {
		return []candidate{{path: e.envLib, explicit: true}}
	}
	var out []candidate
	seen := map[string]bool{}
	add := func(p string) {
		if p == "" || seen[p] {
			return
		}
		seen[p] = true
		out = append(out, candidate{path: p})
	}
	if e.exe != "" {
		dir := filepath.Dir(e.exe)
		add(filepath.Join(dir, ".ort", LibraryName))
		add(filepath.Join(filepath.Dir(dir), ".ort", LibraryName))
	}
	for dir := e.cwd; dir != ""; {
		add(filepath.Join(dir, ".ort", LibraryName))
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if e.dataDir != "" {
		add(filepath.Join(e.dataDir, "quantscope", "ort", LibraryName))
	}
	for _, d := range []string{"/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"} {
		add(filepath.Join(d, LibraryName))
	}
	out = append(out, candidate{path: LibraryName, system: true})
	return out
}
