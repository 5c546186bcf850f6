package tui

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/report"
	"github.com/quantscope/quantscope/profiler/study"
)

// detailModel is the run-detail screen of one experiment (its row, folded
// over repeats, and its latest queue entry).
type detailModel struct {
	exp    study.Experiment
	host   string // study.Host.Key of the row shown
	back   screen // where esc returns
	offset int
	width  int
	height int
	app    *app
	// sens holds the layer rankings asked for (L), by sensKey.
	sens map[string]*sensState
}

func newDetail(a *app) *detailModel { return &detailModel{app: a, sens: map[string]*sensState{}} }

// ctx is the shared view context with the screen's layer rankings.
func (d *detailModel) ctx() viewCtx {
	c := d.app.viewCtx()
	c.sens = d.sens
	return c
}

// layers reports whether L ranks the shown run's layers.
func (d *detailModel) layers() bool {
	return d.app.opts.Sensitivity != nil && sensitivityFor(d.exp)
}

// Update implements Screen: openDetailMsg picks the run shown; esc goes
// back where it was opened, r queues it again.
func (d *detailModel) Update(msg tea.Msg) (Screen, tea.Cmd) {
	k := d.app.keys
	switch msg := msg.(type) {
	case openDetailMsg:
		d.exp, d.host, d.back, d.offset = msg.exp, msg.host, msg.back, 0
	case sensDoneMsg:
		st := &sensState{res: msg.res}
		if msg.err != nil {
			st.err = msg.err.Error()
		}
		d.sens[msg.key] = st
	case tea.KeyMsg:
		switch {
		case d.app.studyKey(msg):
		case key.Matches(msg, k.Back):
			d.app.post(showScreenMsg{to: d.back})
		case key.Matches(msg, k.Rerun):
			d.app.post(rerunMsg{exp: d.exp})
		case key.Matches(msg, k.Layers) && d.layers():
			sk := sensKey(d.exp)
			if st := d.sens[sk]; st != nil && st.running {
				return d, nil
			}
			d.sens[sk] = &sensState{running: true}
			return d, rankLayers(d.app.ctx, d.app.opts.Sensitivity, d.exp)
		default:
			*d = d.update(msg, k, d.ctx())
		}
	}
	return d, nil
}

// View implements Screen.
func (d *detailModel) View() string { return d.view(d.ctx()) }

// SetSize implements Screen.
func (d *detailModel) SetSize(w, h int) { d.width, d.height = w, h }

// ShortHelp implements Screen.
func (d *detailModel) ShortHelp() []key.Binding {
	k := d.app.keys
	stop, _ := d.app.studyKeys()
	layers := k.Layers
	layers.SetEnabled(d.layers())
	return only(k.Back, k.Down, k.Up, k.Rerun, layers, stop, k.Help, k.Quit)
}

// FullHelp implements Screen.
func (d *detailModel) FullHelp() [][]key.Binding {
	k := d.app.keys
	return [][]key.Binding{{withHelp(k.Down, "↓/j", "scroll"), withHelp(k.PageDown, "pgdn/space", "page"), k.Rerun, k.Layers, k.Stop, k.Back}, k.navGroup()}
}

func (d detailModel) update(msg tea.KeyMsg, k keyMap, c viewCtx) detailModel {
	total := len(d.lines(c))
	page := max(1, d.height-3)
	switch {
	case key.Matches(msg, k.Up):
		d.offset--
	case key.Matches(msg, k.Down):
		d.offset++
	case key.Matches(msg, k.PageUp):
		d.offset -= page
	case key.Matches(msg, k.PageDown), key.Matches(msg, k.Toggle):
		d.offset += page
	case key.Matches(msg, k.Top):
		d.offset = 0
	case key.Matches(msg, k.Bottom):
		d.offset = total
	}
	d.offset = max(0, min(d.offset, total-(d.height-2)))
	return d
}

