package hwbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/klauspost/cpuid/v2"

	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/ort/cudaopt"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/telemetry"
	"github.com/quantscope/quantscope/profiler/worker"
)

// Config says what to measure and how.
type Config struct {
	// ORTLib is --ort-lib (passed to the workers too).
	ORTLib string
	// EP is "auto" (CUDA when a GPU and the CUDA plugin are usable, else
	// the CPU), "cpu" or "cuda". The CPU's GEMMs, clock and memory are
	// measured either way.
	EP string
	// GPU is the NVML index of the GPU to measure.
	GPU int
	// Quick measures small GEMMs for short times and one small inference:
	// a smoke test of the whole path in seconds, whose figures are not
	// judged against peaks.
	Quick bool
	// Threads are ONNX Runtime's intra-op threads on the CPU (0: one per
	// physical core this process may use).
	Threads int
	// Worker starts the measuring processes (default: this executable's
	// "worker" command).
	Worker worker.Options
	// CacheDir holds the GEMM models (default: "doctor" beside the model
	// cache).
	CacheDir string
	// NVML opens NVML (default nvml.New).
	NVML func() nvml.Interface
	// Prepare builds, fuses and quantizes the reference models (default
	// study.NewPreparer()).
	Prepare study.Preparer
	// References are the measured figures to compare with (nil: the
	// shipped table).
	References []Reference
	// FS is the root file system for /proc and /sys (default "/").
	FS fs.FS

	// resolveEP stands in for ort.ResolveEP in tests of the GPU path
	// on machines without the CUDA plugin.
	resolveEP func(requested string) (ort.EPChoice, error)
	// tiny shrinks every size and duration further than Quick, and still
	// judges: tests of the orchestration under the race detector.
	tiny bool
}

// EventKind says what an Event carries.
type EventKind string

// The kinds of events Run emits.
const (
	EventStep   EventKind = "step"   // a step starts: Step, Steps, Label
	EventSample EventKind = "sample" // a live reading of the running step: Value, Unit, Expected
	EventLine   EventKind = "line"   // a judged line: Line
	EventGPU    EventKind = "gpu"    // a GPU health reading: GPU
)

// Event is progress while Run measures.
type Event struct {
	Kind     EventKind
	Step     int // 1-based index of the running step
	Steps    int // steps planned
	Label    string
	Phase    bench.Phase // the worker's phase for samples: warmup, measuring
	Value    float64     // live reading, in Unit
	Unit     string
	Expected float64 // what the live reading is judged against (0: nothing)
	Line     *Line
	GPU      *telemetry.GPULoad
	// For GPU events: the maximum SM clock, the enforced power limit and the
	// slowdown temperature, to draw the reading against.
	MaxSMMHz    uint32
	PowerLimitW float64
	SlowdownC   uint32
	Elapsed     time.Duration
}

// ErrNoORT is returned when ONNX Runtime does not load: nothing can be measured.
var ErrNoORT = errors.New("ONNX Runtime did not load")

// Run measures the machine and returns the judged report. emit (optional)
// sees progress; it is called from one goroutine at a time but not always
// the caller's. A failed measurement is a line with its error, not a failed
// Run; Run fails only when nothing can be measured or ctx is canceled.
func Run(ctx context.Context, cfg Config, emit func(Event)) (*Report, error) {
	r := &runner{cfg: cfg, start: time.Now()}
	if emit != nil {
		var mu sync.Mutex
		r.emitFn = func(e Event) {
			mu.Lock()
			defer mu.Unlock()
			e.Elapsed = time.Since(r.start)
			emit(e)
		}
	} else {
		r.emitFn = func(Event) {}
	}
	return r.run(ctx)
}

// runner is one Run.
type runner struct {
	cfg    Config
	start  time.Time
	emitFn func(Event)
	rep    Report

	info    ort.Info
	host    telemetry.HostInfo
	spec    CPUSpec
	threads int
	cuda    bool
	refs    []Reference

	step, steps int
	label       string

	clockGHz  float64
	clockFrom string

	probe  *telemetry.GPUProbe
	part   *GPUPart
	gpuMu  sync.Mutex
	gpu    GPUState
	stopGP func()

	times0  telemetry.CPUTimes
	own0    float64
	timesOK bool

	fp32GFLOPs float64
}

func (r *runner) emit(e Event) {
	e.Step, e.Steps = r.step, r.steps
	if e.Label == "" {
		e.Label = r.label
	}
	r.emitFn(e)
}

func (r *runner) begin(label string) {
	r.step++
	r.label = label
	r.emit(Event{Kind: EventStep})
}

