package tui

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
)

// column is one column of the comparison table.
type column struct {
	title string
	w     int  // width (minimum width for the flexible column)
	flex  bool // takes the width left over (the model name)
	right bool // right-aligned
	// prio decides which columns go first when the table is narrow:
	// the highest prio is dropped first; 0 is never dropped.
	prio int
	// key orders rows by this column (nil: not sortable).
	key func(r study.Row) float64
	// text returns the cell text and its style for an ok row.
	text func(r study.Row, s *styles) (string, lipgloss.Style)
}

const (
	// colHost names the row's host; shown only when the rows come from
	// more than one (results files opened together).
	colHost = iota
	colModel
	colPrecision
	colEP
	colBatch
	colThroughput
	colP50
	colP99
	colSpeedup
	colMem
	colMemRed
	colSize
	colSizeRed
	colCos
	colTop1
	colEnergy
	colAcc      // top-1 accuracy on labelled images (shown when a row has it)
	colAccDelta // its paired difference from FP32, in points
)

// goodBad styles a ratio where higher is better: good above 1+tol, bad
// below 1−tol.
func goodBad(s *styles, v float64, tol float64) lipgloss.Style {
	switch {
	case math.IsNaN(v) || v <= 0:
		return s.dim
	case v > 1+tol:
		return s.good
	case v < 1-tol:
		return s.bad
	}
	return lipgloss.Style{}
}

// ratioTol is the band around 1.0 in which a memory or size reduction is
// shown neither better nor worse. It is a display band, not a verdict:
// speed is coloured by the row's verdict (study.Row.Faster/Slower, see
// verdictStyle), the one rule the report and bench's summary use too.
const ratioTol = 0.05

// verdictStyle colours a speed figure of a variant (img/s, p50) by the
// row's verdict against its baseline: good when faster, bad when slower,
// plain within noise, for the baseline itself and when uncertain; dim
// without a baseline.
func verdictStyle(r study.Row, s *styles) lipgloss.Style {
	_, st := speedupCell(r, s)
	if r.Experiment.IsBaseline() || r.Uncertain() {
		return lipgloss.Style{}
	}
	return st
}

func nan(ok bool, v float64) float64 {
	if !ok {
		return math.NaN()
	}
	return v
}

func fidelityOf(r study.Row) (cos, top1 float64, ok bool) {
	if r.Last == nil || r.Last.Metrics == nil || r.Last.Metrics.Fidelity == nil {
		return 0, 0, false
	}
	f := r.Last.Metrics.Fidelity
	return f.CosineMean, f.Top1, true
}

// top1Of is the top-1 figure the table shows for a row, judged by the
// model's traits: none for a backbone (embeddings have no classes), decisive
// top-1 on synthetic weights (flips on near-ties are not damage; decisive
// is true), recorded top-1 otherwise.
func top1Of(r study.Row) (v float64, decisive, ok bool) {
	_, t, ok := fidelityOf(r)
	if !ok || r.Traits.Backbone() {
		return 0, false, false
	}
	if r.Traits.Synthetic() {
		if d, dok := r.Last.Metrics.Fidelity.Decisive(); dok {
			return d, true, true
		}
	}
	return t, false, true
}

// accuracyOf is a row's accuracy on labelled images, when measured.
func accuracyOf(r study.Row) (*accuracy.Result, bool) {
	if r.Status != study.StatusOK || r.Last == nil || r.Last.Metrics == nil || r.Last.Metrics.Accuracy == nil || r.Last.Metrics.Accuracy.Images == 0 {
		return nil, false
	}
	return r.Last.Metrics.Accuracy, true
}

// anyAccuracy reports whether a row has accuracy (the accuracy columns
// show only then).
func anyAccuracy(rows []study.Row) bool {
	for _, r := range rows {
		if _, ok := accuracyOf(r); ok {
			return true
		}
	}
	return false
}

