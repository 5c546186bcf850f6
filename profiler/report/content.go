package report

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/bench"
)

// quantInputsText names the default fidelity inputs for the definitions.
func quantInputsText() string {
	return "by default " + quant.CheckInputs{N: quant.DefaultCheckSamples, Seed: quant.DefaultCheckSeed, Norm: "the model's"}.String() +
		", the inputs `quantize --check` uses too (each record says which it ran on)"
}

// document lays the report out. charts holds one set per group, in group
// order (nil for a report without charts).
func (r *Report) document(charts []ChartSet) *document {
	d := &document{title: r.Title}
	r.intro(d)
	r.environment(d)
	r.plan(d)
	if r.Hosts != nil {
		r.hostsSideBySide(d, charts)
	}
	multi := len(r.Groups) > 1
	for i, g := range r.Groups {
		level := 2
		if multi {
			d.h(2, "Results on "+esc(g.Label))
			level = 3
		}
		var cs ChartSet
		if i < len(charts) {
			cs = charts[i]
		}
		r.groupSections(d, g, cs, level)
	}
	if r.Compare != nil {
		r.comparison(d)
	}
	r.definitions(d)
	return d
}

// maxWarnings bounds the skipped lines listed per file.
const maxWarnings = 20

func codeLit(s string) string {
	return "`" + strings.ReplaceAll(strings.ReplaceAll(s, "`", "'"), "|", "\\|") + "`"
}

func (r *Report) intro(d *document) {
	var files []string
	var nrec, nwarn int
	for _, s := range r.Sources {
		files = append(files, fmt.Sprintf("%s (%s)", codeLit(s.Path), plural(len(s.Records), "record", "records")))
		nrec += len(s.Records)
		nwarn += len(s.Warnings)
	}
	hosts := ""
	if len(r.Groups) > 1 {
		hosts = fmt.Sprintf(" The records come from %d host environments; each is reported on its own, since numbers from different machines or ONNX Runtime versions do not mix.", len(r.Groups))
	}
	d.p("Results from %s.%s", joinAnd(files), hosts)
	gate := codeLit(r.Options.Gate.String())
	if r.Options.Gate.IsZero() {
		gate = "none (every configuration with a fidelity measurement passes)"
	}
	d.p("Fidelity gate: %s. Recommendations and the ranking consider only configurations that pass it.", gate)
	if nwarn > 0 {
		d.h(2, "Reading the results")
		d.p("Some lines could not be used and were skipped:")
		var items []string
		for _, s := range r.Sources {
			for i, w := range s.Warnings {
				if i == maxWarnings {
					items = append(items, fmt.Sprintf("%s: %d more lines skipped", codeLit(s.Path), len(s.Warnings)-maxWarnings))
					break
				}
				items = append(items, fmt.Sprintf("%s line %d: %s", codeLit(s.Path), w.Line, esc(w.Reason)))
			}
		}
		d.list(items)
	}
}

func (r *Report) environment(d *document) {
	d.h(2, "Environment")
	t := table{head: []string{""}}
	for _, g := range r.Groups {
		t.head = append(t.head, esc(g.Label))
	}
	row := func(name string, f func(g *Group) string) {
		cells := []string{name}
		empty := true
		for _, g := range r.Groups {
			v := f(g)
			if v == "" {
				v = dash
			} else {
				empty = false
			}
			cells = append(cells, v)
		}
		if !empty {
			t.rows = append(t.rows, cells)
		}
	}
	row("Host group", func(g *Group) string { return esc(g.Host.Group) })
	row("Hostname", func(g *Group) string { return esc(hostnames(g)) })
	row("CPU", func(g *Group) string { return esc(g.Host.CPU) })
	row("ISA features", func(g *Group) string { return esc(strings.Join(g.Host.ISA, " ")) })
	row("Cores", func(g *Group) string { return intStr(g.Host.Cores) })
	row("GPU", func(g *Group) string { return esc(g.Host.GPU) })
	row("Driver", func(g *Group) string { return esc(g.Host.Driver) })
	row("CUDA", func(g *Group) string { return esc(g.Host.CUDA) })
	row("Power limit", func(g *Group) string { return wattStr(g.Host.PowerLimit) })
	row("ONNX Runtime", func(g *Group) string { return esc(g.Host.ORTVersion) })
	row("Execution providers", func(g *Group) string { return esc(strings.Join(g.EPs, ", ")) })
	row("Fusions", func(g *Group) string { return g.Fusions })
	row("TF32 (CUDA)", func(g *Group) string { return g.CUDATF32 })
	row("CUDA graphs", func(g *Group) string { return g.CUDAGraph })
	row("Measured", func(g *Group) string { return timeRange(g.Started, g.Finished) })
	row("Records", func(g *Group) string {
		return fmt.Sprintf("%d (%d ok, %d failed)", g.Records, g.OKRecords, g.FailedRecords)
	})
	d.table(t)
}

