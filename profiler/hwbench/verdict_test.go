package hwbench

import (
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/quantscope/quantscope/profiler/telemetry"
	"github.com/quantscope/quantscope/profiler/telemetry/telemetrytest"
)

// gpuUnderLoad reads a fake GPU through the real health probe and feeds n
// busy readings, as Run's watcher does while GEMMs run.
func gpuUnderLoad(t *testing.T, g telemetrytest.GPU, n int) GPUState {
	t.Helper()
	srv := telemetrytest.DGXH100(0)
	g.UtilizationPct = 100
	srv.GPUs = []telemetrytest.GPU{g}
	p, err := telemetry.OpenGPUProbe(srv.NVML(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st := GPUState{Start: p.Health()}
	st.OtherProcs = otherProcesses(st.Start.Processes)
	for i := 0; i < n; i++ {
		st.add(p.Load())
	}
	return st
}

func lineByID(t *testing.T, lines []Line, id string) Line {
	t.Helper()
	for _, l := range lines {
		if l.ID == id {
			return l
		}
	}
	t.Fatalf("no line %s in %+v", id, lines)
	return Line{}
}

func TestGPUHealthVerdicts(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(g *telemetrytest.GPU)
		id      string
		verdict Verdict
		cause   string // substring of the cause
		next    string // substring of the next step
	}{
		{"healthy clock", func(*telemetrytest.GPU) {}, "health.gpu.clock", OK, "", ""},
		{"healthy link", func(*telemetrytest.GPU) {}, "health.gpu.pcie", OK, "", ""},
		{"healthy ECC", func(*telemetrytest.GPU) {}, "health.gpu.ecc", OK, "", ""},
		{"thermal throttling", func(g *telemetrytest.GPU) {
			g.SMClockMHz, g.TemperatureC = 1100, 88
			g.ThrottleReasons = nvml.ClocksThrottleReasonHwThermalSlowdown
		}, "health.gpu.clock", Fault, "hardware slowdown (hw thermal slowdown)", "cooling"},
		{"over the slowdown temperature", func(g *telemetrytest.GPU) { g.TemperatureC = 88 }, "health.gpu.temperature", Fault, "slowdown threshold (87 °C)", "fans"},
		{"near the slowdown temperature", func(g *telemetrytest.GPU) { g.TemperatureC = 84 }, "health.gpu.temperature", Below, "within 5 °C", ""},
		{"software thermal slowdown", func(g *telemetrytest.GPU) {
			g.SMClockMHz, g.TemperatureC = 1500, 85
			g.ThrottleReasons = nvml.ClocksEventReasonSwThermalSlowdown
		}, "health.gpu.clock", Below, "for temperature (85 °C, slowdown at 87 °C)", "airflow"},
		{"power cap lowered", func(g *telemetrytest.GPU) {
			g.PowerLimitMW, g.SMClockMHz = 400_000, 1400
			g.ThrottleReasons = nvml.ClocksEventReasonSwPowerCap
		}, "health.gpu.power", Below, "lowered to 400 W of the default 700 W", "nvidia-smi -pl 700"},
		{"clock held by the power cap", func(g *telemetrytest.GPU) {
			g.PowerLimitMW, g.SMClockMHz = 400_000, 1400
			g.ThrottleReasons = nvml.ClocksEventReasonSwPowerCap
		}, "health.gpu.clock", Below, "power limit", "power limit line"},
		{"power-bound at full clocks is normal", func(g *telemetrytest.GPU) {
			g.SMClockMHz, g.ThrottleReasons = 1830, nvml.ClocksEventReasonSwPowerCap
		}, "health.gpu.clock", OK, "", ""},
		{"application clocks", func(g *telemetrytest.GPU) {
			g.SMClockMHz, g.ThrottleReasons = 1980, nvml.ClocksEventReasonApplicationsClocksSetting
		}, "health.gpu.clock", Below, "application clocks", "nvidia-smi -rac"},
		{"x4 link", func(g *telemetrytest.GPU) { g.PCIeWidth = 4 }, "health.gpu.pcie", Fault, "trained at x4 of x16", "reseat"},
		{"Gen3 under load", func(g *telemetrytest.GPU) { g.PCIeGen = 3 }, "health.gpu.pcie", Below, "Gen3 of Gen5 under load", "BIOS"},
		{"uncorrectable ECC errors", func(g *telemetrytest.GPU) { g.ECCErrors[1][0], g.ECCErrors[1][1] = 2, 2 }, "health.gpu.ecc", Fault, "2 uncorrectable ECC errors since the driver loaded", "drain the node"},
		{"uncorrectable errors in the past", func(g *telemetrytest.GPU) { g.ECCErrors[1][1] = 5 }, "health.gpu.ecc", Below, "5 uncorrectable ECC errors in the GPU's history", "dcgmi diag"},
		{"ECC off", func(g *telemetrytest.GPU) { g.ECCEnabled = false }, "health.gpu.ecc", Below, "ECC is off", "nvidia-smi -e 1"},
		{"row remap failed", func(g *telemetrytest.GPU) { g.RemapFailure = true }, "health.gpu.memory_rows", Fault, "no spare rows", "RMA"},
		{"row remap pending", func(g *telemetrytest.GPU) { g.RemapPending = true }, "health.gpu.memory_rows", Below, "waits for a GPU reset", "nvidia-smi -r"},
		{"many retired pages (pre-Ampere)", func(g *telemetrytest.GPU) {
			g.Fail = map[string]nvml.Return{telemetrytest.FieldRemapped: nvml.ERROR_NOT_SUPPORTED}
			g.RetiredSBE = make([]uint64, 58)
			g.RetiredDBE = []uint64{1, 2}
		}, "health.gpu.memory_rows", Fault, "60 pages retired", "RMA"},
		{"MIG on", func(g *telemetrytest.GPU) { g.MIGEnabled = true }, "health.gpu.mig", Below, "MIG is on", "nvidia-smi -mig 0"},
		{"other processes", func(g *telemetrytest.GPU) {
			g.Processes = []nvml.ProcessInfo{{Pid: 4000123, UsedGpuMemory: 3 << 30}}
		}, "health.gpu.processes", Below, "1 other processes use the GPU (4000123; 3.0 GiB)", "idle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := telemetrytest.H100(0)
			tc.mutate(&g)
			lines := gpuHealthLines(gpuUnderLoad(t, g, 8), "gpu0")
			l := lineByID(t, lines, tc.id)
			if l.Verdict != tc.verdict || !strings.Contains(l.Cause, tc.cause) || !strings.Contains(l.Next, tc.next) {
				t.Errorf("%s: %s, cause %q, next %q; want %s, %q, %q", tc.id, l.Verdict, l.Cause, l.Next, tc.verdict, tc.cause, tc.next)
			}
			if tc.verdict == OK && l.Cause != "" {
				t.Errorf("an ok line has a cause: %q", l.Cause)
			}
		})
	}
}

