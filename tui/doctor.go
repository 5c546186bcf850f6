package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/quantscope/quantscope/profiler/hwbench"
)

// DoctorFunc runs the hardware check (hwbench.Run with the command's
// configuration). It is called from a tea.Cmd goroutine, reports progress
// through emit and stops when ctx is canceled.
type DoctorFunc func(ctx context.Context, emit func(hwbench.Event)) (*hwbench.Report, error)

// Messages of the Doctor screen, tagged with the run they belong to so a
// canceled run's late messages are dropped.
type (
	doctorEventMsg struct {
		gen int
		ev  hwbench.Event
		ok  bool // false: the event channel closed
	}
	doctorDoneMsg struct {
		gen int
		rep *hwbench.Report
		err error
	}
)

// doctorEventBuffer bounds the events waiting for the UI; live samples
// beyond it are dropped (steps and lines never are).
const doctorEventBuffer = 256

// doctorModel is the Doctor screen: the hardware check with live bars.
type doctorModel struct {
	gen     int
	running bool
	started time.Time
	ended   time.Time
	cancel  context.CancelFunc
	events  chan hwbench.Event

	step, steps int
	label       string
	live        *hwbench.Event // latest sample of the running step
	gpu         *hwbench.Event // latest GPU reading
	lines       []hwbench.Line // judged, in arrival order
	rep         *hwbench.Report
	err         error
	cursor      int
	offset      int

	app           *app
	width, height int
}

func newDoctor(a *app) *doctorModel { return &doctorModel{app: a} }

// Update implements Screen: enter runs the check, x cancels it, the
// movement keys walk the lines; the check's events and its end arrive
// as messages.
func (d *doctorModel) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case doctorEventMsg:
		return d, d.onEvent(msg)
	case doctorDoneMsg:
		if msg.gen != d.gen {
			return d, nil
		}
		d.onDone(msg, d.app.opts.Now())
		if msg.err != nil {
			d.app.post(toastMsg{text: "hardware check: " + msg.err.Error(), err: true})
		} else {
			d.app.post(toastMsg{text: "hardware check done: " + msg.rep.Verdict.Label(), err: msg.rep.Verdict.Rank() > 0})
		}
	case tea.KeyMsg:
		k := d.app.keys
		switch {
		case key.Matches(msg, k.Enter) && !d.running && d.app.opts.Doctor != nil:
			switch {
			case d.app.running():
				d.app.post(toastMsg{text: "a study is running: the check would measure it too; wait for it or cancel it (x on the dashboard)", err: true})
				return d, nil
			case d.app.measuring(screenTune):
				d.app.post(toastMsg{text: "a tune search is running: the check would measure it too; wait for it or cancel it (x on the Tune screen)", err: true})
				return d, nil
			}
			return d, d.start(d.app.ctx, d.app.opts.Doctor, d.app.opts.Now())
		case key.Matches(msg, k.Cancel) && d.running:
			d.stop()
			d.app.post(toastMsg{text: "canceling the hardware check"})
		default:
			d.update(msg, k)
		}
	}
	return d, nil
}

// View implements Screen.
func (d *doctorModel) View() string { return d.view(d.app.viewCtx(), d.app.opts.Doctor != nil) }

// SetSize implements Screen.
func (d *doctorModel) SetSize(w, h int) { d.width, d.height = w, h }

// ShortHelp implements Screen.
func (d *doctorModel) ShortHelp() []key.Binding {
	k := d.app.keys
	if d.running {
		return only(withHelp(k.Cancel, "x", "cancel check"), withHelp(k.Down, "↑/↓", "line"), k.Help, k.Quit)
	}
	return only(withHelp(k.Enter, "enter", "run check"), withHelp(k.Down, "↑/↓", "line"), k.Setup, k.Dashboard, k.Help, k.Quit)
}

// FullHelp implements Screen.
func (d *doctorModel) FullHelp() [][]key.Binding {
	k := d.app.keys
	return [][]key.Binding{{withHelp(k.Enter, "enter", "run the hardware check"), withHelp(k.Cancel, "x", "cancel it"),
		withHelp(k.Down, "↑↓/jk", "select a line"), withHelp(k.Top, "g/G", "first/last line")}, k.navGroup()}
}

