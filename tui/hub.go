package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/quantscope/quantscope/models/imageset"
	"github.com/quantscope/quantscope/profiler/evaluate"
	"github.com/quantscope/quantscope/profiler/study"
)

// Hub is one study shared by every program that shows it: the queue, the
// driver running it through study.Run, the records and the chart
// histories, the machine's environment, and who may change the study.
// A local quantscope has one program on its hub; `quantscope serve` has
// one per SSH session, and the study goes on when any of them leaves.
//
// The hub owns its state behind one mutex. Programs never read it
// directly: each joins as a client and receives immutable snapshots
// through a tea.Cmd that waits on its mailbox (Model.listen), and asks
// for changes through the hub's methods, which hold the lock briefly and
// never wait on a program. Study orchestration (start, re-run, stop,
// cancel) lives here, not in the root model.
type Hub struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc // ends the loop (the study is the driver's)

	mu       sync.Mutex
	sess     *session
	drv      *driver
	env      Environment
	envReady bool
	envGen   int // counts setEnv calls
	// loadNote is the results-file notice, given to clients that join
	// before a study starts.
	loadNote *notice
	clients  map[int]*client
	nextID   int
	// control is the client that may change the study (0: nobody); in a
	// hub that is not Shared every client may.
	control   int
	request   int // client asking for control (0: none)
	requestAt time.Time
	frame     int
	closed    bool
	// manual hubs (tests) run no loop and start no segment: Step and the
	// pending segment bodies are driven by the test.
	manual  bool
	pending []func() segmentDoneMsg

	replay *replayState // set on a replay hub

	kick     chan struct{} // something changed: publish soon
	loopDone chan struct{}
	statusMu sync.Mutex // serializes OnStatus calls
	status   Status     // last status reported to OnStatus
}

// Status is what the hub tells its owner about the study (serve writes
// it into the lock file other quantscope processes read).
type Status struct {
	Running    bool   // a study is queued or running
	Controller string // who holds control ("" when nobody)
	Pending    int    // experiments queued or running
	Current    string // the experiment being measured, "model precision"
	Clients    int    // programs joined
}

// idleRefresh is the slowest redraw while a study runs (the clock and the
// spinner move even when no sample arrives).
const idleRefresh = 250 * time.Millisecond

// requestTimeout is how long a request for control waits for the holder's
// answer; unanswered, control passes (the holder is away).
const requestTimeout = 60 * time.Second

// client is one program joined to the hub: its mailbox of the latest
// snapshot and the notices not yet delivered.
type client struct {
	id   int
	name string

	mu    sync.Mutex
	snap  *snapshot
	notes []notice
	wake  chan struct{} // signaled (without blocking) when the mailbox fills
	gone  chan struct{} // closed when the client leaves
}