func (r *runner) add(l Line) {
	r.rep.Lines = append(r.rep.Lines, l)
	lc := l
	r.emit(Event{Kind: EventLine, Line: &lc})
}

func (r *runner) warn(format string, args ...any) {
	r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf(format, args...))
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	cfg := &r.cfg
	if cfg.FS == nil {
		cfg.FS = os.DirFS("/")
	}
	if cfg.NVML == nil {
		cfg.NVML = func() nvml.Interface { return nvml.New() }
	}
	if cfg.Prepare == nil {
		cfg.Prepare = study.NewPreparer()
	}
	if cfg.EP == "" {
		cfg.EP = "auto"
	}
	r.refs = cfg.References
	if r.refs == nil {
		refs, err := References()
		if err != nil {
			return nil, err
		}
		r.refs = refs
	}
	r.rep = Report{Schema: SchemaVersion, Started: r.start.UTC().Truncate(time.Second), Quick: cfg.Quick, Lines: []Line{}, Steps: []StepTime{}}
	if err := r.machine(); err != nil {
		return nil, err
	}
	defer r.closeGPU()

	type step struct {
		label string
		fn    func(context.Context) error
	}
	steps := []step{
		{"CPU load before the run", r.loadWindow},
		{"core clock", r.measureClock},
		{"host memory bandwidth", r.hostMemory},
		{"FP32 GEMM (CPU)", func(ctx context.Context) error { return r.cpuGEMM(ctx, FP32) }},
		{"INT8 GEMM (CPU)", func(ctx context.Context) error { return r.cpuGEMM(ctx, INT8) }},
	}
	if r.cuda {
		for _, p := range []Precision{FP32, TF32, FP16, INT8} {
			p := p
			steps = append(steps, step{strings.ToUpper(string(p)) + " GEMM (GPU)", func(ctx context.Context) error { return r.gpuGEMM(ctx, p) }})
		}
		steps = append(steps, step{"GPU memory and PCIe copies", r.gpuStream})
	}
	for _, m := range r.inferenceModels() {
		m := m
		steps = append(steps, step{"inference " + m.model, func(ctx context.Context) error { return r.inference(ctx, m) }})
	}
	r.steps = len(steps) + 1
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r.begin(s.label)
		t0 := time.Now()
		err := s.fn(ctx)
		r.rep.Steps = append(r.rep.Steps, StepTime{Label: s.label, Seconds: round1(time.Since(t0).Seconds())})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.warn("%s: %v", s.label, err)
		}
	}
	r.begin("health and verdicts")
	r.finish()
	return &r.rep, nil
}

// machine identifies the machine, loads nothing but probes ONNX Runtime,
// and decides whether a GPU is measured.
func (r *runner) machine() error {
	cfg := r.cfg
	r.info = ort.Probe(cfg.ORTLib)
	if !r.info.OK() {
		err := r.info.Err
		if err == nil {
			err = errors.New("no library loaded")
		}
		return fmt.Errorf("%w: %v (run `make setup` or pass --ort-lib)", ErrNoORT, err)
	}
	r.host = telemetry.ReadHostInfo()
	c := cpuid.CPU
	var feats []string
	for _, f := range r.host.CPU.Features {
		if f.Present {
			feats = append(feats, f.Name)
		}
	}
	r.spec = CPUSpec{Arch: runtime.GOARCH, Vendor: c.VendorString, Brand: r.host.CPU.Model, Family: c.Family, Model: c.Model, Features: feats}
	r.threads = cfg.Threads
	if r.threads <= 0 {
		r.threads = min(ort.PhysicalCores(), runtime.NumCPU())
	}
	m := &r.rep.Machine
	m.Hostname, m.CPU, m.Vendor, m.Family, m.Model = r.host.Hostname, r.host.CPU.Model, c.VendorString, c.Family, c.Model
	m.Cores, m.ISA, m.Virtual, m.ORT = r.threads, feats, c.Supports(cpuid.HYPERVISOR), r.info.Version
	m.CPUKey = fmt.Sprintf("cpu:%s:%d:%d:%d", c.VendorString, c.Family, c.Model, r.threads)
	m.LoadStart = telemetry.LoadAverage()
	m.EP = "cpu"

	if cfg.EP == "cpu" {
		return nil
	}
	lib := cfg.NVML()
	gpus, status := telemetry.ReadGPUs(lib)
	resolve := cfg.resolveEP
	if resolve == nil {
		resolve = func(requested string) (ort.EPChoice, error) {
			search := ort.SystemCUDASearch()
			search.ORTLibDir = filepath.Dir(r.info.LibraryPath)
			return ort.ResolveEP(requested, r.info, ort.FindCUDA(search))
		}
	}
	choice, err := resolve(cfg.EP)
	switch {
	case err != nil:
		return err
	case !status.Available():
		if cfg.EP == "cuda" {
			return fmt.Errorf("--ep cuda: no NVIDIA GPU: %s", status.Reason)
		}
		m.EPReason = "auto: CPU, because there is no NVIDIA GPU (" + status.Reason + ")"
		return nil
	case choice.EP != "cuda":
		m.EPReason = choice.Reason
		return nil
	case cfg.GPU < 0 || cfg.GPU >= len(gpus):
		return fmt.Errorf("--gpu %d: this machine has GPUs 0 to %d", cfg.GPU, len(gpus)-1)
	}
	probe, err := telemetry.OpenGPUProbe(cfg.NVML(), cfg.GPU)
	if err != nil {
		return err
	}
	r.cuda, r.probe = true, probe
	m.EP, m.EPReason, m.Driver, m.GPUIndex = "cuda", choice.Reason, status.DriverVersion, cfg.GPU
	r.gpu.Start = probe.Health()
	m.GPU = r.gpu.Start.Name
	m.GPUKey = "gpu:" + m.GPU
	if p, ok := LookupGPUPart(m.GPU); ok {
		r.part = &p
		m.GPUKey = "gpu:" + p.Name
	}
	r.gpu.OtherProcs = otherProcesses(r.gpu.Start.Processes)
	r.watchGPU()
	return nil
}