// section is a titled block of the detail screen.
type section struct {
	title string
	lines []string
}

func (d detailModel) view(c viewCtx) string {
	lines := d.lines(c)
	h := d.height - 2
	off := max(0, min(d.offset, len(lines)-h))
	end := min(len(lines), off+h)
	title := detailTitle(d.exp)
	if len(lines) > h {
		title += fmt.Sprintf(" · %d–%d of %d", off+1, end, len(lines))
	}
	return panel(c.st, title, strings.Join(lines[off:end], "\n"), d.width, d.height, true)
}

func detailTitle(e study.Experiment) string {
	t := fmt.Sprintf("%s · %s · %s · batch %d", displayModel(e.Model), e.Precision, e.EP, e.Batch)
	if e.Threads > 0 {
		t += fmt.Sprintf(" · %d threads", e.Threads)
	}
	return t
}

// lines lays the sections out in one or two columns of the inner width.
func (d detailModel) lines(c viewCtx) []string {
	inner := d.width - 2
	secs := d.sections(c)
	render := func(secs []section, w int) []string {
		var out []string
		for i, s := range secs {
			if i > 0 {
				out = append(out, "")
			}
			out = append(out, c.st.title.Render(truncate(s.title, w)))
			for _, l := range s.lines {
				out = append(out, wrap(l, w)...)
			}
		}
		return out
	}
	// The summary (and the "why" that follows it for a variant) and the
	// reproduce command span the width; the rest goes in two columns.
	nHead := 1
	if !d.exp.IsBaseline() && len(secs) > 1 && strings.HasPrefix(secs[1].title, "Why") {
		nHead = 2
	}
	if inner < 110 || len(secs) < nHead+3 {
		return render(secs, inner)
	}
	head, mid, tail := secs[:nHead], secs[nHead:len(secs)-1], secs[len(secs)-1:]
	colW := (inner - 3) / 2
	// Balance the two columns by line count, keeping section order.
	total := 0
	for _, s := range mid {
		total += len(s.lines) + 2
	}
	split, acc := len(mid), 0
	for i, s := range mid {
		if acc >= total/2 {
			split = i
			break
		}
		acc += len(s.lines) + 2
	}
	left, right := render(mid[:split], colW), render(mid[split:], colW)
	out := render(head, inner)
	out = append(out, "")
	for i := 0; i < max(len(left), len(right)); i++ {
		l, r := "", ""
		if i < len(left) {
			l = left[i]
		}
		if i < len(right) {
			r = right[i]
		}
		out = append(out, padRight(l, colW)+" │ "+r)
	}
	out = append(out, "")
	return append(out, render(tail, inner)...)
}