// accDeltaStyle colours a paired accuracy difference: red when the loss is
// significant, yellow for a significant gain (suspicious), green otherwise.
func accDeltaStyle(s *styles, d accuracy.Difference) lipgloss.Style {
	switch {
	case d.Significant && d.Diff < 0:
		return s.bad
	case d.Significant:
		return s.warn
	}
	return s.good
}

func energyOf(r study.Row) (float64, bool) {
	if r.Last == nil || r.Last.Metrics == nil || r.Last.Metrics.Energy == nil {
		return 0, false
	}
	return r.Last.Metrics.Energy.JoulesPerSample, r.Last.Metrics.Energy.JoulesPerSample > 0
}

// cosStyle and top1Style colour fidelity: green when it is what FP32 gives,
// yellow when close, red when the variant answers differently.
func cosStyle(s *styles, v float64) lipgloss.Style {
	switch {
	case v >= 0.999:
		return s.good
	case v >= 0.99:
		return s.warn
	}
	return s.bad
}

func top1Style(s *styles, v float64) lipgloss.Style {
	switch {
	case v >= 0.99:
		return s.good
	case v >= 0.95:
		return s.warn
	}
	return s.bad
}

func tableColumns() []column {
	plain := lipgloss.Style{}
	return []column{
		colModel: {title: "model", w: 10, flex: true,
			text: func(r study.Row, s *styles) (string, lipgloss.Style) { return displayModel(r.Experiment.Model), plain }},
		colPrecision: {title: "precision", w: 11,
			text: func(r study.Row, s *styles) (string, lipgloss.Style) {
				if r.LowCoverage() {
					return r.Experiment.Precision + " ⚑", s.warn
				}
				return r.Experiment.Precision, plain
			}},
		colEP: {title: "ep", w: 4, prio: 4,
			text: func(r study.Row, s *styles) (string, lipgloss.Style) { return r.Experiment.EP, plain }},
		colBatch: {title: "b", w: 3, right: true, prio: 4,
			key:  func(r study.Row) float64 { return float64(r.Experiment.Batch) },
			text: func(r study.Row, s *styles) (string, lipgloss.Style) { return strconv.Itoa(r.Experiment.Batch), plain }},
		colThroughput: {title: "img/s", w: 7, right: true,
			key: func(r study.Row) float64 { return r.Throughput },
			text: func(r study.Row, s *styles) (string, lipgloss.Style) {
				return fmtRate(r.Throughput), verdictStyle(r, s)
			}},
		colP50: {title: "p50 ms", w: 7, right: true, prio: 1,
			key: func(r study.Row) float64 { return r.P50Ms },
			text: func(r study.Row, s *styles) (string, lipgloss.Style) {
				// Coloured by the row's speed verdict, as img/s is: the
				// latency ratio alone would call noise faster or slower.
				return fmtMs(r.P50Ms), verdictStyle(r, s)
			}},
		colP99: {title: "p99 ms", w: 7, right: true, prio: 2,
			key:  func(r study.Row) float64 { return r.P99Ms },
			text: func(r study.Row, s *styles) (string, lipgloss.Style) { return fmtMs(r.P99Ms), plain }},
		colSpeedup: {title: "speedup", w: 8, right: true,
			key:  func(r study.Row) float64 { return nan(r.HasBaseline, r.Speedup) },
			text: speedupCell},
		colMem: {title: "mem", w: 6, right: true, prio: 3,
			key: func(r study.Row) float64 { return nan(r.WorkingSet > 0, float64(r.WorkingSet)) },
			text: func(r study.Row, s *styles) (string, lipgloss.Style) {
				if r.WorkingSet <= 0 {
					return "—", s.dim
				}
				return fmtBytes(r.WorkingSet), plain
			}},
		colMemRed: {title: "mem↓", w: 6, right: true, prio: 2,
			key: func(r study.Row) float64 { return nan(r.HasBaseline, r.MemReduction) },
			text: func(r study.Row, s *styles) (string, lipgloss.Style) {
				if r.Experiment.IsBaseline() {
					return "", plain
				}
				return fmtRatio(nan(r.HasBaseline, r.MemReduction)), goodBad(s, nan(r.HasBaseline, r.MemReduction), ratioTol)
			}},
		colSize: {title: "size", w: 6, right: true, prio: 3,
			key:  func(r study.Row) float64 { return float64(r.FileBytes) },
			text: func(r study.Row, s *styles) (string, lipgloss.Style) { return fmtBytes(r.FileBytes), plain }},
		colSizeRed: {title: "size↓", w: 6, right: true, prio: 2,
			key: func(r study.Row) float64 { return nan(r.HasBaseline, r.SizeReduction) },
			text: func(r study.Row, s *styles) (string, lipgloss.Style) {
				if r.Experiment.IsBaseline() {
					return "", plain
				}
				return fmtRatio(nan(r.HasBaseline, r.SizeReduction)), goodBad(s, nan(r.HasBaseline, r.SizeReduction), ratioTol)
			}},
		colCos: {title: "cos", w: 6, right: true, prio: 1,
			key: func(r study.Row) float64 { c, _, ok := fidelityOf(r); return nan(ok, c) },
			text: func(r study.Row, s *styles) (string, lipgloss.Style) {
				c, _, ok := fidelityOf(r)
				switch {
				case r.Experiment.IsBaseline():
					return "ref", s.dim
				case !ok:
					return "—", s.dim
				}
				return fmtCos(c), cosStyle(s, c)
			}},
		colTop1: {title: "top1", w: 6, right: true, prio: 1,
			key: func(r study.Row) float64 { t, _, ok := top1Of(r); return nan(ok, t) },
			text: func(r study.Row, s *styles) (string, lipgloss.Style) {
				t, decisive, ok := top1Of(r)
				switch {
				case r.Experiment.IsBaseline():
					return "ref", s.dim
				case !ok:
					return "—", s.dim
				case decisive:
					return fmtPct(t) + "*", top1Style(s, t)
				}
				return fmtPct(t), top1Style(s, t)
			}},
		colHost: {title: "host", w: 14,
			// The label depends on the other rows' hosts: rowView fills it in.
			text: func(r study.Row, s *styles) (string, lipgloss.Style) { return "", plain }},
		colEnergy: {title: "J/img", w: 6, right: true, prio: 3,
			key: func(r study.Row) float64 { j, ok := energyOf(r); return nan(ok, j) },
			text: func(r study.Row, s *styles) (string, lipgloss.Style) {
				j, ok := energyOf(r)
				if !ok {
					return "—", s.dim
				}
				return strconv.FormatFloat(j, 'g', 3, 64), plain
			}},
		colAcc: {title: "acc", w: 6, right: true, prio: 2,
			key: func(r study.Row) float64 {
				a, ok := accuracyOf(r)
				if !ok {
					return math.NaN()
				}
				return a.Top1Rate()
			},
			text: func(r study.Row, s *styles) (string, lipgloss.Style) {
				a, ok := accuracyOf(r)
				if !ok {
					return "—", s.dim
				}
				return fmtPct(a.Top1Rate()), plain
			}},
		colAccDelta: {title: "acc Δ", w: 6, right: true, prio: 1,
			key: func(r study.Row) float64 {
				a, ok := accuracyOf(r)
				d, paired := a.Top1Diff()
				if !ok || !paired {
					return math.NaN()
				}
				return d.Diff
			},
			text: func(r study.Row, s *styles) (string, lipgloss.Style) {
				a, ok := accuracyOf(r)
				if !ok {
					return "—", s.dim
				}
				d, paired := a.Top1Diff()
				switch {
				case r.Experiment.IsBaseline():
					return "ref", s.dim
				case !paired:
					return "—", s.dim
				}
				txt := accuracy.FormatPoints(d.Diff)
				if d.Significant {
					txt += "*"
				}
				return txt, accDeltaStyle(s, d)
			}},
	}
}

