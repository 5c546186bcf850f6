package report

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
)

// rec is a hand-made ok record: throughput in samples/s, memory in MiB.
func rec(model, prec string, batch int, tput float64, rssMiB int64, f *fidelity.Result) study.Record {
	p50 := float64(batch) * 1000 / tput
	return study.Record{
		Schema:     study.SchemaVersion,
		Experiment: study.Experiment{Model: model, Precision: prec, EP: "cpu", Batch: batch},
		Host:       study.Host{Hostname: "h", ORTVersion: "1.24.1"},
		File:       study.ModelFile{Bytes: rssMiB << 20},
		Status:     study.StatusOK,
		Metrics: &bench.Metrics{Throughput: tput, Latency: bench.LatencyStats{P50Ms: p50, P99Ms: 1.2 * p50, MeanMs: p50, Runs: 100},
			Memory: bench.Memory{PeakWorkingSet: rssMiB << 20, PeakSource: "high-water mark"}, Fidelity: f},
	}
}

func failed(model, prec string, batch int, reason string) study.Record {
	return study.Record{Schema: study.SchemaVersion, Experiment: study.Experiment{Model: model, Precision: prec, EP: "cpu", Batch: batch},
		Host: study.Host{Hostname: "h", ORTVersion: "1.24.1"}, Status: study.StatusFailed, Reason: reason}
}

var (
	good = &fidelity.Result{Top1: 1, CosineMean: 0.99999, SQNRdB: 60}
	ok2  = &fidelity.Result{Top1: 0.995, CosineMean: 0.9995, SQNRdB: 30}
	bad  = &fidelity.Result{Top1: 0.95, CosineMean: 0.99, SQNRdB: 15}
)

func build(t *testing.T, recs ...study.Record) *Group {
	t.Helper()
	r := Build([]Source{{Path: "x.jsonl", Records: recs}}, testOptions(t))
	if len(r.Groups) != 1 {
		t.Fatalf("%d groups", len(r.Groups))
	}
	return r.Groups[0]
}

func entry(t *testing.T, g *Group, model, prec string, batch int) *Entry {
	t.Helper()
	for _, e := range g.Entries {
		if x := e.Experiment; x.Model == model && x.Precision == prec && x.Batch == batch {
			return e
		}
	}
	t.Fatalf("no entry %s %s b%d", model, prec, batch)
	return nil
}

