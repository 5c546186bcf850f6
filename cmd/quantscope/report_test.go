package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const reportFixtures = "../../profiler/report/testdata"

// runReportCLI runs `quantscope report args...` in process.
func runReportCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs(append([]string{"report"}, args...))
	err = root.Execute()
	return out.String(), errb.String(), err
}

func TestReportCommandWritesReportChartsAndCSV(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rep")
	stdout, stderr, err := runReportCLI(t, filepath.Join(reportFixtures, "cpu-ort124.jsonl"), "--out", dir, "--price-per-hour", "1.2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, filepath.Join(dir, "report.md")) || !strings.Contains(stdout, "results.csv") || !strings.Contains(stdout, "charts (PNG and SVG)") {
		t.Errorf("stdout: %s", stdout)
	}
	if !strings.Contains(stderr, "line 15: incomplete last line") {
		t.Errorf("the torn line is not reported on stderr: %q", stderr)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Environment", "## Plan", "## Top configurations", "## Recommendations", "## Per-model results",
		"## Charts", "## Cost per million inferences", "## Failed experiments", "The FP32 baseline at batch 8 was not run"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, f := range []string{"results.csv", "speedup-heatmap.png", "speedup-heatmap.svg", "memory-reduction.png", "size-reduction.svg", "latency-percentiles.png", "pareto-fidelity.png", "pareto-memory.svg"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
}

func TestReportCommandHTMLAndCompare(t *testing.T) {
	dir := t.TempDir()
	_, _, err := runReportCLI(t, filepath.Join(reportFixtures, "cpu-ort124.jsonl"), "-o", dir, "--format", "html",
		"--compare", filepath.Join(reportFixtures, "cpu-ort122.jsonl"), "--gate", "top1>=98%", "--title", "ORT upgrade")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.md")); err == nil {
		t.Error("--format html also wrote report.md")
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<title>ORT upgrade</title>", "<code>top1&gt;=0.98</code>", "id=\"comparison\"", "ONNX Runtime: 1.24.1 → 1.22.0", "<svg "} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

func TestReportCommandErrors(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	notJSON := filepath.Join(t.TempDir(), "results.csv")
	if err := os.WriteFile(notJSON, []byte("model,precision\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(reportFixtures, "cpu-ort124.jsonl")
	out := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "requires at least 1 arg"},
		{[]string{empty, "-o", out}, "the file is empty"},
		{[]string{notJSON, "-o", out}, "line 1: not a JSON record"},
		{[]string{filepath.Join(out, "nope.jsonl"), "-o", out}, "no such file"},
		{[]string{good, "-o", out, "--format", "pdf"}, `--format "pdf": use md or html`},
		{[]string{good, "-o", out, "--gate", "top1>0.9,acc>1"}, `--gate: gate "top1>0.9,acc>1": clause "acc>1": unknown metric "acc"`},
		{[]string{good, "-o", out, "--price-per-hour", "-1"}, "--price-per-hour -1: a price must be a non-negative number"},
		{[]string{good, "-o", out, "--top", "0"}, "--top 0"},
		{[]string{good, "-o", out, "--compare", empty}, "the file is empty"},
	} {
		_, _, err := runReportCLI(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("report %v: error %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}