// Marks of the speedup column and the status glyph, explained by the
// table's footnote.
const (
	markOneRun    = "¹" // one run: no interval
	markUncertain = "?" // rests on a contended run
	glyphContend  = "⚠" // the row's own run was contended
)

// speedupCell renders a row's speedup by the one verdict rule
// (study.Row): green when faster, red when slower (by the 95% interval of
// paired rounds, or by 5% with a single run, marked ¹), plain when within
// noise, and marked ? when it rests on a contended run.
func speedupCell(r study.Row, s *styles) (string, lipgloss.Style) {
	if r.Experiment.IsBaseline() && r.HasBaseline {
		return "base", s.dim
	}
	if !r.HasBaseline {
		return "—", s.dim
	}
	txt := fmtRatio(r.Speedup)
	st := lipgloss.Style{}
	switch {
	case r.Uncertain():
		return txt + markUncertain, s.warn
	case r.Faster():
		st = s.good
	case r.Slower():
		st = s.bad
	}
	if r.Verdict == bench.VerdictOneRun {
		txt += markOneRun
	}
	return txt, st
}

// footnote explains the table's memory column and the marks its rows use.
func footnote(rows []study.Row) string {
	parts := []string{"mem = peak working set: peak RSS − RSS before load (GPU: peak VRAM − CUDA context)"}
	// The marks first: the definition may be cut on a narrow terminal.
	var marks []string
	var oneRun, uncertain, contended, decisive bool
	for _, r := range rows {
		oneRun = oneRun || r.Verdict == bench.VerdictOneRun
		uncertain = uncertain || r.Uncertain()
		contended = contended || r.Contended
		_, d, _ := top1Of(r)
		decisive = decisive || d
	}
	if oneRun {
		marks = append(marks, markOneRun+" 1 run")
	}
	if contended || uncertain {
		marks = append(marks, glyphContend+" contended", markUncertain+" uncertain")
	}
	if decisive {
		marks = append(marks, "* decisive top-1")
	}
	return strings.Join(append(marks, parts...), " · ")
}

