package worker

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/ort/cudaopt"
)

// openFunc opens the model with a session configuration (openModel in the
// worker, a fake in tests).
type openFunc func(cfg ort.SessionConfig) (boundModel, error)

// opened is a bound model, how it came to be, and what its first runs showed.
type opened struct {
	bd  boundModel
	cfg ort.SessionConfig // what the session runs with (enable_cuda_graph=0 after a fallback)
	// graph says whether CUDA graphs were requested and are active; nil when
	// they were not requested (or the EP is not CUDA).
	graph   *cudaopt.GraphStatus
	session time.Duration // the creation of the session that runs (one CreateSession)
	first   time.Duration // the first inference: inputs copied in, then run
	// placement counts nodes per EP from ONNX Runtime's profile of the first
	// runs of this very session; nil (with placementErr) when unknown.
	placement    map[string]int
	placementErr error
	// profile is the whole profile of those runs (plain runs only).
	profile ort.Profile
}

// openFirstRuns opens the model once and makes its first inference with
// ONNX Runtime's profiler on (cfg.ProfilePrefix), then ends the profile:
// node placement comes from the session that runs the benchmark, not from
// a second one, and runs after that are not profiled.
//
// When cfg asks the CUDA EP for CUDA graphs (enable_cuda_graph=1) it makes
// a second run: ONNX Runtime makes its warm-up and capture runs inside the
// first Run call and replays the captured graph from the second. Graphs are
// reported active only when the profile shows that replay (a run with no
// node executed, after runs that executed nodes); otherwise the status says
// why not. If the session cannot be created with graphs, or one of those
// runs fails, that session is closed and the model opened again with
// enable_cuda_graph=0, keeping ONNX Runtime's error as the reason. The model
// must be bound to fixed device addresses (device-resident IO binding) for
// graphs to replay: open is responsible for that.
func openFirstRuns(cfg ort.SessionConfig, open openFunc) (opened, error) {
	return openProfiledRuns(cfg, open, 0)
}

// openProfiledRuns is openFirstRuns with extra more runs under the
// profiler after the first inference (without CUDA graphs): the warm runs
// the per-operator profile averages, outside the timed loop.
func openProfiledRuns(cfg ort.SessionConfig, open openFunc, extra int) (opened, error) {
	if cfg.EP == "cuda" && cudaopt.GraphRequested(cfg.EPOptions) {
		op, err := openGraphRuns(cfg, open)
		if err == nil {
			return op, nil
		}
		reason := err.Error()
		fallback := cfg
		fallback.EPOptions = cudaopt.WithoutGraph(cfg.EPOptions)
		op, err = openPlainRuns(fallback, open, extra)
		if err != nil {
			return opened{}, fmt.Errorf("open without CUDA graphs, after they failed (%s): %w", reason, err)
		}
		op.graph = &cudaopt.GraphStatus{Requested: true, Reason: reason}
		return op, nil
	}
	return openPlainRuns(cfg, open, extra)
}

// openPlainRuns opens the model, makes the first inference and extra more
// runs, all under the profiler.
func openPlainRuns(cfg ort.SessionConfig, open openFunc, extra int) (opened, error) {
	start := time.Now()
	bd, err := open(cfg)
	if err != nil {
		return opened{}, err
	}
	op := opened{bd: bd, cfg: cfg, session: time.Since(start)}
	if op.first, err = timedRun(bd, copyInputs); err != nil {
		bd.Close()
		return opened{}, fmt.Errorf("first inference: %w", err)
	}
	for range extra {
		if _, err := timedRun(bd, inputsInPlace); err != nil {
			bd.Close()
			return opened{}, fmt.Errorf("profiled run: %w", err)
		}
	}
	op.profile = op.readProfile()
	return op, nil
}

// openGraphRuns opens the model with CUDA graphs and makes the capturing
// run and the first replay; an error means the caller falls back.
func openGraphRuns(cfg ort.SessionConfig, open openFunc) (opened, error) {
	start := time.Now()
	bd, err := open(cfg)
	if err != nil {
		return opened{}, err
	}
	op := opened{bd: bd, cfg: cfg, session: time.Since(start)}
	var replay time.Duration
	if op.first, err = timedRun(bd, copyInputs); err == nil {
		replay, err = timedRun(bd, inputsInPlace)
		if err != nil {
			err = fmt.Errorf("CUDA graph replay (second run): %w", err)
		}
	} else {
		err = fmt.Errorf("CUDA graph warm-up and capture (first run): %w", err)
	}
	if err != nil {
		if cerr := bd.Close(); cerr != nil {
			err = fmt.Errorf("%w (closing that session: %v)", err, cerr)
		}
		return opened{}, err
	}
	profile := op.readProfile()
	g := &cudaopt.GraphStatus{Requested: true, CaptureMs: ms(op.first), ReplayMs: ms(replay)}
	switch {
	case op.placementErr != nil:
		g.Reason = "ONNX Runtime accepted enable_cuda_graph, but its replay could not be confirmed: " + op.placementErr.Error()
	case profile.GraphReplayed():
		g.Active = true
	default:
		last := profile.Runs[len(profile.Runs)-1]
		g.Reason = fmt.Sprintf("ONNX Runtime accepted enable_cuda_graph but did not replay a captured graph: "+
			"its profile shows the second run executing %d nodes one by one", last.Nodes)
	}
	op.graph = g
	return op, nil
}

// readProfile ends the session's profile and keeps its placement.
func (op *opened) readProfile() ort.Profile {
	p, err := op.bd.EndProfile()
	if err == nil && len(p.Runs) == 0 {
		err = errors.New("the profile records no run")
	}
	if err != nil {
		op.placementErr = err
		return ort.Profile{}
	}
	op.placement = p.Placement
	return p
}

// inputCopy says whether timedRun copies the inputs to the device first.
type inputCopy bool

const (
	copyInputs    inputCopy = true  // the first run: inputs go in with it
	inputsInPlace inputCopy = false // a replay: the inputs are already there
)

// timedRun makes one run, copying the inputs in first with copyInputs,
// and returns how long it took.
func timedRun(bd boundModel, in inputCopy) (time.Duration, error) {
	start := time.Now()
	if in == copyInputs {
		if _, err := bd.CopyInputs(); err != nil {
			return 0, fmt.Errorf("copy inputs: %w", err)
		}
	}
	if err := bd.Run(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

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
	return cudaopt.NormalizeAll(opts), ""
}

// recordedOptions are the provider options a result records: for CUDA the
// effective ones (ONNX Runtime's defaults filled in, so every CUDA record
// says whether TF32 was on), else those given.
func recordedOptions(ep string, opts map[string]string) map[string]string {
	if ep != "cuda" {
		return opts
	}
	return cudaopt.Effective(opts)
}
