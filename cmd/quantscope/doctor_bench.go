package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/spf13/cobra"

	"github.com/quantscope/quantscope/profiler/hwbench"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/worker"
	"github.com/quantscope/quantscope/tui"
)

// doctorBenchOptions are doctor's --bench flags.
type doctorBenchOptions struct {
	enabled    bool    // --bench
	quick      bool    // --quick
	minPercent float64 // --min-percent
	ep         string  // --ep
	gpu        int     // --gpu
	threads    int     // --threads
}

// Exit codes of doctor --bench beyond doctor's own (1: ONNX Runtime did not
// load).
const (
	exitBelowMinPercent = 3 // a figure is below --min-percent
	exitFault           = 4 // a fault was found (broken hardware, a failed measurement)
)

// addDoctorBenchFlags registers --bench and the flags that only mean
// something with it; using one of those without --bench is an error.
func addDoctorBenchFlags(cmd *cobra.Command, o *doctorBenchOptions) {
	fs := cmd.Flags()
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if o.enabled {
			return nil
		}
		for _, name := range []string{"quick", "min-percent", "ep", "gpu", "threads"} {
			if cmd.Flags().Changed(name) {
				return fmt.Errorf("--%s needs --bench", name)
			}
		}
		return nil
	}
	fs.BoolVar(&o.enabled, "bench", false, "also measure the machine (about a minute): GEMM peaks through ONNX Runtime, memory and PCIe bandwidth, a reference inference and the hardware's health, each against what it should be, with a verdict. Exit 3 when a figure is below --min-percent, 4 when a fault is found")
	fs.BoolVar(&o.quick, "quick", false, "with --bench: small sizes and short runs, a smoke test of every step in seconds (figures are not judged)")
	fs.Float64Var(&o.minPercent, "min-percent", 0, "with --bench: exit 3 when any figure is below this percentage of its expected value (theoretical peak, part or link rate, reference machine)")
	fs.StringVar(&o.ep, "ep", "auto", "with --bench: execution provider to measure: auto (CUDA when usable), cpu or cuda")
	fs.IntVar(&o.gpu, "gpu", 0, "with --bench: NVML index of the GPU to measure")
	fs.IntVar(&o.threads, "threads", 0, "with --bench: ONNX Runtime threads on the CPU (default: one per physical core)")
}

// runDoctorBench measures the machine after doctor's own checks, prints the
// checklist and the bench section (or one JSON object with "bench"), and
// turns the verdicts into the exit status.
func runDoctorBench(ctx context.Context, g *globalOptions, opts doctorOptions, sys doctorSystem, rep doctorReport) error {
	b := opts.bench
	if b.minPercent < 0 || b.minPercent > 1000 {
		return fmt.Errorf("--min-percent %g: want a percentage between 0 and 1000", b.minPercent)
	}
	switch b.ep {
	case "auto", "cpu", "cuda":
	default:
		return fmt.Errorf("--ep %q: want auto, cpu or cuda", b.ep)
	}
	color := useColor(g.stdout, sys.getenv, sys.isTTY)
	st := newDoctorStyles(doctorRenderer(g.stdout, color))
	if !rep.OK {
		// Nothing can be measured without ONNX Runtime: report as doctor does.
		return printDoctor(g, opts, st, rep)
	}
	cfg := hwbench.Config{
		ORTLib: g.ortLib, EP: b.ep, GPU: b.gpu, Quick: b.quick, Threads: b.threads,
		Worker: worker.Options{}, NVML: func() nvml.Interface { return sys.nvml() },
	}
	progress := newBenchProgress(g.stderr)
	res, err := hwbench.Run(ctx, cfg, progress.event)
	if err != nil {
		return fmt.Errorf("doctor --bench: %w", err)
	}
	rep.Bench = res
	if err := printDoctor(g, opts, st, rep); err != nil {
		return err
	}
	if !opts.json {
		if _, err := io.WriteString(g.stdout, renderBench(res, st, b.minPercent)); err != nil {
			return fmt.Errorf("write doctor report: %w", err)
		}
	}
	if f := res.Faults(); len(f) > 0 {
		return &exitError{code: exitFault, err: fmt.Errorf("doctor --bench: %s", describeLines("fault", f))}
	}
	if low := res.BelowPercent(b.minPercent); len(low) > 0 {
		return &exitError{code: exitBelowMinPercent, err: fmt.Errorf("doctor --bench: %s below %g%%", describeLines("figure", low), b.minPercent)}
	}
	return nil
}

// tuiDoctor is the TUI's Doctor screen check: doctor --bench with its
// defaults, sharing the TUI's model preparer (and so its cache).
func tuiDoctor(ortLib string, prep study.Preparer) tui.DoctorFunc {
	return func(ctx context.Context, emit func(hwbench.Event)) (*hwbench.Report, error) {
		return hwbench.Run(ctx, hwbench.Config{ORTLib: ortLib, EP: "auto", Prepare: prep}, emit)
	}
}

// printDoctor writes doctor's checklist, or the whole report as JSON.
func printDoctor(g *globalOptions, opts doctorOptions, st doctorStyles, rep doctorReport) error {
	if opts.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("write doctor report: %w", err)
		}
	} else if _, err := io.WriteString(g.stdout, renderDoctor(rep, st)); err != nil {
		return fmt.Errorf("write doctor report: %w", err)
	}
	if !rep.OK {
		return &exitError{code: 1, err: fmt.Errorf("ONNX Runtime did not load; nothing measured")}
	}
	return nil
}