// sections builds the detail's content.
func (d detailModel) sections(c viewCtx) []section {
	s := c.st
	row, hasRow := c.sess.rowFor(d.exp, d.host)
	ent := c.sess.entryFor(d.exp, d.host)
	var m *bench.Metrics
	var rec *study.Record
	if hasRow && row.Last != nil {
		rec = row.Last
		m = rec.Metrics
	}
	var secs []section

	// Summary.
	sum := section{title: "Summary"}
	if len(hostOrder(c.sess.rows)) > 1 && hasRow {
		sum.lines = append(sum.lines, "host: "+hostLabels(c.sess.rows)[d.host]+" · "+hostnameList(row))
	}
	switch {
	case hasRow && row.Status == study.StatusOK:
		ln := fmt.Sprintf("%s img/s", s.bold.Render(fmtRate(row.Throughput)))
		if row.Runs > 1 && !math.IsInf(row.ThroughputCI, 0) {
			ln += fmt.Sprintf(" ± %s (95%% CI over %d runs)", fmtRate(row.ThroughputCI), row.Runs)
		}
		if row.HasBaseline && !d.exp.IsBaseline() {
			b, _ := c.sess.baselineThroughput(d.exp, d.host)
			_, st := speedupCell(row, s)
			ln += " · speedup " + st.Render(row.SpeedupText()) + fmt.Sprintf(" vs fp32 %s img/s", fmtRate(b))
		}
		if row.HasBaseline && !d.exp.IsBaseline() && row.HasInterval() && !row.Uncertain() {
			ln += fmt.Sprintf(" · %s (%s)", row.Verdict, row.VerdictBasis())
		}
		sum.lines = append(sum.lines, ln)
		switch {
		case m != nil && m.Contention != nil && m.Contention.Contended:
			sum.lines = append(sum.lines, s.warn.Render(glyphContend+" "+m.Contention.String()))
		case m != nil && m.Contention != nil:
			sum.lines = append(sum.lines, s.dim.Render(fmt.Sprintf("not contended: other processes took ~%.0f%% of the run's cores", 100*m.Contention.Share)))
		case m != nil:
			sum.lines = append(sum.lines, s.dim.Render("CPU contention not measured (recorded before it was)"))
		}
		if base, ok := c.sess.rowFor(baselineOf(d.exp), d.host); ok && !d.exp.IsBaseline() && base.Contended {
			sum.lines = append(sum.lines, s.warn.Render(glyphContend+" the fp32 baseline's run was contended: the speedup is uncertain"))
		}
		if row.Note != "" {
			sum.lines = append(sum.lines, s.warn.Render(row.Note))
		}
	case hasRow:
		sum.lines = append(sum.lines, s.bad.Render("✗ failed: ")+oneLine(row.Reason))
	case ent != nil:
		sum.lines = append(sum.lines, "not measured yet: "+ent.stage.String())
	default:
		sum.lines = append(sum.lines, s.dim.Render("no record of this experiment"))
	}
	if ent != nil && ent.stage.active() {
		ln := "live: " + s.accent.Render(ent.stage.String())
		if ent.last != nil {
			ln += fmt.Sprintf(" · %s img/s · %s ms · RSS %s", fmtRate(ent.last.Throughput), fmtMs(ent.last.LatencyMs), fmtBytes(ent.last.RSS))
		}
		sum.lines = append(sum.lines, ln)
	}
	secs = append(secs, sum)

	if hasRow && row.Status != study.StatusOK && rec != nil {
		f := section{title: "Failure"}
		for _, l := range strings.Split(strings.TrimSpace(rec.Reason), "\n") {
			f.lines = append(f.lines, s.bad.Render(l))
		}
		if rec.Stderr != "" {
			f.lines = append(f.lines, "", s.dim.Render("worker stderr (tail):"))
			lines := strings.Split(strings.TrimSpace(rec.Stderr), "\n")
			if len(lines) > 12 {
				lines = lines[len(lines)-12:]
			}
			for _, l := range lines {
				f.lines = append(f.lines, "  "+l)
			}
		}
		secs = append(secs, f)
	}

	if m != nil {
		// The question users ask first comes first.
		if !d.exp.IsBaseline() {
			secs = append(secs, whySection(c, row))
		}
		secs = append(secs, latencySection(c, m, ent))
		if m.OpProfile != nil {
			secs = append(secs, opProfileSection(c, m.OpProfile))
		}
		secs = append(secs, memorySection(c, row, m))
	}
	if t := telemetrySection(c, m, ent); len(t.lines) > 0 {
		secs = append(secs, t)
	}
	if m != nil {
		secs = append(secs, fidelitySection(c, d.exp, row, m))
		if m.Accuracy != nil && m.Accuracy.Images > 0 {
			secs = append(secs, accuracySection(c, m.Accuracy))
		}
		if sec, ok := sensitivitySection(c, d.exp, d.width-4); ok {
			secs = append(secs, sec)
		}
		secs = append(secs, section{title: "Cold start", lines: []string{
			fmt.Sprintf("load %s ms · session %s ms · first inference %s ms · warm-up runs %d",
				fmtMs(m.ColdStart.LoadMs), fmtMs(m.ColdStart.SessionMs), fmtMs(m.ColdStart.FirstInferenceMs), m.WarmupRuns),
		}})
		if d.exp.IsBaseline() {
			secs = append(secs, whySection(c, row))
		}
	}

	dur := c.setupDuration
	if ent != nil {
		dur = ent.duration
	}
	secs = append(secs, section{title: "Reproduce", lines: []string{
		benchCommand(d.exp, dur, c.opts.Out, c.opts.ORTLib),
	}})
	return secs
}

