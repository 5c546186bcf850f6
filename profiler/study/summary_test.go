package study

import (
	"math"
	"testing"

	"github.com/quantscope/quantscope/profiler/bench"
)

func okRec(model, prec string, repeat int, tput, p50 float64, rss, bytes int64) Record {
	return Record{
		Schema:     SchemaVersion,
		Experiment: Experiment{Model: model, Precision: prec, EP: "cpu", Batch: 8, Repeat: repeat},
		Status:     StatusOK,
		File:       ModelFile{Bytes: bytes},
		Metrics: &bench.Metrics{Throughput: tput, Latency: bench.LatencyStats{P50Ms: p50, P99Ms: 2 * p50},
			Memory: bench.Memory{ModelRSS: rss}},
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
	if rows[1].Verdict != "faster" || rows[2].Verdict != "within noise" {
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
	rec := func(prec string, by map[string]any) Record {
		r := Record{Experiment: Experiment{Model: "m", Precision: prec, EP: "cpu", Batch: 1}, Status: StatusOK,
			Metrics: &bench.Metrics{Throughput: 10}}
		if by != nil {
			r.Metrics.Precision = map[string]any{"weight_bytes_by_bits": by}
		}
		return r
	}
	rows := Summarize([]Record{
		rec("fp32", nil),
		rec("int8", map[string]any{"8": 100.0, "32": 900.0}),
		rec("int4", map[string]any{"4": 700.0, "32": 300.0, "0": 50.0}),
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
