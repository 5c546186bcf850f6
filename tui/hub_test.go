package tui

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/worker"
)

// sharedFixture is a manual shared hub (as serve runs it) with its first
// program joined as "you".
func sharedFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixture(t, 120, 40, func(o *Options) { o.Shared = true })
}

// peer joins another program named name to f's hub.
func (f *fixture) peer(name string, w, h int) *fixture {
	f.t.Helper()
	p := &fixture{t: f.t, hub: f.hub, now: f.now}
	p.m = f.hub.NewModel(ClientOptions{Name: name, Profile: f.m.opts.Profile})
	p.send(tea.WindowSizeMsg{Width: w, Height: h})
	models, _ := fakeCatalog{}.Models(context.Background())
	p.send(catalogMsg{models: models})
	f.sync()
	return p
}

func TestSharedHubFirstProgramHasControl(t *testing.T) {
	f := sharedFixture(t)
	bob := f.peer("bob", 120, 40)
	if f.m.snap.control.id != f.m.me.id || f.m.snap.control.name != "you" {
		t.Fatalf("control %+v, want the first program", f.m.snap.control)
	}
	if !strings.Contains(f.view(), "● you have control · 1 more here") {
		t.Fatalf("holder's header:\n%s", f.view())
	}
	if v := bob.view(); !strings.Contains(v, "◐ watching: you has control (c asks)") || !strings.Contains(v, "c ask for control") {
		t.Fatalf("watcher's header and footer:\n%s", v)
	}
	// The watcher cannot start a study.
	bob.startStudyKeys("deit-tiny")
	if bob.m.screen != screenSetup || len(f.hub.sess.entries) != 0 || !strings.Contains(bob.m.toast, "you has control of the study: press c to ask for it") {
		t.Fatalf("watcher started a study: screen %v, %d entries, toast %q", bob.m.screen, len(f.hub.sess.entries), bob.m.toast)
	}
}

// startStudyKeys picks models and presses enter without requiring that
// the study starts.
func (f *fixture) startStudyKeys(models ...string) {
	for _, m := range models {
		f.keys("/")
		f.typeText(m)
		f.keys("enter", "space", "esc")
	}
	f.keys("enter")
}

func TestSharedHubHandOver(t *testing.T) {
	f := sharedFixture(t)
	f.startStudy("deit-tiny")
	bob := f.peer("bob", 80, 24)
	if bob.m.screen != screenDashboard {
		t.Fatalf("a program joining a running study lands on %v", bob.m.screen)
	}
	// Watchers cannot stop or cancel.
	bob.keys("s")
	if f.hub.drv.stopReq || !strings.Contains(bob.m.toast, "has control") {
		t.Fatalf("watcher stopped the run (toast %q)", bob.m.toast)
	}
	bob.keys("x")
	if bob.m.modal != modalNone || f.hub.drv.studyCtx.Err() != nil {
		t.Fatal("watcher could cancel the study")
	}
	// bob asks; the holder sees the request and says no, then yes.
	bob.keys("c")
	f.sync()
	if f.m.modal != modalHandover || !strings.Contains(f.view(), "bob asks for control of the study") {
		t.Fatalf("holder does not see the request:\n%s", f.view())
	}
	if !strings.Contains(bob.m.toast, "asked you for control") {
		t.Fatalf("asker's toast %q", bob.m.toast)
	}
	f.keys("n")
	bob.sync()
	if f.m.snap.control.name != "you" || !strings.Contains(bob.m.toast, "you keeps control") {
		t.Fatalf("after no: control %q, asker's toast %q", f.m.snap.control.name, bob.m.toast)
	}
	bob.keys("c")
	f.sync()
	f.keys("y")
	bob.sync()
	if bob.m.snap.control.id != bob.m.me.id || !strings.Contains(bob.view(), "● you have control") {
		t.Fatalf("hand-over did not happen: control %+v\n%s", bob.m.snap.control, bob.view())
	}
	if !strings.Contains(f.view(), "◐ watching: bob has control") {
		t.Fatalf("old holder's header:\n%s", f.view())
	}
	// Now bob stops the run and the old holder cannot.
	f.keys("2", "s")
	if f.hub.drv.stopReq {
		t.Fatal("the old holder still stops runs")
	}
	bob.keys("s")
	if !f.hub.drv.stopReq {
		t.Fatal("the new holder cannot stop the run")
	}
}

