package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/evaluate"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/report"
	"github.com/quantscope/quantscope/profiler/sensitivity"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/tune"
)

type tuneOptions struct {
	model, budget, objective, ep string
	batch, threads               int
	duration                     time.Duration
	out, write, summary          string
	maxCandidates, samples       int
	by                           string
	optimize, json, resume       bool
	force                        bool
	eval                         evalFlags
}

func newTuneCmd(g *globalOptions) *cobra.Command {
	o := tuneOptions{}
	cmd := &cobra.Command{
		Use:   "tune --model M --budget 'acc-drop<=0.5'|'cos>=0.999' [--objective throughput|latency|size] [--ep cpu|cuda]",
		Short: "Search per-layer precision for the best configuration within a fidelity budget, measuring every candidate",
		Long: `tune finds the configuration that best meets --objective without breaking
--budget. It measures every uniform precision the EP runs (cpu: int8, int4;
GPU EPs also fp16); if the cheapest breaks the budget, it ranks the blocks by
sensitivity (quantscope sensitivity) and restores the most sensitive ones to
the cheapest precision that holds the budget (or float), bisecting how many,
then tries each restored block back at the cheap precision. Every candidate is
measured as bench measures it — in a worker process of its own, after an FP32
baseline, with fidelity and (with --eval-dir) accuracy — and appended to --out.

It writes the winner's model (--write), its per-layer plan (FILE.plan.json,
for quantize --plan), a summary of every step (--summary) and prints the
frontier: the candidates nothing else beats on both the objective and
fidelity. The budget takes bench's --gate syntax; acc-drop needs --eval-dir.

Exit status: 0 a quantized configuration holds the budget, 3 none does (FP32
is the answer), 75 quantscope serve is running a study here (--force runs
anyway), 130 interrupted.`,
		Example: `  quantscope tune --model model.onnx --budget 'acc-drop<=0.5' --eval-dir ./val --labels synsets.txt
  quantscope tune --model vit-base-16 --budget 'cos>=0.999' --objective size --write vit-small.onnx`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runTune(cmd.Context(), g, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "catalog model name or .onnx path (required)")
	f.StringVar(&o.budget, "budget", "", "fidelity every candidate must keep, in --gate syntax: acc-drop<=0.5, cos>=0.999, top1>=0.99 (required)")
	f.StringVar(&o.objective, "objective", "throughput", "what to optimize: throughput, latency or size")
	f.StringVar(&o.ep, "ep", "cpu", "execution provider: cpu, cuda, tensorrt, auto")
	f.IntVar(&o.batch, "batch", 0, "batch size of the measurements (default 8 for throughput, 1 otherwise)")
	f.IntVar(&o.threads, "threads", 0, "intra-op threads (0 = one per physical core)")
	f.DurationVar(&o.duration, "duration", 3*time.Second, "timed phase of each candidate")
	f.StringVar(&o.out, "out", "tune-results.jsonl", "results file: one bench record per candidate (appended)")
	f.StringVar(&o.write, "write", "", "write the winning model here (default <model>.tuned.onnx in the current directory)")
	f.StringVar(&o.summary, "summary", "", "write the search (every step, why, the frontier) as JSON here (default <out>.tune.json)")
	f.IntVar(&o.maxCandidates, "max-candidates", 12, "candidates measured beyond the uniform precisions")
	f.IntVar(&o.samples, "samples", 8, "inputs of the sensitivity ranking (a small fixed batch)")
	f.StringVar(&o.by, "by", "block", "restore whole blocks (block) or single layers (layer)")
	f.BoolVar(&o.optimize, "optimize", optimize.DefaultEnabled, "fuse transformer patterns before converting (as bench)")
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	f.BoolVar(&o.resume, "resume", false, "reuse candidates already recorded ok in --out")
	f.BoolVar(&o.force, "force", false, "run even while quantscope serve runs a study on this machine (both sets of numbers suffer)")
	o.eval.register(f)
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("budget")
	return cmd
}

func runTune(ctx context.Context, g *globalOptions, o tuneOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	budget, err := report.ParseGate(o.budget)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--budget: %w", err)}
	}
	if budget.IsZero() {
		return &exitError{code: 2, err: errors.New("--budget is empty: say what fidelity to keep, e.g. 'acc-drop<=0.5' or 'cos>=0.999'")}
	}
	objective, err := tune.ParseObjective(o.objective)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--objective: %w", err)}
	}
	if err := o.eval.validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	if (benchGate{gate: budget, set: true}).needsAccuracy() && !o.eval.set() {
		return &exitError{code: 2, err: fmt.Errorf("--budget %q is on accuracy: give the labelled images with --eval-dir", o.budget)}
	}
	if o.by != string(sensitivity.ByBlock) && o.by != string(sensitivity.ByLayer) {
		return &exitError{code: 2, err: fmt.Errorf("--by %q: want block or layer", o.by)}
	}
	if o.batch == 0 {
		o.batch = 1
		if objective == tune.Throughput {
			o.batch = 8
		}
	}
	if busy := serveBusy(); busy != "" {
		if !o.force {
			return &exitError{code: exitBusy, err: fmt.Errorf("%s; a search now would compete with it for the hardware and spoil both sets of numbers: wait for it to finish, or pass --force", busy)}
		}
		fmt.Fprintf(g.stderr, "warning: %s; --force: searching anyway, both sets of numbers suffer\n", busy)
	}
	info, err := ort.Init(g.ortLib)
	if err != nil {
		return err
	}
	res, err := zoo.Resolve(ctx, o.model)
	if err != nil {
		return err
	}
	dataset, err := o.eval.dataset(g.stderr)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--eval-dir: %w", err)}
	}
	prog := newProgress(g.stderr, 0)
	prep := study.NewPreparer()
	prep.Threads = o.threads
	prep.Warn = func(msg string) { prog.note("warning: " + msg) }
	meas := &tune.StudyMeasurer{Model: o.model, EP: o.ep, Batch: o.batch, Threads: o.threads, Optimize: o.optimize, Reuse: o.resume,
		Run: study.RunConfig{Out: o.out, Prepare: prep, Host: study.ReadHost(info, nil), Duration: o.duration, ORTLib: g.ortLib}}
	if dataset != nil {
		meas.Run.Eval = dataset
	}
	rank := func(ctx context.Context, kind quant.Kind) ([]string, error) {
		return tuneRanking(ctx, rankConfig{model: o.model, optimize: o.optimize, samples: o.samples, by: o.by, threads: o.threads}, res, kind, dataset, g.stderr)
	}
	fmt.Fprintf(g.stderr, "quantscope tune: %s, budget %s, objective %s on %s (batch %d) → %s\n", res.Spec.Name, budget, objective, o.ep, o.batch, o.out)
	start := time.Now()
	r, err := tune.Run(ctx, tune.Config{Budget: budget, Objective: objective, EP: o.ep, MaxCandidates: o.maxCandidates,
		OnStep: func(s tune.Step) { printStep(g.stderr, s, objective) }}, meas, rank)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted; candidates measured so far are in %s (rerun with --resume)", o.out)}
		}
		return err
	}
	summary := o.summary
	if summary == "" {
		summary = strings.TrimSuffix(o.out, filepath.Ext(o.out)) + ".tune.json"
	}
	if err := tune.WriteSummary(summary, r); err != nil {
		return err
	}
	var wrote, plan string
	if r.Winner.Spec != "fp32" {
		wrote = o.write
		if wrote == "" {
			wrote = res.Spec.Name + ".tuned.onnx"
		}
		if plan, err = tune.WriteModel(r.Winner, o.model, wrote); err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		printTune(g.stdout, r, objective)
		if wrote != "" {
			fmt.Fprintf(g.stdout, "\nwrote %s (plan %s; reproduce: quantscope quantize --model %s --plan %s)\n", wrote, plan, o.model, plan)
		}
		fmt.Fprintf(g.stdout, "search: %s; candidates: %s (%s)\n", summary, o.out, time.Since(start).Round(time.Second))
	}
	if r.Winner.Spec == "fp32" {
		return &exitError{code: exitGateFailed, err: fmt.Errorf("no quantized configuration holds %s", budget)}
	}
	return nil
}

