package tui

import (
	"context"
	"errors"
	"time"

	"github.com/quantscope/quantscope/profiler/study"
)

// segmentDoneMsg says a study.Run call (one segment of the queue) returned.
// It goes to the hub (Hub.segmentDone), not to a program.
type segmentDoneMsg struct {
	seg  int
	recs []study.Record
	err  error
}

// driver runs the queue through study.Run, one segment at a time: a
// segment is the run of consecutive queued experiments with the same timed
// duration and labelled image set. Stopping the current run cancels its segment and the queue
// goes on with a new one; cancelling the study cancels the study context.
// All fields belong to the hub (under its lock) except feed and what a
// segment's body captured when it was created.
type driver struct {
	run  RunFunc
	base study.RunConfig // Out, Prepare, Host, Worker, ORTLib, Timeout
	feed *feed

	parent      context.Context
	studyCtx    context.Context
	studyCancel context.CancelFunc
	segCancel   context.CancelFunc

	seg     int           // id of the latest segment
	segMap  map[int][]int // segment → entry index of each plan position
	running bool          // a segment's Run has not returned yet
	done    chan struct{} // closed when that Run returns

	stopReq   bool // the user stopped the current run (s)
	cancelReq bool // the user canceled the study (x) or is quitting
}

func newDriver(parent context.Context, run RunFunc, base study.RunConfig) *driver {
	if parent == nil {
		parent = context.Background()
	}
	return &driver{run: run, base: base, feed: newFeed(), parent: parent, segMap: map[int][]int{}}
}

// startNext starts a segment with the next queued experiments and returns
// its body, which the hub runs on a goroutine of its own; nil when a
// segment is already running or nothing is queued.
func (d *driver) startNext(s *session) func() segmentDoneMsg {
	if d.running {
		return nil
	}
	q := s.queued()
	if len(q) == 0 {
		return nil
	}
	dur, ev := s.entries[q[0]].duration, s.entries[q[0]].eval
	var idx []int
	var plan []study.Experiment
	for _, i := range q {
		if s.entries[i].duration != dur || s.entries[i].eval != ev {
			break
		}
		idx = append(idx, i)
		plan = append(plan, s.entries[i].exp)
	}
	if d.studyCtx == nil || d.studyCtx.Err() != nil {
		d.studyCtx, d.studyCancel = context.WithCancel(d.parent)
	}
	ctx, cancel := context.WithCancel(d.studyCtx)
	d.seg++
	d.segMap[d.seg] = idx
	d.segCancel = cancel
	d.running = true
	d.stopReq = false
	done := make(chan struct{})
	d.done = done

	seg, run, fd := d.seg, d.run, d.feed
	cfg := d.base
	cfg.Duration = dur
	cfg.Eval = ev
	cfg.OnUpdate = func(u study.Update) { fd.push(seg, u) }
	return func() segmentDoneMsg {
		defer close(done)
		defer cancel()
		recs, err := run(ctx, plan, cfg)
		return segmentDoneMsg{seg: seg, recs: recs, err: err}
	}
}

// entryIndex maps a segment's plan index to the session entry.
func (d *driver) entryIndex(seg, planIndex int) int {
	idx := d.segMap[seg]
	if planIndex < 0 || planIndex >= len(idx) {
		return -1
	}
	return idx[planIndex]
}

// stopCurrent cancels the running segment; the queue continues after it.
func (d *driver) stopCurrent() bool {
	if !d.running || d.segCancel == nil {
		return false
	}
	d.stopReq = true
	d.segCancel()
	return true
}

// cancelStudy cancels the running segment and everything queued.
func (d *driver) cancelStudy() {
	d.cancelReq = true
	if d.studyCancel != nil {
		d.studyCancel()
	}
}

// finish settles a returned segment in the session: entries it left
// active are stopped, and when the study was canceled the queue is too.
// It returns an error worth showing (nil for a cancellation).
func (d *driver) finish(s *session, msg segmentDoneMsg, now time.Time) error {
	if msg.seg != d.seg {
		return nil
	}
	d.running = false
	canceled := errors.Is(msg.err, context.Canceled)
	var shown error
	if msg.err != nil && !canceled {
		shown = msg.err
	}
	for _, i := range d.segMap[msg.seg] {
		e := s.entries[i]
		switch {
		case e.stage.active():
			e.stage, e.finished = stageStopped, now
			e.reason = "stopped before it finished; nothing recorded"
			if shown != nil {
				e.stage, e.reason = stageFailed, shown.Error()
			}
		case e.stage == stageQueued && shown != nil:
			// Run gave up before reaching it (e.g. the results file
			// could not be opened): every later run would too.
			e.stage, e.reason, e.finished = stageFailed, shown.Error(), now
		}
	}
	if s.active >= 0 && s.entries[s.active].stage.over() {
		s.active = -1
	}
	if d.cancelReq {
		for _, e := range s.entries {
			if e.stage == stageQueued {
				e.stage, e.reason = stageCanceled, "study canceled"
			}
		}
		d.cancelReq = false
		d.studyCtx, d.studyCancel = nil, nil
	}
	d.stopReq = false
	s.version++
	return shown
}
