package main

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/study"
)

func requireORT(t *testing.T) {
	t.Helper()
	if _, err := ort.Init(""); err != nil {
		if os.Getenv("QUANTSCOPE_REQUIRE_ORT") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// tinyImageModel writes a [batch,3,8,8] → 10-class model.
func tinyImageModel(t *testing.T, dir string) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	w := make([]float32, 192*10)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.1)
	}
	b := onnx.NewBuilder("tiny", 17)
	b.AddInput("pixel_values", onnx.Float, onnx.Dims("batch", 3, 8, 8))
	b.AddInitializerFloat32("w", []int64{192, 10}, w)
	b.AddNode("Flatten", []string{"pixel_values"}, []string{"f"}, onnx.AttrInt("axis", 1))
	b.AddNode("MatMul", []string{"f", "w"}, []string{"logits"})
	b.AddOutput("logits", onnx.Float, onnx.Dims("batch", 10))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tiny.onnx")
	if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

// addOnlyModel writes a [batch,3,8,8] model of one Add: nothing in it
// quantizes.
func addOnlyModel(t *testing.T, dir string) string {
	t.Helper()
	b := onnx.NewBuilder("addonly", 17)
	b.AddInput("pixel_values", onnx.Float, onnx.Dims("batch", 3, 8, 8))
	b.AddInitializerFloat32("bias", []int64{1}, []float32{0.5})
	b.AddNode("Add", []string{"pixel_values", "bias"}, []string{"out"})
	b.AddOutput("out", onnx.Float, onnx.Dims("batch", 3, 8, 8))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "addonly.onnx")
	if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBenchEndToEnd(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	model := tinyImageModel(t, dir)
	out := filepath.Join(dir, "results.jsonl")
	args := []string{"bench", "--models", model, "--precisions", "fp32", "--batch", "1,4", "--duration", "200ms", "--threads", "1", "--out", out}

	stdout, stderr, code := cli(t, dir, append(args, "--format", "json")...)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	var rows []exportedRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("--format json: %v\n%s", err, stdout)
	}
	if len(rows) != 2 || rows[0].Status != "ok" || rows[0].Throughput <= 0 || rows[1].Batch != 4 {
		t.Errorf("rows %+v", rows)
	}
	if !strings.Contains(stderr, "[2/2]") || !strings.Contains(stderr, "done") {
		t.Errorf("progress lines missing from stderr:\n%s", stderr)
	}
	recs, _, err := study.ReadResults(out)
	if err != nil || len(recs) != 2 {
		t.Fatalf("results file: %d records, %v", len(recs), err)
	}

	// --resume: nothing left to run; the summary still covers both.
	stdout, stderr, code = cli(t, dir, append(args, "--resume", "--format", "csv")...)
	if code != 0 || strings.Count(stderr, "skipped") != 2 {
		t.Fatalf("resume: exit %d\n%s", code, stderr)
	}
	table, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil || len(table) != 3 || table[0][0] != "model" {
		t.Errorf("--format csv: %v %v", table, err)
	}
	if recs, _, _ = study.ReadResults(out); len(recs) != 2 {
		t.Errorf("resume appended records: %d", len(recs))
	}

	stdout, _, code = cli(t, dir, append(args, "--resume", "--format", "markdown")...)
	if code != 0 || !strings.HasPrefix(stdout, "| model | precision |") {
		t.Errorf("--format markdown: %d\n%s", code, stdout)
	}
}

func TestBenchFailuresAndUsage(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.onnx")
	os.WriteFile(corrupt, []byte("not onnx"), 0o644)
	noMatMul := addOnlyModel(t, dir)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"corrupt model is refused before the study", []string{"--models", corrupt, "--precisions", "fp32"}, 2, "corrupt.onnx"},
		{"a precision that converts nothing is a failed experiment", []string{"--models", noMatMul, "--precisions", "int8"}, exitBenchFailures, "1 of 2 experiments failed"},
		{"bad format", []string{"--models", corrupt, "--format", "xml"}, 2, "--format"},
		{"bad gate", []string{"--models", corrupt, "--gate", "speed>=9"}, 2, "--gate"},
		{"models required", []string{}, 1, "models"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"bench", "--duration", "100ms", "--out", filepath.Join(dir, tt.name+".jsonl")}, tt.args...)
			_, stderr, code := cli(t, dir, args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant it to mention %q", code, tt.code, stderr, tt.stderr)
			}
		})
	}
}

