package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/zoo"
	"github.com/spf13/cobra"
)

// optimizeOptions are the flags of `quantscope optimize`.
type optimizeOptions struct {
	model     string
	out       string
	attention string
	disable   []string
	force     bool
	json      bool
}

func newOptimizeCmd(g *globalOptions) *cobra.Command {
	var opts optimizeOptions
	cmd := &cobra.Command{
		Use:   "optimize --model M --out F.onnx",
		Short: "Write a model's fused FP32 graph (the speedup that changes no precision)",
		Long: `Rewrite a transformer model into the fused operators ONNX Runtime runs
fastest (attention → MultiHeadAttention, residual Add + LayerNorm →
SkipLayerNormalization, bias + GELU → BiasGelu, shape subgraphs folded,
unused token rows pruned), in FP32, and write it to --out. Every rewrite is
done only where it computes the same function; the report lists what
matched and, for each near miss, which pattern almost matched and why.

The graph needs ONNX Runtime's com.microsoft operators (any ONNX Runtime
build has them). A model in which nothing fuses is an error, and nothing is
written.`,
		Example: `  quantscope optimize --model vit.onnx --out vit-fused.onnx
  quantscope optimize --model vit-base-16 --out vit-b16-fused.onnx --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runOptimize(cmd.Context(), g, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.model, "model", "", "catalog model name (see: quantscope models list) or path to an .onnx file")
	f.StringVarP(&opts.out, "out", "o", "", "write the fused model here (with external data when the source has it)")
	f.StringVar(&opts.attention, "attention", string(optimize.AttentionMHA), "what attention fuses into: MultiHeadAttention, MultiHeadAttention-split or Attention")
	f.StringSliceVar(&opts.disable, "disable", nil, "patterns not to apply (comma-separated, e.g. prune-unused-tokens)")
	f.BoolVar(&opts.force, "force", false, "overwrite --out when it exists")
	f.BoolVar(&opts.json, "json", false, "print one JSON object instead of text")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// optimizeResult is what --json prints.
type optimizeResult struct {
	Model     string           `json:"model"`
	Source    string           `json:"source"`
	Out       string           `json:"out"`
	Bytes     int64            `json:"bytes"`
	Optimized *optimize.Report `json:"optimized"`
}

func runOptimize(ctx context.Context, g *globalOptions, opts optimizeOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	o := optimize.Options{AttentionOp: optimize.AttentionOp(opts.attention)}
	for _, p := range opts.disable {
		p = strings.TrimSpace(p)
		if !knownPattern(optimize.Pattern(p)) {
			return fmt.Errorf("--disable %q: not a pattern (one of %s)", p, patternList())
		}
		o.Disable = append(o.Disable, optimize.Pattern(p))
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
	if err := checkOut(res.Path, opts.out, opts.force); err != nil {
		return err
	}
	r, err := optimize.File(ctx, res.Path, opts.out, o)
	if err != nil {
		return err
	}
	if !r.Changed() {
		printMisses(g.stderr, r)
		return fmt.Errorf("optimize %s: nothing to fuse (%d nodes); %s was not written", res.Path, r.NodesBefore, opts.out)
	}
	size, err := onnx.FilesSize(opts.out)
	if err != nil {
		return fmt.Errorf("optimize: %w", err)
	}
	out := optimizeResult{Model: res.Spec.Name, Source: res.Path, Out: opts.out, Bytes: size, Optimized: r}
	if opts.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(g.stdout, "model:   %s (%s)\n", out.Model, out.Source)
	fmt.Fprintf(g.stdout, "fusions: %s (%d → %d nodes, %s)\n", r, r.NodesBefore, r.NodesAfter, r.Elapsed.Round(1e6))
	printMisses(g.stdout, r)
	fmt.Fprintf(g.stdout, "wrote:   %s (%.1f MB, FP32; needs ONNX Runtime's com.microsoft operators)\n", opts.out, float64(size)/1e6)
	return nil
}

// checkOut refuses an --out that is the source itself or, without
// --force, a file that exists.
func checkOut(src, out string, force bool) error {
	if filepath.Ext(out) != ".onnx" {
		return fmt.Errorf("--out %s: name the file .onnx", out)
	}
	a, err1 := filepath.Abs(src)
	b, err2 := filepath.Abs(out)
	if err1 == nil && err2 == nil && a == b {
		return fmt.Errorf("--out %s is the source model: name another file", out)
	}
	if st, err := os.Stat(out); err == nil {
		if si, err := os.Stat(src); err == nil && os.SameFile(st, si) {
			return fmt.Errorf("--out %s is the source model: name another file", out)
		}
		if !force {
			return fmt.Errorf("--out %s exists: pass --force to overwrite it", out)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("--out %s: %w", out, err)
	}
	return nil
}

// printMisses lists the near misses of a report.
func printMisses(w io.Writer, r *optimize.Report) {
	if len(r.Misses) == 0 {
		return
	}
	fmt.Fprintf(w, "near misses (%d):\n", len(r.Misses))
	for _, m := range r.Misses {
		fmt.Fprintf(w, "  %s at %s: %s\n", m.Pattern, m.Node, m.Reason)
	}
}

func knownPattern(p optimize.Pattern) bool {
	for _, q := range optimize.Patterns {
		if p == q {
			return true
		}
	}
	return false
}

func patternList() string {
	s := make([]string, len(optimize.Patterns))
	for i, p := range optimize.Patterns {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}
