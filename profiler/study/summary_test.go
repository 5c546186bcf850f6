package study

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/bench"
)

func okRec(model, prec string, repeat int, tput, p50 float64, rss, bytes int64) Record {
	return Record{
		Schema:     SchemaVersion,
		Experiment: Experiment{Model: model, Precision: prec, EP: "cpu", Batch: 8, Repeat: repeat},
		Status:     StatusOK,
		File:       ModelFile{Bytes: bytes},
		Metrics: &bench.Metrics{Throughput: tput, Latency: bench.LatencyStats{P50Ms: p50, P99Ms: 2 * p50},
			Memory: bench.Memory{PeakWorkingSet: rss, PeakSource: "high-water mark"}},
	}
}

func TestSummarizeDerivesRatiosFromRecords(t *testing.T) {
	recs := []Record{
		okRec("m", "fp32", 0, 100, 80, 400, 1000),
		okRec("m", "int8", 0, 150, 50, 100, 250),
		{Schema: 1, Experiment: Experiment{Model: "m", Precision: "int4", EP: "cpu", Batch: 8}, Status: StatusFailed, Reason: "MatMulNBits missing"},
		okRec("orphan", "fp16", 0, 10, 1, 1, 1),
	}
	rows := Summarize(recs)
	if len(rows) != 4 {
		t.Fatalf("%d rows", len(rows))
	}
	int8 := rows[1]
	if !int8.HasBaseline || int8.Speedup != 1.5 || int8.LatencyRatio != 50.0/80 || int8.MemReduction != 4 || int8.SizeReduction != 4 {
		t.Errorf("int8 row %+v", int8)
	}
	if rows[2].Status != StatusFailed || rows[2].Reason != "MatMulNBits missing" {
		t.Errorf("failed row %+v", rows[2])
	}
	if rows[3].HasBaseline || rows[3].Note == "" || !math.IsNaN(rows[3].Speedup) && rows[3].Speedup != 0 {
		t.Errorf("row without baseline %+v", rows[3])
	}
	if FormatRatio(int8.Speedup) != "1.50×" || FormatRatio(math.NaN()) != "—" {
		t.Error("FormatRatio")
	}
}

func TestSummarizeFoldsRepeatsAndJudgesNoise(t *testing.T) {
	recs := []Record{
		okRec("m", "fp32", 0, 100, 10, 1, 1), okRec("m", "fast", 0, 150, 7, 1, 1), okRec("m", "same", 0, 101, 10, 1, 1),
		okRec("m", "fp32", 1, 102, 10, 1, 1), okRec("m", "fast", 1, 152, 7, 1, 1), okRec("m", "same", 1, 99, 10, 1, 1),
		okRec("m", "fp32", 2, 98, 10, 1, 1), okRec("m", "fast", 2, 148, 7, 1, 1), okRec("m", "same", 2, 103, 10, 1, 1),
	}
	rows := Summarize(recs)
	if len(rows) != 3 || rows[0].Runs != 3 || rows[0].Throughput != 100 {
		t.Fatalf("rows %+v", rows)
	}
	if rows[1].Verdict != bench.VerdictFaster || rows[2].Verdict != bench.VerdictNoise || !rows[1].Faster() || rows[2].Faster() || rows[2].Slower() {
		t.Errorf("verdicts %q %q", rows[1].Verdict, rows[2].Verdict)
	}
	if rows[0].ThroughputCI <= 0 || math.IsInf(rows[0].ThroughputCI, 0) {
		t.Errorf("CI %v", rows[0].ThroughputCI)
	}
}

func TestSummarizeRetriedFailure(t *testing.T) {
	fail := Record{Schema: 1, Experiment: Experiment{Model: "m", Precision: "fp32", EP: "cpu", Batch: 8}, Status: StatusFailed, Reason: "oom"}
	rows := Summarize([]Record{fail, okRec("m", "fp32", 0, 100, 10, 1, 1)})
	if len(rows) != 1 || rows[0].Status != StatusOK || rows[0].Reason != "" {
		t.Errorf("retried experiment %+v", rows)
	}
}

// A variant whose precision report has most weight bytes in float32 is
// flagged (FP32 in all but name); a converted one and the baseline are not.
func TestLowCoverage(t *testing.T) {
	rec := func(prec string, by map[int]int64) Record {
		r := Record{Experiment: Experiment{Model: "m", Precision: prec, EP: "cpu", Batch: 1}, Status: StatusOK,
			Metrics: &bench.Metrics{Throughput: 10}}
		if by != nil {
			r.Metrics.Precision = &quant.Report{WeightBytes: by}
		}
		return r
	}
	rows := Summarize([]Record{
		rec("fp32", nil),
		rec("int8", map[int]int64{8: 100, 32: 900}),
		rec("int4", map[int]int64{4: 700, 32: 300, 0: 50}),
	})
	if rows[0].LowCoverage() || rows[0].HasCoverage {
		t.Errorf("baseline: %+v", rows[0])
	}
	if !rows[1].LowCoverage() || math.Abs(rows[1].Coverage-0.1) > 1e-9 {
		t.Errorf("int8 with 10%% converted: coverage %v, low %v", rows[1].Coverage, rows[1].LowCoverage())
	}
	if rows[2].LowCoverage() || math.Abs(rows[2].Coverage-0.7) > 1e-9 {
		t.Errorf("int4 with 70%% converted: coverage %v", rows[2].Coverage)
	}
}