func TestSharedHubUnansweredRequestPasses(t *testing.T) {
	f := sharedFixture(t)
	bob := f.peer("bob", 120, 40)
	bob.keys("c")
	f.sync()
	if f.m.modal != modalHandover {
		t.Fatal("no request shown")
	}
	f.advance(requestTimeout - time.Second)
	f.hub.step()
	f.sync()
	if f.m.snap.control.name != "you" {
		t.Fatal("control passed before the timeout")
	}
	f.advance(2 * time.Second)
	f.hub.step()
	f.sync()
	bob.sync()
	if bob.m.snap.control.id != bob.m.me.id || f.m.modal != modalNone {
		t.Fatalf("after the timeout: control %+v, holder's modal %v", bob.m.snap.control, f.m.modal)
	}
}

func TestSharedHubStudySurvivesControllerLeaving(t *testing.T) {
	f := sharedFixture(t)
	f.startStudy("deit-tiny")
	bob := f.peer("bob", 120, 40)
	f.runExperiment(0, rec("deit-tiny", "fp32", 600, 1.6, 90<<20, 23<<20, 1, 1), 3)
	// The holder quits: q leaves at once, without asking or canceling.
	if !isQuit(f.keys("q")) {
		t.Fatal("q in a shared study did not just leave")
	}
	f.m.Leave()
	bob.sync()
	if !f.hub.drv.running || f.hub.drv.studyCtx.Err() != nil {
		t.Fatal("the study stopped when its starter left")
	}
	if bob.m.snap.control.id != 0 || !strings.Contains(bob.m.toast, "you left; nobody has control") {
		t.Fatalf("after the holder left: control %+v toast %q", bob.m.snap.control, bob.m.toast)
	}
	// The study goes on for bob, who takes control by asking.
	e := bob.plan()[1]
	bob.update(study.Update{Index: 1, Experiment: e, Stage: study.StageRunning, Sample: &worker.Sample{Phase: "measuring", Throughput: 900}})
	if bob.m.sess.entries[1].stage != stageMeasuring {
		t.Fatalf("bob does not see the run go on: %v", bob.m.sess.entries[1].stage)
	}
	bob.keys("c")
	if bob.m.snap.control.id != bob.m.me.id {
		t.Fatal("bob could not take free control")
	}
	// A program joining later lands on the same study.
	carol := f.peer("carol", 80, 24)
	if carol.m.screen != screenDashboard || len(carol.m.sess.entries) != 2 || carol.m.sess.entries[1].stage != stageMeasuring {
		t.Fatalf("late joiner: screen %v, %d entries", carol.m.screen, len(carol.m.sess.entries))
	}
}

func TestSharedHubAskerLeavingClearsRequest(t *testing.T) {
	f := sharedFixture(t)
	bob := f.peer("bob", 120, 40)
	bob.keys("c")
	f.sync()
	bob.m.Leave()
	f.sync()
	if f.m.modal != modalNone || f.hub.request != 0 {
		t.Fatalf("request outlived the asker: modal %v request %d", f.m.modal, f.hub.request)
	}
}

func TestHubNamesAreUnique(t *testing.T) {
	f := sharedFixture(t)
	a := f.peer("alice", 80, 24)
	b := f.peer("alice", 80, 24)
	if a.m.snap.clients[1].name != "alice" || b.m.me.name != "alice#2" {
		t.Fatalf("names %+v, second %q", b.m.snap.clients, b.m.me.name)
	}
}

// TestSnapshotsAreNotWrittenAfterPublishing keeps an early snapshot and
// checks that later updates do not show through it.
func TestSnapshotsAreNotWrittenAfterPublishing(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	f.startStudy("deit-tiny")
	e := f.plan()[0]
	f.update(study.Update{Index: 0, Experiment: e, Stage: study.StageRunning, Sample: &worker.Sample{Phase: "measuring", Throughput: 500, RSS: 1 << 20}})
	old := f.m.sess
	stage, pts, lat := old.entries[0].stage, len(old.tput.pts), len(old.entries[0].lat)
	for range 50 {
		f.update(study.Update{Index: 0, Experiment: e, Stage: study.StageRunning, Sample: &worker.Sample{Phase: "measuring", Throughput: 600, LatencyMs: 2, RSS: 2 << 20}})
	}
	r := rec("deit-tiny", "fp32", 600, 1.6, 90<<20, 23<<20, 1, 1)
	f.update(study.Update{Index: 0, Experiment: e, Stage: study.StageDone, Record: &r})
	if old.entries[0].stage != stage || len(old.tput.pts) != pts || len(old.entries[0].lat) != lat || len(old.records) != 0 {
		t.Fatalf("an old snapshot changed: stage %v→%v, %d→%d points, %d records", stage, old.entries[0].stage, pts, len(old.tput.pts), len(old.records))
	}
	if f.m.sess.entries[0].stage != stageDone || len(f.m.sess.records) != 1 {
		t.Fatal("the latest snapshot lacks the record")
	}
}