// measuring reports whether the hardware check runs.
func (d *doctorModel) measuring() bool { return d.running }

// start launches a run: one tea.Cmd runs the check, another delivers its
// events one at a time.
func (d *doctorModel) start(parent context.Context, run DoctorFunc, now time.Time) tea.Cmd {
	ctx, cancel := context.WithCancel(parent)
	d.gen++
	*d = doctorModel{gen: d.gen, running: true, started: now, cancel: cancel,
		events: make(chan hwbench.Event, doctorEventBuffer), app: d.app, width: d.width, height: d.height}
	gen, ch := d.gen, d.events
	runCmd := func() tea.Msg {
		emit := func(e hwbench.Event) {
			if e.Kind == hwbench.EventSample || e.Kind == hwbench.EventGPU {
				select {
				case ch <- e:
				default: // the UI is behind: a newer reading follows
				}
				return
			}
			select {
			case ch <- e:
			case <-ctx.Done():
			}
		}
		rep, err := run(ctx, emit)
		close(ch)
		return doctorDoneMsg{gen: gen, rep: rep, err: err}
	}
	return tea.Batch(runCmd, waitDoctorEvent(gen, ch))
}

// waitDoctorEvent delivers the next event of run gen.
func waitDoctorEvent(gen int, ch <-chan hwbench.Event) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		return doctorEventMsg{gen: gen, ev: ev, ok: ok}
	}
}

// stop cancels a running check.
func (d *doctorModel) stop() {
	if d.cancel != nil {
		d.cancel()
	}
}

// onEvent folds an event in and asks for the next one. Events still
// queued when the run's report arrived are dropped: the report holds them.
func (d *doctorModel) onEvent(msg doctorEventMsg) tea.Cmd {
	if msg.gen != d.gen || !msg.ok || !d.running {
		return nil
	}
	e := msg.ev
	switch e.Kind {
	case hwbench.EventStep:
		d.step, d.steps, d.label, d.live = e.Step, e.Steps, e.Label, nil
	case hwbench.EventSample:
		d.live = &e
	case hwbench.EventLine:
		d.lines = append(d.lines, *e.Line)
		d.live = nil
	case hwbench.EventGPU:
		d.gpu = &e
	}
	return waitDoctorEvent(d.gen, d.events)
}

// onDone records the finished run.
func (d *doctorModel) onDone(msg doctorDoneMsg, now time.Time) {
	if msg.gen != d.gen {
		return
	}
	d.running, d.ended, d.live = false, now, nil
	d.rep, d.err = msg.rep, msg.err
	if msg.rep != nil {
		d.lines = msg.rep.Lines // judged and attributed in full
	}
	d.cancel = nil
}

// update handles the screen's keys: move the cursor over the lines.
func (d *doctorModel) update(msg tea.KeyMsg, k keyMap) {
	switch {
	case key.Matches(msg, k.Up):
		d.cursor--
	case key.Matches(msg, k.Down):
		d.cursor++
	case key.Matches(msg, k.Top):
		d.cursor = 0
	case key.Matches(msg, k.Bottom):
		d.cursor = len(d.lines)
	}
	d.cursor = max(0, min(d.cursor, len(d.lines)-1))
}

// doctorBarWidth is the width of the live sample's bar.
const doctorBarWidth = 20

