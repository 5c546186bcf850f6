package tui

import (
	"context"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/quantscope/quantscope/profiler/study"
)

// Screen is the contract every screen of the application keeps. The root
// model routes messages to screens and lays them out; it never writes
// into a screen's fields. A screen learns everything through Update (key
// messages while it is showing, every other message always), and asks
// the root for anything beyond itself by posting an intent (app.post).
type Screen interface {
	// Update handles a message and returns the screen to show next
	// (the screens are pointers: themselves).
	Update(msg tea.Msg) (Screen, tea.Cmd)
	// View draws the screen's body: SetSize's width × height cells.
	View() string
	// SetSize gives the screen the body's size (the terminal minus the
	// two header lines and the footer).
	SetSize(width, height int)
	// ShortHelp (the footer) and FullHelp (the help overlay's columns,
	// before the global one) list the screen's keys as they stand now.
	help.KeyMap
}

// capturer is a screen that can take every key for a text field: while
// it captures, only ForceQuit goes past it.
type capturer interface {
	capturing() bool
}

// stopper is a screen with background work of its own that ends with
// the program (the hardware check, a tune search).
type stopper interface {
	stop()
}

// measurer is a screen that measures the machine itself (the hardware
// check, a tune search): while it does, nothing else may.
type measurer interface {
	measuring() bool
}

// screen names one of the application's screens.
type screen int

const (
	screenSetup screen = iota
	screenDashboard
	screenHeatmap
	screenDetail
	screenDoctor
	screenTune
	screenCount
)

// screenNames title the help overlay ("Keys on the … screen").
var screenNames = [screenCount]string{"Setup", "Dashboard", "Heatmap", "Run detail", "Doctor", "Tune"}

// app is what the root model shares with its screens: styles, keys,
// options, the hub and its latest snapshot. The root changes it only in
// its own Update (when a snapshot arrives); screens read it, and post
// intents to it.
type app struct {
	ctx  context.Context
	opts Options
	st   *styles
	keys keyMap

	hub      *Hub
	me       *client
	snap     *snapshot
	sess     *session // snap.sess
	env      Environment
	envReady bool
	frame    int

	// choice is the setup screen's current choice.
	choice func() setupChoice

	// screens are the program's screens, by id; each keeps its own
	// pointer for the program's life.
	screens [screenCount]Screen

	// outbox holds the intents screens posted during the current
	// Update; the root handles them before it returns.
	outbox []tea.Msg
}

// post asks the root for something beyond the screen (an intent).
func (a *app) post(msg tea.Msg) { a.outbox = append(a.outbox, msg) }

// measuring reports whether screen id measures the machine now.
func (a *app) measuring(id screen) bool {
	m, ok := a.screens[id].(measurer)
	return ok && m.measuring()
}

// setupChoice is what the setup screen would run now: the EP, the timed
// duration (also a re-run's default), the first selected model, the
// labelled images and fusions (the Tune screen's defaults).
type setupChoice struct {
	ep              string
	duration        time.Duration
	model           string
	evalDir, labels string
	optimize        bool
}

// viewCtx is what every screen needs to draw and handle keys, taken
// from app at the moment of the call.
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
	sens map[string]*sensState // the detail screen's layer rankings, by sensKey
}

func (a *app) viewCtx() viewCtx {
	ch := a.choice()
	ep := ch.ep
	if i := a.sess.active; i >= 0 && i < len(a.sess.entries) {
		ep = a.sess.entries[i].exp.EP
	}
	return viewCtx{
		st: a.st, keys: a.keys, sess: a.sess, env: a.env, envReady: a.envReady,
		now: a.opts.Now(), running: a.running(), frame: a.frame,
		spinner: !a.opts.NoSpinner, opts: &a.opts, setupDuration: ch.duration,
		ep: ep, hub: a.snap, me: a.me.id,
	}
}

// inControl reports whether this program may change the study (always,
// unless it is a replay or the hub is shared and someone else holds
// control).
func (a *app) inControl() bool {
	if a.snap.replay != nil {
		return false
	}
	return !a.snap.shared || a.snap.control.id == a.me.id || a.snap.control.id == 0
}

// Messages from the root to the screens.
type (
	// snapshotMsg says app holds a new hub snapshot.
	snapshotMsg struct{}
	// envMsg carries a newly probed environment.
	envMsg struct{ env Environment }
	// startRefusedMsg says why the setup screen's study did not start.
	startRefusedMsg struct{ reason string }
)

// Intents: what a screen asks of the root (app.post).
type (
	// startMsg asks to plan and queue a study.
	startMsg struct{ req startRequest }
	// rerunMsg asks to queue one experiment again.
	rerunMsg struct{ exp study.Experiment }
	// openDetailMsg shows exp as measured on host (a study.Host.Key);
	// esc returns to back. The detail screen takes it too.
	openDetailMsg struct {
		exp  study.Experiment
		host string
		back screen
	}
	// openTuneMsg shows the Tune screen, set from the setup screen's
	// choice.
	openTuneMsg struct{}
	// showScreenMsg switches to a screen.
	showScreenMsg struct{ to screen }
	// stopRunMsg stops the current run; the queue goes on.
	stopRunMsg struct{}
	// cancelStudyMsg asks to cancel the study (after a confirmation).
	cancelStudyMsg struct{}
	// exportMenuMsg opens the export menu.
	exportMenuMsg struct{}
	// toastMsg shows a notice in the footer.
	toastMsg struct {
		text string
		err  bool
	}
)

// studyKey posts the intent of a study-control key (stop, cancel,
// export) and reports whether msg was one; the screens that show the
// study share it.
func (a *app) studyKey(msg tea.KeyMsg) bool {
	k := a.keys
	switch {
	case key.Matches(msg, k.Stop):
		a.post(stopRunMsg{})
	case key.Matches(msg, k.Cancel):
		a.post(cancelStudyMsg{})
	case key.Matches(msg, k.Export):
		a.post(exportMenuMsg{})
	default:
		return false
	}
	return true
}

// running reports whether a study runs (the hub's segment, or entries
// still in progress).
func (a *app) running() bool { return a.snap.running || a.sess.running() }

// studyKeys returns Stop and Cancel, enabled only while a study runs
// and this program may change it.
func (a *app) studyKeys() (stop, cancel key.Binding) {
	return a.keys.studyKeys(a.snap.running && a.inControl())
}