func latencySection(c viewCtx, m *bench.Metrics, ent *entry) section {
	s := c.st
	l := m.Latency
	sec := section{title: "Latency (ms)"}
	sec.lines = append(sec.lines,
		fmt.Sprintf("mean %s ± %s · CV %.1f%% · %d runs", fmtMs(l.MeanMs), fmtMs(l.StdMs), l.CV*100, l.Runs))
	if l.Outliers > 0 {
		o := fmt.Sprintf("%s (%d severe): something else may have been running", plural(l.Outliers, "outlier", "outliers"), l.SevereOutliers)
		st := s.dim
		if l.SevereOutliers > 0 {
			st = s.warn
		}
		sec.lines = append(sec.lines, st.Render(o))
	}
	if m.TFLOPS > 0 {
		sec.lines = append(sec.lines, fmt.Sprintf("achieved %.3f TFLOP/s", m.TFLOPS))
	}
	// Percentile ladder.
	ladder := []struct {
		name string
		v    float64
	}{{"min", l.MinMs}, {"p50", l.P50Ms}, {"p90", l.P90Ms}, {"p95", l.P95Ms}, {"p99", l.P99Ms}, {"max", l.MaxMs}}
	top := l.MaxMs
	for _, p := range ladder {
		bar := hbar(p.v, top, 24)
		sec.lines = append(sec.lines, fmt.Sprintf("%-4s %8s %s", p.name, fmtMs(p.v), s.accent.Render(bar)))
	}
	if ent != nil && len(ent.lat) >= 8 {
		sec.lines = append(sec.lines, "", s.dim.Render(fmt.Sprintf("histogram of %d sampled runs (one every sample period)", len(ent.lat))))
		sec.lines = append(sec.lines, histogram(s, ent.lat, 8, 24)...)
	}
	return sec
}

// opProfileSection shows where an inference's time goes: a bar per
// operator type (the largest eight) and the slowest nodes.
func opProfileSection(c viewCtx, p *bench.OpProfile) section {
	s := c.st
	sec := section{title: "Time per operator"}
	sec.lines = append(sec.lines, s.dim.Render(fmt.Sprintf("ONNX Runtime's profiler, mean of %d runs: %s ms of kernels in %s ms",
		p.Runs, fmtMs(p.KernelMs), fmtMs(p.RunMs))))
	const rows = 8
	for i, o := range p.Ops {
		if i == rows {
			sec.lines = append(sec.lines, s.dim.Render(fmt.Sprintf("… %d more operator types", len(p.Ops)-rows)))
			break
		}
		sec.lines = append(sec.lines, fmt.Sprintf("%-18s %4.0f%% %s %s ms ×%d",
			truncate(o.Op, 18), 100*o.Share, s.accent.Render(padRight(hbar(o.Share, p.Ops[0].Share, 14), 14)), fmtMs(o.Ms), o.Nodes))
	}
	for i, n := range p.Top {
		if i == 3 {
			break
		}
		sec.lines = append(sec.lines, s.dim.Render(fmt.Sprintf("  %4.1f%% %s", 100*n.Share, truncate(n.Node, 44))))
	}
	return sec
}

// hbar renders v as a bar of up to w cells relative to top.
func hbar(v, top float64, w int) string {
	if top <= 0 || v <= 0 {
		return ""
	}
	n := v / top * float64(w)
	full := int(n)
	out := strings.Repeat("█", full)
	if frac := n - float64(full); frac > 0.5 && full < w {
		out += "▌"
	}
	return out
}

