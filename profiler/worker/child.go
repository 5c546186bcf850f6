package worker

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/ort/cudaopt"
	"github.com/quantscope/quantscope/profiler/telemetry"
)

// Result is the payload of a worker's result event.
type Result struct {
	Metrics    bench.Metrics     `json:"metrics"`
	FileSHA256 string            `json:"file_sha256"`
	FileBytes  int64             `json:"file_bytes"` // model file plus external data
	ORTVersion string            `json:"ort_version"`
	EP         string            `json:"ep"`
	EPRoute    string            `json:"ep_route,omitempty"`   // builtin or plugin
	EPReason   string            `json:"ep_reason,omitempty"`  // why auto chose EP
	EPOptions  map[string]string `json:"ep_options,omitempty"` // provider options in force (CUDA: ORT defaults filled in)
	Threads    int               `json:"threads"`
	FloorMs    float64           `json:"floor_ms"` // per-call latency of a trivial model

	// CUDAGraph says whether CUDA graphs were requested and active, and
	// why not when they fell back; nil when not requested.
	CUDAGraph *cudaopt.GraphStatus `json:"cuda_graph,omitempty"`

	// Transfers are the host↔device copy rates Spec.TransferRounds asked
	// for; TransferNotes say why one is missing (no pinned memory on the
	// CPU EP, a host-bound session).
	Transfers     []ort.TransferRate `json:"transfers,omitempty"`
	TransferNotes []string           `json:"transfer_notes,omitempty"`
}

// boundModel is a session with its tensors allocated once: host tensors on
// the CPU EP, device-resident ones on GPU EPs (copies then only in CopyInputs
// and CopyOutputs, timed apart from Run).
type boundModel interface {
	Run() error
	Input(i int) []float32
	Output(i int) []float32
	CopyInputs() (time.Duration, error)
	CopyOutputs() (time.Duration, error)
	BatchSize() int
	DeviceResident() bool
	// EndProfile ends the profile the session was opened with and returns
	// it (see ort.Bound.EndProfile).
	EndProfile() (ort.Profile, error)
	Close() error
}

// hostBound adapts ort.Bound: its tensors are the host memory ORT reads.
type hostBound struct{ *ort.Bound }

func (h hostBound) CopyInputs() (time.Duration, error)  { return 0, nil }
func (h hostBound) CopyOutputs() (time.Duration, error) { return 0, nil }
func (h hostBound) BatchSize() int                      { return h.Batch }
func (h hostBound) DeviceResident() bool                { return false }
func (h hostBound) inputShape() []int64                 { return h.InShape[0] }

// deviceBound adapts ort.DeviceBound, seeding its inputs like Bound's.
type deviceBound struct{ *ort.DeviceBound }

func (d deviceBound) BatchSize() int       { return d.Batch }
func (d deviceBound) DeviceResident() bool { return true }
func (d deviceBound) inputShape() []int64  { return d.InShape[0] }

// binding says where openModel puts a model's tensors.
type binding int

const (
	bindForEP    binding = iota // device-resident on GPU EPs, host tensors on the CPU
	bindOnDevice                // IO binding in the EP's memory even on the CPU EP
)

// openModel binds the model for the configured EP: device-resident tensors
// on GPU EPs (or, with bindOnDevice, in the CPU EP's memory), host tensors
// on the CPU.
func openModel(path string, cfg ort.SessionConfig, batch int, bind binding) (boundModel, error) {
	if (cfg.EP == "" || cfg.EP == "cpu") && bind != bindOnDevice {
		b, err := ort.NewBound(path, cfg, batch, 1)
		if err != nil {
			return nil, err
		}
		return hostBound{b}, nil
	}
	d, err := ort.NewDeviceBound(path, cfg, batch)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 0x9e3779b97f4a7c15))
	for i := range d.InShape {
		in := d.Input(i)
		for j := range in {
			in[j] = float32(rng.NormFloat64())
		}
	}
	return deviceBound{d}, nil
}

