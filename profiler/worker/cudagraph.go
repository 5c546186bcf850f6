package worker

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/quantscope/quantscope/profiler/runtime"
)

// cudaGraphRuns is how many runs the CUDA graph check makes right after the
// session opens. ONNX Runtime's CUDA EP (builtin and plugin) makes
// min_num_runs_before_cuda_graph_capture (1) regular run, captures the graph
// on the next and replays it from then on: three runs cover the warm-up, the
// capture and the first replay, so a model that cannot be captured fails
// here, where the run can still fall back, and not in the timed loop.
const cudaGraphRuns = 3

// openFunc opens the model with a session configuration (openModel in the
// worker, a fake in tests).
type openFunc func(cfg runtime.SessionConfig) (boundModel, error)

// opened is a bound model and how it came to be.
type opened struct {
	bd  boundModel
	cfg runtime.SessionConfig // what the session runs with (enable_cuda_graph=0 after a fallback)
	// graph says whether CUDA graphs were requested and are active; nil when
	// they were not requested (or the EP is not CUDA).
	graph   *runtime.CUDAGraphStatus
	session time.Duration // the open that produced bd
	first   time.Duration // the first inference, when the CUDA graph check made it (else 0)
}

// openWithGraphFallback opens the model with open. When cfg asks the CUDA
// EP for CUDA graphs (enable_cuda_graph=1) it also makes the capturing runs;
// if the session cannot be created with graphs, or a capturing run fails,
// it closes that session and opens again with enable_cuda_graph=0, keeping
// ONNX Runtime's error as the reason. The model must be bound to fixed
// device addresses (device-resident IO binding) for graphs to replay: open
// is responsible for that.
func openWithGraphFallback(cfg runtime.SessionConfig, open openFunc) (opened, error) {
	if cfg.EP != "cuda" || !runtime.CUDAGraphRequested(cfg.EPOptions) {
		start := time.Now()
		bd, err := open(cfg)
		if err != nil {
			return opened{}, err
		}
		return opened{bd: bd, cfg: cfg, session: time.Since(start)}, nil
	}
	start := time.Now()
	bd, err := open(cfg)
	session := time.Since(start)
	if err == nil {
		var first time.Duration
		if first, err = captureRuns(bd); err == nil {
			return opened{bd: bd, cfg: cfg, graph: &runtime.CUDAGraphStatus{Requested: true, Active: true},
				session: session, first: first}, nil
		}
		if cerr := bd.Close(); cerr != nil {
			err = fmt.Errorf("%w (closing that session: %v)", err, cerr)
		}
	}
	reason := err.Error()
	fallback := cfg
	fallback.EPOptions = runtime.WithoutCUDAGraph(cfg.EPOptions)
	start = time.Now()
	bd, err = open(fallback)
	if err != nil {
		return opened{}, fmt.Errorf("open without CUDA graphs, after they failed (%s): %w", reason, err)
	}
	return opened{bd: bd, cfg: fallback, graph: &runtime.CUDAGraphStatus{Requested: true, Reason: reason},
		session: time.Since(start)}, nil
}

// captureRuns makes the CUDA graph check's runs and returns the duration of
// the first (inputs copied in, then run).
func captureRuns(bd boundModel) (time.Duration, error) {
	var first time.Duration
	for i := range cudaGraphRuns {
		start := time.Now()
		if _, err := bd.CopyInputs(); err != nil {
			return 0, fmt.Errorf("CUDA graph run %d of %d: copy inputs: %w", i+1, cudaGraphRuns, err)
		}
		if err := bd.Run(); err != nil {
			return 0, fmt.Errorf("CUDA graph run %d of %d (warm-up, capture, replay): %w", i+1, cudaGraphRuns, err)
		}
		if i == 0 {
			first = time.Since(start)
		}
	}
	return first, nil
}

// providerOptions is what the session gets: the pass-through options, plus
// the CUDA flag options when the EP is CUDA (they apply to nothing else),
// the recorded CUDA keys in ONNX Runtime's spelling. note says when CUDA
// flag options were left out because the EP ("auto" included) is not CUDA.
func providerOptions(ep string, spec Spec) (opts map[string]string, note string) {
	if ep != "cuda" {
		if len(spec.CUDA) > 0 {
			keys := slices.Sorted(maps.Keys(spec.CUDA))
			note = fmt.Sprintf("CUDA options %s not applied: the run is on %s", strings.Join(keys, ", "), ep)
		}
		return spec.Extra, note
	}
	if len(spec.Extra) == 0 && len(spec.CUDA) == 0 {
		return nil, ""
	}
	opts = maps.Clone(spec.Extra)
	if opts == nil {
		opts = map[string]string{}
	}
	maps.Copy(opts, spec.CUDA)
	return runtime.NormalizeCUDAOptions(opts), ""
}

// recordedOptions are the provider options a result records: for CUDA the
// effective ones (ONNX Runtime's defaults filled in, so every CUDA record
// says whether TF32 was on), else those given.
func recordedOptions(ep string, opts map[string]string) map[string]string {
	if ep != "cuda" {
		return opts
	}
	return runtime.EffectiveCUDAOptions(opts)
}

// placementConfig is cfg without CUDA graphs: the placement session runs
// once on host tensors and only counts where nodes ran.
func placementConfig(cfg runtime.SessionConfig) runtime.SessionConfig {
	if runtime.CUDAGraphRequested(cfg.EPOptions) {
		cfg.EPOptions = runtime.WithoutCUDAGraph(cfg.EPOptions)
	}
	return cfg
}