func timeRange(a, b time.Time) string {
	if a.IsZero() {
		return ""
	}
	const layout = "2006-01-02 15:04"
	a, b = a.UTC(), b.UTC()
	if b.IsZero() || a.Equal(b) {
		return a.Format(layout) + " UTC"
	}
	if a.Format("2006-01-02") == b.Format("2006-01-02") {
		return fmt.Sprintf("%s – %s UTC (%s)", a.Format(layout), b.Format("15:04"), roundDuration(b.Sub(a)))
	}
	return fmt.Sprintf("%s – %s UTC (%s)", a.Format(layout), b.Format(layout), roundDuration(b.Sub(a)))
}

func roundDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

func (r *Report) plan(d *document) {
	d.h(2, "Plan")
	d.p("The study as recorded: every model × precision × EP × batch that has a record.")
	t := table{head: []string{""}}
	for _, g := range r.Groups {
		t.head = append(t.head, esc(g.Label))
	}
	add := func(name string, f func(g *Group) string) {
		cells := []string{name}
		for _, g := range r.Groups {
			cells = append(cells, f(g))
		}
		t.rows = append(t.rows, cells)
	}
	add("Models", func(g *Group) string { return esc(strings.Join(g.Models, ", ")) })
	add("Precisions", func(g *Group) string { return esc(strings.Join(g.Precisions, ", ")) })
	add("Execution providers", func(g *Group) string { return esc(strings.Join(g.EPs, ", ")) })
	add("Batch sizes", func(g *Group) string { return joinInts(g.Batches) })
	add("Intra-op threads", func(g *Group) string {
		var ts []string
		for _, n := range g.Threads {
			if n == 0 {
				ts = append(ts, "default")
			} else {
				ts = append(ts, fmt.Sprint(n))
			}
		}
		return strings.Join(ts, ", ")
	})
	add("Runs per configuration", func(g *Group) string {
		if g.MaxRuns <= 1 {
			return "1"
		}
		return fmt.Sprintf("up to %d (folded: means, 95%% intervals)", g.MaxRuns)
	})
	add("Configurations", func(g *Group) string {
		ok, failed, orphan := 0, 0, 0
		for _, e := range g.Entries {
			switch {
			case !e.OK():
				failed++
			case !e.HasBaseline && !e.Experiment.IsBaseline():
				orphan++
				ok++
			default:
				ok++
			}
		}
		s := fmt.Sprintf("%d: %d measured, %d failed", len(g.Entries), ok, failed)
		if orphan > 0 {
			s += fmt.Sprintf(", %d without an FP32 baseline", orphan)
		}
		return s
	})
	d.table(t)
}