// Serve runs the experiment in spec in this process and reports it through
// em: started, samples while it runs, then a result. A failure is returned
// (the caller emits it as an error event and exits non-zero). GPU telemetry,
// for GPU execution providers, comes from the real NVML.
func Serve(ctx context.Context, spec Spec, em *Emitter) error {
	return ServeWith(ctx, spec, em, nil)
}

// ServeWith is Serve with the NVML implementation given (a mock in tests;
// nil means nvml.New()).
func ServeWith(ctx context.Context, spec Spec, em *Emitter, lib nvml.Interface) error {
	return serve(ctx, spec, em, serveDeps{nvml: lib})
}

// serveDeps are what serve reads the machine through; tests substitute them.
type serveDeps struct {
	nvml     nvml.Interface                     // nil: nvml.New()
	cpuTimes func() (telemetry.CPUTimes, error) // nil: telemetry.ReadCPUTimes
}

func serve(ctx context.Context, spec Spec, em *Emitter, deps serveDeps) error {
	lib := deps.nvml
	if spec.Batch < 1 {
		spec.Batch = 1
	}
	info, err := ort.Init(spec.ORTLib)
	if err != nil {
		return err
	}
	search := ort.SystemCUDASearch()
	search.ORTLibDir = filepath.Dir(info.LibraryPath)
	choice, err := ort.ResolveEP(spec.EP, info, ort.FindCUDA(search))
	if err != nil {
		return err
	}
	threads := spec.Threads
	if threads <= 0 {
		threads = ort.PhysicalCores()
	}
	em.Emit(Event{Kind: KindStarted, Info: map[string]any{
		"pid": os.Getpid(), "model": spec.ModelPath, "ort_version": info.Version, "ep": choice.EP,
		"ep_route": choice.Route, "ep_reason": choice.Reason, "threads": threads,
	}})

	epOptions, optNote := providerOptions(choice.EP, spec)
	var res Result
	res.ORTVersion, res.EP, res.Threads = info.Version, choice.EP, threads
	res.EPRoute, res.EPReason = choice.Route, choice.Reason
	if optNote != "" {
		res.EPReason = strings.TrimPrefix(res.EPReason+"; "+optNote, "; ")
	}
	m := &res.Metrics

	loadStart := time.Now()
	res.FileSHA256, res.FileBytes, err = hashModelFiles(spec.ModelPath)
	if err != nil {
		return err
	}
	m.ColdStart.LoadMs = msSince(loadStart)

	before, err := telemetry.ReadProcMemory()
	if err != nil {
		return err
	}
	profDir, err := os.MkdirTemp("", "quantscope-profile-")
	if err != nil {
		return fmt.Errorf("profile directory: %w", err)
	}
	defer os.RemoveAll(profDir)
	cfg := ort.SessionConfig{IntraOpThreads: threads, EPOptions: epOptions, ImageSize: spec.ImageSize,
		ProfilePrefix: filepath.Join(profDir, "first-runs")}
	choice.Apply(&cfg)
	if choice.EP != "cpu" {
		// The working set on a GPU is device memory, less the CUDA
		// context's own share, measured here once, before the model loads.
		m.Memory.Device = "gpu"
		if b, err := gpuContextShare(cfg, spec, lib); err == nil {
			m.Memory.GPUContext = b
		} else {
			fmt.Fprintf(os.Stderr, "quantscope worker: CUDA context memory unknown: %v\n", err)
		}
		if before, err = telemetry.ReadProcMemory(); err != nil {
			return err
		}
	}
	// CUDA graphs replay fixed device addresses: they need device-resident
	// IO binding (which GPU EPs get anyway; forced here so it stays so).
	bind := bindForEP
	if spec.DeviceBinding || (choice.EP == "cuda" && cudaopt.GraphRequested(cfg.EPOptions)) {
		bind = bindOnDevice
	}
	// One session per experiment: its creation is timed, its first runs
	// give the node placement (and, with CUDA graphs, the replay check).
	var after telemetry.ProcMemory
	var afterErr error
	extra := opProfileRuns
	if spec.NoOpProfile {
		extra = 0
	}
	op, err := openProfiledRuns(cfg, func(c ort.SessionConfig) (boundModel, error) {
		bd, err := openModel(spec.ModelPath, c, spec.Batch, bind)
		if err == nil { // resident after load: before the first inference
			after, afterErr = telemetry.ReadProcMemory()
		}
		return bd, err
	}, extra)
	if err != nil {
		return err
	}
	if afterErr != nil {
		op.bd.Close()
		return afterErr
	}
	bd, cfg := op.bd, op.cfg
	defer bd.Close()
	res.EPOptions, res.CUDAGraph = recordedOptions(choice.EP, cfg.EPOptions), op.graph
	if g := op.graph; g != nil && !g.Active {
		fmt.Fprintf(os.Stderr, "quantscope worker: CUDA graphs requested but off: %s\n", g.Reason)
	}
	m.ColdStart.SessionMs = ms(op.session)
	m.ColdStart.FirstInferenceMs = ms(op.first)
	if op.placement != nil {
		m.Placement = op.placement
	} else {
		fmt.Fprintf(os.Stderr, "quantscope worker: node placement unknown: %v\n", op.placementErr)
	}
	if extra > 0 {
		m.OpProfile = opProfile(op.profile)
	}
	m.Memory.RSSBeforeLoad, m.Memory.RSSAfterLoad = before.RSS, after.RSS
	m.Memory.ResidentAfterLoad = after.RSS - before.RSS

	if spec.Reference != "" || spec.WriteReference != "" {
		if err := measureFidelity(ctx, bd, spec, m); err != nil {
			return err
		}
	}

	if spec.RequireEP {
		if err := requireEP(choice.EP, op.placement, op.placementErr); err != nil {
			return err
		}
	}

	if spec.Eval != nil {
		if err := measureAccuracy(ctx, bd, spec, m, em); err != nil {
			return err
		}
	}

	var prog bench.Progress
	gpu := openGPU(choice.EP, spec, telemetryIndex(spec, cfg), lib)
	if gpu != nil {
		defer gpu.sampler.Close()
	}
	// The working set is measured over warm-up and the timed loop: the
	// high-water mark restarts here. Contention is measured over the timed
	// loop, whose wall clock gives the throughput.
	// Garbage the Go side left (fidelity's inputs) is returned to the OS
	// first: it is not memory the configuration needs.
	debug.FreeOSMemory()
	peak := telemetry.StartPeakRSS()
	contention := bench.NewContentionMeter(deps.cpuTimes, threads)
	stopSampling := sample(em, &prog, spec, gpu, peak)
	loopCfg := bench.LoopConfig{Duration: spec.Duration, Iterations: spec.MaxRuns, MinWarmup: spec.MinWarmup, MaxWarmup: spec.MaxWarmup,
		MinIterations: spec.MinRuns, BeforeTimed: contention.Start}
	lr, err := bench.Loop(ctx, bd, loopCfg, &prog)
	stopSampling()
	if err != nil {
		return err
	}
	if c, err := contention.Stop(); err == nil {
		m.Contention = c
	} else {
		fmt.Fprintf(os.Stderr, "quantscope worker: contention not measured: %v\n", err)
	}
	if p, src, note, err := peak.Peak(); err == nil {
		m.Memory.SetHostPeak(p, src, note)
	} else {
		fmt.Fprintf(os.Stderr, "quantscope worker: peak memory not measured: %v\n", err)
	}
	m.WarmupRuns = lr.WarmupRuns
	m.Latency = bench.Summarize(lr.Durations)
	m.Throughput = lr.Throughput(spec.Batch)
	if spec.GFLOPs > 0 {
		m.TFLOPS = m.Throughput * spec.GFLOPs / 1000
	}
	if gpu != nil {
		gpu.run.Add(gpu.sampler.Sample()) // close the window at the loop's end
		gpu.fill(m, m.Throughput)
		m.Memory.SetGPUWorkingSet()
	}
	if spec.TransferRounds > 0 {
		res.Transfers, res.TransferNotes = measureTransfers(bd, spec.TransferRounds)
	}
	if floor, err := callFloor(threads); err == nil {
		res.FloorMs = floor
		m.OverheadFloor = m.Latency.P50Ms < 3*floor
	}
	payload, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	return em.Emit(Event{Kind: KindResult, Result: payload})
}

