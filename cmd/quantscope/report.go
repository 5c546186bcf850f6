package main

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/report"
)

// reportOptions are the flags of `quantscope report`.
type reportOptions struct {
	out          string
	format       string
	pricePerHour float64
	pricePerKWh  float64
	compare      []string
	gate         string
	title        string
	top          int
	// modelInfo looks up parameter counts; nil means the built-in catalog.
	modelInfo func(string) (report.ModelInfo, bool)
}

func newReportCmd(g *globalOptions) *cobra.Command {
	var opts reportOptions
	cmd := &cobra.Command{
		Use:   "report results.jsonl [more.jsonl…]",
		Short: "Turn results files into a report: tables, charts, recommendations, CSV",
		Long: `report reads one or more results files written by 'quantscope bench' (or the
interactive UI) and writes, into --out:

  report.md       environment, plan, top configurations, recommendations,
                  per-model tables, charts, cost, failures and notes
                  (--format html writes one self-contained report.html instead)
  *.png, *.svg    speedup heatmap, memory and size reduction, throughput vs
                  parameters, Pareto frontiers (fidelity, memory), latency
  results.csv     one row per experiment with the derived columns
  rows.csv        one row per configuration and host (the schema bench
                  --format csv and the TUI's export write)

Recommendations only consider configurations whose fidelity against FP32
passes --gate. Records from different hosts or ONNX Runtime versions are
reported separately. With --compare, every experiment measured in both sets is
compared, and differences within run-to-run noise are called so.`,
		Example: `  quantscope report results.jsonl --out report/
  quantscope report results.jsonl --format html --price-per-hour 2.48 --price-per-kwh 0.21
  quantscope report new.jsonl --compare old.jsonl --gate "top1>=0.99,cos>=0.999"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReport(g, opts, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.out, "out", "o", "report", "directory to write the report, charts and results.csv into")
	f.StringVar(&opts.format, "format", report.FormatMarkdown, "report format: md (charts as files beside it) or html (one self-contained file)")
	f.Float64Var(&opts.pricePerHour, "price-per-hour", 0, "machine price per hour, for cost per million inferences")
	f.Float64Var(&opts.pricePerKWh, "price-per-kwh", 0, "energy price per kWh, for the energy part of the cost (needs measured energy)")
	f.StringArrayVar(&opts.compare, "compare", nil, "results file to compare against (B; repeat for several files)")
	f.StringVar(&opts.gate, "gate", report.DefaultGate, `fidelity gate, e.g. "top1>=0.99,cos>=0.999" (metrics: top1, top5, cos, cosmin, sqnr, maxabs); "" for none`)
	f.StringVar(&opts.title, "title", "", "report title (default \"quantscope report\")")
	f.IntVar(&opts.top, "top", report.DefaultTopN, "how many configurations the ranking shows")
	return cmd
}

// runReport loads, builds and writes the report, printing what it wrote.
func runReport(g *globalOptions, opts reportOptions, files []string) error {
	if opts.format != report.FormatMarkdown && opts.format != report.FormatHTML {
		return fmt.Errorf("--format %q: use md or html", opts.format)
	}
	for name, v := range map[string]float64{"--price-per-hour": opts.pricePerHour, "--price-per-kwh": opts.pricePerKWh} {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s %v: a price must be a non-negative number", name, v)
		}
	}
	if opts.top < 1 {
		return fmt.Errorf("--top %d: must be at least 1", opts.top)
	}
	gate, err := report.ParseGate(opts.gate)
	if err != nil {
		return fmt.Errorf("--gate: %w", err)
	}
	if opts.modelInfo == nil {
		opts.modelInfo = catalogModelInfo
	}
	srcs, err := report.Load(files...)
	if err != nil {
		return explainLoad(err)
	}
	ro := report.Options{Title: opts.title, Gate: gate, PricePerHour: opts.pricePerHour, PricePerKWh: opts.pricePerKWh,
		ModelInfo: opts.modelInfo, TopN: opts.top}
	var r *report.Report
	if len(opts.compare) > 0 {
		other, err := report.Load(opts.compare...)
		if err != nil {
			return explainLoad(err)
		}
		r = report.BuildCompare(srcs, other, ro)
		warnSkipped(g, other)
	} else {
		r = report.Build(srcs, ro)
	}
	warnSkipped(g, srcs)
	w, err := r.Write(opts.out, opts.format)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "wrote %s\n", filepath.Join(opts.out, w.Report))
	fmt.Fprintf(g.stdout, "wrote %s\n", filepath.Join(opts.out, w.CSV))
	if n := len(w.Charts); n > 0 {
		fmt.Fprintf(g.stdout, "wrote %d charts (PNG and SVG) into %s\n", n/2, opts.out)
	}
	for _, n := range w.ChartNotes {
		fmt.Fprintf(g.stderr, "note: %s\n", n)
	}
	return nil
}

// explainLoad adds what to do to a load error.
func explainLoad(err error) error {
	if errors.Is(err, report.ErrNoRecords) {
		return fmt.Errorf("%w\n(a results file holds one JSON record per line, as written by 'quantscope bench')", err)
	}
	return err
}

func warnSkipped(g *globalOptions, srcs []report.Source) {
	for _, s := range srcs {
		for _, w := range s.Warnings {
			fmt.Fprintf(g.stderr, "warning: %s line %d: %s\n", s.Path, w.Line, w.Reason)
		}
	}
}

// catalogModelInfo takes parameter counts and GFLOPs from the built-in
// model catalog.
func catalogModelInfo(name string) (report.ModelInfo, bool) {
	s, ok := zoo.Lookup(name)
	if !ok {
		return report.ModelInfo{}, false
	}
	return report.ModelInfo{Params: s.Params, GFLOPs: s.GFLOPs, Family: string(s.Family)}, true
}
