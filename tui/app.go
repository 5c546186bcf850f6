package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/quantscope/quantscope/profiler/study"
)

// modal is a question or menu drawn over the screen.
type modal int

const (
	modalNone modal = iota
	modalQuit
	modalCancel
	modalExport
	modalHandover // someone asks for control (serve)
	modalBusy     // serve runs a study on this machine: start anyway?
)

// Minimum terminal size; below it the app shows a notice instead of a
// garbled layout.
const (
	minWidth  = 60
	minHeight = 16
)

// Messages from the commands Init starts.
type (
	catalogMsg struct {
		models []ModelInfo
		err    error
	}
	cachedMsg struct {
		cached map[string]bool
		err    error
	}
	loadedMsg struct {
		recs     []study.Record
		warnings []string
		opened   int // files of Options.Open read
		err      error
	}
	toastExpiredMsg struct{ id int }
)

// Model is the root Bubble Tea model of one program: it shows the study
// of its Hub (snapshots arrive as hubMsg) and asks the hub for changes;
// it routes keys to the current screen and every other message to all
// screens, handles what they post (intents), and lays out the header,
// the current screen, the footer, the help overlay and the modals.
type Model struct {
	*app // shared with the screens
	help help.Model

	envGen  int           // the snapshot's environment generation last applied
	pending *startRequest // waiting for the answer to modalBusy
	busy    string        // Options.Busy's answer ("" when nothing else runs)
	asker   string        // who asks for control (modalHandover)

	width, height int
	screen        screen
	showHelp      bool
	modal         modal
	quitting      bool // waiting for the study to stop before quitting

	toast    string
	toastErr bool
	toastID  int
}

// New builds the application for one program on a hub of its own. ctx
// bounds the study (canceling it stops the running worker); nothing slow
// happens here: the hub probes and reads in the background.
func New(ctx context.Context, opts Options) Model {
	return NewHub(ctx, opts).NewModel(ClientOptions{Profile: opts.Profile, NoColor: opts.NoColor, Renderer: opts.Renderer})
}

// ClientOptions are what differs between the programs of one hub: who is
// watching and how their terminal draws.
type ClientOptions struct {
	// Name is who the program's user is, as the others see it (serve:
	// the SSH user).
	Name string
	// Profile is the terminal's colour profile (termenv.Ascii: none),
	// used when Renderer is nil.
	Profile termenv.Profile
	// NoColor keeps bold, faint and reverse but drops colours.
	NoColor bool
	// Renderer draws for this terminal (serve: one per SSH session, with
	// the client's colour profile); nil: one for Profile.
	Renderer *lipgloss.Renderer
}

// NewModel joins a program to the hub and returns its root model. The
// program must leave (Model.Leave) when it ends.
func (h *Hub) NewModel(co ClientOptions) Model {
	opts := h.opts
	opts.Profile, opts.NoColor, opts.Renderer = co.Profile, co.NoColor, co.Renderer
	st := newStyles(opts.Profile, opts.NoColor, opts.Renderer)
	hm := help.New()
	hm.Styles = st.help
	keys := defaultKeyMap()
	keys.Doctor.SetEnabled(opts.Doctor != nil)
	keys.Tune.SetEnabled(opts.Tune != nil)
	a := &app{ctx: h.ctx, opts: opts, st: st, keys: keys, hub: h}
	setup := newSetup(a)
	a.choice = setup.choice
	a.screens = [screenCount]Screen{
		screenSetup:     setup,
		screenDashboard: newDashboard(a),
		screenHeatmap:   newHeatmap(a),
		screenDetail:    newDetail(a),
		screenDoctor:    newDoctor(a),
		screenTune:      newTune(a),
	}
	m := Model{app: a, help: hm, screen: screenSetup}
	m.me = h.join(co.Name)
	msg, _ := m.me.take()
	m.applyHub(msg)
	m.outbox = nil // nothing to start yet: the catalog is not in
	if len(m.sess.entries) > 0 || m.snap.replay != nil {
		// Joining a study under way (or a replay): it is what to see.
		m.screen = screenDashboard
	}
	if r := m.snap.replay; r != nil && r.note != "" && len(m.sess.entries) > 0 {
		m.toast, m.toastErr = r.note, true
	}
	return m
}