// otherProcesses drops this process from a GPU's process list.
func otherProcesses(ps []telemetry.GPUProcess) []telemetry.GPUProcess {
	self := uint32(os.Getpid())
	out := []telemetry.GPUProcess{}
	for _, p := range ps {
		if p.PID != self {
			out = append(out, p)
		}
	}
	return out
}

// gpuPeriod is how often the GPU is read while the run goes.
const gpuPeriod = 250 * time.Millisecond

// watchGPU reads the GPU every gpuPeriod until closeGPU.
func (r *runner) watchGPU() {
	done := make(chan struct{})
	finished := make(chan struct{})
	start := r.gpu.Start
	go func() {
		defer close(finished)
		t := time.NewTicker(gpuPeriod)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				l := r.probe.Load()
				r.gpuMu.Lock()
				r.gpu.add(l)
				r.gpuMu.Unlock()
				r.emitFn(Event{Kind: EventGPU, GPU: &l, MaxSMMHz: start.MaxSMClockMHz, PowerLimitW: start.PowerLimitW,
					SlowdownC: start.SlowdownTempC})
			}
		}
	}()
	r.stopGP = func() { close(done); <-finished }
}

// add folds one reading into the state: clocks and throttling only while
// the GPU is busy (an idle GPU drops its clocks and link on purpose).
func (g *GPUState) add(l telemetry.GPULoad) {
	g.Samples++
	g.MaxPowerW = max(g.MaxPowerW, l.PowerW)
	g.MaxTempC = max(g.MaxTempC, l.TempC)
	if l.UtilPct < 50 {
		return
	}
	g.busySamples++
	g.clockSum += float64(l.SMClockMHz)
	g.MeanSMClock = g.clockSum / float64(g.busySamples)
	if g.MinSMClock == 0 || l.SMClockMHz < g.MinSMClock {
		g.MinSMClock = l.SMClockMHz
	}
	g.ThrottleMask |= l.ThrottleMask &^ nvml.ClocksEventReasonGpuIdle
	g.Throttle = telemetry.ThrottleReasons(g.ThrottleMask)
	g.MaxPCIeGen, g.MaxPCIeWidth = max(g.MaxPCIeGen, l.PCIeGen), max(g.MaxPCIeWidth, l.PCIeWidth)
}

func (r *runner) closeGPU() {
	if r.stopGP != nil {
		r.stopGP()
		r.stopGP = nil
	}
	if r.probe != nil {
		r.probe.Close()
		r.probe = nil
	}
}

// ownCPUSeconds is the CPU time of this process and its reaped children
// (the workers).
func ownCPUSeconds() float64 {
	var total float64
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += tv(ru.Utime) + tv(ru.Stime)
		}
	}
	return total
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// loadWindow measures what other processes use while this one waits.
func (r *runner) loadWindow(ctx context.Context) error {
	window := r.pick(time.Second, 200*time.Millisecond, 20*time.Millisecond)
	t0, err := telemetry.ReadCPUTimes()
	if err != nil {
		return err
	}
	own0 := ownCPUSeconds()
	start := time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(window):
	}
	t1, err := telemetry.ReadCPUTimes()
	if err != nil {
		return err
	}
	wall := time.Since(start).Seconds()
	d := t1.Sub(t0)
	r.rep.CPU.OtherBefore = round1(max(0, d.Busy-(ownCPUSeconds()-own0)) / wall)
	r.times0, r.own0, r.timesOK = t1, ownCPUSeconds(), true
	return nil
}