// histogram bins values into n rows of horizontal bars.
func histogram(s *styles, vals []float64, n, w int) []string {
	v := slices.Clone(vals)
	sort.Float64s(v)
	lo, hi := v[0], v[len(v)-1]
	if hi <= lo {
		hi = lo + 1e-9
	}
	counts := make([]int, n)
	for _, x := range v {
		i := int((x - lo) / (hi - lo) * float64(n))
		counts[min(n-1, i)]++
	}
	top := slices.Max(counts)
	out := make([]string, n)
	for i, k := range counts {
		from := lo + (hi-lo)*float64(i)/float64(n)
		out[i] = fmt.Sprintf("%8s %s %d", fmtMs(from), s.accent.Render(padRight(hbar(float64(k), float64(top), w), w)), k)
	}
	return out
}

func memorySection(c viewCtx, row study.Row, m *bench.Metrics) section {
	s := c.st
	mem := m.Memory
	sec := section{title: "Memory"}
	if ws, where, ok := mem.WorkingSet(); ok {
		ln := fmt.Sprintf("peak working set %s", s.bold.Render(fmtBytes(ws)))
		if where == "GPU" {
			ln += fmt.Sprintf(" on the GPU (process peak %s − CUDA context %s)", fmtBytes(mem.GPUBytes), fmtBytes(mem.GPUContext))
		} else {
			ln += fmt.Sprintf(" (peak RSS %s − RSS before load %s; %s)", fmtBytes(mem.PeakRSS), fmtBytes(mem.RSSBeforeLoad), mem.PeakSource)
		}
		if row.Runs > 1 && row.WorkingSet > ws {
			ln += fmt.Sprintf(" · largest of %d runs %s", row.Runs, fmtBytes(row.WorkingSet))
		}
		sec.lines = append(sec.lines, ln)
	} else {
		sec.lines = append(sec.lines, s.warn.Render("peak working set unknown: "+mem.WorkingSetNote()))
	}
	if mem.Device == "gpu" && mem.GPUContext > 0 {
		sec.lines = append(sec.lines, fmt.Sprintf("CUDA context %s (measured once before the model loaded; not in the working set)", fmtBytes(mem.GPUContext)))
	}
	if mem.PeakNote != "" {
		sec.lines = append(sec.lines, s.dim.Render("high-water mark not reset ("+mem.PeakNote+"): peak sampled every 250 ms"))
	}
	if mem.GPUBytes > 0 || mem.GPUNote != "" {
		g := fmt.Sprintf("GPU %s", fmtBytes(mem.GPUBytes))
		if mem.GPUPeak > 0 {
			g += " · peak " + fmtBytes(mem.GPUPeak)
		}
		if mem.GPUSource != "" {
			g += " (" + mem.GPUSource + ")"
		}
		sec.lines = append(sec.lines, g)
		if mem.GPUNote != "" {
			sec.lines = append(sec.lines, s.dim.Render(mem.GPUNote))
		}
	}
	f := fmt.Sprintf("resident after load %s · file %s", fmtBytes(mem.ResidentAfterLoad), fmtBytes(row.FileBytes))
	if row.HasBaseline && !row.Experiment.IsBaseline() {
		f += " · memory " + fmtRatio(row.MemReduction) + " less · size " + fmtRatio(row.SizeReduction) + " smaller"
	}
	sec.lines = append(sec.lines, f)
	return sec
}

