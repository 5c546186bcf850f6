package study

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/evaluate"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/worker"
)

// Prepared is a model file ready to run, with what is known about it.
type Prepared struct {
	Path   string
	GFLOPs float64       // per sample, 0 when unknown
	Report *quant.Report // the precision transform's report (nil for FP32)
	// Optimized is what models/optimize did before the conversion (nil
	// when the experiment did not ask for it).
	Optimized *Optimization
	// ImageSize is the height and width to run at when the model leaves
	// them symbolic (0 for a fixed-size model).
	ImageSize int
	// Inputs are the inputs fidelity is measured on (seeded synthetic
	// images normalised for the model); the zero value means ImageNet's
	// normalisation.
	Inputs quant.CheckInputs
	// Traits is what the model declares: trained or synthetic weights,
	// logits or embeddings (zero: assumed from the model's name).
	Traits ModelTraits
}

// Preparer turns a model name or path and a precision spec into a model
// file: building a catalog model, quantizing a variant. It is where the
// study meets the models packages.
type Preparer interface {
	Prepare(ctx context.Context, e Experiment) (Prepared, error)
}

// Stage names what the runner is doing with an experiment.
type Stage string

// Stages of an experiment as the UI shows them.
const (
	StageQueued    Stage = "queued"
	StagePreparing Stage = "preparing"
	StageRunning   Stage = "running"
	StageDone      Stage = "done"
	StageFailed    Stage = "failed"
	StageSkipped   Stage = "skipped" // already recorded (resume)
)

// Update is sent to RunConfig.OnUpdate as a study progresses.
type Update struct {
	Index      int // position in the plan
	Experiment Experiment
	Stage      Stage
	Sample     *worker.Sample // live sample while running
	Record     *Record        // when done or failed
	// Time is when it happened, when the sender knows better than the
	// receiver's clock (a replay); zero: now.
	Time time.Time
}

// RunConfig configures Run.
type RunConfig struct {
	Out    string // results.jsonl path
	Resume bool   // skip experiments this machine recorded ok in Out
	// RunID marks every record of this run (default: NewRunID()).
	RunID   string
	Prepare Preparer
	// Host fingerprints this machine (default: ReadHost with the loaded
	// ONNX Runtime); --resume trusts only records with the same one.
	Host     Host
	Duration time.Duration
	Iters    int
	// MinWarmup and MaxWarmup bound each experiment's warm-up runs (0:
	// bench's defaults).
	MinWarmup, MaxWarmup int
	// FidelitySamples is how many check inputs fidelity runs (0:
	// quant.DefaultCheckSamples).
	FidelitySamples int
	Timeout         time.Duration // per experiment (default: 10 min + 4 × Duration)
	Worker          worker.Options
	ORTLib          string
	RefDir          string // where FP32 reference outputs live (default: beside Out)
	// EPOptions pass through to the execution provider (e.g. CUDA's
	// use_tf32=0, cudnn_conv_algo_search=EXHAUSTIVE, enable_cuda_graph=1,
	// prefer_nhwc=1) and are recorded with each result.
	EPOptions map[string]string
	// CUDAOptions are provider options for CUDA experiments only (bench's
	// --tf32, --cuda-graph, --conv-algo, --nhwc; see cudaopt.Options):
	// applied when the EP is, or "auto" resolves to, cuda.
	CUDAOptions map[string]string
	// Eval, when set, measures every experiment's accuracy on a labelled
	// image folder (bench --eval-dir); the FP32 run's predictions are
	// written beside the FP32 reference outputs and its variants paired
	// with them.
	Eval *evaluate.Dataset
	// NoOpProfile turns off the per-operator profile (a few runs under
	// ONNX Runtime's profiler after the timed loop; on by default).
	NoOpProfile bool
	OnUpdate    func(Update)
	// AvailableMemory says how much memory an experiment on ep can use
	// and where ("available", "free on <GPU>"); false when unknown.
	// Default: the host's available memory for the CPU EP, the first
	// GPU's free memory for GPU EPs. An experiment whose estimate
	// (EstimateMemory) exceeds it is recorded failed without running.
	AvailableMemory func(ep string) (int64, string, bool)
	// Warn receives what a person should know but that does not stop the
	// study: records of other machines not resumed, a record that went to
	// a fallback file. Nil drops them.
	Warn func(string)
}

