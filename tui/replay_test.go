package tui

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/quantscope/quantscope/profiler/study"
)

// The recorded study: `quantscope bench --models mobilevit-xxs,mobilenet-v2
// --precisions int8 --duration 3s` on the 2-core development VM, with its
// telemetry; old-study.jsonl is the same as a schema 1 file (no telemetry).
const (
	recordedStudy = "testdata/replay/study.jsonl"
	oldStudy      = "testdata/replay/old-study.jsonl"
)

// stepClock drives a replay by hand: every Sleep waits for the test to
// grant it, and the wall clock moves only then.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
	req chan time.Duration
	ok  chan struct{}
}

func newStepClock() *stepClock {
	return &stepClock{now: time.Unix(1e9, 0), req: make(chan time.Duration), ok: make(chan struct{})}
}

func (c *stepClock) Wall() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Sleep(ctx context.Context, d time.Duration) error {
	select {
	case c.req <- d:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-c.ok:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// replayFixture is a manual replay hub of file at 4× with one program.
func replayFixture(t *testing.T, w, h int, file string, edit func(*Replay)) (*fixture, *stepClock) {
	t.Helper()
	recs, warns, err := study.ReadResults(file)
	if err != nil || len(warns) > 0 {
		t.Fatalf("%s: %v %v", file, warns, err)
	}
	clk := newStepClock()
	f := &fixture{t: t, now: t0}
	o := testOptions(f)
	o.Catalog = nil
	o.Replay = &Replay{Records: recs, File: "study.jsonl", Speed: 4, Sleep: clk.Sleep, Wall: clk.Wall}
	if edit != nil {
		edit(o.Replay)
	}
	f.hub = newHub(context.Background(), o, true)
	t.Cleanup(func() { f.hub.Close(time.Second) })
	f.hub.mu.Lock()
	f.hub.startReplayLocked() // what begin does
	f.hub.mu.Unlock()
	f.m = f.hub.NewModel(ClientOptions{Profile: o.Profile})
	f.send(tea.WindowSizeMsg{Width: w, Height: h})
	return f, clk
}

// play runs the replay's segments, granting its sleeps until the replay
// clock would pass until (zero: to the end), and delivers what played.
func (f *fixture) play(clk *stepClock, until time.Time) {
	f.t.Helper()
	speed := f.hub.replay.cfg.Speed
	for len(f.hub.pending) > 0 {
		body := f.hub.pending[0]
		f.hub.pending = f.hub.pending[1:]
		done := make(chan segmentDoneMsg, 1)
		go func() { done <- body() }()
	segment:
		for {
			select {
			case d := <-clk.req:
				next := f.hub.opts.Now().Add(time.Duration(float64(d) * speed))
				if !until.IsZero() && next.After(until) {
					f.hub.step()
					f.sync()
					return // the player waits in Sleep; Close ends it
				}
				clk.mu.Lock()
				clk.now = clk.now.Add(d)
				clk.mu.Unlock()
				clk.ok <- struct{}{}
			case msg := <-done:
				f.hub.segmentDone(msg)
				break segment
			case <-time.After(10 * time.Second):
				f.t.Fatal("replay stalled")
			}
		}
	}
	f.hub.step()
	f.sync()
}

func TestGoldenReplay(t *testing.T) {
	recs, _, err := study.ReadResults(recordedStudy)
	if err != nil || len(recs) != 4 {
		t.Fatalf("recorded study: %d records, %v", len(recs), err)
	}
	mid := recs[1].Started.Add(recs[1].Finished.Sub(recs[1].Started) * 6 / 10)
	scenarios := []struct {
		name string
		file string
		run  func(f *fixture, clk *stepClock)
	}{
		{"replay-mid-run", recordedStudy, func(f *fixture, clk *stepClock) {
			f.play(clk, mid)
			f.send(toastExpiredMsg{id: f.m.toastID})
			if f.m.dash().compact() {
				f.keys("tab") // table → charts
			}
		}},
		{"replay-queue", recordedStudy, func(f *fixture, clk *stepClock) {
			f.play(clk, mid)
			f.send(toastExpiredMsg{id: f.m.toastID})
			f.keys("shift+tab")
		}},
		{"replay-finished", recordedStudy, func(f *fixture, clk *stepClock) {
			f.play(clk, time.Time{})
		}},
		{"replay-heatmap", recordedStudy, func(f *fixture, clk *stepClock) {
			f.play(clk, time.Time{})
			f.send(toastExpiredMsg{id: f.m.toastID})
			f.keys("3")
		}},
		{"replay-old-study", oldStudy, func(f *fixture, clk *stepClock) {
			f.play(clk, time.Time{})
		}},
	}
	for _, sc := range scenarios {
		for _, sz := range goldenSizes {
			t.Run(fmt.Sprintf("%s/%dx%d", sc.name, sz[0], sz[1]), func(t *testing.T) {
				f, clk := replayFixture(t, sz[0], sz[1], sc.file, nil)
				sc.run(f, clk)
				golden.RequireEqual(t, []byte(f.view()))
			})
		}
	}
}

func TestReplayPlaysTheRecordedStudy(t *testing.T) {
	f, clk := replayFixture(t, 120, 40, recordedStudy, nil)
	if f.m.screen != screenDashboard || len(f.m.sess.entries) != 4 {
		t.Fatalf("replay starts on %v with %d entries", f.m.screen, len(f.m.sess.entries))
	}
	v := f.view()
	for _, want := range []string{"▶ replay 4×", "recorded on "} {
		if !strings.Contains(v, want) {
			t.Errorf("header lacks %q:\n%s", want, v)
		}
	}
	f.play(clk, time.Time{})
	recs, _, _ := study.ReadResults(recordedStudy)
	if len(f.m.sess.rows) != 4 || len(f.m.sess.records) != 4 {
		t.Fatalf("%d rows after the replay", len(f.m.sess.rows))
	}
	// The rows are the recorded ones: same throughput, same speedup.
	want := study.Summarize(recs)
	for i, r := range f.m.sess.rows {
		if r.Throughput != want[i].Throughput || r.Speedup != want[i].Speedup {
			t.Errorf("row %d: %v×%v, recorded %v×%v", i, r.Throughput, r.Speedup, want[i].Throughput, want[i].Speedup)
		}
	}
	// Every kept sample was charted at its recorded time.
	if last := f.m.sess.rss.pts[len(f.m.sess.rss.pts)-1]; last.t.After(recs[3].Finished) || last.t.Before(recs[3].Started) {
		t.Errorf("last memory point at %v, outside the last run (%v – %v)", last.t, recs[3].Started, recs[3].Finished)
	}
	if n := len(f.m.sess.tput.pts); n != recs[3].Telemetry.Len() {
		t.Errorf("throughput chart of the last run has %d points, recorded %d", n, recs[3].Telemetry.Len())
	}
	if !strings.Contains(f.m.toast, "replay finished: 4 runs from study.jsonl") {
		t.Errorf("toast %q", f.m.toast)
	}
	// Nothing runs in a replay, and nothing asks before quitting.
	f.keys("x")
	if f.m.modal != modalNone {
		t.Fatal("x asked to cancel a replay")
	}
	f.keys("2", "r")
	if !strings.Contains(f.m.toast, "this is a replay of study.jsonl: nothing runs here") {
		t.Fatalf("re-run in a replay: %q", f.m.toast)
	}
	if !isQuit(f.keys("q")) {
		t.Fatal("q did not quit the replay")
	}
}

func TestReplayLoops(t *testing.T) {
	f, clk := replayFixture(t, 120, 40, recordedStudy, func(r *Replay) { r.Loop = true })
	if !strings.Contains(f.view(), "▶ replay 4× · loop") {
		t.Fatalf("badge:\n%s", f.view())
	}
	f.play(clk, time.Time{})
	if !strings.Contains(f.m.toast, "starting over") {
		t.Fatalf("toast %q", f.m.toast)
	}
	f.hub.restartReplay(0)
	f.sync()
	if f.m.snap.replay.round != 1 || len(f.m.sess.records) != 0 || len(f.m.sess.entries) != 4 || len(f.hub.pending) != 1 {
		t.Fatalf("second round: round %d, %d records, %d entries", f.m.snap.replay.round, len(f.m.sess.records), len(f.m.sess.entries))
	}
	f.hub.restartReplay(0) // a stale timer of the first round: nothing
	if f.hub.replay.round != 1 {
		t.Fatal("a stale restart started a third round")
	}
	f.play(clk, time.Time{})
	if len(f.m.sess.rows) != 4 {
		t.Fatalf("%d rows after the second round", len(f.m.sess.rows))
	}
}

func TestReplayOfAnOldStudyShowsItsTable(t *testing.T) {
	f, _ := replayFixture(t, 120, 40, oldStudy, nil)
	if len(f.m.sess.entries) != 0 || len(f.m.sess.rows) != 4 || len(f.hub.pending) != 0 {
		t.Fatalf("old study: %d entries, %d rows, %d segments", len(f.m.sess.entries), len(f.m.sess.rows), len(f.hub.pending))
	}
	v := f.view()
	for _, want := range []string{"4 records from before telemetry was kept (schema 1): the table only, no charts", "mobilevit-xxs", "1.18×"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
}
