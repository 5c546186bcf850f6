package study

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/ort/cudaopt"
)

// SchemaVersion is the version of the Record layout written by this build.
// Readers accept every version up to it. Version 2 added run_id and note;
// a version 1 record reads as one with neither. Version 3 keeps each run's
// Telemetry: a version 3 record without it took no sample, an older
// record predates it (Record.TelemetryNote says which). Version 4 measures
// memory as the peak working set over warm-up and the timed loop
// (bench.Memory.WorkingSet; an older record's model_rss reads as
// resident_after_load, and its memory is unknown), records each run's CPU
// contention, fidelity's margin, decisive top-1 and inputs, and the
// model's declared traits (Record.Traits).
const SchemaVersion = 4

// Status values of a Record.
const (
	StatusOK     = "ok"
	StatusFailed = "failed"
)

// Experiment is one cell of a study: a model at a precision on an execution
// provider with a batch size.
type Experiment struct {
	Model     string `json:"model"`     // catalog name or path as the user gave it
	Precision string `json:"precision"` // precision spec, e.g. "int4:block=64"
	EP        string `json:"ep"`        // execution provider: cpu, cuda, tensorrt
	Batch     int    `json:"batch"`
	Threads   int    `json:"threads,omitempty"` // intra-op threads (0 = default)
	Repeat    int    `json:"repeat,omitempty"`  // 0-based repetition index with --repeat
	// Optimize is true when the model went through models/optimize's
	// fusions before conversion (bench --optimize).
	Optimize bool `json:"optimize,omitempty"`
	// Options are the provider options the user set, "key=value,…" in key
	// order ("" for none; CUDA options equal to ONNX Runtime's defaults
	// left out). Provider.Options has everything in force.
	Options string `json:"options,omitempty"`
	// Resolution is the height and width asked for a model whose input
	// leaves them symbolic (bench --resolution); 0 runs it at the size it
	// declares (quant.ImageInputOf).
	Resolution int `json:"resolution,omitempty"`
}

// Key identifies an experiment across runs of a study; two records with the
// same key measured the same thing.
func (e Experiment) Key() string {
	k := fmt.Sprintf("%s|%s|%s|b%d|t%d|r%d", e.Model, e.Precision, e.EP, e.Batch, e.Threads, e.Repeat)
	if e.Optimize {
		k += "|opt"
	}
	if e.Options != "" {
		k += "|" + e.Options
	}
	if e.Resolution > 0 {
		k += fmt.Sprintf("|res%d", e.Resolution)
	}
	return k
}

// BaselineKey is the key of the FP32 experiment this one is compared with.
func (e Experiment) BaselineKey() string {
	b := e
	b.Precision = "fp32"
	return b.Key()
}

// IsBaseline reports whether the experiment is an FP32 baseline.
func (e Experiment) IsBaseline() bool {
	p, _, _ := strings.Cut(e.Precision, ":")
	return p == "fp32"
}

// Host fingerprints the machine and software a record was measured on.
type Host struct {
	Hostname   string   `json:"hostname"`
	CPU        string   `json:"cpu"`
	ISA        []string `json:"isa,omitempty"`
	Cores      int      `json:"cores,omitempty"`
	GPU        string   `json:"gpu,omitempty"`
	Driver     string   `json:"driver,omitempty"`
	CUDA       string   `json:"cuda,omitempty"`
	ORTVersion string   `json:"ort_version"`
	PowerLimit float64  `json:"power_limit_w,omitempty"`
	// Group names the pool of like machines a sharded study ran on
	// (bench --host-group, set by the generated Kubernetes Job and Slurm
	// script): the pods of one Job have hostnames of their own but are one
	// host to reports and merges. "" outside sharded studies.
	Group string `json:"group,omitempty"`
}

// Name is how reports name the host: its Group when it has one, else its
// hostname.
func (h Host) Name() string {
	if h.Group != "" {
		return h.Group
	}
	return h.Hostname
}

// Key identifies a host environment: records with the same key were
// measured on one machine (or one Group of like machines) with the same
// CPU, GPU, driver, CUDA and ONNX Runtime, so their numbers may be
// compared and folded together.
func (h Host) Key() string {
	name := "host=" + h.Hostname
	if h.Group != "" {
		name = "group=" + h.Group
	}
	return strings.Join([]string{name, h.CPU, h.GPU, h.Driver, h.CUDA, h.ORTVersion}, "\x00")
}

// ModelFile names the file that ran, so a result can be tied to its bytes.
type ModelFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256,omitempty"`
	Bytes  int64  `json:"bytes"` // including external data
}

// Provider is the execution provider a record ran on, as resolved in the
// worker: "auto" becomes cuda or cpu (Reason says why), and the options in
// force (TF32, cuDNN search, CUDA graphs…) are kept since they change ratios.
type Provider struct {
	Name    string            `json:"name"`
	Route   string            `json:"route,omitempty"` // builtin or plugin
	Reason  string            `json:"reason,omitempty"`
	Options map[string]string `json:"options,omitempty"`
	Threads int               `json:"threads,omitempty"`
	// CUDAGraph says whether CUDA graphs were requested and active, and
	// ONNX Runtime's reason when they fell back; nil when not requested.
	CUDAGraph *cudaopt.GraphStatus `json:"cuda_graph,omitempty"`
}