// ErrNotAllSaved is wrapped by Run's error when some records could not be
// appended to the results file and went to a fallback file instead.
var ErrNotAllSaved = errors.New("some records are not in the results file")

// Run executes the plan, appending one record per experiment to cfg.Out as
// each finishes. It holds the results file's lock for the whole study: a
// second study on the same file is refused with a *LockedError naming the
// first. A failed experiment is recorded and the study goes on; a canceled
// context stops it, keeping everything recorded so far.
//
// With Resume, an experiment is skipped when this host environment (the same
// Host.Key: hostname or group, CPU, GPU, driver, CUDA, ONNX Runtime) recorded
// it ok; records of other machines are reported through Warn and
// run again. A variant recorded ok without fidelity — its FP32 baseline had
// failed, so there was no reference — runs again once the baseline's
// reference outputs exist, and the new record supersedes the old one (see
// Current).
func Run(ctx context.Context, plan []Experiment, cfg RunConfig) ([]Record, error) {
	if cfg.Prepare == nil {
		return nil, errors.New("run study: no preparer")
	}
	warn := func(msg string) {
		if cfg.Warn != nil {
			cfg.Warn(msg)
		}
	}
	w, err := OpenWriter(cfg.Out)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if cfg.RunID == "" {
		cfg.RunID = NewRunID()
	}
	if cfg.Host.Hostname == "" {
		cfg.Host = ReadHost(ort.Probe(cfg.ORTLib), nil)
	}
	var rs resumeState
	if cfg.Resume {
		prev, _, err := ReadResults(cfg.Out)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		rs = resumable(prev, cfg.Host)
		if msg := rs.foreignNote(cfg.Out, plan); msg != "" {
			warn(msg)
		}
	}
	refDir := cfg.RefDir
	if refDir == "" {
		refDir = filepath.Join(filepath.Dir(cfg.Out), ".quantscope-ref")
	}
	if err := os.MkdirAll(refDir, 0o755); err != nil {
		return nil, fmt.Errorf("reference dir %s: %w", refDir, err)
	}
	notify := func(u Update) {
		if cfg.OnUpdate != nil {
			cfg.OnUpdate(u)
		}
	}
	var out []Record
	var elsewhere *SavedElsewhereError
	unsaved := 0
	for i, e := range plan {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if rs.done[e.Key()] {
			notify(Update{Index: i, Experiment: e, Stage: StageSkipped})
			continue
		}
		if rs.needFidelity[e.Key()] {
			if _, err := os.Stat(refPath(refDir, e)); err != nil {
				// The baseline still has no reference: measuring again
				// would leave the same hole.
				notify(Update{Index: i, Experiment: e, Stage: StageSkipped})
				continue
			}
			warn(fmt.Sprintf("resume: %s %s %s b%d runs again: it was measured without fidelity (its FP32 baseline had failed), and the baseline's reference is there now",
				e.Model, e.Precision, e.EP, e.Batch))
		}
		rec := runOne(ctx, i, e, cfg, refDir, notify)
		if ctx.Err() != nil {
			// Canceled mid-experiment: the partial run is not a result.
			return out, ctx.Err()
		}
		rec.RunID = cfg.RunID
		if err := w.Append(rec); err != nil {
			if !errors.As(err, &elsewhere) {
				return out, err
			}
			unsaved++
			warn(err.Error())
		}
		out = append(out, rec)
		stage := StageDone
		if !rec.OK() {
			stage = StageFailed
		}
		notify(Update{Index: i, Experiment: e, Stage: stage, Record: &rec})
	}
	if unsaved > 0 {
		return out, fmt.Errorf("%w: %d records are in %s, not in %s (%v); append them with: cat %s >> %s",
			ErrNotAllSaved, unsaved, elsewhere.Fallback, cfg.Out, elsewhere.Err, elsewhere.Fallback, cfg.Out)
	}
	return out, nil
}

// resumeState is what a resumed study takes from the records already there.
type resumeState struct {
	done         map[string]bool // recorded ok here: skip
	needFidelity map[string]bool // recorded ok here without fidelity: run again once a reference exists
	foreign      map[string]Host // recorded ok only on another machine: run again
}

