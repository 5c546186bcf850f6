package tui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/muesli/termenv"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/telemetry"
	"github.com/quantscope/quantscope/profiler/worker"
)

// t0 is the fixed start of every test clock.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// fakeCatalog is a small fixed catalog.
type fakeCatalog struct{ err error }

func (c fakeCatalog) Models(context.Context) ([]ModelInfo, error) {
	if c.err != nil {
		return nil, c.err
	}
	return []ModelInfo{
		{Name: "deit-tiny", Family: "DeiT", Params: 5_717_416, GFLOPs: 1.26, Resolution: 224},
		{Name: "deit-small", Family: "DeiT", Params: 22_050_664, GFLOPs: 4.61, Resolution: 224},
		{Name: "vit-base-16", Family: "ViT", Params: 86_567_656, GFLOPs: 17.58, Resolution: 224},
		{Name: "dinov2-small", Family: "DINOv2", Params: 21_629_184, GFLOPs: 5.52, Resolution: 224},
		{Name: "mobilevit-xxs", Family: "MobileViT", Params: 1_272_024, GFLOPs: 0.36, Resolution: 256},
		{Name: "resnet-50", Family: "CNN", Params: 25_557_032, GFLOPs: 4.11, Resolution: 224},
	}, nil
}

func (c fakeCatalog) Cached(_ context.Context, names []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, n := range names {
		out[n] = n == "deit-tiny" || n == "resnet-50"
	}
	return out, nil
}

// okPreparer accepts everything.
type okPreparer struct{}

func (okPreparer) Prepare(_ context.Context, e study.Experiment) (study.Prepared, error) {
	return study.Prepared{Path: "/tmp/" + e.Model + "-" + e.Precision + ".onnx"}, nil
}

// cpuEnv is a CPU-only machine with ONNX Runtime loaded.
func cpuEnv() Environment {
	return Environment{
		Host: telemetry.HostInfo{Hostname: "bench-01", OS: "linux", Arch: "amd64",
			CPU: telemetry.CPUInfo{Model: "AMD EPYC 7B13 64-Core Processor", LogicalCores: 16, UsableCores: 16,
				INT8: telemetry.QuantVerdict{Fast: true, Summary: "INT8: VNNI present"},
				FP16: telemetry.QuantVerdict{Fast: false, Summary: "FP16: no native FP16 arithmetic on this CPU; ONNX Runtime converts back to FP32"}}},
		GPUStatus: telemetry.GPUStatus{State: telemetry.GPUStateNoNVML, Reason: "no driver"},
		ORT:       ort.Info{LibraryPath: "/opt/ort/libonnxruntime.so", Version: "1.29.0", Providers: []string{"CPUExecutionProvider"}},
		EPs:       []string{"cpu"},
		EPNotes:   []string{"cuda: no NVIDIA GPU"},
		StudyHost: study.Host{Hostname: "bench-01", CPU: "AMD EPYC 7B13", ORTVersion: "1.29.0"},
	}
}

// fixtureHost is the host the fixture's records ran on, as study.Run
// stamps them: the environment's StudyHost.
var fixtureHost = cpuEnv().StudyHost