func telemetrySection(c viewCtx, m *bench.Metrics, ent *entry) section {
	sec := section{title: "Telemetry (min / mean / max)"}
	if ent != nil {
		add := func(name string, a agg, f func(float64) string) {
			if a.n > 0 {
				sec.lines = append(sec.lines, fmt.Sprintf("%-10s %s / %s / %s", name, f(a.min), f(a.mean()), f(a.max)))
			}
		}
		add("img/s", ent.tput, fmtRate)
		add("RSS", ent.rss, func(v float64) string { return fmtBytes(int64(v)) })
		add("GPU mem", ent.gpu, func(v float64) string { return fmtBytes(int64(v)) })
		add("temp °C", ent.temp, func(v float64) string { return fmt.Sprintf("%.0f", v) })
		add("power W", ent.power, func(v float64) string { return fmt.Sprintf("%.0f", v) })
		add("CPU °C", ent.cpuTemp, func(v float64) string { return fmt.Sprintf("%.0f", v) })
		add("worker CPU", ent.cpuPct, func(v float64) string { return fmt.Sprintf("%.0f%%", v) })
	}
	if m != nil && m.Energy != nil {
		e := m.Energy
		sec.lines = append(sec.lines,
			fmt.Sprintf("energy %.3g J/img (%s) · power mean %.0f W, max %.0f W", e.JoulesPerSample, e.Source, e.MeanPowerW, e.MaxPowerW),
			fmt.Sprintf("temperature %.0f → %.0f °C", e.TempStartC, e.TempMaxC))
		if e.SMClockMHz > 0 {
			sec.lines = append(sec.lines, fmt.Sprintf("SM clock %.0f MHz", e.SMClockMHz))
		}
		if len(e.Throttle) > 0 {
			sec.lines = append(sec.lines, c.st.warn.Render("throttled: "+strings.Join(e.Throttle, ", ")))
		}
	}
	return sec
}

func fidelitySection(c viewCtx, exp study.Experiment, row study.Row, m *bench.Metrics) section {
	s := c.st
	sec := section{title: "Fidelity vs fp32"}
	f := m.Fidelity
	tr := row.Traits
	sec.lines = append(sec.lines, s.dim.Render(fmt.Sprintf("weights %s · output %s (%s)", tr.Weights, tr.Output, tr.Source)))
	switch {
	case f == nil && exp.IsBaseline():
		sec.lines = append(sec.lines, s.dim.Render("this is the reference the variants are compared with"))
	case f == nil:
		sec.lines = append(sec.lines, s.dim.Render("not measured (no fp32 reference for this model and EP)"))
	default:
		sec.lines = append(sec.lines,
			"cosine mean "+cosStyle(s, f.CosineMean).Render(fmtCos(f.CosineMean))+" · min "+fmtCos(f.CosineMin)+
				fmt.Sprintf(" · SQNR %.1f dB · max |error| %.3g", f.SQNRdB, f.MaxAbsError))
		switch {
		case tr.Backbone():
			sec.lines = append(sec.lines, "top-1 — · top-5 — (embeddings have no classes: judged on cosine)")
		case tr.Synthetic():
			sec.lines = append(sec.lines,
				fmt.Sprintf("top-1 %s · top-5 %s: synthetic weights, accuracy not measurable", fmtPct(f.Top1), fmtPct(f.Top5)),
				f.DecisiveString())
		default:
			sec.lines = append(sec.lines,
				"top-1 "+top1Style(s, f.Top1).Render(fmtPct(f.Top1))+" · top-5 "+fmtPct(f.Top5),
				f.DecisiveString())
		}
		if f.Inputs != "" {
			sec.lines = append(sec.lines, s.dim.Render("on "+f.Inputs))
		} else {
			sec.lines = append(sec.lines, s.dim.Render(fmt.Sprintf("on %d seeded inputs", f.Samples)))
		}
	}
	return sec
}

// glyphOr is the contended glyph and a space, or nothing.
func glyphOr(contended bool) string {
	if contended {
		return glyphContend + " "
	}
	return ""
}

// baselineOf is the FP32 experiment exp is compared with.
func baselineOf(exp study.Experiment) study.Experiment {
	b := exp
	b.Precision = "fp32"
	return b
}

