package tui

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/profiler/evaluate"
	"github.com/quantscope/quantscope/profiler/tune"
)

// TuneRequest is what the Tune screen asks TuneFunc to search.
type TuneRequest struct {
	Model     string // catalog name or .onnx path
	Budget    string // gate syntax: acc-drop<=0.5, cos>=0.999
	Objective string // throughput, latency or size
	EP        string
	// EvalDir and Labels are the setup screen's labelled images ("" none),
	// EvalOverrides the preprocessing flags.
	EvalDir, Labels string
	EvalOverrides   evaluate.Overrides
	Optimize        bool
}

// TuneFunc runs a precision search, calling onStep from its goroutine for
// each candidate as it starts and as it is measured. It runs inside a
// tea.Cmd and must stop promptly when ctx is canceled.
type TuneFunc func(ctx context.Context, req TuneRequest, onStep func(tune.Step)) (*tune.Result, error)

// tuneObjectives is the objective cycle of the form.
var tuneObjectives = []string{"throughput", "latency", "size"}

// tuneEvent is a step or the end of a search, sent from the search's
// goroutine to the UI through a channel a tea.Cmd reads.
type tuneEvent struct {
	step *tune.Step
	res  *tune.Result
	err  error
	done bool
}

// tuneStepMsg delivers one event of search gen.
type tuneStepMsg struct {
	gen int
	ev  tuneEvent
}

// tuneField is the focused field of the form.
type tuneField int

const (
	fieldBudget tuneField = iota
	fieldObjective
	tuneFields
)

// tuneModel is the Tune screen: a form (model, budget, objective), then the
// search live — each candidate on a speed × fidelity scatter as it is
// measured, the best so far, and why each step was taken. It keeps the
// Screen contract.
type tuneModel struct {
	app  *app
	st   *styles
	keys keyMap
	run  TuneFunc

	model     string // from the setup screen's selection
	ep        string
	evalDir   string
	labels    string
	overrides evaluate.Overrides
	optimize  bool
	budget    textinput.Model
	editing   bool
	objective int
	field     tuneField

	// accAxis: the scatter's fidelity axis is accuracy lost (the search's
	// budget is acc-drop), else cosine.
	accAxis bool

	running bool
	gen     int
	cancel  context.CancelFunc
	events  chan tuneEvent
	steps   []tune.Step // measured (and the one measuring last)
	res     *tune.Result
	err     string
	offset  int // scroll of the steps list

	width, height int
}

func newTuneModel(st *styles, k keyMap, run TuneFunc, overrides evaluate.Overrides) tuneModel {
	in := textinput.New()
	in.Prompt = ""
	in.CharLimit = 200
	in.SetValue("cos>=0.999")
	return tuneModel{st: st, keys: k, run: run, budget: in, ep: "cpu", overrides: overrides}
}

func newTune(a *app) *tuneModel {
	t := newTuneModel(a.st, a.keys, a.opts.Tune, a.opts.EvalOverrides)
	t.app = a
	return &t
}

// Update implements Screen: openTuneMsg sets the form from the setup
// screen's choice; a search starts only while nothing else measures.
func (t *tuneModel) Update(msg tea.Msg) (Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case openTuneMsg:
		c := t.app.choice()
		t.configure(c.model, c.ep, c.evalDir, c.labels, c.optimize)
		return t, nil
	case tea.KeyMsg:
		if !t.editing && !t.running && key.Matches(msg, t.keys.Start) {
			switch {
			case t.app.running():
				t.app.post(toastMsg{text: "a study is running: tune measures speed, so it waits until the study ends", err: true})
				return t, nil
			case t.app.measuring(screenDoctor):
				t.app.post(toastMsg{text: "the hardware check is running: tune measures speed, so it waits until the check ends", err: true})
				return t, nil
			}
		}
	}
	next, cmd := t.update(msg)
	*t = next
	return t, cmd
}

// measuring reports whether a search runs.
func (t *tuneModel) measuring() bool { return t.running }

// SetSize implements Screen.
func (t *tuneModel) SetSize(w, h int) { t.width, t.height = w, h }