// resumable sorts earlier records for a study on host.
func resumable(prev []Record, host Host) resumeState {
	rs := resumeState{done: map[string]bool{}, needFidelity: map[string]bool{}, foreign: map[string]Host{}}
	for _, r := range prev {
		if !r.OK() {
			continue
		}
		k := r.Experiment.Key()
		if r.Host.Key() != host.Key() {
			rs.foreign[k] = r.Host
			continue
		}
		if !r.Experiment.IsBaseline() && r.Metrics.Fidelity == nil {
			if !rs.done[k] {
				rs.needFidelity[k] = true
			}
			continue
		}
		rs.done[k] = true
		delete(rs.needFidelity, k)
	}
	for k := range rs.foreign {
		if rs.done[k] || rs.needFidelity[k] {
			delete(rs.foreign, k)
		}
	}
	return rs
}

// foreignNote tells which planned experiments were recorded only on other
// machines, and so run again here ("" when none were).
func (rs resumeState) foreignNote(out string, plan []Experiment) string {
	n := 0
	var hosts []string
	seen := map[string]bool{}
	for _, e := range plan {
		h, ok := rs.foreign[e.Key()]
		if !ok {
			continue
		}
		n++
		if s := h.Describe(); !seen[s] {
			seen[s] = true
			hosts = append(hosts, s)
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("resume: %d experiments in %s were measured on another machine or software (%s), not this one; they run again here",
		n, out, strings.Join(hosts, "; "))
}

// CUDALibraryEnv is LD_LIBRARY_PATH extended with the directories of the
// CUDA libraries the plugin needs, as FindCUDA finds them.
func CUDALibraryEnv(ortLib string) string {
	search := ort.SystemCUDASearch()
	if info := ort.Probe(ortLib); info.OK() {
		search.ORTLibDir = filepath.Dir(info.LibraryPath)
	}
	cuda := ort.FindCUDA(search)
	return "LD_LIBRARY_PATH=" + cuda.LDLibraryPath(os.Getenv("LD_LIBRARY_PATH"))
}

// refPath names the reference outputs of a model at a batch-independent
// key. The inputs' definition is part of it: a reference computed on other
// inputs (an older build's N(0,1) noise) is never compared against.
func refPath(dir string, e Experiment) string {
	key := e.Model + "|" + e.EP
	if e.Optimize {
		key += "|opt"
	}
	key += "|" + quant.CheckInputsVersion
	h := sha256.Sum256([]byte(key))
	return filepath.Join(dir, hex.EncodeToString(h[:8])+".ref")
}

// predPath names the FP32 predictions of a model on an image set: like
// refPath, keyed by the set (and how many of its images) too.
func predPath(dir string, e Experiment, set string, limit int) string {
	key := fmt.Sprintf("%s|%s|%t|%s|%d", e.Model, e.EP, e.Optimize, set, limit)
	h := sha256.Sum256([]byte(key))
	return filepath.Join(dir, hex.EncodeToString(h[:8])+".pred")
}

func runOne(ctx context.Context, i int, e Experiment, cfg RunConfig, refDir string, notify func(Update)) Record {
	rec := Record{Schema: SchemaVersion, Experiment: e, Host: cfg.Host, Started: time.Now()}
	failWith := func(err error) Record {
		rec.Status, rec.Reason, rec.Note, rec.Finished = StatusFailed, err.Error(), "", time.Now()
		return rec
	}
	tel := NewTelemetryRecorder(rec.Started)
	fail := func(err error) Record {
		rec = failWith(err)
		rec.Telemetry = tel.Telemetry(cfg.Duration)
		return rec
	}
	notify(Update{Index: i, Experiment: e, Stage: StagePreparing})
	prep, err := cfg.Prepare.Prepare(ctx, e)
	if err != nil {
		return fail(err)
	}
	rec.File.Path = prep.Path
	rec.Optimized = prep.Optimized
	if est, err := EstimateMemory(prep.Path, e.Batch, prep.ImageSize); err == nil {
		avail := cfg.AvailableMemory
		if avail == nil {
			avail = availableMemory
		}
		if n, where, ok := avail(e.EP); ok {
			warning, err := checkMemory(est, e, n, where)
			if err != nil {
				return fail(err)
			}
			if warning != "" && cfg.Warn != nil {
				cfg.Warn(warning)
			}
		}
	}
	traits := prep.Traits
	if traits.Weights == "" {
		traits = assumedTraits(e.Model)
	}
	rec.Model = &traits
	inputs := prep.Inputs
	if inputs.N == 0 {
		inputs = quant.NewCheckInputs(0, quant.DefaultCheckSeed, "", [3]float32{}, [3]float32{})
	}
	if cfg.FidelitySamples > 0 {
		inputs.N = cfg.FidelitySamples
	}
	spec := worker.Spec{
		ModelPath: prep.Path, Precision: e.Precision, EP: e.EP, Batch: e.Batch, Threads: e.Threads,
		Duration: cfg.Duration, MaxRuns: cfg.Iters, ORTLib: cfg.ORTLib, GFLOPs: prep.GFLOPs,
		Extra: cfg.EPOptions, CUDA: cfg.CUDAOptions, ImageSize: prep.ImageSize, NoOpProfile: cfg.NoOpProfile,
		FidelityInputs: &inputs, MinWarmup: cfg.MinWarmup, MaxWarmup: cfg.MaxWarmup,
	}
	ref := refPath(refDir, e)
	if e.IsBaseline() {
		spec.WriteReference, spec.Reference = ref, ref
	} else if _, err := os.Stat(ref); err == nil {
		spec.Reference = ref
	} else {
		rec.Note = "fidelity not measured: the FP32 baseline left no reference outputs (it failed or has not run); --resume measures it once the baseline has run"
	}
	if cfg.Eval != nil {
		set, err := cfg.Eval.SetFor(ctx, e.Model)
		if err != nil {
			return fail(fmt.Errorf("accuracy on %s: %w", cfg.Eval.Dir, err))
		}
		ev := &worker.EvalSpec{CacheDir: cfg.Eval.CacheDir, Set: set.Key, Preprocess: set.Preprocess, Limit: cfg.Eval.Limit}
		preds := predPath(refDir, e, set.Key, cfg.Eval.Limit)
		if e.IsBaseline() {
			ev.WritePredictions = preds
		} else if _, err := os.Stat(preds); err == nil {
			ev.Reference = preds
		}
		spec.Eval = ev
	}
	opts := cfg.Worker
	if e.EP != "" && e.EP != "cpu" {
		// The dynamic loader reads LD_LIBRARY_PATH once, at process start:
		// the CUDA libraries' directories must be in the worker's from the outset.
		opts.Env = append(append([]string(nil), opts.Env...), CUDALibraryEnv(cfg.ORTLib))
	}
	opts.Timeout = cfg.Timeout
	if opts.Timeout <= 0 {
		opts.Timeout = 10*time.Minute + 4*cfg.Duration
	}
	opts.OnEvent = func(ev worker.Event) {
		if ev.Kind == worker.KindSample && ev.Sample != nil {
			tel.Add(ev.Time, *ev.Sample)
			notify(Update{Index: i, Experiment: e, Stage: StageRunning, Sample: ev.Sample})
		}
	}
	tel.WorkerStarted(time.Now())
	notify(Update{Index: i, Experiment: e, Stage: StageRunning})
	o := worker.Run(ctx, spec, opts)
	if o.Err != nil {
		rec.Stderr = o.StderrTail
		return fail(o.Err)
	}
	var res worker.Result
	if err := json.Unmarshal(o.Result, &res); err != nil {
		return fail(fmt.Errorf("worker result: %w", err))
	}
	rec.File.SHA256, rec.File.Bytes = res.FileSHA256, res.FileBytes
	rec.Provider = &Provider{Name: res.EP, Route: res.EPRoute, Reason: res.EPReason, Options: res.EPOptions, Threads: res.Threads,
		CUDAGraph: res.CUDAGraph}
	if rec.Host.ORTVersion == "" {
		rec.Host.ORTVersion = res.ORTVersion
	}
	m := res.Metrics
	m.Precision = prep.Report
	rec.Metrics = &m
	rec.Status, rec.Finished = StatusOK, time.Now()
	rec.Telemetry = tel.Telemetry(cfg.Duration)
	return rec
}
