package study

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/ort"
)

// ModelPreparer is the Preparer of real studies: catalog models are built
// (or taken from the zoo cache), .onnx paths imported and checked to be image
// models, and variants quantized through models/quant's variant cache (keyed
// by the source's hash, the spec and the quantizer version). A precision that
// converts nothing on a model is an error, never a result.
type ModelPreparer struct {
	// Exclude names nodes the quantizers leave in float.
	Exclude []string
	// CalibDir is a folder of images for int8-static calibration ("" for
	// seeded synthetic images).
	CalibDir string
	// Threads for calibration sessions (0 = one per physical core).
	Threads int
	// Warn receives the quantizers' warnings (may be nil).
	Warn func(string)
	// Weights declares imported models' weights: WeightsTrained (the
	// default, "") or WeightsSynthetic. Catalog models are synthetic
	// whatever it says.
	Weights string
	// Output declares imported models' output: OutputLogits (the
	// default, "") or OutputEmbeddings (a backbone). Catalog models
	// declare their own.
	Output string

	mu   sync.Mutex
	done map[string]Prepared
}

// NewPreparer returns a ModelPreparer.
func NewPreparer() *ModelPreparer {
	return &ModelPreparer{done: map[string]Prepared{}}
}

// Prepare implements Preparer. With e.Optimize the model first goes
// through models/optimize (cached beside it, keyed by its hash and the
// optimizer's version), and the precision is applied to the fused graph.
func (p *ModelPreparer) Prepare(ctx context.Context, e Experiment) (Prepared, error) {
	model := e.Model
	spec, err := quant.ParseSpec(e.Precision)
	if err != nil {
		return Prepared{}, err
	}
	spec = ForEP(spec, e.EP)
	key := model + "|" + spec.String()
	if e.Optimize {
		key += "|opt"
	}
	key += fmt.Sprintf("|res%d", e.Resolution)
	p.mu.Lock()
	defer p.mu.Unlock()
	if prep, ok := p.done[key]; ok {
		return prep, nil
	}
	res, err := zoo.Resolve(ctx, model)
	if err != nil {
		return Prepared{}, err
	}
	prep := Prepared{Path: res.Path, GFLOPs: res.Spec.GFLOPs, Traits: p.traits(res.Spec)}
	size, err := RunImageSize(res.Path, e.Resolution)
	if err != nil {
		return Prepared{}, fmt.Errorf("%s: %w", model, err)
	}
	prep.ImageSize = size
	pre := res.Spec.Preprocess
	prep.Inputs = quant.NewCheckInputs(0, quant.DefaultCheckSeed, pre.Name, pre.Mean, pre.Std)
	if e.Optimize {
		if opts, ok := optimize.For(string(spec.Kind)); ok {
			o, err := optimize.Ensure(ctx, res.Path, opts)
			if err != nil {
				return Prepared{}, fmt.Errorf("%s: %w", model, err)
			}
			prep.Path = o.Path
			prep.Optimized = optimization(o.Report)
		}
	}
	if spec.Quantizes() {
		opts := quant.Options{
			Exclude: p.Exclude,
			Warn:    p.Warn,
			Calibration: quant.Calibration{
				Runner:     ort.CalibRunner{Config: ort.SessionConfig{IntraOpThreads: p.Threads}},
				Dir:        p.CalibDir,
				Preprocess: quant.Preprocess{Mean: res.Spec.Preprocess.Mean, Std: res.Spec.Preprocess.Std},
			},
		}
		v, err := quant.Variant(ctx, prep.Path, spec, opts)
		if err != nil {
			if errors.Is(err, quant.ErrNothingConverted) {
				return Prepared{}, fmt.Errorf("%s at %s: the requested precision did not apply: %w", model, spec, err)
			}
			return Prepared{}, fmt.Errorf("%s at %s: %w", model, spec, err)
		}
		prep.Path = v.Path
		prep.Report = v.Report
	}
	p.done[key] = prep
	return prep, nil
}

// ForEP adapts a precision to the execution provider it will run on: fp16
// on the CPU EP keeps in float32 the operators ONNX Runtime's CPU EP has no
// float16 kernel for (fp16:ep=cpu), so that it never runs them through
// Casts of its own; fp16:storage and explicit choices are left alone. The
// precision report's spec says which one ran.
func ForEP(spec quant.Spec, ep string) quant.Spec {
	if spec.Kind == quant.FP16 && ep == "cpu" && !spec.Storage && spec.EP == "" {
		spec.EP = "cpu"
	}
	return spec
}

// optimization is the record's summary of an optimizer report.
func optimization(r *optimize.Report) *Optimization {
	o := &Optimization{Version: r.Version, Matched: map[string]int{}, NodesBefore: r.NodesBefore, NodesAfter: r.NodesAfter}
	for p, c := range r.Matched {
		if c > 0 {
			o.Matched[string(p)] = c
		}
	}
	for _, m := range r.Misses {
		o.NearMisses = append(o.NearMisses, NearMiss{Pattern: string(m.Pattern), Node: m.Node, Reason: m.Reason})
	}
	return o
}

// RunImageSize is the height and width a run of the model at path uses
// when its input leaves them symbolic: resolution when > 0, else the size
// the model declares (quant.ImageInputOf: its metadata, or 224) — the same
// size quantize checks it at. 0 for a model with a fixed size; asking a
// fixed-size model for another size is an error.
func RunImageSize(path string, resolution int) (int, error) {
	in, err := quant.ImageInputFile(path)
	if err != nil {
		return 0, err
	}
	at, err := in.At(resolution)
	if err != nil {
		return 0, err
	}
	if !at.SymbolicSize {
		return 0, nil
	}
	return at.Height, nil
}

// traits declares what a resolved model is: the catalog's models (and
// builds of them) have synthetic weights and say what they output; an
// imported model has trained weights and logits unless p says otherwise.
func (p *ModelPreparer) traits(s zoo.Spec) ModelTraits {
	if s.Family != zoo.FamilyImported {
		return ModelTraits{Weights: WeightsSynthetic, Output: string(s.Output), Source: "catalog"}
	}
	t := ModelTraits{Weights: WeightsTrained, Output: OutputLogits, Source: "imported (default)"}
	if p.Weights != "" || p.Output != "" {
		t.Source = "user"
	}
	if p.Weights != "" {
		t.Weights = p.Weights
	}
	if p.Output != "" {
		t.Output = p.Output
	}
	return t
}

// ParseWeights checks a --weights value: "trained", "synthetic" or ""
// (the default).
func ParseWeights(s string) (string, error) {
	switch s {
	case "", WeightsTrained, WeightsSynthetic:
		return s, nil
	}
	return "", fmt.Errorf("weights %q: want %s or %s", s, WeightsTrained, WeightsSynthetic)
}

// ParseOutput checks an --output-kind value: "logits", "embeddings" or ""
// (the default).
func ParseOutput(s string) (string, error) {
	switch s {
	case "", OutputLogits, OutputEmbeddings:
		return s, nil
	}
	return "", fmt.Errorf("output kind %q: want %s or %s (a backbone)", s, OutputLogits, OutputEmbeddings)
}
