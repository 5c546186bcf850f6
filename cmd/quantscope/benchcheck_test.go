package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
)

// TestBenchRejectsNonsenseNumbers: numeric flags that cannot mean anything
// exit 2 with a message naming the flag, before anything runs (no ONNX
// Runtime needed, no results file created).
func TestBenchRejectsNonsenseNumbers(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--duration", "0"}, "--duration 0"},
		{[]string{"--duration", "-5s"}, "--duration -5s"},
		{[]string{"--threads", "-1"}, "--threads -1"},
		{[]string{"--repeat", "0"}, "--repeat 0"},
		{[]string{"--repeat", "-2"}, "--repeat -2"},
		{[]string{"--iters", "-3"}, "--iters -3"},
		{[]string{"--timeout", "-1m"}, "--timeout -1m0s"},
		{[]string{"--batch", "0"}, "--batch 0"},
		{[]string{"--batch", "8,-1"}, "--batch -1"},
	} {
		out := filepath.Join(dir, "r.jsonl")
		args := append([]string{"bench", "--models", "deit-tiny", "--out", out}, tc.args...)
		_, stderr, code := cli(t, dir, args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %q", tc.args, code, stderr, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: a results file was created", tc.args)
		}
	}
	// --duration 0 is fine when --iters sets the timed phase instead; the
	// run then fails later for want of ONNX Runtime or goes on, but not
	// with a usage error about --duration.
	_, stderr, _ := cli(t, dir, "bench", "--models", "no-such-model", "--duration", "0", "--iters", "5", "--out", filepath.Join(dir, "r.jsonl"))
	if strings.Contains(stderr, "--duration") {
		t.Errorf("--duration 0 with --iters 5 refused: %s", stderr)
	}
}

// TestBenchValidatesPlanBeforeRunning: a bad precision spec, an unknown
// model, an unknown execution provider or a --calib-dir no experiment
// uses fail at once with exit 2, before any worker starts: no results
// file, no progress line.
func TestBenchValidatesPlanBeforeRunning(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	model := tinyImageModel(t, dir)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--models", model, "--precisions", "fp16,int4:block=7"}, `"int4:block=7"`},
		{[]string{"--models", model, "--precisions", "int3"}, `unknown precision "int3"`},
		{[]string{"--models", model + ",deit-tiyn", "--precisions", "int8"}, "did you mean deit-tiny"},
		{[]string{"--models", filepath.Join(dir, "gone.onnx"), "--precisions", "int8"}, "gone.onnx does not exist"},
		{[]string{"--models", model, "--precisions", "int8", "--ep", "gpu"}, `unknown execution provider "gpu"`},
		{[]string{"--models", model, "--precisions", "int8", "--calib-dir", dir}, "--calib-dir applies to int8-static only"},
		{[]string{"--models", model, "--precisions", "int8-static", "--calib-dir", filepath.Join(dir, "nope")}, "--calib-dir"},
	} {
		out := filepath.Join(dir, "r.jsonl")
		args := append([]string{"bench", "--duration", "100ms", "--out", out}, tc.args...)
		_, stderr, code := cli(t, dir, args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant exit 2 and %q", tc.args, code, stderr, tc.want)
		}
		if strings.Contains(stderr, "[1/") {
			t.Errorf("%v: an experiment ran before the plan was refused:\n%s", tc.args, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: a results file was created", tc.args)
			os.Remove(out)
		}
	}
}

// TestBenchOutRefusesOtherFiles: --out naming a file that is not a results
// file (notes, a directory) is refused and the file left byte for byte.
func TestBenchOutRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	notes := filepath.Join(dir, "notes.md")
	const text = "# My notes\n\nDo not append JSON here.\n"
	os.WriteFile(notes, []byte(text), 0o644)
	oneLine := filepath.Join(dir, "line.txt")
	os.WriteFile(oneLine, []byte("hello"), 0o644)
	for _, out := range []string{notes, oneLine, dir} {
		_, stderr, code := cli(t, dir, "bench", "--models", "deit-tiny", "--out", out)
		if code != 2 || !strings.Contains(stderr, "--out") || !strings.Contains(stderr, filepath.Base(out)) {
			t.Errorf("--out %s: exit %d, stderr %q; want exit 2 naming the file", out, code, stderr)
		}
	}
	if b, _ := os.ReadFile(notes); string(b) != text {
		t.Errorf("notes.md changed:\n%s", b)
	}
}

// TestSummaryTableAlignsWideNames: a model named in CJK (two terminal
// cells a character) or with a combining accent does not push the
// columns after it out of line: every row's columns start at the same
// display column.
func TestSummaryTableAlignsWideNames(t *testing.T) {
	var recs []study.Record
	for _, m := range []string{"deit-tiny", "视觉模型.onnx", "modèle-é.onnx", "cafe\u0301.onnx"} {
		recs = append(recs, study.Record{Experiment: study.Experiment{Model: m, Precision: "fp32", EP: "cpu", Batch: 1},
			Status: study.StatusOK, Metrics: &bench.Metrics{Throughput: 123.4}})
	}
	var b strings.Builder
	if err := writeSummary(&b, "table", study.Summarize(recs)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	// The header, four rows, then the footnote saying what mem and speedup are.
	if len(lines) < 6 || !strings.HasPrefix(lines[5], "mem = peak working set") {
		t.Fatalf("table:\n%s", b.String())
	}
	lines = lines[:5]
	col := func(line, cell string) int { return ansi.StringWidth(line[:strings.Index(line, cell)]) }
	want := col(lines[0], "precision")
	for _, l := range lines[1:] {
		if got := col(l, "fp32"); got != want {
			t.Errorf("precision column at %d, want %d:\n%s", got, want, b.String())
		}
	}
}

// A record of this run that went to the fallback file is still in the
// summary; one that is in the file is not counted twice.
func TestSummaryKeepsUnsavedRecords(t *testing.T) {
	mk := func(run, prec string) study.Record {
		return study.Record{RunID: run, Experiment: study.Experiment{Model: "m", Precision: prec, EP: "cpu", Batch: 1},
			Status: study.StatusOK, Metrics: &bench.Metrics{Throughput: 10}}
	}
	file := []study.Record{mk("old", "fp32"), mk("new", "fp32")}
	ran := []study.Record{mk("new", "fp32"), mk("new", "int8")} // int8 is only in memory
	got := withUnsaved(file, ran)
	if len(got) != 3 || got[2].Experiment.Precision != "int8" {
		t.Errorf("got %d records: %+v", len(got), got)
	}
}
