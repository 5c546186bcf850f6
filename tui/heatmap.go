package tui

import (
	"cmp"
	"fmt"
	"math"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/quantscope/quantscope/profiler/study"
)

// heatMetric is what the heatmap colours by.
type heatMetric int

const (
	heatSpeedup heatMetric = iota
	heatMemory
	heatSize
	heatCos
	heatTop1
	heatMetrics
)

// String names the metric in the heatmap title.
func (h heatMetric) String() string {
	return [...]string{"speedup vs fp32", "memory reduction (peak working set)", "size reduction", "fidelity (cosine)", "top-1 agreement (decisive on synthetic weights)"}[h]
}

// value extracts the metric from a row; ok is false when it is unknown.
func (h heatMetric) value(r study.Row) (float64, bool) {
	if r.Status != study.StatusOK {
		return 0, false
	}
	switch h {
	case heatSpeedup:
		return r.Speedup, r.HasBaseline && r.Speedup > 0
	case heatMemory:
		return r.MemReduction, r.HasBaseline && r.MemReduction > 0
	case heatSize:
		return r.SizeReduction, r.HasBaseline && r.SizeReduction > 0
	case heatCos:
		c, _, ok := fidelityOf(r)
		if r.Experiment.IsBaseline() {
			return 1, true
		}
		return c, ok
	case heatTop1:
		t, _, ok := top1Of(r) // decisive on synthetic weights, none for backbones
		if r.Experiment.IsBaseline() && !r.Traits.Backbone() {
			return 1, true
		}
		return t, ok
	}
	return 0, false
}

// format renders a metric value for a cell.
func (h heatMetric) format(v float64) string {
	switch h {
	case heatCos:
		return fmtCos(v)
	case heatTop1:
		return fmtPct(v)
	}
	return fmtRatio(v)
}

// level places v on the heat scale (0 worse … 1 better).
func (h heatMetric) level(v float64) float64 {
	switch h {
	case heatSpeedup:
		return 0.5 + math.Log2(v)/2 // 0.5× … 2×
	case heatMemory, heatSize:
		return 0.5 + math.Log2(v)/6 // 0.125× … 8×
	case heatCos:
		if v >= 1 {
			return 1
		}
		return (-math.Log10(1-v) - 1) / 3 // 1−cos 0.1 … 1e-4
	case heatTop1:
		return (v - 0.9) / 0.1
	}
	return 0.5
}

// scale describes the colour scale's ends for the legend.
func (h heatMetric) scale() (lo, mid, hi string) {
	switch h {
	case heatSpeedup:
		return "0.5×", "1×", "2×"
	case heatMemory, heatSize:
		return "0.125×", "1×", "8×"
	case heatCos:
		return "0.9", "0.999", "0.9999"
	}
	return "90%", "95%", "100%"
}

// heatGroup is one host × EP × batch slice of the study (host is a
// study.Host.Key: results files of several machines have a heatmap each).
type heatGroup struct {
	host  string
	ep    string
	batch int
}

// heatGrid is the heatmap's content for one group.
type heatGrid struct {
	models []string
	precs  []string
	rows   map[string]study.Row // by model|precision
	stages map[string]stage     // latest queue stage by model|precision
}

// heatModel is the heatmap screen: models × precisions.
type heatModel struct {
	metric     heatMetric
	group      int
	row, col   int
	rowOff     int
	width, hgt int
	app        *app
}

func newHeatmap(a *app) *heatModel { return &heatModel{app: a} }

// Update implements Screen: esc goes back to the dashboard, enter on a
// measured cell opens its run detail.
func (h *heatModel) Update(msg tea.Msg) (Screen, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	switch {
	case !ok, h.app.studyKey(km):
	case key.Matches(km, h.app.keys.Back):
		h.app.post(showScreenMsg{to: screenDashboard})
	default:
		next, open, host := h.update(km, h.app.keys, h.app.viewCtx())
		*h = next
		if open != nil {
			h.app.post(openDetailMsg{exp: *open, host: host, back: screenHeatmap})
		}
	}
	return h, nil
}

// View implements Screen.
func (h *heatModel) View() string { return h.view(h.app.viewCtx()) }

// SetSize implements Screen.
func (h *heatModel) SetSize(w, ht int) { h.width, h.hgt = w, ht }

// ShortHelp implements Screen.
func (h *heatModel) ShortHelp() []key.Binding {
	k := h.app.keys
	stop, _ := h.app.studyKeys()
	return only(k.Metric, withHelp(k.Enter, "enter", "detail"), k.Group, stop, k.Export, k.Help, k.Quit)
}

