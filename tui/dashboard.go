package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
)

// dashPane is a pane of the dashboard.
type dashPane int

const (
	dashCharts dashPane = iota
	dashQueue
	dashTable
	dashPanes
)

// String names the pane on the compact layout's tab bar.
func (p dashPane) String() string {
	return [...]string{"Charts", "Queue", "Table"}[p]
}

// dashModel is the live dashboard: charts, the queue and the comparison
// table. On a wide terminal all three show at once (tab moves the focus
// between queue and table); on a small one they become tabs.
type dashModel struct {
	focus dashPane
	table tableModel
	qCur  int
	qOff  int

	// Charts are drawn on the tick and cached here: View only pastes them.
	charts    [3]string
	chartKeys [3]string

	app           *app
	width, height int
}

func newDashboard(a *app) *dashModel { return &dashModel{app: a, focus: dashTable, table: newTable()} }

// Update implements Screen: keys, and a new snapshot (the charts redraw).
func (d *dashModel) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case snapshotMsg:
		d.redraw(d.app.viewCtx())
	case tea.KeyMsg:
		if d.app.studyKey(msg) {
			return d, nil
		}
		next, act := d.update(msg, d.app.keys, d.app.viewCtx())
		*d = next
		if act.open != nil {
			d.app.post(openDetailMsg{exp: *act.open, host: act.host, back: screenDashboard})
		}
		if act.rerun != nil {
			d.app.post(rerunMsg{exp: *act.rerun})
		}
		d.redraw(d.app.viewCtx())
	}
	return d, nil
}

// View implements Screen.
func (d *dashModel) View() string { return d.view(d.app.viewCtx()) }

// SetSize implements Screen: the table's page follows, the charts redraw.
func (d *dashModel) SetSize(w, h int) {
	d.width, d.height = w, h
	d.table.body = bodyRows(d.lowerHeight() - 2)
	d.redraw(d.app.viewCtx())
}

// ShortHelp implements Screen.
func (d *dashModel) ShortHelp() []key.Binding {
	k := d.app.keys
	stop, cancel := d.app.studyKeys()
	return only(withHelp(k.Enter, "enter", "detail"), k.NextPane, k.SortNext, k.Rerun, stop, cancel, k.Export, k.Help, k.Quit)
}

// FullHelp implements Screen.
func (d *dashModel) FullHelp() [][]key.Binding {
	k := d.app.keys
	return [][]key.Binding{{withHelp(k.Enter, "enter", "run detail"), k.SortNext, k.SortReverse, k.Rerun, k.Stop, k.Cancel, k.Export}, k.navGroup()}
}

// rows are the table's rows in display order (what export writes).
func (d *dashModel) rows() []study.Row { return d.table.sorted(d.app.sess.rows) }

// compact reports whether the panes are shown one at a time.
func (d dashModel) compact() bool { return d.width < 100 || d.height < 28 }

// Full layout sizes.
func (d dashModel) chartsHeight() int {
	if d.compact() {
		return d.height - 1
	}
	return max(8, min(20, d.height*2/5))
}

func (d dashModel) queueWidth() int { return max(30, min(44, d.width/4)) }

// chartSizes returns the outer size of the three chart panels: throughput,
// memory, temperature/power.
func (d dashModel) chartSizes() [3][2]int {
	h := d.chartsHeight()
	if d.compact() {
		top := max(5, h/2)
		half := d.width / 2
		return [3][2]int{{d.width, top}, {half, h - top}, {d.width - half, h - top}}
	}
	w1 := d.width * 2 / 5
	w2 := (d.width - w1) / 2
	return [3][2]int{{w1, h}, {w2, h}, {d.width - w1 - w2, h}}
}

// redraw re-renders the charts whose data or size changed.
func (d *dashModel) redraw(c viewCtx) {
	if d.width < minWidth || d.height < minHeight-3 {
		return
	}
	ss := c.sess
	sz := d.chartSizes()
	keys := [3]string{
		fmt.Sprintf("%v|%d|%s|%s|%d", sz[0], ss.charted, seriesKey(&ss.tput), seriesKey(&ss.base), chartedStage(ss)),
		fmt.Sprintf("%v|%s|%s", sz[1], seriesKey(&ss.rss), seriesKey(&ss.gpu)),
		fmt.Sprintf("%v|%s|%s|%s|%s|%v", sz[2], seriesKey(&ss.temp), seriesKey(&ss.power), seriesKey(&ss.cpuTemp), seriesKey(&ss.cpuLoad), c.envReady),
	}
	draw := [3]func(viewCtx, int, int) string{throughputPanel, memoryPanel, thermalPanel}
	for i := range keys {
		if keys[i] != d.chartKeys[i] {
			d.chartKeys[i] = keys[i]
			d.charts[i] = draw[i](c, sz[i][0], sz[i][1])
		}
	}
}