// Optimization is what models/optimize did to a model before it was
// converted to the experiment's precision.
type Optimization struct {
	Version string         `json:"version"`
	Matched map[string]int `json:"matched"` // rewrites per pattern
	// NodesBefore and NodesAfter count the graph's nodes.
	NodesBefore int `json:"nodes_before"`
	NodesAfter  int `json:"nodes_after"`
	// NearMisses are the places where a fusion almost matched, and why
	// it was not done.
	NearMisses []NearMiss `json:"near_misses,omitempty"`
}

// NearMiss is one place where a fusion pattern almost matched.
type NearMiss struct {
	Pattern string `json:"pattern"`
	Node    string `json:"node"`
	Reason  string `json:"reason"`
}

// Weight declarations of ModelTraits.
const (
	// WeightsTrained: the model's outputs mean something (top-1 agreement
	// is an accuracy proxy).
	WeightsTrained = "trained"
	// WeightsSynthetic: deterministic random weights (the catalog's): the
	// logits are nearly tied, top-1 flips on tiny errors, and accuracy
	// cannot be measured.
	WeightsSynthetic = "synthetic"
)

// Output kinds of ModelTraits.
const (
	OutputLogits     = "logits"     // class scores: top-1/top-5 apply
	OutputEmbeddings = "embeddings" // a backbone's features: they do not
)

// ModelTraits are what a model declares about itself that decides how its
// fidelity is judged: whether its weights are trained, and whether it
// outputs logits or embeddings (a backbone: DINO, DINOv2, CLIP image
// towers).
type ModelTraits struct {
	Weights string `json:"weights"` // WeightsTrained or WeightsSynthetic
	Output  string `json:"output"`  // OutputLogits or OutputEmbeddings
	// Source says who declared them: "catalog", "imported (default)",
	// "user", or "assumed" for records older than the declaration.
	Source string `json:"source,omitempty"`
}

// Synthetic reports whether the weights are not trained.
func (t ModelTraits) Synthetic() bool { return t.Weights == WeightsSynthetic }

// Backbone reports whether the model outputs embeddings, not logits.
func (t ModelTraits) Backbone() bool { return t.Output == OutputEmbeddings }

// Record is one line of results.jsonl: one experiment, ok or failed.
type Record struct {
	Schema int `json:"schema"`
	// RunID identifies the study run (one bench or TUI study) that wrote
	// the record; "" in records of schema 1.
	RunID      string        `json:"run_id,omitempty"`
	Experiment Experiment    `json:"experiment"`
	Host       Host          `json:"host"`
	File       ModelFile     `json:"file"`
	Provider   *Provider     `json:"provider,omitempty"`
	Optimized  *Optimization `json:"optimized,omitempty"` // nil when not optimized
	// Model is what the model declares (schema 4); see Record.Traits.
	Model  *ModelTraits `json:"model_traits,omitempty"`
	Status string       `json:"status"`
	Reason string       `json:"reason,omitempty"`
	Stderr string       `json:"stderr,omitempty"` // head and tail of the worker's stderr on failure
	// Note says what an ok record lacks and why (e.g. fidelity, when the
	// FP32 baseline had not left its reference outputs).
	Note     string         `json:"note,omitempty"`
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	Metrics  *bench.Metrics `json:"metrics,omitempty"`
	// Telemetry are the run's live samples (at most MaxTelemetryPoints),
	// for replaying it; nil when none came.
	Telemetry *Telemetry `json:"telemetry,omitempty"`
}

// OK reports whether the experiment ran and measured.
func (r Record) OK() bool { return r.Status == StatusOK && r.Metrics != nil }

// Describe names a host environment for a person in full: "name (CPU,
// GPU driver D, ONNX Runtime V)"; Name is the short form.
func (h Host) Describe() string {
	parts := []string{orNone(h.CPU)}
	if h.GPU != "" {
		parts = append(parts, h.GPU+" driver "+orNone(h.Driver))
	}
	parts = append(parts, "ONNX Runtime "+orNone(h.ORTVersion))
	return orNone(h.Name()) + " (" + strings.Join(parts, ", ") + ")"
}

func orNone(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// NewRunID returns an identifier for one study run: the UTC start time
// and random bits, e.g. "20251202T053012Z-9f3a61c0".
func NewRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Traits returns the model's declared traits; for a record from before
// the declaration, what quantscope assumes: a catalog model (by name) has
// synthetic weights and the catalog's output, anything else trained
// weights and logits.
func (r Record) Traits() ModelTraits {
	if r.Model != nil && r.Model.Weights != "" {
		t := *r.Model
		if t.Output == "" {
			t.Output = OutputLogits
		}
		return t
	}
	return assumedTraits(r.Experiment.Model)
}

// assumedTraits are the traits of a model named name when nothing was
// declared.
func assumedTraits(name string) ModelTraits {
	if s, ok := zoo.Lookup(name); ok {
		return ModelTraits{Weights: WeightsSynthetic, Output: string(s.Output), Source: "assumed"}
	}
	return ModelTraits{Weights: WeightsTrained, Output: OutputLogits, Source: "assumed"}
}