func (r *Report) groupSections(d *document, g *Group, cs ChartSet, level int) {
	r.topConfigs(d, g, level)
	r.recommendations(d, g, level)
	r.perModel(d, g, level)
	r.accuracy(d, g, level)
	r.diagnosis(d, g, level)
	r.opTime(d, g, level)
	if len(cs.Charts) > 0 || len(cs.Notes) > 0 {
		d.h(level, "Charts")
		for _, c := range cs.Charts {
			d.fig(c)
		}
		d.list(cs.Notes)
	}
	if g.HasCost {
		r.cost(d, g, level)
	}
	r.failures(d, g, level)
	if len(g.Notes) > 0 {
		d.h(level, "Notes")
		d.list(g.Notes)
	}
}

func (r *Report) topConfigs(d *document, g *Group, level int) {
	d.h(level, "Top configurations")
	if g.FidelityMeasured {
		d.p("Configurations that pass the fidelity gate, ranked by speedup over FP32 at the same model, batch and EP, then by memory reduction. Category and use case follow the rules under *How the figures are derived*.")
	} else {
		d.p("Configurations ranked by speedup over FP32 at the same model, batch and EP, then by memory reduction (fidelity was not measured, so no gate applies).")
	}
	if len(g.Top) == 0 {
		d.p("No configuration qualifies: none has both an FP32 baseline and a passing fidelity measurement.")
		return
	}
	t := table{head: []string{"#", "Model", "Precision", "EP", "Batch", "Category", "Speedup", "Mem ↓", "Size ↓", "Top-1", "Decisive top-1", "Cosine", "Use case"},
		right: []bool{true, false, false, false, true, false, true, true, true, true, true, true, false}}
	for i, e := range g.Top {
		x := e.Experiment
		t.rows = append(t.rows, []string{
			fmt.Sprint(i + 1), esc(x.Model), esc(x.Precision), esc(x.EP), fmt.Sprint(x.Batch), e.Category,
			speedupCell(e), fmtRatio(e.MemReduction), fmtRatio(e.SizeReduction), fmtTop1(e), fmtDecisive(e), fmtCos(e.Fidelity), cmpOr(e.UseCase),
		})
	}
	t = t.dropEmptyColumns("Decisive top-1")
	if len(g.EPs) == 1 {
		t = t.dropColumn("EP")
	}
	d.table(t)
	var more []string
	if g.TopOmitted > 0 {
		more = append(more, fmt.Sprintf("%s more qualify (see the per-model tables)", plural(g.TopOmitted, "configuration", "configurations")))
	}
	if g.BelowGate > 0 {
		more = append(more, fmt.Sprintf("%s fell below the gate and %s left out", plural(g.BelowGate, "configuration", "configurations"), map[bool]string{true: "is", false: "are"}[g.BelowGate == 1]))
	}
	if len(more) > 0 {
		d.p("%s.", upperFirst(strings.Join(more, "; ")))
	}
}

func (t table) dropColumn(name string) table {
	for c, h := range t.head {
		if h != name {
			continue
		}
		out := table{head: append(append([]string{}, t.head[:c]...), t.head[c+1:]...)}
		if len(t.right) > c {
			out.right = append(append([]bool{}, t.right[:c]...), t.right[c+1:]...)
		}
		for _, r := range t.rows {
			out.rows = append(out.rows, append(append([]string{}, r[:c]...), r[c+1:]...))
		}
		return out
	}
	return t
}

func (r *Report) recommendations(d *document, g *Group, level int) {
	d.h(level, "Recommendations")
	d.p("Each statement follows from a stated rule applied to the measurements above; nothing else is claimed.")
	for _, ma := range g.Advice {
		d.h(level+1, esc(ma.Model))
		var items []string
		for _, a := range ma.Items {
			if a.Kind == AdviceRecommend {
				items = append(items, a.Rule+" — "+a.Text)
			} else {
				items = append(items, a.Text)
			}
		}
		if len(items) == 0 {
			items = append(items, "Nothing measured.")
		}
		d.list(items)
	}
}

