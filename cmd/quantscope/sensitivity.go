package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/sensitivity"
)

type sensitivityOptions struct {
	model, precision string
	by               string
	samples          int
	batch, threads   int
	optimize         bool
	json             bool
	top              int
	eval             evalFlags
}

func newSensitivityCmd(g *globalOptions) *cobra.Command {
	o := sensitivityOptions{}
	cmd := &cobra.Command{
		Use:   "sensitivity --model NAME|FILE.onnx --precision int4|int8 [--by layer|block] [--eval-dir DIR]",
		Short: "Rank layers (or blocks) by the fidelity lost when each alone is quantized",
		Long: `sensitivity quantizes one weight layer (or one block of them, --by block) at
a time, runs each such model in an ONNX Runtime session of its own on a small
fixed batch (--samples seeded synthetic images, or the first images of
--eval-dir with their labels), compares its outputs with FP32's (cosine, SQNR,
top-1 agreement, and accuracy on the labelled images) and ranks the
candidates, most sensitive first. quantscope tune starts its search from this
ranking; the layer names are those specs' keep=, int8= and int4= take.`,
		Example: `  quantscope sensitivity --model vit-base-16 --precision int4 --by block
  quantscope sensitivity --model model.onnx --precision int8 --eval-dir ./val --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSensitivity(cmd.Context(), g, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "catalog model name or .onnx path (required)")
	f.StringVar(&o.precision, "precision", "int4", "what each candidate is quantized to: int4 or int8 (with options, e.g. int4:block=64)")
	f.StringVar(&o.by, "by", "layer", "candidates: every weight layer (layer) or every block (block)")
	f.IntVar(&o.samples, "samples", 8, "inputs every candidate runs on (a small fixed batch)")
	f.IntVar(&o.batch, "batch", 0, "session batch size (0: up to 8)")
	f.IntVar(&o.threads, "threads", 0, "ONNX Runtime intra-op threads (0: one per physical core)")
	f.BoolVar(&o.optimize, "optimize", optimize.DefaultEnabled, "analyze the graph models/optimize fuses, as bench and tune run it")
	f.BoolVar(&o.json, "json", false, "print the ranking as JSON")
	f.IntVar(&o.top, "top", 0, "print only the N most sensitive (0: all)")
	o.eval.register(f)
	_ = cmd.MarkFlagRequired("model")
	return cmd
}

func runSensitivity(ctx context.Context, g *globalOptions, o sensitivityOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	spec, err := quant.ParseSpec(o.precision)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if o.samples < 1 {
		return &exitError{code: 2, err: fmt.Errorf("--samples %d: want at least 1", o.samples)}
	}
	if err := o.eval.validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	progressW := g.stderr
	if _, err := ort.Init(g.ortLib); err != nil {
		return err
	}
	res, path, err := sensitivity.Source(ctx, o.model, spec.Kind, o.optimize)
	if err != nil {
		return err
	}
	var in sensitivity.Inputs
	if o.eval.set() {
		d, err := o.eval.dataset(progressW)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--eval-dir: %w", err)}
		}
		set, err := d.SetForResolved(ctx, res)
		if err != nil {
			return fmt.Errorf("--eval-dir: %w", err)
		}
		if in, err = sensitivity.SetInputs(set, o.samples); err != nil {
			return err
		}
	} else if in, err = sensitivity.SyntheticInputs(path, res, o.samples); err != nil {
		return err
	}
	tty := isTerminal(progressW)
	r, err := sensitivity.Run(ctx, sensitivity.Config{
		Model: path, Precision: spec, By: sensitivity.Granularity(o.by), Inputs: in, Batch: o.batch,
		Session: ort.SessionConfig{IntraOpThreads: o.threads},
		Progress: func(done, total int, name string) {
			switch {
			case tty && name != "":
				fmt.Fprintf(progressW, "\r\033[K%s %s: %d/%d %s", res.Spec.Name, spec, done+1, total, name)
			case tty:
				fmt.Fprint(progressW, "\r\033[K")
			}
		},
	})
	if err != nil {
		return err
	}
	r.Model = o.model
	if o.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return printSensitivity(g.stdout, r, o.top)
}

// printSensitivity writes the ranking with a bar of each candidate's loss.
func printSensitivity(w io.Writer, r *sensitivity.Result, top int) error {
	fmt.Fprintf(w, "%s at %s, by %s: %d candidates on %s (%.1f s)\n", r.Model, r.Precision, r.By, len(r.Candidates), r.Inputs, r.Elapsed)
	if r.FP32Correct >= 0 {
		fmt.Fprintf(w, "fp32 gets %d of %d labelled images right\n", r.FP32Correct, r.Samples)
	}
	maxLoss := 0.0
	for _, c := range r.Candidates {
		if c.Skipped == "" && !math.IsInf(c.Loss, 0) {
			maxLoss = math.Max(maxLoss, c.Loss)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "#\tcandidate\tparams\t1−cos\tSQNR dB\ttop-1 agree"
	if r.FP32Correct >= 0 {
		head += "\tcorrect"
	}
	fmt.Fprintln(tw, head+"\t")
	for i, c := range r.Candidates {
		if top > 0 && i >= top {
			break
		}
		if c.Skipped != "" {
			fmt.Fprintf(tw, "%d\t%s\t%s\t—\t—\t—\tskipped: %s\n", i+1, c.Name, humanCount(c.Params), c.Skipped)
			continue
		}
		bar := ""
		if maxLoss > 0 {
			bar = strings.Repeat("█", int(math.Round(20*c.Loss/maxLoss)))
		}
		line := fmt.Sprintf("%d\t%s\t%s\t%.2e\t%.1f\t%.1f%%", i+1, c.Name, humanCount(c.Params), c.Loss, c.SQNRdB, 100*c.Top1Agree)
		if r.FP32Correct >= 0 {
			line += fmt.Sprintf("\t%d/%d", c.Correct, r.Samples)
		}
		fmt.Fprintln(tw, line+"\t"+bar)
	}
	return tw.Flush()
}

// humanCount writes a parameter count: 590k, 2.4M.
func humanCount(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