// displayModel shortens a model path to its file name; catalog names pass.
func displayModel(m string) string {
	if i := strings.LastIndexByte(m, '/'); i >= 0 && i < len(m)-1 {
		return m[i+1:]
	}
	return m
}

// tableModel is the comparison table: sortable, with a cursor that follows
// its row when rows are added or re-sorted.
type tableModel struct {
	cols    []column
	sortCol int  // -1: plan order
	desc    bool // descending
	sel     string
	offset  int // first visible row
	body    int // visible rows at the last layout
}

func newTable() tableModel { return tableModel{cols: tableColumns(), sortCol: -1} }

// sorted returns the rows in display order: grouped by host (in the
// order the hosts first appear), by the sort column within each host.
func (t tableModel) sorted(rows []study.Row) []study.Row {
	out := t.sortedByColumn(rows)
	if hosts := hostOrder(rows); len(hosts) > 1 {
		slices.SortStableFunc(out, func(a, b study.Row) int { return cmp.Compare(hosts[hostOf(a)], hosts[hostOf(b)]) })
	}
	return out
}

func (t tableModel) sortedByColumn(rows []study.Row) []study.Row {
	out := slices.Clone(rows)
	if t.sortCol < 0 || t.sortCol >= len(t.cols) {
		return out
	}
	c := t.cols[t.sortCol]
	slices.SortStableFunc(out, func(a, b study.Row) int {
		// Failed rows and unknown values always go last.
		af, bf := a.Status != study.StatusOK, b.Status != study.StatusOK
		if af != bf {
			if af {
				return 1
			}
			return -1
		}
		var r int
		if c.key == nil {
			r = cmp.Compare(c.textOf(a), c.textOf(b))
		} else {
			av, bv := c.key(a), c.key(b)
			an, bn := math.IsNaN(av), math.IsNaN(bv)
			switch {
			case an && bn:
				return 0
			case an:
				return 1
			case bn:
				return -1
			}
			r = cmp.Compare(av, bv)
		}
		if t.desc {
			r = -r
		}
		return r
	})
	return out
}