// rec builds an ok record.
func rec(model, prec string, tput, p50 float64, rss, file int64, cos, top1 float64) study.Record {
	m := &bench.Metrics{
		Throughput: tput,
		Latency: bench.LatencyStats{Runs: 500, MeanMs: p50 * 1.05, StdMs: p50 * 0.08, MinMs: p50 * 0.9, P50Ms: p50,
			P90Ms: p50 * 1.15, P95Ms: p50 * 1.2, P99Ms: p50 * 1.4, MaxMs: p50 * 2, CV: 0.08},
		WarmupRuns: 12,
		Memory:     bench.Memory{RSSBeforeLoad: 40 << 20, RSSAfterLoad: 40<<20 + rss, ResidentAfterLoad: rss},
		Contention: &bench.Contention{WallS: 10, OthersCPUS: 0.3, CPUs: 16, Threads: 8, Share: 0.004},
		ColdStart:  bench.ColdStart{LoadMs: 12, SessionMs: 85, FirstInferenceMs: p50 * 3},
	}
	if prec != "fp32" {
		m.Fidelity = &fidelity.Result{Samples: 64, CosineMean: cos, CosineMin: cos - 0.001, Top1: top1, Top5: 1, MaxAbsError: 0.02, SQNRdB: 31.2,
			RefMedianMargin: 0.05, DecisiveTop1: 1, DecisiveSamples: 41, Inputs: "64 seeded synthetic images (seed 7, imagenet normalisation)"}
		m.Precision = &quant.Report{
			Spec: prec, NodesConverted: 48, NodesKept: 26, NodesBefore: 180, NodesAfter: 228,
			WeightBytes: map[int]int64{8: 5_300_000, 32: 410_000},
			Ops:         []quant.OpPrecision{{Op: "MatMul", Nodes: map[quant.Precision]int{quant.PrecInt8: 48, quant.PrecFP32: 24}}},
			Kept:        []quant.KeptNode{{Node: "attn/qk", Op: "MatMul", Reason: "activation × activation"}},
		}
	}
	// The peak working set: the resident model and 20 MiB the session
	// allocated while it ran.
	m.Memory.SetHostPeak(60<<20+rss, "high-water mark", "")
	return study.Record{
		Schema: study.SchemaVersion, Experiment: study.Experiment{Model: model, Precision: prec, EP: "cpu", Batch: 1}, Host: fixtureHost,
		File: study.ModelFile{Path: "/tmp/" + model + "-" + prec + ".onnx", Bytes: file}, Status: study.StatusOK,
		Started: t0, Finished: t0.Add(14 * time.Second), Metrics: m,
	}
}

func failedRec(model, prec, reason string) study.Record {
	return study.Record{Schema: 1, Experiment: study.Experiment{Model: model, Precision: prec, EP: "cpu", Batch: 1}, Host: fixtureHost,
		Status: study.StatusFailed, Reason: reason, Started: t0, Finished: t0.Add(2 * time.Second)}
}

// fixture drives a Model through Update with a fake clock, on a manual
// hub: nothing runs in the background, the test delivers every update.
type fixture struct {
	t   testing.TB
	hub *Hub
	m   Model
	now time.Time
}