// TestHubManyProgramsRace runs a real hub (background loop, a fake study
// on its goroutines) with three programs drawing every snapshot they
// receive; `go test -race` checks that nothing is shared unsafely.
func TestHubManyProgramsRace(t *testing.T) {
	t.Chdir(t.TempDir())
	opts := programOptions(t, fakeStudy(40))
	opts.Shared = true
	opts.Now = time.Now
	hub := NewHub(context.Background(), opts)
	defer hub.Close(5 * time.Second)
	models := []Model{hub.NewModel(ClientOptions{Name: "a"}), hub.NewModel(ClientOptions{Name: "b"}), hub.NewModel(ClientOptions{Name: "c"})}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for i := range models {
		wg.Add(1)
		go func(m Model) {
			defer wg.Done()
			nm, _ := m.Update(tea.WindowSizeMsg{Width: 100 + 20*i, Height: 30})
			m = nm.(Model)
			for {
				msg := m.me.listen()()
				if msg == nil {
					return
				}
				nm, _ := m.Update(msg)
				m = nm.(Model)
				_ = m.View()
				select {
				case <-done:
					return
				default:
				}
			}
		}(models[i])
	}
	time.Sleep(300 * time.Millisecond) // the environment arrives
	if _, err := hub.start(models[0].me.id, startRequest{cfg: study.PlanConfig{Models: []string{"deit-tiny", "deit-small"}, Precisions: []string{"int8"}, EPs: []string{"cpu"}, Batches: []int{1}}, duration: time.Second}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for hub.Status().Running && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(done)
	if st := hub.Status(); st.Running {
		t.Fatalf("study did not finish: %+v", st)
	}
	hub.Close(5 * time.Second)
	wg.Wait()
	recs, _, err := study.ReadResults("results.jsonl")
	if err != nil || len(recs) != 4 {
		t.Fatalf("results: %d records, %v", len(recs), err)
	}
}

// TestBusyMachineWarnsAndAsks: with quantscope serve running a study on
// the machine, the local program warns at start and asks before starting.
func TestBusyMachineWarnsAndAsks(t *testing.T) {
	busy := "quantscope serve (pid 7, :2222) is running a study on this machine"
	f := newFixture(t, 120, 40, func(o *Options) { o.Busy = func() string { return busy } })
	f.send(busyMsg{text: busy})
	if !f.m.toastErr || !strings.Contains(f.m.toast, busy+": a study you start now competes with it") {
		t.Fatalf("no warning at start: %q", f.m.toast)
	}
	f.startStudyKeys("deit-tiny")
	if f.m.modal != modalBusy || !strings.Contains(f.view(), "Another study runs on this machine") || len(f.hub.sess.entries) != 0 {
		t.Fatalf("started without asking:\n%s", f.view())
	}
	f.keys("n")
	if f.m.modal != modalNone || len(f.hub.sess.entries) != 0 || f.m.screen != screenSetup {
		t.Fatal("n started the study")
	}
	f.keys("enter", "y")
	if len(f.hub.sess.entries) != 2 || f.m.screen != screenDashboard {
		t.Fatalf("y did not start: %d entries", len(f.hub.sess.entries))
	}
}

// TestAutoStart: the demo's study starts once the catalog and the
// environment are in, without a key.
func TestAutoStart(t *testing.T) {
	f := newFixture(t, 120, 40, func(o *Options) {
		o.AutoStart, o.Models = true, []string{"deit-tiny", "resnet-50"}
	})
	if f.m.screen != screenDashboard || len(f.hub.sess.entries) != 4 {
		t.Fatalf("demo did not start: screen %v, %d entries, err %q", f.m.screen, len(f.hub.sess.entries), f.m.setup().err)
	}
	models, _ := fakeCatalog{}.Models(context.Background())
	f.send(catalogMsg{models: models})
	f.sync()
	if len(f.hub.sess.entries) != 4 {
		t.Fatal("started twice")
	}
}
