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

// screen is one of the application's screens.
type screen int

const (
	screenSetup screen = iota
	screenDashboard
	screenHeatmap
	screenDetail
	screenDoctor
	screenTune
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

// viewCtx is what every screen needs to draw and handle keys.
type viewCtx struct {
	st            *styles
	keys          keyMap
	sess          *session
	env           Environment
	envReady      bool
	now           time.Time
	running       bool
	frame         int
	spinner       bool
	opts          *Options
	setupDuration time.Duration
	// ep is the execution provider in use: the running experiment's, else
	// the one the setup screen would start on.
	ep   string
	hub  *snapshot             // control and replay state
	me   int                   // this program's client id on the hub
	sens map[string]*sensState // layer rankings by sensKey
}

// Model is the root Bubble Tea model of one program: it shows the study
// of its Hub (snapshots arrive as hubMsg), asks the hub for changes,
// routes keys to the current screen and data to their owners.
type Model struct {
	ctx  context.Context
	opts Options
	st   *styles
	keys keyMap
	help help.Model

	hub      *Hub
	me       *client
	snap     *snapshot
	sess     *session // snap.sess
	env      Environment
	envReady bool
	envGen   int           // the snapshot's environment generation last applied
	pending  *startRequest // waiting for the answer to modalBusy
	busy     string        // Options.Busy's answer at start ("" when nothing else runs)
	// catalogReady and autoStarted: Options.AutoStart starts the study
	// once the catalog and the environment are in.
	catalogReady, autoStarted bool
	asker                     string // who asks for control (modalHandover)

	width, height int
	screen        screen
	showHelp      bool
	modal         modal
	quitting      bool // waiting for the study to stop before quitting

	setup  setupModel
	dash   dashModel
	heat   heatModel
	detail detailModel
	doc    doctorModel
	tune   tuneModel
	sens   map[string]*sensState

	toast    string
	toastErr bool
	toastID  int

	frame int
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
	m := Model{
		ctx:    h.ctx,
		opts:   opts,
		st:     st,
		keys:   keys,
		help:   hm,
		hub:    h,
		setup:  newSetup(opts),
		dash:   newDashboard(),
		tune:   newTuneModel(st, defaultKeyMap(), opts.Tune, opts.EvalOverrides),
		sens:   map[string]*sensState{},
		screen: screenSetup,
	}
	m.me = h.join(co.Name)
	msg, _ := m.me.take()
	m.applyHub(msg)
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

// Close stops the study (and a running hardware check or tune search) and waits up to
// timeout for its worker to exit. Call it after the program returns; it
// reports whether everything stopped.
func (m Model) Close(timeout time.Duration) bool {
	m.doc.stop()
	m.tune.stop()
	return m.hub.Close(timeout)
}

func (m Model) viewCtx() viewCtx {
	return viewCtx{
		st: m.st, keys: m.keys, sess: m.sess, env: m.env, envReady: m.envReady,
		now: m.opts.Now(), running: m.snap.running || m.sess.running(), frame: m.frame,
		spinner: !m.opts.NoSpinner, opts: &m.opts, setupDuration: m.setup.duration,
		ep: m.currentEP(), hub: m.snap, me: m.me.id, sens: m.sens,
	}
}

// applyHub installs a delivery from the hub: its snapshot and notices.
func (m *Model) applyHub(msg hubMsg) tea.Cmd {
	var cmds []tea.Cmd
	if s := msg.snap; s != nil {
		m.snap, m.sess, m.frame = s, s.sess, s.frame
		m.env, m.envReady = s.env, s.envReady
		if s.envReady && s.envGen != m.envGen {
			m.envGen = s.envGen
			m.setup.setEnvironment(s.env)
		}
		if m.width > 0 {
			m.dash.redraw(m.viewCtx())
		}
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

// currentEP is the execution provider in use: the active experiment's, else
// the setup screen's choice.
func (m Model) currentEP() string {
	if a := m.sess.active; a >= 0 && a < len(m.sess.entries) {
		return m.sess.entries[a].exp.EP
	}
	return m.setup.currentEP()
}

// Update implements tea.Model.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		return m, nil
	case tea.KeyMsg:
		return m.handleKey(msg)
	case hubMsg:
		cmd := m.applyHub(msg)
		if m.quitting && !m.snap.running {
			return m, tea.Quit
		}
		nm, start := m.autoStart()
		return nm, tea.Batch(cmd, start, m.me.listen())
	case busyMsg:
		m.busy = msg.text
		if msg.text != "" {
			return m, m.showToast(msg.text+": a study you start now competes with it for the hardware", true)
		}
		return m, nil
	case catalogMsg:
		m.setup.setModels(msg.models, msg.err)
		m.catalogReady = true
		if msg.err != nil || m.opts.Catalog == nil {
			return m, nil
		}
		names := make([]string, len(msg.models))
		for i, mi := range msg.models {
			names[i] = mi.Name
		}
		cat, ctx := m.opts.Catalog, m.ctx
		cached := func() tea.Msg {
			c, err := cat.Cached(ctx, names)
			return cachedMsg{cached: c, err: err}
		}
		nm, cmd := m.autoStart()
		return nm, tea.Batch(cached, cmd)
	case cachedMsg:
		if msg.err == nil {
			m.setup.setCached(msg.cached)
		}
		return m, nil
	case pathCheckedMsg:
		m.setup.pathChecked(msg)
		return m, nil
	case sensDoneMsg:
		st := &sensState{res: msg.res}
		if msg.err != nil {
			st.err = msg.err.Error()
		}
		m.sens[msg.key] = st
		return m, nil
	case tuneStepMsg:
		var cmd tea.Cmd
		m.tune, cmd = m.tune.Update(msg)
		return m, cmd
	case evalCheckedMsg:
		m.setup.evalChecked(msg)
		return m, nil
	case exportDoneMsg:
		if msg.err != nil {
			return m, m.showToast("export: "+msg.err.Error(), true)
		}
		return m, m.showToast(msg.text, false)
	case toastExpiredMsg:
		if msg.id == m.toastID {
			m.toast = ""
		}
		return m, nil
	case doctorEventMsg:
		return m, m.doc.onEvent(msg)
	case doctorDoneMsg:
		if msg.gen != m.doc.gen {
			return m, nil
		}
		m.doc.onDone(msg, m.opts.Now())
		if msg.err != nil {
			return m, m.showToast("hardware check: "+msg.err.Error(), true)
		}
		return m, m.showToast("hardware check done: "+msg.rep.Verdict.Label(), msg.rep.Verdict.Rank() > 0)
	}
	return m, nil
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
	m.setup.width, m.setup.height = w, h
	m.dash.width, m.dash.height = w, h
	m.dash.table.body = bodyRows(m.dash.lowerHeight() - 2)
	m.heat.width, m.heat.hgt = w, h
	m.detail.width, m.detail.height = w, h
	m.doc.width, m.doc.height = w, h
	m.tune.SetSize(w, h)
	if !m.tooSmall() {
		m.dash.redraw(m.viewCtx())
	}
}

func (m Model) tooSmall() bool { return m.width < minWidth || m.height < minHeight }

// handleKey routes a key: force quit, modal, help, text input, globals,
// then the screen.
func (m Model) handleKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.keys
	if msg.Type == tea.KeyCtrlC && (m.modal == modalQuit || m.quitting) {
		// Second ctrl+c: leave now. Run's caller still stops the worker.
		_ = m.hub.cancelStudy(m.me.id)
		return m, tea.Quit
	}
	if m.modal != modalNone {
		return m.handleModal(msg)
	}
	if m.showHelp {
		if key.Matches(msg, k.Help, k.Back, k.Quit) && msg.Type != tea.KeyCtrlC {
			m.showHelp = false
			return m, nil
		}
		if msg.Type != tea.KeyCtrlC {
			return m, nil
		}
	}
	if m.tooSmall() {
		if key.Matches(msg, k.Quit) {
			return m.requestQuit()
		}
		return m, nil
	}
	c := m.viewCtx()
	if m.screen == screenTune && m.tune.capturing() && msg.Type != tea.KeyCtrlC {
		var cmd tea.Cmd
		m.tune, cmd = m.tune.Update(msg)
		return m, cmd
	}
	if m.screen == screenSetup && m.setup.capturing() && msg.Type != tea.KeyCtrlC {
		var cmd tea.Cmd
		var req *startRequest
		m.setup, cmd, req = m.setup.update(msg, k)
		if req != nil {
			return m.start(*req)
		}
		return m, cmd
	}
	switch {
	case key.Matches(msg, k.Quit):
		return m.requestQuit()
	case key.Matches(msg, k.Help):
		m.showHelp = true
		return m, nil
	case key.Matches(msg, k.Setup):
		m.screen = screenSetup
		return m, nil
	case key.Matches(msg, k.Dashboard):
		m.screen = screenDashboard
		return m, nil
	case key.Matches(msg, k.Heatmap):
		m.screen = screenHeatmap
		return m, nil
	case key.Matches(msg, k.Doctor):
		m.screen = screenDoctor
		return m, nil
	case key.Matches(msg, k.Tune) && m.opts.Tune != nil:
		m.openTune()
		return m, nil
	case m.screen == screenDoctor:
		return m.doctorKey(msg)
	case key.Matches(msg, k.Control) && m.snap.shared:
		return m, m.showToast(m.hub.requestControl(m.me.id), false)
	case m.screen == screenTune:
		if key.Matches(msg, k.Start) && !m.tune.running && (m.snap.running || m.sess.running()) {
			return m, m.showToast("a study is running: tune measures speed, so it waits until the study ends", true)
		}
		if key.Matches(msg, k.Start) && !m.tune.running && m.doc.running {
			return m, m.showToast("the hardware check is running: tune measures speed, so it waits until the check ends", true)
		}
		var cmd tea.Cmd
		m.tune, cmd = m.tune.Update(msg)
		return m, cmd
	case key.Matches(msg, k.Stop) && m.screen != screenSetup:
		stopped, err := m.hub.stopCurrent(m.me.id)
		switch {
		case err != nil:
			return m, m.showToast(err.Error(), true)
		case stopped:
			return m, m.showToast("stopping the current run (nothing is recorded for it); the queue goes on", false)
		}
		return m, m.showToast("no run to stop", false)
	case key.Matches(msg, k.Cancel) && m.screen != screenSetup:
		switch {
		case !m.snap.running:
			return m, m.showToast("no study running", false)
		case !m.inControl():
			return m, m.showToast(controlError{holder: m.snap.control.name}.Error(), true)
		}
		m.modal = modalCancel
		return m, nil
	case key.Matches(msg, k.Export) && m.screen != screenSetup:
		m.modal = modalExport
		return m, nil
	case key.Matches(msg, k.Back) && m.screen == screenDetail:
		m.screen = m.detail.back
		return m, nil
	case key.Matches(msg, k.Back) && m.screen == screenHeatmap:
		m.screen = screenDashboard
		return m, nil
	}
	switch m.screen {
	case screenSetup:
		var cmd tea.Cmd
		var req *startRequest
		m.setup, cmd, req = m.setup.update(msg, k)
		if req != nil {
			return m.start(*req)
		}
		return m, cmd
	case screenDashboard:
		var act dashAction
		m.dash, act = m.dash.update(msg, k, c)
		if act.open != nil {
			m.openDetail(*act.open, act.host, screenDashboard)
		}
		if act.rerun != nil {
			return m.rerun(*act.rerun)
		}
		m.dash.redraw(m.viewCtx())
	case screenHeatmap:
		var open *study.Experiment
		var host string
		m.heat, open, host = m.heat.update(msg, k, c)
		if open != nil {
			m.openDetail(*open, host, screenHeatmap)
		}
	case screenDetail:
		if key.Matches(msg, k.Rerun) {
			return m.rerun(m.detail.exp)
		}
		if key.Matches(msg, k.Layers) && m.opts.Sensitivity != nil && sensitivityFor(m.detail.exp) {
			sk := sensKey(m.detail.exp)
			if st := m.sens[sk]; st != nil && st.running {
				return m, nil
			}
			m.sens[sk] = &sensState{running: true}
			return m, rankLayers(m.ctx, m.opts.Sensitivity, m.detail.exp)
		}
		m.detail = m.detail.update(msg, k, c)
	}
	return m, nil
}

// openTune shows the Tune screen with the setup screen's first selected
// model, EP, images and fusions.
func (m *Model) openTune() {
	model := ""
	if sel := m.setup.selectedModels(); len(sel) > 0 {
		model = sel[0]
	}
	m.tune.configure(model, m.setup.eps[m.setup.ep], expandHome(m.setup.evalDir), expandHome(m.setup.labels), m.setup.fusions)
	m.screen = screenTune
}

// openDetail shows exp as measured on host (a study.Host.Key).
func (m *Model) openDetail(exp study.Experiment, host string, from screen) {
	m.detail.exp, m.detail.host, m.detail.back, m.detail.offset = exp, host, from, 0
	m.screen = screenDetail
}

// doctorKey handles a key on the Doctor screen: enter runs the check, x
// cancels it, the movement keys walk the lines.
func (m Model) doctorKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.keys
	switch {
	case key.Matches(msg, k.Enter) && !m.doc.running:
		if m.snap.running || m.sess.running() {
			return m, m.showToast("a study is running: the check would measure it too; wait for it or cancel it (x on the dashboard)", true)
		}
		if m.tune.running {
			return m, m.showToast("a tune search is running: the check would measure it too; wait for it or cancel it (x on the Tune screen)", true)
		}
		m.doc.width, m.doc.height = m.width, max(1, m.height-3)
		return m, m.doc.start(m.ctx, m.opts.Doctor, m.opts.Now())
	case key.Matches(msg, k.Cancel) && m.doc.running:
		m.doc.stop()
		return m, m.showToast("canceling the hardware check", false)
	}
	m.doc.update(msg, k)
	return m, nil
}