// accuracySection shows accuracy on the labelled images: top-1 and top-5
// with their 95% intervals, and a variant's paired difference from FP32.
func accuracySection(c viewCtx, a *accuracy.Result) section {
	s := c.st
	sec := section{title: "Accuracy on labelled images"}
	where := fmt.Sprintf("%s · %s images · %d classes", a.Dataset, accuracy.Thousands(a.Images), a.Classes)
	if a.Skipped > 0 {
		where += fmt.Sprintf(" · %d unreadable skipped", a.Skipped)
	}
	sec.lines = append(sec.lines, s.dim.Render(where),
		"top-1 "+s.bold.Render(accuracy.FormatRate(a.Top1, a.Images))+" · top-5 "+accuracy.FormatRate(a.Top5, a.Images))
	if d, ok := a.Top1Diff(); ok {
		sec.lines = append(sec.lines, "vs fp32: "+accDeltaStyle(s, d).Render(d.String()))
	}
	sec.lines = append(sec.lines, s.dim.Render(a.Preprocess))
	return sec
}

// whySection answers "why is this variant not faster?": report.Diagnose's
// findings under a headline with the row's verdict, then the fusions, the
// precision report and the EP placement. The CPU is judged by the machine
// this UI runs on once it is probed (c.env), as before.
func whySection(c viewCtx, row study.Row) section {
	s := c.st
	sec := section{title: "Why is it (not) faster?"}
	exp := row.Experiment
	m := row.Last.Metrics
	slow := row.HasBaseline && !exp.IsBaseline() && !row.Faster() && !row.Uncertain()
	var cpu report.CPUQuant
	if c.envReady {
		cpu = report.CPUQuant{INT8: c.env.Host.CPU.INT8, FP16: c.env.Host.CPU.FP16}
	}
	var findings []string
	for _, f := range report.Diagnose(row, cpu) {
		findings = append(findings, findingLine(s, f))
	}
	rep := m.Precision
	switch {
	case exp.IsBaseline():
		sec.lines = append(sec.lines, s.dim.Render("fp32 is the baseline"))
	case !row.HasBaseline:
		sec.lines = append(sec.lines, s.dim.Render("no fp32 baseline measured: speedup unknown"))
	case row.Uncertain():
		sec.lines = append(sec.lines, s.warn.Render(glyphContend+" "+fmtRatio(row.Speedup)+" is uncertain: a run it rests on was contended; re-run (r) on a quiet machine"))
	case slow && len(findings) == 0:
		sec.lines = append(sec.lines, "not faster, and no single cause stands out: compare the node counts and placement below")
	case slow:
		sec.lines = append(sec.lines, "not faster than fp32 ("+fmtRatio(row.Speedup)+"):")
	default:
		sec.lines = append(sec.lines, s.good.Render(fmtRatio(row.Speedup)+" faster than fp32"))
	}
	for _, f := range findings {
		sec.lines = append(sec.lines, "• "+f)
	}
	if row.Last != nil && row.Last.Optimized != nil {
		sec.lines = append(sec.lines, fusionLine(row.Last.Optimized))
		sec.lines = append(sec.lines, nearMissLines(row.Last.Optimized)...)
	}
	if rep != nil {
		sec.lines = append(sec.lines, reportLines(c, rep)...)
	} else if !exp.IsBaseline() {
		sec.lines = append(sec.lines, s.dim.Render("no precision report recorded for this variant"))
	}
	if len(m.Placement) > 0 {
		sec.lines = append(sec.lines, "EP placement: "+placementLine(m.Placement))
	} else {
		sec.lines = append(sec.lines, s.dim.Render("EP placement: not reported by this worker"))
	}
	return sec
}

