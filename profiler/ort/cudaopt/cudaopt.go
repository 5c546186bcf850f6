// Package cudaopt names the CUDA execution-provider options quantscope sets
// from bench flags and records with every CUDA result, ONNX Runtime's
// defaults for them, their canonical spelling, and what a run's CUDA-graph
// attempt came to (GraphStatus). It is plain Go, apart from the cgo of
// profiler/ort, so that packages which only read or write these names
// (the report, the study plan) do not need ONNX Runtime to compile.
package cudaopt

import (
	"fmt"
	"maps"
	"strings"
)

// CUDA execution-provider option keys that quantscope sets from named bench
// flags and records with every CUDA result.
const (
	TF32       = "use_tf32"               // TF32 math for FP32 MatMul/Gemm/Conv
	Graph      = "enable_cuda_graph"      // capture the run once, replay it
	ConvSearch = "cudnn_conv_algo_search" // EXHAUSTIVE, HEURISTIC or DEFAULT
	NHWC       = "prefer_nhwc"            // NHWC layout for conv models
)

// defaults are ONNX Runtime 1.29's CUDA EP defaults for the recorded
// options: what a session runs with when the user sets nothing. The CUDA
// plugin `make setup-cuda` installs is ONNX Runtime's own CUDA EP built as a
// shared-library provider (it exports GetProvider beside CreateEpFactories),
// so its options are those of the builtin EP: CUDAExecutionProviderInfo
// (onnxruntime/core/providers/cuda/cuda_execution_provider_info.h:
// cudnn_conv_algo_search{OrtCudnnConvAlgoSearchExhaustive},
// enable_cuda_graph{false}, prefer_nhwc{false}, use_tf32{true}) and the CUDA
// EP documentation (onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html).
var defaults = map[string]string{
	TF32:       "1",
	ConvSearch: "EXHAUSTIVE",
	NHWC:       "0",
	Graph:      "0",
}

// Defaults returns a copy of ONNX Runtime's defaults for the CUDA options
// quantscope records (use_tf32, cudnn_conv_algo_search, prefer_nhwc,
// enable_cuda_graph).
func Defaults() map[string]string { return maps.Clone(defaults) }

// Options are the CUDA provider options the bench flags name: --tf32,
// --cuda-graph, --conv-algo and --nhwc. The zero value sets nothing (ONNX
// Runtime's defaults apply).
type Options struct {
	TF32      string // --tf32: "on", "off" or "" (default: on)
	CUDAGraph bool   // --cuda-graph: enable_cuda_graph=1
	ConvAlgo  string // --conv-algo: "exhaustive", "heuristic", "default" or "" (default: exhaustive)
	NHWC      bool   // --nhwc: prefer_nhwc=1
}

// convAlgos maps --conv-algo values to cudnn_conv_algo_search values.
var convAlgos = map[string]string{"exhaustive": "EXHAUSTIVE", "heuristic": "HEURISTIC", "default": "DEFAULT"}

// IsZero reports whether no option is set.
func (o Options) IsZero() bool { return o == Options{} }

// Validate checks the flag values, naming the flag that is wrong.
func (o Options) Validate() error {
	switch strings.ToLower(o.TF32) {
	case "", "on", "off":
	default:
		return fmt.Errorf("--tf32 %q: want on or off", o.TF32)
	}
	if _, ok := convAlgos[strings.ToLower(o.ConvAlgo)]; o.ConvAlgo != "" && !ok {
		return fmt.Errorf("--conv-algo %q: want exhaustive, heuristic or default", o.ConvAlgo)
	}
	return nil
}

// Flags names the flags that are set, in a fixed order.
func (o Options) Flags() []string {
	var out []string
	if o.TF32 != "" {
		out = append(out, "--tf32")
	}
	if o.CUDAGraph {
		out = append(out, "--cuda-graph")
	}
	if o.ConvAlgo != "" {
		out = append(out, "--conv-algo")
	}
	if o.NHWC {
		out = append(out, "--nhwc")
	}
	return out
}