// configure takes the model, EP and images from the setup screen (when no
// search runs).
func (t *tuneModel) configure(model, ep, evalDir, labels string, optimize bool) {
	if t.running {
		return
	}
	t.model, t.ep, t.optimize = model, ep, optimize
	if evalDir != t.evalDir && evalDir != "" && t.budget.Value() == "cos>=0.999" {
		t.budget.SetValue("acc-drop<=0.5")
	}
	t.evalDir, t.labels = evalDir, labels
}

// capturing reports whether keys go to the budget input.
func (t tuneModel) capturing() bool { return t.editing }

// update handles keys and the search's events.
func (t tuneModel) update(msg tea.Msg) (tuneModel, tea.Cmd) {
	switch msg := msg.(type) {
	case tuneStepMsg:
		if msg.gen != t.gen {
			return t, nil
		}
		return t.event(msg.ev)
	case tea.KeyMsg:
		return t.key(msg)
	}
	return t, nil
}

func (t tuneModel) key(msg tea.KeyMsg) (tuneModel, tea.Cmd) {
	k := t.keys
	if t.editing {
		switch msg.Type {
		case tea.KeyEnter, tea.KeyEsc:
			t.editing = false
			t.budget.Blur()
			return t, nil
		}
		var cmd tea.Cmd
		t.budget, cmd = t.budget.Update(msg)
		return t, cmd
	}
	switch {
	case key.Matches(msg, k.Start) && !t.running:
		return t.start()
	case key.Matches(msg, k.Cancel) && t.running:
		t.cancel()
		t.err = "canceling…"
	case key.Matches(msg, k.NextPane), key.Matches(msg, k.Down) && !t.running:
		t.field = (t.field + 1) % tuneFields
	case key.Matches(msg, k.Up) && !t.running:
		t.field = (t.field + tuneFields - 1) % tuneFields
	case key.Matches(msg, k.EditOptions) && !t.running && t.field == fieldBudget:
		t.editing = true
		t.budget.CursorEnd()
		return t, t.budget.Focus()
	case (key.Matches(msg, k.Left) || key.Matches(msg, k.Right) || key.Matches(msg, k.Toggle)) && !t.running && t.field == fieldObjective:
		d := 1
		if key.Matches(msg, k.Left) {
			d = len(tuneObjectives) - 1
		}
		t.objective = (t.objective + d) % len(tuneObjectives)
	case key.Matches(msg, k.PageDown), key.Matches(msg, k.Down):
		t.offset++
	case key.Matches(msg, k.PageUp), key.Matches(msg, k.Up):
		t.offset = max(0, t.offset-1)
	}
	return t, nil
}

// start launches the search in a tea.Cmd.
func (t tuneModel) start() (tuneModel, tea.Cmd) {
	switch {
	case t.run == nil:
		t.err = "tune is not available in this build"
		return t, nil
	case t.model == "":
		t.err = "pick a model on the setup screen (1) first: tune searches the first selected one"
		return t, nil
	case strings.TrimSpace(t.budget.Value()) == "":
		t.err = "give a budget (o edits it), e.g. cos>=0.999 or acc-drop<=0.5"
		return t, nil
	}
	if strings.Contains(t.budget.Value(), "acc") && t.evalDir == "" {
		t.err = "an acc-drop budget needs labelled images: set Images on the setup screen (1)"
		return t, nil
	}
	req := TuneRequest{Model: t.model, Budget: strings.TrimSpace(t.budget.Value()), Objective: tuneObjectives[t.objective],
		EP: t.ep, EvalDir: t.evalDir, Labels: t.labels, EvalOverrides: t.overrides, Optimize: t.optimize}
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan tuneEvent, 64)
	t.accAxis = budgetNamesAccuracy(req.Budget)
	t.gen++
	t.running, t.cancel, t.events, t.steps, t.res, t.err, t.offset = true, cancel, events, nil, nil, "", 0
	run := t.run
	go func() {
		res, err := run(ctx, req, func(s tune.Step) {
			st := s
			events <- tuneEvent{step: &st}
		})
		events <- tuneEvent{res: res, err: err, done: true}
		close(events)
	}()
	return t, waitTune(t.gen, events)
}