func testOptions(f *fixture) Options {
	return Options{
		Catalog:    fakeCatalog{},
		Preparer:   okPreparer{},
		Out:        "results.jsonl",
		Profile:    termenv.Ascii,
		NoSpinner:  true,
		Now:        func() time.Time { return f.now },
		Precisions: []string{"int8"},
		Run: func(ctx context.Context, plan []study.Experiment, cfg study.RunConfig) ([]study.Record, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}
}

// newFixture builds a model of size w×h with the environment, catalog and
// (optionally) loaded records already delivered.
func newFixture(t testing.TB, w, h int, edit func(*Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, now: t0}
	o := testOptions(f)
	if edit != nil {
		edit(&o)
	}
	f.hub = newHub(context.Background(), o, true)
	f.m = f.hub.NewModel(ClientOptions{Profile: o.Profile, NoColor: o.NoColor})
	f.send(tea.WindowSizeMsg{Width: w, Height: h})
	f.env(cpuEnv())
	models, _ := fakeCatalog{}.Models(context.Background())
	f.send(catalogMsg{models: models})
	c, _ := fakeCatalog{}.Cached(context.Background(), nil)
	cached := map[string]bool{}
	for _, m := range models {
		cached[m.Name] = c[m.Name] || m.Name == "deit-tiny" || m.Name == "resnet-50"
	}
	f.send(cachedMsg{cached: cached})
	return f
}

func (f *fixture) send(msg tea.Msg) tea.Cmd {
	f.t.Helper()
	nm, cmd := f.m.Update(msg)
	f.m = nm.(Model)
	return cmd
}

// keyMsg turns a key name into a tea.KeyMsg.
func keyMsg(k string) tea.KeyMsg {
	switch k {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "shift+tab":
		return tea.KeyMsg{Type: tea.KeyShiftTab}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "left":
		return tea.KeyMsg{Type: tea.KeyLeft}
	case "right":
		return tea.KeyMsg{Type: tea.KeyRight}
	case "space":
		return tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	case "backspace":
		return tea.KeyMsg{Type: tea.KeyBackspace}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

// sync delivers what the hub published to the program and returns the
// program's answer.
func (f *fixture) sync() tea.Cmd {
	f.t.Helper()
	if msg, ok := f.m.me.take(); ok {
		return f.send(msg)
	}
	return nil
}

// env delivers the environment probe's result.
func (f *fixture) env(e Environment) {
	f.hub.setEnv(e)
	f.sync()
}

// loaded delivers the results files read at start.
func (f *fixture) loaded(msg loadedMsg) {
	f.hub.loaded(msg)
	f.sync()
}

// segmentDone ends the current segment's Run with err and returns the
// program's answer to what the hub published.
func (f *fixture) segmentDone(err error) tea.Cmd {
	f.t.Helper()
	return f.endSegment(f.hub.drv.seg, err)
}

// endSegment ends segment seg's Run with err.
func (f *fixture) endSegment(seg int, err error) tea.Cmd {
	f.t.Helper()
	f.hub.segmentDone(segmentDoneMsg{seg: seg, err: err})
	return f.sync()
}

// keys sends each key in turn (and delivers what the hub published in
// answer) and returns the last key's command.
func (f *fixture) keys(ks ...string) tea.Cmd {
	f.t.Helper()
	var last tea.Cmd
	for _, k := range ks {
		last = f.send(keyMsg(k))
		f.sync()
	}
	return last
}

// typeText sends each rune of s as a key.
func (f *fixture) typeText(s string) {
	for _, r := range s {
		f.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
		f.sync()
	}
}

// update feeds a runner update for plan position i of the current segment
// and lets the tick deliver it.
func (f *fixture) update(u study.Update) {
	f.t.Helper()
	f.hub.drv.feed.push(f.hub.drv.seg, u)
	f.hub.step()
	f.sync()
}

func (f *fixture) advance(d time.Duration) { f.now = f.now.Add(d) }

// plan returns the experiments of the current segment.
func (f *fixture) plan() []study.Experiment {
	var out []study.Experiment
	for _, i := range f.hub.drv.segMap[f.hub.drv.seg] {
		out = append(out, f.m.sess.entries[i].exp)
	}
	return out
}

// runExperiment plays one experiment of the plan from preparing to its
// record, with n samples of throughput tput.
func (f *fixture) runExperiment(i int, r study.Record, n int) {
	f.t.Helper()
	e := f.plan()[i]
	f.update(study.Update{Index: i, Experiment: e, Stage: study.StagePreparing})
	f.advance(time.Second)
	f.update(study.Update{Index: i, Experiment: e, Stage: study.StageRunning})
	for k := 0; k < n; k++ {
		f.advance(250 * time.Millisecond)
		phase := bench.PhaseMeasuring
		if k < 2 {
			phase = bench.PhaseWarmup
		}
		tp := r.Metrics.Throughput * (1 + 0.04*float64((k*7)%5-2)/2)
		f.update(study.Update{Index: i, Experiment: e, Stage: study.StageRunning, Sample: &worker.Sample{
			Phase: phase, ElapsedS: float64(k) / 4, Runs: k * 10, Throughput: tp, LatencyMs: r.Metrics.Latency.P50Ms * (1 + 0.1*float64(k%3)),
			RSS: 200<<20 + int64(k%4)<<20,
		}})
	}
	r.Experiment = e
	stage := study.StageDone
	if !r.OK() {
		stage = study.StageFailed
	}
	f.update(study.Update{Index: i, Experiment: e, Stage: stage, Record: &r})
}

// view returns the current frame with trailing spaces trimmed per line.
func (f *fixture) view() string {
	lines := strings.Split(f.m.View(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// startStudy selects models and precisions on the setup screen and
// presses enter.
func (f *fixture) startStudy(models ...string) {
	f.t.Helper()
	for _, m := range models {
		f.keys("/")
		f.typeText(m)
		f.keys("enter", "space", "esc")
	}
	f.keys("enter")
	if f.m.screen != screenDashboard {
		f.t.Fatalf("study did not start: %s", f.m.setup().err)
	}
}

var errBoom = errors.New("boom")