// Map returns the provider options the set flags stand for (nil when none
// is set). Call Validate first: an invalid value is left out.
func (o Options) Map() map[string]string {
	m := map[string]string{}
	switch strings.ToLower(o.TF32) {
	case "on":
		m[TF32] = "1"
	case "off":
		m[TF32] = "0"
	}
	if o.CUDAGraph {
		m[Graph] = "1"
	}
	if v, ok := convAlgos[strings.ToLower(o.ConvAlgo)]; ok {
		m[ConvSearch] = v
	}
	if o.NHWC {
		m[NHWC] = "1"
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// flagFor names the flag that sets a CUDA option key.
var flagFor = map[string]string{
	TF32: "--tf32", Graph: "--cuda-graph", ConvSearch: "--conv-algo", NHWC: "--nhwc",
}

// Resolve validates the flags against the requested execution providers and
// the pass-through --ep-option values, and returns the CUDA options to apply
// to CUDA experiments (nil when no flag is set). The flags need an EP that
// can be CUDA (cuda, or auto when it resolves to CUDA); an --ep-option that
// sets the same key to another value is an error, and so is an --ep-option
// value for one of these keys that ONNX Runtime would not understand. (This
// build of the CUDA EP parses its options strictly: an unknown key or a
// malformed value fails session creation in every worker; checking here
// names the flag before any worker starts.)
func (o Options) Resolve(eps []string, passthrough map[string]string) (map[string]string, error) {
	for k, v := range passthrough {
		if _, known := defaults[k]; !known {
			continue
		}
		if _, err := Normalize(k, v); err != nil {
			return nil, fmt.Errorf("--ep-option %s=%s: %w", k, v, err)
		}
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.IsZero() {
		return nil, nil
	}
	cudaPossible := false
	for _, ep := range eps {
		switch strings.ToLower(strings.TrimSpace(ep)) {
		case "cuda", "auto":
			cudaPossible = true
		}
	}
	if !cudaPossible {
		flags := o.Flags()
		verb := "needs"
		if len(flags) > 1 {
			verb = "need"
		}
		return nil, fmt.Errorf("%s %s --ep cuda (or auto), not --ep %s: these set CUDA execution-provider options",
			strings.Join(flags, ", "), verb, strings.Join(eps, ","))
	}
	m := o.Map()
	for k, v := range m {
		pv, ok := passthrough[k]
		if !ok {
			continue
		}
		if n, _ := Normalize(k, pv); n != v {
			return nil, fmt.Errorf("%s sets %s=%s, but --ep-option %s=%s says otherwise: give one of them", flagFor[k], k, v, k, pv)
		}
	}
	return m, nil
}

// Normalize checks the value of one of the recorded CUDA option
// keys and returns it in ONNX Runtime's canonical spelling: "1"/"0" for
// booleans (from 1, 0, true, false), upper case for cudnn_conv_algo_search
// (from a name or ORT's enum number 0, 1, 2). Other keys pass unchanged.
func Normalize(key, value string) (string, error) {
	v := strings.ToUpper(strings.TrimSpace(value))
	switch key {
	case TF32, Graph, NHWC:
		switch v {
		case "1", "TRUE":
			return "1", nil
		case "0", "FALSE":
			return "0", nil
		}
		return "", fmt.Errorf("want 1 or 0")
	case ConvSearch:
		switch v {
		case "EXHAUSTIVE", "0":
			return "EXHAUSTIVE", nil
		case "HEURISTIC", "1":
			return "HEURISTIC", nil
		case "DEFAULT", "2":
			return "DEFAULT", nil
		}
		return "", fmt.Errorf("want EXHAUSTIVE, HEURISTIC or DEFAULT")
	}
	return value, nil
}

// NormalizeAll returns a copy of opts with the recorded keys in
// canonical spelling (see Normalize); invalid values and other
// keys are kept as given. Nil stays nil.
func NormalizeAll(opts map[string]string) map[string]string {
	if opts == nil {
		return nil
	}
	out := make(map[string]string, len(opts))
	for k, v := range opts {
		if n, err := Normalize(k, v); err == nil {
			v = n
		}
		out[k] = v
	}
	return out
}

// Effective returns the provider options a CUDA session runs
// with: opts, with the recorded keys in canonical spelling, plus ONNX
// Runtime's default for each recorded key opts leaves out. Every CUDA record
// thereby says whether TF32 was on. Invalid values are kept as given.
func Effective(opts map[string]string) map[string]string {
	out := NormalizeAll(opts)
	if out == nil {
		out = make(map[string]string, len(defaults))
	}
	for k, v := range defaults {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out
}

// GraphRequested reports whether opts ask for CUDA graphs
// (enable_cuda_graph=1 or true).
func GraphRequested(opts map[string]string) bool {
	v, ok := opts[Graph]
	if !ok {
		return false
	}
	n, err := Normalize(Graph, v)
	return err == nil && n == "1"
}

// WithoutGraph returns a copy of opts with enable_cuda_graph=0.
func WithoutGraph(opts map[string]string) map[string]string {
	out := maps.Clone(opts)
	if out == nil {
		out = map[string]string{}
	}
	out[Graph] = "0"
	return out
}

// GraphStatus says whether a run used CUDA graphs. Requested means
// enable_cuda_graph=1. Active means they ran: the session accepted the
// option and ONNX Runtime's profile showed a captured graph replayed (a run
// that executed no node, after the runs that did). "No error" is not proof;
// otherwise Reason says why not (ONNX Runtime's error, after which the run
// went on without graphs, or what the profile showed instead).
type GraphStatus struct {
	Requested bool   `json:"requested"`
	Active    bool   `json:"active"`
	Reason    string `json:"reason,omitempty"`
	// CaptureMs is the first run (ONNX Runtime's warm-up and capture runs
	// inside one call) and ReplayMs the second, when both ran.
	CaptureMs float64 `json:"capture_ms,omitempty"`
	ReplayMs  float64 `json:"replay_ms,omitempty"`
}
