package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/quantscope/quantscope/internal/bytefmt"
	"github.com/quantscope/quantscope/models/zoo"
)

// modelsOptions are the flags of `quantscope models`.
type modelsOptions struct {
	cacheDir string // --cache-dir: where built models go ("" = default)
	json     bool   // list --json
	// build flags
	all        bool
	force      bool
	opset      int64
	resolution int
	seed       uint64
	// isTTY reports whether w is a terminal (progress redraws in place);
	// nil means a real check.
	isTTY func(io.Writer) bool
}

func newModelsCmd(g *globalOptions) *cobra.Command {
	var opts modelsOptions
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List and build the built-in vision models",
		Long: `The model zoo: quantscope's catalog of vision models (ViT, DeiT, DINO, DINOv2,
BEiT, CLIP, MobileViT, ResNet-50, MobileNetV2), written as ONNX graphs with
deterministic synthetic weights and cached on disk after the first build.

Wherever quantscope takes a model name, a path to an .onnx file works too.

Built models live in $QUANTSCOPE_CACHE_DIR/models, or else
$XDG_CACHE_HOME/quantscope/models (~/.cache/quantscope/models).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runModelsList(g, opts)
		},
	}
	cmd.PersistentFlags().StringVar(&opts.cacheDir, "cache-dir", "", "directory of built models (default: $QUANTSCOPE_CACHE_DIR/models or ~/.cache/quantscope/models)")

	list := &cobra.Command{
		Use:   "list",
		Short: "Show the catalog: parameters, resolution, GFLOPs, whether built",
		Example: `  quantscope models list
  quantscope models list --json | jq '.[] | select(.cached) | .path'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runModelsList(g, opts)
		},
	}
	list.Flags().BoolVar(&opts.json, "json", false, "print a JSON array instead of the table")

	build := &cobra.Command{
		Use:   "build NAME...",
		Short: "Build catalog models into the cache (or check .onnx files) and print their paths",
		Long: `build writes each named catalog model to the cache, unless it is there
already, and prints its path and size. Large models show their progress.
A path to an .onnx file is checked to be an image model quantscope can
profile (one float32 input [N, 3, H, W]) and printed the same way.`,
		Example: `  quantscope models build vit-base-16 deit-tiny
  quantscope models build --all
  quantscope models build dinov2-large --resolution 518
  quantscope models build ./my-model.onnx`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runModelsBuild(cmd.Context(), g, opts, args)
		},
	}
	build.Flags().BoolVar(&opts.all, "all", false, "build every catalog model")
	build.Flags().BoolVar(&opts.force, "force", false, "rebuild even when cached")
	build.Flags().Int64Var(&opts.opset, "opset", zoo.DefaultOpset, fmt.Sprintf("ONNX opset (%d to %d)", zoo.DefaultOpset, zoo.MaxOpset))
	build.Flags().IntVar(&opts.resolution, "resolution", 0, "input size in pixels (default: the model's; ViTs take multiples of the patch size)")
	build.Flags().Uint64Var(&opts.seed, "seed", 0, "seed of the synthetic weights")

	cmd.AddCommand(list, build)
	return cmd
}

// zooOptions are the zoo options the flags select.
func (o modelsOptions) zooOptions() []zoo.Option {
	var z []zoo.Option
	if o.cacheDir != "" {
		z = append(z, zoo.WithCacheDir(o.cacheDir))
	}
	if o.opset != 0 {
		z = append(z, zoo.WithOpset(o.opset))
	}
	if o.resolution != 0 {
		z = append(z, zoo.WithResolution(o.resolution))
	}
	if o.seed != 0 {
		z = append(z, zoo.WithSeed(o.seed))
	}
	return z
}

// modelJSON is one model of `models list --json`.
type modelJSON struct {
	Name        string         `json:"name"`
	Family      zoo.Family     `json:"family"`
	Description string         `json:"description"`
	Params      int64          `json:"params"`
	Resolution  int            `json:"resolution"`
	Classes     int            `json:"classes"`
	EmbedDim    int            `json:"embed_dim"`
	Output      zoo.OutputKind `json:"output"`
	OutputDim   int            `json:"output_dim"`
	GFLOPs      float64        `json:"gflops"`
	Preprocess  zoo.Preprocess `json:"preprocess"`
	Cached      bool           `json:"cached"`
	Path        string         `json:"path,omitempty"`
	Bytes       int64          `json:"bytes,omitempty"`
}