// findingLine renders one finding: its cause as a warning label (flagged
// like the table flags it for the overhead floor and low coverage), the
// text, and for what a re-run may settle, the keys that do it.
func findingLine(s *styles, f report.Finding) string {
	label := string(f.Cause) + ": "
	if f.Cause == report.CauseOverheadFloor || f.Cause == report.CauseCoverage {
		label = "⚑ " + label
	}
	text := f.Text
	if f.Rerun {
		text += " re-run (r) or use Repeat"
	}
	return s.warn.Render(label) + text
}

// fusionLine says what models/optimize did before the conversion.
func fusionLine(o *study.Optimization) string {
	keys := make([]string, 0, len(o.Matched))
	for k, n := range o.Matched {
		if n > 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "fusions: none matched (graph as built)"
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, o.Matched[k])
	}
	return fmt.Sprintf("fusions: %s (graph %d → %d nodes)", strings.Join(parts, " · "), o.NodesBefore, o.NodesAfter)
}

// nearMissLines lists where a fusion almost matched and why not (the
// first few; the record holds them all).
func nearMissLines(o *study.Optimization) []string {
	const show = 3
	var lines []string
	for i, m := range o.NearMisses {
		if i == show {
			lines = append(lines, fmt.Sprintf("  … %d more near misses in the record (optimized.near_misses)", len(o.NearMisses)-show))
			break
		}
		lines = append(lines, fmt.Sprintf("  near miss: %s at %s: %s", m.Pattern, m.Node, m.Reason))
	}
	return lines
}

func placementLine(p map[string]int) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", strings.TrimSuffix(k, "ExecutionProvider"), p[k])
	}
	return strings.Join(parts, " · ")
}

// reportLines renders a precision report compactly.
func reportLines(c viewCtx, r *quant.Report) []string {
	s := c.st
	var out []string
	out = append(out, fmt.Sprintf("nodes: %d converted, %d kept in fp32 (graph %d → %d nodes)", r.NodesConverted, r.NodesKept, r.NodesBefore, r.NodesAfter))
	if len(r.Ops) > 0 {
		var parts []string
		for _, p := range []quant.Precision{quant.PrecFP32, quant.PrecFP16, quant.PrecInt8, quant.PrecInt4, quant.PrecNone} {
			if n := r.Count("", p); n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", p, n))
			}
		}
		out = append(out, "nodes by precision: "+strings.Join(parts, " · "))
	}
	if len(r.WeightBytes) > 0 {
		bits := slices.Sorted(maps.Keys(r.WeightBytes))
		var parts []string
		for _, b := range bits {
			label := fmt.Sprintf("%d-bit", b)
			if b == 0 {
				label = "other"
			}
			parts = append(parts, label+" "+fmtBytes(r.WeightBytes[b]))
		}
		out = append(out, "weight bytes: "+strings.Join(parts, " · "))
	}
	if r.BytesBefore > 0 {
		out = append(out, fmt.Sprintf("tensor data %s → %s", fmtBytes(r.BytesBefore), fmtBytes(r.BytesAfter)))
	}
	if len(r.Kept) > 0 {
		reasons := map[string]int{}
		var order []string
		for _, k := range r.Kept {
			key := k.Op + ": " + k.Reason
			if reasons[key] == 0 {
				order = append(order, key)
			}
			reasons[key]++
		}
		out = append(out, "kept in fp32:")
		for i, k := range order {
			if i == 5 {
				out = append(out, s.dim.Render(fmt.Sprintf("  … %d more reasons", len(order)-5)))
				break
			}
			out = append(out, fmt.Sprintf("  %d × %s", reasons[k], k))
		}
	}
	for _, w := range r.Warnings {
		out = append(out, s.warn.Render("! "+w))
	}
	return out
}

// wrap breaks a line at spaces to w cells, indenting continuations.
func wrap(l string, w int) []string {
	if width(l) <= w || w < 12 {
		return []string{truncate(l, w)}
	}
	lines := strings.Split(ansi.Wrap(l, w, ""), "\n")
	for i := 1; i < len(lines); i++ {
		lines[i] = truncate("  "+lines[i], w)
	}
	return lines
}
