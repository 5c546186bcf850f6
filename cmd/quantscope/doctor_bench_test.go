package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quantscope/quantscope/profiler/hwbench"
)

// benchFixture is a CPU machine's report with a line of every verdict.
func benchFixture() *hwbench.Report {
	return &hwbench.Report{
		Schema: hwbench.SchemaVersion, Started: time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC), Seconds: 41.7,
		Machine: hwbench.Machine{CPU: "AMD EPYC", Cores: 2, EP: "cpu", EPReason: "auto: CPU, because there is no NVIDIA GPU", LoadStart: 0.3, LoadEnd: 1.9},
		Lines: []hwbench.Line{
			{ID: "cpu.gemm.fp32", Group: "compute", Device: "cpu", Name: "FP32 GEMM (MatMul)", Value: 215.3, Unit: "GFLOP/s", Expected: 435.2, Percent: 49.5,
				Basis: "theoretical peak: 2 cores × 3.40 GHz (measured) × 64 per cycle (AVX-512, 2 FMA units (Zen 5))", Verdict: hwbench.OK},
			{ID: "cpu.gemm.int8", Group: "compute", Device: "cpu", Name: "INT8 GEMM (DynamicQuantizeMatMul)", Value: 310, Unit: "GOPS", Expected: 1740.8, Percent: 17.8,
				Verdict: hwbench.Below, Cause: "likely: the powersave governor of acpi-cpufreq holds the cores at their minimum clock", Next: "cpupower frequency-set -g performance (as root)"},
			{ID: "cpu.gemm.int8_speedup", Group: "compute", Device: "cpu", Name: "INT8 / FP32 GEMM", Value: 1.44, Unit: "×", Verdict: hwbench.Below,
				Cause: "INT8 gains less over FP32 than the ISA allows", Note: "AVX512-VNNI should give at least 2×"},
			{ID: "cpu.memory.copy", Group: "memory", Device: "cpu", Name: "host memory copy", Value: 18.4, Unit: "GB/s", Verdict: hwbench.Info,
				Note: "no reference for this machine (add one to the reference table)"},
			{ID: "inference.vit-base-16", Group: "inference", Device: "cpu", Name: "vit-base-16 INT8 b1 (CPU, fused)", Verdict: hwbench.Fault,
				Error: "worker exited with status 134 (worker stderr: terminate called)", Unit: "samples/s"},
			{ID: "health.cpu.governor", Group: "health", Device: "cpu", Name: "frequency scaling", Verdict: hwbench.Below, Note: "acpi-cpufreq · governor powersave",
				Cause: "the powersave governor of acpi-cpufreq holds the cores at their minimum clock", Next: "cpupower frequency-set -g performance (as root)"},
			{ID: "health.cpu.steal", Group: "health", Device: "cpu", Name: "steal time", Value: 0, Unit: "%", Verdict: hwbench.OK},
		},
		Warnings: []string{"transfers: this execution provider has no pinned host memory"},
		Verdict:  hwbench.Fault,
	}
}

func TestRenderBenchGolden(t *testing.T) {
	got := renderBench(benchFixture(), plainStyles(), 40)
	path := filepath.Join("testdata", "doctor_bench.golden")
	if updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with QUANTSCOPE_UPDATE_GOLDEN=1 to create it)", err)
	}
	if got != string(want) {
		t.Errorf("rendering differs from %s (QUANTSCOPE_UPDATE_GOLDEN=1 rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
	if strings.Contains(got, "\x1b") {
		t.Error("plain rendering contains escape codes")
	}
}

// TestDoctorBenchNeedsORT: without ONNX Runtime nothing is measured and the
// exit status is doctor's own.
func TestDoctorBenchNeedsORT(t *testing.T) {
	sys := noGPUSystem(t)
	sys.probe = missingORT
	var stdout, stderr bytes.Buffer
	g := &globalOptions{stdout: &stdout, stderr: &stderr}
	err := runDoctor(context.Background(), g, doctorOptions{sys: sys, bench: doctorBenchOptions{enabled: true, ep: "auto"}})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err %v, want exit 1", err)
	}
	if strings.Contains(stdout.String(), "Bench (") || stderr.Len() != 0 {
		t.Errorf("measured without ONNX Runtime:\n%s\n%s", stdout.String(), stderr.String())
	}
	for _, bad := range []doctorBenchOptions{{enabled: true, ep: "rocm"}, {enabled: true, ep: "cpu", minPercent: -5}} {
		err := runDoctor(context.Background(), g, doctorOptions{sys: noGPUSystem(t), bench: bad})
		if err == nil || errors.As(err, &ee) {
			t.Errorf("%+v: err %v, want a usage error", bad, err)
		}
	}
}