// requestQuit quits, asking first while a study runs here. A program of
// a shared hub (serve) just leaves: the study goes on without it.
func (m Model) requestQuit() (tea.Model, tea.Cmd) {
	if m.snap.running && !m.snap.shared && m.snap.replay == nil {
		m.modal = modalQuit
		return m, nil
	}
	m.doc.stop() // a running hardware check or tune search ends with the program
	m.tune.stop()
	return m, tea.Quit
}

// inControl reports whether this program may change the study (always,
// unless it is a replay or the hub is shared and someone else holds
// control).
func (m Model) inControl() bool {
	if m.snap.replay != nil {
		return false
	}
	return !m.snap.shared || m.snap.control.id == m.me.id || m.snap.control.id == 0
}

// handleModal answers the open question or menu.
func (m Model) handleModal(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.keys
	switch m.modal {
	case modalQuit:
		switch {
		case key.Matches(msg, k.Yes):
			m.modal = modalNone
			m.quitting = true
			_ = m.hub.cancelStudy(m.me.id)
			if !m.hub.running() {
				return m, tea.Quit
			}
			return m, nil
		case key.Matches(msg, k.No), key.Matches(msg, k.Quit):
			m.modal = modalNone
		}
	case modalCancel:
		switch {
		case key.Matches(msg, k.Yes):
			m.modal = modalNone
			if err := m.hub.cancelStudy(m.me.id); err != nil {
				return m, m.showToast(err.Error(), true)
			}
			return m, m.showToast("canceling the study: results recorded so far stay in "+m.opts.Out, false)
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
		case key.Matches(msg, k.No), key.Matches(msg, k.Back), key.Matches(msg, k.Quit):
			m.modal = modalNone
			return m, nil
		default:
			return m, nil
		}
		m.modal = modalNone
		rows := m.dash.table.sorted(m.sess.rows)
		return m, exportCmd(rows, len(m.sess.records), m.opts.Out, f)
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
				return m.queue(*req)
			}
		case key.Matches(msg, k.No), key.Matches(msg, k.Back):
			m.modal, m.pending = modalNone, nil
		}
	}
	return m, nil
}

