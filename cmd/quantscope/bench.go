package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/spf13/cobra"

	"github.com/quantscope/quantscope/internal/bytefmt"
	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/ort/cudaopt"
	"github.com/quantscope/quantscope/profiler/report"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/serve"
)

// Exit codes of quantscope bench.
const (
	exitBenchFailures = 4   // some experiments failed (their records say why)
	exitGateFailed    = 3   // a quantized configuration failed --gate
	exitInterrupted   = 130 // Ctrl-C: what was recorded is kept
)

type benchOptions struct {
	models     []string
	precisions []string
	eps        []string
	batches    []int
	duration   time.Duration
	iters      int
	threads    int
	repeat     int
	out        string
	resume     bool
	format     string
	gate       string
	timeout    time.Duration
	calibDir   string
	optimize   bool
	resolution int
	opProfile  bool   // --op-profile: per-operator time from ONNX Runtime's profiler
	weights    string // imported models' weights: trained (default) or synthetic
	outputKind string // imported models' output: logits (default) or embeddings
	epOptions  map[string]string
	cuda       cudaopt.Options // --tf32, --cuda-graph, --conv-algo, --nhwc
	shard      string          // --shard I/N or auto
	shards     int             // --shards N (the Job's completions with --shard auto)
	hostGroup  string          // --host-group: Host.Group of the records
	// getenv reads the scheduler's variables for --shard auto (nil:
	// os.Getenv); tests set it.
	getenv func(string) string
	// force runs even while quantscope serve runs a study here.
	force bool
	eval  evalFlags // --eval-dir, --labels, …
}

