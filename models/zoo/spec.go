package zoo

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/quantscope/quantscope/models/onnx"
)

// BuilderVersion is the version of the graph builders. It is part of every
// cache key: bump it whenever a builder's output changes (graph, weights,
// names, metadata), so cached files from older builders are not reused.
const BuilderVersion = 1

// Opset range of the builders.
const (
	// DefaultOpset is the default ONNX opset of built models.
	DefaultOpset = 17
	// MaxOpset is the newest opset the builders write (ONNX 1.18, IR
	// version 11; ONNX Runtime 1.29 runs it). From opset 18 ReduceMean
	// takes its axes as an input, from opset 20 GELU is the Gelu operator.
	MaxOpset = 23
)

// Names of the graph's input and outputs.
const (
	// InputName is the input of every built model: float32
	// [batch, 3, H, W] with a symbolic batch dimension.
	InputName = "pixel_values"
)

// OutputKind is what a model outputs.
type OutputKind string

// Output kinds; each is also the name of the graph's output.
const (
	// Logits are class scores [batch, classes] (before softmax).
	Logits OutputKind = "logits"
	// Embeddings are image features [batch, dim] from a backbone.
	Embeddings OutputKind = "embeddings"
)

// outputName is the name of the graph output for k.
func (k OutputKind) outputName() string { return string(k) }

// Family is a model family, for grouping and display.
type Family string

// The catalog's families.
const (
	FamilyViT       Family = "ViT"
	FamilyDeiT      Family = "DeiT"
	FamilyDINO      Family = "DINO"
	FamilyDINOv2    Family = "DINOv2"
	FamilyBEiT      Family = "BEiT"
	FamilyCLIP      Family = "CLIP"
	FamilyMobileViT Family = "MobileViT"
	FamilyCNN       Family = "CNN"
	// FamilyImported is a model loaded from a user's ONNX file.
	FamilyImported Family = "imported"
)

// Preprocess is the normalization a model expects of its input: pixels
// scaled to [0, 1], then (x - Mean) / Std per RGB channel.
type Preprocess struct {
	Name string     `json:"name"` // "imagenet", "inception", "clip" or "none"
	Mean [3]float32 `json:"mean"` // per channel, RGB
	Std  [3]float32 `json:"std"`  // per channel, RGB
}

// The normalizations of the catalog's models.
var (
	// ImageNetNorm is torchvision's ImageNet mean and standard deviation.
	ImageNetNorm = Preprocess{Name: "imagenet", Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}}
	// InceptionNorm maps [0, 1] to [-1, 1] (Google's ViT, BEiT).
	InceptionNorm = Preprocess{Name: "inception", Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}}
	// CLIPNorm is OpenAI CLIP's mean and standard deviation.
	CLIPNorm = Preprocess{Name: "clip", Mean: [3]float32{0.48145466, 0.4578275, 0.40821073}, Std: [3]float32{0.26862954, 0.26130258, 0.27577711}}
	// UnitNorm leaves pixels in [0, 1] (MobileViT).
	UnitNorm = Preprocess{Name: "none", Mean: [3]float32{0, 0, 0}, Std: [3]float32{1, 1, 1}}
)

// Arch is a buildable architecture: a ViTConfig, ResNetConfig,
// MobileNetV2Config or MobileViTConfig. Only this package's configurations
// implement it; custom sizes (tiny test models, other widths) are values of
// those types in a Spec.
type Arch interface {
	family() string
	validate(res int) error
	output() (OutputKind, int)
	width() int
	build(n *net, res int, x string) string
}

// Spec describes one model of the catalog, or a model imported from a file
// (Family FamilyImported, Arch nil).
type Spec struct {
	// Name is the catalog name, e.g. "vit-base-16".
	Name string
	// Family groups the model, e.g. FamilyViT.
	Family Family
	// Description says what the model is, in one line.
	Description string
	// Params is the published parameter count (for CNNs: before
	// BatchNorm folding, as the references count them).
	Params int64
	// Tolerance is the largest relative difference allowed between Params
	// and the builder's count (0.005 = 0.5%).
	Tolerance float64
	// Resolution is the default input size in pixels (square).
	Resolution int
	// Classes is the number of classes of the head; 0 for a backbone.
	Classes int
	// Embed is the width of the features before the head (the transformer
	// width D for ViTs).
	Embed int
	// Output says whether the model outputs logits or embeddings.
	Output OutputKind
	// OutputDim is the output's width: Classes, D, or CLIP's projection
	// width.
	OutputDim int
	// GFLOPs is the compute of one image at Resolution: multiply-adds of
	// the convolutions, matrix products and attention, times 2.
	GFLOPs float64
	// Preprocess is the input normalization the model expects.
	Preprocess Preprocess
	// CropPct and Interpolation are an imported model's declared resize
	// (metadata quantscope.crop_pct and quantscope.interpolation); zero
	// for catalog models, whose family gives them (see DataConfig).
	CropPct       float64
	Interpolation string
	// Arch is the architecture the builder writes; nil for imported
	// models.
	Arch Arch
}