// waitTune reads the search's next event.
func waitTune(gen int, events <-chan tuneEvent) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-events
		if !ok {
			return tuneStepMsg{gen: gen, ev: tuneEvent{done: true}}
		}
		return tuneStepMsg{gen: gen, ev: ev}
	}
}

// event folds one event of the running search in.
func (t tuneModel) event(ev tuneEvent) (tuneModel, tea.Cmd) {
	if ev.step != nil {
		s := *ev.step
		if n := len(t.steps); n > 0 && t.steps[n-1].N == s.N {
			t.steps[n-1] = s
		} else {
			t.steps = append(t.steps, s)
		}
		if s.Best {
			for i := range t.steps {
				t.steps[i].Best = t.steps[i].N == s.N
			}
		}
		return t, waitTune(t.gen, t.events)
	}
	if ev.done {
		if t.running && (ev.res != nil || ev.err != nil) {
			t.running = false
			t.cancel()
			t.res = ev.res
			if ev.err != nil {
				t.err = ev.err.Error()
			}
			return t, nil
		}
		t.running = false
		return t, nil
	}
	return t, waitTune(t.gen, t.events)
}

// stop cancels a running search (when the application quits).
func (t *tuneModel) stop() {
	if t.running && t.cancel != nil {
		t.cancel()
	}
}

// ShortHelp implements Screen: the focused field's key.
func (t tuneModel) ShortHelp() []key.Binding {
	k := t.keys
	if t.editing {
		return []key.Binding{withHelp(k.Enter, "enter", "done")}
	}
	if t.running {
		return []key.Binding{withHelp(k.Cancel, "x", "cancel search"), withHelp(k.Down, "↑/↓", "scroll steps"), k.Help, k.Quit}
	}
	field := withHelp(k.EditOptions, "o", "edit budget")
	if t.field == fieldObjective {
		field = withHelp(k.Left, "←/→", "objective")
	}
	return []key.Binding{withHelp(k.Start, "enter", "start search"), field, k.NextPane, k.Help, k.Quit}
}

// FullHelp implements Screen.
func (t tuneModel) FullHelp() [][]key.Binding {
	k := t.keys
	return [][]key.Binding{{withHelp(k.Start, "enter", "start search"), withHelp(k.EditOptions, "o", "edit budget"),
		withHelp(k.Left, "←/→", "cycle objective"), withHelp(k.NextPane, "tab/↑/↓", "next field"), withHelp(k.Cancel, "x", "cancel search")},
		k.navGroup()}
}

// View implements Screen.
func (t tuneModel) View() string {
	s := t.st
	w, h := max(40, t.width), max(10, t.height)
	rightW := min(44, w/3)
	leftW := w - rightW
	plotH := max(6, h/2)
	left := panel(s, t.plotTitle(), t.scatter(leftW-2, plotH-2), leftW, plotH, true) + "\n" +
		panel(s, "Steps · why each candidate", t.stepsView(leftW-2, h-plotH-2), leftW, h-plotH, false)
	right := panel(s, "Search", t.formView(rightW-2), rightW, h/2, !t.running) + "\n" +
		panel(s, "Best so far", t.bestView(rightW-2), rightW, h-h/2, false)
	return joinColumns(left, right)
}

func (t tuneModel) objectiveName() string { return tuneObjectives[t.objective] }

func (t tuneModel) plotTitle() string {
	x := "samples/s"
	switch t.objectiveName() {
	case "latency":
		x = "p50 latency"
	case "size":
		x = "file size"
	}
	y := "cosine"
	if t.accAxis {
		y = "accuracy Δ"
	}
	return "Candidates · " + x + " (→ better) × " + y + " (↑ better)"
}

// budgetNamesAccuracy reports whether a budget limits accuracy lost.
func budgetNamesAccuracy(budget string) bool {
	return strings.Contains(strings.ToLower(budget), "acc")
}

// xLabel writes a scatter x value (1/latency, 1/size: right is better) in
// the objective's own unit.
func (t tuneModel) xLabel(x float64) string {
	switch t.objectiveName() {
	case "latency":
		return fmt.Sprintf("%.3g ms", 1/x)
	case "size":
		return fmt.Sprintf("%.3g MB", 1/x)
	}
	return fmt.Sprintf("%.4g/s", x)
}