// seriesKey changes whenever a series gets a point.
func seriesKey(s *series) string {
	if len(s.pts) == 0 {
		return "0"
	}
	return fmt.Sprintf("%d@%d", len(s.pts), s.pts[len(s.pts)-1].t.UnixNano())
}

func chartedStage(ss *session) stage {
	if ss.charted < 0 {
		return -1
	}
	return ss.entries[ss.charted].stage
}

func throughputPanel(c viewCtx, w, h int) string {
	s, ss := c.st, c.sess
	title := "Throughput"
	var who string
	if ss.charted >= 0 {
		e := ss.entries[ss.charted]
		who = displayModel(e.exp.Model) + " " + e.exp.Precision
		if len(e.recent) > 0 && e.stage.active() {
			title += " · " + fmtRate(e.smoothed()) + " img/s (1 s avg)"
		} else if e.stage.over() {
			who += " (" + e.stage.String() + ")"
		}
	}
	inner := w - 2
	items := []legendItem{{s.seriesThroughput, truncate(orText(who, "current run"), max(8, inner/2))}}
	if len(ss.base.pts) > 0 {
		items = append(items, legendItem{s.seriesBaseline, "fp32 " + fmtRate(ss.base.pts[len(ss.base.pts)-1].v)})
	}
	body := legend(items...) + "\n"
	if len(ss.tput.pts) == 0 {
		body += centered(s.dim.Render("waiting for the next measured run"), inner, h-3)
	} else {
		body += lineChart(s, inner, h-3,
			chartSet{"base", ss.base.pts, s.seriesBaseline},
			chartSet{"tput", ss.tput.pts, s.seriesThroughput})
	}
	return panel(s, title, body, w, h, false)
}

func memoryPanel(c viewCtx, w, h int) string {
	s, ss := c.st, c.sess
	title := "Memory"
	if n := len(ss.rss.pts); n > 0 {
		title += " · RSS " + fmtBytes(int64(ss.rss.pts[n-1].v*(1<<20)))
	}
	// Device-wide GPU memory (NVML gave no figure for the worker) counts
	// other processes too: the chart says so.
	gpuLabel := "GPU"
	if ss.gpuScope == bench.GPUScopeDevice {
		gpuLabel = "GPU device-wide"
	}
	if n := len(ss.gpu.pts); n > 0 {
		title += " · " + gpuLabel + " " + fmtBytes(int64(ss.gpu.pts[n-1].v*(1<<20)))
	}
	inner := w - 2
	items := []legendItem{{s.seriesRSS, "host RSS MiB"}}
	if len(ss.gpu.pts) > 0 {
		items = append(items, legendItem{s.seriesGPU, gpuLabel + " MiB"})
	}
	body := legend(items...) + "\n"
	if len(ss.rss.pts) == 0 && len(ss.gpu.pts) == 0 {
		body += centered(s.dim.Render("no samples yet"), inner, h-3)
	} else {
		body += lineChart(s, inner, h-3,
			chartSet{"gpu", ss.gpu.pts, s.seriesGPU},
			chartSet{"rss", ss.rss.pts, s.seriesRSS})
	}
	return panel(s, title, body, w, h, false)
}