// epProviders maps an EP as requested to ONNX Runtime's provider name.
var epProviders = map[string]string{
	"cpu": ort.CPUProvider, "cuda": ort.CUDAProvider, "tensorrt": ort.TensorRTProvider,
}

// requireEP fails when ONNX Runtime placed any node of the model on another
// provider than ep's, naming where they went; placement is what the first
// runs' profile gave (placementErr why there is none).
func requireEP(ep string, placement map[string]int, placementErr error) error {
	want, ok := epProviders[ep]
	if !ok {
		return nil
	}
	if placement == nil {
		return fmt.Errorf("cannot check that every node runs on %s: node placement unknown: %v", want, placementErr)
	}
	return placedOn(placement, want)
}

// placedOn fails when placement p counts nodes on providers other than want.
func placedOn(p map[string]int, want string) error {
	var off []string
	for _, prov := range slices.Sorted(maps.Keys(p)) {
		if prov != want && p[prov] > 0 {
			off = append(off, fmt.Sprintf("%d on %s", p[prov], prov))
		}
	}
	if len(off) > 0 {
		return fmt.Errorf("%s lacks kernels for part of this model: %s of %d nodes ran elsewhere; not timed",
			want, strings.Join(off, ", "), sumCounts(p))
	}
	return nil
}

