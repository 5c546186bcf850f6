package hwbench

import (
	"fmt"
	"slices"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/quantscope/quantscope/profiler/telemetry"
)

// share is how much of its Expected figure a healthy machine reaches: at
// least ok is ok, under fault is a fault, in between below expectation.
type share struct{ ok, fault float64 }

// The expectations. GEMM shares are of the theoretical peak; what vendor
// libraries reach on large square GEMMs is 70–90% (cuBLAS FP16 on H100/H200:
// ~790 of 989 TFLOP/s measured here, KINDS.md), ONNX Runtime adds little on
// top, so 60% is the bar for a healthy FP16 GEMM. MLAS on two
// shared vCPUs reaches less of the peak than on a whole socket; the CPU
// shares are set from what this project measured (README). Memory streams
// reach 80–90% of the datasheet on HBM; pinned PCIe copies ~85% of the link,
// pageable ones half that or less. A reference figure from the same engine
// on the same machine model is expected within 20%.
var (
	shareCPUFP32      = share{ok: 0.40, fault: 0.10}
	shareCPUINT8      = share{ok: 0.30, fault: 0.08}
	shareDeviceMemory = share{ok: 0.70, fault: 0.30}
	sharePCIePinned   = share{ok: 0.70, fault: 0.30}
	sharePCIePageable = share{ok: 0.30, fault: 0.10}
	shareReference    = share{ok: 0.80, fault: 0.40}
	shareGPUGEMM      = map[Precision]share{
		FP32: {ok: 0.60, fault: 0.20},
		TF32: {ok: 0.50, fault: 0.17},
		FP16: {ok: 0.60, fault: 0.20},
		INT8: {ok: 0.30, fault: 0.10},
	}
)

// minINT8Speedup is what INT8 GEMM should gain over FP32 per ISA: VNNI and
// AMX do four times FP32's multiply-adds per cycle, so 2× survives the
// quantization overhead (the bar); without VNNI the ISA gives 4/3.
func minINT8Speedup(int8ISA string) float64 {
	switch int8ISA {
	case "AMX-INT8", "AVX512-VNNI", "AVX-VNNI":
		return 2
	}
	return 1
}

// judge sets l's percentage and verdict from Value against Expected.
func judge(l *Line, s share) {
	if l.Error != "" {
		return
	}
	if l.Expected <= 0 || l.Value <= 0 {
		if l.Verdict == "" {
			l.Verdict = Info
		}
		return
	}
	l.Percent = round1(100 * l.Value / l.Expected)
	frac := l.Value / l.Expected
	switch {
	case frac >= s.ok:
		l.Verdict = OK
	case frac < s.fault:
		l.Verdict = Fault
	default:
		l.Verdict = Below
	}
	if l.Verdict != OK {
		l.Note = strings.TrimPrefix(l.Note+fmt.Sprintf("; a healthy machine reaches %.0f%%", 100*s.ok), "; ")
	}
}

func round1(v float64) float64 {
	return float64(int64(v*10+0.5)) / 10
}

