package worker

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/quantscope/quantscope/models/imageset"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/bench"
)

// Event kinds on the worker's stdout.
const (
	KindStarted = "started"
	KindSample  = "sample"
	KindResult  = "result"
	KindError   = "error"
)

// Spec is what the parent asks the worker to do: one experiment. It is
// written to the worker's stdin as one JSON object.
type Spec struct {
	ModelPath string        `json:"model_path"`
	Precision string        `json:"precision"`
	EP        string        `json:"ep"`
	Batch     int           `json:"batch"`
	Threads   int           `json:"threads,omitempty"`
	Duration  time.Duration `json:"duration"`           // timed phase length
	MaxRuns   int           `json:"max_runs,omitempty"` // or a run count (0 = duration only)
	ORTLib    string        `json:"ort_lib,omitempty"`  // --ort-lib of the parent
	// Reference is an FP32 reference-outputs file to measure fidelity
	// against; WriteReference asks this (FP32) run to write one.
	Reference      string `json:"reference,omitempty"`
	WriteReference string `json:"write_reference,omitempty"`
	// FidelitySamples is how many seeded inputs fidelity uses (default:
	// FidelityInputs.N, else 64).
	FidelitySamples int `json:"fidelity_samples,omitempty"`
	// ImageSize is the height and width to run a model whose image input
	// leaves them symbolic at (quant.ImageInputOf's rule; 0 for models
	// with a fixed size).
	ImageSize int `json:"image_size,omitempty"`
	// FidelityInputs are the inputs fidelity is measured on: seeded
	// synthetic images normalised for the model (quant.CheckInputs, the
	// definition quantize --check uses too); nil means ImageNet's
	// normalisation.
	FidelityInputs *quant.CheckInputs `json:"fidelity_inputs,omitempty"`
	// GFLOPs per sample, when known, gives achieved TFLOP/s.
	GFLOPs float64 `json:"gflops,omitempty"`
	// GPUIndex is the NVML index of the device a GPU EP runs on; GPUTelemetry
	// samples it even for a CPU run.
	GPUIndex     int  `json:"gpu_index,omitempty"`
	GPUTelemetry bool `json:"gpu_telemetry,omitempty"`
	// DeviceBinding binds device-resident tensors through IO binding even
	// on the CPU EP (GPU EPs always do).
	DeviceBinding bool `json:"device_binding,omitempty"`
	// Warmup and loop bounds (zero values take bench's defaults).
	MinWarmup int               `json:"min_warmup,omitempty"`
	MaxWarmup int               `json:"max_warmup,omitempty"` // warm-up run bound (default 200)
	MinRuns   int               `json:"min_runs,omitempty"`   // timed runs made even past Duration (default 10)
	SampleMs  int               `json:"sample_ms,omitempty"`  // sample period (default 250)
	Extra     map[string]string `json:"extra,omitempty"`      // provider options and the like
	// TransferRounds > 0 measures host↔device copies of input 0 after the
	// timed loop, pageable and pinned, best of that many rounds each
	// (device-resident sessions only; Result.Transfers).
	TransferRounds int `json:"transfer_rounds,omitempty"`
	// RequireEP fails the run before it is timed when any node of the
	// model would run on another execution provider than the one asked for
	// (a kernel the EP lacks falls back to the CPU).
	RequireEP bool `json:"require_ep,omitempty"`
	// CUDA holds provider options for the CUDA EP only (from bench's --tf32,
	// --cuda-graph, --conv-algo, --nhwc): merged over Extra when the EP is,
	// or "auto" resolves to, cuda; left out (and noted) otherwise.
	CUDA map[string]string `json:"cuda,omitempty"`
	// NoOpProfile turns off the per-operator profile (ONNX Runtime's
	// profiler on a few runs outside the timed loop; on by default).
	NoOpProfile bool `json:"no_op_profile,omitempty"`
	// Eval measures accuracy on a labelled image set before the timed
	// phase (nil: not asked).
	Eval *EvalSpec `json:"eval,omitempty"`
}

// EvalSpec asks for accuracy on an image set models/imageset has
// preprocessed into its cache.
type EvalSpec struct {
	CacheDir   string              `json:"cache_dir,omitempty"` // "" = imageset.CacheDir()
	Set        string              `json:"set"`                 // the set's key
	Preprocess imageset.Preprocess `json:"preprocess"`
	// Limit evaluates the first Limit images only (0: all).
	Limit int `json:"limit,omitempty"`
	// WritePredictions is where this run writes its predictions (the FP32
	// run, for its variants); Reference is the FP32 run's predictions file
	// to pair with.
	WritePredictions string `json:"write_predictions,omitempty"`
	Reference        string `json:"reference,omitempty"`
}

// Sample is a live progress reading.
type Sample struct {
	Phase      bench.Phase `json:"phase"` // "" (loading), warmup, measuring, accuracy
	ElapsedS   float64     `json:"elapsed_s"`
	Runs       int         `json:"runs"`
	Throughput float64     `json:"throughput,omitempty"` // samples/s over the last period
	LatencyMs  float64     `json:"latency_ms,omitempty"`
	RSS        int64       `json:"rss,omitempty"`
	CPUPct     float64     `json:"cpu_pct,omitempty"` // worker process, percent of one core
	SysMemUsed int64       `json:"sys_mem_used,omitempty"`
	CPUTempC   float64     `json:"cpu_temp_c,omitempty"`
	GPUBytes   int64       `json:"gpu_bytes,omitempty"`
	GPUScope   string      `json:"gpu_scope,omitempty"` // bench.GPUScopeProcess or bench.GPUScopeDevice: what GPUBytes covers
	TempC      float64     `json:"temp_c,omitempty"`
	PowerW     float64     `json:"power_w,omitempty"`
	// Images and ImagesTotal count accuracy progress (phase bench.PhaseAccuracy).
	Images      int `json:"images,omitempty"`
	ImagesTotal int `json:"images_total,omitempty"`
}

// Event is one line of the worker's stdout.
type Event struct {
	Kind   string          `json:"kind"`
	Time   time.Time       `json:"time"`
	Sample *Sample         `json:"sample,omitempty"`
	Result json.RawMessage `json:"result,omitempty"` // the measurements, decoded by the caller
	Error  string          `json:"error,omitempty"`
	Info   map[string]any  `json:"info,omitempty"` // for started: pid, ORT version, EP
}

// Emitter writes events as JSON lines; safe for concurrent use (the sampler
// and the bench loop both write).
type Emitter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewEmitter writes events to w.
func NewEmitter(w io.Writer) *Emitter { return &Emitter{enc: json.NewEncoder(w)} }

// Emit writes one event, stamping its time.
func (e *Emitter) Emit(ev Event) error {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.enc.Encode(ev); err != nil {
		return fmt.Errorf("emit %s event: %w", ev.Kind, err)
	}
	return nil
}