// view draws the screen: status and progress, the lines with bars, the
// live GPU readings, and the selected line's detail.
func (d doctorModel) view(c viewCtx, available bool) string {
	s := c.st
	w, h := d.width, d.height
	var top []string
	switch {
	case !available:
		return panel(s, "Doctor", s.dim.Render("the hardware check is not available in this build"), w, h, true)
	case d.running:
		el := c.now.Sub(d.started)
		frac := 0.0
		if d.steps > 0 {
			frac = float64(max(0, d.step-1)) / float64(d.steps)
		}
		status := fmt.Sprintf("%s %d/%d %s · %s", spinnerGlyph(c), d.step, d.steps, s.bold.Render(d.label), fmtClock(el))
		top = append(top, spread(status, progressBar(s, frac, 16), w-2))
		if d.live != nil {
			live := fmt.Sprintf("  %s now: %s", d.live.Phase, hwbench.FormatValue(d.live.Value, d.live.Unit))
			if d.live.Expected > 0 {
				f := d.live.Value / d.live.Expected
				live += fmt.Sprintf("  %s %.0f%% of %s", progressBar(s, f, doctorBarWidth), 100*f, hwbench.FormatValue(d.live.Expected, d.live.Unit))
			}
			top = append(top, live)
		}
	case d.err != nil:
		top = append(top, s.errorText.Render("hardware check failed: ")+d.err.Error())
	case d.rep != nil:
		v := d.rep.Verdict
		top = append(top, fmt.Sprintf("%s %s · %s · %.0f s · load average %.1f → %.1f", verdictMark(s, v), s.bold.Render("verdict: "+v.Label()),
			d.rep.Machine.EP, d.rep.Seconds, d.rep.Machine.LoadStart, d.rep.Machine.LoadEnd))
	default:
		top = append(top,
			"Is this machine as fast as it should be? The check measures GEMM peaks through",
			"ONNX Runtime, memory and PCIe bandwidth and a reference inference, against the",
			"hardware's theoretical peaks and figures from known machines, while it watches",
			"clocks, throttling, power, temperature, the PCIe link, ECC and other load.",
			"",
			s.key.Render("enter")+" run it (about a minute; nothing else should run meanwhile)",
		)
	}
	if d.gpu != nil && d.gpu.GPU != nil {
		top = append(top, "")
		top = append(top, wrapParts("GPU ", gpuBars(s, d.gpu), w-2)...)
	}

	var rows []string
	group := ""
	for i, l := range d.lines {
		if l.Group != group {
			group = l.Group
			rows = append(rows, s.title.Render(strings.ToUpper(group[:1])+group[1:]))
		}
		rows = append(rows, d.lineRow(c, l, i == d.cursor, w-2))
	}
	detail := d.detail(c, w-2)
	bodyH := h - 2 - len(top) - len(detail) - 1
	if len(rows) > 0 && bodyH > 0 {
		// Keep the cursor's row in view.
		cur := cursorRow(d.lines, d.cursor)
		off := max(0, min(cur-bodyH/2, len(rows)-bodyH))
		end := min(len(rows), off+bodyH)
		rows = rows[off:end]
	}
	body := strings.Join(top, "\n")
	if len(rows) > 0 {
		body += "\n\n" + strings.Join(rows, "\n")
	}
	if len(detail) > 0 {
		body += "\n" + strings.Join(detail, "\n")
	}
	return panel(s, "Doctor — hardware check", body, w, h, true)
}

// cursorRow is the index, among the rendered rows (group titles included),
// of line i.
func cursorRow(lines []hwbench.Line, i int) int {
	row, group := 0, ""
	for j, l := range lines {
		if l.Group != group {
			group = l.Group
			row++
		}
		if j == i {
			return row
		}
		row++
	}
	return row
}

// lineRow is one judged line: mark, name, figure, bar of its percentage.
// The bar takes what the width leaves, 6 to 30 cells.
func (d doctorModel) lineRow(c viewCtx, l hwbench.Line, selected bool, w int) string {
	s := c.st
	const nameW, figW = 34, 16
	barW := max(6, min(30, w-(1+1+nameW+1+figW+2+1+4)))
	fig := hwbench.FormatValue(l.Value, l.Unit)
	switch {
	case l.Error != "":
		fig = s.bad.Render("not measured")
		if l.Verdict == hwbench.Info {
			fig = s.dim.Render("not run")
		}
	case l.Unit == "":
		// A finding, not a figure: its words take the rest of the row.
		row := padRight(fmt.Sprintf("%s %s %s", verdictMark(s, l.Verdict), padRight(l.Name, nameW), s.dim.Render(l.Note)), w)
		if selected {
			return s.selected.Render(row)
		}
		return row
	}
	row := fmt.Sprintf("%s %s %s", verdictMark(s, l.Verdict), padRight(l.Name, nameW), padLeft(fig, figW))
	if l.Expected > 0 && l.Error == "" {
		row += fmt.Sprintf("  %s %3.0f%%", verdictBar(s, l.Verdict, l.Percent/100, barW), l.Percent)
	}
	row = padRight(row, w)
	if selected {
		return s.selected.Render(row)
	}
	return row
}