// Option changes how a model is built, cached or resolved.
type Option func(*options)

// ExternalData says when a built model's weights go to a separate file.
type ExternalData int

const (
	// ExternalAuto writes weights to model.onnx.data when they total at
	// least ExternalAutoBytes, inline otherwise.
	ExternalAuto ExternalData = iota
	// ExternalAlways always writes a data file.
	ExternalAlways
	// ExternalNever writes one file (below 2 GiB of weights only).
	ExternalNever
)

// ExternalAutoBytes is the weight size from which ExternalAuto writes an
// external data file. Saving a model inline serializes it whole in memory
// (twice its size); with external data the weights stream to disk from
// the tensors, so a build's peak memory stays near the model's size.
const ExternalAutoBytes = 16 << 20

type options struct {
	opset      int64
	resolution int
	seed       uint64
	cacheDir   string
	progress   func(Progress)
	external   ExternalData
	rebuild    bool
}

func newOptions(opts []Option) options {
	o := options{opset: DefaultOpset}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// WithOpset builds with ONNX opset v (DefaultOpset to MaxOpset).
func WithOpset(v int64) Option { return func(o *options) { o.opset = v } }

// WithResolution builds for square inputs of px pixels instead of the
// spec's Resolution (ViTs: a multiple of the patch size; their position
// embedding is sized for it; CNNs: a multiple of 32).
func WithResolution(px int) Option { return func(o *options) { o.resolution = px } }

// WithSeed sets the seed of the random weights (default 0).
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = seed } }

// WithCacheDir puts built models under dir instead of the default cache
// directory (see CacheDir).
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }

// WithProgress reports the build's progress to fn (from the building
// goroutine; keep it fast).
func WithProgress(fn func(Progress)) Option { return func(o *options) { o.progress = fn } }

// WithExternalData chooses when weights go to an external data file.
func WithExternalData(mode ExternalData) Option { return func(o *options) { o.external = mode } }

// WithRebuild builds the model even when it is cached, replacing the
// cached copy.
func WithRebuild(rebuild bool) Option { return func(o *options) { o.rebuild = rebuild } }

// Stage is a step of a build, for progress reports.
type Stage string

// Build stages, in order.
const (
	StageGraph   Stage = "graph"   // emitting the graph
	StageWeights Stage = "weights" // generating the weights (Done/Total bytes)
	StageWrite   Stage = "write"   // writing the files
	StageDone    Stage = "done"    // built (Done/Total: bytes on disk)
)

// Progress is one progress report of a build.
type Progress struct {
	Model       string // the model's name
	Stage       Stage  // the step now running
	Done, Total int64  // bytes (StageWeights, StageWrite, StageDone)
}

// Analysis is what a spec's builder produces, counted without building.
type Analysis struct {
	// Params counts parameters as the reference implementations do:
	// weights, biases, tokens, embeddings, BatchNorm scale and shift
	// (before folding) and parameters the inference graph does not use.
	Params int64
	// GraphParams is the number of float32 initializer elements of the
	// built graph.
	GraphParams int64
	// WeightBytes is the size of the initializers' data.
	WeightBytes int64
	// MACs is the number of multiply-adds for one image.
	MACs int64
	// GFLOPs is 2·MACs/1e9.
	GFLOPs float64
	// Resolution is the input size analyzed.
	Resolution int
}

// resolution picks the build's input size.
func (o options) res(s Spec) int {
	if o.resolution > 0 {
		return o.resolution
	}
	return s.Resolution
}