// TestSpeedupFromPairedRounds: with --repeat the speedup is the geometric
// mean of the per-round ratios with the 95% interval of the paired rounds,
// and the verdict comes from that interval.
func TestSpeedupFromPairedRounds(t *testing.T) {
	// Baseline and variant drift together (±10% round to round); each
	// round's ratio is 1.70, 1.78, 1.74.
	recs := []Record{
		okRec("m", "fp32", 0, 100, 10, 1, 1), okRec("m", "int8", 0, 170, 7, 1, 1),
		okRec("m", "fp32", 1, 110, 10, 1, 1), okRec("m", "int8", 1, 110*1.78, 7, 1, 1),
		okRec("m", "fp32", 2, 90, 10, 1, 1), okRec("m", "int8", 2, 90*1.74, 7, 1, 1),
	}
	rows := Summarize(recs)
	r := rows[1]
	wantR, wantLo, wantHi := bench.PairedRatio95([]float64{100, 110, 90}, []float64{170, 110 * 1.78, 90 * 1.74})
	if r.Speedup != wantR || r.SpeedupLo != wantLo || r.SpeedupHi != wantHi || r.SpeedupRounds != 3 || !r.SpeedupPaired {
		t.Fatalf("speedup %v [%v, %v] over %d (paired %v), want %v [%v, %v] over 3 paired", r.Speedup, r.SpeedupLo, r.SpeedupHi,
			r.SpeedupRounds, r.SpeedupPaired, wantR, wantLo, wantHi)
	}
	if r.Verdict != bench.VerdictFaster || !r.Faster() {
		t.Errorf("verdict %q", r.Verdict)
	}
	if got := r.SpeedupText(); got != "1.74× [1.64, 1.84]" {
		t.Errorf("text %q", got)
	}
	if got := r.VerdictBasis(); got != "95% interval over 3 paired rounds" {
		t.Errorf("basis %q", got)
	}
	// The unpaired ratio of the same means would be swamped by the drift:
	// pairing is what makes the interval this narrow.
	_, ulo, uhi := bench.RatioOfMeans95([]float64{100, 110, 90}, []float64{170, 110 * 1.78, 90 * 1.74})
	if uhi-ulo <= r.SpeedupHi-r.SpeedupLo {
		t.Errorf("paired interval [%v, %v] not narrower than unpaired [%v, %v]", r.SpeedupLo, r.SpeedupHi, ulo, uhi)
	}
}

// TestSpeedupOneRunAndContended: without repeats the speedup says "1 run";
// a ratio that involves a contended run is uncertain, unless enough clean
// paired rounds remain to leave the contended one out.
func TestSpeedupOneRunAndContended(t *testing.T) {
	contended := func(r Record) Record {
		m := *r.Metrics
		m.Contention = &bench.Contention{Share: 0.4, Contended: true}
		r.Metrics = &m
		return r
	}
	rows := Summarize([]Record{okRec("m", "fp32", 0, 100, 10, 1, 1), okRec("m", "int8", 0, 174, 7, 1, 1)})
	if r := rows[1]; r.Verdict != bench.VerdictOneRun || r.SpeedupText() != "1.74× (1 run)" || !r.Faster() || r.HasInterval() {
		t.Errorf("one run: %q %q faster %v", r.Verdict, r.SpeedupText(), r.Faster())
	}
	// A contended baseline makes every ratio against it uncertain.
	rows = Summarize([]Record{contended(okRec("m", "fp32", 0, 60, 10, 1, 1)), okRec("m", "int8", 0, 174, 7, 1, 1)})
	if r := rows[1]; r.Verdict != bench.VerdictContended || !r.Uncertain() || r.Faster() || r.Slower() ||
		r.SpeedupText() != "2.90× uncertain: contended" || !rows[0].Contended || r.Contended {
		t.Errorf("contended baseline: %q %q faster %v; baseline contended %v", r.Verdict, r.SpeedupText(), r.Faster(), rows[0].Contended)
	}
	// Three rounds, one contended: the two clean rounds decide.
	rows = Summarize([]Record{
		okRec("m", "fp32", 0, 100, 10, 1, 1), okRec("m", "int8", 0, 175, 7, 1, 1),
		contended(okRec("m", "fp32", 1, 50, 10, 1, 1)), okRec("m", "int8", 1, 175, 7, 1, 1),
		okRec("m", "fp32", 2, 102, 10, 1, 1), okRec("m", "int8", 2, 176, 7, 1, 1),
	})
	if r := rows[1]; r.Verdict != bench.VerdictFaster || r.SpeedupRounds != 2 || r.SpeedupExcluded != 1 || r.Speedup > 1.76 ||
		r.VerdictBasis() != "95% interval over 2 paired rounds, 1 contended left out" {
		t.Errorf("one contended round: %q %v over %d (%d out): %s", r.Verdict, r.Speedup, r.SpeedupRounds, r.SpeedupExcluded, r.VerdictBasis())
	}
	// Two rounds, one contended: not enough clean ones, uncertain.
	rows = Summarize([]Record{
		okRec("m", "fp32", 0, 100, 10, 1, 1), okRec("m", "int8", 0, 175, 7, 1, 1),
		okRec("m", "fp32", 1, 100, 10, 1, 1), contended(okRec("m", "int8", 1, 120, 7, 1, 1)),
	})
	if r := rows[1]; r.Verdict != bench.VerdictContended || !r.HasInterval() {
		t.Errorf("two rounds, one contended: %q interval %v", r.Verdict, r.HasInterval())
	}
}

