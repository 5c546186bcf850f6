package ort

import (
	"fmt"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// Execution-provider names as ONNX Runtime spells them.
const (
	CPUProvider      = "CPUExecutionProvider"
	CUDAProvider     = "CUDAExecutionProvider"
	TensorRTProvider = "TensorrtExecutionProvider"
)

// cudaPluginName is the registration name of the CUDA plugin library.
const cudaPluginName = "quantscope-cuda"

// EPChoice is what an EP request resolved to on this machine.
type EPChoice struct {
	EP     string // "cpu", "cuda" or "tensorrt"
	Route  string // "builtin" (linked into the ORT build) or "plugin" (registered library)
	Plugin string // plugin library path for the plugin route
	Reason string // why "auto" chose what it chose
}

// ResolveEP decides how a requested EP runs here: CUDA through the ORT
// build's own provider when it has one, else through the CUDA plugin library
// when FindCUDA finds it and the libraries it needs; "auto" is CUDA when
// usable, else CPU, and Reason says which and why.
func ResolveEP(requested string, info Info, cuda CUDAInfo) (EPChoice, error) {
	switch requested {
	case "", "cpu":
		return EPChoice{EP: "cpu", Route: "builtin"}, nil
	case "tensorrt":
		if info.HasProvider(TensorRTProvider) {
			return EPChoice{EP: "tensorrt", Route: "builtin"}, nil
		}
		return EPChoice{}, fmt.Errorf("execution provider tensorrt: this ONNX Runtime build (%s) has no TensorRT provider; point --ort-lib at a TensorRT-enabled build", info.LibraryPath)
	case "cuda":
		if info.HasProvider(CUDAProvider) {
			return EPChoice{EP: "cuda", Route: "builtin"}, nil
		}
		if b := cuda.Blockers(); len(b) > 0 {
			return EPChoice{}, &CUDAUnavailableError{Blockers: b, NoPlugin: cuda.PluginPath == ""}
		}
		return EPChoice{EP: "cuda", Route: "plugin", Plugin: cuda.PluginPath}, nil
	case "auto":
		c, err := ResolveEP("cuda", info, cuda)
		if err != nil {
			return EPChoice{EP: "cpu", Route: "builtin", Reason: "auto: CPU, because " + err.Error()}, nil
		}
		c.Reason = "auto: CUDA (" + c.Route + ")"
		return c, nil
	}
	return EPChoice{}, fmt.Errorf("unknown execution provider %q (want cpu, cuda, tensorrt or auto)", requested)
}

// CUDAUnavailableError is ResolveEP's answer to "cuda" when the ONNX
// Runtime build has no CUDA provider and the CUDA plugin cannot run:
// Blockers lists each reason (CUDAInfo.Blockers), which doctor shows one by
// one; NoPlugin says no plugin library was found at all.
type CUDAUnavailableError struct {
	Blockers []string
	NoPlugin bool
}

func (e *CUDAUnavailableError) Error() string {
	if e.NoPlugin {
		return "execution provider cuda: this ONNX Runtime build has no CUDA provider and no CUDA plugin was found; run `make setup-cuda` (see `quantscope doctor`)"
	}
	return fmt.Sprintf("execution provider cuda: the CUDA plugin cannot run: %s (`quantscope doctor` says where each library was looked for and how to install it; %s=DIR[:DIR...] points at them)", strings.Join(e.Blockers, "; "), EnvCUDALibs)
}

// attachEP appends the configured execution provider to opts.
func attachEP(opts *ort.SessionOptions, cfg SessionConfig) error {
	switch cfg.EP {
	case "", "cpu":
		return nil
	case "cuda":
		if cfg.EPRoute != "builtin" {
			if cfg.EPPlugin != "" {
				if err := RegisterPlugin(cudaPluginName, cfg.EPPlugin); err != nil {
					return err
				}
			}
			return AppendEPDevices(opts, CUDAProvider, cfg.EPOptions)
		}
		o, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return fmt.Errorf("CUDA provider options: %w", err)
		}
		defer o.Destroy()
		if len(cfg.EPOptions) > 0 {
			if err := o.Update(cfg.EPOptions); err != nil {
				return fmt.Errorf("CUDA provider options: %w", err)
			}
		}
		return opts.AppendExecutionProviderCUDA(o)
	case "tensorrt":
		o, err := ort.NewTensorRTProviderOptions()
		if err != nil {
			return fmt.Errorf("TensorRT provider options: %w", err)
		}
		defer o.Destroy()
		if len(cfg.EPOptions) > 0 {
			if err := o.Update(cfg.EPOptions); err != nil {
				return fmt.Errorf("TensorRT provider options: %w", err)
			}
		}
		return opts.AppendExecutionProviderTensorRT(o)
	}
	// Anything else is an ONNX Runtime provider name whose devices
	// GetEpDevices lists, e.g. "CPUExecutionProvider".
	return AppendEPDevices(opts, cfg.EP, cfg.EPOptions)
}

// Apply copies the choice into a session configuration.
func (c EPChoice) Apply(cfg *SessionConfig) {
	cfg.EP, cfg.EPRoute, cfg.EPPlugin = c.EP, c.Route, c.Plugin
}

// AppendEPDevices attaches every device of the named provider (e.g.
// "CUDAExecutionProvider" after RegisterPlugin, or "CPUExecutionProvider")
// through SessionOptionsAppendExecutionProvider_V2.
func AppendEPDevices(opts *ort.SessionOptions, provider string, options map[string]string) error {
	api, err := loadedAPI()
	if err != nil {
		return err
	}
	devs, err := api.epDevices()
	if err != nil {
		return err
	}
	var picked []EPDevice
	var seen []string
	for _, d := range devs {
		seen = append(seen, d.EP)
		if d.EP == provider {
			picked = append(picked, d)
		}
	}
	if len(picked) == 0 {
		return fmt.Errorf("no %s device: ONNX Runtime lists %v (is the plugin registered?)", provider, seen)
	}
	if provider == CUDAProvider && len(picked) > 1 {
		picked = picked[:1] // one GPU per session; device_id picks another
	}
	return api.appendEPV2(opts, picked, options)
}
