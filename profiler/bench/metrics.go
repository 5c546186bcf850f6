package bench

import "github.com/quantscope/quantscope/models/fidelity"

// Memory is what the experiment's process and device held.
type Memory struct {
	RSSBeforeLoad int64 `json:"rss_before_load"`
	RSSAfterLoad  int64 `json:"rss_after_load"`
	PeakRSS       int64 `json:"peak_rss"` // VmHWM
	// ModelRSS is RSSAfterLoad − RSSBeforeLoad: the model's own host footprint.
	ModelRSS  int64  `json:"model_rss"`
	GPUBytes  int64  `json:"gpu_bytes,omitempty"`
	GPUSource string `json:"gpu_source,omitempty"` // GPUScopeProcess or GPUScopeDevice
	GPUPeak   int64  `json:"gpu_peak,omitempty"`
	GPUNote   string `json:"gpu_note,omitempty"`
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
	// Precision is the variant's precision report: nodes and weight bytes per precision.
	Precision map[string]any `json:"precision,omitempty"`
}
