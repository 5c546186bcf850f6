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