func (c *client) post(s *snapshot, notes []notice) {
	c.mu.Lock()
	c.snap = s
	c.notes = append(c.notes, notes...)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take empties the mailbox.
func (c *client) take() (hubMsg, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap == nil && len(c.notes) == 0 {
		return hubMsg{}, false
	}
	msg := hubMsg{snap: c.snap, notes: c.notes}
	c.snap, c.notes = nil, nil
	return msg, true
}

// clientInfo names a client in a snapshot.
type clientInfo struct {
	id   int
	name string
}

// snapshot is the hub's state as one program draws it; nothing in it is
// written after it is published.
type snapshot struct {
	sess     *session
	env      Environment
	envReady bool
	envGen   int
	running  bool // a segment's Run has not returned
	frame    int
	shared   bool
	control  clientInfo // who holds control (id 0: nobody)
	request  clientInfo // who asks for it (id 0: nobody)
	clients  []clientInfo
	replay   *replayInfo // nil unless a replay
}

// noticeKind says what a notice asks of the program.
type noticeKind int

const (
	noticeToast        noticeKind = iota // a line in the footer
	noticeControlAsked                   // someone asks the holder for control
)

// notice is a message from the hub to one client or all.
type notice struct {
	kind noticeKind
	text string
	err  bool
	to   int // client id; 0: every client
}

// hubMsg delivers the latest snapshot and pending notices to a program.
type hubMsg struct {
	snap  *snapshot
	notes []notice
}

// controlError refuses a change to the study from a client without
// control.
type controlError struct{ holder string }

func (e controlError) Error() string {
	return e.holder + " has control of the study: press c to ask for it"
}

// NewHub starts a hub for opts: it probes the environment and reads the
// results files in the background and publishes changes at most every
// TickInterval. ctx bounds the study: canceling it stops the running
// worker. Close it when the last program has ended.
func NewHub(ctx context.Context, opts Options) *Hub {
	h := newHub(ctx, opts, false)
	h.begin()
	return h
}

func newHub(ctx context.Context, opts Options, manual bool) *Hub {
	if ctx == nil {
		ctx = context.Background()
	}
	var replay *replayState
	if opts.Replay != nil {
		replay = initReplay(&opts) // the replayer runs and keeps time
	}
	opts = opts.withDefaults()
	base := study.RunConfig{
		Out:     opts.Out,
		Prepare: opts.Preparer,
		Worker:  opts.Worker,
		ORTLib:  opts.ORTLib,
		Timeout: opts.Timeout,
	}
	lctx, cancel := context.WithCancel(ctx)
	h := &Hub{
		opts: opts, ctx: lctx, cancel: cancel,
		sess:     newSession(),
		drv:      newDriver(ctx, opts.Run, base),
		clients:  map[int]*client{},
		manual:   manual,
		replay:   replay,
		kick:     make(chan struct{}, 1),
		loopDone: make(chan struct{}),
	}
	return h
}

// begin starts the background work of a hub that is not manual.
func (h *Hub) begin() {
	ctx := h.ctx
	if h.replay != nil {
		// A replay probes nothing here: the header shows the recording host.
		h.mu.Lock()
		h.startReplayLocked()
		h.mu.Unlock()
		go h.loop()
		return
	}
	if h.opts.Probe != nil {
		probe := h.opts.Probe
		go func() { h.setEnv(probe(ctx)) }()
	}
	out, open := h.opts.Out, h.opts.Open
	go func() { h.loaded(loadResults(out, open)) }()
	go h.loop()
}

// loop publishes the study's progress: when the runner has news (no more
// often than TickInterval), every idleRefresh while a study runs (the
// clock and spinner move), and when a client changed something.
func (h *Hub) loop() {
	defer close(h.loopDone)
	idle := time.NewTicker(idleRefresh)
	defer idle.Stop()
	for {
		tick := false
		select {
		case <-h.ctx.Done():
			return
		case <-h.drv.feed.notify:
		case <-h.kick:
		case <-idle.C:
			tick = true
		}
		h.mu.Lock()
		busy := h.drv.running || h.request != 0
		if !tick || busy {
			h.stepLocked()
			h.publishLocked(nil)
		}
		h.mu.Unlock()
		h.reportStatus()
		select {
		case <-h.ctx.Done():
			return
		case <-time.After(h.opts.TickInterval):
		}
	}
}

// stepLocked drains the runner's updates into the session and settles
// timed-out control requests.
func (h *Hub) stepLocked() []notice {
	h.pumpLocked()
	h.frame++
	var notes []notice
	if h.request != 0 && h.control != 0 && h.opts.Now().Sub(h.requestAt) >= requestTimeout {
		holder := h.nameLocked(h.control)
		h.control, h.request = h.request, 0
		notes = append(notes, notice{text: fmt.Sprintf("%s did not answer within %s: control passed to %s", holder, fmtDuration(requestTimeout), h.nameLocked(h.control))})
	}
	return notes
}

// pumpLocked drains the feed into the session.
func (h *Hub) pumpLocked() {
	now := h.opts.Now()
	for _, ev := range h.drv.feed.drain() {
		at := now
		if !ev.u.Time.IsZero() {
			at = ev.u.Time // a replay: when it happened
		}
		h.sess.apply(h.drv.entryIndex(ev.seg, ev.u.Index), ev.u, at)
	}
	h.sess.decode = h.drv.feed.decodeProgress()
}

// Step drains pending updates and publishes now (manual hubs: tests).
func (h *Hub) step() {
	h.mu.Lock()
	notes := h.stepLocked()
	h.publishLocked(notes)
	h.mu.Unlock()
	h.reportStatus()
}

// changed asks the loop to publish soon (a manual hub publishes now).
func (h *Hub) changed() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// publishLocked posts a snapshot and notes to every client.
func (h *Hub) publishLocked(notes []notice) {
	s := h.snapshotLocked()
	for _, c := range h.clients {
		var mine []notice
		for _, n := range notes {
			if n.to == 0 || n.to == c.id {
				mine = append(mine, n)
			}
		}
		c.post(s, mine)
	}
}

func (h *Hub) snapshotLocked() *snapshot {
	s := &snapshot{
		sess: h.sess.snapshot(), env: h.env, envReady: h.envReady, envGen: h.envGen,
		running: h.drv.running, frame: h.frame, shared: h.opts.Shared,
		control: clientInfo{h.control, h.nameLocked(h.control)},
		request: clientInfo{h.request, h.nameLocked(h.request)},
	}
	for _, id := range h.clientIDsLocked() {
		s.clients = append(s.clients, clientInfo{id, h.clients[id].name})
	}
	if h.replay != nil {
		s.replay = h.replay.info()
	}
	return s
}

func (h *Hub) clientIDsLocked() []int {
	ids := make([]int, 0, len(h.clients))
	for id := range h.clients {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (h *Hub) nameLocked(id int) string {
	if c, ok := h.clients[id]; ok {
		return c.name
	}
	return ""
}

// join adds a client named name (made unique among those joined) and
// posts it the current state.
func (h *Hub) join(name string) *client {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	if name == "" {
		name = "you"
	}
	base, n := name, 2
	for h.nameTakenLocked(name) {
		name = fmt.Sprintf("%s#%d", base, n)
		n++
	}
	c := &client{id: h.nextID, name: name, wake: make(chan struct{}, 1), gone: make(chan struct{})}
	h.clients[c.id] = c
	var notes []notice
	if h.loadNote != nil {
		notes = append(notes, *h.loadNote)
	}
	if h.opts.Shared {
		for _, o := range h.clients {
			if o.id != c.id {
				o.post(nil, []notice{{text: name + " connected", to: o.id}})
			}
		}
		if h.control == 0 {
			h.control = c.id
		}
	}
	c.post(h.snapshotLocked(), notes)
	h.publishLocked(nil)
	return c
}

func (h *Hub) nameTakenLocked(name string) bool {
	for _, c := range h.clients {
		if c.name == name {
			return true
		}
	}
	return false
}

// leave removes a client. Its control passes to whoever asked for it, or
// is left for the next to take; the study goes on either way.
func (h *Hub) leave(id int) {
	h.mu.Lock()
	c, ok := h.clients[id]
	if !ok {
		h.mu.Unlock()
		return
	}
	delete(h.clients, id)
	close(c.gone)
	var notes []notice
	if h.request == id {
		h.request = 0
	}
	if h.control == id {
		h.control = 0
		if h.request != 0 {
			h.control, h.request = h.request, 0
			notes = append(notes, notice{text: c.name + " left: control passed to " + h.nameLocked(h.control)})
		} else if len(h.clients) > 0 {
			notes = append(notes, notice{text: c.name + " left; nobody has control (c takes it)"})
		}
	} else if h.opts.Shared {
		notes = append(notes, notice{text: c.name + " left"})
	}
	h.publishLocked(notes)
	h.mu.Unlock()
	h.reportStatus()
}

// mayChangeLocked says whether client id may change the study, taking
// control when nobody holds it.
func (h *Hub) mayChangeLocked(id int) error {
	if h.replay != nil {
		return errors.New("this is a replay of " + h.replay.cfg.File + ": nothing runs here")
	}
	if !h.opts.Shared {
		return nil
	}
	switch h.control {
	case id:
		return nil
	case 0:
		h.control = id
		if h.request == id {
			h.request = 0
		}
		return nil
	}
	return controlError{holder: h.nameLocked(h.control)}
}

// requestControl takes control when nobody holds it, else asks the holder.
func (h *Hub) requestControl(id int) string {
	h.mu.Lock()
	defer func() {
		h.mu.Unlock()
		h.reportStatus()
	}()
	if !h.opts.Shared {
		return "you have control: nobody else is connected"
	}
	switch h.control {
	case id:
		return "you have control"
	case 0:
		h.control = id
		if h.request == id {
			h.request = 0
		}
		h.publishLocked([]notice{{text: h.nameLocked(id) + " took control"}})
		return "you have control"
	}
	holder := h.nameLocked(h.control)
	if h.request != 0 && h.request != id {
		return h.nameLocked(h.request) + " already asked " + holder + " for control; try again when it is settled"
	}
	h.request, h.requestAt = id, h.opts.Now()
	h.publishLocked([]notice{{kind: noticeControlAsked, text: h.nameLocked(id), to: h.control}})
	return fmt.Sprintf("asked %s for control (it passes to you if unanswered for %s)", holder, fmtDuration(requestTimeout))
}

// answerRequest is the holder's answer to a request for control.
func (h *Hub) answerRequest(id int, grant bool) {
	h.mu.Lock()
	defer func() {
		h.mu.Unlock()
		h.reportStatus()
	}()
	if h.control != id || h.request == 0 {
		return
	}
	asker, holder := h.request, h.nameLocked(id)
	h.request = 0
	if grant {
		h.control = asker
		h.publishLocked([]notice{{text: holder + " handed control to " + h.nameLocked(asker)}})
		return
	}
	h.publishLocked([]notice{{text: holder + " keeps control", to: asker}})
}

// setEnv installs the probed environment.
func (h *Hub) setEnv(env Environment) {
	h.mu.Lock()
	h.env, h.envReady = env, true
	h.envGen++
	h.sess.cores = env.Host.CPU.UsableCores
	if h.sess.cores == 0 {
		h.sess.cores = env.Host.CPU.LogicalCores
	}
	h.sess.localHost = env.StudyHost.Key()
	h.sess.version++
	h.drv.base.Host = env.StudyHost
	if len(env.Worker.Env) > 0 {
		h.drv.base.Worker.Env = append(h.drv.base.Worker.Env, env.Worker.Env...)
	}
	h.publishLocked(nil)
	h.mu.Unlock()
	h.changed()
}

// loaded installs the records read from the results files.
func (h *Hub) loaded(msg loadedMsg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n *notice
	switch {
	case msg.err != nil && len(msg.recs) == 0:
		n = &notice{text: fmt.Sprintf("results file: %v", msg.err), err: true}
	case len(msg.recs) > 0 || len(msg.warnings) > 0:
		h.sess.loadRecords(msg.recs, msg.warnings)
		h.sess.opened = msg.opened
		from := h.opts.Out
		if msg.opened > 0 {
			from += fmt.Sprintf(" and %s", plural(msg.opened, "more file", "more files"))
		}
		text := fmt.Sprintf("loaded %s from %s", plural(len(msg.recs), "record", "records"), from)
		if k := len(hostOrder(h.sess.rows)); k > 1 {
			text += fmt.Sprintf(", %d hosts", k)
		}
		if len(msg.warnings) > 0 {
			text += fmt.Sprintf(" (%s skipped: %s)", plural(len(msg.warnings), "line", "lines"), msg.warnings[0])
		}
		if msg.err != nil {
			// A file of --open could not be read; the others are shown.
			text += fmt.Sprintf("; results file: %v", msg.err)
		}
		n = &notice{text: text, err: len(msg.warnings) > 0 || msg.err != nil}
	}
	if n != nil && len(h.sess.entries) == 0 {
		h.loadNote = n
		h.publishLocked([]notice{*n})
		return
	}
	h.publishLocked(nil)
}

// busyError says another quantscope (serve) runs a study on this
// machine (Options.Busy's sentence); a request with force set starts
// anyway.
type busyError struct{ what string }

func (e busyError) Error() string { return e.what }

// start plans a study request and queues it; a busyError first when
// another quantscope runs a study here, unless req.force.
func (h *Hub) start(id int, req startRequest) (string, error) {
	if !req.force && h.opts.Busy != nil {
		if busy := h.opts.Busy(); busy != "" {
			return "", busyError{what: busy}
		}
	}
	h.mu.Lock()
	defer func() {
		h.mu.Unlock()
		h.reportStatus()
	}()
	if err := h.mayChangeLocked(id); err != nil {
		return "", err
	}
	if h.envReady && !h.env.ORT.OK() {
		reason := "ONNX Runtime did not load"
		if h.env.ORT.Err != nil {
			reason += ": " + firstLine(h.env.ORT.Err.Error())
		}
		return "", errors.New(reason + " (run `quantscope doctor`; `make setup` installs it)")
	}
	if h.opts.Preparer == nil {
		return "", errors.New("no model preparer configured")
	}
	plan, err := study.Plan(req.cfg)
	if err != nil {
		return "", err
	}
	h.loadNote = nil
	idx := h.sess.enqueue(plan, req.duration, h.opts.Now())
	if req.evalDir != "" {
		fd := h.drv.feed
		ds := &evaluate.Dataset{Dir: req.evalDir, Labels: req.labels, Overrides: h.opts.EvalOverrides,
			Progress: func(_ string, p imageset.Progress) { fd.decoding(p) }}
		h.sess.setEval(idx, ds)
	}
	h.startNextLocked()
	var notes []notice
	if h.opts.Shared {
		notes = append(notes, notice{text: fmt.Sprintf("%s queued %s", h.nameLocked(id), plural(len(plan), "run", "runs"))})
		notes = othersOnly(notes, id, h)
	}
	h.publishLocked(notes)
	return fmt.Sprintf("queued %s · results go to %s", plural(len(plan), "run", "runs"), h.opts.Out), nil
}

// othersOnly addresses broadcast notes to every client but id.
func othersOnly(notes []notice, id int, h *Hub) []notice {
	var out []notice
	for _, n := range notes {
		for cid := range h.clients {
			if cid != id {
				m := n
				m.to = cid
				out = append(out, m)
			}
		}
	}
	return out
}

// rerun queues one experiment again (as the next repetition), for the
// duration it ran with (dur when it never ran here).
func (h *Hub) rerun(id int, exp study.Experiment, dur time.Duration) (string, error) {
	h.mu.Lock()
	defer func() {
		h.mu.Unlock()
		h.reportStatus()
	}()
	if err := h.mayChangeLocked(id); err != nil {
		return "", err
	}
	if h.opts.Preparer == nil {
		return "", errors.New("no model preparer configured")
	}
	var ds *evaluate.Dataset
	if e := h.sess.entryFor(exp, h.sess.localHost); e != nil {
		if e.duration > 0 {
			dur = e.duration
		}
		ds = e.eval
	}
	exp.Repeat = 0
	h.loadNote = nil
	h.sess.setEval(h.sess.enqueue([]study.Experiment{exp}, dur, h.opts.Now()), ds)
	h.startNextLocked()
	h.publishLocked(nil)
	return "queued a re-run of " + displayModel(exp.Model) + " " + exp.Precision, nil
}

// stopCurrent stops the running experiment; the queue goes on.
func (h *Hub) stopCurrent(id int) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.drv.running {
		return false, nil
	}
	if err := h.mayChangeLocked(id); err != nil {
		return false, err
	}
	return h.drv.stopCurrent(), nil
}

// cancelStudy stops the running experiment and drops the queue.
func (h *Hub) cancelStudy(id int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.mayChangeLocked(id); err != nil {
		return err
	}
	h.drv.cancelStudy()
	return nil
}

// running reports whether a segment's Run has not returned.
func (h *Hub) running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.drv.running
}

// startNextLocked starts the next segment of the queue, if any.
func (h *Hub) startNextLocked() {
	if h.closed {
		return
	}
	body := h.drv.startNext(h.sess)
	if body == nil {
		return
	}
	if h.manual {
		h.pending = append(h.pending, body)
		return
	}
	go func() { h.segmentDone(body()) }()
}

// segmentDone settles a segment whose Run returned and starts the next.
func (h *Hub) segmentDone(msg segmentDoneMsg) {
	h.mu.Lock()
	h.pumpLocked()
	err := h.drv.finish(h.sess, msg, h.opts.Now())
	var notes []notice
	if err != nil {
		notes = append(notes, notice{text: "study: " + err.Error(), err: true})
	}
	if h.replay != nil && err == nil {
		notes = append(notes, h.replayDoneLocked()...)
	}
	h.startNextLocked()
	if !h.drv.running && !h.sess.running() {
		done, failed, _, _ := h.sess.counts()
		if done+failed > 0 && err == nil && h.replay == nil {
			notes = append(notes, notice{text: fmt.Sprintf("study finished: %d ok, %d failed · results in %s", done, failed, h.opts.Out), err: failed > 0})
		}
	}
	h.publishLocked(notes)
	h.mu.Unlock()
	h.reportStatus()
}

// Status returns what the hub is doing now.
func (h *Hub) Status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.statusLocked()
}