func (r *Report) perModel(d *document, g *Group, level int) {
	d.h(level, "Per-model results")
	d.p("Throughput in samples/s (± 95%% interval with repeats); latency per batch; ratios against FP32 of the same model, batch and EP (higher is better for all of them): speedup with its 95%% interval from paired rounds when the study was repeated, *1 run* when it was not, *uncertain* when a run it rests on was contended. **Mem** is the %s Top-1 is left blank for backbones (embeddings); *decisive top-1* is the agreement on the samples whose FP32 margin exceeds the variant's max abs error.", esc(bench.MemoryDefinition))
	byModel := map[string][]*Entry{}
	for _, e := range g.Entries {
		byModel[e.Experiment.Model] = append(byModel[e.Experiment.Model], e)
	}
	for _, m := range g.Models {
		es := byModel[m]
		title := esc(m)
		if len(es) > 0 && es[0].Params > 0 {
			title += fmt.Sprintf(" (%s M parameters", fmtFloat(float64(es[0].Params)/1e6, 1))
			if es[0].GFLOPs > 0 {
				title += fmt.Sprintf(", %s GFLOPs", fmtFloat(es[0].GFLOPs, 2))
			}
			title += ")"
		}
		d.h(level+1, title)
		d.table(g.modelTable(es))
	}
}

// opTime is where each configuration's inference time goes, per
// operator type, from the per-operator profile of its latest run, with
// what the profile explains.
// diagnosis lists, per variant, Diagnose's findings: why it is (not)
// faster than FP32, judged on the CPU its record names.
func (r *Report) diagnosis(d *document, g *Group, level int) {
	t := table{head: []string{"Model", "Precision", "EP", "Batch", "Speedup", "Findings"},
		right: []bool{false, false, false, true, true, false}}
	for _, e := range g.Entries {
		if !e.OK() || e.Experiment.IsBaseline() || e.Last == nil {
			continue
		}
		fs := Diagnose(e.Row, HostCPU(e.Last.Host))
		if len(fs) == 0 {
			continue
		}
		texts := make([]string, len(fs))
		for i, f := range fs {
			texts[i] = string(f.Cause) + ": " + f.Text
			if f.Rerun {
				texts[i] += " Re-run it on a quiet machine, or with --repeat."
			}
		}
		x := e.Experiment
		t.rows = append(t.rows, []string{esc(x.Model), esc(x.Precision), esc(x.EP), fmt.Sprint(x.Batch), speedupCell(e), esc(strings.Join(texts, " · "))})
	}
	if len(t.rows) == 0 {
		return
	}
	d.h(level, "Why is it (not) faster?")
	d.p("What the measurements say about each variant's speed against FP32: the CPU's instructions for the precision (from the host the record names), the share of weights converted, operator forms with slow ONNX Runtime kernels, latency spread, where the time goes, and nodes that fell back to the CPU.")
	d.table(t)
}

func (r *Report) opTime(d *document, g *Group, level int) {
	t := table{head: []string{"Model", "Precision", "EP", "Batch", "Time per operator", "Findings"}}
	for _, e := range g.Entries {
		if e.Last == nil || e.Last.Metrics == nil || e.Last.Metrics.OpProfile == nil {
			continue
		}
		p := e.Last.Metrics.OpProfile
		t.rows = append(t.rows, []string{esc(e.Experiment.Model), esc(e.Experiment.Precision), esc(e.Experiment.EP),
			fmt.Sprint(e.Experiment.Batch), esc(p.Summary(5)), esc(strings.Join(p.Findings(), " "))})
	}
	if len(t.rows) == 0 {
		return
	}
	d.h(level, "Where the time goes")
	d.p("Share of the kernel time per operator type, from ONNX Runtime's profiler on a few runs outside the timed loop (the latest run of each configuration).")
	d.table(t)
}