// pick is normal, quick or tiny by the configuration.
func (r *runner) pick(normal, quick, tiny time.Duration) time.Duration {
	switch {
	case r.cfg.tiny:
		return tiny
	case r.cfg.Quick:
		return quick
	}
	return normal
}

// measureClock measures the all-core clock on the cores the run uses.
func (r *runner) measureClock(ctx context.Context) error {
	dur := r.pick(500*time.Millisecond, 150*time.Millisecond, 20*time.Millisecond)
	r.rep.CPU.Freq = telemetry.ReadCPUFreq(r.cfg.FS)
	c, err := MeasureClock(ctx, r.threads, dur)
	switch {
	case err == nil:
		r.rep.CPU.Clock = &c
		r.clockGHz, r.clockFrom = c.GHz, "measured"
		r.emit(Event{Kind: EventSample, Value: c.GHz, Unit: "GHz"})
	case errors.Is(err, ErrNoClockMeasure):
		// Fall back to what the kernel or the CPU says.
		switch f := r.rep.CPU.Freq; {
		case f.MaxMHz > 0:
			r.clockGHz, r.clockFrom = f.MaxMHz/1000, "cpuinfo_max_freq"
		case cpuid.CPU.BoostFreq > 0:
			r.clockGHz, r.clockFrom = float64(cpuid.CPU.BoostFreq)/1e9, "boost clock (cpuid)"
		case f.NominalMHz > 0:
			r.clockGHz, r.clockFrom = f.NominalMHz/1000, "nominal clock (/proc/cpuinfo)"
		}
		return nil
	default:
		return err
	}
	return nil
}

// hostMemory measures the host's copy bandwidth.
func (r *runner) hostMemory(ctx context.Context) error {
	size, dur := int64(128<<20), r.pick(500*time.Millisecond, 200*time.Millisecond, time.Millisecond)
	switch {
	case r.cfg.tiny:
		size = 4 << 20
	case r.cfg.Quick:
		size = 64 << 20
	}
	l := Line{ID: "cpu.memory.copy", Group: GroupMemory, Device: "cpu", Name: "host memory copy", Unit: "GB/s"}
	m, err := MeasureHostMemory(ctx, r.threads, size, dur)
	if err != nil {
		l.Error, l.Verdict = err.Error(), Fault
		r.add(l)
		return nil
	}
	l.Value = round1(m.GBs)
	l.Note = fmt.Sprintf("%d MiB copied by %d threads, best of %d rounds; read + write bytes", size>>20, m.Threads, m.Rounds)
	r.reference(&l, refQuery{Kind: "memory", Item: "host-copy", EP: "cpu", MachineKey: r.rep.Machine.CPUKey})
	r.add(l)
	return nil
}

// judge judges l, or in a quick run only computes its percentage: small
// sizes and short runs are a smoke test, not a qualification.
func (r *runner) judge(l *Line, s share) {
	if !r.cfg.Quick {
		judge(l, s)
		return
	}
	if l.Expected > 0 && l.Value > 0 && l.Error == "" {
		l.Percent = round1(100 * l.Value / l.Expected)
	}
	if l.Error == "" {
		l.Verdict = Info
		l.Note = strings.TrimPrefix(l.Note+"; quick run: sizes too small to judge", "; ")
	}
}

// reference judges l against the reference table's row for q, if any.
func (r *runner) reference(l *Line, q refQuery) {
	basis, context := matchReferences(r.refs, q)
	if basis != nil {
		l.Expected = basis.Value
		l.Basis = "reference " + basis.describe()
		r.judge(l, shareReference)
	} else {
		l.Verdict = Info
		l.Note = strings.TrimPrefix(l.Note+"; no reference for this machine (add one to the reference table)", "; ")
	}
	for _, c := range context {
		l.Note += fmt.Sprintf("; %s on %s (%s): %.0f %s", c.Engine, c.Machine, c.Date, c.Value, c.Unit)
	}
}

// cacheDir is where the GEMM models go.
func (r *runner) cacheDir() (string, error) {
	if r.cfg.CacheDir != "" {
		return r.cfg.CacheDir, nil
	}
	models, err := zoo.CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(models), "doctor"), nil
}