func sumCounts(p map[string]int) int {
	n := 0
	for _, v := range p {
		n += v
	}
	return n
}

// measureTransfers measures pageable then pinned host↔device copies of
// input 0; what cannot be measured is returned as a note.
func measureTransfers(bd boundModel, rounds int) ([]ort.TransferRate, []string) {
	db, ok := bd.(deviceBound)
	if !ok {
		return nil, []string{"transfers: the session reads host memory directly (no device-resident binding)"}
	}
	var rates []ort.TransferRate
	var notes []string
	for _, pinned := range []bool{false, true} {
		r, err := db.MeasureTransfer(pinned, rounds)
		if err != nil {
			notes = append(notes, "transfers: "+err.Error())
			continue
		}
		rates = append(rates, r)
	}
	return rates, notes
}

func msSince(t time.Time) float64 { return float64(time.Since(t)) / float64(time.Millisecond) }

// gpuWatch is the GPU telemetry of one experiment: a sampler and what it
// has gathered since the timed phase began.
type gpuWatch struct {
	sampler *telemetry.GPUSampler
	run     telemetry.GPURun
}

// telemetryIndex is the NVML index of the GPU the experiment runs on:
// spec.GPUIndex when set, else the CUDA session's device_id (the worker
// numbers CUDA devices in PCI bus order, as NVML does).
func telemetryIndex(spec Spec, cfg ort.SessionConfig) int {
	if spec.GPUIndex != 0 || cfg.EP != "cuda" {
		return spec.GPUIndex
	}
	id, _ := ort.DeviceIDOption(cfg.EPOptions) // validated when the session opened
	return id
}

// openGPU starts GPU telemetry of device index for GPU execution providers
// (or when the spec asks for it); no NVML or no GPU leaves it off with a
// note on stderr.
func openGPU(ep string, spec Spec, index int, lib nvml.Interface) *gpuWatch {
	if ep == "cpu" && !spec.GPUTelemetry {
		return nil
	}
	if lib == nil {
		lib = nvml.New()
	}
	s, err := telemetry.NewGPUSampler(lib, index, os.Getpid())
	if err != nil {
		fmt.Fprintf(os.Stderr, "quantscope worker: GPU telemetry off: %v\n", err)
		return nil
	}
	return &gpuWatch{sampler: s}
}

