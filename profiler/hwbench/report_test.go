package hwbench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/quantscope/quantscope/profiler/telemetry"
	"github.com/quantscope/quantscope/profiler/telemetry/telemetrytest"
)

// updateGolden rewrites golden files: QUANTSCOPE_UPDATE_GOLDEN=1 go test ./profiler/hwbench
var updateGolden = os.Getenv("QUANTSCOPE_UPDATE_GOLDEN") != ""

// fixtureReport is a GPU machine's report with every kind of line: a
// throttled H100 on an x4 link with a lowered power cap.
func fixtureReport(t *testing.T) *Report {
	t.Helper()
	g := telemetrytest.H100(0)
	g.PCIeWidth, g.SMClockMHz, g.PowerLimitMW = 4, 1500, 500_000
	g.ThrottleReasons = nvml.ClocksEventReasonSwPowerCap
	g.ECCErrors[0][0] = 3
	gs := gpuUnderLoad(t, g, 6)
	cpu := CPUState{
		Freq:  telemetry.CPUFreq{Available: true, Driver: "intel_pstate", Governors: []string{"performance"}, CurMHz: 3400, MaxMHz: 3800, ScalingMaxMHz: 3800},
		Clock: &ClockReading{GHz: 3.6, PerCore: []float64{3.58, 3.62}, Bursts: 400}, OtherBefore: 0.1, OtherDuring: 0.2, StealPct: 0,
	}
	rep := &Report{
		Schema: SchemaVersion, Started: time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC), Seconds: 52.3,
		Machine: Machine{Hostname: "gpu-node-7", CPU: "Intel(R) Xeon(R) Platinum 8480+", Vendor: "GenuineIntel", Family: 6, Model: 143, Cores: 56,
			ISA: []string{"AVX2", "AVX-512F", "AVX512-VNNI", "AMX-TILE", "AMX-INT8"}, GPU: "NVIDIA H100 80GB HBM3", Driver: "580.95.05",
			ORT: "1.29.0", EP: "cuda", EPReason: "auto: CUDA (plugin)", CPUKey: "cpu:GenuineIntel:6:143:56", GPUKey: "gpu:H100 SXM",
			LoadStart: 0.4, LoadEnd: 3.1},
		CPU: cpu, GPU: &gs, Lines: []Line{},
		Steps: []StepTime{{"core clock", 0.5}, {"FP16 GEMM (GPU)", 6.1}},
	}
	fp16 := Line{ID: "gpu.gemm.fp16", Group: GroupCompute, Device: "gpu0", Name: "FP16 GEMM", Value: 512.4, Unit: "TFLOP/s", Expected: 989.4,
		Basis: "theoretical peak: 132 SMs × 1830 MHz (H100 SXM datasheet clock) × 4096 per SM per clock (Hopper, tensor cores, dense)"}
	judge(&fp16, shareGPUGEMM[FP16])
	int8 := Line{ID: "gpu.gemm.int8", Group: GroupCompute, Device: "gpu0", Name: "INT8 GEMM (MatMulInteger)", Unit: "TOPS", Verdict: Info,
		Error: "CUDAExecutionProvider lacks kernels for part of this model: 1 on CPUExecutionProvider of 4 nodes ran elsewhere; not timed"}
	mem := Line{ID: "cpu.memory.copy", Group: GroupMemory, Device: "cpu", Name: "host memory copy", Value: 210.5, Unit: "GB/s", Verdict: Info,
		Note: "no reference for this machine (add one to the reference table)"}
	inf := Line{ID: "inference.vit-base-16", Group: GroupInference, Device: "gpu0", Name: "vit-base-16 FP16 b32 (CUDA, fused)", Value: 3102, Unit: "samples/s",
		Expected: 3538, Basis: "reference NVIDIA H200, onnxruntime, 2026-11: plain C loop"}
	judge(&inf, shareReference)
	rep.Lines = append(rep.Lines, fp16, int8, mem, inf)
	rep.Lines = append(rep.Lines, cpuHealthLines(cpu, 56, false)...)
	rep.Lines = append(rep.Lines, gpuHealthLines(gs, "gpu0")...)
	attribute(rep.Lines)
	rep.Verdict = OK
	for _, l := range rep.Lines {
		rep.Verdict = worse(rep.Verdict, l.Verdict)
	}
	return rep
}

// TestReportJSONSchema pins the --json layout: a change to a field name or
// meaning shows up here (bump SchemaVersion when one is removed or renamed).
func TestReportJSONSchema(t *testing.T) {
	rep := fixtureReport(t)
	got, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "report.golden.json")
	if updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (QUANTSCOPE_UPDATE_GOLDEN=1 writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("report JSON differs from %s (QUANTSCOPE_UPDATE_GOLDEN=1 rewrites it):\n%s", path, got)
	}
	// Every field survives a round trip: nothing is written that cannot be read.
	var back Report
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.MarshalIndent(&back, "", "  ")
	if !bytes.Equal(append(again, '\n'), want) {
		t.Error("the report does not survive a JSON round trip")
	}
	// The keys fleets script against.
	var top map[string]any
	json.Unmarshal(want, &top)
	for _, k := range []string{"schema", "machine", "lines", "cpu_health", "gpu_health", "verdict", "steps"} {
		if _, ok := top[k]; !ok {
			t.Errorf("key %q missing", k)
		}
	}
	line := top["lines"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "group", "device", "name", "value", "unit", "expected", "basis", "percent", "verdict", "cause", "next"} {
		if _, ok := line[k]; !ok {
			t.Errorf("line key %q missing", k)
		}
	}
}

func TestReportGates(t *testing.T) {
	rep := fixtureReport(t)
	if rep.Verdict != Fault {
		t.Errorf("verdict %s, want fault (x4 link)", rep.Verdict)
	}
	faults := rep.Faults()
	if len(faults) != 1 || faults[0].ID != "health.gpu.pcie" {
		t.Errorf("faults %+v", faults)
	}
	low := rep.BelowPercent(60)
	ids := map[string]bool{}
	for _, l := range low {
		ids[l.ID] = true
	}
	if !ids["gpu.gemm.fp16"] || !ids["health.gpu.pcie"] || ids["inference.vit-base-16"] || ids["gpu.gemm.int8"] {
		t.Errorf("below 60%%: %v", ids)
	}
	if rep.BelowPercent(0) != nil {
		t.Error("--min-percent 0 gates")
	}
	if l, ok := rep.Line("gpu.gemm.fp16"); !ok || l.Verdict != Below || l.Cause == "" {
		t.Errorf("FP16 line %+v", l)
	}
}

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{215.3, "GFLOP/s", "215 GFLOP/s"}, {15.75, "GB/s", "15.8 GB/s"}, {2.714, "×", "2.71×"}, {0, "%", "0.00%"}, {71, "°C", "71.0°C"}, {3.5, "", "3.50"},
	} {
		if got := FormatValue(tc.v, tc.unit); got != tc.want {
			t.Errorf("%v %q: %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}