// Leave takes the program off its hub (serve: the SSH session ended).
// The study goes on.
func (m Model) Leave() { m.hub.leave(m.me.id) }

// Init starts the catalog read and listens to the hub.
func (m Model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.me.listen()}
	ctx := m.ctx
	if m.opts.Catalog != nil && m.snap.replay == nil {
		cat := m.opts.Catalog
		cmds = append(cmds, func() tea.Msg {
			models, err := cat.Models(ctx)
			return catalogMsg{models: models, err: err}
		})
	}
	if m.toast != "" {
		cmds = append(cmds, m.toastTimer())
	}
	if m.opts.Busy != nil {
		busy := m.opts.Busy
		cmds = append(cmds, func() tea.Msg { return busyMsg{text: busy()} })
	}
	if m.opts.EvalDir != "" {
		cmds = append(cmds, checkEval(m.opts.EvalDir, m.opts.Labels))
	}
	return tea.Batch(cmds...)
}

// busyMsg says whether another quantscope (serve) runs a study here.
type busyMsg struct{ text string }

// Close stops the study (and a running hardware check or tune search)
// and waits up to
// timeout for its worker to exit. Call it after the program returns; it
// reports whether everything stopped.
func (m Model) Close(timeout time.Duration) bool {
	m.stopScreens()
	return m.hub.Close(timeout)
}

// stopScreens ends the background work of the screens that have some.
func (m Model) stopScreens() {
	for _, s := range m.screens {
		if st, ok := s.(stopper); ok {
			st.stop()
		}
	}
}

// The screens by type, for what only one of them knows.
func (m Model) setup() *setupModel   { return m.screens[screenSetup].(*setupModel) }
func (m Model) dash() *dashModel     { return m.screens[screenDashboard].(*dashModel) }
func (m Model) heat() *heatModel     { return m.screens[screenHeatmap].(*heatModel) }
func (m Model) detail() *detailModel { return m.screens[screenDetail].(*detailModel) }
func (m Model) doc() *doctorModel    { return m.screens[screenDoctor].(*doctorModel) }
func (m Model) tune() *tuneModel     { return m.screens[screenTune].(*tuneModel) }

// applyHub installs a delivery from the hub: its snapshot (the screens
// hear of it) and notices.
func (m *Model) applyHub(msg hubMsg) tea.Cmd {
	var cmds []tea.Cmd
	if s := msg.snap; s != nil {
		m.snap, m.sess, m.frame = s, s.sess, s.frame
		m.env, m.envReady = s.env, s.envReady
		if s.envReady && s.envGen != m.envGen {
			m.envGen = s.envGen
			cmds = append(cmds, m.broadcast(envMsg{env: s.env}))
		}
		cmds = append(cmds, m.broadcast(snapshotMsg{}))
	}
	for _, n := range msg.notes {
		switch n.kind {
		case noticeControlAsked:
			m.asker = n.text
			m.modal = modalHandover
		default:
			cmds = append(cmds, m.showToast(n.text, n.err))
		}
	}
	if m.modal == modalHandover && (m.snap.request.id == 0 || m.snap.control.id != m.me.id) {
		m.modal = modalNone // settled elsewhere (timed out, the asker left)
	}
	return tea.Batch(cmds...)
}

// Update implements tea.Model.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	return m, cmd
}

// update handles msg, then what the screens posted meanwhile.
func (m *Model) update(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
	case tea.KeyMsg:
		cmd = m.handleKey(msg)
	case hubMsg:
		cmd = m.applyHub(msg)
		if m.quitting && !m.snap.running {
			m.outbox = nil
			return tea.Quit
		}
		cmd = tea.Batch(cmd, m.me.listen())
	case busyMsg:
		m.busy = msg.text
		if msg.text != "" {
			cmd = m.showToast(msg.text+": a study you start now competes with it for the hardware", true)
		}
	case exportDoneMsg:
		if msg.err != nil {
			cmd = m.showToast("export: "+msg.err.Error(), true)
		} else {
			cmd = m.showToast(msg.text, false)
		}
	case toastExpiredMsg:
		if msg.id == m.toastID {
			m.toast = ""
		}
	default:
		cmd = m.broadcast(msg)
	}
	return tea.Batch(cmd, m.drain())
}