func TestParetoFront(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name string
		pts  []Point
		want []int
	}{
		{"empty", nil, nil},
		{"one", []Point{{1, 1}}, []int{0}},
		{"dominated", []Point{{1, 1}, {2, 2}, {0, 3}, {3, 0}, {1.5, 1.5}}, []int{2, 1, 3}},
		{"ties on x keep the higher y", []Point{{1, 1}, {1, 2}, {2, 1}}, []int{1, 2}},
		{"identical points are both on it", []Point{{1, 1}, {1, 1}, {0, 0}}, []int{0, 1}},
		{"NaN never is", []Point{{nan, 5}, {1, nan}, {0, 0}}, []int{2}},
		{"minimize x by negation", []Point{{-100, 30}, {-50, 20}, {-60, 5}}, []int{0, 1}},
	} {
		if got := ParetoFront(tc.pts); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ParetoFront = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParetoMarksPerModelAndBatch(t *testing.T) {
	g := build(t,
		rec("m", "fp32", 8, 100, 400, nil),
		rec("m", "fp16", 8, 180, 200, good), // faster and smaller than fp32, close: on both
		rec("m", "int8", 8, 250, 100, ok2),  // fastest, smallest: on both
		rec("m", "int4", 8, 150, 90, bad),   // smallest: memory frontier only
		rec("n", "fp32", 8, 10, 50, nil),    // another model: its own frontier
	)
	for _, tc := range []struct {
		prec     string
		fid, mem bool
	}{{"fp32", true, false}, {"fp16", true, false}, {"int8", true, true}, {"int4", false, true}} {
		e := entry(t, g, "m", tc.prec, 8)
		if e.ParetoFidelity != tc.fid || e.ParetoMemory != tc.mem {
			t.Errorf("%s: fidelity frontier %v memory frontier %v, want %v %v", tc.prec, e.ParetoFidelity, e.ParetoMemory, tc.fid, tc.mem)
		}
	}
	if n := entry(t, g, "n", "fp32", 8); !n.ParetoFidelity || !n.ParetoMemory {
		t.Errorf("a lone configuration is on its frontiers: %+v", n)
	}
}

func TestRankingRules(t *testing.T) {
	g := build(t,
		rec("a", "fp32", 1, 100, 400, nil),
		rec("a", "fp16", 1, 150, 200, good), // 1.5×
		rec("a", "int8", 1, 300, 100, bad),  // 3× but below the gate: left out
		rec("a", "int4", 1, 150, 80, ok2),   // 1.5× like fp16, more memory saved: ranks first of the two
		rec("b", "fp32", 1, 10, 100, nil),
		rec("b", "int8", 1, 20, 25, ok2), // 2×
		rec("c", "int8", 1, 90, 10, ok2), // no baseline: not ranked
		failed("b", "int4", 1, "boom"),   // failed: not ranked
	)
	var got []string
	for _, e := range g.Top {
		got = append(got, e.Experiment.Model+" "+e.Experiment.Precision)
	}
	want := []string{"b int8", "a int4", "a fp16"}
	if !slices.Equal(got, want) {
		t.Errorf("ranking %v, want %v", got, want)
	}
	if g.BelowGate != 1 {
		t.Errorf("below gate %d, want 1", g.BelowGate)
	}
	if c := entry(t, g, "a", "fp16", 1); c.Category != "faster & smaller" || !strings.Contains(c.UseCase, "low-latency") {
		t.Errorf("fp16 category %q use %q", c.Category, c.UseCase)
	}
	r := Build([]Source{{Path: "x", Records: []study.Record{rec("a", "fp32", 1, 100, 400, nil), rec("a", "fp16", 1, 150, 200, good), rec("a", "int4", 1, 150, 80, ok2)}}},
		Options{Gate: testOptions(t).Gate, TopN: 1})
	if g := r.Groups[0]; len(g.Top) != 1 || g.TopOmitted != 1 {
		t.Errorf("TopN 1: %d ranked, %d omitted", len(g.Top), g.TopOmitted)
	}
}

func TestCategories(t *testing.T) {
	g := build(t,
		rec("m", "fp32", 4, 100, 400, nil),
		rec("m", "fp16", 4, 103, 390, good), // within 5%: no gain
		rec("m", "int8", 4, 60, 100, good),  // smaller, slower
		rec("m", "int4", 4, 200, 390, good), // faster only
		rec("m", "bf16", 4, 80, 390, good),  // slower
	)
	for prec, want := range map[string]string{"fp32": "baseline", "fp16": "no gain", "int8": "smaller, slower", "int4": "faster", "bf16": "slower"} {
		if c := entry(t, g, "m", prec, 4).Category; c != want {
			t.Errorf("%s: category %q, want %q", prec, c, want)
		}
	}
	if u := entry(t, g, "m", "int4", 4).UseCase; u != "throughput serving (batch 4)" {
		t.Errorf("use case %q", u)
	}
}

func adviceText(g *Group, model string) string {
	var b strings.Builder
	for _, ma := range g.Advice {
		if ma.Model != model {
			continue
		}
		for _, a := range ma.Items {
			b.WriteString(a.Kind + " | " + a.Rule + " | " + a.Text + "\n")
		}
	}
	return b.String()
}

func TestRecommendationsCarryTheirNumbers(t *testing.T) {
	g := build(t,
		rec("m", "fp32", 1, 100, 400, nil),
		rec("m", "fp16", 1, 90, 200, good),
		rec("m", "int8", 1, 180, 100, ok2),
		rec("m", "int4", 1, 250, 60, bad),
		rec("m", "fp32", 8, 200, 410, nil),
		failed("m", "int4", 8, "MatMulNBits not implemented"),
		rec("m", "int8", 16, 420, 110, ok2), // no baseline at 16
	)
	txt := adviceText(g, "m")
	for _, want := range []string{
		"recommend | Fastest passing the gate at batch 1 | **int8**: 180.0 samples/s, 1.80× FP32 (100.0 samples/s; 1 run each, no interval)",
		"The fastest measured, **int4** (2.50× FP32), is left out: top-1 0.950 < 0.990, cosine 0.9900 < 0.9990.",
		"recommend | Fastest passing the gate at batch 8 | **fp32**: 200.0 samples/s; no lower precision that passes the gate is faster.",
		"Fastest passing the gate at batch 16 | **int8**: 420.0 samples/s, top-1 agreement 99.5%, cosine 0.9995. No FP32 baseline at this batch",
		"recommend | Smallest memory passing the gate | **int8** at batch 1: peak working set 100.0 MiB, 4.00× less than FP32 (400.0 MiB)",
		"recommend | Best p99 latency at batch 1 passing the gate | **int8**: p99 6.67 ms (p50 5.56 ms) against FP32's p99 12.00 ms (0.56× of it)",
		"caution | Failed | **int4** (batch 8) failed to run: MatMulNBits not implemented.",
		"caution | Below the gate | **int4** (batch 1) falls below the gate: top-1 0.950 < 0.990, cosine 0.9900 < 0.9990 (although 2.50× faster).",
		"caution | Slower than FP32 | **fp16** at batch 1 is slower than FP32: 0.90× (90.00 vs 100.0 samples/s; 1 run each, no interval).",
		"info | No FP32 baseline | The FP32 baseline at batch 16 was not run: speedup and reductions of int8 are unavailable.",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("advice lacks %q; got:\n%s", want, txt)
		}
	}
}