// runWorker runs one measurement in a worker process, turning its live
// samples into events through value (samples/s → the line's unit).
func (r *runner) runWorker(ctx context.Context, spec worker.Spec, value func(float64) float64, unit string, expected float64) (worker.Result, error) {
	opts := r.cfg.Worker
	spec.ORTLib = r.cfg.ORTLib
	if spec.EP == "cuda" {
		opts.Env = append(slices.Clone(opts.Env), study.CUDALibraryEnv(r.cfg.ORTLib))
	}
	opts.Timeout = r.pick(3*time.Minute, time.Minute, time.Minute)
	opts.OnEvent = func(ev worker.Event) {
		if ev.Kind == worker.KindSample && ev.Sample != nil && ev.Sample.Throughput > 0 {
			r.emit(Event{Kind: EventSample, Phase: ev.Sample.Phase, Value: value(ev.Sample.Throughput), Unit: unit, Expected: expected})
		}
	}
	out := worker.Run(ctx, spec, opts)
	if out.Err != nil {
		msg := out.Err.Error()
		if tail := strings.TrimSpace(out.StderrTail); tail != "" && !strings.Contains(msg, tail) {
			msg += " (worker stderr: " + lastLine(tail) + ")"
		}
		return worker.Result{}, errors.New(msg)
	}
	var res worker.Result
	if err := json.Unmarshal(out.Result, &res); err != nil {
		return res, fmt.Errorf("worker result: %w", err)
	}
	return res, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// cached is a model doctor builds into its cache: a GEMM or a stream.
type cached interface {
	Ensure(dir string) (string, error)
}

// measure finds or builds m in the cache, runs it in a worker with spec
// for about dur, and sets l.Value to the throughput in rows per second ×
// perRow (the line's unit per row). A GPU run goes to the configured GPU.
func (r *runner) measure(ctx context.Context, m cached, spec worker.Spec, perRow float64, dur time.Duration, l *Line) (worker.Result, error) {
	dir, err := r.cacheDir()
	if err != nil {
		return worker.Result{}, err
	}
	if spec.ModelPath, err = m.Ensure(dir); err != nil {
		return worker.Result{}, err
	}
	if spec.EP == "cuda" {
		spec.GPUIndex = r.cfg.GPU
		if r.cfg.GPU != 0 {
			spec.Extra = map[string]string{"device_id": fmt.Sprint(r.cfg.GPU)}
		}
	}
	r.loopBounds(&spec, dur)
	res, err := r.runWorker(ctx, spec, func(rows float64) float64 { return rows * perRow }, l.Unit, l.Expected)
	if err == nil {
		l.Value = round1(res.Metrics.Throughput * perRow)
	}
	return res, err
}

// loopBounds are the worker's loop settings for a measurement: a short
// warm-up (the models are small and fixed; a loaded machine never settles
// anyway) and a timed phase of dur with at least three runs, so a slow run
// on a busy machine cannot stretch the check past its minute.
func (r *runner) loopBounds(spec *worker.Spec, dur time.Duration) {
	spec.Duration, spec.MinWarmup, spec.MaxWarmup, spec.MinRuns = dur, 3, 8, 3
	if r.cfg.Quick || r.cfg.tiny {
		spec.Duration, spec.MaxRuns, spec.MaxWarmup = 200*time.Millisecond, 3, 5
	}
}

// cpuGEMM measures one CPU GEMM precision.
func (r *runner) cpuGEMM(ctx context.Context, p Precision) error {
	g := GEMM{Precision: p, K: 1024, Layers: 4}
	rows := max(1024, 256*r.threads)
	if r.cfg.Quick || r.cfg.tiny {
		g, rows = GEMM{Precision: p, K: 256, Layers: 2}, 256
	}
	unit, name := "GFLOP/s", "FP32 GEMM (MatMul)"
	if p == INT8 {
		unit, name = "GOPS", "INT8 GEMM (DynamicQuantizeMatMul)"
	}
	l := Line{ID: "cpu.gemm." + string(p), Group: GroupCompute, Device: "cpu", Name: name, Unit: unit,
		Note: fmt.Sprintf("%d×%d × %d×%d, %d layers, %d threads", rows, g.K, g.K, g.K, g.Layers, r.threads)}
	rate, rerr := CPURate(r.spec)
	if rerr == nil && r.clockGHz > 0 {
		perCycle, isa := rate.FP32, rate.FP32ISA
		if p == INT8 {
			perCycle, isa = rate.INT8, rate.INT8ISA
		}
		l.Expected = round1(CPUPeak(r.threads, r.clockGHz, perCycle))
		l.Basis = fmt.Sprintf("theoretical peak: %d cores × %.2f GHz (%s) × %.0f per cycle (%s)", r.threads, r.clockGHz, r.clockFrom, perCycle, isa)
	} else if rerr != nil {
		l.Note += "; " + rerr.Error()
	}
	spec := worker.Spec{Precision: string(p), EP: "cpu", Batch: rows, Threads: r.threads, GFLOPs: g.FLOPsPerRow() / 1e9}
	if _, err := r.measure(ctx, g, spec, g.FLOPsPerRow()/1e9, 2*time.Second, &l); err != nil {
		l.Error, l.Verdict = err.Error(), Fault
		r.add(l)
		return nil
	}
	s := shareCPUFP32
	if p == INT8 {
		s = shareCPUINT8
	}
	r.judge(&l, s)
	r.add(l)
	if p == FP32 {
		r.fp32GFLOPs = l.Value
	} else if r.fp32GFLOPs > 0 && l.Value > 0 {
		r.add(r.speedupLine(l.Value/r.fp32GFLOPs, rate.INT8ISA))
	}
	return nil
}

// speedupLine judges INT8 against FP32 on the CPU.
func (r *runner) speedupLine(ratio float64, isa string) Line {
	want := minINT8Speedup(isa)
	l := Line{ID: "cpu.gemm.int8_speedup", Group: GroupCompute, Device: "cpu", Name: "INT8 / FP32 GEMM",
		Value: float64(int64(ratio*100+0.5)) / 100, Unit: "×",
		Verdict: OK, Note: fmt.Sprintf("%s should give at least %.0f×", orUnknown(isa), want)}
	if r.cfg.Quick {
		l.Verdict, l.Note = Info, l.Note+"; quick run: sizes too small to judge"
	} else if ratio < want {
		l.Verdict = Below
		l.Cause = "INT8 gains less over FP32 than the ISA allows"
		l.Next = "check that ONNX Runtime's MLAS uses the " + isa + " kernels (an old ONNX Runtime build, or a hypervisor hiding the feature)"
	}
	return l
}

// gpuGEMM measures one GPU GEMM precision.
func (r *runner) gpuGEMM(ctx context.Context, p Precision) error {
	g := GEMM{Precision: p, K: 4096, Layers: 8, GPU: p == INT8}
	rows := 8192
	switch {
	case r.cfg.tiny:
		g.K, g.Layers, rows = 64, 2, 64
	case r.cfg.Quick:
		g.K, g.Layers, rows = 1024, 2, 1024
	}
	dev := fmt.Sprintf("gpu%d", r.cfg.GPU)
	unit := "TFLOP/s"
	if p == INT8 {
		unit = "TOPS"
	}
	names := map[Precision]string{FP32: "FP32 GEMM (strict, TF32 off)", TF32: "TF32 GEMM", FP16: "FP16 GEMM", INT8: "INT8 GEMM (MatMulInteger)"}
	shape := fmt.Sprintf("%d×%d × %d×%d, %d layers", rows, g.K, g.K, g.K, g.Layers)
	if g.GPU {
		shape = fmt.Sprintf("%d×%d × %d×%d, one GEMM", rows, g.K, g.K, g.K*g.Layers)
	}
	l := Line{ID: "gpu.gemm." + string(p), Group: GroupCompute, Device: dev, Name: names[p], Unit: unit, Note: shape}
	l.Expected, l.Basis = r.gpuPeak(p)
	spec := worker.Spec{Precision: string(p), EP: "cuda", Batch: rows, GFLOPs: g.FLOPsPerRow() / 1e9, RequireEP: true}
	switch p {
	case FP32:
		spec.CUDA = map[string]string{cudaopt.TF32: "0"}
	case TF32:
		spec.CUDA = map[string]string{cudaopt.TF32: "1"}
	}
	if _, err := r.measure(ctx, g, spec, g.FLOPsPerRow()/1e12, 2*time.Second, &l); err != nil {
		l.Error = err.Error()
		l.Verdict = Fault
		if strings.Contains(l.Error, "lacks kernels") {
			l.Verdict, l.Note = Info, "not run: the CUDA EP does not run this precision on the GPU"
		}
		r.add(l)
		return nil
	}
	r.judge(&l, shareGPUGEMM[p])
	r.add(l)
	return nil
}

// gpuPeak is the theoretical peak of the measured GPU for p, TFLOP/s, and
// how it was computed; 0 when the architecture or SM count is unknown.
func (r *runner) gpuPeak(p Precision) (float64, string) {
	h := r.gpu.Start
	cc := h.ComputeCapability
	if r.part != nil {
		cc = r.part.Compute
	}
	arch, ok := LookupGPUArch(cc)
	if !ok || arch.Rate(p) == 0 {
		return 0, ""
	}
	var sms int
	var mhz float64
	var src string
	if r.part != nil {
		sms, mhz = r.part.SMs, r.part.TensorMHz
		if p == FP32 {
			mhz = r.part.VectorMHz
		}
		src = r.part.Name + " datasheet clock"
	} else if h.Cores > 0 && h.MaxSMClockMHz > 0 {
		sms, mhz, src = h.Cores/arch.CoresPerSM, float64(h.MaxSMClockMHz), "NVML max SM clock"
	} else {
		return 0, ""
	}
	kind := "tensor cores, dense"
	if p == FP32 {
		kind = "CUDA cores"
	}
	return round1(GPUPeakTFLOPS(sms, mhz, arch.Rate(p))),
		fmt.Sprintf("theoretical peak: %d SMs × %.0f MHz (%s) × %.0f per SM per clock (%s, %s)", sms, mhz, src, arch.Rate(p), arch.Name, kind)
}

// gpuStream measures device memory bandwidth and host↔device copies.
func (r *runner) gpuStream(ctx context.Context) error {
	s, rows := Stream{Elems: 1 << 20, Layers: 8}, 64
	if r.cfg.Quick || r.cfg.tiny {
		s, rows = Stream{Elems: 1 << 18, Layers: 4}, 16
	}
	dev := fmt.Sprintf("gpu%d", r.cfg.GPU)
	l := Line{ID: "gpu.memory.device", Group: GroupMemory, Device: dev, Name: "device memory (element-wise)", Unit: "GB/s",
		Note: fmt.Sprintf("%d MiB tensor, %d read+write passes per run", int64(rows)*int64(s.Elems)*4>>20, s.Layers)}
	h := r.gpu.Start
	switch {
	case r.part != nil:
		l.Expected, l.Basis = r.part.MemoryGBs, r.part.Name+" datasheet memory bandwidth"
	case h.MemBusWidth > 0 && h.MaxMemClockMHz > 0:
		l.Expected = round1(float64(h.MemBusWidth) / 8 * float64(h.MaxMemClockMHz) * 2 / 1000)
		l.Basis = fmt.Sprintf("%d-bit bus × %d MHz × 2 (double data rate), from NVML", h.MemBusWidth, h.MaxMemClockMHz)
	}
	spec := worker.Spec{Precision: "fp32", EP: "cuda", Batch: rows, TransferRounds: 3}
	res, err := r.measure(ctx, s, spec, s.BytesPerRow()/1e9, 2*time.Second, &l)
	if err != nil {
		l.Error, l.Verdict = err.Error(), Fault
		r.add(l)
		return nil
	}
	r.judge(&l, shareDeviceMemory)
	r.add(l)

	link := h.PCIe
	for _, t := range res.Transfers {
		for _, dir := range []string{"h2d", "d2h"} {
			v, name := t.H2DGBs, "host → device"
			if dir == "d2h" {
				v, name = t.D2HGBs, "device → host"
			}
			c := Line{ID: "gpu.pcie." + dir + "." + t.Host, Group: GroupMemory, Device: dev, Name: fmt.Sprintf("PCIe %s (%s)", name, t.Host),
				Value: round1(v), Unit: "GB/s", Note: fmt.Sprintf("%d MiB copies, best of %d", t.Bytes>>20, t.Rounds)}
			if link != nil {
				c.Expected = round1(PCIeGBs(link.MaxGen, link.MaxWidth))
				c.Basis = fmt.Sprintf("PCIe Gen%d x%d raw rate", link.MaxGen, link.MaxWidth)
			}
			sh := sharePCIePinned
			if t.Host == "pageable" {
				sh = sharePCIePageable
			}
			r.judge(&c, sh)
			r.add(c)
		}
	}
	for _, n := range res.TransferNotes {
		r.warn("%s", n)
	}
	return nil
}

// inferenceModel is one reference inference.
type inferenceModel struct {
	model, precision string
	batch            int
}

// inferenceModels are the reference inferences for the EP measured: at its
// best precision (FP16 on CUDA; INT8 on a CPU with VNNI or AMX, else FP32).
func (r *runner) inferenceModels() []inferenceModel {
	if r.cfg.Quick {
		p := "fp32"
		if r.host.CPU.INT8.Fast {
			p = "int8"
		}
		if r.cuda {
			p = "fp16"
		}
		return []inferenceModel{{"deit-tiny", p, 1}}
	}
	if r.cuda {
		return []inferenceModel{{"deit-tiny", "fp16", 32}, {"vit-base-16", "fp16", 32}}
	}
	p := "fp32"
	if r.host.CPU.INT8.Fast {
		p = "int8"
	}
	return []inferenceModel{{"deit-tiny", p, 8}, {"vit-base-16", p, 1}}
}

// inference runs one reference inference and compares it with the table.
func (r *runner) inference(ctx context.Context, m inferenceModel) error {
	ep := r.rep.Machine.EP
	dev, key := "cpu", r.rep.Machine.CPUKey
	if ep == "cuda" {
		dev, key = fmt.Sprintf("gpu%d", r.cfg.GPU), r.rep.Machine.GPUKey
	}
	l := Line{ID: "inference." + m.model, Group: GroupInference, Device: dev, Unit: "samples/s",
		Name: fmt.Sprintf("%s %s b%d (%s, fused)", m.model, strings.ToUpper(m.precision), m.batch, strings.ToUpper(ep))}
	exp := study.Experiment{Model: m.model, Precision: m.precision, EP: ep, Batch: m.batch, Optimize: true}
	prep, err := r.cfg.Prepare.Prepare(ctx, exp)
	var res worker.Result
	if err == nil {
		spec := worker.Spec{ModelPath: prep.Path, Precision: m.precision, EP: ep, Batch: m.batch, GFLOPs: prep.GFLOPs, GPUIndex: r.cfg.GPU}
		if ep == "cpu" {
			spec.Threads = r.threads
		} else if r.cfg.GPU != 0 {
			spec.Extra = map[string]string{"device_id": fmt.Sprint(r.cfg.GPU)}
		}
		r.loopBounds(&spec, 2500*time.Millisecond)
		res, err = r.runWorker(ctx, spec, func(x float64) float64 { return x }, "samples/s", 0)
	}
	if err != nil {
		l.Error, l.Verdict = err.Error(), Fault
		r.add(l)
		return nil
	}
	l.Value = round1(res.Metrics.Throughput)
	l.Note = fmt.Sprintf("p50 %.1f ms", res.Metrics.Latency.P50Ms)
	r.reference(&l, refQuery{Kind: "inference", Item: m.model, Precision: m.precision, EP: ep, Batch: m.batch, Fused: true, MachineKey: key})
	r.add(l)
	return nil
}

// finish closes the health readings, judges the health lines, attributes
// causes and sets the overall verdict.
func (r *runner) finish() {
	rep := &r.rep
	if r.timesOK {
		if t1, err := telemetry.ReadCPUTimes(); err == nil {
			d := t1.Sub(r.times0)
			wall := d.Total() / float64(max(1, r.host.CPU.LogicalCores))
			if wall > 0 {
				rep.CPU.OtherDuring = round1(max(0, d.Busy-(ownCPUSeconds()-r.own0)) / wall)
			}
			if d.Total() > 0 {
				rep.CPU.StealPct = round1(100 * d.Steal / d.Total())
			}
		}
	}
	rep.Machine.LoadEnd = telemetry.LoadAverage()
	health := cpuHealthLines(rep.CPU, r.threads, rep.Machine.Virtual)
	if r.probe != nil {
		r.stopGP()
		r.stopGP = nil
		end := r.probe.Health()
		r.gpuMu.Lock()
		g := r.gpu
		r.gpuMu.Unlock()
		// Errors, retirements and processes may have appeared during the run.
		g.Start.ECC, g.Start.Retired, g.Start.Remapped = end.ECC, end.Retired, end.Remapped
		g.OtherProcs = mergeProcs(g.OtherProcs, otherProcesses(end.Processes))
		rep.GPU = &g
		health = append(health, gpuHealthLines(g, fmt.Sprintf("gpu%d", r.cfg.GPU))...)
	}
	for _, l := range health {
		r.add(l)
	}
	attribute(rep.Lines)
	rep.Verdict = OK
	for _, l := range rep.Lines {
		rep.Verdict = worse(rep.Verdict, l.Verdict)
	}
	rep.Seconds = round1(time.Since(r.start).Seconds())
}

func mergeProcs(a, b []telemetry.GPUProcess) []telemetry.GPUProcess {
	out := slices.Clone(a)
	for _, p := range b {
		if !slices.ContainsFunc(out, func(q telemetry.GPUProcess) bool { return q.PID == p.PID }) {
			out = append(out, p)
		}
	}
	return out
}
