package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
)

// TestGoldenRows pins the exported rows schema (RowColumns) in both
// formats on the CPU and GPU fixtures: the columns, their order, the
// number formats and unknown as empty (CSV) or absent (JSON).
func TestGoldenRows(t *testing.T) {
	r := Build(mustLoad(t, "cpu-ort124.jsonl", "gpu-h100.jsonl"), testOptions(t))
	for _, f := range []struct{ format, golden string }{{RowsCSV, "rows.csv"}, {RowsJSON, "rows.json"}} {
		var b bytes.Buffer
		if err := WriteRows(&b, f.format, r.rows()); err != nil {
			t.Fatal(err)
		}
		checkGolden(t, f.golden, b.Bytes())
	}
}

// TestRowsUnknownIsEmpty: what is not known is empty in CSV and absent in
// JSON, never 0; a measured NaN is NaN in CSV and null in JSON; the JSON
// carries the same values as the CSV.
func TestRowsUnknownIsEmpty(t *testing.T) {
	ok := func(prec string, tput float64, f *fidelity.Result) study.Record {
		return study.Record{Schema: study.SchemaVersion, Experiment: study.Experiment{Model: "m", Precision: prec, EP: "cpu", Batch: 1},
			Status: study.StatusOK, Metrics: &bench.Metrics{Throughput: tput, Latency: bench.LatencyStats{P50Ms: 1000 / tput, Runs: 10}, Fidelity: f}}
	}
	nanCos := &fidelity.Result{Samples: 4, CosineMean: math.NaN(), Top1: 0.25}
	rows := study.Summarize([]study.Record{
		ok("int8", 150, nanCos), // no FP32 baseline: no ratios
		{Schema: study.SchemaVersion, Experiment: study.Experiment{Model: "m", Precision: "int4", EP: "cpu", Batch: 1}, Status: study.StatusFailed, Reason: "worker crashed\nSIGSEGV"},
	})
	var c, j bytes.Buffer
	if err := WriteRows(&c, RowsCSV, rows); err != nil {
		t.Fatal(err)
	}
	if err := WriteRows(&j, RowsJSON, rows); err != nil {
		t.Fatal(err)
	}
	table, err := csv.NewReader(&c).ReadAll()
	if err != nil || len(table) != 3 || strings.Join(table[0], ",") != strings.Join(RowColumns, ",") {
		t.Fatalf("csv %q, %v", table, err)
	}
	var objs []map[string]any
	if err := json.Unmarshal(j.Bytes(), &objs); err != nil || len(objs) != 2 {
		t.Fatalf("json %s: %v", j.String(), err)
	}
	col := func(row int, name string) (string, any, bool) {
		for i, n := range RowColumns {
			if n == name {
				v, present := objs[row][name]
				return table[row+1][i], v, present
			}
		}
		t.Fatalf("no column %s", name)
		return "", nil, false
	}
	for _, tc := range []struct {
		row     int
		name    string
		csv     string
		present bool
	}{
		{0, "throughput", "150", true},
		{0, "speedup", "", false}, {0, "mem_reduction", "", false}, {0, "size_reduction", "", false}, {0, "verdict", "", false},
		{0, "peak_working_set_bytes", "", false}, {0, "file_bytes", "", false}, {0, "joules_per_sample", "", false},
		{0, "throughput_ci95", "", false},
		{0, "cosine_mean", "NaN", true}, {0, "top1", "0.25", true},
		{0, "overhead_floor", "false", true},
		{1, "status", "failed", true}, {1, "reason", "worker crashed SIGSEGV", true},
		{1, "throughput", "", false}, {1, "p50_ms", "", false}, {1, "cosine_mean", "", false}, {1, "contended", "", false},
		{1, "overhead_floor", "", false},
	} {
		got, v, present := col(tc.row, tc.name)
		if got != tc.csv || present != tc.present {
			t.Errorf("row %d %s: csv %q (json %v, present %v); want csv %q, present %v", tc.row, tc.name, got, v, present, tc.csv, tc.present)
		}
	}
	if v, _ := objs[0]["cosine_mean"]; v != nil {
		t.Errorf("NaN cosine in JSON: %v, want null", v)
	}
	if err := WriteRows(&c, "xml", rows); err == nil {
		t.Error("an unknown format is not refused")
	}
}