// fill writes the GPU figures into m: energy per sample from the counter (or
// the power integral), power, temperatures, clocks, throttling, and memory —
// the process's own from NVML's process list, else the device's peak,
// labelled device-wide with the reason.
func (g *gpuWatch) fill(m *bench.Metrics, throughput float64) {
	sum := g.run.Summary()
	if sum.Samples == 0 {
		return
	}
	e := &bench.Energy{
		Source: sum.EnergySource, MeanPowerW: sum.MeanPowerW, MaxPowerW: sum.MaxPowerW,
		TempStartC: sum.TempStartC, TempMaxC: sum.TempMaxC, SMClockMHz: sum.SMClockMHz, Throttle: sum.Throttle,
		SamplerCallUs: sum.CallLatency * 1e6,
	}
	if throughput > 0 {
		// Energy rate over the sampled window ÷ samples per second.
		e.JoulesPerSample = sum.JoulesPerSecond() / throughput
	}
	m.Energy = e
	if sum.ProcessOK {
		m.Memory.GPUBytes, m.Memory.GPUSource = int64(sum.ProcessMem), bench.GPUScopeProcess
	} else {
		m.Memory.GPUBytes, m.Memory.GPUSource = int64(sum.MemPeak), bench.GPUScopeDevice
		why := sum.ProcessReason
		if why == "" {
			why = "NVML's process list was not read"
		}
		m.Memory.GPUNote = "device-wide: memory in use on the whole GPU, other processes included (" + why + ")"
	}
	m.Memory.GPUPeak = int64(sum.MemPeak)
}

// sample emits a progress sample every spec.SampleMs until the returned stop
// function is called; with gpu set it also gathers GPU telemetry for the
// timed phase.
func sample(em *Emitter, p *bench.Progress, spec Spec, gpu *gpuWatch, peak *telemetry.PeakRSSWatch) (stop func()) {
	period := time.Duration(spec.SampleMs) * time.Millisecond
	if period <= 0 {
		period = 250 * time.Millisecond
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	host, _ := telemetry.NewHostSampler() // nil: RSS only
	go func() {
		defer close(finished)
		t := time.NewTicker(period)
		defer t.Stop()
		start, lastT := time.Now(), time.Now()
		var lastRuns int64
		var lastProc time.Time
		var proc telemetry.ProcessMemory
		procInRun := false
		var lastPhase bench.Phase
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				phase, runs := p.Snapshot()
				s := &Sample{Phase: phase, ElapsedS: now.Sub(start).Seconds(), Runs: int(runs),
					LatencyMs:  float64(p.LastNanos.Load()) / 1e6,
					Throughput: bench.Rate(lastPhase, lastRuns, phase, runs, spec.Batch, now.Sub(lastT).Seconds())}
				if host != nil {
					h := host.Sample(context.Background())
					s.RSS, s.CPUPct, s.SysMemUsed, s.CPUTempC = h.RSS, h.CPUPct, int64(h.SysMemUsed), h.CPUTempC
				} else if mem, err := telemetry.ReadProcMemory(); err == nil {
					s.RSS = mem.RSS
				}
				if peak != nil {
					peak.Observe(s.RSS) // the fallback when the high-water mark cannot be reset
				}
				if gpu != nil {
					g := gpu.sampler.Sample()
					// The process list costs milliseconds: read it once a
					// second, and as soon as the timed phase begins.
					measuring := phase == bench.PhaseMeasuring
					if now.Sub(lastProc) >= time.Second || (measuring && !procInRun) {
						lastProc = now
						proc = gpu.sampler.ProcessMemory()
						if measuring {
							gpu.run.AddProcessMemory(proc)
							procInRun = true
						}
					}
					if measuring {
						gpu.run.Add(g)
					}
					// The process's own memory when NVML lists it, else the
					// device's, other processes included: said in GPUScope.
					s.GPUBytes, s.GPUScope = int64(g.MemUsed), bench.GPUScopeDevice
					if proc.OK {
						s.GPUBytes, s.GPUScope = int64(proc.Bytes), bench.GPUScopeProcess
					}
					s.TempC, s.PowerW = float64(g.TempC), g.PowerW
				}
				lastPhase, lastRuns, lastT = phase, runs, now
				em.Emit(Event{Kind: KindSample, Sample: s})
			}
		}
	}()
	return func() { close(done); <-finished }
}