// start asks the hub to plan and queue a study. When another quantscope
// runs a study on this machine (Options.Busy), it asks first.
func (m Model) start(req startRequest) (tea.Model, tea.Cmd) {
	if m.tune.running {
		m.setup.err = "a tune search is running (5): it measures speed, so studies wait until it ends"
		return m, nil
	}
	if m.opts.Busy != nil {
		if busy := m.opts.Busy(); busy != "" {
			m.busy, m.pending, m.modal = busy, &req, modalBusy
			return m, nil
		}
	}
	return m.queue(req)
}

// queue asks the hub to plan and queue a study now.
func (m Model) queue(req startRequest) (tea.Model, tea.Cmd) {
	if m.doc.running {
		m.setup.err = "the hardware check is running (Doctor screen, 4): wait for it or cancel it with x"
		return m, nil
	}
	text, err := m.hub.start(m.me.id, req)
	if err != nil {
		if _, ok := err.(controlError); ok {
			return m, m.showToast(err.Error(), true)
		}
		m.setup.err = err.Error()
		return m, nil
	}
	m.screen = screenDashboard
	return m, m.showToast(text, false)
}

// autoStart starts the setup screen's study once (Options.AutoStart, the
// demo) when the catalog and the environment are known.
func (m Model) autoStart() (Model, tea.Cmd) {
	if !m.opts.AutoStart || m.autoStarted || !m.catalogReady || !m.envReady {
		return m, nil
	}
	m.autoStarted = true
	cfg, err := m.setup.planConfig()
	if err != nil {
		m.setup.err = err.Error()
		return m, nil
	}
	nm, cmd := m.start(startRequest{cfg: cfg, duration: m.setup.duration})
	return nm.(Model), cmd
}