func TestGPUHealthFigures(t *testing.T) {
	g := telemetrytest.H100(0)
	g.PCIeWidth, g.SMClockMHz = 4, 1386
	lines := gpuHealthLines(gpuUnderLoad(t, g, 4), "gpu0")
	link := lineByID(t, lines, "health.gpu.pcie")
	if !near(link.Value, 15.75, 0.01) || !near(link.Expected, 63.0, 0.01) || link.Percent != 25 || link.Note != "Gen5 x4" {
		t.Errorf("x4 link %+v", link)
	}
	clock := lineByID(t, lines, "health.gpu.clock")
	if clock.Value != 1386 || clock.Expected != 1980 || clock.Percent != 70 || clock.Verdict != Below {
		t.Errorf("clock %+v", clock)
	}
	// Without load the clock is an idle reading and not judged.
	idle := lineByID(t, gpuHealthLines(gpuUnderLoad(t, telemetrytest.H100(0), 0), "gpu0"), "health.gpu.clock")
	if idle.Verdict != Info || idle.Percent != 0 {
		t.Errorf("idle clock judged: %+v", idle)
	}
}

func TestCPUHealthVerdicts(t *testing.T) {
	boostOff := false
	base := telemetry.CPUFreq{Available: true, Driver: "acpi-cpufreq", Governors: []string{"performance"}, MaxMHz: 3500, ScalingMaxMHz: 3500}
	tests := []struct {
		name    string
		state   func(c *CPUState)
		id      string
		verdict Verdict
		cause   string
		next    string
	}{
		{"healthy", func(*CPUState) {}, "health.cpu.clock", OK, "", ""},
		{"powersave governor", func(c *CPUState) {
			c.Freq.Governors = []string{"powersave"}
		}, "health.cpu.governor", Below, "powersave governor of acpi-cpufreq", "cpupower frequency-set -g performance"},
		{"powersave holds the clock at its minimum", func(c *CPUState) {
			c.Freq.Governors = []string{"powersave"}
			c.Clock.GHz = 1.2
		}, "health.cpu.clock", Below, "powersave governor", "cpupower"},
		{"powersave under intel_pstate scales dynamically", func(c *CPUState) {
			c.Freq.Driver, c.Freq.Governors = "intel_pstate", []string{"powersave"}
		}, "health.cpu.governor", OK, "", ""},
		{"EPP power", func(c *CPUState) {
			c.Freq.Driver, c.Freq.Governors, c.Freq.EPP = "amd-pstate-epp", []string{"powersave"}, []string{"power"}
		}, "health.cpu.governor", Below, "energy_performance_preference=power", ""},
		{"boost off", func(c *CPUState) { c.Freq.Boost = &boostOff }, "health.cpu.governor", Below, "turbo/boost is disabled", ""},
		{"scaling_max_freq cap", func(c *CPUState) { c.Freq.ScalingMaxMHz = 2000 }, "health.cpu.governor", Below, "caps the clock at 2000 of 3500 MHz", "cpupower frequency-set -u 3500MHz"},
		{"slow clock with nothing to blame", func(c *CPUState) { c.Clock.GHz = 1.4 }, "health.cpu.clock", Fault, "thermal or power limit", "turbostat"},
		{"steal time", func(c *CPUState) { c.StealPct = 12 }, "health.cpu.steal", Below, "other guests on these cores 12%", "dedicated"},
		{"other load", func(c *CPUState) { c.OtherDuring = 1.5 }, "health.cpu.load", Below, "kept 1.5 of 2 cores busy", "idle node"},
		{"virtual machine without cpufreq", func(c *CPUState) {
			c.Freq = telemetry.CPUFreq{NominalMHz: 2096}
			c.Clock.GHz = 3.4
		}, "health.cpu.clock", Info, "", ""},
		{"virtual machine far below nominal", func(c *CPUState) {
			c.Freq = telemetry.CPUFreq{NominalMHz: 2096}
			c.Clock.GHz = 1.0
		}, "health.cpu.clock", Below, "of their nominal clock", "power profile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := CPUState{Freq: base, Clock: &ClockReading{GHz: 3.4}}
			c.Freq.Governors = append([]string(nil), base.Governors...)
			tc.state(&c)
			l := lineByID(t, cpuHealthLines(c, 2, true), tc.id)
			if l.Verdict != tc.verdict || !strings.Contains(l.Cause, tc.cause) || !strings.Contains(l.Next, tc.next) {
				t.Errorf("%s: %s, cause %q, next %q; want %s, %q, %q", tc.id, l.Verdict, l.Cause, l.Next, tc.verdict, tc.cause, tc.next)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	s := share{ok: 0.6, fault: 0.2}
	for _, tc := range []struct {
		value, expected float64
		verdict         Verdict
		percent         float64
	}{
		{700, 1000, OK, 70}, {600, 1000, OK, 60}, {599, 1000, Below, 59.9}, {200, 1000, Below, 20}, {150, 1000, Fault, 15},
		{500, 0, Info, 0}, {0, 1000, Info, 0},
	} {
		l := Line{Value: tc.value, Expected: tc.expected}
		judge(&l, s)
		if l.Verdict != tc.verdict || l.Percent != tc.percent {
			t.Errorf("%v of %v: %s %v%%, want %s %v%%", tc.value, tc.expected, l.Verdict, l.Percent, tc.verdict, tc.percent)
		}
	}
	failed := Line{Error: "boom", Verdict: Fault, Value: 1, Expected: 2}
	judge(&failed, s)
	if failed.Verdict != Fault || failed.Percent != 0 {
		t.Errorf("a failed line was judged: %+v", failed)
	}
}

// TestAttribute: figures below expectation take their device's health
// causes; sharing the machine never makes a fault; nothing to blame says so.
func TestAttribute(t *testing.T) {
	lines := []Line{
		{ID: "gpu.gemm.fp16", Group: GroupCompute, Device: "gpu0", Verdict: Fault},
		{ID: "cpu.gemm.fp32", Group: GroupCompute, Device: "cpu", Verdict: Fault},
		{ID: "cpu.memory.copy", Group: GroupMemory, Device: "cpu", Verdict: OK},
		{ID: "inference.deit-tiny", Group: GroupInference, Device: "cpu", Verdict: Below, Cause: "its own"},
		{ID: "health.gpu.pcie", Group: GroupHealth, Device: "gpu0", Verdict: Fault, Cause: "the link trained at x4 of x16", Next: "reseat"},
		{ID: "health.cpu.load", Group: GroupHealth, Device: "cpu", Verdict: Below, Cause: "other processes kept 1.5 of 2 cores busy", Next: "rerun"},
	}
	attribute(lines)
	if g := lines[0]; g.Verdict != Fault || !strings.Contains(g.Cause, "x4 of x16") || !strings.Contains(g.Cause, "other processes") || g.Next != "reseat" {
		t.Errorf("GPU GEMM: %+v", g)
	}
	if c := lines[1]; c.Verdict != Below || c.Cause != "likely: other processes kept 1.5 of 2 cores busy" || c.Next != "rerun" {
		t.Errorf("CPU GEMM with only load to blame: %+v", c)
	}
	if lines[2].Cause != "" || lines[3].Cause != "its own" {
		t.Errorf("ok or explained lines changed: %+v %+v", lines[2], lines[3])
	}
	alone := []Line{{ID: "gpu.gemm.fp16", Group: GroupCompute, Device: "gpu0", Verdict: Below}}
	attribute(alone)
	if !strings.Contains(alone[0].Cause, "no health cause found") || alone[0].Next == "" {
		t.Errorf("nothing to blame: %+v", alone[0])
	}
}

func TestMinINT8Speedup(t *testing.T) {
	for isa, want := range map[string]float64{"AVX512-VNNI": 2, "AMX-INT8": 2, "AVX-VNNI": 2, "AVX2 (no VNNI)": 1} {
		if got := minINT8Speedup(isa); got != want {
			t.Errorf("%s: %v, want %v", isa, got, want)
		}
	}
}