// rankConfig is how tune's sensitivity ranking runs.
type rankConfig struct {
	model    string
	optimize bool
	samples  int
	by       string
	threads  int
}

// tuneRanking ranks blocks (or layers) by sensitivity at kind on the
// model as tune's candidates are built (fused when --optimize).
func tuneRanking(ctx context.Context, o rankConfig, res zoo.Resolved, kind quant.Kind, dataset *evaluate.Dataset, w io.Writer) ([]string, error) {
	_, path, err := sensitivity.Source(ctx, o.model, kind, o.optimize)
	if err != nil {
		return nil, err
	}
	var in sensitivity.Inputs
	if dataset != nil {
		set, err := dataset.SetForResolved(ctx, res)
		if err != nil {
			return nil, err
		}
		in, err = sensitivity.SetInputs(set, o.samples)
		if err != nil {
			return nil, err
		}
	} else if in, err = sensitivity.SyntheticInputs(path, res, o.samples); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "ranking %ss by sensitivity at %s on %s…\n", o.by, kind, in.Source)
	r, err := sensitivity.Run(ctx, sensitivity.Config{Model: path, Precision: quant.Spec{Kind: kind}, By: sensitivity.Granularity(o.by),
		Inputs: in, Session: ort.SessionConfig{IntraOpThreads: o.threads}})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range r.Candidates {
		if c.Skipped == "" {
			names = append(names, c.Name)
		}
	}
	fmt.Fprintf(w, "ranking (most sensitive first, %.1f s): %s\n", r.Elapsed, strings.Join(names, " "))
	return names, nil
}