func TestDoctorBenchFlagsNeedBench(t *testing.T) {
	for _, args := range [][]string{{"--quick"}, {"--min-percent", "50"}, {"--ep", "cpu"}, {"--gpu", "1"}, {"--threads", "2"}} {
		var stdout, stderr bytes.Buffer
		cmd := newRootCmd(&stdout, &stderr)
		cmd.SetArgs(append([]string{"doctor"}, args...))
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), args[0]+" needs --bench") {
			t.Errorf("doctor %v: %v", args, err)
		}
		if stdout.Len() != 0 {
			t.Errorf("doctor %v ran: %s", args, stdout.String())
		}
	}
}

// TestDoctorBenchOnCPU runs the whole command, quick, on this machine's
// CPU: every figure measured is positive, every percentage in (0, 120], and
// --min-percent turns figures under it into exit status 3.
func TestDoctorBenchOnCPU(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	t.Setenv("QUANTSCOPE_CACHE_DIR", filepath.Join(dir, "cache"))
	stdout, stderr, code := cli(t, dir, "doctor", "--bench", "--quick", "--ep", "cpu", "--json", "--min-percent", "99.9")
	var out struct {
		OK    bool            `json:"ok"`
		Bench *hwbench.Report `json:"bench"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.Bench == nil {
		t.Fatalf("exit %d, JSON %v\nstdout %s\nstderr %s", code, err, stdout, stderr)
	}
	rep := out.Bench
	if code != exitBelowMinPercent || !strings.Contains(stderr, "below 99.9%") {
		t.Errorf("exit %d, want %d (figures below --min-percent 99.9)\nstderr %s", code, exitBelowMinPercent, stderr)
	}
	if rep.Schema != hwbench.SchemaVersion || !rep.Quick || rep.Machine.EP != "cpu" || rep.Machine.Cores < 1 || len(rep.Steps) < 6 {
		t.Errorf("report header %+v", rep)
	}
	for _, id := range []string{"cpu.gemm.fp32", "cpu.gemm.int8", "cpu.gemm.int8_speedup", "cpu.memory.copy", "inference.deit-tiny",
		"health.cpu.governor", "health.cpu.steal", "health.cpu.load"} {
		if _, ok := rep.Line(id); !ok {
			t.Errorf("line %s missing", id)
		}
	}
	percents := 0
	for _, l := range rep.Lines {
		if l.Error != "" {
			t.Errorf("%s failed: %s", l.ID, l.Error)
			continue
		}
		figure := l.Group != hwbench.GroupHealth && l.Unit != ""
		if figure && l.Value <= 0 {
			t.Errorf("%s: figure %v %s, want positive", l.ID, l.Value, l.Unit)
		}
		if l.Expected > 0 {
			percents++
			if l.Percent <= 0 || l.Percent > 120 {
				t.Errorf("%s: %v%% of %v %s, want in (0, 120]", l.ID, l.Percent, l.Expected, l.Unit)
			}
		}
		if l.Verdict == "" {
			t.Errorf("%s has no verdict", l.ID)
		}
	}
	if percents < 2 {
		t.Errorf("%d percentages; the CPU GEMMs at least have peaks", percents)
	}
	for _, step := range []string{"[1/", "FP32 GEMM (CPU)", "inference deit-tiny"} {
		if !strings.Contains(stderr, step) {
			t.Errorf("progress %q missing from stderr:\n%s", step, stderr)
		}
	}
}