func (t tuneModel) formView(w int) string {
	s := t.st
	mark := func(f tuneField) string {
		if f == t.field && !t.running {
			return "▸"
		}
		return " "
	}
	model := t.model
	if model == "" {
		model = s.dim.Render("pick one on the setup screen (1)")
	}
	budget := "‹" + t.budget.Value() + "›"
	if t.editing {
		budget = t.budget.View()
	}
	images := "none"
	if t.evalDir != "" {
		images = t.evalDir
	}
	lines := []string{
		" Model     " + truncate(displayModel(model), w-11),
		mark(fieldBudget) + "Budget    " + budget,
		mark(fieldObjective) + "Objective ‹" + t.objectiveName() + "›",
		" EP        " + t.ep,
		" Images    " + truncate(images, w-11),
		"",
	}
	switch {
	case t.running:
		lines = append(lines, s.accent.Render(fmt.Sprintf("searching… %d candidates measured", t.measured())))
	case t.res != nil:
		lines = append(lines, s.good.Render(fmt.Sprintf("done: %d candidates", len(t.res.Steps))))
	default:
		lines = append(lines, s.dim.Render("enter starts the search:"), s.dim.Render("uniform precisions first, then"), s.dim.Render("the most sensitive blocks"), s.dim.Render("restored until the budget holds"))
	}
	if t.err != "" {
		lines = append(lines, s.errorText.Render(truncate(t.err, w)))
	}
	return strings.Join(lines, "\n")
}

func (t tuneModel) measured() int {
	n := 0
	for _, st := range t.steps {
		if st.Measured {
			n++
		}
	}
	return n
}

// best is the best passing step so far.
func (t tuneModel) best() (tune.Step, bool) {
	if t.res != nil {
		return t.res.Winner, true
	}
	for _, st := range t.steps {
		if st.Best {
			return st, true
		}
	}
	return tune.Step{}, false
}

func (t tuneModel) bestView(w int) string {
	s := t.st
	b, ok := t.best()
	if !ok {
		return s.dim.Render("no candidate holds the budget yet")
	}
	obj := tune.Objective(t.objectiveName())
	lines := []string{s.bold.Render(truncate(b.Spec, w)), obj.Format(b.M), fidelityLine(b)}
	if t.res != nil {
		base := t.res.Baseline
		if base.Throughput > 0 && b.M.Throughput > 0 {
			lines = append(lines, fmt.Sprintf("%.2f× fp32 throughput", b.M.Throughput/base.Throughput))
		}
		if base.FileBytes > 0 && b.M.FileBytes > 0 {
			lines = append(lines, fmt.Sprintf("%.3f× fp32 size", float64(b.M.FileBytes)/float64(base.FileBytes)))
		}
		for _, n := range t.res.Notes {
			for _, l := range wrap(n, w) {
				lines = append(lines, s.dim.Render(l))
			}
		}
	}
	return strings.Join(lines, "\n")
}

// fidelityLine is a step's fidelity in a few words.
func fidelityLine(st tune.Step) string {
	var parts []string
	if d, ok := st.M.Accuracy.Top1Diff(); ok {
		parts = append(parts, "acc Δ "+accuracy.FormatPoints(d.Diff)+" pt")
	}
	if f := st.M.Fidelity; f != nil {
		parts = append(parts, fmt.Sprintf("cos %.5f", f.CosineMean))
	}
	return strings.Join(parts, " · ")
}

func (t tuneModel) stepsView(w, h int) string {
	s := t.st
	if len(t.steps) == 0 {
		return s.dim.Render("no search yet")
	}
	var lines []string
	for _, st := range t.steps {
		icon, ist := "○", s.dim
		switch {
		case !st.Measured:
			icon, ist = "…", s.accent
		case st.Err != "":
			icon, ist = "✗", s.bad
		case st.Best:
			icon, ist = "★", s.good
		case st.Pass:
			icon, ist = "●", s.good
		default:
			icon, ist = "○", s.bad
		}
		head := fmt.Sprintf("%s %d %s", ist.Render(icon), st.N, st.Spec)
		if st.Measured && st.Err == "" {
			head += s.dim.Render(" · " + fidelityLine(st))
		}
		lines = append(lines, truncate(head, w), s.dim.Render(truncate("   "+st.Why, w)))
	}
	off := min(t.offset, max(0, len(lines)-h))
	if !t.running && t.offset == 0 && len(lines) > h {
		off = len(lines) - h
	}
	if t.running {
		off = max(0, len(lines)-h)
	}
	return strings.Join(lines[off:min(len(lines), off+h)], "\n")
}