// TestMemoryIsThePeakWorkingSet: rows carry the peak working set (the
// largest over runs), reductions divide working sets, and a schema 1
// record (model_rss only) has no memory figure rather than a misleading one.
func TestMemoryIsThePeakWorkingSet(t *testing.T) {
	b0, b1 := okRec("m", "fp32", 0, 100, 10, 100<<20, 1), okRec("m", "fp32", 1, 100, 10, 104<<20, 1)
	v := okRec("m", "fp16", 0, 50, 10, 78<<20, 1)
	v.Metrics.Memory.ResidentAfterLoad = 21 << 20
	rows := Summarize([]Record{b0, v, b1})
	if rows[0].WorkingSet != 104<<20 || rows[0].WorkingSetWhere != "host" || rows[1].WorkingSet != 78<<20 {
		t.Fatalf("working sets %d %d", rows[0].WorkingSet, rows[1].WorkingSet)
	}
	if got := rows[1].MemReduction; math.Abs(got-104.0/78) > 1e-12 {
		t.Errorf("memory reduction %v, want 104/78 (not resident-after-load's)", got)
	}
	var old Record
	line := `{"schema":1,"experiment":{"model":"m","precision":"fp16","ep":"cpu","batch":8},"status":"ok",` +
		`"metrics":{"throughput":5,"memory":{"rss_before_load":100,"rss_after_load":200,"peak_rss":900,"model_rss":100}}}`
	if err := json.Unmarshal([]byte(line), &old); err != nil {
		t.Fatal(err)
	}
	if old.Metrics.Memory.ResidentAfterLoad != 100 {
		t.Errorf("schema 1 model_rss read as resident after load %d", old.Metrics.Memory.ResidentAfterLoad)
	}
	if _, _, ok := old.Metrics.Memory.WorkingSet(); ok || !strings.Contains(old.Metrics.Memory.WorkingSetNote(), "schema 1") {
		t.Errorf("schema 1 record has a working set: %s", old.Metrics.Memory.WorkingSetNote())
	}
	rows = Summarize([]Record{b0, old})
	if rows[1].WorkingSet != 0 || !math.IsNaN(rows[1].MemReduction) {
		t.Errorf("schema 1 row: working set %d, reduction %v", rows[1].WorkingSet, rows[1].MemReduction)
	}
}

func TestTraits(t *testing.T) {
	for _, tt := range []struct {
		name     string
		rec      Record
		synth    bool
		backbone bool
	}{
		{"declared trained", Record{Experiment: Experiment{Model: "deit-tiny"}, Model: &ModelTraits{Weights: WeightsTrained, Output: OutputLogits}}, false, false},
		{"catalog, undeclared", Record{Experiment: Experiment{Model: "deit-tiny"}}, true, false},
		{"catalog backbone, undeclared", Record{Experiment: Experiment{Model: "dino-vits16"}}, true, true},
		{"imported, undeclared", Record{Experiment: Experiment{Model: "./my.onnx"}}, false, false},
	} {
		tr := tt.rec.Traits()
		if tr.Synthetic() != tt.synth || tr.Backbone() != tt.backbone {
			t.Errorf("%s: %+v", tt.name, tr)
		}
	}
}

// TestSingleRunVerdict: the one rule for a ratio without an interval, as
// Row.Faster/Slower and the report's A/B comparison use it.
func TestSingleRunVerdict(t *testing.T) {
	for _, tc := range []struct {
		ratio float64
		want  bench.Verdict
	}{
		{1.06, bench.VerdictFaster}, {1.05, bench.VerdictFaster}, {1.04, bench.VerdictNoise}, {1, bench.VerdictNoise},
		{0.96, bench.VerdictNoise}, {0.95, bench.VerdictSlower}, {0.5, bench.VerdictSlower}, {math.NaN(), bench.VerdictNoise},
	} {
		if got := SingleRunVerdict(tc.ratio); got != tc.want {
			t.Errorf("SingleRunVerdict(%v) = %q, want %q", tc.ratio, got, tc.want)
		}
		r := Row{Verdict: bench.VerdictOneRun, Speedup: tc.ratio}
		if r.Faster() != (tc.want == bench.VerdictFaster) || r.Slower() != (tc.want == bench.VerdictSlower) {
			t.Errorf("1-run row at %v: faster %v slower %v, want %s", tc.ratio, r.Faster(), r.Slower(), tc.want)
		}
	}
}