// rerun asks the hub to queue one experiment again.
func (m Model) rerun(exp study.Experiment) (tea.Model, tea.Cmd) {
	text, err := m.hub.rerun(m.me.id, exp, m.setup.duration)
	if err != nil {
		return m, m.showToast(err.Error(), true)
	}
	return m, m.showToast(text, false)
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
		msg := fmt.Sprintf("terminal too small: %d×%d\nquantscope needs at least %d×%d\n\nenlarge the window, or press q to quit", m.width, m.height, minWidth, minHeight)
		return centered(msg, m.width, m.height)
	}
	header := padRight(headerLine(c, m.screen, m.width), m.width) + "\n" + padRight(statusLine(c, m.width), m.width)
	var body string
	bodyH := m.height - 3
	switch {
	case m.showHelp:
		body = m.helpView(c, bodyH)
	case m.screen == screenSetup:
		body = m.setup.view(c)
	case m.screen == screenDashboard:
		body = m.dash.view(c)
	case m.screen == screenHeatmap:
		body = m.heat.view(c)
	case m.screen == screenDetail:
		body = m.detail.view(c)
	case m.screen == screenDoctor:
		body = m.doc.view(c, m.opts.Doctor != nil)
	case m.screen == screenTune:
		body = m.tune.View()
	}
	body = strings.Join(fitLines(body, m.width, bodyH), "\n")
	view := header + "\n" + body + "\n" + m.footer(c)
	if m.modal != modalNone {
		view = overlay(view, m.modalView(c), m.width, m.height, m.st.mode != modePlain)
	}
	return view
}