// point is a candidate's place on the scatter.
func (t tuneModel) point(st tune.Step) (x, y float64, ok bool) {
	m := st.M
	switch t.objectiveName() {
	case "latency":
		if m.P50Ms <= 0 {
			return 0, 0, false
		}
		x = 1 / m.P50Ms
	case "size":
		if m.FileBytes <= 0 {
			return 0, 0, false
		}
		x = 1e6 / float64(m.FileBytes)
	default:
		if m.Throughput <= 0 {
			return 0, 0, false
		}
		x = m.Throughput
	}
	if t.accAxis {
		d, ok := m.Accuracy.Drop()
		if !ok {
			return 0, 0, false
		}
		return x, -d, true
	}
	if m.Fidelity == nil || math.IsNaN(m.Fidelity.CosineMean) {
		return 0, 0, false
	}
	return x, m.Fidelity.CosineMean, true
}

// scatter draws the measured candidates: ★ best, ● holds the budget, ○
// breaks it.
func (t tuneModel) scatter(w, h int) string {
	s := t.st
	type pt struct {
		x, y float64
		st   tune.Step
	}
	var pts []pt
	for _, st := range t.steps {
		if x, y, ok := t.point(st); ok && st.Measured && st.Err == "" {
			pts = append(pts, pt{x, y, st})
		}
	}
	if len(pts) == 0 {
		return s.dim.Render("candidates appear here as they are measured")
	}
	minX, maxX, minY, maxY := pts[0].x, pts[0].x, pts[0].y, pts[0].y
	for _, p := range pts {
		minX, maxX = math.Min(minX, p.x), math.Max(maxX, p.x)
		minY, maxY = math.Min(minY, p.y), math.Max(maxY, p.y)
	}
	if maxX == minX {
		minX, maxX = minX*0.9, maxX*1.1+1e-9
	}
	accMode := t.accAxis
	if maxY == minY {
		pad := 1e-4
		if accMode {
			pad = 0.5
		}
		minY, maxY = minY-pad, maxY+pad
	}
	yLabel := func(v float64) string {
		if accMode {
			return fmt.Sprintf("%+.1fpt", v)
		}
		return fmt.Sprintf("%.4f", v)
	}
	lw := max(width(yLabel(maxY)), width(yLabel(minY))) + 1
	gw, gh := max(4, w-lw-1), max(2, h-1)
	grid := make([][]string, gh)
	for i := range grid {
		grid[i] = make([]string, gw)
		for j := range grid[i] {
			grid[i][j] = " "
		}
	}
	for _, p := range pts {
		cx := int(math.Round((p.x - minX) / (maxX - minX) * float64(gw-1)))
		cy := gh - 1 - int(math.Round((p.y-minY)/(maxY-minY)*float64(gh-1)))
		mark := s.bad.Render("○")
		switch {
		case p.st.Best:
			mark = s.good.Render("★")
		case p.st.Pass:
			mark = s.good.Render("●")
		}
		if grid[cy][cx] == " " || p.st.Best {
			grid[cy][cx] = mark
		}
	}
	var lines []string
	for i, row := range grid {
		label := strings.Repeat(" ", lw)
		switch i {
		case 0:
			label = padLeft(yLabel(maxY), lw)
		case gh - 1:
			label = padLeft(yLabel(minY), lw)
		}
		lines = append(lines, s.dim.Render(label)+"│"+strings.Join(row, ""))
	}
	xl, xr := t.xLabel(minX), t.xLabel(maxX)
	lines = append(lines, strings.Repeat(" ", lw)+"└"+s.dim.Render(spread(xl, xr, gw)))
	return strings.Join(lines, "\n")
}
