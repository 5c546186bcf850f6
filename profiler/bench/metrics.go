package bench

import (
	"encoding/json"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/quant"
)

// Memory is what the experiment's process and device held. What a
// configuration "needs" is derived from it by Memory.WorkingSet, the one
// definition every view shows.
type Memory struct {
	RSSBeforeLoad int64 `json:"rss_before_load"`
	RSSAfterLoad  int64 `json:"rss_after_load"`
	// ResidentAfterLoad is RSSAfterLoad − RSSBeforeLoad: what loading the
	// model left resident. It misses everything the session allocates
	// while it runs. Schema 1 records call it model_rss.
	ResidentAfterLoad int64 `json:"resident_after_load"`
	// PeakRSS is the process's peak RSS over warm-up and the timed loop
	// (from schema 4: the kernel's high-water mark, reset before warm-up;
	// in older records, VmHWM over the whole worker's life).
	PeakRSS int64 `json:"peak_rss"`
	// PeakSource says how PeakRSS was measured: "high-water mark" or
	// "sampled" (the reset was refused; PeakNote says why).
	PeakSource string `json:"peak_source,omitempty"`
	PeakNote   string `json:"peak_note,omitempty"`
	// PeakWorkingSet is PeakRSS − RSSBeforeLoad: the host memory the
	// configuration needed while it ran; 0 when not measured (before schema 4).
	PeakWorkingSet int64 `json:"peak_working_set,omitempty"`
	// Device is "gpu" when the run's execution provider computes on a GPU:
	// its working set is then device memory (GPUWorkingSet).
	Device string `json:"device,omitempty"`

	GPUBytes  int64  `json:"gpu_bytes,omitempty"`
	GPUSource string `json:"gpu_source,omitempty"` // GPUScopeProcess or GPUScopeDevice
	GPUPeak   int64  `json:"gpu_peak,omitempty"`
	GPUNote   string `json:"gpu_note,omitempty"`
	// GPUContext is the process's own device memory with the CUDA context
	// and an empty session of the EP, measured once before the model
	// loads: shown apart, and left out of GPUWorkingSet.
	GPUContext int64 `json:"gpu_context,omitempty"`
	// GPUWorkingSet is the process's peak device memory over the timed
	// loop (GPUBytes, from NVML's process list) − GPUContext; 0 when
	// either is unknown.
	GPUWorkingSet int64 `json:"gpu_working_set,omitempty"`
}

// UnmarshalJSON reads Memory, including records before schema 4, whose
// resident-after-load figure is named model_rss.
func (m *Memory) UnmarshalJSON(b []byte) error {
	type plain Memory
	var w struct {
		plain
		ModelRSS int64 `json:"model_rss"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*m = Memory(w.plain)
	if m.ResidentAfterLoad == 0 {
		m.ResidentAfterLoad = w.ModelRSS
	}
	return nil
}

// What GPU memory figures measure (Memory.GPUSource, and the worker's live
// samples).
const (
	// GPUScopeProcess: the experiment's own process, from NVML's process list.
	GPUScopeProcess = "process"
	// GPUScopeDevice: the whole device, other processes included, because
	// NVML gave no figure for the process (its pid absent from the list, as
	// in a container, or the value "not available").
	GPUScopeDevice = "device-wide"
)

// Energy is what the device drew during the timed loop.
type Energy struct {
	JoulesPerSample float64  `json:"joules_per_sample"`
	Source          string   `json:"source"` // "nvml counter" or "power integral"
	MeanPowerW      float64  `json:"mean_power_w"`
	MaxPowerW       float64  `json:"max_power_w"`
	TempStartC      float64  `json:"temp_start_c"`
	TempMaxC        float64  `json:"temp_max_c"`
	SMClockMHz      float64  `json:"sm_clock_mhz,omitempty"`
	Throttle        []string `json:"throttle,omitempty"`
	// SamplerCallUs is the mean cost of one telemetry reading, so its share
	// of the run can be judged (sampled every 250 ms: 0.004% per 100 µs).
	SamplerCallUs float64 `json:"sampler_call_us,omitempty"`
}

// ColdStart is the time from nothing to the first answer.
type ColdStart struct {
	LoadMs           float64 `json:"load_ms"`
	SessionMs        float64 `json:"session_ms"`
	FirstInferenceMs float64 `json:"first_inference_ms"`
}

// Metrics are the measurements of an experiment that ran.
type Metrics struct {
	Throughput    float64          `json:"throughput"` // samples/s
	Latency       LatencyStats     `json:"latency"`
	WarmupRuns    int              `json:"warmup_runs"`
	Memory        Memory           `json:"memory"`
	Energy        *Energy          `json:"energy,omitempty"`
	Fidelity      *fidelity.Result `json:"fidelity,omitempty"`
	ColdStart     ColdStart        `json:"cold_start"`
	TFLOPS        float64          `json:"tflops,omitempty"`
	OverheadFloor bool             `json:"overhead_floor,omitempty"`
	// Contention is what other processes took from the timed loop's CPU;
	// nil when not measured (records before schema 4, no /proc/stat).
	Contention *Contention `json:"contention,omitempty"`
	// Placement counts nodes per execution provider after partitioning.
	Placement map[string]int `json:"placement,omitempty"`
	// OpProfile is where an inference's time goes, per operator type and
	// node (short profiled runs outside the timed loop; nil when off).
	OpProfile *OpProfile `json:"op_profile,omitempty"`
	// CopyH2DMs and CopyD2HMs are the host→device and device→host copy
	// times of one batch when inputs and outputs live on the device (GPU
	// EPs); the timed loop excludes them.
	CopyH2DMs float64 `json:"copy_h2d_ms,omitempty"`
	CopyD2HMs float64 `json:"copy_d2h_ms,omitempty"`
	// Accuracy is top-1/top-5 on a labelled image set (bench --eval-dir),
	// paired with the FP32 run's answers for a variant; nil when not asked.
	// Added without a schema bump: its absence means "not asked" in records
	// of every version, so no reader has to tell old from new.
	Accuracy *accuracy.Result `json:"accuracy,omitempty"`
	// Precision is the variant's precision report (nil for FP32): nodes
	// per precision, layer forms, weight bytes per bit width.
	Precision *quant.Report `json:"precision,omitempty"`
}