// TestBenchCatalogModelSpeedupAndFidelity is the CPU end-to-end study of the
// issue: deit-tiny FP32 against INT8, with speedup and fidelity in the output.
func TestBenchCatalogModelSpeedupAndFidelity(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	t.Setenv("QUANTSCOPE_CACHE_DIR", filepath.Join(dir, "cache"))
	out := filepath.Join(dir, "results.jsonl")
	stdout, stderr, code := cli(t, dir, "bench", "--models", "deit-tiny", "--precisions", "int8", "--batch", "2",
		"--duration", "500ms", "--out", out, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var rows []exportedRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].Precision != "int8" {
		t.Fatalf("rows %+v", rows)
	}
	q := rows[1]
	if q.Speedup <= 0 || q.SizeRed < 3 || q.Cosine < 0.99 || q.Cosine >= 1 || q.Top1 <= 0 {
		t.Errorf("int8 row %+v: want a measured speedup, size reduction ≥ 3×, cosine in [0.99, 1)", q)
	}
	recs, _, _ := study.ReadResults(out)
	if len(recs) != 2 || recs[1].Metrics.Precision == nil || recs[1].Metrics.Precision.NodesConverted == 0 {
		t.Fatalf("int8 record lacks its precision report: %+v", recs[1].Metrics.Precision)
	}
	if !rows[0].Optimized || !rows[1].Optimized {
		t.Errorf("summary rows do not say they ran fused graphs: %+v", rows)
	}
	// Fused by default: both rows ran the optimized graph and say what
	// matched.
	for _, r := range recs {
		if !r.Experiment.Optimize || r.Optimized == nil || r.Optimized.Matched["attention"] != 12 {
			t.Errorf("%s: optimize %v, %+v", r.Experiment.Key(), r.Experiment.Optimize, r.Optimized)
		}
	}
}

func TestJoinSpecOptions(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"fp32", "int4:block=64", "asym", "int8"}, []string{"fp32", "int4:block=64,asym", "int8"}},
		{[]string{"int8-static:calib=entropy", "samples=8", "fp16:mixed"}, []string{"int8-static:calib=entropy,samples=8", "fp16:mixed"}},
		{[]string{"fp16", "int3"}, []string{"fp16", "int3"}}, // bad kinds stay for ParseSpec to reject
		{[]string{"int4:block=64,asym"}, []string{"int4:block=64,asym"}},
	}
	for _, tt := range tests {
		if got := joinSpecOptions(tt.in); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("joinSpecOptions(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A variant whose outputs were NaN still summarizes in every format: JSON
// has null where the cosine and top-1 are not numbers.
func TestSummaryWithNaNFidelity(t *testing.T) {
	rec := study.Record{Experiment: study.Experiment{Model: "m", Precision: "fp16", EP: "cpu", Batch: 1}, Status: study.StatusOK,
		Metrics: &bench.Metrics{Throughput: 10, Fidelity: &fidelity.Result{Samples: 4, CosineMean: math.NaN(), CosineMin: math.NaN(), Top1: 0.25, MaxAbsError: math.NaN(), SQNRdB: math.NaN()}}}
	rows := study.Summarize([]study.Record{rec})
	for _, format := range []string{"json", "csv", "table", "markdown"} {
		var b strings.Builder
		if err := writeSummary(&b, format, rows); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if format == "json" && (!strings.Contains(b.String(), `"cosine_mean": null`) || !strings.Contains(b.String(), `"top1": 0.25`)) {
			t.Errorf("json:\n%s", b.String())
		}
		if format == "table" && !strings.Contains(b.String(), "NaN") {
			t.Errorf("table hides the NaN cosine:\n%s", b.String())
		}
	}
}

// exportedRow reads bench --format json: report.WriteRows, keyed by
// report.RowColumns.
type exportedRow struct {
	Model, Precision, Status string
	Batch                    int
	Optimized                bool
	Throughput, Speedup      float64
	SizeRed                  float64 `json:"size_reduction"`
	Cosine                   float64 `json:"cosine_mean"`
	Top1                     float64 `json:"top1"`
}
