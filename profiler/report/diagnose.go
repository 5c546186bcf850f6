package report

import (
	"fmt"
	"strings"

	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/telemetry"
)

// Cause is what a Finding is about.
type Cause string

// The causes Diagnose names.
const (
	// CauseOverheadFloor: the latency is so close to ONNX Runtime's own
	// call overhead that precision barely shows.
	CauseOverheadFloor Cause = "overhead floor"
	// CauseCPU: the CPU lacks the instructions that make the precision fast.
	CauseCPU Cause = "CPU"
	// CauseCoverage: most weight bytes stayed float32.
	CauseCoverage Cause = "coverage"
	// CauseKernels: ONNX Runtime's kernels for the operator form the
	// precision took are slow on this EP.
	CauseKernels Cause = "kernels"
	// CauseNoise: the latency varied too much for a small difference to show.
	CauseNoise Cause = "noise"
	// CauseTime: one operator type takes much of the time (the operator
	// profile's findings).
	CauseTime Cause = "time"
	// CausePlacement: nodes fell back to the CPU from a device EP.
	CausePlacement Cause = "placement"
)

// Finding is one measured reason a variant is (not) faster than its FP32
// baseline.
type Finding struct {
	Cause Cause
	// Text is one plain sentence (no markup, no key hints).
	Text string
	// Rerun is true when a re-run on a quiet machine, or repeated runs,
	// may settle it: each view adds its own way to do that.
	Rerun bool
}

// CPUQuant is what Diagnose knows of the CPU a run was on: its INT8 and
// FP16 verdicts (telemetry.AssessQuant); the zero value is unknown.
type CPUQuant struct {
	INT8, FP16 telemetry.QuantVerdict
}

// HostCPU re-assesses a recorded host's CPU from its ISA features; the
// zero CPUQuant when the record names none.
func HostCPU(h study.Host) CPUQuant {
	i8, f16, ok := telemetry.AssessISA(h.ISA)
	if !ok {
		return CPUQuant{}
	}
	return CPUQuant{INT8: i8, FP16: f16}
}

// Diagnose answers "why is this variant (not) faster than FP32?" from what
// was measured: the row's verdict against its baseline, its latest
// record's precision report, EP placement, overhead floor, latency spread
// and operator profile, and what cpu can do fast. It is the one home of
// that ONNX Runtime knowledge: the TUI's run detail and the report render
// its findings. A baseline, or a row without a record, has none.
func Diagnose(row study.Row, cpu CPUQuant) []Finding {
	exp := row.Experiment
	if row.Last == nil || row.Last.Metrics == nil {
		return nil
	}
	m := row.Last.Metrics
	kind, _, _ := strings.Cut(exp.Precision, ":")
	slow := row.HasBaseline && !exp.IsBaseline() && !row.Faster() && !row.Uncertain()
	var out []Finding
	add := func(c Cause, rerun bool, format string, args ...any) {
		out = append(out, Finding{Cause: c, Text: fmt.Sprintf(format, args...), Rerun: rerun})
	}
	if m.OverheadFloor {
		add(CauseOverheadFloor, false, "p50 %s ms is within 3× of ONNX Runtime's own call overhead, so precision barely shows; try a larger batch or model", fmtMs(m.Latency.P50Ms))
	}
	if exp.EP == "cpu" {
		switch {
		case strings.HasPrefix(kind, "int8") || kind == "int4":
			if !cpu.INT8.Fast && cpu.INT8.Summary != "" {
				add(CauseCPU, false, "%s", cpu.INT8.Summary)
			}
		case kind == "fp16":
			if !cpu.FP16.Fast && cpu.FP16.Summary != "" {
				add(CauseCPU, false, "%s", cpu.FP16.Summary)
			}
		}
	}
	rep := m.Precision
	if f, ok := rep.Coverage(); ok && !exp.IsBaseline() && f < study.LowCoverageBar {
		add(CauseCoverage, false, "only %.0f%% of the weight bytes are stored below 32 bits: this variant is FP32 in all but name", f*100)
	}
	if n := rep.ConvIntegers(); kind == "int8" && n > 0 && exp.EP == "cpu" {
		add(CauseKernels, false, "%d Conv nodes became ConvInteger (dynamic int8), which has slow CPU kernels in ONNX Runtime; int8-static (QDQ) usually is the faster int8 for convolutions", n)
	}
	if kind == "int4" && exp.EP == "cpu" && slow {
		add(CauseKernels, false, "ONNX Runtime's CPU MatMulNBits runs int4 at about FP32 speed at batch sizes like this one, whatever accuracy_level; int4 saves size and memory here, int8 is the CPU precision that saves time")
	}
	if l := m.Latency; l.CV > 0.25 || l.SevereOutliers > l.Runs/50 && l.SevereOutliers > 0 {
		add(CauseNoise, true, "latency varied a lot (CV %.0f%%, %s): was something else running?", l.CV*100, plural(l.SevereOutliers, "severe outlier", "severe outliers"))
	}
	for _, f := range m.OpProfile.Findings() {
		out = append(out, Finding{Cause: CauseTime, Text: f})
	}
	if n := cpuFallback(exp.EP, m.Placement); n > 0 {
		add(CausePlacement, false, "%d nodes fell back to the CPU: tensors are copied between devices", n)
	}
	return out
}

// cpuFallback counts nodes placed on the CPU provider when the experiment
// asked for another EP.
func cpuFallback(ep string, placement map[string]int) int {
	if ep == "cpu" {
		return 0
	}
	n := 0
	for name, k := range placement {
		if strings.Contains(strings.ToLower(name), "cpu") {
			n += k
		}
	}
	return n
}