func (c column) textOf(r study.Row) string {
	s, _ := c.text(r, &styles{})
	return s
}

// cursor returns the selected row's position in rows (sorted), 0 when the
// selection is gone.
func (t tableModel) cursor(rows []study.Row) int {
	for i, r := range rows {
		if rowID(r) == t.sel {
			return i
		}
	}
	return 0
}

// move moves the cursor by d rows (clamped).
func (t *tableModel) move(rows []study.Row, d int) {
	if len(rows) == 0 {
		return
	}
	sorted := t.sorted(rows)
	i := max(0, min(len(sorted)-1, t.cursor(sorted)+d))
	t.sel = rowID(sorted[i])
	t.offset = scrollOffset(t.offset, i, t.body, len(sorted))
}

// selected returns the row under the cursor.
func (t tableModel) selected(rows []study.Row) (study.Row, bool) {
	if len(rows) == 0 {
		return study.Row{}, false
	}
	sorted := t.sorted(rows)
	return sorted[t.cursor(sorted)], true
}

// cycleSort moves the sort to the next sortable column (after the last
// one, back to plan order). Numeric columns start descending (best first
// for throughput and speedup), latency ascending.
func (t *tableModel) cycleSort() {
	for i := t.sortCol + 1; i <= len(t.cols); i++ {
		if i == len(t.cols) {
			t.sortCol, t.desc = -1, false
			return
		}
		c := t.cols[i]
		if c.key != nil || i == colModel || i == colPrecision {
			t.sortCol = i
			t.desc = c.key != nil && i != colP50 && i != colP99 && i != colMem && i != colSize && i != colEnergy && i != colBatch
			return
		}
	}
}

// layout picks the columns that fit in w cells and the model column width.
// The model column asks for its longest name (10 to 20 cells), dropping
// low-priority columns first, so names are not cut to make room for them.
func (t tableModel) layout(w int, rows []study.Row) (cols []int, modelW int) {
	longest := 0
	for _, r := range rows {
		longest = max(longest, width(displayModel(r.Experiment.Model)))
	}
	t.cols = append([]column(nil), t.cols...)
	t.cols[colModel].w = max(10, min(20, longest))
	keep := make([]bool, len(t.cols))
	for i := range keep {
		keep[i] = true
	}
	if len(hostOrder(rows)) < 2 {
		keep[colHost] = false
	}
	if !anyAccuracy(rows) {
		keep[colAcc], keep[colAccDelta] = false, false
	}
	need := func() int {
		n := 3 // cursor mark, status mark, space
		for i, c := range t.cols {
			if keep[i] {
				n += c.w + 1
			}
		}
		return n
	}
	for need() > w {
		worst, at := 0, -1
		for i, c := range t.cols {
			if keep[i] && c.prio >= worst && c.prio > 0 {
				worst, at = c.prio, i
			}
		}
		if at < 0 {
			break
		}
		keep[at] = false
	}
	for i := range keep {
		if keep[i] {
			cols = append(cols, i)
		}
	}
	modelW = t.cols[colModel].w + max(0, w-need())
	modelW = min(modelW, 28)
	return cols, modelW
}