func newBenchCmd(g *globalOptions) *cobra.Command {
	o := benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run a study headless: every model × precision × EP × batch, results to a JSONL file",
		Long: `bench measures every model at every precision (with its FP32 baseline) in
a worker process of its own, appends one record per experiment to --out as it
finishes, and prints a summary table. Ctrl-C stops cleanly and keeps what was
recorded; --resume skips what is already recorded.

While quantscope serve runs a study on this machine, bench refuses to compete
with it for the hardware (exit 75) unless --force.

Exit status: 0 all ok, 3 a configuration failed --gate, 4 some experiments
failed (see their reasons), 75 quantscope serve is running a study here,
130 interrupted.`,
		Example: `  quantscope bench --models deit-tiny,vit-base-16 --precisions fp32,fp16,int8,int4 \
    --ep cpu --batch 1,8 --duration 10s --out results.jsonl
  quantscope bench --models ./my-model.onnx --precisions int8 --gate 'top1>=0.99,cos>=0.999'
  quantscope bench --models ./my-model.onnx --precisions int8,int4 --eval-dir ./val --labels synsets.txt \
    --gate 'acc-drop<=0.5'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBench(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.models, "models", nil, "catalog names or .onnx paths, comma-separated (required)")
	f.StringSliceVar(&o.precisions, "precisions", []string{"fp32", "fp16", "int8", "int4"}, "precision specs; fp32 baselines are always added")
	f.StringSliceVar(&o.eps, "ep", []string{"cpu"}, "execution providers: cpu, cuda, tensorrt, auto")
	f.IntSliceVar(&o.batches, "batch", []int{1}, "batch sizes")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "timed phase per experiment")
	f.IntVar(&o.iters, "iters", 0, "time exactly this many runs instead of --duration")
	f.IntVar(&o.threads, "threads", 0, "intra-op threads (0 = one per physical core)")
	f.IntVar(&o.repeat, "repeat", 1, "run every experiment N times, interleaved, and report mean ± 95% CI")
	f.StringVar(&o.out, "out", "results.jsonl", "results file (JSON lines, appended)")
	f.BoolVar(&o.resume, "resume", false, "skip experiments already recorded ok in --out")
	f.StringVar(&o.format, "format", "table", "summary format: table, csv, json or markdown")
	f.StringVar(&o.gate, "gate", "", "fidelity gate for quantized configurations, e.g. 'top1>=0.99,cos>=0.999'")
	f.DurationVar(&o.timeout, "timeout", 0, "per-experiment limit (default 10m + 4 × duration)")
	f.StringToStringVar(&o.epOptions, "ep-option", nil, "execution-provider option KEY=VALUE, repeatable (CUDA: use_tf32=0, cudnn_conv_algo_search=EXHAUSTIVE, enable_cuda_graph=1, prefer_nhwc=1, device_id=N)")
	f.StringVar(&o.cuda.TF32, "tf32", "", "CUDA: TF32 math for FP32 (and so the FP32 baseline): on or off (default on, ORT's use_tf32=1)")
	f.BoolVar(&o.cuda.CUDAGraph, "cuda-graph", false, "CUDA: capture and replay CUDA graphs (enable_cuda_graph=1); falls back, and records why, when the model does not allow it")
	f.StringVar(&o.cuda.ConvAlgo, "conv-algo", "", "CUDA: cuDNN conv algorithm search: exhaustive, heuristic or default (default exhaustive)")
	f.BoolVar(&o.cuda.NHWC, "nhwc", false, "CUDA: prefer NHWC layout for conv models (prefer_nhwc=1)")
	f.StringVar(&o.calibDir, "calib-dir", "", "folder of JPEG/PNG images for int8-static calibration (default: seeded synthetic images)")
	f.IntVar(&o.resolution, "resolution", 0, "height and width for models whose input leaves them symbolic (default: the size the model declares in its metadata, else 224)")
	f.BoolVar(&o.opProfile, "op-profile", true, "record where each inference's time goes per operator (a few runs under ONNX Runtime's profiler, outside the timed loop)")
	f.StringVar(&o.weights, "weights", "", "imported models' weights: trained (the default: top-1 agreement gates them) or synthetic (judged on cosine, SQNR and decisive top-1, as the catalog's models are)")
	f.StringVar(&o.outputKind, "output-kind", "", "imported models' output: logits (the default) or embeddings (a backbone: no top-1, gated on cosine)")
	f.BoolVar(&o.optimize, "optimize", optimize.DefaultEnabled, "fuse transformer patterns (attention, SkipLayerNorm, BiasGelu…) with models/optimize before converting; --optimize=false runs the graphs as built")
	f.StringVar(&o.shard, "shard", "", "run one part of the study: I/N (0-based) or auto (Kubernetes JOB_COMPLETION_INDEX with --shards, or Slurm SLURM_ARRAY_TASK_ID/COUNT); a model and its FP32 baselines always share a part")
	f.IntVar(&o.shards, "shards", 0, "number of shards for --shard auto on Kubernetes (the Job's completions)")
	f.StringVar(&o.hostGroup, "host-group", "", "name the pool of like machines a sharded study runs on, so reports and merges treat its hosts as one (records keep each hostname)")
	f.BoolVar(&o.force, "force", false, "run even while quantscope serve runs a study on this machine (both sets of numbers suffer)")
	o.eval.register(f)
	_ = cmd.MarkFlagRequired("models")
	return cmd
}

// exitBusy is bench's exit status when quantscope serve runs a study on
// this machine (EX_TEMPFAIL: try again later).
const exitBusy = 75

// serveBusy says what study quantscope serve runs on this machine, ""
// when none (serve.Busy on the lock file in the user data dir).
func serveBusy() string {
	path, err := serve.LockPath()
	if err != nil {
		return ""
	}
	return serve.Busy(path)
}

func runBench(ctx context.Context, g *globalOptions, o benchOptions) error {
	switch o.format {
	case "table", "csv", "json", "markdown":
	default:
		return &exitError{code: 2, err: fmt.Errorf("--format %q: want table, csv, json or markdown", o.format)}
	}
	if err := o.validateNumbers(); err != nil {
		return &exitError{code: 2, err: err}
	}
	gate, err := parseGate(o.gate)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	weights, err := study.ParseWeights(o.weights)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--weights: %w", err)}
	}
	outputKind, err := study.ParseOutput(o.outputKind)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--output-kind: %w", err)}
	}
	cudaOptions, err := o.cuda.Resolve(o.eps, o.epOptions)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if o.getenv == nil {
		o.getenv = os.Getenv
	}
	shard, shardSource, err := resolveShard(o.shard, o.shards, o.getenv)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if busy := serveBusy(); busy != "" {
		if !o.force {
			return &exitError{code: exitBusy, err: fmt.Errorf("%s; a bench now would compete with it for the hardware and spoil both sets of numbers: wait for it to finish (ssh into it to watch), or pass --force", busy)}
		}
		fmt.Fprintf(g.stderr, "warning: %s; --force: running anyway, both sets of numbers suffer\n", busy)
	}
	// The whole plan is checked before anything runs: a typo in the last
	// precision must not wait for minutes of FP32 baselines to surface.
	plan, err := study.Plan(study.PlanConfig{
		Models: o.models, Precisions: joinSpecOptions(o.precisions), EPs: o.eps, Batches: o.batches, Threads: o.threads, Repeat: o.repeat, Optimize: o.optimize,
		EPOptions: o.epOptions, CUDAOptions: cudaOptions, Resolution: o.resolution,
	})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if err := checkModels(o.models, o.resolution); err != nil {
		return &exitError{code: 2, err: err}
	}
	if err := o.checkFiles(plan); err != nil {
		return &exitError{code: 2, err: err}
	}
	if err := o.eval.validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	if gate.needsAccuracy() && !o.eval.set() {
		return &exitError{code: 2, err: fmt.Errorf("--gate %q tests accuracy: give the labelled images with --eval-dir", o.gate)}
	}
	dataset, err := o.eval.dataset(g.stderr)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--eval-dir: %w", err)}
	}
	info, err := ort.Init(g.ortLib)
	if err != nil {
		return err
	}
	if err := checkEPs(info, o.eps); err != nil {
		return &exitError{code: 2, err: err}
	}
	if shard.Count > 0 {
		if plan, err = selectShard(g.stderr, plan, shard, shardSource); err != nil {
			return &exitError{code: 2, err: err}
		}
		if len(plan) == 0 {
			return nil
		}
	}
	prog := newProgress(g.stderr, len(plan))
	prep := study.NewPreparer()
	prep.Threads = o.threads
	prep.CalibDir = o.calibDir
	prep.Weights, prep.Output = weights, outputKind
	prep.Warn = func(msg string) { prog.note("warning: " + msg) }
	host := study.ReadHost(info, nil)
	host.Group = strings.TrimSpace(o.hostGroup)
	cfg := study.RunConfig{
		Out:         o.out,
		Resume:      o.resume,
		Prepare:     prep,
		Host:        host,
		Warn:        func(msg string) { prog.note("warning: " + msg) },
		Duration:    o.duration,
		Iters:       o.iters,
		Timeout:     o.timeout,
		EPOptions:   o.epOptions,
		CUDAOptions: cudaOptions,
		ORTLib:      g.ortLib,
		OnUpdate:    prog.update,
		NoOpProfile: !o.opProfile,
	}
	if dataset != nil {
		cfg.Eval = dataset
	}
	fusions := "fusions on"
	if !o.optimize {
		fusions = "fusions off"
	}
	if dir := filepath.Dir(o.out); dir != "." {
		// A sharded study writes into a directory of its own.
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("results directory: %w", err)
		}
	}
	fmt.Fprintf(g.stderr, "quantscope bench: %d experiments → %s (ONNX Runtime %s, %s)\n", len(plan), o.out, info.Version, fusions)
	ran, runErr := study.Run(ctx, plan, cfg)
	prog.finish()
	if errors.Is(runErr, study.ErrLocked) {
		return runErr
	}

	recs, warns, err := study.ReadResults(o.out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, w := range warns {
		fmt.Fprintf(g.stderr, "warning: %s: %s\n", o.out, w)
	}
	// This machine's records of this plan, and this run's that could not
	// be written to the file (they are in the fallback file).
	rows := study.Summarize(onlyPlanned(withUnsaved(recs, ran), plan, host))
	if dataset != nil {
		for _, sk := range dataset.Skipped() {
			fmt.Fprintf(g.stderr, "skipped %s: %s\n", sk.Name, sk.Reason)
		}
	}
	if err := writeSummary(g.stdout, o.format, rows); err != nil {
		return err
	}
	if runErr != nil {
		if errors.Is(runErr, context.Canceled) {
			return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted; %d experiments recorded in %s (rerun with --resume to finish)", len(recs), o.out)}
		}
		return runErr
	}
	if failing := gate.failing(rows); len(failing) > 0 {
		return &exitError{code: exitGateFailed, err: fmt.Errorf("gate %q failed for: %s", o.gate, strings.Join(failing, "; "))}
	}
	var failed int
	for _, r := range rows {
		if r.Status != study.StatusOK {
			failed++
		}
	}
	if failed > 0 {
		return &exitError{code: exitBenchFailures, err: fmt.Errorf("%d of %d experiments failed (reasons in the table and in %s)", failed, len(rows), o.out)}
	}
	return nil
}

// joinSpecOptions undoes the comma split of --precisions inside a spec's
// options: "int4:block=64", "asym" → "int4:block=64,asym". A piece that
// does not start with a precision kind belongs to the spec before it.
func joinSpecOptions(parts []string) []string {
	var out []string
	for _, p := range parts {
		p = strings.TrimSpace(p)
		kind, _, _ := strings.Cut(p, ":")
		if _, err := quant.ParseSpec(kind); err != nil && len(out) > 0 && strings.Contains(out[len(out)-1], ":") {
			out[len(out)-1] += "," + p
			continue
		}
		out = append(out, p)
	}
	return out
}

// onlyPlanned keeps the records of experiments in this plan measured on
// this machine: the results file may hold other studies' records, and
// other machines' (which --resume does not trust either).
func onlyPlanned(recs []study.Record, plan []study.Experiment, host study.Host) []study.Record {
	want := map[string]bool{}
	for _, e := range plan {
		want[e.Key()] = true
	}
	var out []study.Record
	for _, r := range recs {
		if want[r.Experiment.Key()] && r.Host.Key() == host.Key() {
			out = append(out, r)
		}
	}
	return out
}

// withUnsaved adds to the records read back from the results file those
// of this run that are not in it (they went to a fallback file).
func withUnsaved(file, ran []study.Record) []study.Record {
	in := map[string]bool{}
	for _, r := range file {
		in[r.RunID+"|"+r.Experiment.Key()] = true
	}
	out := file
	for _, r := range ran {
		if !in[r.RunID+"|"+r.Experiment.Key()] {
			out = append(out, r)
		}
	}
	return out
}

// progress prints where a study is: one updating line on a terminal, one
// line per stage change otherwise.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	total   int
	start   time.Time
	done    int
	lastLen int
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, tty: isTerminal(w), total: total, start: time.Now()}
}

func (p *progress) update(u study.Update) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := u.Experiment
	name := fmt.Sprintf("%s %s %s b%d", e.Model, e.Precision, e.EP, e.Batch)
	if e.Repeat > 0 {
		name += fmt.Sprintf(" r%d", e.Repeat+1)
	}
	pos := fmt.Sprintf("[%d/%d]", u.Index+1, p.total)
	switch u.Stage {
	case study.StageDone, study.StageFailed, study.StageSkipped:
		p.done++
		line := fmt.Sprintf("%s %s: %s", pos, name, u.Stage)
		if r := u.Record; r != nil && r.OK() {
			line += fmt.Sprintf(" — %.1f samples/s, p50 %.2f ms", r.Metrics.Throughput, r.Metrics.Latency.P50Ms)
		} else if r != nil {
			line += " — " + r.Reason
		}
		p.clear()
		fmt.Fprintln(p.w, line)
	case study.StageRunning, study.StagePreparing:
		line := fmt.Sprintf("%s %s: %s", pos, name, u.Stage)
		if s := u.Sample; s != nil {
			line = fmt.Sprintf("%s %s: %s %d runs", pos, name, s.Phase, s.Runs)
			if s.Throughput > 0 {
				line += fmt.Sprintf(", %.1f samples/s", s.Throughput)
			}
		}
		if eta := p.eta(); eta > 0 {
			line += fmt.Sprintf(" · ETA %s", eta.Round(time.Second))
		}
		if p.tty {
			p.clear()
			fmt.Fprint(p.w, line)
			p.lastLen = len(line)
		} else if u.Sample == nil {
			fmt.Fprintln(p.w, line)
		}
	}
}

// eta extrapolates from the experiments finished so far.
func (p *progress) eta() time.Duration {
	if p.done == 0 {
		return 0
	}
	per := time.Since(p.start) / time.Duration(p.done)
	return per * time.Duration(p.total-p.done)
}

func (p *progress) clear() {
	if p.tty && p.lastLen > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.lastLen))
		p.lastLen = 0
	}
}

// note prints a line without disturbing the progress line.
func (p *progress) note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintln(p.w, msg)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

// summaryRow is one row of the table and markdown summaries (csv and json
// are report.WriteRows'). Memory is the peak working set
// (bench.MemoryDefinition); speedup carries its 95% interval from paired
// rounds with --repeat, and verdict says "1 run" without; top1 is absent
// for backbones, and decisive is what gates synthetic weights.
type summaryRow struct {
	Model        string
	Precision    string
	EP           string
	Batch        int
	Optimized    bool   // ran the models/optimize fused graph
	Options      string // provider options the user set
	Weights      string // trained or synthetic
	Output       string // logits or embeddings
	Status       string
	Reason       string
	Throughput   float64
	ThroughputCI float64
	P50Ms        float64
	P99Ms        float64
	Speedup      float64
	SpeedupLo    float64
	SpeedupHi    float64
	SpeedupText  string
	WorkingSet   int64
	MemReduction float64
	SizeRed      float64
	Cosine       fidelity.Number // null when the variant's outputs were NaN
	Top1         fidelity.Number
	Decisive     fidelity.Number
	Contended    bool
	Verdict      bench.Verdict
	Note         string
	Accuracy     *accSummary // --eval-dir
	backbone     bool
}

// accSummary is what the table and markdown summaries show of a row's
// accuracy on the labelled set: top-1 with its 95% Wilson interval, and
// for a variant the paired top-1 difference against FP32 (csv and json
// carry every figure: report.AccuracyColumns).
type accSummary struct {
	Top1   float64
	Top1CI [2]float64
	text   string // the table's "acc Δ" cell
}

func summarizeAccuracy(a *accuracy.Result) *accSummary {
	if a == nil || a.Images == 0 {
		return nil
	}
	t1 := a.Top1CI()
	s := &accSummary{Top1: a.Top1Rate(), Top1CI: [2]float64{t1.Lo, t1.Hi}}
	if d, ok := a.Top1Diff(); ok {
		sig := ""
		if d.Significant {
			sig = " *"
		}
		s.text = fmt.Sprintf("%s [%s, %s]%s", accuracy.FormatPoints(d.Diff), accuracy.FormatPoints(d.CI.Lo), accuracy.FormatPoints(d.CI.Hi), sig)
	}
	return s
}

func toSummary(r study.Row) summaryRow {
	s := summaryRow{
		Model: r.Experiment.Model, Precision: r.Experiment.Precision, EP: r.Experiment.EP, Batch: r.Experiment.Batch,
		Optimized: r.Experiment.Optimize, Options: r.Experiment.Options, Weights: r.Traits.Weights, Output: r.Traits.Output,
		Status: r.Status, Reason: r.Reason, Throughput: r.Throughput, P50Ms: r.P50Ms, P99Ms: r.P99Ms,
		WorkingSet: r.WorkingSet, Contended: r.Contended, Verdict: r.Verdict, Note: r.Note, backbone: r.Traits.Backbone(),
	}
	if !math.IsInf(r.ThroughputCI, 0) && !math.IsNaN(r.ThroughputCI) {
		s.ThroughputCI = r.ThroughputCI
	}
	if r.HasBaseline {
		s.Speedup, s.MemReduction, s.SizeRed = finite(r.Speedup), finite(r.MemReduction), finite(r.SizeReduction)
		s.SpeedupLo, s.SpeedupHi = finite(r.SpeedupLo), finite(r.SpeedupHi)
		if !r.Experiment.IsBaseline() {
			s.SpeedupText = r.SpeedupText()
		}
	}
	if r.Last != nil && r.Last.Metrics != nil && r.Last.Metrics.Fidelity != nil {
		f := r.Last.Metrics.Fidelity
		s.Cosine = fidelity.Number(f.CosineMean)
		if !s.backbone {
			s.Top1 = fidelity.Number(f.Top1)
			if d, ok := f.Decisive(); ok {
				s.Decisive = fidelity.Number(d)
			}
		}
	}
	if r.Status == study.StatusOK && r.Last != nil && r.Last.Metrics != nil {
		s.Accuracy = summarizeAccuracy(r.Last.Metrics.Accuracy)
	}
	return s
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

var summaryHeader = []string{"model", "precision", "ep", "batch", "samples/s", "p50 ms", "p99 ms", "speedup", "mem", "mem ↓", "size ↓", "cos", "top-1", "decisive", "status"}

// summaryFootnote says what the summary's memory and speedup figures are.
func summaryFootnote() string {
	return bench.MemoryFootnote + "\nspeedup: with --repeat, the 95% interval of paired rounds; (1 run): no interval; uncertain: a run was contended.\n" +
		"decisive: top-1 agreement where FP32's margin exceeds the variant's max abs error (what gates synthetic weights)."
}

func (s summaryRow) cells() []string {
	num := func(v float64, f string) string {
		if v == 0 {
			return "—"
		}
		return fmt.Sprintf(f, v)
	}
	tput := num(s.Throughput, "%.1f")
	if s.ThroughputCI > 0 {
		tput += fmt.Sprintf(" ±%.1f", s.ThroughputCI)
	}
	status := s.Status
	switch {
	case s.Reason != "":
		status += ": " + s.Reason
	case s.Verdict != "" && s.Verdict != bench.VerdictOneRun && s.Verdict != bench.VerdictContended:
		status += " (" + string(s.Verdict) + ")"
	case s.Note != "":
		status += " (" + s.Note + ")"
	}
	if s.Contended {
		status += " ⚠ contended"
	}
	speedup := num(s.Speedup, "%.2f×")
	if s.SpeedupText != "" {
		speedup = s.SpeedupText
	}
	mem := "—"
	if s.WorkingSet > 0 {
		mem = bytefmt.Format(s.WorkingSet)
	}
	top1 := num(float64(s.Top1), "%.3f")
	if s.backbone {
		top1 = "—"
	}
	return []string{s.Model, s.Precision, s.EP, strconv.Itoa(s.Batch), tput, num(s.P50Ms, "%.2f"), num(s.P99Ms, "%.2f"),
		speedup, mem, num(s.MemReduction, "%.2f×"), num(s.SizeRed, "%.2f×"), num(float64(s.Cosine), "%.5f"), top1, num(float64(s.Decisive), "%.3f"), status}
}

// accCells are the accuracy columns of a row ("acc top-1", "acc Δ"):
// top-1 with its interval, and the paired difference against FP32 (* when
// McNemar's test finds it significant).
func (s summaryRow) accCells() []string {
	a := s.Accuracy
	if a == nil {
		return []string{"—", "—"}
	}
	top1 := fmt.Sprintf("%.1f%% [%.1f, %.1f]", 100*a.Top1, 100*a.Top1CI[0], 100*a.Top1CI[1])
	delta := a.text
	if delta == "" {
		delta = "—"
	}
	return []string{top1, delta}
}

func writeSummary(w io.Writer, format string, rows []study.Row) error {
	out := make([]summaryRow, len(rows))
	withAcc := false
	for i, r := range rows {
		out[i] = toSummary(r)
		withAcc = withAcc || out[i].Accuracy != nil
	}
	header := summaryHeader
	cells := func(s summaryRow) []string { return s.cells() }
	if withAcc {
		header = append(slices.Clone(summaryHeader[:len(summaryHeader)-1]), "acc top-1", "acc Δ pt", summaryHeader[len(summaryHeader)-1])
		cells = func(s summaryRow) []string {
			c := s.cells()
			return append(append(c[:len(c)-1:len(c)-1], s.accCells()...), c[len(c)-1])
		}
	}
	switch format {
	case "json", "csv":
		return report.WriteRows(w, format, rows)
	case "markdown":
		fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
		for _, s := range out {
			row := cells(s)
			for i := range row {
				row[i] = strings.ReplaceAll(row[i], "|", `\|`)
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
		_, err := fmt.Fprintf(w, "\n%s\n", strings.ReplaceAll(summaryFootnote(), "\n", "\n\n"))
		return err
	default:
		table := [][]string{header}
		for _, s := range out {
			table = append(table, cells(s))
		}
		if err := writeAligned(w, table, 2); err != nil {
			return err
		}
		_, err := fmt.Fprintln(w, summaryFootnote())
		return err
	}
}

// writeAligned writes rows as columns padded to the widest cell of each,
// measured in terminal cells (a CJK character takes two, a combining mark
// none), with gap spaces between columns and none after the last.
func writeAligned(w io.Writer, rows [][]string, gap int) error {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], ansi.StringWidth(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-ansi.StringWidth(c)+gap))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// benchGate applies --gate to a study's quantized configurations.
type benchGate struct {
	gate report.Gate
	set  bool
}

// needsAccuracy reports whether the gate has an acc-drop clause.
func (g benchGate) needsAccuracy() bool {
	for _, c := range g.gate.Clauses {
		if c.Metric == report.MetricAccDrop {
			return true
		}
	}
	return false
}

func parseGate(s string) (benchGate, error) {
	if strings.TrimSpace(s) == "" {
		return benchGate{}, nil
	}
	g, err := report.ParseGate(s)
	if err != nil {
		return benchGate{}, fmt.Errorf("--gate: %w", err)
	}
	return benchGate{gate: g, set: true}, nil
}

// failing names each quantized configuration that does not pass the gate,
// with the clauses it missed; a variant that failed to run fails the gate too.
func (g benchGate) failing(rows []study.Row) []string {
	if !g.set {
		return nil
	}
	var out []string
	for _, r := range rows {
		if r.Experiment.IsBaseline() {
			continue
		}
		name := fmt.Sprintf("%s %s b%d", r.Experiment.Model, r.Experiment.Precision, r.Experiment.Batch)
		if r.Status != study.StatusOK || r.Last == nil || r.Last.Metrics == nil {
			out = append(out, name+" (did not run)")
			continue
		}
		if res := g.gate.CheckFor(r.Last.Metrics.Fidelity, r.Last.Metrics.Accuracy, r.Traits); !res.Pass {
			why := strings.Join(res.Failed, ", ")
			if r.Last.Metrics.Fidelity == nil && r.Last.Note != "" {
				why += ": " + strings.TrimPrefix(r.Last.Note, "fidelity not measured: ")
			}
			out = append(out, name+" ("+why+")")
		}
	}
	return out
}