func TestRecommendationsWithoutFidelity(t *testing.T) {
	g := build(t, rec("m", "fp32", 1, 100, 400, nil), rec("m", "int8", 1, 180, 100, nil))
	if g.FidelityMeasured {
		t.Fatal("no record has fidelity")
	}
	txt := adviceText(g, "m")
	if !strings.Contains(txt, "Fastest measured (fidelity not measured: no gate applied) at batch 1 | **int8**") {
		t.Errorf("advice without fidelity:\n%s", txt)
	}
	if len(g.Top) != 1 || !strings.Contains(strings.Join(g.Notes, " "), "no claim about accuracy") {
		t.Errorf("top %d, notes %q", len(g.Top), g.Notes)
	}
}

func TestBaselineFailedNote(t *testing.T) {
	g := build(t, failed("m", "fp32", 8, "out of memory"), rec("m", "int8", 8, 180, 100, ok2))
	if txt := adviceText(g, "m"); !strings.Contains(txt, "The FP32 baseline at batch 8 failed (out of memory): speedup and reductions of int8 are unavailable.") {
		t.Errorf("advice:\n%s", txt)
	}
	if e := entry(t, g, "m", "int8", 8); !math.IsNaN(e.Speedup) || cellText(e) != CellNoBaseline {
		t.Errorf("speedup %v cell %q", e.Speedup, cellText(e))
	}
}

func TestRepeatsFoldAndJudgeNoise(t *testing.T) {
	var recs []study.Record
	// Rounds drift by j; fp16 differs from FP32 by +3%, −1.5% and +1% in
	// its rounds (noise), int8 is 1.5× in every round.
	fp16 := []float64{1.03, 0.985, 1.01}
	for r, j := range []float64{1, 1.01, 0.99} {
		for _, x := range []struct {
			prec string
			tput float64
		}{{"fp32", 100}, {"fp16", 100 * fp16[r]}, {"int8", 150}} {
			rc := rec("m", x.prec, 1, x.tput*j, 100, good)
			rc.Experiment.Repeat = r
			recs = append(recs, rc)
		}
	}
	g := build(t, recs...)
	if len(g.Entries) != 3 || g.MaxRuns != 3 {
		t.Fatalf("%d entries, %d runs", len(g.Entries), g.MaxRuns)
	}
	e16, int8 := entry(t, g, "m", "fp16", 1), entry(t, g, "m", "int8", 1)
	if e16.Verdict != "within noise" || e16.Faster() || e16.Category != "no gain" {
		t.Errorf("fp16 verdict %q category %q", e16.Verdict, e16.Category)
	}
	if int8.Verdict != "faster" || !int8.Faster() || int8.Runs != 3 {
		t.Errorf("int8 verdict %q runs %d", int8.Verdict, int8.Runs)
	}
	if !strings.Contains(adviceText(g, "m"), "faster: [1.50, 1.50], 95% interval over 3 paired rounds") {
		t.Errorf("advice should cite the intervals:\n%s", adviceText(g, "m"))
	}
}

func TestCostPerMillion(t *testing.T) {
	// $3.60/h is $0.001/s; at 1000 samples/s a million samples take 1000 s.
	c := CostPerMillion(1000, 0.36, 3.60, 0.20)
	if math.Abs(c.Instance-1) > 1e-12 {
		t.Errorf("instance %v, want 1", c.Instance)
	}
	// 0.36 J × 10⁶ = 360 kJ = 0.1 kWh; × $0.20 = $0.02.
	if math.Abs(c.KWh-0.1) > 1e-12 || math.Abs(c.Energy-0.02) > 1e-12 || math.Abs(c.Total-1.02) > 1e-12 {
		t.Errorf("energy %+v", c)
	}
	if c := CostPerMillion(1000, math.NaN(), 3.6, 0.2); c.Total != c.Instance || !math.IsNaN(c.Energy) {
		t.Errorf("no energy measured: %+v", c)
	}
	if c := CostPerMillion(1000, 0.36, 0, 0.2); math.Abs(c.Total-0.02) > 1e-12 || !math.IsNaN(c.Instance) {
		t.Errorf("energy price only: %+v", c)
	}
	if c := CostPerMillion(0, 0, 3.6, 0); !math.IsNaN(c.Total) {
		t.Errorf("no throughput: %+v", c)
	}
}