// FullHelp implements Screen.
func (h *heatModel) FullHelp() [][]key.Binding {
	k := h.app.keys
	return [][]key.Binding{{k.Metric, k.Group, withHelp(k.Left, "←↑↓→", "move"), withHelp(k.Enter, "enter", "run detail"), k.Stop, k.Cancel, k.Export}, k.navGroup()}
}

// groups lists the host × EP × batch combinations of the study in order.
func heatGroups(ss *session) []heatGroup {
	var out []heatGroup
	seen := map[heatGroup]bool{}
	add := func(host string, e study.Experiment) {
		g := heatGroup{host, e.EP, e.Batch}
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	for _, r := range ss.rows {
		add(hostOf(r), r.Experiment)
	}
	for _, e := range ss.entries {
		add(ss.localHost, e.exp)
	}
	return out
}

func cellKey(model, prec string) string { return model + "|" + prec }

// grid builds the cells of group g: every model and precision seen in
// the results or the queue, fp32 first.
func buildGrid(ss *session, g heatGroup) heatGrid {
	grid := heatGrid{rows: map[string]study.Row{}, stages: map[string]stage{}}
	seenM, seenP := map[string]bool{}, map[string]bool{"fp32": true}
	grid.precs = []string{"fp32"}
	add := func(host string, e study.Experiment) bool {
		if host != g.host || e.EP != g.ep || e.Batch != g.batch {
			return false
		}
		if !seenM[e.Model] {
			seenM[e.Model] = true
			grid.models = append(grid.models, e.Model)
		}
		if !seenP[e.Precision] {
			seenP[e.Precision] = true
			grid.precs = append(grid.precs, e.Precision)
		}
		return true
	}
	for _, r := range ss.rows {
		if add(hostOf(r), r.Experiment) {
			grid.rows[cellKey(r.Experiment.Model, r.Experiment.Precision)] = r
		}
	}
	for _, e := range ss.entries {
		if add(ss.localHost, e.exp) {
			grid.stages[cellKey(e.exp.Model, e.exp.Precision)] = e.stage
		}
	}
	return grid
}

// update handles a key; Enter on a measured cell returns its experiment
// and host.
func (h heatModel) update(msg tea.KeyMsg, k keyMap, c viewCtx) (heatModel, *study.Experiment, string) {
	groups := heatGroups(c.sess)
	if len(groups) == 0 {
		return h, nil, ""
	}
	h.group = min(h.group, len(groups)-1)
	grid := buildGrid(c.sess, groups[h.group])
	switch {
	case key.Matches(msg, k.Metric):
		h.metric = (h.metric + 1) % heatMetrics
	case key.Matches(msg, k.Group), key.Matches(msg, k.NextPane):
		h.group = (h.group + 1) % len(groups)
	case key.Matches(msg, k.PrevPane):
		h.group = (h.group + len(groups) - 1) % len(groups)
	case key.Matches(msg, k.Up):
		h.row--
	case key.Matches(msg, k.Down):
		h.row++
	case key.Matches(msg, k.Left):
		h.col--
	case key.Matches(msg, k.Right):
		h.col++
	case key.Matches(msg, k.Top):
		h.row = 0
	case key.Matches(msg, k.Bottom):
		h.row = len(grid.models) - 1
	case key.Matches(msg, k.Enter):
		if h.row < len(grid.models) && h.col < len(grid.precs) {
			if r, ok := grid.rows[cellKey(grid.models[h.row], grid.precs[h.col])]; ok {
				e := r.Experiment
				return h, &e, hostOf(r)
			}
		}
	}
	h.row = max(0, min(len(grid.models)-1, h.row))
	h.col = max(0, min(len(grid.precs)-1, h.col))
	return h, nil, ""
}

func (h heatModel) view(c viewCtx) string {
	s := c.st
	groups := heatGroups(c.sess)
	if len(groups) == 0 {
		return panel(s, "Heatmap", centered(s.dim.Render("no results yet: cells fill in as runs finish"), h.width-2, h.hgt-2), h.width, h.hgt, true)
	}
	g := groups[min(h.group, len(groups)-1)]
	grid := buildGrid(c.sess, g)
	inner := h.width - 2

	labelW := 12
	for _, m := range grid.models {
		labelW = max(labelW, width(displayModel(m))+2)
	}
	labelW = min(labelW, max(12, inner/3))
	cellW := max(9, min(16, (inner-labelW)/max(1, len(grid.precs))))
	for _, p := range grid.precs {
		cellW = max(cellW, min(16, width(p)+2))
	}
	visCols := max(1, (inner-labelW)/cellW)
	colOff := 0
	if h.col >= visCols {
		colOff = h.col - visCols + 1
	}

	var lines []string
	title := fmt.Sprintf("%s · %s · batch %d", h.metric, g.ep, g.batch)
	if hosts := heatHosts(groups); len(hosts) > 1 {
		title = cmp.Or(hostLabels(c.sess.rows)[g.host], "this host") + " · " + title
	}
	lines = append(lines, s.bold.Render(truncate(title, inner)), "")
	hdr := padRight("", labelW)
	for j := colOff; j < len(grid.precs) && j < colOff+visCols; j++ {
		hdr += s.tableHeader.Render(padCenter(grid.precs[j], cellW))
	}
	lines = append(lines, hdr)
	bodyH := max(1, h.hgt-2-len(lines)-3)
	// Tall cells read as a picture when there is room for them.
	rowH := 1
	if len(grid.models)*3 <= bodyH {
		rowH = 3
	} else if len(grid.models)*2 <= bodyH {
		rowH = 2
	}
	visRows := max(1, bodyH/rowH)
	off := scrollOffset(h.rowOff, h.row, visRows, len(grid.models))
	for i := off; i < len(grid.models) && i < off+visRows; i++ {
		m := grid.models[i]
		for sub := 0; sub < rowH; sub++ {
			textLine := sub == rowH/2
			ln := padRight("", labelW)
			if textLine {
				mark := " "
				if i == h.row {
					mark = "▸"
				}
				ln = mark + padRight(displayModel(m), labelW-1)
			}
			for j := colOff; j < len(grid.precs) && j < colOff+visCols; j++ {
				sel := i == h.row && j == h.col
				ln += h.cell(c, grid, m, grid.precs[j], cellW, sel, textLine)
			}
			lines = append(lines, ln)
		}
	}
	lines = append(lines, "", h.legendLine(c, inner))
	hint := "m metric · ←↑↓→ move · enter detail"
	if len(groups) > 1 {
		what := "EP/batch"
		if len(heatHosts(groups)) > 1 {
			what = "host/EP/batch"
		}
		hint += fmt.Sprintf(" · ] next %s (%d/%d)", what, h.group+1, len(groups))
	}
	lines = append(lines, s.dim.Render(truncate(hint, inner)))
	return panel(s, "Heatmap · models × precisions", strings.Join(lines, "\n"), h.width, h.hgt, true)
}

// cell renders one line of a heatmap cell; only the text line carries
// the value, the others the colour.
func (h heatModel) cell(c viewCtx, grid heatGrid, model, prec string, w int, sel, textLine bool) string {
	s := c.st
	k := cellKey(model, prec)
	r, ok := grid.rows[k]
	plainMark := func(text string) string {
		if !textLine {
			text = ""
		}
		if sel && s.mode == modePlain && textLine {
			return "[" + padCenter(text, w-2) + "]"
		}
		if sel {
			return s.selected.Render(padCenter(text, w))
		}
		return padCenter(text, w)
	}
	if !ok {
		st, queued := grid.stages[k]
		switch {
		case !queued:
			return s.dim.Render(plainMark("·"))
		case st.active():
			return s.accent.Render(plainMark(st.String()))
		case st == stageQueued:
			return s.dim.Render(plainMark("queued"))
		case st == stageFailed:
			return s.bad.Render(plainMark("✗ failed"))
		}
		return s.dim.Render(plainMark(st.String()))
	}
	if r.Status != study.StatusOK {
		return s.bad.Render(plainMark("✗ failed"))
	}
	v, ok := h.metric.value(r)
	if !ok {
		return s.dim.Render(plainMark("—"))
	}
	lvl := heatLevel(h.metric.level(v))
	text := ""
	if textLine {
		text = h.metric.format(v)
		if r.LowCoverage() {
			text = "⚑" + text // most weight bytes untouched: FP32 in all but name
		}
		if h.metric == heatSpeedup && r.Uncertain() {
			text += markUncertain // rests on a contended run
		}
	}
	if s.mode == modePlain && sel && textLine {
		return "[" + padCenter(text, w-2) + "]"
	}
	return s.heatCell(lvl, text, w, sel)
}

// legendLine shows the colour scale.
func (h heatModel) legendLine(c viewCtx, w int) string {
	s := c.st
	lo, mid, hi := h.metric.scale()
	var bar strings.Builder
	for i := range heatColors {
		bar.WriteString(s.heatCell(i, "", 3, false))
	}
	return truncate("worse "+lo+" "+bar.String()+" "+hi+" better   (centre "+mid+")", w)
}

// heatHosts lists the hosts of groups.
func heatHosts(groups []heatGroup) map[string]bool {
	out := map[string]bool{}
	for _, g := range groups {
		out[g.host] = true
	}
	return out
}