// detail is the selected line's basis, cause, next step and note.
func (d doctorModel) detail(c viewCtx, w int) []string {
	if d.cursor < 0 || d.cursor >= len(d.lines) {
		return nil
	}
	s := c.st
	l := d.lines[d.cursor]
	out := []string{s.border.Render(strings.Repeat("─", max(0, w)))}
	add := func(label, text string, st lipgloss.Style) {
		if text != "" {
			out = append(out, truncate(st.Render(label)+text, w))
		}
	}
	add("error: ", l.Error, s.bad)
	add("cause: ", l.Cause, s.warn)
	add("next:  ", l.Next, s.accent)
	add("basis: ", l.Basis, s.dim)
	if l.Unit != "" {
		add("note:  ", l.Note, s.dim)
	}
	return out
}

// wrapParts joins parts with " · " into lines of at most w cells, the first
// starting with prefix and the others indented as deep.
func wrapParts(prefix string, parts []string, w int) []string {
	var out []string
	cur := prefix
	indent := strings.Repeat(" ", width(prefix))
	for i, p := range parts {
		sep := " · "
		if i == 0 {
			sep = ""
		}
		if i > 0 && width(cur)+width(sep)+width(p) > w {
			out = append(out, cur)
			cur, sep = indent, ""
		}
		cur += sep + p
	}
	return append(out, cur)
}

// gpuBars are the live GPU readings: SM clock against its maximum, power
// against its limit, temperature against the slowdown threshold.
func gpuBars(s *styles, e *hwbench.Event) []string {
	g := e.GPU
	frac := func(v, of float64) float64 {
		if of <= 0 {
			return 0
		}
		return v / of
	}
	clock := fmt.Sprintf("SM %4d/%d MHz %s", g.SMClockMHz, e.MaxSMMHz, progressBar(s, frac(float64(g.SMClockMHz), float64(e.MaxSMMHz)), 10))
	power := fmt.Sprintf("power %3.0f/%.0f W %s", g.PowerW, e.PowerLimitW, progressBar(s, frac(g.PowerW, e.PowerLimitW), 10))
	temp := fmt.Sprintf("%d °C", g.TempC)
	if e.SlowdownC > 0 {
		temp += fmt.Sprintf(" (slowdown %d)", e.SlowdownC)
	}
	parts := []string{clock, power, temp}
	if g.PCIeGen > 0 {
		parts = append(parts, fmt.Sprintf("PCIe Gen%d x%d", g.PCIeGen, g.PCIeWidth))
	}
	if len(g.Throttle) > 0 {
		parts = append(parts, s.warn.Render("throttle: "+strings.Join(g.Throttle, ", ")))
	}
	return parts
}

// verdictMark is a verdict's glyph.
func verdictMark(s *styles, v hwbench.Verdict) string {
	switch v {
	case hwbench.OK:
		return s.good.Render("✓")
	case hwbench.Below:
		return s.warn.Render("!")
	case hwbench.Fault:
		return s.bad.Render("✗")
	}
	return s.dim.Render("·")
}

// verdictBar is a bar coloured by the verdict.
func verdictBar(s *styles, v hwbench.Verdict, f float64, w int) string {
	st := s.progressFull
	switch v {
	case hwbench.OK:
		st = s.good
	case hwbench.Below:
		st = s.warn
	case hwbench.Fault:
		st = s.bad
	}
	f = max(0, min(1, f))
	full := int(f*float64(w) + 0.5)
	return st.Render(strings.Repeat("█", full)) + s.progressBg.Render(strings.Repeat("░", w-full))
}

// spinnerGlyph is the running marker (still in tests).
func spinnerGlyph(c viewCtx) string {
	if !c.spinner {
		return c.st.accent.Render("●")
	}
	frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	return c.st.accent.Render(frames[c.frame%len(frames)])
}
