package study

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/worker"
)

// TestMain lets this test binary be the worker: QS_STUDY_WORKER=serve runs
// the real worker.Serve; "crash" aborts like a native library would.
func TestMain(m *testing.M) {
	switch os.Getenv("QS_STUDY_WORKER") {
	case "":
		os.Exit(m.Run())
	case "serve":
		var spec worker.Spec
		json.NewDecoder(os.Stdin).Decode(&spec)
		em := worker.NewEmitter(os.Stdout)
		if err := worker.Serve(context.Background(), spec, em); err != nil {
			em.Emit(worker.Event{Kind: worker.KindError, Error: err.Error()})
			os.Exit(1)
		}
	case "crash-on-int4":
		var spec worker.Spec
		json.NewDecoder(os.Stdin).Decode(&spec)
		em := worker.NewEmitter(os.Stdout)
		if spec.Precision == "int4" {
			fmt.Fprintln(os.Stderr, "fatal: MatMulNBits kernel aborted")
			syscall.Exec("/bin/sh", []string{"sh", "-c", "kill -ABRT $$"}, os.Environ())
		}
		if err := worker.Serve(context.Background(), spec, em); err != nil {
			em.Emit(worker.Event{Kind: worker.KindError, Error: err.Error()})
			os.Exit(1)
		}
	case "kill-fp32":
		// The FP32 worker dies the way the OOM killer or kill -9 ends it.
		var spec worker.Spec
		json.NewDecoder(os.Stdin).Decode(&spec)
		em := worker.NewEmitter(os.Stdout)
		if spec.Precision == "fp32" {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		if err := worker.Serve(context.Background(), spec, em); err != nil {
			em.Emit(worker.Event{Kind: worker.KindError, Error: err.Error()})
			os.Exit(1)
		}
	}
}

// fakePreparer maps precisions to tiny MLP files whose weights differ a
// little, as a quantized variant's would.
type fakePreparer struct {
	dir string
	t   *testing.T
}

func (p fakePreparer) Prepare(ctx context.Context, e Experiment) (Prepared, error) {
	model, precision := e.Model, e.Precision
	if model == "missing" {
		return Prepared{}, fmt.Errorf("model %q: not in the catalog and no such file", model)
	}
	noise := map[string]float64{"fp32": 0, "int8": 0.02, "int4": 0.1}[precision]
	path := filepath.Join(p.dir, model+"-"+precision+".onnx")
	if _, err := os.Stat(path); err == nil {
		return Prepared{Path: path}, nil
	}
	rng := rand.New(rand.NewPCG(1, 1))
	w := make([]float32, 48*16)
	for i := range w {
		w[i] = float32(rng.NormFloat64()*0.1 + noise*rng.NormFloat64())
	}
	if precision == "fp16" { // an overflowed variant: NaN outputs
		w[0] = float32(math.Inf(1))
		w[1] = float32(math.Inf(-1))
	}
	b := onnx.NewBuilder("m", 17)
	b.AddInput("pixel_values", onnx.Float, onnx.Dims("batch", 3, 4, 4))
	b.AddInitializerFloat32("w", []int64{48, 16}, w)
	b.AddNode("Flatten", []string{"pixel_values"}, []string{"f"}, onnx.AttrInt("axis", 1))
	b.AddNode("MatMul", []string{"f", "w"}, []string{"logits"})
	b.AddOutput("logits", onnx.Float, onnx.Dims("batch", 16))
	m, err := b.Build()
	if err != nil {
		return Prepared{}, err
	}
	if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
		return Prepared{}, err
	}
	return Prepared{Path: path, Report: &quant.Report{Spec: precision}}, nil
}