// thermalPanel charts the GPU's temperature and power when there is a
// GPU, else the CPU's temperature and the worker's share of the CPU.
func thermalPanel(c viewCtx, w, h int) string {
	s, ss := c.st, c.sess
	inner := w - 2
	if len(ss.temp.pts) > 0 || len(ss.power.pts) > 0 {
		title := "GPU temp · power"
		if n := len(ss.temp.pts); n > 0 {
			title += fmt.Sprintf(" · %.0f°C", ss.temp.pts[n-1].v)
		}
		if n := len(ss.power.pts); n > 0 {
			title += fmt.Sprintf(" · %.0f W", ss.power.pts[n-1].v)
		}
		body := legend(legendItem{s.seriesTemp, "°C"}, legendItem{s.seriesPow, "W"}) + "\n" +
			lineChart(s, inner, h-3,
				chartSet{"power", ss.power.pts, s.seriesPow},
				chartSet{"temp", ss.temp.pts, s.seriesTemp})
		return panel(s, title, body, w, h, false)
	}
	if len(ss.cpuTemp.pts) > 0 || len(ss.cpuLoad.pts) > 0 {
		var names, values []string
		var items []legendItem
		if n := len(ss.cpuTemp.pts); n > 0 {
			names, values = append(names, "temp"), append(values, fmt.Sprintf("%.0f°C", ss.cpuTemp.pts[n-1].v))
			items = append(items, legendItem{s.seriesTemp, "°C"})
		}
		if n := len(ss.cpuLoad.pts); n > 0 {
			names, values = append(names, "load"), append(values, fmt.Sprintf("%.0f%%", ss.cpuLoad.pts[n-1].v))
			items = append(items, legendItem{s.seriesPow, "worker % of CPU"})
		}
		title := "CPU " + strings.Join(names, " · ") + " · " + strings.Join(values, " · ")
		body := legend(items...) + "\n" +
			lineChart(s, inner, h-3,
				chartSet{"load", ss.cpuLoad.pts, s.seriesPow},
				chartSet{"temp", ss.cpuTemp.pts, s.seriesTemp})
		return panel(s, title, body, w, h, false)
	}
	msg := "no temperature or power samples yet"
	if c.envReady && !c.env.GPUStatus.Available() {
		msg = "no GPU: CPU temperature and load\nshow here while a run measures"
	}
	return panel(s, "Temperature · power", centered(s.dim.Render(msg), inner, h-2), w, h, false)
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// dashAction is what a dashboard key asks of the root.
type dashAction struct {
	open  *study.Experiment // show the run detail
	host  string            // of open: the study.Host.Key it was measured on
	rerun *study.Experiment // queue it again
}

func (d dashModel) update(msg tea.KeyMsg, k keyMap, c viewCtx) (dashModel, dashAction) {
	var act dashAction
	rows := c.sess.rows
	switch {
	case key.Matches(msg, k.NextPane), key.Matches(msg, k.PrevPane):
		step := 1
		if key.Matches(msg, k.PrevPane) {
			step = int(dashPanes) - 1
		}
		d.focus = (d.focus + dashPane(step)) % dashPanes
		if !d.compact() && d.focus == dashCharts {
			d.focus = (d.focus + dashPane(step)) % dashPanes
		}
	case key.Matches(msg, k.SortNext) && d.focus == dashTable:
		d.table.cycleSort()
	case key.Matches(msg, k.SortReverse) && d.focus == dashTable:
		if d.table.sortCol >= 0 {
			d.table.desc = !d.table.desc
		}
	case key.Matches(msg, k.Up), key.Matches(msg, k.Down), key.Matches(msg, k.PageUp),
		key.Matches(msg, k.PageDown), key.Matches(msg, k.Top), key.Matches(msg, k.Bottom):
		page := max(1, d.lowerHeight()-3)
		delta := 0
		switch {
		case key.Matches(msg, k.Up):
			delta = -1
		case key.Matches(msg, k.Down):
			delta = 1
		case key.Matches(msg, k.PageUp):
			delta = -page
		case key.Matches(msg, k.PageDown):
			delta = page
		case key.Matches(msg, k.Top):
			delta = -1 << 30
		case key.Matches(msg, k.Bottom):
			delta = 1 << 30
		}
		switch d.focus {
		case dashTable:
			d.table.body = bodyRows(d.lowerHeight() - 2)
			d.table.move(rows, delta)
		case dashQueue:
			n := len(c.sess.entries)
			d.qCur = max(0, min(n-1, d.qCur+max(-n, min(n, delta))))
			d.qOff = scrollOffset(d.qOff, d.qCur, d.lowerHeight()-3, n)
		}
	case key.Matches(msg, k.Enter):
		if exp, host, ok := d.selection(c); ok {
			act.open, act.host = &exp, host
		}
	case key.Matches(msg, k.Rerun):
		if exp, _, ok := d.selection(c); ok {
			act.rerun = &exp
		}
	}
	return d, act
}

// selection is the experiment under the focused pane's cursor and the
// host it was measured on (the queue's are this machine's).
func (d dashModel) selection(c viewCtx) (study.Experiment, string, bool) {
	switch d.focus {
	case dashQueue:
		if d.qCur >= 0 && d.qCur < len(c.sess.entries) {
			return c.sess.entries[d.qCur].exp, c.sess.localHost, true
		}
	case dashTable:
		if r, ok := d.table.selected(c.sess.rows); ok {
			return r.Experiment, hostOf(r), true
		}
	}
	return study.Experiment{}, "", false
}

// lowerHeight is the height of the queue and table panels.
func (d dashModel) lowerHeight() int {
	if d.compact() {
		return d.height - 1
	}
	return d.height - d.chartsHeight()
}

func (d dashModel) view(c viewCtx) string {
	if d.compact() {
		return d.compactView(c)
	}
	charts := joinColumns(joinColumns(d.charts[0], d.charts[1]), d.charts[2])
	lh := d.lowerHeight()
	qw := d.queueWidth()
	queue := panel(c.st, d.queueTitle(c), d.queueView(c, qw-2, lh-2), qw, lh, d.focus == dashQueue)
	table := panel(c.st, d.tableTitle(c), d.table.view(c.sess.rows, c.st, d.width-qw-2, lh-2, d.focus == dashTable), d.width-qw, lh, d.focus == dashTable)
	return charts + "\n" + joinColumns(queue, table)
}

func (d dashModel) compactView(c viewCtx) string {
	s := c.st
	var tabs []string
	for p := dashPane(0); p < dashPanes; p++ {
		label := " " + p.String() + " "
		if p == d.focus {
			tabs = append(tabs, s.tabActive.Render("["+strings.TrimSpace(label)+"]"))
		} else {
			tabs = append(tabs, s.tabInactive.Render(label))
		}
	}
	bar := padRight(strings.Join(tabs, " ")+s.dim.Render("  tab switches"), d.width)
	h := d.height - 1
	var body string
	switch d.focus {
	case dashCharts:
		body = d.charts[0] + "\n" + joinColumns(d.charts[1], d.charts[2])
	case dashQueue:
		body = panel(s, d.queueTitle(c), d.queueView(c, d.width-2, h-2), d.width, h, true)
	case dashTable:
		body = panel(s, d.tableTitle(c), d.table.view(c.sess.rows, s, d.width-2, h-2, true), d.width, h, true)
	}
	return bar + "\n" + strings.Join(fitLines(body, d.width, h), "\n")
}

func (d dashModel) queueTitle(c viewCtx) string {
	done, failed, _, total := c.sess.counts()
	t := fmt.Sprintf("Queue · %d/%d", done+failed, total)
	if failed > 0 {
		t += fmt.Sprintf(" · %d failed", failed)
	}
	return t
}

func (d dashModel) tableTitle(c viewCtx) string {
	t := "Results"
	if n := len(c.sess.rows); n > 0 {
		t += fmt.Sprintf(" · %d", n)
	}
	if d.table.sortCol >= 0 {
		dir := "↑"
		if d.table.desc {
			dir = "↓"
		}
		t += " · by " + d.table.cols[d.table.sortCol].title + " " + dir
	}
	return t
}

// stageIcon is the queue's glyph for a stage.
func stageIcon(c viewCtx, st stage) (string, lipgloss.Style) {
	s := c.st
	switch {
	case st == stageQueued:
		return "·", s.dim
	case st.active():
		if c.spinner {
			frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
			return frames[c.frame%len(frames)], s.accent
		}
		return "▶", s.accent
	case st == stageDone:
		return "✓", s.good
	case st == stageFailed:
		return "✗", s.bad
	case st == stageSkipped:
		return "↷", s.dim
	case st == stageStopped:
		return "■", s.warn
	}
	return "–", s.dim
}

func (d dashModel) queueView(c viewCtx, w, h int) string {
	s, ss := c.st, c.sess
	if len(ss.entries) == 0 {
		return s.dim.Render(" nothing queued\n press 1 to pick models")
	}
	multiBatch := false
	for _, e := range ss.entries {
		if e.exp.Batch != ss.entries[0].exp.Batch {
			multiBatch = true
		}
	}
	cur := d.qCur
	off := scrollOffset(d.qOff, cur, h, len(ss.entries))
	if d.focus != dashQueue && ss.active >= 0 {
		// Follow the active experiment while the user is elsewhere.
		off = scrollOffset(off, ss.active, h, len(ss.entries))
	}
	var lines []string
	for i := off; i < len(ss.entries) && i < off+h; i++ {
		e := ss.entries[i]
		icon, ist := stageIcon(c, e.stage)
		label := displayModel(e.exp.Model) + " " + e.exp.Precision
		if multiBatch {
			label += fmt.Sprintf(" b%d", e.exp.Batch)
		}
		if e.exp.Repeat > 0 {
			label += fmt.Sprintf(" #%d", e.exp.Repeat+1)
		}
		state := e.stage.String()
		if e.stage == stageScoring && e.last != nil && e.last.ImagesTotal > 0 {
			state = fmt.Sprintf("scoring %d/%d", e.last.Images, e.last.ImagesTotal)
		}
		if (e.stage == stageBuilding || e.stage == stageQuantizing) && e.eval != nil && i == ss.active {
			if p := ss.decode; p.Total > 0 && p.Done < p.Total {
				state = fmt.Sprintf("decoding %d/%d", p.Done, p.Total)
			}
		}
		pct := ""
		if e.stage == stageMeasuring && e.duration > 0 && !e.measuring.IsZero() {
			f := float64(c.now.Sub(e.measuring)) / float64(e.duration)
			pct = fmt.Sprintf("%.0f%%", 100*min(1, max(0, f)))
			state = "measuring " + pct
		}
		if width(label)+width(state)+5 > w {
			// Narrow: the short form of the state leaves room for the name.
			switch {
			case pct != "":
				state = pct
			case e.stage == stageWarmup:
				state = "warm-up"
			}
		}
		stStyle := lipgloss.Style{}
		switch {
		case e.stage == stageFailed:
			stStyle = s.bad
		case e.stage.active():
			stStyle = s.accent
		case e.stage == stageQueued || e.stage == stageCanceled:
			stStyle = s.dim
		}
		mark := " "
		if i == cur && d.focus == dashQueue {
			mark = "▸"
		}
		sw := width(state)
		ln := mark + ist.Render(icon) + " " + padRight(label, max(1, w-3-sw-1)) + " " + stStyle.Render(state)
		if i == cur && d.focus == dashQueue {
			ln = s.selected.Render(padRight(ln, w))
		}
		lines = append(lines, ln)
	}
	return strings.Join(lines, "\n")
}

// statusLine is the header's second line: the current run, or how the
// study ended.
func statusLine(c viewCtx, w int) string {
	s, ss := c.st, c.sess
	done, failed, pending, total := ss.counts()
	clock := ""
	if !ss.started.IsZero() {
		end := c.now
		if pending == 0 {
			end = ss.finishedAt()
		}
		clock = "⏱ " + fmtClock(end.Sub(ss.started))
		if pending > 0 {
			clock += " · ETA " + fmtClock(ss.eta(c.now))
		}
	}
	if ss.active >= 0 {
		e := ss.entries[ss.active]
		icon, ist := stageIcon(c, e.stage)
		pos := fmt.Sprintf("%d/%d", ss.active+1, total)
		left := ist.Render(icon) + " " + pos + " " + s.bold.Render(displayModel(e.exp.Model)+" "+e.exp.Precision) +
			fmt.Sprintf(" %s b%d · %s", e.exp.EP, e.exp.Batch, e.stage)
		if e.stage == stageMeasuring && e.duration > 0 && !e.measuring.IsZero() {
			f := max(0, min(1, float64(c.now.Sub(e.measuring))/float64(e.duration)))
			if w >= 100 {
				left += " " + progressBar(s, f, 12)
			} else {
				left += fmt.Sprintf(" %.0f%%", f*100)
			}
		}
		if e.last != nil && len(e.recent) > 0 {
			left += fmt.Sprintf(" · %s img/s · %s ms", fmtRate(e.smoothed()), fmtMs(e.last.LatencyMs))
		}
		return spread(left, clock, w)
	}
	var left string
	switch {
	case total == 0 && len(ss.records) == 0:
		left = s.dim.Render("no study yet: pick models and precisions on the setup screen (1), enter starts")
	case total == 0 && c.hub != nil && c.hub.replay != nil && c.hub.replay.note != "":
		left = s.warn.Render(c.hub.replay.note)
	case total == 0:
		from := c.opts.Out
		if ss.opened > 0 {
			from += fmt.Sprintf(" + %s", plural(ss.opened, "file", "files"))
		}
		left = fmt.Sprintf("%s · %s loaded", from, plural(ss.loaded, "record", "records"))
		if n := len(hostOrder(ss.rows)); n > 1 {
			left += fmt.Sprintf(" · %d hosts", n)
		}
	case pending > 0:
		left = fmt.Sprintf("%d queued · starting…", pending)
	default:
		left = fmt.Sprintf("study finished: %d ok", done)
		if failed > 0 {
			left += ", " + s.bad.Render(fmt.Sprintf("%d failed", failed))
		}
		left += " · " + c.opts.Out
	}
	return spread(left, clock, w)
}

// headerLine is the first line: screen tabs and the machine.
func headerLine(c viewCtx, cur screen, w int) string {
	s := c.st
	tabs := []struct {
		sc    screen
		label string
	}{{screenSetup, "1 Setup"}, {screenDashboard, "2 Dashboard"}, {screenHeatmap, "3 Heatmap"}}
	if c.opts != nil && c.opts.Doctor != nil {
		tabs = append(tabs, struct {
			sc    screen
			label string
		}{screenDoctor, "4 Doctor"})
	}
	if c.opts != nil && c.opts.Tune != nil {
		tabs = append(tabs, struct {
			sc    screen
			label string
		}{screenTune, "5 Tune"})
	}
	var parts []string
	for _, t := range tabs {
		if t.sc == cur {
			parts = append(parts, s.tabActive.Render("["+t.label+"]"))
		} else {
			parts = append(parts, s.tabInactive.Render(" "+t.label+" "))
		}
	}
	if cur == screenDetail {
		parts = append(parts, s.tabActive.Render("[Detail]"))
	}
	left := s.title.Render("quantscope") + " " + strings.Join(parts, "")
	if b := hubBadge(c); b != "" {
		left += " " + b
	}
	return spread(left, envSummary(c, w-width(left)-1), w)
}

// hubBadge says a replay is playing, or who controls a shared study
// (serve); "" otherwise.
func hubBadge(c viewCtx) string {
	s, h := c.st, c.hub
	if h != nil && h.replay != nil {
		b := "▶ replay"
		if h.replay.speed != 1 {
			b += " " + strings.TrimSuffix(fmt.Sprintf("%.2f", h.replay.speed), ".00") + "×"
		}
		if h.replay.loop {
			b += " · loop"
		}
		return s.warn.Render(b)
	}
	if h == nil || !h.shared {
		return ""
	}
	others := ""
	if n := len(h.clients) - 1; n > 0 {
		others = fmt.Sprintf(" · %d more here", n)
	}
	switch h.control.id {
	case c.me:
		return s.good.Render("● you have control") + s.dim.Render(others)
	case 0:
		return s.warn.Render("○ nobody has control (c takes it)") + s.dim.Render(others)
	}
	return s.accent.Render("◐ watching: "+h.control.name+" has control") + s.dim.Render(" (c asks)"+others)
}

// envSummary is "CPU · GPU · ORT · EP in use", shortened to fit.
func envSummary(c viewCtx, w int) string {
	s := c.st
	if c.hub != nil && c.hub.replay != nil {
		return replaySummary(c, w)
	}
	if !c.envReady {
		return s.dim.Render("probing host…")
	}
	env := c.env
	var parts []string
	if cpu := env.Host.CPU.Model; cpu != "" {
		n := env.Host.CPU.UsableCores
		if n == 0 {
			n = env.Host.CPU.LogicalCores
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", shortCPU(cpu), n))
	}
	gpu := "no GPU"
	if env.GPUStatus.Available() && len(env.GPUs) > 0 {
		gpu = strings.TrimPrefix(env.GPUs[0].Name, "NVIDIA ")
		if len(env.GPUs) > 1 {
			gpu = fmt.Sprintf("%d× %s", len(env.GPUs), gpu)
		}
		if env.GPUStatus.DriverVersion != "" {
			gpu += " · drv " + env.GPUStatus.DriverVersion
		}
	}
	parts = append(parts, gpu)
	ort := s.bad.Render("ORT not loaded")
	if env.ORT.OK() {
		ort = "ORT " + env.ORT.Version
	}
	parts = append(parts, ort)
	if c.ep != "" {
		parts = append(parts, "EP "+c.ep)
	}
	// Drop from the front (the CPU) when narrow: ORT status matters most.
	for len(parts) > 1 && width(strings.Join(parts, " · ")) > w {
		parts = parts[1:]
	}
	return truncate(strings.Join(parts, " · "), w)
}

// shortCPU trims marketing words from a CPU model name.
func shortCPU(m string) string {
	for _, cut := range []string{"(R)", "(TM)", "(tm)", " CPU", " Processor", " with Radeon Graphics"} {
		m = strings.ReplaceAll(m, cut, "")
	}
	if i := strings.Index(m, " @ "); i >= 0 {
		m = m[:i]
	}
	return strings.Join(strings.Fields(m), " ")
}