// footer is the key hints, or a notice while one is showing.
func (m Model) footer(c viewCtx) string {
	if m.quitting {
		return padRight(m.st.warn.Render("stopping the worker before quitting… (ctrl+c again to leave now)"), m.width)
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
	return padRight(hm.ShortHelpView(m.withControlKey(m.shortHelp(c))), m.width)
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

// shortHelp lists the footer's keys for the current screen.
func (m Model) shortHelp(c viewCtx) []key.Binding {
	k := m.keys
	stop, cancel := k.studyKeys(m.snap.running && m.inControl())
	if m.showHelp {
		return []key.Binding{withHelp(k.Back, "esc/?", "close help"), k.Quit}
	}
	switch m.screen {
	case screenSetup:
		if m.setup.capturing() {
			return []key.Binding{withHelp(k.Enter, "enter", "done"), withHelp(k.Back, "esc", "cancel")}
		}
		start := k.Start
		if c.running {
			start = withHelp(start, "enter", "queue")
		}
		return only(start, k.Toggle, k.Filter, k.AddPath, k.NextPane, k.Dashboard, k.Help, k.Quit)
	case screenDashboard:
		return only(withHelp(k.Enter, "enter", "detail"), k.NextPane, k.SortNext, k.Rerun, stop, cancel, k.Export, k.Help, k.Quit)
	case screenHeatmap:
		return only(k.Metric, withHelp(k.Enter, "enter", "detail"), k.Group, stop, k.Export, k.Help, k.Quit)
	case screenDetail:
		layers := k.Layers
		layers.SetEnabled(m.opts.Sensitivity != nil && sensitivityFor(m.detail.exp))
		return only(k.Back, k.Down, k.Up, k.Rerun, layers, stop, k.Help, k.Quit)
	case screenDoctor:
		if m.doc.running {
			return only(withHelp(k.Cancel, "x", "cancel check"), withHelp(k.Down, "↑/↓", "line"), k.Help, k.Quit)
		}
		return only(withHelp(k.Enter, "enter", "run check"), withHelp(k.Down, "↑/↓", "line"), k.Setup, k.Dashboard, k.Help, k.Quit)
	case screenTune:
		return m.tune.ShortHelp()
	}
	return nil
}

// fullHelp lists every key of the current screen in columns.
func (m Model) fullHelp() [][]key.Binding {
	k := m.keys
	var screenKeys []key.Binding
	switch m.screen {
	case screenSetup:
		screenKeys = []key.Binding{k.Start, k.Toggle, k.Filter, k.AddPath,
			withHelp(k.Left, "←/→", "cycle options / value"), withHelp(k.EditOptions, "o", "type options / value"), k.Back}
	case screenDashboard:
		screenKeys = []key.Binding{withHelp(k.Enter, "enter", "run detail"), k.SortNext, k.SortReverse, k.Rerun, k.Stop, k.Cancel, k.Export}
	case screenHeatmap:
		screenKeys = []key.Binding{k.Metric, k.Group, withHelp(k.Left, "←↑↓→", "move"), withHelp(k.Enter, "enter", "run detail"), k.Stop, k.Cancel, k.Export}
	case screenDetail:
		screenKeys = []key.Binding{withHelp(k.Down, "↓/j", "scroll"), withHelp(k.PageDown, "pgdn/space", "page"), k.Rerun, k.Layers, k.Stop, k.Back}
	case screenDoctor:
		screenKeys = []key.Binding{withHelp(k.Enter, "enter", "run the hardware check"), withHelp(k.Cancel, "x", "cancel it"),
			withHelp(k.Down, "↑↓/jk", "select a line"), withHelp(k.Top, "g/G", "first/last line")}
	case screenTune:
		return m.tune.FullHelp()
	}
	return [][]key.Binding{screenKeys, k.navGroup(), k.globalGroup()}
}

func (m Model) helpView(c viewCtx, h int) string {
	s := c.st
	hm := m.help
	hm.Width = m.width - 4
	names := map[screen]string{screenSetup: "Setup", screenDashboard: "Dashboard", screenHeatmap: "Heatmap", screenDetail: "Run detail", screenDoctor: "Doctor", screenTune: "Tune"}
	var b strings.Builder
	b.WriteString(s.bold.Render("Keys on the "+names[m.screen]+" screen") + "\n\n")
	b.WriteString(hm.FullHelpView(m.fullHelp()) + "\n\n")
	b.WriteString(s.dim.Render("ctrl+c quits from anywhere (it asks while a study runs; twice leaves at once).") + "\n")
	b.WriteString(s.dim.Render("Results are appended to "+m.opts.Out+"; `quantscope report` reads them.") + "\n")
	b.WriteString(s.dim.Render("Table marks: ✓ ok · ✗ failed · ⚑ near the runtime's call-overhead floor · ≈ within noise of fp32.") + "\n")
	b.WriteString(s.dim.Render("Colours: green better than fp32, red worse; NO_COLOR keeps bold/underline instead."))
	return panel(s, "Help", b.String(), m.width, h, true)
}

// modalView draws the open question or menu.
func (m Model) modalView(c viewCtx) string {
	s := c.st
	k := s.key.Render
	var body string
	switch m.modal {
	case modalQuit:
		body = s.bold.Render("A study is running. Quit?") + "\n\n" +
			"The current run is stopped and its worker ended;\nresults recorded so far stay in " + m.opts.Out + ".\n\n" +
			k("y") + " quit   " + k("n") + " keep running"
	case modalCancel:
		body = s.bold.Render("Cancel the study?") + "\n\n" +
			"The current run is stopped and the queue dropped;\nresults recorded so far stay in " + m.opts.Out + ".\n\n" +
			k("y") + " cancel study   " + k("n") + " keep running"
	case modalHandover:
		body = s.bold.Render(m.asker+" asks for control of the study") + "\n\n" +
			"Hand over, and " + m.asker + " can start, stop and cancel runs;\nyou keep watching. Unanswered, control passes in " + fmtDuration(requestTimeout) + ".\n\n" +
			k("y") + " hand over   " + k("n") + " keep control"
	case modalBusy:
		body = s.bold.Render("Another study runs on this machine") + "\n\n" +
			m.busy + ".\nRunning yours at the same time spoils both sets of numbers.\n\n" +
			k("y") + " start anyway   " + k("n") + " not now"
	case modalExport:
		body = s.bold.Render("Export the results") + "\n\n" +
			k("j") + "  JSON lines: show where the results file is\n" +
			k("c") + "  CSV      → " + exportPath(m.opts.Out, exportCSV) + "\n" +
			k("m") + "  Markdown → " + exportPath(m.opts.Out, exportMarkdown) + "\n\n" +
			k("esc") + " close"
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
