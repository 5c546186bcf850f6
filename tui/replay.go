package tui

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/quantscope/quantscope/profiler/study"
)

// Replay is a recorded study to play instead of running one
// (`quantscope replay`): its records go through the dashboard, queue,
// table and heatmap on a clock of recorded time, as they ran.
type Replay struct {
	// Records are the study's records (played in the order they started).
	Records []study.Record
	// File names where they came from.
	File string
	// Speed plays faster than recorded time (default 1).
	Speed float64
	// Loop starts over when the last record has played.
	Loop bool
	// Sleep and Wall replace the real timer and clock (tests).
	Sleep func(ctx context.Context, d time.Duration) error
	Wall  func() time.Time
}

// replayPause is the wait before a looping replay starts over.
const replayPause = 3 * time.Second

// replayState is a replay hub's player.
type replayState struct {
	cfg    Replay
	player *study.Replayer // nil when no record has telemetry: the table only
	host   study.Host
	note   string
	round  int
	played bool // the last round has played to its end
}

// replayInfo is what a snapshot says about the replay.
type replayInfo struct {
	file  string
	host  study.Host
	speed float64
	loop  bool
	note  string
	round int
	ended bool
}

func (r *replayState) info() *replayInfo {
	return &replayInfo{file: r.cfg.File, host: r.host, speed: r.cfg.Speed, loop: r.cfg.Loop, note: r.note, round: r.round, ended: r.played}
}

// initReplay prepares a replay hub's options before its driver exists:
// the replayer is its runner and its clock.
func initReplay(opts *Options) *replayState {
	r := &replayState{cfg: *opts.Replay}
	if r.cfg.Speed <= 0 {
		r.cfg.Speed = 1
	}
	recs := slices.Clone(r.cfg.Records)
	slices.SortStableFunc(recs, func(a, b study.Record) int { return a.Started.Compare(b.Started) })
	r.cfg.Records = recs
	var missing []study.Record
	for _, rec := range recs {
		if rec.TelemetryNote() != "" {
			missing = append(missing, rec)
		}
	}
	if len(recs) > 0 {
		r.host = recs[0].Host
	}
	switch {
	case len(recs) == 0:
		r.note = "nothing to replay: no record in " + r.cfg.File
	case len(missing) == len(recs):
		r.note = fmt.Sprintf("%s %s: the table only, no charts", plural(len(recs), "record", "records"), missing[0].TelemetryNote())
	default:
		if len(missing) > 0 {
			r.note = fmt.Sprintf("%d of %d runs have no telemetry to chart (%s)", len(missing), len(recs), missing[0].TelemetryNote())
		}
		r.player = &study.Replayer{Records: recs, Speed: r.cfg.Speed, Sleep: r.cfg.Sleep, Wall: r.cfg.Wall}
		r.player.Rewind()
		opts.Run = r.player.Run
		opts.Now = r.player.Now
	}
	return r
}

// startReplayLocked puts the recorded study in the session: queued to
// play, or (nothing to play) straight into the table.
func (h *Hub) startReplayLocked() {
	r := h.replay
	h.sess = newSession()
	h.sess.localHost, h.sess.cores = r.host.Key(), r.host.Cores
	r.played = false
	if r.player == nil {
		h.sess.loadRecords(slices.Clone(r.cfg.Records), nil)
		r.played = true
		return
	}
	for _, rec := range r.cfg.Records {
		e := rec.Experiment
		e.Repeat = 0
		var d time.Duration
		if rec.Telemetry != nil {
			d = time.Duration(rec.Telemetry.DurationS * float64(time.Second))
		}
		h.sess.enqueue([]study.Experiment{e}, d, h.opts.Now())
	}
	h.startNextLocked()
}

// replayDoneLocked follows a played segment: when the whole study has
// played, it says so, and a looping replay starts over after a pause.
func (h *Hub) replayDoneLocked() []notice {
	r := h.replay
	if h.drv.running || h.sess.running() {
		return nil
	}
	r.played = true
	if !r.cfg.Loop {
		return []notice{{text: fmt.Sprintf("replay finished: %s from %s (q quits)", plural(len(r.cfg.Records), "run", "runs"), r.cfg.File)}}
	}
	if !h.manual && !h.closed {
		round := r.round
		time.AfterFunc(replayPause, func() { h.restartReplay(round) })
	}
	return []notice{{text: fmt.Sprintf("replay finished; starting over in %s", fmtDuration(replayPause))}}
}

// restartReplay plays the study again (once per finished round).
func (h *Hub) restartReplay(round int) {
	h.mu.Lock()
	if h.closed || h.replay.round != round {
		h.mu.Unlock()
		return
	}
	h.replay.round++
	h.replay.player.Rewind()
	h.startReplayLocked()
	h.publishLocked(nil)
	h.mu.Unlock()
}

// replaySummary is the header's right side in a replay: the host that
// recorded the study.
func replaySummary(c viewCtx, w int) string {
	h := c.hub.replay.host
	parts := []string{"recorded on " + cmp.Or(h.Name(), "?")}
	if h.CPU != "" {
		cpu := shortCPU(h.CPU)
		if h.Cores > 0 {
			cpu += fmt.Sprintf(" ×%d", h.Cores)
		}
		parts = append(parts, cpu)
	}
	if h.GPU != "" {
		parts = append(parts, h.GPU)
	}
	if h.ORTVersion != "" {
		parts = append(parts, "ORT "+h.ORTVersion)
	}
	for len(parts) > 1 && width(joinDots(parts)) > w {
		parts = parts[:len(parts)-1]
	}
	return truncate(joinDots(parts), w)
}

func joinDots(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += " · "
		}
		out += p
	}
	return out
}