func (g *Group) modelTable(es []*Entry) table {
	head := []string{"Precision", "EP", "Threads", "Batch", "Throughput", "p50 ms", "p99 ms", "Speedup", "Mem MiB", "Mem ↓",
		"GPU MiB", "GPU ↓", "Size MiB", "Size ↓", "Top-1", "Decisive top-1", "FP32 margin", "Cosine", "SQNR dB", "Gate", "J/sample", "TFLOP/s", "Converted", "Pareto", "Contended", "Notes"}
	right := []bool{false, false, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, false, true, true, true, false, true, false}
	t := table{head: head, right: right}
	for _, e := range es {
		x := e.Experiment
		threads := dash
		if x.Threads > 0 {
			threads = fmt.Sprint(x.Threads)
		}
		conv := dash
		if e.NodesTotal > 0 {
			conv = fmt.Sprintf("%d/%d", e.NodesConverted, e.NodesTotal)
		}
		row := []string{esc(x.Precision), esc(x.EP), threads, fmt.Sprint(x.Batch)}
		if !e.OK() {
			row = append(row, dash, dash, dash, CellFailed)
			for len(row) < len(head)-1 {
				row = append(row, dash)
			}
			row = append(row, esc("failed: "+clip(e.Reason, 80)))
			t.rows = append(t.rows, row)
			continue
		}
		var pareto []string
		if e.ParetoFidelity && (e.Fidelity != nil || x.IsBaseline()) {
			pareto = append(pareto, "fid")
		}
		if e.ParetoMemory && e.WorkingSet > 0 {
			pareto = append(pareto, "mem")
		}
		row = append(row,
			fmtTputCI(e), fmtMs(e.P50Ms), fmtMs(e.P99Ms), speedupCell(e),
			fmtMiB(e.WorkingSet), fmtRatio(e.MemReduction),
			fmtGPU(e), fmtRatio(e.GPUReduction),
			fmtMiB(e.FileBytes), fmtRatio(e.SizeReduction),
			fmtTop1(e), fmtDecisive(e), fmtMargin(e), fmtCos(e.Fidelity), fmtSQNR(e.Fidelity), gateCell(e),
			fmtJ(e.JoulesPerSample), fmtSig(e.TFLOPS), conv, strings.Join(pareto, "+"), contendedCell(e), strings.Join(entryNotes(e), "; "))
		t.rows = append(t.rows, row)
	}
	t = t.dropEmptyColumns("GPU MiB", "GPU ↓", "J/sample", "TFLOP/s", "Converted", "Top-1", "Decisive top-1", "FP32 margin", "Cosine", "SQNR dB", "Pareto", "Contended", "Notes")
	if len(g.EPs) == 1 {
		t = t.dropColumn("EP")
	}
	if len(g.Threads) == 1 {
		t = t.dropColumn("Threads")
	}
	return t
}

func gateCell(e *Entry) string {
	switch {
	case !e.OK():
		return dash
	case e.Experiment.IsBaseline():
		return "ref"
	case !e.Gate.Measured:
		return dash
	case e.Gate.Pass:
		return "pass"
	}
	return "fail"
}

func fmtJ(v float64) string {
	switch {
	case math.IsNaN(v) || v <= 0:
		return dash
	case v >= 10:
		return fmtFloat(v, 1)
	case v >= 0.1:
		return fmtFloat(v, 3)
	}
	return fmt.Sprintf("%.3g", v)
}

// fmtGPU is the GPU memory cell: MiB, said to be device-wide when it is the
// whole device's rather than the process's.
func fmtGPU(e *Entry) string {
	s := fmtMiB(e.GPUBytes)
	if e.GPUDeviceWide && s != "" {
		s += " device-wide"
	}
	return s
}

// speedupCell is the speedup as every view writes it (study.Row's text):
// with its interval, "(1 run)" or "uncertain: contended".
func speedupCell(e *Entry) string {
	if !e.OK() || !e.HasBaseline {
		return cellText(e)
	}
	if e.Experiment.IsBaseline() {
		return fmtRatio(1)
	}
	return esc(e.SpeedupText())
}

