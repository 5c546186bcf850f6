package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/evaluate"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/worker"
)

// quantizeOptions are the flags of `quantscope quantize`.
type quantizeOptions struct {
	model        string
	precision    string
	out          string
	calibDir     string
	calibSeed    uint64
	exclude      []string
	check        bool
	optimize     bool
	checkSamples int
	checkDir     string
	// checkSamplesSet is true when --check-samples was given (it then caps
	// --check-dir's images).
	checkSamplesSet bool
	checkSeed       uint64
	batch           int
	threads         int
	// resolution is the size to check a model whose input height and
	// width are symbolic at (0: the size it declares).
	resolution int
	json       bool
	// force lets --out replace an existing file that is not a variant
	// quantscope wrote (never the input model itself).
	force bool
	eval  evalFlags // --eval-dir: accuracy of FP32 and the variant
	plan  string    // --plan FILE.json: one precision per layer
}

func newQuantizeCmd(g *globalOptions) *cobra.Command {
	opts := quantizeOptions{}
	cmd := &cobra.Command{
		Use:   "quantize --model NAME|FILE.onnx --precision SPEC|--plan FILE.json [--out FILE.onnx]",
		Short: "Convert a model to FP16, INT8 or INT4 and report what changed",
		Long: `quantize converts an FP32 ONNX model to another precision and prints what it
did: per op type, how many nodes run in which precision, the share of weight
bytes at 4/8/16/32 bits, and the sizes before and after.

Precisions (options after a colon, comma-separated):
  fp16[:mixed][,keep=Op+Op]            float16; mixed keeps LayerNorm and Softmax fp32
  fp16:ep=cpu / fp16:storage           float16 where the CPU EP has kernels / float16
                                       weights read as float32 (half the file, FP32 speed)
  int8[:per-tensor][,reduce-range][,conv=integer]
                                       dynamic int8 (DynamicQuantizeMatMul); Convs other
                                       than the patch embedding in calibrated QDQ form
                                       (QLinearConv), or ConvInteger with conv=integer
                                       (slow on CPU)
  int8-static[:calib=minmax|percentile|entropy][,percentile=P][,samples=N][,act=u8|s8]
                                       QDQ int8, activations calibrated on images
  int4[:block=16|32|64|128][,asym][,accuracy_level=0..4]
                                       weight-only int4 (MatMulNBits)
  int8, int8-static and int4 also take keep-first and keep-last (patch
  embedding and head left in float), and per-layer choices: keep=A+B (layers
  or blocks left in float), int8=A+B (of an int4 spec), int4=A+B (of an int8
  spec), e.g. int4:keep=blocks.0+head,int8=blocks.11. --plan FILE.json gives
  one precision per layer instead ({"base": "int4", "layers": {"head":
  "fp32"}}), as quantscope tune writes it; quantscope sensitivity --json
  lists the layer names.

Without --out the variant is cached (under $QUANTSCOPE_CACHE_DIR, else
~/.cache/quantscope; keyed by the model's hash, the spec and the quantizer
version) and reused by later runs: nothing is written beside the model. With
--check, the FP32 model and the variant run on the same seeded synthetic
images and the fidelity of the variant's first output is printed: cosine
similarity (mean, min), top-1 and top-5 agreement, max abs error and SQNR.
With --check-dir they run on your own images instead (resized, centre-cropped
and normalized with the model's mean and std): top-1 agreement means
something only on a trained model and on data like its own.

With --eval-dir (a labelled ImageFolder, DIR/<class>/*.jpg) both models are
also scored against the labels: top-1 and top-5 accuracy with 95% intervals,
and the variant's paired difference from FP32 with McNemar's exact test.

A precision that converts nothing in this model is an error.`,
		Example: `  quantscope quantize --model deit-tiny --precision int8 --check
  quantscope quantize --model vit-base-16 --precision int4:block=64,asym --out vit-b-int4.onnx
  quantscope quantize --model model.onnx --precision int8-static:calib=entropy --calib-dir ./images
  quantscope quantize --model model.onnx --precision fp16:mixed --exclude head --json
  quantscope quantize --model model.onnx --precision int4 --check-dir ./val-images
  quantscope quantize --model model.onnx --precision int8 --eval-dir ./val --labels synsets.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.checkSamplesSet = cmd.Flags().Changed("check-samples")
			return runQuantize(cmd.Context(), g, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.model, "model", "", "catalog model name (see: quantscope models list) or path to an .onnx file")
	f.StringVar(&opts.precision, "precision", "", "precision spec, e.g. int8, int4:block=64,asym, fp16:mixed, int4:keep=blocks.0+head")
	f.StringVar(&opts.plan, "plan", "", "per-layer precisions from a JSON plan (as quantscope tune writes), instead of --precision")
	f.StringVarP(&opts.out, "out", "o", "", "write the variant here (default: cache it, see above)")
	f.StringVar(&opts.calibDir, "calib-dir", "", "int8-static: folder of JPEG/PNG calibration images (default: seeded synthetic images)")
	f.Uint64Var(&opts.calibSeed, "calib-seed", 1, "int8-static: seed of the synthetic calibration images")
	f.StringSliceVar(&opts.exclude, "exclude", nil, "node names to keep in float (repeatable, comma-separated)")
	f.BoolVar(&opts.optimize, "optimize", optimize.DefaultEnabled, "fuse transformer patterns (models/optimize) before converting; the variant then needs ONNX Runtime's com.microsoft operators")
	f.BoolVar(&opts.check, "check", false, "compare the variant with the FP32 model on seeded inputs")
	f.IntVar(&opts.checkSamples, "check-samples", quant.DefaultCheckSamples, "number of seeded inputs for --check (with --check-dir: at most this many images, when set)")
	f.StringVar(&opts.checkDir, "check-dir", "", "run --check on this folder's JPEG/PNG images (your task's data) instead of seeded synthetic ones; implies --check")
	f.Uint64Var(&opts.checkSeed, "check-seed", quant.DefaultCheckSeed, "seed of the --check inputs (the benchmark worker's fidelity uses the default)")
	f.IntVar(&opts.batch, "batch", 8, "batch size of --check runs and calibration")
	f.IntVar(&opts.resolution, "resolution", 0, "--check: height and width for a model whose input leaves them symbolic (default: the size the model declares in its metadata, else 224, as bench runs it)")
	f.IntVar(&opts.threads, "threads", 0, "ONNX Runtime intra-op threads (0: one per physical core)")
	f.BoolVar(&opts.json, "json", false, "print one JSON object instead of text")
	f.BoolVar(&opts.force, "force", false, "let --out replace an existing file that is not a variant quantscope wrote (the input model is never replaced)")
	opts.eval.register(f)
	_ = cmd.MarkFlagRequired("model")
	return cmd
}

// quantizeResult is what --json prints.
type quantizeResult struct {
	Model     string           `json:"model"`
	Source    string           `json:"source"`
	Precision string           `json:"precision"`
	Variant   string           `json:"variant"`
	Cached    bool             `json:"cached"`
	Optimized *optimize.Report `json:"optimized,omitempty"`
	Report    *quant.Report    `json:"report"`
	Fidelity  *fidelity.Result `json:"fidelity,omitempty"`
	// CheckInputs says what the check ran on: the seeded synthetic images
	// (quant.CheckInputs, as bench's fidelity uses) or the --check-dir folder.
	CheckInputs string `json:"check_inputs,omitempty"`
	// Weights and Output are what the model declares: the catalog's
	// models have synthetic weights, on which top-1 is not an accuracy
	// figure; backbones output embeddings, which have no top-1.
	Weights string `json:"weights,omitempty"`
	Output  string `json:"output,omitempty"`
	// AccuracyFP32 and Accuracy are both models' accuracy on --eval-dir,
	// the variant's paired with FP32's.
	AccuracyFP32 *accuracy.Result `json:"accuracy_fp32,omitempty"`
	Accuracy     *accuracy.Result `json:"accuracy,omitempty"`
}

func runQuantize(ctx context.Context, g *globalOptions, opts quantizeOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	var spec quant.Spec
	switch {
	case opts.plan != "" && opts.precision != "":
		return &exitError{code: 2, err: errors.New("--precision and --plan both given: a plan carries its own precisions")}
	case opts.plan != "":
		p, err := quant.ReadPlan(opts.plan)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if spec, err = p.Spec(); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--plan %s: %w", opts.plan, err)}
		}
	case opts.precision == "":
		return &exitError{code: 2, err: errors.New(`required flag "precision" not set (or give --plan FILE.json)`)}
	default:
		var err error
		if spec, err = quant.ParseSpec(opts.precision); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	if opts.checkDir != "" {
		opts.check = true
	}
	if err := opts.eval.validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	if opts.eval.set() {
		opts.check = true
	}
	switch {
	case opts.batch < 1:
		return &exitError{code: 2, err: fmt.Errorf("--batch must be at least 1 (got %d)", opts.batch)}
	case opts.threads < 0:
		return &exitError{code: 2, err: fmt.Errorf("--threads %d: must be 0 (one per physical core) or a positive count", opts.threads)}
	case opts.check && opts.checkSamples < 1:
		return &exitError{code: 2, err: fmt.Errorf("--check-samples must be at least 1 (got %d)", opts.checkSamples)}
	case opts.calibDir != "" && spec.Kind != quant.Int8Static:
		return &exitError{code: 2, err: fmt.Errorf("--calib-dir applies to int8-static only, not %s", spec.Kind)}
	case opts.resolution < 0 || (opts.resolution > 0 && opts.resolution < 8):
		return &exitError{code: 2, err: fmt.Errorf("--resolution %d: want 0 (as declared) or at least 8 pixels", opts.resolution)}
	case opts.out != "" && !spec.Quantizes():
		return &exitError{code: 2, err: errors.New("--out with fp32: the source model is the fp32 variant")}
	}
	progress := g.stderr
	if opts.json {
		progress = io.Discard
	}
	res, err := zoo.Resolve(ctx, opts.model, zoo.WithProgress(func(p zoo.Progress) {
		if p.Stage == zoo.StageDone {
			fmt.Fprintf(progress, "built %s (%.1f MB)\n", p.Model, float64(p.Total)/1e6)
		}
	}))
	if err != nil {
		return err
	}
	if opts.out != "" {
		// Before any work: the output must not be the model itself (by any
		// name) nor, without --force, a file quantscope did not write.
		replace := quant.ReplaceVariants
		if opts.force {
			replace = quant.ReplaceAny
		}
		if err := quant.CheckOutput(opts.out, replace, res.Path); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	needORT := opts.check || spec.Kind == quant.Int8Static
	sessCfg := ort.SessionConfig{IntraOpThreads: opts.threads}
	if needORT {
		if _, err := ort.Init(g.ortLib); err != nil {
			what := "--check"
			if spec.Kind == quant.Int8Static {
				what = "int8-static calibration"
			}
			return fmt.Errorf("%s runs the model on ONNX Runtime: %w", what, err)
		}
	}
	pre := quant.Preprocess{Mean: res.Spec.Preprocess.Mean, Std: res.Spec.Preprocess.Std}
	qopts := quant.Options{
		Exclude: quant.ExcludeList(opts.exclude),
		Calibration: quant.Calibration{
			Runner:     ort.CalibRunner{Config: sessCfg},
			Dir:        opts.calibDir,
			Preprocess: pre,
			Seed:       opts.calibSeed,
			BatchSize:  opts.batch,
		},
		Warn: func(msg string) { fmt.Fprintf(g.stderr, "warning: %s\n", msg) },
	}
	if !needORT && (spec.Kind != quant.Int8 || runtimeMissing(g.ortLib)) {
		// int8 calibrates a model's convolutions when ONNX Runtime is
		// there; without it they stay float and the report says so.
		qopts.Calibration.Runner = nil
	}

	out := quantizeResult{Model: res.Spec.Name, Source: res.Path, Precision: spec.String()}
	input := res.Path
	if o, ok := optimize.For(string(spec.Kind)); ok && opts.optimize && spec.Quantizes() {
		r, err := optimize.Ensure(ctx, res.Path, o)
		if err != nil {
			return err
		}
		input, out.Optimized = r.Path, r.Report
	}
	if opts.out != "" {
		if err := quant.CheckOutput(opts.out, quant.ReplaceAny, input); err != nil { // the fused copy
			return &exitError{code: 2, err: err}
		}
		r, err := quant.QuantizeFile(ctx, input, opts.out, spec, qopts)
		if err != nil {
			return quantizeError(err, r, g.stderr)
		}
		out.Variant, out.Report = opts.out, r
	} else {
		v, err := quant.Variant(ctx, input, spec, qopts)
		if err != nil {
			return quantizeError(err, nil, g.stderr)
		}
		out.Variant, out.Report, out.Cached = v.Path, v.Report, v.Cached
	}
	if opts.check {
		inputs := quant.NewCheckInputs(opts.checkSamples, opts.checkSeed, res.Spec.Preprocess.Name, res.Spec.Preprocess.Mean, res.Spec.Preprocess.Std)
		f, err := checkFidelity(ctx, res.Path, out.Variant, inputs, pre, opts, sessCfg, qopts.Warn)
		if err != nil {
			return err
		}
		out.CheckInputs = inputs.String()
		if opts.checkDir != "" {
			out.CheckInputs = fmt.Sprintf("%d images from %s", f.Samples, opts.checkDir)
		}
		f.Inputs = out.CheckInputs
		out.Fidelity = &f
		out.Weights, out.Output = study.WeightsTrained, study.OutputLogits
		if res.Spec.Family != zoo.FamilyImported {
			out.Weights, out.Output = study.WeightsSynthetic, string(res.Spec.Output)
		}
	}
	if opts.eval.set() {
		out.AccuracyFP32, out.Accuracy, err = checkAccuracy(ctx, res, out.Variant, opts, sessCfg, progress)
		if err != nil {
			return err
		}
	}
	if opts.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return printQuantize(g.stdout, out)
}

// quantizeError explains a failed transform; for ErrNothingConverted it
// prints the report first, so the user sees what was kept and why.
// runtimeMissing reports whether ONNX Runtime cannot be loaded.
func runtimeMissing(lib string) bool {
	_, err := ort.Init(lib)
	return err != nil
}

func quantizeError(err error, r *quant.Report, w io.Writer) error {
	if errors.Is(err, quant.ErrNothingConverted) && r != nil {
		_ = r.Write(w)
	}
	return err
}

func printQuantize(w io.Writer, out quantizeResult) error {
	var b strings.Builder
	fmt.Fprintf(&b, "model:   %s (%s)\n", out.Model, out.Source)
	cached := ""
	if out.Cached {
		cached = " (cached)"
	}
	fmt.Fprintf(&b, "variant: %s%s\n", out.Variant, cached)
	if out.Optimized != nil {
		fmt.Fprintf(&b, "fusions: %s (%d → %d nodes)\n", out.Optimized, out.Optimized.NodesBefore, out.Optimized.NodesAfter)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if err := out.Report.Write(w); err != nil {
		return err
	}
	if f := out.Fidelity; f != nil {
		var top string
		switch {
		case out.Output == study.OutputEmbeddings:
			top = "  top-1 —  (embeddings have no classes: judge the cosine)\n"
		case out.Weights == study.WeightsSynthetic:
			top = fmt.Sprintf("  top-1 agreement %.2f%%  (top-5 %.2f%%): synthetic weights, nearly tied logits: not an accuracy figure\n  %s\n",
				100*f.Top1, 100*f.Top5, f.DecisiveString())
		default:
			top = fmt.Sprintf("  top-1 agreement %.2f%%  (top-5 %.2f%%)\n  %s\n", 100*f.Top1, 100*f.Top5, f.DecisiveString())
		}
		if _, err := fmt.Fprintf(w, "fidelity vs fp32 on %s:\n  cosine mean %.6f  min %.6f\n%s  max abs error %.4g  (mean %.4g)\n  SQNR %.1f dB\n",
			out.CheckInputs, f.CosineMean, f.CosineMin, top, f.MaxAbsError, f.MeanAbsError, f.SQNRdB); err != nil {
			return err
		}
	}
	if a, b := out.AccuracyFP32, out.Accuracy; a != nil && b != nil {
		var s strings.Builder
		fmt.Fprintf(&s, "accuracy on %s (%d images, %d classes", a.Dataset, a.Images, a.Classes)
		if a.Skipped > 0 {
			fmt.Fprintf(&s, ", %d unreadable skipped", a.Skipped)
		}
		fmt.Fprintf(&s, "; %s):\n", a.Preprocess)
		fmt.Fprintf(&s, "  fp32     top-1 %s  top-5 %s\n", accuracy.FormatRate(a.Top1, a.Images), accuracy.FormatRate(a.Top5, a.Images))
		fmt.Fprintf(&s, "  %-8s top-1 %s  top-5 %s\n", strings.SplitN(out.Precision, ":", 2)[0], accuracy.FormatRate(b.Top1, b.Images), accuracy.FormatRate(b.Top5, b.Images))
		if d, ok := b.Top1Diff(); ok {
			fmt.Fprintf(&s, "  top-1 difference: %s\n", d)
		}
		if d, ok := b.Top5Diff(); ok {
			fmt.Fprintf(&s, "  top-5 difference: %s\n", d)
		}
		if _, err := io.WriteString(w, s.String()); err != nil {
			return err
		}
	}
	return nil
}

// checkAccuracy scores the FP32 model and the variant on --eval-dir, the
// variant paired with FP32 image by image.
func checkAccuracy(ctx context.Context, res zoo.Resolved, variant string, opts quantizeOptions, cfg ort.SessionConfig, progress io.Writer) (*accuracy.Result, *accuracy.Result, error) {
	d, err := opts.eval.dataset(progress)
	if err != nil {
		return nil, nil, fmt.Errorf("--eval-dir: %w", err)
	}
	set, err := d.SetForResolved(ctx, res)
	if err != nil {
		return nil, nil, fmt.Errorf("--eval-dir: %w", err)
	}
	for _, sk := range set.Skipped {
		fmt.Fprintf(progress, "skipped %s: %s\n", sk.Name, sk.Reason)
	}
	run := func(path string) (*accuracy.Predictions, error) {
		bd, err := ort.NewBound(path, cfg, opts.batch, 1)
		if err != nil {
			return nil, err
		}
		defer bd.Close()
		return evaluate.Run(ctx, bd, opts.batch, set, opts.eval.limit, nil)
	}
	ref, err := run(res.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("accuracy: fp32 model: %w", err)
	}
	got, err := run(variant)
	if err != nil {
		return nil, nil, fmt.Errorf("accuracy: variant: %w", err)
	}
	a, err := evaluate.Score(set, ref, nil)
	if err != nil {
		return nil, nil, err
	}
	b, err := evaluate.Score(set, got, ref)
	if err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// checkFidelity runs the source and the variant on the same images
// (the check inputs, or --check-dir's) through the worker's fidelity loop
// (worker.FirstOutputs) and compares their first outputs.
func checkFidelity(ctx context.Context, src, variant string, inputs quant.CheckInputs, pre quant.Preprocess, opts quantizeOptions, cfg ort.SessionConfig, warn func(string)) (fidelity.Result, error) {
	in, err := quant.ImageInputFile(src)
	if err == nil {
		in, err = in.At(opts.resolution)
	}
	if err != nil {
		return fidelity.Result{}, fmt.Errorf("check: %w", err)
	}
	var samples [][]float32
	if opts.checkDir == "" {
		for i := range inputs.N {
			samples = append(samples, inputs.Sample(in, i))
		}
	} else {
		limit := 0
		if opts.checkSamplesSet {
			limit = opts.checkSamples
		}
		samples, err = quant.LoadImages(opts.checkDir, in, pre, limit, func(msg string) { warn("--check-dir: " + msg) })
		if err != nil {
			return fidelity.Result{}, fmt.Errorf("check: --check-dir: %w", err)
		}
	}
	fill := func(dst []float32, i int) { copy(dst, samples[i%len(samples)]) }
	batch := opts.batch
	if in.Batch > 0 {
		batch = in.Batch
	}
	if in.SymbolicSize {
		cfg.ImageSize = in.Height
	}
	ref, err := worker.FirstOutputs(ctx, src, cfg, batch, len(samples), fill)
	if err != nil {
		return fidelity.Result{}, fmt.Errorf("check: fp32 model: %w", err)
	}
	got, err := worker.FirstOutputs(ctx, variant, cfg, batch, len(samples), fill)
	if err != nil {
		return fidelity.Result{}, fmt.Errorf("check: variant: %w", err)
	}
	return fidelity.Compare(ref, got)
}