func studyConfig(t *testing.T, dir string, mode string) RunConfig {
	t.Helper()
	if _, err := ort.Init(""); err != nil {
		if os.Getenv("QUANTSCOPE_REQUIRE_ORT") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	exe, _ := os.Executable()
	return RunConfig{
		Out:      filepath.Join(dir, "results.jsonl"),
		Prepare:  fakePreparer{dir: dir, t: t},
		Duration: 100 * time.Millisecond,
		Timeout:  time.Minute,
		Worker:   worker.Options{Exe: exe, Args: []string{"-test.run=^$"}, Env: []string{"QS_STUDY_WORKER=" + mode}},
	}
}

// TestStudyRunsRecordsAndSurvivesFailures: a crashing variant and an unknown
// model become failed records; the experiments after them run; fidelity and
// speedup come out for the variant that worked.
func TestStudyRunsRecordsAndSurvivesFailures(t *testing.T) {
	dir := t.TempDir()
	cfg := studyConfig(t, dir, "crash-on-int4")
	var stages []Stage
	cfg.OnUpdate = func(u Update) { stages = append(stages, u.Stage) }
	plan, _ := Plan(PlanConfig{Models: []string{"tiny", "missing"}, Precisions: []string{"int4", "int8"}, Batches: []int{2}, Threads: 1})
	recs, err := Run(context.Background(), plan, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 {
		t.Fatalf("%d records, want 6", len(recs))
	}
	byKey := map[string]Record{}
	for _, r := range recs {
		byKey[r.Experiment.Model+"/"+r.Experiment.Precision] = r
	}
	if r := byKey["tiny/int4"]; r.OK() || !strings.Contains(r.Reason, "crashed") || !strings.Contains(r.Stderr, "MatMulNBits") {
		t.Errorf("crashing variant: %+v", r)
	}
	if r := byKey["missing/fp32"]; r.OK() || !strings.Contains(r.Reason, "not in the catalog") {
		t.Errorf("unknown model: %+v", r)
	}
	int8 := byKey["tiny/int8"]
	if !int8.OK() || int8.Metrics.Fidelity == nil || int8.Metrics.Fidelity.CosineMean > 0.99999 || int8.Metrics.Fidelity.CosineMean < 0.9 {
		t.Fatalf("int8 variant: %+v", int8.Metrics)
	}
	if p := int8.Provider; p == nil || p.Name != "cpu" || p.Threads != 1 {
		t.Errorf("record's provider %+v, want cpu with 1 thread", p)
	}
	if int8.File.SHA256 == "" || int8.Metrics.Precision.Spec != "int8" {
		t.Errorf("record lacks file hash or precision report: %+v", int8.File)
	}
	rows := Summarize(recs)
	if !rows[2].HasBaseline || rows[2].Speedup <= 0 {
		t.Errorf("int8 row: %+v", rows[2])
	}
	fileRecs, warns, err := ReadResults(cfg.Out)
	if err != nil || len(warns) != 0 || len(fileRecs) != 6 {
		t.Errorf("results file: %d records, %v, %v", len(fileRecs), warns, err)
	}
	if len(stages) == 0 || stages[len(stages)-1] != StageFailed {
		t.Errorf("stages %v", stages)
	}
}

// A variant whose outputs overflow to NaN is measured and recorded like any
// other: its fidelity is stored (null in JSON, NaN when read back), the
// gate-relevant figures say it is not faithful, and nothing is lost.
func TestStudyRecordsNaNFidelity(t *testing.T) {
	dir := t.TempDir()
	cfg := studyConfig(t, dir, "crash-on-int4")
	plan, _ := Plan(PlanConfig{Models: []string{"tiny"}, Precisions: []string{"fp16"}, Batches: []int{2}, Threads: 1})
	if _, err := Run(context.Background(), plan, cfg); err != nil {
		t.Fatal(err)
	}
	recs, warns, err := ReadResults(cfg.Out)
	if err != nil || len(warns) != 0 || len(recs) != 2 {
		t.Fatalf("results file: %d records, %v, %v", len(recs), warns, err)
	}
	r := recs[1]
	if !r.OK() || r.Metrics.Fidelity == nil {
		t.Fatalf("NaN variant not recorded ok: %s %s", r.Status, r.Reason)
	}
	if f := r.Metrics.Fidelity; !math.IsNaN(f.CosineMean) || !math.IsNaN(f.MaxAbsError) || f.Top1 > 0.5 {
		t.Errorf("NaN variant's fidelity read back as %+v", f)
	}
	raw, _ := os.ReadFile(cfg.Out)
	if !strings.Contains(string(raw), `"cosine_mean":null`) {
		t.Errorf("results file does not hold null for the NaN cosine")
	}
}

// TestStudyResumeAfterKill: a study whose parent died mid-write leaves a torn
// line; the resumed study skips what was recorded ok and runs the rest.
func TestStudyResumeAfterKill(t *testing.T) {
	dir := t.TempDir()
	cfg := studyConfig(t, dir, "crash-on-int4")
	plan, _ := Plan(PlanConfig{Models: []string{"tiny"}, Precisions: []string{"int8"}, Batches: []int{1}, Threads: 1})
	if _, err := Run(context.Background(), plan[:1], cfg); err != nil {
		t.Fatal(err)
	}
	// The parent is killed while writing the int8 record.
	f, _ := os.OpenFile(cfg.Out, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"schema":1,"experiment":{"model":"tiny","precision":"int8"`)
	f.Close()

	cfg.Resume = true
	var skipped int
	cfg.OnUpdate = func(u Update) {
		if u.Stage == StageSkipped {
			skipped++
		}
	}
	recs, err := Run(context.Background(), plan, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 1 || len(recs) != 1 || recs[0].Experiment.Precision != "int8" || !recs[0].OK() {
		t.Fatalf("resume: skipped %d, ran %+v", skipped, recs)
	}
	all, warns, err := ReadResults(cfg.Out)
	if err != nil || len(all) != 2 || len(warns) != 1 {
		t.Errorf("after resume: %d records, warnings %v, %v", len(all), warns, err)
	}
}

func TestStudyCanceledKeepsRecorded(t *testing.T) {
	dir := t.TempDir()
	cfg := studyConfig(t, dir, "crash-on-int4")
	cfg.Duration = 2 * time.Second
	plan, _ := Plan(PlanConfig{Models: []string{"tiny"}, Precisions: []string{"int8"}, Threads: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cfg.OnUpdate = func(u Update) {
		if u.Stage == StageDone { // first experiment recorded: stop the study
			cancel()
		}
	}
	recs, err := Run(ctx, plan, cfg)
	if !errors.Is(err, context.Canceled) || len(recs) != 1 {
		t.Fatalf("canceled study: %d records, err %v", len(recs), err)
	}
	all, _, _ := ReadResults(cfg.Out)
	if len(all) != 1 {
		t.Errorf("results file has %d records, want the 1 finished", len(all))
	}
}

// TestResumeTrustsOnlyThisMachine: records another machine (other host,
// CPU, ONNX Runtime) wrote are not taken as done: the experiments run
// again here, with a warning that says why, and the summary shows this
// machine's numbers.
func TestResumeTrustsOnlyThisMachine(t *testing.T) {
	dir := t.TempDir()
	cfg := studyConfig(t, dir, "crash-on-int4")
	cfg.Host = Host{Hostname: "here", CPU: "this cpu", ORTVersion: "1.29.0"}
	plan, _ := Plan(PlanConfig{Models: []string{"tiny"}, Precisions: []string{"int8"}, Batches: []int{1}, Threads: 1})
	foreign := Host{Hostname: "elsewhere", CPU: "AMD EPYC 9654", ORTVersion: "1.22.0"}
	w, err := OpenWriter(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range plan {
		r := rec(e.Model, e.Precision, StatusOK)
		r.Experiment, r.Host = e, foreign
		r.Metrics.Throughput = 12345
		w.Append(r)
	}
	w.Close()

	cfg.Resume = true
	var warnings []string
	cfg.Warn = func(s string) { warnings = append(warnings, s) }
	recs, err := Run(context.Background(), plan, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("ran %d experiments, want both (the records were another machine's)", len(recs))
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "2 experiments") || !strings.Contains(warnings[0], "elsewhere (AMD EPYC 9654, ONNX Runtime 1.22.0)") {
		t.Errorf("warnings %q", warnings)
	}
	all, _, _ := ReadResults(cfg.Out)
	var here []Record
	for _, r := range all {
		if r.Host.Key() == cfg.Host.Key() {
			here = append(here, r)
		}
	}
	if rows := Summarize(here); len(rows) != 2 || rows[0].Throughput == 12345 {
		t.Errorf("summary of this machine: %+v", rows)
	}

	// A second resume on this machine skips both.
	warnings = nil
	recs, err = Run(context.Background(), plan, cfg)
	if err != nil || len(recs) != 0 || len(warnings) != 0 {
		t.Errorf("second resume: ran %d, %v, warnings %q", len(recs), err, warnings)
	}
}

// TestResumeMeasuresFidelityAfterBaselineKilled: the FP32 worker is killed;
// the variant runs without a reference and says so; --resume runs FP32
// again and then the variant, whose new record (with fidelity) supersedes
// the old one rather than folding in as a repeat.
func TestResumeMeasuresFidelityAfterBaselineKilled(t *testing.T) {
	dir := t.TempDir()
	cfg := studyConfig(t, dir, "kill-fp32")
	plan, _ := Plan(PlanConfig{Models: []string{"tiny"}, Precisions: []string{"int8"}, Batches: []int{2}, Threads: 1})
	recs, err := Run(context.Background(), plan, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].OK() || !strings.Contains(recs[0].Reason, "SIGKILL") {
		t.Fatalf("killed baseline: %+v", recs)
	}
	if v := recs[1]; !v.OK() || v.Metrics.Fidelity != nil || !strings.Contains(v.Note, "fidelity not measured") {
		t.Fatalf("variant without a baseline: ok %v fidelity %v note %q", v.OK(), v.Metrics.Fidelity, v.Note)
	}

	// Resumed while the baseline still dies: the variant is not measured
	// again for nothing.
	cfg.Resume = true
	recs, err = Run(context.Background(), plan, cfg)
	if err != nil || len(recs) != 1 || recs[0].Experiment.Precision != "fp32" {
		t.Fatalf("resume with the baseline still failing: %d records, %v", len(recs), err)
	}

	cfg.Worker.Env = []string{"QS_STUDY_WORKER=crash-on-int4"} // the real worker
	recs, err = Run(context.Background(), plan, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || !recs[0].OK() || !recs[1].OK() || recs[1].Metrics.Fidelity == nil || recs[1].Note != "" {
		t.Fatalf("resume after the baseline recovered: %+v", recs)
	}
	all, _, _ := ReadResults(cfg.Out)
	rows := Summarize(all)
	if len(rows) != 2 || rows[1].Runs != 1 || rows[1].Last.Metrics.Fidelity == nil || !rows[1].HasBaseline {
		t.Errorf("summary: %+v", rows)
	}
	if recs[0].RunID == "" || recs[0].RunID != recs[1].RunID || all[1].RunID == recs[0].RunID {
		t.Errorf("run ids: %q %q, earlier run %q", recs[0].RunID, recs[1].RunID, all[1].RunID)
	}
}

// TestMemoryCheckedBeforeRunning: an experiment whose weights and batch
// activations exceed the memory it can use is recorded failed, with the
// estimate and the largest batch that fits, without starting a worker;
// one close to the limit runs with a warning.
func TestMemoryCheckedBeforeRunning(t *testing.T) {
	dir := t.TempDir()
	cfg := studyConfig(t, dir, "crash-on-int4")
	cfg.Worker.Exe = "/nonexistent/worker" // a started worker would fail differently
	plan, _ := Plan(PlanConfig{Models: []string{"tiny"}, Batches: []int{100000}, Threads: 1})
	// The tiny model's input is 3×4×4 floats: 100000 samples need at
	// least 19 MB of activations.
	cfg.AvailableMemory = func(string) (int64, string, bool) { return 8 << 20, "available", true }
	recs, err := Run(context.Background(), plan, cfg)
	if err != nil || len(recs) != 1 {
		t.Fatal(recs, err)
	}
	r := recs[0]
	if r.OK() || !strings.HasPrefix(r.Reason, "not run: tiny at batch 100000 needs at least") || !strings.Contains(r.Reason, "and 8.0 MiB is available; try --batch") {
		t.Errorf("reason %q", r.Reason)
	}
	est, err := EstimateMemory(r.File.Path, 100000, 0)
	if err != nil || est.PerSampleBytes < 4*48 || est.FitsBatch(8<<20) >= 100000 {
		t.Errorf("estimate %+v, %v", est, err)
	}

	var warnings []string
	cfg.Warn = func(s string) { warnings = append(warnings, s) }
	need := est.Total()
	cfg.AvailableMemory = func(string) (int64, string, bool) { return need + need/10, "available", true }
	os.Remove(cfg.Out)
	recs, _ = Run(context.Background(), plan, cfg)
	if len(warnings) != 1 || !strings.Contains(warnings[0], "close to the limit") || strings.HasPrefix(recs[0].Reason, "not run") {
		t.Errorf("near the limit: warnings %q, reason %q", warnings, recs[0].Reason)
	}
}