// contendedCell marks an entry whose runs other processes contended, with
// the largest share of its cores they took.
func contendedCell(e *Entry) string {
	switch {
	case math.IsNaN(e.ContentionShare):
		return dash
	case e.Contended:
		return "**yes** (" + fmtPct(e.ContentionShare) + ")"
	}
	return ""
}

func entryNotes(e *Entry) []string {
	var n []string
	if !e.HasBaseline && !e.Experiment.IsBaseline() {
		n = append(n, "no FP32 baseline")
	}
	if e.Verdict != "" && e.Verdict != bench.VerdictOneRun && !e.Uncertain() {
		n = append(n, string(e.Verdict))
	}
	if e.Failures > 0 {
		n = append(n, fmt.Sprintf("%d of %d runs failed", e.Failures, e.Failures+e.Runs))
	}
	if e.OverheadFloor {
		n = append(n, "overhead floor")
	}
	if e.LowCoverage() {
		n = append(n, fmt.Sprintf("⚑ FP32 in all but name: %.0f%% of the weight bytes below 32 bits", 100*e.Coverage))
	}
	if e.CV > 0.10 {
		n = append(n, "CV "+fmtPct(e.CV))
	}
	if e.Gate.Measured && !e.Gate.Pass {
		n = append(n, strings.Join(e.Gate.Failed, ", "))
	}
	if w, _, ok := memoryOf(e); !ok && w != "" {
		n = append(n, w)
	}
	return n
}

// memoryOf says why an entry has no memory figure ("" when it has one).
func memoryOf(e *Entry) (why string, where string, ok bool) {
	if e.WorkingSet > 0 {
		return "", e.WorkingSetWhere, true
	}
	if e.Last != nil && e.Last.Metrics != nil {
		return e.Last.Metrics.Memory.WorkingSetNote(), "", false
	}
	return "", "", false
}

func (r *Report) cost(d *document, g *Group, level int) {
	o := r.Options
	d.h(level, "Cost per million inferences")
	var parts []string
	if o.PricePerHour > 0 {
		parts = append(parts, fmt.Sprintf("machine time at %s per hour (price ÷ 3600 ÷ throughput × 10⁶)", fmtMoney(o.PricePerHour)))
	}
	if o.PricePerKWh > 0 {
		parts = append(parts, fmt.Sprintf("energy at %s per kWh (J/sample × 10⁶ ÷ 3.6·10⁶ × price)", fmtMoney(o.PricePerKWh)))
	}
	d.p("From measured throughput and energy: %s. One inference is one sample (image); amounts are in the currency of the prices given.", joinAnd(parts))
	t := table{head: []string{"Model", "Precision", "EP", "Batch", "Throughput", "Machine / 1M", "kWh / 1M", "Energy / 1M", "Total / 1M", "vs FP32"},
		right: []bool{false, false, false, true, true, true, true, true, true, true}}
	noEnergy := false
	for _, e := range g.Entries {
		if !e.OK() {
			continue
		}
		x := e.Experiment
		vs := dash
		if e.Baseline != nil && e.Baseline.OK() && !x.IsBaseline() {
			vs = fmtRatio(e.Cost.Total / e.Baseline.Cost.Total)
		}
		if o.PricePerKWh > 0 && math.IsNaN(e.Cost.KWh) {
			noEnergy = true
		}
		t.rows = append(t.rows, []string{esc(x.Model), esc(x.Precision), esc(x.EP), fmt.Sprint(x.Batch), fmtTput(e.Throughput),
			fmtMoney(e.Cost.Instance), fmtKWh(e.Cost.KWh), fmtMoney(e.Cost.Energy), fmtMoney(e.Cost.Total), vs})
	}
	t = t.dropEmptyColumns("Machine / 1M", "kWh / 1M", "Energy / 1M", "vs FP32")
	if o.PricePerHour <= 0 || o.PricePerKWh <= 0 {
		t = t.dropColumn("Total / 1M") // one priced part: the total repeats it
	}
	if len(g.EPs) == 1 {
		t = t.dropColumn("EP")
	}
	d.table(t)
	if noEnergy {
		d.p("Energy was not measured for some configurations (CPU execution, or no power reading): their totals leave energy out.")
	}
}