// route gives msg to the current screen.
func (m *Model) route(msg tea.Msg) tea.Cmd { return m.sendTo(m.screen, msg) }

// sendTo gives msg to screen id.
func (m *Model) sendTo(id screen, msg tea.Msg) tea.Cmd {
	s, cmd := m.screens[id].Update(msg)
	m.screens[id] = s
	return cmd
}

// broadcast gives msg to every screen.
func (m *Model) broadcast(msg tea.Msg) tea.Cmd {
	cmds := make([]tea.Cmd, 0, len(m.screens))
	for id := range m.screens {
		cmds = append(cmds, m.sendTo(screen(id), msg))
	}
	return tea.Batch(cmds...)
}

// drain handles the intents the screens posted, in order.
func (m *Model) drain() tea.Cmd {
	var cmds []tea.Cmd
	for len(m.outbox) > 0 {
		msg := m.outbox[0]
		m.outbox = m.outbox[1:]
		cmds = append(cmds, m.intent(msg))
	}
	m.outbox = nil
	return tea.Batch(cmds...)
}

// intent does what a screen asked.
func (m *Model) intent(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case startMsg:
		return m.start(msg.req)
	case rerunMsg:
		text, err := m.hub.rerun(m.me.id, msg.exp, m.choice().duration)
		if err != nil {
			return m.showToast(err.Error(), true)
		}
		return m.showToast(text, false)
	case openDetailMsg:
		m.screen = screenDetail
		return m.sendTo(screenDetail, msg)
	case showScreenMsg:
		m.screen = msg.to
	case stopRunMsg:
		stopped, err := m.hub.stopCurrent(m.me.id)
		switch {
		case err != nil:
			return m.showToast(err.Error(), true)
		case stopped:
			return m.showToast("stopping the current run (nothing is recorded for it); the queue goes on", false)
		}
		return m.showToast("no run to stop", false)
	case cancelStudyMsg:
		switch {
		case !m.snap.running:
			return m.showToast("no study running", false)
		case !m.inControl():
			return m.showToast(controlError{holder: m.snap.control.name}.Error(), true)
		}
		m.modal = modalCancel
	case exportMenuMsg:
		m.modal = modalExport
	case toastMsg:
		return m.showToast(msg.text, msg.err)
	}
	return nil
}

// toastDuration is how long a notice stays in the footer.
const toastDuration = 6 * time.Second

func (m *Model) showToast(text string, isErr bool) tea.Cmd {
	m.toast, m.toastErr = text, isErr
	m.toastID++
	return m.toastTimer()
}

// toastTimer expires the notice showing now.
func (m *Model) toastTimer() tea.Cmd {
	id := m.toastID
	return tea.Tick(toastDuration, func(time.Time) tea.Msg { return toastExpiredMsg{id: id} })
}

// layout sizes the screens: two header lines and one footer line.
func (m *Model) layout() {
	w, h := m.width, max(1, m.height-3)
	for _, s := range m.screens {
		s.SetSize(w, h)
	}
}

func (m Model) tooSmall() bool { return m.width < minWidth || m.height < minHeight }

// handleKey routes a key: force quit, modal, help, a screen's text
// input, the global keys, then the current screen.
func (m *Model) handleKey(msg tea.KeyMsg) tea.Cmd {
	k := m.keys
	if key.Matches(msg, k.ForceQuit) && (m.modal == modalQuit || m.quitting) {
		// Second ctrl+c: leave now. Run's caller still stops the worker.
		_ = m.hub.cancelStudy(m.me.id)
		return tea.Quit
	}
	if m.modal != modalNone {
		return m.handleModal(msg)
	}
	if key.Matches(msg, k.ForceQuit) {
		return m.requestQuit()
	}
	if m.showHelp {
		if key.Matches(msg, k.Help, k.Back, k.Quit) {
			m.showHelp = false
		}
		return nil
	}
	if m.tooSmall() {
		if key.Matches(msg, k.Quit) {
			return m.requestQuit()
		}
		return nil
	}
	if c, ok := m.screens[m.screen].(capturer); ok && c.capturing() {
		return m.route(msg)
	}
	switch {
	case key.Matches(msg, k.Quit):
		return m.requestQuit()
	case key.Matches(msg, k.Help):
		m.showHelp = true
		return nil
	case key.Matches(msg, k.Setup):
		m.screen = screenSetup
		return nil
	case key.Matches(msg, k.Dashboard):
		m.screen = screenDashboard
		return nil
	case key.Matches(msg, k.Heatmap):
		m.screen = screenHeatmap
		return nil
	case key.Matches(msg, k.Doctor):
		m.screen = screenDoctor
		return nil
	case key.Matches(msg, k.Tune):
		m.screen = screenTune
		return m.route(openTuneMsg{})
	case key.Matches(msg, k.Control) && m.snap.shared:
		return m.showToast(m.hub.requestControl(m.me.id), false)
	}
	return m.route(msg)
}