func TestHostGroupsAndLabels(t *testing.T) {
	a := rec("m", "fp32", 1, 100, 10, nil)
	b := a
	b.Host.ORTVersion = "1.22.0"
	c := a
	c.Host = study.Host{Hostname: "other", GPU: "NVIDIA H100"}
	a2 := a
	a2.Experiment.Repeat = 1
	r := Build([]Source{{Path: "x", Records: []study.Record{a, b, c, a2}}}, testOptions(t))
	var labels, slugs []string
	for _, g := range r.Groups {
		labels = append(labels, g.Label)
		slugs = append(slugs, g.Slug)
	}
	if !slices.Equal(labels, []string{"h · ORT 1.24.1", "h · ORT 1.22.0", "other"}) {
		t.Errorf("labels %q", labels)
	}
	if !slices.Equal(slugs, []string{"h-ort-1.24.1", "h-ort-1.22.0", "other"}) {
		t.Errorf("slugs %q", slugs)
	}
	if r.Groups[0].Records != 2 || r.Groups[0].Entries[0].Runs != 2 {
		t.Errorf("records of one host fold together: %+v", r.Groups[0].Entries[0].Row)
	}
}

func TestCompareVerdict(t *testing.T) {
	for _, tc := range []struct {
		a, b        []float64
		verdict     bench.Verdict
		basisPrefix string
	}{
		{[]float64{100}, []float64{104}, "within noise", "single run"},
		{[]float64{100}, []float64{106}, "faster", "single run"},
		{[]float64{100}, []float64{90}, "slower", "single run"},
		{[]float64{100, 101, 99}, []float64{103, 104, 102}, "within noise", "95% intervals, 3 vs 3"},
		{[]float64{100, 101, 99}, []float64{106, 107, 105}, "faster", "95% intervals, 3 vs 3"},
		{[]float64{100, 110, 90}, []float64{103, 112, 95}, "within noise", "95% intervals"},
		{[]float64{100, 101}, []float64{90}, "slower", "single run"},
	} {
		v, basis := CompareVerdict(tc.a, tc.b)
		if v != tc.verdict || !strings.HasPrefix(basis, tc.basisPrefix) {
			t.Errorf("CompareVerdict(%v, %v) = %q, %q; want %q, %q…", tc.a, tc.b, v, basis, tc.verdict, tc.basisPrefix)
		}
	}
}

func TestCompareFixtures(t *testing.T) {
	r := BuildCompare(mustLoad(t, "cpu-ort124.jsonl"), mustLoad(t, "cpu-ort122.jsonl"), testOptions(t))
	if r.Compare == nil || len(r.Compare.Pairs) != 1 {
		t.Fatalf("compare %+v", r.Compare)
	}
	p := r.Compare.Pairs[0]
	if !slices.Equal(p.EnvDiff, []string{"ONNX Runtime: 1.24.1 → 1.22.0"}) {
		t.Errorf("env diff %q", p.EnvDiff)
	}
	verdicts := map[string]bench.Verdict{}
	for _, row := range p.Rows {
		verdicts[expLabel(row.A.Experiment)] = row.Verdict
	}
	for k, want := range map[string]bench.Verdict{
		"deit-tiny int8 b1 cpu t8": "slower",       // 438 → 364 samples/s
		"deit-tiny fp32 b8 cpu t8": "within noise", // −1.9%
		"deit-tiny int4 b8 cpu t8": VerdictAFailed,
	} {
		if verdicts[k] != want {
			t.Errorf("%s: verdict %q, want %q", k, verdicts[k], want)
		}
	}
	if len(p.OnlyA) != 7 || len(p.OnlyB) != 0 {
		t.Errorf("only A %v, only B %v", p.OnlyA, p.OnlyB)
	}
}