// emit writes spec's graph into a fresh net.
func emit(s Spec, o options, dry bool) (*net, error) {
	if s.Arch == nil {
		return nil, fmt.Errorf("model %q has no architecture to build", s.Name)
	}
	if o.opset < DefaultOpset || o.opset > MaxOpset {
		return nil, fmt.Errorf("model %q: opset %d not supported (%d to %d)", s.Name, o.opset, DefaultOpset, MaxOpset)
	}
	res := o.res(s)
	if res <= 0 {
		return nil, fmt.Errorf("model %q: no input resolution", s.Name)
	}
	if res > 4096 {
		return nil, fmt.Errorf("model %q: resolution %d px is beyond 4096", s.Name, res)
	}
	if err := s.Arch.validate(res); err != nil {
		return nil, fmt.Errorf("model %q: %w", s.Name, err)
	}
	n := newNet(s.Name, o.opset, o.seed, dry)
	if o.opset >= 23 {
		n.b.SetIRVersion(11) // opset 23 came with IR version 11
	}
	x := n.b.AddInput(InputName, onnx.Float, onnx.Dims("batch", 3, res, res))
	out := s.Arch.build(n, res, x)
	if n.err != nil {
		return nil, fmt.Errorf("model %q: %w", s.Name, n.err)
	}
	kind, dim := s.Arch.output()
	if out != kind.outputName() {
		return nil, fmt.Errorf("model %q: builder produced %q, not %q", s.Name, out, kind.outputName())
	}
	n.b.AddOutput(out, onnx.Float, onnx.Dims("batch", dim))
	return n, nil
}

// Analyze counts spec's parameters and FLOPs without building it.
func Analyze(s Spec, opts ...Option) (Analysis, error) {
	o := newOptions(opts)
	n, err := emit(s, o, true)
	if err != nil {
		return Analysis{}, err
	}
	return Analysis{
		Params:      n.archParams,
		GraphParams: n.graphParams,
		WeightBytes: n.weightBytes,
		MACs:        n.macs,
		GFLOPs:      2 * float64(n.macs) / 1e9,
		Resolution:  o.res(s),
	}, nil
}

// Build builds spec's model in memory: the graph, then the weights,
// deterministic from the seed. It stops early when ctx is done.
func Build(ctx context.Context, s Spec, opts ...Option) (*onnx.Model, error) {
	o := newOptions(opts)
	return build(ctx, s, o)
}

func build(ctx context.Context, s Spec, o options) (*onnx.Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	report := func(st Stage, done, total int64) {
		if o.progress != nil {
			o.progress(Progress{Model: s.Name, Stage: st, Done: done, Total: total})
		}
	}
	report(StageGraph, 0, 0)
	n, err := emit(s, o, false)
	if err != nil {
		return nil, err
	}
	res := o.res(s)
	kind, _ := s.Arch.output()
	n.b.SetDocString(fmt.Sprintf("%s built by quantscope's model zoo (builder %d) with synthetic weights (seed %d); %s", s.Name, BuilderVersion, o.seed, s.Description))
	n.b.SetMetadata("quantscope.model", s.Name)
	n.b.SetMetadata("quantscope.family", string(s.Family))
	n.b.SetMetadata("quantscope.builder_version", strconv.Itoa(BuilderVersion))
	n.b.SetMetadata("quantscope.seed", strconv.FormatUint(o.seed, 10))
	n.b.SetMetadata("quantscope.resolution", strconv.Itoa(res))
	n.b.SetMetadata("quantscope.output", string(kind))
	n.b.SetMetadata("quantscope.preprocess", s.Preprocess.Name)
	n.b.SetMetadata("quantscope.mean", floats(s.Preprocess.Mean[:]))
	n.b.SetMetadata("quantscope.std", floats(s.Preprocess.Std[:]))
	m, err := n.b.Build()
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", s.Name, err)
	}
	// Constant tensors are filled already; progress counts all weights.
	var random int64
	for _, j := range n.jobs {
		random += int64(len(j.raw))
	}
	filled := n.weightBytes - random
	report(StageWeights, filled, n.weightBytes)
	err = fillAll(ctx, n.jobs, func(done, _ int64) { report(StageWeights, filled+done, n.weightBytes) })
	n.jobs = nil
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", s.Name, err)
	}
	return m, nil
}

func floats(v []float32) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = strconv.FormatFloat(float64(f), 'g', -1, 32)
	}
	return strings.Join(s, ",")
}