// requestQuit quits, asking first while a study runs here. A program of
// a shared hub (serve) just leaves: the study goes on without it.
func (m *Model) requestQuit() tea.Cmd {
	if m.snap.running && !m.snap.shared && m.snap.replay == nil {
		m.modal = modalQuit
		return nil
	}
	m.stopScreens() // a running hardware check or tune search ends with the program
	return tea.Quit
}

// handleModal answers the open question or menu.
func (m *Model) handleModal(msg tea.KeyMsg) tea.Cmd {
	k := m.keys
	switch m.modal {
	case modalQuit:
		switch {
		case key.Matches(msg, k.Yes):
			m.modal = modalNone
			m.quitting = true
			_ = m.hub.cancelStudy(m.me.id)
			if !m.hub.running() {
				return tea.Quit
			}
		case key.Matches(msg, k.No, k.Quit):
			m.modal = modalNone
		}
	case modalCancel:
		switch {
		case key.Matches(msg, k.Yes):
			m.modal = modalNone
			if err := m.hub.cancelStudy(m.me.id); err != nil {
				return m.showToast(err.Error(), true)
			}
			return m.showToast("canceling the study: results recorded so far stay in "+m.opts.Out, false)
		case key.Matches(msg, k.No):
			m.modal = modalNone
		}
	case modalExport:
		var f exportFormat
		switch {
		case key.Matches(msg, k.ExportJSONL):
			f = exportJSONL
		case key.Matches(msg, k.ExportCSV):
			f = exportCSV
		case key.Matches(msg, k.ExportMD):
			f = exportMarkdown
		case key.Matches(msg, k.No, k.Back, k.Quit, k.ForceQuit):
			m.modal = modalNone
			return nil
		default:
			return nil
		}
		m.modal = modalNone
		return exportCmd(m.dash().rows(), len(m.sess.records), m.opts.Out, f)
	case modalHandover:
		switch {
		case key.Matches(msg, k.Yes):
			m.modal = modalNone
			m.hub.answerRequest(m.me.id, true)
		case key.Matches(msg, k.No):
			m.modal = modalNone
			m.hub.answerRequest(m.me.id, false)
		}
	case modalBusy:
		switch {
		case key.Matches(msg, k.Yes):
			m.modal = modalNone
			req := m.pending
			m.pending, m.busy = nil, ""
			if req != nil {
				req.force = true
				return m.start(*req)
			}
		case key.Matches(msg, k.No, k.Back):
			m.modal, m.pending = modalNone, nil
		}
	}
	return nil
}