// fidelityInputs is what measureFidelity feeds: the spec's check inputs
// (quant.CheckInputs, seeded synthetic images normalised for the model) on
// an image input, else seeded N(0,1) noise; with the text the result
// records.
func fidelityInputs(bd boundModel, spec Spec) (n int, fill func(dst []float32, index int), what string) {
	in := quant.NewCheckInputs(spec.FidelitySamples, quant.DefaultCheckSeed, "", [3]float32{}, [3]float32{})
	if c := spec.FidelityInputs; c != nil {
		in = quant.NewCheckInputs(cmp.Or(spec.FidelitySamples, c.N), c.Seed, c.Norm, c.Mean, c.Std)
	}
	if s, ok := bd.(interface{ inputShape() []int64 }); ok {
		if sh := s.inputShape(); len(sh) == 4 && sh[1] > 0 && sh[2] > 0 && sh[3] > 0 {
			img := quant.ImageInput{Channels: int(sh[1]), Height: int(sh[2]), Width: int(sh[3])}
			return in.N, func(dst []float32, i int) { copy(dst, in.Sample(img, i)) }, in.String()
		}
	}
	return in.N, func(dst []float32, i int) {
		rng := rand.New(rand.NewPCG(in.Seed, uint64(i)))
		for k := range dst {
			dst[k] = float32(rng.NormFloat64())
		}
	}, fmt.Sprintf("%d seeded N(0,1) inputs (seed %d; the input is not an image)", in.N, in.Seed)
}

// measureFidelity runs the fidelity inputs through the model, batch by
// batch, and either writes them as the reference or compares with it.
func measureFidelity(ctx context.Context, bd boundModel, spec Spec, m *bench.Metrics) error {
	n, fill, what := fidelityInputs(bd, spec)
	batch := bd.BatchSize()
	outs, h2d, d2h, err := collectOutputs(ctx, bd, n, fill)
	if err != nil {
		return err
	}
	if bd.DeviceResident() {
		rounds := float64((n + batch - 1) / batch)
		m.CopyH2DMs = float64(h2d) / 1e6 / rounds
		m.CopyD2HMs = float64(d2h) / 1e6 / rounds
	}
	if spec.WriteReference != "" {
		if err := bench.WriteReference(spec.WriteReference, outs); err != nil {
			return err
		}
	}
	if spec.Reference != "" {
		ref, err := bench.ReadReference(spec.Reference)
		if err != nil {
			return err
		}
		f, err := fidelity.Compare(ref, outs)
		if err != nil {
			return fmt.Errorf("fidelity against %s: %w", spec.Reference, err)
		}
		f.Inputs = what
		m.Fidelity = &f
	}
	return nil
}

// hashModelFiles returns the SHA-256 of the model file and the total bytes
// of it and its external data files (those beside it that it names).
func hashModelFiles(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("open model %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read model %s: %w", path, err)
	}
	total := n
	if all, err := onnx.FilesSize(path); err == nil { // a missing data file fails the session, not this
		total = all
	}
	return hex.EncodeToString(h.Sum(nil)), total, nil
}

// callFloor measures the per-call latency of a trivial model (Identity on
// one float): the cost of a Run that does no work. A configuration whose
// latency is within a few times of it measures the harness, not the model.
func callFloor(threads int) (float64, error) {
	dir, err := os.MkdirTemp("", "quantscope-floor-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	path, err := writeTrivialModel(dir)
	if err != nil {
		return 0, err
	}
	bd, err := ort.NewBound(path, ort.SessionConfig{IntraOpThreads: threads}, 1, 1)
	if err != nil {
		return 0, err
	}
	defer bd.Close()
	lr, err := bench.Loop(context.Background(), bd, bench.LoopConfig{Iterations: 200, MaxWarmup: 20}, nil)
	if err != nil {
		return 0, err
	}
	return bench.Summarize(lr.Durations).P50Ms, nil
}