// view renders the table in w×h cells.
func (t tableModel) view(rows []study.Row, s *styles, w, h int, focused bool) string {
	cols, modelW := t.layout(w, rows)
	colW := func(i int) int {
		if i == colModel {
			return modelW
		}
		return t.cols[i].w
	}
	var b strings.Builder
	// Header.
	hdr := "   "
	for _, i := range cols {
		c := t.cols[i]
		title := c.title
		st := s.tableHeader
		if i == t.sortCol {
			arrow := "▲"
			if t.desc {
				arrow = "▼"
			}
			title += arrow
			st = s.sortHeader
		}
		cell := padRight(title, colW(i))
		if c.right {
			cell = padLeft(title, colW(i))
		}
		hdr += st.Render(cell) + " "
	}
	b.WriteString(padRight(hdr, w))
	if len(rows) == 0 {
		b.WriteString("\n" + s.dim.Render(padRight("  no results yet: rows appear as runs finish", w)))
		return strings.Join(fitLines(b.String(), w, h), "\n")
	}
	sorted := t.sorted(rows)
	cur := t.cursor(sorted)
	labels := hostLabels(rows)
	body := bodyRows(h)
	note := h >= 4 // the last line says what mem is and what the marks mean
	off := scrollOffset(t.offset, cur, body, len(sorted))
	for n := off; n < len(sorted) && n < off+body; n++ {
		b.WriteString("\n")
		b.WriteString(t.rowView(sorted[n], cols, colW, labels, s, w, focused && n == cur, n == cur))
	}
	lines := fitLines(b.String(), w, h)
	if note {
		lines[h-1] = s.dim.Render(padRight(" "+footnote(rows), w))
	}
	return strings.Join(lines, "\n")
}

// bodyRows is how many rows a table of h lines shows: all but the header
// and, from 4 lines, the footnote.
func bodyRows(h int) int {
	if h >= 4 {
		return h - 2
	}
	return max(1, h-1)
}

// rowView renders one table row.
func (t tableModel) rowView(r study.Row, cols []int, colW func(int) int, labels map[string]string, s *styles, w int, selected, isCursor bool) string {
	mark := " "
	if isCursor {
		mark = "▸"
	}
	status, statusSt := "✓", s.good
	switch {
	case r.Status != study.StatusOK:
		status, statusSt = "✗", s.bad
	case r.Contended:
		status, statusSt = glyphContend, s.warn
	case r.Last != nil && r.Last.Metrics != nil && r.Last.Metrics.OverheadFloor, r.LowCoverage():
		status, statusSt = "⚑", s.warn
	case r.Verdict == bench.VerdictNoise:
		status, statusSt = "≈", s.dim
	}
	if selected {
		statusSt = statusSt.Inherit(s.selected)
	}
	var parts []string
	used := 3
	for k, i := range cols {
		c := t.cols[i]
		cw := colW(i)
		if r.Status != study.StatusOK && i > colBatch {
			// Failed row: the reason takes the metric columns.
			rest := w - used
			msg := "failed: " + oneLine(r.Reason)
			st := s.bad
			if selected {
				st = st.Inherit(s.selected)
			}
			parts = append(parts, st.Render(padRight(msg, rest)))
			used = w
			break
		}
		txt, st := c.text(r, s)
		if i == colHost {
			txt, st = labels[hostOf(r)], s.dim
		}
		cell := padRight(txt, cw)
		if c.right {
			cell = padLeft(txt, cw)
		}
		sep := " "
		if k == len(cols)-1 {
			sep = ""
		}
		if selected {
			st = st.Inherit(s.selected)
			parts = append(parts, st.Render(cell)+s.selected.Render(sep))
		} else {
			parts = append(parts, st.Render(cell)+sep)
		}
		used += cw + len(sep)
	}
	sp := " "
	if selected {
		sp = s.selected.Render(sp)
	}
	line := mark + statusSt.Render(status) + sp + strings.Join(parts, "")
	if pad := w - width(line); pad > 0 {
		fill := strings.Repeat(" ", pad)
		if selected {
			fill = s.selected.Render(fill)
		}
		line += fill
	}
	return line
}

// oneLine keeps the first line of a multi-line reason.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}

// scrollOffset keeps the cursor visible in a window of h lines over n.
func scrollOffset(off, cur, h, n int) int {
	if h <= 0 {
		return 0
	}
	if cur < off {
		off = cur
	}
	if cur >= off+h {
		off = cur - h + 1
	}
	return max(0, min(off, n-h))
}