func fmtKWh(v float64) string {
	if math.IsNaN(v) {
		return dash
	}
	return fmt.Sprintf("%.3g", v)
}

func (r *Report) failures(d *document, g *Group, level int) {
	var rows [][]string
	for _, e := range g.Entries {
		if e.OK() {
			continue
		}
		x := e.Experiment
		stderr := dash
		if e.Last != nil && e.Last.Stderr != "" {
			lines := strings.Split(strings.TrimSpace(e.Last.Stderr), "\n")
			stderr = esc(clip(lines[len(lines)-1], 120))
		}
		rows = append(rows, []string{esc(x.Model), esc(x.Precision), esc(x.EP), fmt.Sprint(x.Batch), esc(clip(cmpOr(e.Reason), 300)), stderr})
	}
	if len(rows) == 0 {
		return
	}
	d.h(level, "Failed experiments")
	t := table{head: []string{"Model", "Precision", "EP", "Batch", "Reason", "Worker stderr (last line)"}, right: []bool{false, false, false, true}, rows: rows}
	d.table(t.dropEmptyColumns("Worker stderr (last line)"))
}

func (r *Report) comparison(d *document) {
	c := r.Compare
	d.h(2, "Comparison")
	var files []string
	for _, s := range c.Sources {
		files = append(files, codeLit(s.Path))
	}
	var afiles []string
	for _, s := range r.Sources {
		afiles = append(afiles, codeLit(s.Path))
	}
	d.p("A is %s; B is %s. Changes are B against A for every experiment both measured. With at least two runs on each side, a difference counts only when the 95%% intervals of the runs do not overlap; with single runs, changes under %.0f%% are called within noise.",
		joinAnd(afiles), joinAnd(files), 100*NoiseThreshold)
	for _, p := range c.Pairs {
		if len(c.Pairs) > 1 {
			d.h(3, esc(p.A.Label)+" vs "+esc(p.B.Label))
		}
		if len(p.EnvDiff) > 0 {
			d.p("What differs between the hosts:")
			items := make([]string, len(p.EnvDiff))
			for i, s := range p.EnvDiff {
				items[i] = esc(s)
			}
			d.list(items)
		} else {
			d.p("The host fingerprints are identical (same machine and software): differences are run-to-run.")
		}
		if len(p.Rows) == 0 {
			d.p("No experiment was measured on both sides.")
		} else {
			summary := fmt.Sprintf("Of %s measured on both sides, B is faster in %d, slower in %d and within noise in %d.",
				plural(p.Faster+p.Slower+p.Noise, "experiment", "experiments"), p.Faster, p.Slower, p.Noise)
			if !math.IsNaN(p.GeoMean) {
				summary += fmt.Sprintf(" Geometric mean throughput change: %s.", fmtSigned(p.GeoMean-1))
			}
			d.p("%s", summary)
			t := table{head: []string{"Model", "Precision", "EP", "Batch", "A samples/s", "B samples/s", "Δ throughput", "Δ p50", "Δ p99", "Verdict", "Basis"},
				right: []bool{false, false, false, true, true, true, true, true, true}}
			for _, row := range p.Rows {
				x := row.A.Experiment
				t.rows = append(t.rows, []string{esc(x.Model), esc(x.Precision), esc(x.EP), fmt.Sprint(x.Batch),
					tputOrFailed(row.A), tputOrFailed(row.B), fmtSigned(row.Throughput), fmtSigned(row.P50), fmtSigned(row.P99),
					verdictCell(row.Verdict), cmpOr(row.Basis)})
			}
			if len(p.A.EPs) == 1 && len(p.B.EPs) == 1 {
				t = t.dropColumn("EP")
			}
			d.table(t)
		}
		if len(p.OnlyA) > 0 {
			d.p("Only in A: %s.", esc(strings.Join(p.OnlyA, ", ")))
		}
		if len(p.OnlyB) > 0 {
			d.p("Only in B: %s.", esc(strings.Join(p.OnlyB, ", ")))
		}
	}
}