// printStep reports a candidate as it starts and when it is measured.
func printStep(w io.Writer, s tune.Step, o tune.Objective) {
	if !s.Measured {
		fmt.Fprintf(w, "[%d] %s — %s\n", s.N, s.Spec, s.Why)
		return
	}
	if s.Err != "" {
		fmt.Fprintf(w, "[%d] %s: failed: %s\n", s.N, s.Spec, s.Err)
		return
	}
	verdict := "holds the budget"
	if !s.Pass {
		verdict = "breaks it: " + strings.Join(s.Failed, ", ")
	}
	best := ""
	if s.Best {
		best = " ★ best so far"
	}
	fmt.Fprintf(w, "[%d] %s: %s, %s; %s%s\n", s.N, s.Spec, o.Format(s.M), fidelityText(s.M), verdict, best)
}

// fidelityText is a measurement's fidelity in a few words.
func fidelityText(m tune.Measurement) string {
	var parts []string
	if d, ok := m.Accuracy.Top1Diff(); ok {
		parts = append(parts, "acc Δ "+accuracy.FormatPoints(d.Diff)+" pt")
	}
	if m.Fidelity != nil {
		parts = append(parts, fmt.Sprintf("cos %.5f", m.Fidelity.CosineMean))
	}
	if len(parts) == 0 {
		return "fidelity not measured"
	}
	return strings.Join(parts, ", ")
}

// printTune writes the frontier and the winner.
func printTune(w io.Writer, r *tune.Result, o tune.Objective) {
	fmt.Fprintf(w, "fp32 baseline: %.1f samples/s, p50 %.2f ms, %.2f MB\n\nfrontier (%s against fidelity; nothing else is better on both):\n",
		r.Baseline.Throughput, r.Baseline.P50Ms, float64(r.Baseline.FileBytes)/1e6, o)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "spec\tsamples/s\tp50 ms\tsize\tvs fp32\tfidelity\tbudget\t")
	for _, s := range r.Frontier {
		mark := "holds"
		if !s.Pass {
			mark = "breaks"
		}
		if s.Spec == r.Winner.Spec {
			mark += " ★"
		}
		vs := ""
		switch o {
		case tune.Throughput:
			vs = fmt.Sprintf("%.2f×", s.M.Throughput/r.Baseline.Throughput)
		case tune.Latency:
			vs = fmt.Sprintf("%.2f×", r.Baseline.P50Ms/s.M.P50Ms)
		case tune.Size:
			vs = fmt.Sprintf("%.3f× size", float64(s.M.FileBytes)/float64(r.Baseline.FileBytes))
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.2f\t%.2f MB\t%s\t%s\t%s\t\n", s.Spec, s.M.Throughput, s.M.P50Ms, float64(s.M.FileBytes)/1e6, vs, fidelityText(s.M), mark)
	}
	tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "\nwinner: %s — %s, %s, %.3f× the FP32 file\n", r.Winner.Spec, o.Format(r.Winner.M), fidelityText(r.Winner.M),
		float64(r.Winner.M.FileBytes)/float64(r.Baseline.FileBytes))
}