func (h *Hub) statusLocked() Status {
	_, _, pending, _ := h.sess.counts()
	st := Status{Running: h.drv.running || pending > 0, Controller: h.nameLocked(h.control), Pending: pending, Clients: len(h.clients)}
	if h.sess.active >= 0 {
		e := h.sess.entries[h.sess.active]
		st.Current = displayModel(e.exp.Model) + " " + e.exp.Precision
	}
	return st
}

// reportStatus calls Options.OnStatus when the status changed.
func (h *Hub) reportStatus() {
	if h.opts.OnStatus == nil {
		return
	}
	h.statusMu.Lock()
	defer h.statusMu.Unlock()
	st := h.Status()
	if st == h.status {
		return
	}
	h.status = st
	h.opts.OnStatus(st)
}

// Close stops the study and waits up to timeout for its worker to exit
// (every record finished so far is already in the results file); the
// programs still joined get nothing more. It reports whether everything
// stopped.
func (h *Hub) Close(timeout time.Duration) bool {
	h.mu.Lock()
	h.closed = true
	h.drv.cancelStudy()
	running, done := h.drv.running, h.drv.done
	h.mu.Unlock()
	ok := true
	if running && done != nil && !h.manual {
		select {
		case <-done:
		case <-time.After(timeout):
			ok = false
		}
	}
	h.cancel()
	if !h.manual {
		<-h.loopDone
	}
	h.mu.Lock()
	for id, c := range h.clients {
		delete(h.clients, id)
		close(c.gone)
	}
	h.mu.Unlock()
	return ok
}

// listen waits for the client's next delivery.
func (c *client) listen() tea.Cmd {
	return func() tea.Msg {
		for {
			select {
			case <-c.gone:
				return nil
			case <-c.wake:
			}
			if msg, ok := c.take(); ok {
				return msg
			}
		}
	}
}