// describeLines names lines for an error message: "2 faults: PCIe link, ECC".
func describeLines(what string, ls []hwbench.Line) string {
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name
		if l.Device != "cpu" {
			names[i] += " (" + l.Device + ")"
		}
	}
	plural := what + "s"
	if len(ls) == 1 {
		plural = what
	}
	return fmt.Sprintf("%d %s: %s", len(ls), plural, strings.Join(names, ", "))
}

// benchProgress prints the steps and the judged lines on stderr as they come.
type benchProgress struct{ w io.Writer }

func newBenchProgress(w io.Writer) *benchProgress { return &benchProgress{w: w} }

func (p *benchProgress) event(e hwbench.Event) {
	switch e.Kind {
	case hwbench.EventStep:
		fmt.Fprintf(p.w, "[%d/%d] %s…\n", e.Step, e.Steps, e.Label)
	case hwbench.EventLine:
		l := e.Line
		if l.Group == hwbench.GroupHealth {
			return
		}
		if l.Error != "" {
			fmt.Fprintf(p.w, "      %s: %s\n", l.Name, l.Error)
			return
		}
		fmt.Fprintf(p.w, "      %s: %s%s\n", l.Name, hwbench.FormatValue(l.Value, l.Unit), percentOf(*l))
	}
}

// percentOf is " (49% of 435 GFLOP/s)" or "".
func percentOf(l hwbench.Line) string {
	if l.Expected <= 0 {
		return ""
	}
	return fmt.Sprintf(" (%.0f%% of %s)", l.Percent, hwbench.FormatValue(l.Expected, l.Unit))
}

// benchMark is a verdict's checklist mark.
func benchMark(v hwbench.Verdict) doctorMark {
	switch v {
	case hwbench.OK:
		return markOK
	case hwbench.Below:
		return markWarn
	case hwbench.Fault:
		return markFail
	}
	return markInfo
}

// benchNameWidth is the width of the name column of the bench section.
const benchNameWidth = 34

// renderBench renders the measured section after doctor's checklist. It is
// pure: the styles decide whether it carries ANSI codes.
func renderBench(r *hwbench.Report, st doctorStyles, minPercent float64) string {
	c := &checklist{st: st}
	m := r.Machine
	what := fmt.Sprintf("%s · %d cores", strings.ToUpper(m.EP), m.Cores)
	if m.GPU != "" {
		what += fmt.Sprintf(" · GPU %d %s", m.GPUIndex, m.GPU)
	}
	if r.Quick {
		what += " · quick"
	}
	c.heading(fmt.Sprintf("Bench (%s · %.0f s · load average %.1f → %.1f)", what, r.Seconds, m.LoadStart, m.LoadEnd))
	if m.EPReason != "" {
		c.line(markInfo, st.dim.Render(m.EPReason))
	}
	groups := []struct{ id, title string }{
		{hwbench.GroupCompute, "Compute"}, {hwbench.GroupMemory, "Memory"},
		{hwbench.GroupInference, "Inference"}, {hwbench.GroupHealth, "Health"},
	}
	for _, gr := range groups {
		first := true
		for _, l := range r.Lines {
			if l.Group != gr.id {
				continue
			}
			if first {
				c.b.WriteString("  " + st.title.Render(gr.title) + "\n")
				first = false
			}
			renderBenchLine(c, l)
		}
	}
	for _, w := range r.Warnings {
		c.line(markWarn, w)
	}
	c.b.WriteString("\n")
	below, faults := 0, 0
	for _, l := range r.Lines {
		switch l.Verdict {
		case hwbench.Below:
			below++
		case hwbench.Fault:
			faults++
		}
	}
	summary := fmt.Sprintf("Verdict: %s — %d below expectation, %d %s", r.Verdict.Label(), below, faults, plural(faults, "fault", "faults"))
	if low := r.BelowPercent(minPercent); len(low) > 0 {
		summary += fmt.Sprintf("; %d under --min-percent %g", len(low), minPercent)
	}
	mark := benchMark(r.Verdict)
	if mark == markInfo {
		mark = markOK
	}
	c.line(mark, summary)
	return c.b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// renderBenchLine writes one line: mark, name, figure and percentage, then
// the basis, the cause and next step, and the note on lines below it.
func renderBenchLine(c *checklist, l hwbench.Line) {
	mark := benchMark(l.Verdict)
	var fig string
	switch {
	case l.Error != "":
		fig = c.st.fail.Render("not measured")
		if l.Verdict == hwbench.Info {
			fig = c.st.dim.Render("not run")
		}
	case l.Unit == "":
		fig = l.Note
	default:
		fig = hwbench.FormatValue(l.Value, l.Unit) + percentOf(l)
	}
	fmt.Fprintf(&c.b, "    %s %-*s %s\n", c.mark(mark), benchNameWidth, l.Name, fig)
	more := func(s string) { fmt.Fprintf(&c.b, "      %-*s %s\n", benchNameWidth, "", s) }
	if l.Error != "" {
		more(c.st.dim.Render(l.Error))
	}
	if l.Cause != "" {
		more("cause: " + l.Cause)
	}
	if l.Next != "" {
		more("next: " + l.Next)
	}
	if l.Basis != "" {
		more(c.st.dim.Render(l.Basis))
	}
	if l.Note != "" && l.Unit != "" {
		more(c.st.dim.Render(l.Note))
	}
}