// A variant whose outputs were NaN fails the gate with the reason shown,
// is left off the fidelity Pareto chart with a note, and the chart is
// still drawn for the others.
func TestNaNFidelityVariant(t *testing.T) {
	nan := &fidelity.Result{Samples: 8, CosineMean: math.NaN(), CosineMin: math.NaN(), Top1: 0.1, MaxAbsError: math.NaN(), SQNRdB: math.NaN()}
	g := build(t,
		rec("m", "fp32", 8, 100, 400, nil),
		rec("m", "fp16", 8, 180, 200, nan),
		rec("m", "int8", 8, 250, 100, good),
	)
	e := entry(t, g, "m", "fp16", 8)
	if e.Gate.Pass || !strings.Contains(adviceText(g, "m"), "cosine NaN") {
		t.Errorf("NaN variant passes or says nothing: gate %+v\n%s", e.Gate, adviceText(g, "m"))
	}
	f, err := paretoPlot(g, paretoFidelity)
	notes := f.notes
	if err != nil || f.plot == nil {
		t.Fatalf("chart not drawn: %v", err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "m fp16") {
		t.Errorf("notes %q", notes)
	}
}

// TestSyntheticWeightsCanBeRecommended: on the catalog's synthetic
// weights, int8 whose flips are all near-ties is recommended (the default
// gate rejected every int8 catalog configuration on raw top-1), the report
// says accuracy was not measurable, and a backbone shows no top-1.
func TestSyntheticWeightsCanBeRecommended(t *testing.T) {
	int8 := &fidelity.Result{Samples: 64, CosineMean: 0.99955, CosineMin: 0.9993, Top1: 0.953, Top5: 1, MaxAbsError: 0.031,
		RefMedianMargin: 0.05, DecisiveTop1: 1, DecisiveSamples: 31, SQNRdB: 31}
	emb := &fidelity.Result{Samples: 64, CosineMean: 0.99958, CosineMin: 0.9994, Top1: 0.98, Top5: 1, MaxAbsError: 0.13,
		RefMedianMargin: 0.01, DecisiveTop1: 1, DecisiveSamples: 2, SQNRdB: 30.8}
	self := &fidelity.Result{Samples: 64, CosineMean: 1, CosineMin: 1, Top1: 1, Top5: 1, SQNRdB: fidelity.MaxSQNRdB, RefMedianMargin: 0.05, DecisiveTop1: 1, DecisiveSamples: 64}
	g := build(t,
		rec("deit-tiny", "fp32", 1, 100, 100, self), rec("deit-tiny", "int8", 1, 180, 40, int8),
		rec("dino-vits16", "fp32", 1, 30, 100, self), rec("dino-vits16", "int8", 1, 45, 40, emb),
	)
	if txt := adviceText(g, "deit-tiny"); !strings.Contains(txt, "Fastest passing the gate at batch 1 | **int8**") ||
		!strings.Contains(txt, "decisive top-1 100.0% on 31 samples (synthetic weights: accuracy not measurable)") {
		t.Errorf("deit-tiny advice:\n%s", txt)
	}
	if txt := adviceText(g, "dino-vits16"); !strings.Contains(txt, "Fastest passing the gate at batch 1 | **int8**") ||
		!strings.Contains(txt, "embeddings: top-1 does not apply") {
		t.Errorf("dino-vits16 advice:\n%s", txt)
	}
	if e := entry(t, g, "dino-vits16", "int8", 1); fmtTop1(e) != dash || fmtDecisive(e) != dash || !e.Gate.Pass {
		t.Errorf("backbone top-1 %q decisive %q gate %+v", fmtTop1(e), fmtDecisive(e), e.Gate)
	}
	notes := strings.Join(g.Notes, "\n")
	if !strings.Contains(notes, "Accuracy was not measurable for deit-tiny (FP32 median top-1 margin 0.05) and dino-vits16") ||
		!strings.Contains(notes, "dino-vits16 output embeddings") {
		t.Errorf("notes:\n%s", notes)
	}
}

// TestContendedRatioIsNotAGain: a speedup resting on a contended run is
// shown uncertain, is neither faster nor slower, and the advice says the
// gain is not established because of it.
func TestContendedRatioIsNotAGain(t *testing.T) {
	base := rec("m", "fp32", 1, 100, 100, nil)
	base.Metrics.Contention = &bench.Contention{Share: 0.6, Contended: true, Threads: 2, CPUs: 2, WallS: 10}
	g := build(t, base, rec("m", "int8", 1, 180, 40, good))
	e := entry(t, g, "m", "int8", 1)
	if !e.Uncertain() || e.Faster() || e.Slower() || e.Category != "smaller" || speedupCell(e) != "1.80× uncertain: contended" {
		t.Errorf("verdict %q category %q cell %q", e.Verdict, e.Category, speedupCell(e))
	}
	if txt := adviceText(g, "m"); !strings.Contains(txt, "was contended: the gain is not established") {
		t.Errorf("advice:\n%s", txt)
	}
	if b := entry(t, g, "m", "fp32", 1); contendedCell(b) != "**yes** (60.0%)" {
		t.Errorf("baseline contended cell %q", contendedCell(b))
	}
}