// TestRowsAccuracy: accuracy on labelled images goes out as the acc_*
// columns of the one schema: rates and Wilson bounds for every scored row,
// the paired difference and McNemar's p only for a variant paired with
// FP32, and nothing for a row that scored no images.
func TestRowsAccuracy(t *testing.T) {
	rec := func(prec string, a *accuracy.Result) study.Record {
		return study.Record{Schema: study.SchemaVersion, Experiment: study.Experiment{Model: "m", Precision: prec, EP: "cpu", Batch: 8},
			Status: study.StatusOK, Metrics: &bench.Metrics{Throughput: 100, Latency: bench.LatencyStats{P50Ms: 80, Runs: 10}, Accuracy: a}}
	}
	res := func(top1 int, p *accuracy.Paired) *accuracy.Result {
		return &accuracy.Result{Dataset: "/data/val", Set: "s", Classes: 1000, Counts: accuracy.Counts{Images: 50000, Top1: top1, Top5: 47000}, VsFP32: p}
	}
	rows := study.Summarize([]study.Record{
		rec("fp32", res(40500, nil)),
		// 5 images lost, 3 won: McNemar's exact p = 2·P(X ≤ 3 | 8, ½) = 186/256.
		rec("int8", res(40498, &accuracy.Paired{Top1: accuracy.Table{Both: 40495, VariantOnly: 3, RefOnly: 5, Neither: 9497}})),
		rec("int4", nil),
	})
	var c, j bytes.Buffer
	if err := WriteRows(&c, RowsCSV, rows); err != nil {
		t.Fatal(err)
	}
	if err := WriteRows(&j, RowsJSON, rows); err != nil {
		t.Fatal(err)
	}
	table, err := csv.NewReader(&c).ReadAll()
	if err != nil || len(table) != 4 {
		t.Fatalf("csv %q, %v", table, err)
	}
	var objs []map[string]any
	if err := json.Unmarshal(j.Bytes(), &objs); err != nil || len(objs) != 3 {
		t.Fatalf("json %s: %v", j.String(), err)
	}
	byPrec := map[string]int{}
	for i, o := range objs {
		byPrec[o["precision"].(string)] = i
	}
	get := func(prec, name string) (string, any) {
		i := byPrec[prec]
		for k, n := range RowColumns {
			if n == name {
				return table[i+1][k], objs[i][name]
			}
		}
		t.Fatalf("no column %s", name)
		return "", nil
	}
	for _, tc := range []struct {
		prec, name, csv string
	}{
		{"fp32", "acc_images", "50000"}, {"fp32", "acc_top1", "0.81"}, {"fp32", "acc_top5", "0.94"},
		{"fp32", "acc_top1_delta_pt", ""}, {"fp32", "acc_mcnemar_p", ""},
		{"int8", "acc_top1", "0.80996"},
		{"int4", "acc_images", ""}, {"int4", "acc_top1", ""}, {"int4", "acc_top1_delta_pt", ""},
	} {
		got, v := get(tc.prec, tc.name)
		if got != tc.csv || (v == nil) != (tc.csv == "") {
			t.Errorf("%s %s: csv %q json %v; want %q", tc.prec, tc.name, got, v, tc.csv)
		}
	}
	if p, _ := get("int8", "acc_mcnemar_p"); !near(p, 186.0/256) {
		t.Errorf("int8 McNemar p %q, want %v", p, 186.0/256)
	}
	d, _ := get("int8", "acc_top1_delta_pt")
	lo, _ := get("int8", "acc_top1_delta_lo_pt")
	hi, _ := get("int8", "acc_top1_delta_hi_pt")
	df, _ := strconv.ParseFloat(d, 64)
	lf, _ := strconv.ParseFloat(lo, 64)
	hf, _ := strconv.ParseFloat(hi, 64)
	if math.Abs(df-(-0.004)) > 1e-9 || !(lf < df && df < hf) {
		t.Errorf("int8 Δ %s [%s, %s] pt, want −0.004 inside its interval", d, lo, hi)
	}
	l1, _ := get("fp32", "acc_top1_lo")
	h1, _ := get("fp32", "acc_top1_hi")
	if l, _ := strconv.ParseFloat(l1, 64); !(l > 0.8 && l < 0.81) {
		t.Errorf("fp32 top-1 Wilson bounds [%s, %s]", l1, h1)
	}
	if h, _ := strconv.ParseFloat(h1, 64); !(h > 0.81 && h < 0.82) {
		t.Errorf("fp32 top-1 Wilson bounds [%s, %s]", l1, h1)
	}
}

// near reports whether the CSV cell s is a number within 1e-9 of want.
func near(s string, want float64) bool {
	v, err := strconv.ParseFloat(s, 64)
	return err == nil && math.Abs(v-want) < 1e-9
}