func runModelsList(g *globalOptions, opts modelsOptions) error {
	zopts := opts.zooOptions()
	var rows []modelJSON
	for _, s := range zoo.Catalog() {
		row := modelJSON{
			Name: s.Name, Family: s.Family, Description: s.Description, Params: s.Params,
			Resolution: s.Resolution, Classes: s.Classes, EmbedDim: s.Embed, Output: s.Output,
			OutputDim: s.OutputDim, GFLOPs: s.GFLOPs, Preprocess: s.Preprocess,
		}
		if m, ok := zoo.Cached(s, zopts...); ok {
			row.Cached, row.Bytes = true, m.Bytes()
			row.Path, _ = zoo.CachePath(s, zopts...)
		}
		rows = append(rows, row)
	}
	if opts.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tFAMILY\tPARAMS\tRES\tGFLOPS\tOUTPUT\tCACHED")
	for _, r := range rows {
		out := fmt.Sprintf("%d classes", r.OutputDim)
		if r.Output == zoo.Embeddings {
			out = fmt.Sprintf("%d-d embed", r.OutputDim)
		}
		cached := "-"
		if r.Cached {
			cached = bytefmt.Format(r.Bytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%s\t%s\n", r.Name, r.Family, humanParams(r.Params), r.Resolution, r.GFLOPs, out, cached)
	}
	return tw.Flush()
}

// humanParams formats a parameter count: 632M, 86.6M, 5.72M.
func humanParams(n int64) string {
	m := float64(n) / 1e6
	switch {
	case m >= 100:
		return fmt.Sprintf("%.0fM", m)
	case m >= 10:
		return fmt.Sprintf("%.1fM", m)
	}
	return fmt.Sprintf("%.2fM", m)
}

// largeWeights is the weight size from which a build shows its progress
// on a non-terminal too.
const largeWeights = 200 << 20

func runModelsBuild(ctx context.Context, g *globalOptions, opts modelsOptions, args []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if opts.all {
		if len(args) > 0 {
			return errors.New("models build: give model names or --all, not both")
		}
		args = zoo.Names()
	}
	if len(args) == 0 {
		return errors.New("models build: name at least one model (`quantscope models list`), or --all")
	}
	// Check every name and file first, so a typo does not wait for a
	// long build.
	type target struct {
		spec     zoo.Spec
		imported *zoo.Resolved
	}
	var targets []target
	var bad []error
	for _, a := range args {
		if !zoo.IsPath(a) {
			if s, ok := zoo.Lookup(a); ok {
				if _, err := zoo.Analyze(s, opts.zooOptions()...); err != nil {
					bad = append(bad, err)
				} else {
					targets = append(targets, target{spec: s})
				}
				continue
			}
			if st, err := os.Stat(a); err != nil || st.IsDir() {
				_, err := zoo.Resolve(ctx, a) // not in the catalog: the error says so
				bad = append(bad, err)
				continue
			}
		}
		r, err := zoo.Import(a)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		targets = append(targets, target{imported: &r})
	}
	if len(bad) > 0 {
		return errors.Join(bad...)
	}

	isTTY := opts.isTTY
	if isTTY == nil {
		isTTY = writerIsTerminal
	}
	tty := isTTY(g.stderr)
	var failed []error
	for _, t := range targets {
		if r := t.imported; r != nil {
			printBuilt(g.stdout, r.Spec.Name, "imported", r.Bytes, r.Path)
			continue
		}
		zopts := append(opts.zooOptions(), zoo.WithRebuild(opts.force))
		a, _ := zoo.Analyze(t.spec, opts.zooOptions()...)
		var pr *progressPrinter
		if tty || a.WeightBytes >= largeWeights {
			pr = &progressPrinter{w: g.stderr, tty: tty}
			zopts = append(zopts, zoo.WithProgress(pr.report))
		}
		start := time.Now()
		r, err := zoo.Ensure(ctx, t.spec, zopts...)
		pr.finish()
		if err != nil {
			failed = append(failed, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		how := "cached"
		if !r.Cached {
			how = "built in " + time.Since(start).Round(100*time.Millisecond).String()
		}
		printBuilt(g.stdout, r.Spec.Name, how, r.Bytes, r.Path)
	}
	return errors.Join(failed...)
}

// printBuilt prints one line of `models build`.
func printBuilt(w io.Writer, name, how string, size int64, path string) {
	fmt.Fprintf(w, "%-24s %-16s %10s  %s\n", name, how, bytefmt.Format(size), path)
}

// writerIsTerminal reports whether w is a terminal.
func writerIsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// progressPrinter shows a build's progress: redrawn in place on a
// terminal, a line per quarter otherwise.
type progressPrinter struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	drawn   bool  // a line is on screen (tty)
	quarter int64 // last quarter printed (non-tty)
	stage   zoo.Stage
}

func (p *progressPrinter) report(pr zoo.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var line string
	switch pr.Stage {
	case zoo.StageWeights:
		pct := int64(100)
		if pr.Total > 0 {
			pct = 100 * pr.Done / pr.Total
		}
		if !p.tty {
			if q := pct / 25; pr.Done == 0 || q > p.quarter {
				p.quarter = q
				line = fmt.Sprintf("%s: weights %3d%% of %s", pr.Model, pct, bytefmt.Format(pr.Total))
			}
		} else {
			line = fmt.Sprintf("%s: weights %3d%% %s / %s", pr.Model, pct, bytefmt.Format(pr.Done), bytefmt.Format(pr.Total))
		}
	case zoo.StageWrite:
		line = fmt.Sprintf("%s: writing %s", pr.Model, bytefmt.Format(pr.Total))
	default:
		return
	}
	if line == "" {
		return
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s", line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// finish clears the progress line (nil-safe).
func (p *progressPrinter) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}
