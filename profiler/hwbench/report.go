package hwbench

import (
	"fmt"
	"time"

	"github.com/quantscope/quantscope/profiler/telemetry"
)

// SchemaVersion is the version of the Report layout. Fields are only added
// within a version.
const SchemaVersion = 1

// Verdict is the judgement on one line of the report.
type Verdict string

// The verdicts, from best to worst. Info means measured with nothing to
// judge it against (no peak known, no reference machine, a quick run).
const (
	Info  Verdict = "info"
	OK    Verdict = "ok"
	Below Verdict = "below" // below expectation
	Fault Verdict = "fault"
)

// Rank orders verdicts by severity: info and ok 0, below 1, fault 2.
func (v Verdict) Rank() int {
	switch v {
	case Below:
		return 1
	case Fault:
		return 2
	}
	return 0
}

// Label is the verdict as the checklist prints it.
func (v Verdict) Label() string {
	switch v {
	case Below:
		return "below expectation"
	case Fault:
		return "fault"
	case OK:
		return "ok"
	}
	return "info"
}

// Groups of lines.
const (
	GroupCompute   = "compute"
	GroupMemory    = "memory"
	GroupInference = "inference"
	GroupHealth    = "health"
)

// Line is one figure of the report with its verdict.
type Line struct {
	ID     string `json:"id"`     // stable key, e.g. "cpu.gemm.fp32"
	Group  string `json:"group"`  // compute, memory, inference, health
	Device string `json:"device"` // "cpu" or "gpu0"
	Name   string `json:"name"`   // e.g. "FP32 GEMM"
	// Value is the measured figure in Unit (0 with Error set when it could
	// not be measured).
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Expected is what Percent compares Value against, in Unit: a
	// theoretical peak, a part's datasheet figure, a link's rate, or a
	// reference machine's measurement. Basis says which and how it was
	// computed. Zero when there is none.
	Expected float64 `json:"expected,omitempty"`
	Basis    string  `json:"basis,omitempty"`
	// Percent is Value / Expected × 100 (absent without Expected).
	Percent float64 `json:"percent,omitempty"`
	Verdict Verdict `json:"verdict"`
	// Cause is the likely cause of a verdict other than ok; Next the step
	// to take.
	Cause string `json:"cause,omitempty"`
	Next  string `json:"next,omitempty"`
	Note  string `json:"note,omitempty"`
	Error string `json:"error,omitempty"`
}

// FormatValue renders a figure with its unit at the precision the report
// is read at: "215 GFLOP/s", "15.8 GB/s", "2.71×".
func FormatValue(v float64, unit string) string {
	var n string
	switch {
	case v >= 100:
		n = fmt.Sprintf("%.0f", v)
	case v >= 10:
		n = fmt.Sprintf("%.1f", v)
	default:
		n = fmt.Sprintf("%.2f", v)
	}
	switch unit {
	case "":
		return n
	case "×", "%", "°C":
		return n + unit
	}
	return n + " " + unit
}

// Machine identifies what was measured.
type Machine struct {
	Hostname string `json:"hostname,omitempty"`
	CPU      string `json:"cpu"`
	Vendor   string `json:"vendor,omitempty"`
	Family   int    `json:"family,omitempty"`
	Model    int    `json:"model,omitempty"`
	// Cores is the number of cores the CPU figures use (ONNX Runtime's
	// intra-op threads: one per physical core this process may use).
	Cores     int      `json:"cores"`
	ISA       []string `json:"isa,omitempty"`
	Virtual   bool     `json:"virtual"` // a hypervisor is present
	GPU       string   `json:"gpu,omitempty"`
	GPUIndex  int      `json:"gpu_index,omitempty"`
	Driver    string   `json:"driver,omitempty"`
	ORT       string   `json:"ort_version,omitempty"`
	EP        string   `json:"ep"` // the execution provider measured: cpu or cuda
	EPReason  string   `json:"ep_reason,omitempty"`
	CPUKey    string   `json:"cpu_key"`           // matches reference rows
	GPUKey    string   `json:"gpu_key,omitempty"` // ditto
	LoadStart float64  `json:"load_average_start"`
	LoadEnd   float64  `json:"load_average_end"`
}

// CPUState is the host's health as measured during the run.
type CPUState struct {
	Freq telemetry.CPUFreq `json:"freq"`
	// Clock is the measured core clock (nil where it cannot be measured).
	Clock *ClockReading `json:"clock,omitempty"`
	// OtherBefore is the cores' worth of CPU time other processes used in
	// the quiet window before the run; OtherDuring the same over the run
	// (host busy time minus this process's and its workers').
	OtherBefore float64 `json:"other_cores_before"`
	OtherDuring float64 `json:"other_cores_during"`
	// StealPct is the share of CPU time the hypervisor gave to other guests
	// during the run.
	StealPct float64 `json:"steal_pct"`
}

// GPUState is a GPU's health at the start and under load.
type GPUState struct {
	Start telemetry.GPUHealth `json:"start"`
	// Load summarizes the readings taken while GPU work ran.
	Samples      int                    `json:"samples"`
	MeanSMClock  float64                `json:"mean_sm_clock_mhz"` // while busy (utilization ≥ 50%)
	MinSMClock   uint32                 `json:"min_sm_clock_mhz"`
	MaxPowerW    float64                `json:"max_power_w"`
	MaxTempC     uint32                 `json:"max_temp_c"`
	Throttle     []string               `json:"throttle,omitempty"` // every reason seen while busy
	ThrottleMask uint64                 `json:"throttle_mask"`
	MaxPCIeGen   int                    `json:"max_pcie_gen_seen"`
	MaxPCIeWidth int                    `json:"max_pcie_width_seen"`
	OtherProcs   []telemetry.GPUProcess `json:"other_processes"`
	busySamples  int
	clockSum     float64
}

// Report is everything doctor --bench found: --json prints it.
type Report struct {
	Schema   int       `json:"schema"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Quick    bool      `json:"quick"`
	Machine  Machine   `json:"machine"`
	Lines    []Line    `json:"lines"`
	CPU      CPUState  `json:"cpu_health"`
	GPU      *GPUState `json:"gpu_health,omitempty"`
	Verdict  Verdict   `json:"verdict"` // the worst line's
	Warnings []string  `json:"warnings,omitempty"`
	// Steps is how long each step took.
	Steps []StepTime `json:"steps"`
}

// StepTime is one step's wall time.
type StepTime struct {
	Label   string  `json:"label"`
	Seconds float64 `json:"seconds"`
}

// Line returns the line with id, if present.
func (r *Report) Line(id string) (Line, bool) {
	for _, l := range r.Lines {
		if l.ID == id {
			return l, true
		}
	}
	return Line{}, false
}

// BelowPercent lists the lines with a percentage under min (min ≤ 0: none).
func (r *Report) BelowPercent(min float64) []Line {
	var out []Line
	if min <= 0 {
		return nil
	}
	for _, l := range r.Lines {
		if l.Expected > 0 && l.Percent < min {
			out = append(out, l)
		}
	}
	return out
}

// Faults lists the lines judged faults.
func (r *Report) Faults() []Line {
	var out []Line
	for _, l := range r.Lines {
		if l.Verdict == Fault {
			out = append(out, l)
		}
	}
	return out
}