func tputOrFailed(e *Entry) string {
	if !e.OK() {
		return CellFailed
	}
	return fmtTputCI(e)
}

func verdictCell(v bench.Verdict) string {
	switch v {
	case bench.VerdictFaster, bench.VerdictSlower:
		return "**" + string(v) + "**"
	case "":
		return dash
	}
	return string(v)
}

func (r *Report) definitions(d *document) {
	d.h(2, "How the figures are derived")
	d.list([]string{
		"**Speedup**: throughput ÷ throughput of the FP32 baseline with the same model, EP, batch and threads; with repeats, the geometric mean of the per-round ratios of the interleaved rounds, with their 95% interval (Student's t on the log ratios). **Mem ↓**, **GPU ↓** and **Size ↓**: the baseline's peak working set, GPU memory and file bytes ÷ this configuration's (so 4.00× means a quarter).",
		"**Mem** (" + esc(bench.MemoryDefinition) + ") Measured in the worker process that ran only this experiment. **Size**: the model file with its external data.",
		"**Fidelity**: outputs against FP32's on the same inputs: " + esc(quantInputsText()) + ". Top-1 is arg-max agreement, cosine the mean cosine similarity, SQNR 10·log10(signal ÷ error). *Decisive top-1* is the agreement on the samples whose FP32 top-1 margin exceeds the variant's max abs error: a flip on a near-tie is not evidence of damage. The gate is checked on these; FP32 is the reference and passes by definition.",
		"**Weights**: the catalog's models have deterministic synthetic weights, whose logits are nearly tied: there, accuracy is not measurable, and a gate's top-1 clause is judged on decisive top-1 (top-5 is not checked). Imported models are taken as trained unless the study said otherwise (`bench --weights synthetic`). Backbones (embedding outputs: DINO, DINOv2, CLIP image towers) have no top-1: their top-1 and top-5 clauses are not checked, and without a cosine clause they are gated on cosine ≥ 0.999.",
		fmt.Sprintf("**Noise**: with repeats, a configuration is faster or slower than FP32 only when the 95%% interval of its paired speedup lies above or below 1; with one run (*1 run*), the difference must reach %.0f%%.", 100*NoiseThreshold),
		fmt.Sprintf("**Contended**: a run during which other processes (CPU time from /proc/stat minus the worker's own, plus steal) took more than %.0f%% of the cores it was given, beyond what the machine's other CPUs could absorb. A ratio that rests on a contended run is *uncertain* and counts as neither faster nor slower; with repeats, contended rounds are left out when two clean ones remain.", 100*bench.ContendedShare),
		fmt.Sprintf("**Category**: *faster* when faster than FP32 beyond noise; *smaller* when memory (or, without a memory figure, file size) is reduced at least %.2f×; *slower* when slower beyond noise; otherwise *no gain*.", SmallerThreshold),
		"**Use case**: faster at batch 1 → low-latency serving; faster at a larger batch → throughput serving at that batch; smaller and not faster, or at least 2× smaller → memory-constrained hosts.",
		"**Ranking**: passing configurations with a baseline, by speedup, then memory reduction.",
		"**Recommendations**, per model: the highest throughput at each batch among passing configurations; the smallest peak working set among them (on the GPU when every candidate ran on one, else host memory); the lowest p99 latency at batch 1 among them. Failures, configurations below the gate and slowdowns are listed with their numbers.",
		"**Pareto**: within a model, batch and EP, a precision is on the fidelity frontier (*fid*) when no other precision is both faster and closer to FP32 (SQNR), and on the memory frontier (*mem*) when no other is both faster and smaller.",
		"**Overhead floor**: the median latency is within 3× of an empty ONNX Runtime call on the same host; ratios there measure overhead, not arithmetic.",
	})
}