// cpuHealthLines judges the host: clock, frequency governor, steal time and
// other processes' load. cores is the number of cores the run used.
func cpuHealthLines(c CPUState, cores int, virtual bool) []Line {
	var out []Line
	f := c.Freq

	// The clock, measured, against the hardware maximum where known.
	if c.Clock != nil && c.Clock.GHz > 0 {
		l := Line{ID: "health.cpu.clock", Group: GroupHealth, Device: "cpu", Name: "core clock under load",
			Value: round3(c.Clock.GHz), Unit: "GHz"}
		switch {
		case f.MaxMHz > 0:
			l.Expected = round3(f.MaxMHz / 1000)
			l.Basis = "cpuinfo_max_freq"
			judge(&l, share{ok: 0.85, fault: 0.5})
			if l.Verdict != OK {
				var setting bool
				l.Cause, l.Next, setting = clockCause(f)
				if setting && l.Verdict == Fault {
					l.Verdict = Below // a setting holds it down, nothing is broken
				}
			}
		case f.NominalMHz > 0:
			l.Verdict = Info
			l.Note = fmt.Sprintf("nominal %.2f GHz (/proc/cpuinfo); no cpufreq maximum to compare with", f.NominalMHz/1000)
			if c.Clock.GHz < 0.7*f.NominalMHz/1000 {
				l.Verdict = Below
				l.Cause = fmt.Sprintf("the cores run at %.0f%% of their nominal clock", 100*c.Clock.GHz/(f.NominalMHz/1000))
				l.Next = "check the host's power profile (BIOS: maximum performance) and, in a VM, the hypervisor's CPU limits"
			}
		default:
			l.Verdict = Info
		}
		out = append(out, l)
	}

	g := Line{ID: "health.cpu.governor", Group: GroupHealth, Device: "cpu", Name: "frequency scaling", Verdict: OK}
	switch {
	case !f.Available:
		g.Verdict = Info
		g.Note = "no cpufreq interface"
		if virtual {
			g.Note += " (virtual machine: the host decides the clock)"
		}
	default:
		g.Note = strings.TrimSpace(f.Driver + " · governor " + strings.Join(f.Governors, ","))
		if len(f.EPP) > 0 {
			g.Note += " · EPP " + strings.Join(f.EPP, ",")
		}
		if cause, next := governorCause(f); cause != "" {
			g.Verdict, g.Cause, g.Next = Below, cause, next
		}
	}
	out = append(out, g)

	s := Line{ID: "health.cpu.steal", Group: GroupHealth, Device: "cpu", Name: "steal time", Value: round1(c.StealPct), Unit: "%", Verdict: OK}
	if c.StealPct >= 2 {
		s.Verdict = Below
		s.Cause = fmt.Sprintf("the hypervisor ran other guests on these cores %.0f%% of the time", c.StealPct)
		s.Next = "use dedicated (pinned) vCPUs or a less loaded host"
	}
	out = append(out, s)

	other := max(c.OtherBefore, c.OtherDuring)
	o := Line{ID: "health.cpu.load", Group: GroupHealth, Device: "cpu", Name: "other processes' load", Value: round1(other), Unit: "cores", Verdict: OK,
		Note: fmt.Sprintf("%.1f cores before the run, %.1f during it", c.OtherBefore, c.OtherDuring)}
	if cores > 0 && other > max(0.25, 0.1*float64(cores)) {
		o.Verdict = Below
		o.Cause = fmt.Sprintf("other processes kept %.1f of %d cores busy", other, cores)
		o.Next = "rerun on an idle node (top shows who); the figures share the cores"
	}
	out = append(out, o)
	return out
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// clockCause explains a core clock below the hardware maximum; setting is
// true when a frequency-scaling setting explains it.
func clockCause(f telemetry.CPUFreq) (cause, next string, setting bool) {
	if c, n := governorCause(f); c != "" {
		return c, n, true
	}
	return "the cores run below their maximum clock (thermal or power limit, or a firmware power profile)",
		"check cooling and the BIOS power profile (maximum performance); turbostat shows the limits", false
}

// governorCause finds a frequency-scaling setting that holds the clock
// down; "" when there is none.
func governorCause(f telemetry.CPUFreq) (cause, next string) {
	dynamicPowersave := f.Driver == "intel_pstate" || f.Driver == "amd-pstate-epp"
	switch {
	case slices.Contains(f.Governors, "powersave") && !dynamicPowersave:
		return fmt.Sprintf("the powersave governor of %s holds the cores at their minimum clock", orUnknown(f.Driver)),
			"cpupower frequency-set -g performance (as root)"
	case slices.Contains(f.Governors, "userspace"):
		return "the userspace governor fixes the clock", "cpupower frequency-set -g performance (as root)"
	case slices.Contains(f.EPP, "power"):
		return "energy_performance_preference=power favours power over speed",
			"set energy_performance_preference to performance (cpupower frequency-set -g performance)"
	case f.Boost != nil && !*f.Boost:
		return "turbo/boost is disabled", "enable it (intel_pstate/no_turbo=0, cpufreq/boost=1) or in the BIOS"
	case f.MaxMHz > 0 && f.ScalingMaxMHz > 0 && f.ScalingMaxMHz < 0.95*f.MaxMHz:
		return fmt.Sprintf("scaling_max_freq caps the clock at %.0f of %.0f MHz", f.ScalingMaxMHz, f.MaxMHz),
			"cpupower frequency-set -u " + fmt.Sprintf("%.0fMHz", f.MaxMHz)
	}
	return "", ""
}

func orUnknown(s string) string {
	if s == "" {
		return "the cpufreq driver"
	}
	return s
}

// Throttle reasons that mean hardware trouble rather than policy.
const hwThrottle = nvml.ClocksThrottleReasonHwSlowdown | nvml.ClocksThrottleReasonHwThermalSlowdown | nvml.ClocksThrottleReasonHwPowerBrakeSlowdown

// gpuHealthLines judges a GPU: clocks and throttling, power limit,
// temperature, PCIe link, ECC, retired or remapped memory, MIG mode and
// other processes.
func gpuHealthLines(g GPUState, dev string) []Line {
	h := g.Start
	var out []Line
	busy := g.busySamples > 0 || g.MeanSMClock > 0

	c := Line{ID: "health.gpu.clock", Group: GroupHealth, Device: dev, Name: "SM clock under load", Unit: "MHz"}
	if busy {
		c.Value = round1(g.MeanSMClock)
		c.Note = fmt.Sprintf("min %d MHz over %d readings", g.MinSMClock, g.Samples)
	} else {
		c.Value = float64(h.SMClockMHz)
		c.Note = "idle reading (no load seen)"
	}
	if h.MaxSMClockMHz > 0 && busy {
		c.Expected, c.Basis = float64(h.MaxSMClockMHz), "NVML max SM clock"
		judge(&c, share{ok: 0.8, fault: 0.4})
	} else {
		c.Verdict = Info
	}
	mask := g.ThrottleMask | h.ThrottleMask
	switch {
	case mask&hwThrottle != 0:
		c.Verdict = Fault
		c.Cause = "hardware slowdown (" + strings.Join(telemetry.ThrottleReasons(mask&hwThrottle), ", ") + "): over-temperature, power brake from the PSU, or an external signal"
		c.Next = "check cooling and power delivery (nvidia-smi -q -d PERFORMANCE); run dcgmi diag -r 3"
	case mask&nvml.ClocksEventReasonSwThermalSlowdown != 0:
		c.Verdict = worse(c.Verdict, Below)
		c.Cause = fmt.Sprintf("the driver slowed the clock for temperature (%d °C, slowdown at %d °C)", g.MaxTempC, h.SlowdownTempC)
		c.Next = "improve airflow or cooling; check fan and inlet temperature"
	case mask&nvml.ClocksEventReasonApplicationsClocksSetting != 0:
		c.Verdict = worse(c.Verdict, Below)
		c.Cause = "application clocks are set below the maximum"
		c.Next = "nvidia-smi -rac (reset application clocks)"
	case mask&nvml.ClocksEventReasonSwPowerCap != 0 && c.Verdict != OK:
		c.Cause = "the power limit holds the clock down"
		c.Next = "see the power limit line"
	case mask&nvml.ClocksEventReasonSwPowerCap != 0:
		c.Note += "; power-bound under full load (normal)"
	}
	out = append(out, c)

	p := Line{ID: "health.gpu.power", Group: GroupHealth, Device: dev, Name: "power limit", Value: round1(h.PowerLimitW), Unit: "W",
		Note: fmt.Sprintf("drew up to %.0f W", g.MaxPowerW)}
	if h.DefaultPowerLimitW > 0 && h.PowerLimitW > 0 {
		p.Expected, p.Basis = round1(h.DefaultPowerLimitW), "default power limit"
		judge(&p, share{ok: 0.95, fault: 0.5})
		if p.Verdict != OK {
			p.Cause = fmt.Sprintf("the power limit is lowered to %.0f W of the default %.0f W", h.PowerLimitW, h.DefaultPowerLimitW)
			p.Next = fmt.Sprintf("nvidia-smi -pl %.0f (as root), or lift the datacenter power cap", h.DefaultPowerLimitW)
			if p.Verdict == Fault {
				p.Verdict = Below // a setting, not broken hardware
			}
		}
	} else {
		p.Verdict = Info
	}
	out = append(out, p)

	temp := max(g.MaxTempC, h.TempC)
	t := Line{ID: "health.gpu.temperature", Group: GroupHealth, Device: dev, Name: "temperature (max)", Value: float64(temp), Unit: "°C", Verdict: OK}
	if h.SlowdownTempC > 0 {
		t.Note = fmt.Sprintf("slowdown at %d °C", h.SlowdownTempC)
		switch {
		case temp >= h.SlowdownTempC:
			t.Verdict, t.Cause = Fault, fmt.Sprintf("reached the slowdown threshold (%d °C)", h.SlowdownTempC)
			t.Next = "check fans, airflow and inlet temperature; the GPU throttles itself"
		case temp+5 >= h.SlowdownTempC:
			t.Verdict, t.Cause = Below, fmt.Sprintf("ran within 5 °C of the slowdown threshold (%d °C)", h.SlowdownTempC)
			t.Next = "check fans, airflow and inlet temperature"
		}
	} else {
		t.Verdict = Info
	}
	out = append(out, t)

	if link := h.PCIe; link != nil {
		gen, width := link.Gen, link.Width
		if g.MaxPCIeGen > 0 {
			gen, width = max(gen, g.MaxPCIeGen), max(width, g.MaxPCIeWidth)
		}
		l := Line{ID: "health.gpu.pcie", Group: GroupHealth, Device: dev, Name: "PCIe link", Unit: "GB/s",
			Value:    round1(PCIeGBs(gen, width)),
			Expected: round1(PCIeGBs(link.MaxGen, link.MaxWidth)),
			Basis:    fmt.Sprintf("Gen%d x%d, the best the GPU and slot can train at", link.MaxGen, link.MaxWidth),
			Note:     fmt.Sprintf("Gen%d x%d", gen, width),
			Verdict:  OK,
		}
		if best := PCIeGBs(link.MaxGen, link.MaxWidth); best > 0 {
			l.Percent = round1(100 * PCIeGBs(gen, width) / best)
		}
		switch {
		case width < link.MaxWidth:
			l.Verdict = Fault
			l.Cause = fmt.Sprintf("the link trained at x%d of x%d: a badly seated card, a riser or a slot fault", width, link.MaxWidth)
			l.Next = "reseat the card and check the riser; lspci -vv shows LnkSta against LnkCap"
		case gen < link.MaxGen && busy:
			l.Verdict = Below
			l.Cause = fmt.Sprintf("the link ran at Gen%d of Gen%d under load", gen, link.MaxGen)
			l.Next = "check the BIOS PCIe speed setting, the slot and the riser"
		case gen < link.MaxGen:
			l.Verdict = Info
			l.Note += " (idle: links drop their speed when idle)"
		}
		if link.GPUMaxGen > link.MaxGen {
			l.Note += fmt.Sprintf("; the slot tops out at Gen%d, the GPU supports Gen%d", link.MaxGen, link.GPUMaxGen)
		}
		out = append(out, l)
	}

	if e := h.ECC; e != nil {
		l := Line{ID: "health.gpu.ecc", Group: GroupHealth, Device: dev, Name: "ECC", Verdict: OK,
			Note: fmt.Sprintf("since driver load: %d uncorrectable, %d corrected; lifetime: %d uncorrectable, %d corrected",
				e.VolatileUncorrected, e.VolatileCorrected, e.AggregateUncorrected, e.AggregateCorrected)}
		switch {
		case !e.Enabled:
			l.Verdict, l.Note = Below, "ECC off"
			l.Cause, l.Next = "ECC is off: memory errors go undetected", "nvidia-smi -e 1 (as root), then reset the GPU"
		case e.VolatileUncorrected > 0:
			l.Verdict = Fault
			l.Cause = fmt.Sprintf("%d uncorrectable ECC errors since the driver loaded", e.VolatileUncorrected)
			l.Next = "drain the node; nvidia-smi -q -d ECC; run dcgmi diag -r 3 and RMA the GPU if errors return"
		case e.AggregateUncorrected > 0:
			l.Verdict = Below
			l.Cause = fmt.Sprintf("%d uncorrectable ECC errors in the GPU's history", e.AggregateUncorrected)
			l.Next = "watch the volatile count; run dcgmi diag -r 3"
		case e.VolatileCorrected > 1000:
			l.Verdict = Below
			l.Cause = fmt.Sprintf("%d corrected ECC errors since the driver loaded", e.VolatileCorrected)
			l.Next = "watch the rate; run dcgmi diag -r 3"
		}
		out = append(out, l)
	}

	switch {
	case h.Remapped != nil:
		r := h.Remapped
		l := Line{ID: "health.gpu.memory_rows", Group: GroupHealth, Device: dev, Name: "remapped rows", Verdict: OK,
			Note: fmt.Sprintf("%d correctable, %d uncorrectable", r.Correctable, r.Uncorrectable)}
		switch {
		case r.Failure:
			l.Verdict, l.Cause, l.Next = Fault, "a row remap failed: no spare rows left", "drain the node and RMA the GPU"
		case r.Pending:
			l.Verdict, l.Cause, l.Next = Below, "a row remap waits for a GPU reset", "reset the GPU when idle (nvidia-smi -r) or reboot"
		}
		out = append(out, l)
	case h.Retired != nil:
		r := h.Retired
		l := Line{ID: "health.gpu.memory_rows", Group: GroupHealth, Device: dev, Name: "retired pages", Verdict: OK,
			Note: fmt.Sprintf("%d for single-bit, %d for double-bit errors", r.SingleBit, r.DoubleBit)}
		switch {
		case r.SingleBit+r.DoubleBit >= 60:
			l.Verdict, l.Cause, l.Next = Fault, fmt.Sprintf("%d pages retired", r.SingleBit+r.DoubleBit), "drain the node and RMA the GPU"
		case r.Pending:
			l.Verdict, l.Cause, l.Next = Below, "a page retirement waits for a GPU reset", "reset the GPU when idle (nvidia-smi -r) or reboot"
		case r.DoubleBit > 0:
			l.Verdict, l.Cause, l.Next = Below, fmt.Sprintf("%d pages retired for double-bit errors", r.DoubleBit), "run dcgmi diag -r 3"
		}
		out = append(out, l)
	}

	if m := h.MIG; m != nil {
		l := Line{ID: "health.gpu.mig", Group: GroupHealth, Device: dev, Name: "MIG mode", Verdict: OK, Note: "off"}
		if m.Enabled {
			l.Verdict, l.Note = Below, "on"
			l.Cause = "MIG is on: CUDA sees a slice of the GPU, the peaks are the whole GPU's"
			l.Next = "nvidia-smi -mig 0 (as root, no instance in use), or judge the instance by its share"
		}
		if m.Pending != m.Enabled {
			l.Note += fmt.Sprintf(" (pending %v after reset)", m.Pending)
		}
		out = append(out, l)
	}

	o := Line{ID: "health.gpu.processes", Group: GroupHealth, Device: dev, Name: "other processes", Value: float64(len(g.OtherProcs)), Unit: "processes", Verdict: OK}
	if len(g.OtherProcs) > 0 {
		var names []string
		var bytes uint64
		for _, pr := range g.OtherProcs {
			n := fmt.Sprint(pr.PID)
			if pr.Name != "" {
				n += " " + pr.Name
			}
			names = append(names, n)
			bytes += pr.UsedBytes
		}
		o.Verdict = Below
		o.Cause = fmt.Sprintf("%d other processes use the GPU (%s; %.1f GiB)", len(g.OtherProcs), strings.Join(names, ", "), float64(bytes)/(1<<30))
		o.Next = "stop them or rerun when the GPU is idle: the figures share it"
	}
	out = append(out, o)
	return out
}

func worse(a, b Verdict) Verdict {
	if b.Rank() > a.Rank() {
		return b
	}
	return a
}

// attribute gives every figure judged below expectation or a fault, that
// has no cause of its own, the causes the health lines of its device found;
// a figure with only benign causes (load, steal, other processes) is at
// worst below expectation, not a fault.
func attribute(lines []Line) {
	causes := map[string][]Line{}
	for _, l := range lines {
		if l.Group == GroupHealth && l.Verdict.Rank() > 0 && l.Cause != "" {
			causes[l.Device] = append(causes[l.Device], l)
		}
	}
	for i := range lines {
		l := &lines[i]
		if l.Group == GroupHealth || l.Verdict.Rank() == 0 || l.Cause != "" || l.Error != "" {
			continue
		}
		found := causes[l.Device]
		if l.Device != "cpu" {
			// A GPU figure also depends on the host feeding it.
			found = append(found, causes["cpu"]...)
		}
		if len(found) == 0 {
			if l.Device == "cpu" {
				l.Cause = "no health cause found (clock, governor, steal and load look normal)"
				l.Next = "check ONNX Runtime's thread count and NUMA placement; compare with `quantscope bench`"
			} else {
				l.Cause = "no health cause found (clocks, power, temperature, link, ECC look normal)"
				l.Next = "update the NVIDIA driver and ONNX Runtime; compare with `quantscope bench` and dcgmi diag"
			}
			continue
		}
		// The worst finding first: its next step is the one to take.
		found = slices.Clone(found)
		slices.SortStableFunc(found, func(a, b Line) int { return b.Verdict.Rank() - a.Verdict.Rank() })
		var cs []string
		benign := true
		for _, h := range found {
			cs = append(cs, h.Cause)
			if !benignHealth(h.ID) {
				benign = false
			}
		}
		l.Cause = "likely: " + strings.Join(cs, "; ")
		l.Next = found[0].Next
		if benign && l.Verdict == Fault {
			l.Verdict = Below
		}
	}
}

// benignHealth lists the health findings that slow a figure without
// anything being broken: sharing the machine.
func benignHealth(id string) bool {
	switch id {
	case "health.cpu.load", "health.cpu.steal", "health.gpu.processes":
		return true
	}
	return false
}