// start asks the hub to plan and queue a study; the setup screen hears
// why when it refuses. When another quantscope runs a study on this
// machine (Options.Busy), it asks first.
func (m *Model) start(req startRequest) tea.Cmd {
	switch {
	case m.measuring(screenTune):
		return m.sendTo(screenSetup, startRefusedMsg{reason: "a tune search is running (5): it measures speed, so studies wait until it ends"})
	case m.measuring(screenDoctor):
		return m.sendTo(screenSetup, startRefusedMsg{reason: "the hardware check is running (Doctor screen, 4): wait for it or cancel it with x"})
	}
	text, err := m.hub.start(m.me.id, req)
	var busy busyError
	switch {
	case errors.As(err, &busy):
		m.busy, m.pending, m.modal = busy.what, &req, modalBusy
		return nil
	case errors.As(err, new(controlError)):
		return m.showToast(err.Error(), true)
	case err != nil:
		return m.sendTo(screenSetup, startRefusedMsg{reason: err.Error()})
	}
	m.screen = screenDashboard
	return m.showToast(text, false)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// View implements tea.Model.
func (m Model) View() string {
	if m.width == 0 || m.height == 0 {
		return "quantscope: starting…"
	}
	c := m.viewCtx()
	if m.tooSmall() {
		msg := fmt.Sprintf("terminal too small: %d×%d\nquantscope needs at least %d×%d\n\nenlarge the window, or press %s to quit", m.width, m.height, minWidth, minHeight, m.keys.Quit.Help().Key)
		return centered(msg, m.width, m.height)
	}
	header := padRight(headerLine(c, m.screen, m.width), m.width) + "\n" + padRight(statusLine(c, m.width), m.width)
	bodyH := m.height - 3
	var body string
	if m.showHelp {
		body = m.helpView(c, bodyH)
	} else {
		body = m.screens[m.screen].View()
	}
	body = strings.Join(fitLines(body, m.width, bodyH), "\n")
	view := header + "\n" + body + "\n" + m.footer()
	if m.modal != modalNone {
		view = overlay(view, m.modalView(c), m.width, m.height, m.st.mode != modePlain)
	}
	return view
}

// footer is the key hints, or a notice while one is showing.
func (m Model) footer() string {
	if m.quitting {
		return padRight(m.st.warn.Render("stopping the worker before quitting… ("+m.keys.ForceQuit.Help().Key+" again to leave now)"), m.width)
	}
	if m.toast != "" {
		st := m.st.toast
		if m.toastErr {
			st = m.st.errorText
		}
		return padRight(st.Render(truncate(m.toast, m.width)), m.width)
	}
	hm := m.help
	hm.Width = m.width
	return padRight(hm.ShortHelpView(m.withControlKey(m.shortHelp())), m.width)
}

// withControlKey puts "c ask for control" first in a shared study's
// footer while someone else has control; a replay's footer offers no key
// that changes the study.
func (m Model) withControlKey(keys []key.Binding) []key.Binding {
	if m.snap.replay != nil {
		k := m.keys
		return slices.DeleteFunc(slices.Clone(keys), func(b key.Binding) bool {
			for _, c := range []key.Binding{k.Start, k.Rerun, k.Stop, k.Cancel} {
				if slices.Equal(b.Keys(), c.Keys()) && b.Help().Desc == c.Help().Desc {
					return true
				}
			}
			return false
		})
	}
	if !m.snap.shared || m.snap.control.id == m.me.id || m.showHelp {
		return keys
	}
	ctl := m.keys.Control
	if m.snap.control.id == 0 {
		ctl = withHelp(ctl, "c", "take control")
	}
	return append([]key.Binding{ctl}, keys...)
}

// shortHelp lists the footer's keys: the current screen's, or the help
// overlay's.
func (m Model) shortHelp() []key.Binding {
	if m.showHelp {
		k := m.keys
		return []key.Binding{withHelp(k.Back, "esc/?", "close help"), k.Quit}
	}
	return m.screens[m.screen].ShortHelp()
}

// fullHelp lists every key of the current screen in columns: the
// screen's, then the global ones.
func (m Model) fullHelp() [][]key.Binding {
	return append(m.screens[m.screen].FullHelp(), m.keys.globalGroup())
}

func (m Model) helpView(c viewCtx, h int) string {
	s := c.st
	hm := m.help
	hm.Width = m.width - 4
	var b strings.Builder
	b.WriteString(s.bold.Render("Keys on the "+screenNames[m.screen]+" screen") + "\n\n")
	b.WriteString(hm.FullHelpView(m.fullHelp()) + "\n\n")
	b.WriteString(s.dim.Render(m.keys.ForceQuit.Help().Key+" quits from anywhere (it asks while a study runs; twice leaves at once).") + "\n")
	b.WriteString(s.dim.Render("Results are appended to "+m.opts.Out+"; `quantscope report` reads them.") + "\n")
	b.WriteString(s.dim.Render("Table marks: ✓ ok · ✗ failed · ⚑ near the runtime's call-overhead floor · ≈ within noise of fp32.") + "\n")
	b.WriteString(s.dim.Render("Colours: green better than fp32, red worse; NO_COLOR keeps bold/underline instead."))
	return panel(s, "Help", b.String(), m.width, h, true)
}

// modalView draws the open question or menu; its key labels are the
// bindings' own.
func (m Model) modalView(c viewCtx) string {
	s, ks := c.st, m.keys
	k := func(b key.Binding) string { return s.key.Render(b.Help().Key) }
	var body string
	switch m.modal {
	case modalQuit:
		body = s.bold.Render("A study is running. Quit?") + "\n\n" +
			"The current run is stopped and its worker ended;\nresults recorded so far stay in " + m.opts.Out + ".\n\n" +
			k(ks.Yes) + " quit   " + k(ks.No) + " keep running"
	case modalCancel:
		body = s.bold.Render("Cancel the study?") + "\n\n" +
			"The current run is stopped and the queue dropped;\nresults recorded so far stay in " + m.opts.Out + ".\n\n" +
			k(ks.Yes) + " cancel study   " + k(ks.No) + " keep running"
	case modalHandover:
		body = s.bold.Render(m.asker+" asks for control of the study") + "\n\n" +
			"Hand over, and " + m.asker + " can start, stop and cancel runs;\nyou keep watching. Unanswered, control passes in " + fmtDuration(requestTimeout) + ".\n\n" +
			k(ks.Yes) + " hand over   " + k(ks.No) + " keep control"
	case modalBusy:
		body = s.bold.Render("Another study runs on this machine") + "\n\n" +
			m.busy + ".\nRunning yours at the same time spoils both sets of numbers.\n\n" +
			k(ks.Yes) + " start anyway   " + k(ks.No) + " not now"
	case modalExport:
		body = s.bold.Render("Export the results") + "\n\n" +
			k(ks.ExportJSONL) + "  JSON lines: show where the results file is\n" +
			k(ks.ExportCSV) + "  CSV      → " + exportPath(m.opts.Out, exportCSV) + "\n" +
			k(ks.ExportMD) + "  Markdown → " + exportPath(m.opts.Out, exportMarkdown) + "\n\n" +
			k(ks.Back) + " close"
	}
	return s.modal.Render(body)
}

// overlay draws box centred over view; reset ends the styles of the
// cut-off left part first (not needed, nor wanted, in plain mode).
func overlay(view, box string, w, h int, reset bool) string {
	rs := ""
	if reset {
		rs = "\x1b[0m"
	}
	lines := strings.Split(view, "\n")
	boxLines := strings.Split(box, "\n")
	bw := 0
	for _, l := range boxLines {
		bw = max(bw, width(l))
	}
	bw = min(bw, w)
	x := max(0, (w-bw)/2)
	y := max(0, (h-len(boxLines))/2)
	for i, bl := range boxLines {
		row := y + i
		if row >= len(lines) {
			break
		}
		bg := lines[row]
		left := ansi.Truncate(bg, x, "")
		right := ansi.TruncateLeft(bg, x+bw, "")
		lines[row] = padRight(left, x) + rs + padRight(truncate(bl, bw), bw) + rs + right
	}
	return strings.Join(lines, "\n")
}

// loadResults reads the results file out (absent is fine: nothing run yet)
// and each file of open (absent is an error). Warnings name the file and
// line skipped; a file that cannot be read at all is an error after the
// others are read.
func loadResults(out string, open []string) loadedMsg {
	var msg loadedMsg
	read := func(path string, prefix bool) error {
		recs, warns, err := study.ReadResults(path)
		msg.recs = append(msg.recs, recs...)
		for _, w := range warns {
			ws := w.String()
			if prefix {
				ws = path + " " + ws
			}
			msg.warnings = append(msg.warnings, ws)
		}
		return err
	}
	var errs []error
	if err := read(out, len(open) > 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, p := range open {
		if err := read(p, true); err != nil {
			errs = append(errs, err)
			continue
		}
		msg.opened++
	}
	msg.err = errors.Join(errs...)
	return msg
}
