package tui

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/telemetry"
	"github.com/quantscope/quantscope/profiler/worker"
)

// isQuit reports whether cmd (possibly a batch) quits the program.
func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	switch msg := cmd().(type) {
	case tea.QuitMsg:
		return true
	case tea.BatchMsg:
		for _, c := range msg {
			if isQuit(c) {
				return true
			}
		}
	}
	return false
}

func TestSetupKeys(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	s := f.m.setup()
	if got := s.selectedPrecisions(); strings.Join(got, ",") != "fp32,int8" {
		t.Fatalf("initial precisions %v", got)
	}
	// Select the first and third model.
	f.keys("space", "down", "space")
	if got := strings.Join(f.m.setup().selectedModels(), ","); got != "deit-tiny,vit-base-16" {
		t.Fatalf("selected %q", got)
	}
	// Precisions: fp32 cannot be switched off; int4 options cycle.
	f.keys("tab", "space")
	if !f.m.setup().precs[0].on || f.m.setup().err == "" {
		t.Fatalf("fp32 toggled off or no explanation: %+v %q", f.m.setup().precs[0], f.m.setup().err)
	}
	f.keys("down", "down", "down", "down", "right", "right")
	if got := f.m.setup().precs[4].spec(); got != "int4:block=128" {
		t.Fatalf("int4 spec %q", got)
	}
	// Typed options.
	f.keys("o")
	if !f.m.setup().capturing() {
		t.Fatal("o did not open the options input")
	}
	for range 20 {
		f.keys("backspace")
	}
	f.typeText("block=32,asym")
	f.keys("enter")
	if got := f.m.setup().precs[4].spec(); got != "int4:block=32,asym" {
		t.Fatalf("typed int4 spec %q", got)
	}
	// Settings: duration cycles, batch typed.
	f.keys("tab", "down", "down", "right")
	if f.m.setup().duration != 20*time.Second {
		t.Fatalf("duration %v", f.m.setup().duration)
	}
	f.keys("up", "o")
	for range 5 {
		f.keys("backspace")
	}
	f.typeText("1,8")
	f.keys("enter")
	if f.m.setup().batches != "1,8" {
		t.Fatalf("batches %q", f.m.setup().batches)
	}
	// A bad value is refused with a reason and the old one kept.
	f.keys("o")
	for range 5 {
		f.keys("backspace")
	}
	f.typeText("0,x")
	f.keys("enter")
	if f.m.setup().batches != "1,8" || !strings.Contains(f.m.setup().err, "batch size") {
		t.Fatalf("bad batch accepted: %q %q", f.m.setup().batches, f.m.setup().err)
	}
	// Fusions toggles with space and goes into the plan.
	for range 4 {
		f.keys("down")
	}
	f.keys("space")
	if cfg, err := f.m.setup().planConfig(); err != nil || !cfg.Optimize {
		t.Fatalf("fusions on: %+v %v", cfg, err)
	}
	if !strings.Contains(f.m.View(), "Fusions  ‹on›") {
		t.Error("settings pane does not show fusions on")
	}
	f.keys("space")
	if cfg, _ := f.m.setup().planConfig(); cfg.Optimize {
		t.Fatal("fusions did not toggle off")
	}
	// Global keys do not fire while typing: "1" and "q" go to the filter.
	f.keys("/")
	f.typeText("q1")
	if f.m.screen != screenSetup || f.m.setup().filter != "q1" {
		t.Fatalf("typing leaked to global keys: screen %v filter %q", f.m.screen, f.m.setup().filter)
	}
	f.keys("esc")
	if f.m.setup().filter != "" || f.m.setup().capturing() {
		t.Fatalf("esc did not clear the filter")
	}
}

func TestStartQueuesPlanWithBaselines(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	f.keys("enter")
	if f.m.screen != screenSetup || !strings.Contains(f.m.setup().err, "pick at least one model") {
		t.Fatalf("start without models: screen %v err %q", f.m.screen, f.m.setup().err)
	}
	f.startStudy("deit-tiny", "deit-small")
	var got []string
	for _, e := range f.m.sess.entries {
		got = append(got, e.exp.Model+"/"+e.exp.Precision)
	}
	want := "deit-tiny/fp32 deit-tiny/int8 deit-small/fp32 deit-small/int8"
	if strings.Join(got, " ") != want {
		t.Fatalf("queue %v, want %s", got, want)
	}
	if !f.hub.drv.running || !f.m.snap.running || len(f.hub.pending) != 1 {
		t.Fatalf("driver running %v (seen %v), %d segments started", f.hub.drv.running, f.m.snap.running, len(f.hub.pending))
	}
}

func TestStartRefusedWithoutORT(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	env := cpuEnv()
	env.ORT.LibraryPath, env.ORT.Err = "", errBoom
	f.env(env)
	f.keys("space", "enter")
	if f.m.screen != screenSetup || !strings.Contains(f.m.setup().err, "ONNX Runtime did not load: boom") {
		t.Fatalf("started without ORT: %q", f.m.setup().err)
	}
	if !strings.Contains(f.view(), "ORT not loaded") {
		t.Fatalf("header does not say ORT is missing:\n%s", f.view())
	}
}

func TestLiveUpdatesAndRecords(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	f.startStudy("deit-tiny")
	f.runExperiment(0, rec("deit-tiny", "fp32", 600, 1.6, 90<<20, 23<<20, 1, 1), 10)
	if e := f.m.sess.entries[0]; e.stage != stageDone || e.rec == nil || e.tput.n == 0 {
		t.Fatalf("entry 0 after its record: %+v", e)
	}
	// The variant's samples carry the baseline's level for the chart.
	e := f.plan()[1]
	f.update(study.Update{Index: 1, Experiment: e, Stage: study.StageRunning,
		Sample: &worker.Sample{Phase: "measuring", Throughput: 900, RSS: 100 << 20}})
	if f.m.sess.entries[1].stage != stageMeasuring || len(f.m.sess.base.pts) != 1 || f.m.sess.base.pts[0].v != 600 {
		t.Fatalf("variant sample: stage %v base %v", f.m.sess.entries[1].stage, f.m.sess.base.pts)
	}
	if !strings.Contains(f.view(), "measuring") {
		t.Fatalf("dashboard does not show the measuring run:\n%s", f.view())
	}
	f.runExperiment(1, rec("deit-tiny", "int8", 900, 1.1, 40<<20, 6<<20, 0.999, 0.99), 4)
	if len(f.m.sess.rows) != 2 || !f.m.sess.rows[1].HasBaseline {
		t.Fatalf("rows %+v", f.m.sess.rows)
	}
	if got := fmtRatio(f.m.sess.rows[1].Speedup); got != "1.50×" {
		t.Fatalf("speedup %s", got)
	}
}

// TestBaselineChartLineWithFusionsOn: with fusions on (the default of the
// real application) and provider options set, the live throughput chart
// still finds the FP32 baseline's level for a variant, including a
// repetition of it.
func TestBaselineChartLineWithFusionsOn(t *testing.T) {
	f := newFixture(t, 120, 40, func(o *Options) { o.Optimize = true })
	f.startStudy("deit-tiny")
	plan := f.plan()
	if !plan[0].Optimize || !plan[1].Optimize {
		t.Fatalf("plan without fusions: %+v", plan)
	}
	f.runExperiment(0, rec("deit-tiny", "fp32", 600, 1.6, 90<<20, 23<<20, 1, 1), 10)
	for _, repeat := range []int{0, 2} {
		e := plan[1]
		e.Repeat = repeat
		f.hub.sess.base.reset() // the hub owns the session; the model shows a snapshot
		f.update(study.Update{Index: 1, Experiment: e, Stage: study.StageRunning,
			Sample: &worker.Sample{Phase: "measuring", Throughput: 900}})
		if pts := f.m.sess.base.pts; len(pts) != 1 || pts[0].v != 600 {
			t.Fatalf("repeat %d: baseline chart line %v, want one point at the FP32 baseline's 600 img/s", repeat, pts)
		}
	}
	// Options are part of the key too: a variant with options set has no
	// baseline measured without them.
	e := plan[1]
	e.Options = "use_tf32=0"
	if _, ok := f.m.sess.baselineThroughput(e, f.m.sess.localHost); ok {
		t.Error("a baseline measured without provider options matched a variant with them")
	}
}

func TestSortingTable(t *testing.T) {
	rows := study.Summarize([]study.Record{
		rec("a", "fp32", 100, 10, 100<<20, 100<<20, 1, 1),
		rec("a", "int8", 300, 4, 50<<20, 25<<20, 0.99, 0.95),
		rec("a", "fp16", 150, 7, 60<<20, 50<<20, 0.9999, 1),
		failedRec("a", "int4", "boom"),
	})
	tb := newTable()
	order := func() string {
		var s []string
		for _, r := range tb.sorted(rows) {
			s = append(s, r.Experiment.Precision)
		}
		return strings.Join(s, " ")
	}
	if got := order(); got != "fp32 int8 fp16 int4" {
		t.Fatalf("plan order %q", got)
	}
	for tb.sortCol != colSpeedup {
		tb.cycleSort()
	}
	if got := order(); got != "int8 fp16 fp32 int4" {
		t.Fatalf("by speedup desc %q", got)
	}
	tb.desc = !tb.desc
	if got := order(); got != "fp32 fp16 int8 int4" {
		t.Fatalf("by speedup asc %q (failed rows stay last)", got)
	}
	for tb.sortCol != colP50 {
		tb.cycleSort()
	}
	if got := order(); got != "int8 fp16 fp32 int4" || tb.desc {
		t.Fatalf("by p50 %q desc=%v", got, tb.desc)
	}
	// The cursor follows its row through a re-sort.
	tb.sel = rowID(rows[0])
	tb.cycleSort()
	if r, _ := tb.selected(rows); r.Experiment.Precision != "fp32" {
		t.Fatalf("selection moved to %s", r.Experiment.Precision)
	}
	// Cycling past the last column returns to plan order.
	for range len(tb.cols) + 1 {
		tb.cycleSort()
		if tb.sortCol == -1 {
			break
		}
	}
	if tb.sortCol != -1 || order() != "fp32 int8 fp16 int4" {
		t.Fatalf("no return to plan order: col %d %q", tb.sortCol, order())
	}
}

func TestSortKeysOnDashboard(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	studyWithResults(f)
	f.keys("o")
	if f.m.dash().table.sortCol != colModel {
		t.Fatalf("o sorted by %d", f.m.dash().table.sortCol)
	}
	f.keys("O")
	if !f.m.dash().table.desc {
		t.Fatal("O did not reverse")
	}
}

func TestStopCurrentRunContinuesQueue(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	f.startStudy("deit-tiny")
	f.runExperiment(0, rec("deit-tiny", "fp32", 600, 1.6, 90<<20, 23<<20, 1, 1), 3)
	seg := f.hub.drv.seg
	e := f.plan()[1]
	f.update(study.Update{Index: 1, Experiment: e, Stage: study.StageRunning})
	f.keys("s")
	if !f.hub.drv.stopReq {
		t.Fatal("s did not stop the run")
	}
	cmd := f.endSegment(seg, context.Canceled)
	if got := f.m.sess.entries[1].stage; got != stageStopped {
		t.Fatalf("stopped run is %v", got)
	}
	if cmd == nil || f.hub.drv.running {
		// Nothing else was queued: the driver is idle.
		if f.hub.drv.running {
			t.Fatal("driver still running")
		}
	}
	// Queue two more and stop the first: the second starts in a new segment.
	f.hub.sess.enqueue([]study.Experiment{{Model: "x", Precision: "fp32", EP: "cpu", Batch: 1}, {Model: "x", Precision: "int8", EP: "cpu", Batch: 1}}, time.Second, f.now)
	f.endSegment(seg, nil) // the settled segment again: changes nothing, starts the queue
	if f.hub.drv.startNext(f.hub.sess) != nil {
		t.Fatal("a second segment started beside the first")
	}
	seg = f.hub.drv.seg
	f.update(study.Update{Index: 0, Experiment: f.plan()[0], Stage: study.StagePreparing})
	f.keys("s")
	f.endSegment(seg, context.Canceled)
	if f.m.sess.entries[2].stage != stageStopped || f.hub.drv.seg != seg+1 || !f.hub.drv.running {
		t.Fatalf("after stop: stage %v seg %d running %v", f.m.sess.entries[2].stage, f.hub.drv.seg, f.hub.drv.running)
	}
	if got := f.plan(); len(got) != 1 || got[0].Model != "x" || got[0].Precision != "int8" {
		t.Fatalf("next segment plan %+v", got)
	}
}

func TestCancelStudy(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	f.startStudy("deit-tiny", "deit-small")
	f.runExperiment(0, rec("deit-tiny", "fp32", 600, 1.6, 90<<20, 23<<20, 1, 1), 3)
	f.update(study.Update{Index: 1, Experiment: f.plan()[1], Stage: study.StagePreparing})
	ctx := f.hub.drv.studyCtx
	f.keys("x")
	if f.m.modal != modalCancel {
		t.Fatal("x did not ask")
	}
	f.keys("n")
	if f.m.modal != modalNone || ctx.Err() != nil {
		t.Fatal("n canceled anyway")
	}
	f.keys("x", "y")
	if ctx.Err() == nil {
		t.Fatal("study context not canceled")
	}
	f.segmentDone(context.Canceled)
	var stages []string
	for _, e := range f.m.sess.entries {
		stages = append(stages, e.stage.String())
	}
	if got := strings.Join(stages, ","); got != "done,stopped,canceled,canceled" {
		t.Fatalf("stages after cancel: %s", got)
	}
	if f.hub.drv.running || f.m.sess.running() {
		t.Fatal("still running after cancel")
	}
	// Nothing recorded for the stopped run; the done one stays.
	if len(f.m.sess.records) != 1 {
		t.Fatalf("records %d", len(f.m.sess.records))
	}
}

func TestQuitAsksWhileRunningAndWaitsForWorker(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	if !isQuit(f.keys("q")) {
		t.Fatal("q with nothing running did not quit")
	}
	f = newFixture(t, 120, 40, nil)
	f.startStudy("deit-tiny")
	ctx := f.hub.drv.studyCtx
	if cmd := f.keys("q"); cmd != nil && isQuit(cmd) {
		t.Fatal("q quit while running without asking")
	}
	if f.m.modal != modalQuit || !strings.Contains(f.view(), "A study is running. Quit?") {
		t.Fatalf("no quit question:\n%s", f.view())
	}
	if cmd := f.keys("y"); isQuit(cmd) {
		t.Fatal("quit before the worker stopped")
	}
	if ctx.Err() == nil || !f.m.quitting {
		t.Fatal("y did not cancel the study")
	}
	if !strings.Contains(f.view(), "stopping the worker") {
		t.Fatalf("no stopping notice:\n%s", f.view())
	}
	if cmd := f.segmentDone(context.Canceled); !isQuit(cmd) {
		t.Fatal("no quit once the runner returned")
	}
}

func TestCtrlCTwiceForceQuits(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	f.startStudy("deit-tiny")
	f.keys("ctrl+c")
	if f.m.modal != modalQuit {
		t.Fatal("ctrl+c did not ask")
	}
	if !isQuit(f.keys("ctrl+c")) {
		t.Fatal("second ctrl+c did not quit")
	}
	if f.hub.drv.studyCtx.Err() == nil {
		t.Fatal("force quit left the study running")
	}
}

func TestResize(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	studyWithResults(f)
	if f.m.dash().compact() {
		t.Fatal("120×40 is compact")
	}
	f.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	if !f.m.dash().compact() {
		t.Fatal("80×24 is not compact")
	}
	for _, l := range strings.Split(f.m.View(), "\n") {
		if w := width(l); w > 80 {
			t.Fatalf("line wider than the terminal (%d): %q", w, l)
		}
	}
	if n := strings.Count(f.m.View(), "\n") + 1; n != 24 {
		t.Fatalf("%d lines at 80×24", n)
	}
	f.send(tea.WindowSizeMsg{Width: 40, Height: 10})
	if !strings.Contains(f.view(), "terminal too small: 40×10") {
		t.Fatalf("no too-small notice:\n%s", f.view())
	}
	f.keys("3") // ignored while too small
	f.send(tea.WindowSizeMsg{Width: 200, Height: 60})
	if f.m.screen != screenDashboard {
		t.Fatalf("screen changed while too small: %v", f.m.screen)
	}
	for _, l := range strings.Split(f.m.View(), "\n") {
		if w := width(l); w != 200 {
			t.Fatalf("line of width %d at 200 columns: %q", w, l)
		}
	}
}

func TestEveryScreenFitsEverySize(t *testing.T) {
	for _, sz := range [][2]int{{60, 16}, {80, 24}, {100, 30}, {120, 40}, {200, 60}, {61, 50}, {220, 18}} {
		f := newFixture(t, sz[0], sz[1], nil)
		studyMidRun(f)
		for _, k := range []string{"1", "2", "tab", "tab", "3", "m", "2", "enter", "?", "?", "esc", "e"} {
			f.keys(k)
			lines := strings.Split(f.m.View(), "\n")
			if len(lines) != sz[1] {
				t.Fatalf("%dx%d after %q: %d lines", sz[0], sz[1], k, len(lines))
			}
			for _, l := range lines {
				if w := width(l); w > sz[0] {
					t.Fatalf("%dx%d after %q: line of width %d: %q", sz[0], sz[1], k, w, l)
				}
			}
		}
	}
}

func TestRerunAddsRepetition(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	studyWithResults(f)
	f.keys("down", "r")
	last := f.m.sess.entries[len(f.m.sess.entries)-1]
	if last.exp.Precision != "int8" || last.exp.Model != "deit-tiny" || last.exp.Repeat != 1 || last.stage != stageQueued {
		t.Fatalf("re-run entry %+v", last.exp)
	}
	if !f.hub.drv.running {
		t.Fatal("re-run did not start")
	}
	if got := f.plan(); len(got) != 1 || got[0].Repeat != 1 {
		t.Fatalf("re-run plan %+v", got)
	}
}

func TestDetailFromTableAndBack(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	studyWithResults(f)
	f.keys("down", "enter")
	if f.m.screen != screenDetail || f.m.detail().exp.Precision != "int8" {
		t.Fatalf("detail of %+v on screen %v", f.m.detail().exp, f.m.screen)
	}
	v := f.view()
	for _, want := range []string{"Why is it (not) faster?", "p99", "cosine mean 0.9991", "speedup 1.53× (1 run)",
		"peak working set 61.0M (peak RSS 101M − RSS before load", "decisive top-1 100.00% on 41 of 64", "not contended"} {
		if !strings.Contains(v, want) {
			t.Errorf("detail lacks %q", want)
		}
	}
	f.keys("G") // the reproduce command closes the (scrolling) detail
	if v := f.view(); !strings.Contains(v, "quantscope bench --models deit-tiny --precisions fp32,int8 --ep cpu --batch 1 --duration 10s --out results.jsonl") {
		t.Errorf("detail's end lacks the bench command:\n%s", v)
	}
	f.keys("g")
	f.keys("esc")
	if f.m.screen != screenDashboard {
		t.Fatalf("esc went to %v", f.m.screen)
	}
}

func TestHeatmapKeys(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	studyWithResults(f)
	f.keys("3", "m")
	if f.m.heat().metric != heatMemory {
		t.Fatalf("metric %v", f.m.heat().metric)
	}
	f.keys("right", "enter")
	if f.m.screen != screenDetail || f.m.detail().exp.Precision != "int8" {
		t.Fatalf("heatmap enter opened %+v", f.m.detail().exp)
	}
	f.keys("esc")
	if f.m.screen != screenHeatmap {
		t.Fatalf("esc from detail went to %v", f.m.screen)
	}
}

func TestLoadedRecordsAndWarnings(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	f.loaded(loadedMsg{recs: []study.Record{rec("m", "fp32", 10, 100, 1<<20, 1<<20, 1, 1)}, warnings: []string{"line 2: incomplete last line"}})
	if f.m.sess.loaded != 1 || len(f.m.sess.rows) != 1 {
		t.Fatalf("loaded %d rows %d", f.m.sess.loaded, len(f.m.sess.rows))
	}
	if !strings.Contains(f.m.toast, "loaded 1 record") || !strings.Contains(f.m.toast, "incomplete last line") {
		t.Fatalf("toast %q", f.m.toast)
	}
	// Running the same experiment again makes it the next repetition.
	idx := f.hub.sess.enqueue([]study.Experiment{{Model: "m", Precision: "fp32", EP: "cpu", Batch: 1}}, time.Second, f.now)
	if got := f.hub.sess.entries[idx[0]].exp.Repeat; got != 1 {
		t.Fatalf("repeat %d", got)
	}
}

func TestRunErrorFailsSegment(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	f.startStudy("deit-tiny")
	cmd := f.segmentDone(errBoom)
	_ = cmd
	for _, e := range f.m.sess.entries {
		if e.stage != stageFailed || e.reason != "boom" {
			t.Fatalf("entry after a run error: %v %q", e.stage, e.reason)
		}
	}
	if !f.m.toastErr || !strings.Contains(f.m.toast, "boom") {
		t.Fatalf("toast %q", f.m.toast)
	}
}

func TestFeedCoalescesSamples(t *testing.T) {
	fd := newFeed()
	fd.push(1, study.Update{Index: 0, Stage: study.StagePreparing})
	for i := range 1000 {
		fd.push(1, study.Update{Index: 0, Stage: study.StageRunning, Sample: &worker.Sample{Runs: i}})
	}
	r := study.Record{}
	fd.push(1, study.Update{Index: 0, Stage: study.StageDone, Record: &r})
	evs := fd.drain()
	if len(evs) != maxFeedSamples+2 {
		t.Fatalf("%d events", len(evs))
	}
	if evs[0].u.Stage != study.StagePreparing || evs[len(evs)-1].u.Record == nil {
		t.Fatal("stage changes dropped")
	}
	if evs[len(evs)-2].u.Sample.Runs != 999 {
		t.Fatal("newest sample dropped")
	}
	if len(fd.drain()) != 0 {
		t.Fatal("drain did not empty the feed")
	}
}

func TestETA(t *testing.T) {
	s := newSession()
	s.enqueue([]study.Experiment{{Model: "a"}, {Model: "b"}, {Model: "c"}}, 10*time.Second, t0)
	if got := s.eta(t0); got != 3*(10*time.Second+defaultOverhead) {
		t.Fatalf("eta before any run %v", got)
	}
	s.apply(0, study.Update{Stage: study.StagePreparing}, t0)
	r := rec("a", "fp32", 1, 1, 1, 1, 1, 1)
	s.apply(0, study.Update{Stage: study.StageDone, Record: &r}, t0.Add(20*time.Second))
	s.apply(1, study.Update{Stage: study.StagePreparing}, t0.Add(20*time.Second))
	if got := s.eta(t0.Add(25 * time.Second)); got != 15*time.Second+20*time.Second {
		t.Fatalf("eta mid-study %v", got)
	}
}

func TestExports(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "study.jsonl")
	rows := study.Summarize([]study.Record{
		rec("deit-tiny", "fp32", 600, 1.6, 90<<20, 23<<20, 1, 1),
		rec("deit-tiny", "int8", 900, 1.1, 40<<20, 6<<20, 0.999, 0.99),
		failedRec("deit-tiny", "int4", "quantize: nothing | converted"),
	})
	msg := exportCmd(rows, 3, out, exportCSV)().(exportDoneMsg)
	if msg.err != nil || !strings.Contains(msg.text, filepath.Join(dir, "study.csv")) {
		t.Fatalf("csv: %+v", msg)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "study.csv"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "model,precision,ep,batch") || !strings.Contains(lines[2], ",1.5,") {
		t.Fatalf("csv content:\n%s", b)
	}
	msg = exportCmd(rows, 3, out, exportMarkdown)().(exportDoneMsg)
	b, _ = os.ReadFile(filepath.Join(dir, "study.md"))
	if msg.err != nil || !strings.Contains(string(b), "| deit-tiny | int8 | cpu | 1 | 900 |") || !strings.Contains(string(b), `failed: quantize: nothing \| converted`) {
		t.Fatalf("markdown: %+v\n%s", msg, b)
	}
	if msg := exportCmd(rows, 3, out, exportJSONL)().(exportDoneMsg); msg.err == nil {
		t.Fatal("JSONL export of a missing file succeeded")
	}
	os.WriteFile(out, []byte("{}\n"), 0o644)
	if msg := exportCmd(rows, 3, out, exportJSONL)().(exportDoneMsg); msg.err != nil || !strings.Contains(msg.text, out) {
		t.Fatalf("jsonl: %+v", msg)
	}
}

func TestExportKeys(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, 120, 40, func(o *Options) { o.Out = filepath.Join(dir, "r.jsonl") })
	studyWithResults(f)
	f.keys("e")
	if f.m.modal != modalExport || !strings.Contains(f.view(), "Export the results") {
		t.Fatal("no export menu")
	}
	cmd := f.keys("c")
	if f.m.modal != modalNone || cmd == nil {
		t.Fatal("c did not export")
	}
	f.send(cmd())
	if !strings.Contains(f.m.toast, filepath.Join(dir, "r.csv")) {
		t.Fatalf("toast %q", f.m.toast)
	}
}

func TestBenchCommand(t *testing.T) {
	e := study.Experiment{Model: "/data/my model.onnx", Precision: "int4:block=64,asym", EP: "cpu", Batch: 8, Threads: 4}
	got := benchCommand(e, 90*time.Second, "out/results.jsonl", "")
	want := "quantscope bench --models '/data/my model.onnx' --precisions 'fp32,\"int4:block=64,asym\"' --ep cpu --batch 8 --threads 4 --duration 1m30s --out out/results.jsonl"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := benchCommand(study.Experiment{Model: "deit-tiny", Precision: "fp32", EP: "cpu", Batch: 1}, 0, "", "/o/libonnxruntime.so"); got != "quantscope bench --models deit-tiny --precisions fp32 --ep cpu --batch 1 --ort-lib /o/libonnxruntime.so" {
		t.Fatalf("baseline command %s", got)
	}
}

func TestNoColorKeepsAttributesOnly(t *testing.T) {
	mono := newStyles(termenv.ANSI256, true, nil)
	out := mono.good.Render("x") + mono.bad.Render("y") + mono.selected.Render("z") + mono.heatCell(8, "2.00×", 9, false)
	for _, sgr := range regexp.MustCompile(`\x1b\[([0-9;]*)m`).FindAllStringSubmatch(out, -1) {
		for _, p := range strings.Split(sgr[1], ";") {
			if n, _ := strconv.Atoi(p); n >= 30 && n <= 49 || n >= 90 && n <= 107 {
				t.Fatalf("colour code %q under NO_COLOR: %q", sgr[0], out)
			}
		}
	}
	if !strings.Contains(out, "\x1b[1m") || !strings.Contains(out, "\x1b[7m") {
		t.Fatalf("bold/reverse missing under NO_COLOR: %q", out)
	}
	color := newStyles(termenv.ANSI256, false, nil)
	if !strings.Contains(color.good.Render("x"), "\x1b[") {
		t.Fatal("no colour with colour on")
	}
	plain := newStyles(termenv.Ascii, false, nil)
	if s := plain.selected.Render("x") + plain.heatCell(8, "2.00×", 9, true); strings.Contains(s, "\x1b") {
		t.Fatalf("escape codes in plain mode: %q", s)
	}
}

func TestCatalogErrorShown(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	f.m.setup().items = nil
	f.send(catalogMsg{err: errBoom})
	if !strings.Contains(f.view(), "catalog: boom") {
		t.Fatalf("catalog error not shown:\n%s", f.view())
	}
}

func TestAddPath(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tiny.onnx")
	os.WriteFile(p, []byte("x"), 0o644)
	f := newFixture(t, 120, 40, nil)
	f.keys("a")
	f.typeText(p)
	cmd := f.keys("enter")
	f.send(cmd())
	if got := f.m.setup().selectedModels(); len(got) != 1 || got[0] != p {
		t.Fatalf("selected %v", got)
	}
	f.keys("a")
	f.typeText(filepath.Join(dir, "missing.onnx"))
	f.send(f.keys("enter")())
	if !strings.Contains(f.m.setup().err, "no such file") {
		t.Fatalf("missing path: %q", f.m.setup().err)
	}
}

func TestWhyFindings(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	c := f.m.viewCtx()
	exp := study.Experiment{Model: "mobilevit-xxs", Precision: "int8", EP: "cpu", Batch: 1}
	r := rec("mobilevit-xxs", "int8", 10, 100, 1<<20, 1<<20, 0.999, 0.99)
	m := r.Metrics
	m.OverheadFloor = true
	m.Latency.CV, m.Latency.SevereOutliers = 0.5, 3
	m.Precision = &quant.Report{NodesConverted: 35, NodesKept: 10,
		Ops:         []quant.OpPrecision{{Op: "Conv", Nodes: map[quant.Precision]int{quant.PrecInt8: 35}}},
		WeightBytes: map[int]int64{8: 100, 32: 900}}
	row := study.Row{Experiment: exp, Status: study.StatusOK, HasBaseline: true, Speedup: 0.25, Last: &r}
	// why renders the section for the row as exp (m is the row's metrics).
	why := func(exp study.Experiment) section {
		row.Experiment = exp
		return whySection(c, row)
	}
	text := strings.Join(why(exp).lines, "\n")
	for _, want := range []string{"not faster than fp32 (0.25×)", "overhead floor", "35 Conv nodes became ConvInteger",
		"only 10% of the weight bytes", "CV 50%, 3 severe outliers"} {
		if !strings.Contains(text, want) {
			t.Errorf("why lacks %q:\n%s", want, text)
		}
	}
	// A ViT's patch embedding rewritten as a MatMul is not a ConvInteger.
	m.Precision = &quant.Report{NodesConverted: 74, NodesKept: 56,
		Ops:      []quant.OpPrecision{{Op: "Conv", Nodes: map[quant.Precision]int{quant.PrecInt8: 1}}},
		Rewrites: []string{"Conv /patch_embed/Conv (16x16 kernel = stride) rewritten as a MatMul over patches"}}
	r.Optimized = &study.Optimization{Matched: map[string]int{"attention": 12, "skip-layernorm": 25, "fold-constants": 0}, NodesBefore: 470, NodesAfter: 134}
	text = strings.Join(why(exp).lines, "\n")
	if strings.Contains(text, "ConvInteger") {
		t.Errorf("patch embedding reported as ConvInteger:\n%s", text)
	}
	if !strings.Contains(text, "fusions: attention 12 · skip-layernorm 25 (graph 470 → 134 nodes)") {
		t.Errorf("why lacks the fusions:\n%s", text)
	}
	r.Optimized = nil
	// int4 on the CPU that is not faster says why.
	exp.Precision = "int4"
	if text := strings.Join(why(exp).lines, "\n"); !strings.Contains(text, "int8 is the CPU precision that saves time") {
		t.Errorf("int4 why:\n%s", text)
	}
	// fp16 on a CPU without fast fp16 says so.
	exp.Precision = "fp16"
	m.Precision, m.OverheadFloor, m.Latency.CV, m.Latency.SevereOutliers = nil, false, 0.01, 0
	text = strings.Join(why(exp).lines, "\n")
	if !strings.Contains(text, "no native FP16 arithmetic") || !strings.Contains(text, "no precision report") {
		t.Errorf("fp16 why:\n%s", text)
	}
	// A faster variant says how much; a CUDA run's CPU nodes are fallbacks.
	exp.EP = "cuda"
	row.Speedup, row.Verdict = 2, bench.VerdictOneRun
	m.Placement = map[string]int{"CUDAExecutionProvider": 40, "CPUExecutionProvider": 3}
	text = strings.Join(why(exp).lines, "\n")
	if !strings.Contains(text, "2.00× faster") || !strings.Contains(text, "3 nodes fell back to the CPU") || !strings.Contains(text, "EP placement: CPU 3 · CUDA 40") {
		t.Errorf("cuda why:\n%s", text)
	}
}

// gpuEnv is cpuEnv with a GPU on which doctor found CUDA ready.
func gpuEnv() Environment {
	env := cpuEnv()
	env.GPUStatus = telemetry.GPUStatus{State: telemetry.GPUStateOK, DriverVersion: "580.95.05"}
	env.GPUs = []telemetry.GPUInfo{{Name: "NVIDIA H200"}}
	env.EPs, env.EPNotes, env.DefaultEP = []string{"cpu", "cuda"}, nil, "cuda"
	return env
}

// TestEPDefaultsToCUDAWhenReady: on a machine where CUDA is ready the setup
// screen starts on cuda and the header says which EP is in use; an EP the
// user gave or picked is never replaced.
func TestEPDefaultsToCUDAWhenReady(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	if f.m.setup().currentEP() != "cpu" || !strings.Contains(f.view(), "ORT 1.29.0 · EP cpu") {
		t.Fatalf("CPU machine: EP %q\n%s", f.m.setup().currentEP(), f.view())
	}
	f.env(gpuEnv())
	if f.m.setup().currentEP() != "cuda" || !strings.Contains(f.view(), "H200 · drv 580.95.05 · ORT 1.29.0 · EP cuda") {
		t.Fatalf("CUDA ready: EP %q\n%s", f.m.setup().currentEP(), f.view())
	}
	f.startStudy("deit-tiny")
	for _, e := range f.plan() {
		if e.EP != "cuda" {
			t.Errorf("planned %s on %s, want cuda", e.Model, e.EP)
		}
	}

	given := newFixture(t, 120, 40, func(o *Options) { o.EP = "cpu" })
	given.env(gpuEnv())
	if given.m.setup().currentEP() != "cpu" {
		t.Errorf("--ep cpu given: setup starts on %q", given.m.setup().currentEP())
	}

	picked := newFixture(t, 120, 40, nil)
	picked.m.setup().setCur = setEP
	picked.m.setup().cycleSetting(1) // the user touched the EP before the probe answered
	picked.env(gpuEnv())
	if picked.m.setup().currentEP() != "cpu" {
		t.Errorf("a picked EP was replaced by %q", picked.m.setup().currentEP())
	}
}

// TestMemoryChartSaysDeviceWide: GPU memory samples without a figure for
// the worker's own process are the whole device's, and the chart says so.
func TestMemoryChartSaysDeviceWide(t *testing.T) {
	for _, scope := range []string{bench.GPUScopeProcess, bench.GPUScopeDevice} {
		f := newFixture(t, 160, 40, nil)
		f.startStudy("deit-tiny")
		e := f.plan()[0]
		f.update(study.Update{Index: 0, Experiment: e, Stage: study.StageRunning,
			Sample: &worker.Sample{Phase: "measuring", Throughput: 900, RSS: 100 << 20, GPUBytes: 700 << 20, GPUScope: scope}})
		v := f.view()
		device := strings.Contains(v, "GPU device-wide 700M") && strings.Contains(v, "GPU device-wide MiB")
		if device != (scope == bench.GPUScopeDevice) || !strings.Contains(v, "700M") {
			t.Errorf("scope %s: chart:\n%s", scope, v)
		}
	}
}

// TestSpeedupColumnFollowsTheVerdictRule: the table's speedup cell and
// status glyph say what study.Row's one rule says: 1 run is marked, a
// contended ratio is uncertain and not coloured faster, a contended run
// has its glyph, and the footnote explains memory and the marks.
func TestSpeedupColumnFollowsTheVerdictRule(t *testing.T) {
	st := newStyles(termenv.TrueColor, false, nil)
	base := rec("deit-tiny", "fp32", 600, 1.6, 90<<20, 23<<20, 1, 1)
	fast := rec("deit-tiny", "int8", 900, 1.1, 40<<20, 6<<20, 0.999, 0.99)
	rows := study.Summarize([]study.Record{base, fast})
	if txt, sty := speedupCell(rows[1], st); txt != "1.50×"+markOneRun || sty.GetForeground() != st.good.GetForeground() {
		t.Errorf("1 run: %q", txt)
	}
	contended := base
	m := *base.Metrics
	m.Contention = &bench.Contention{Share: 0.4, Contended: true, Threads: 2, CPUs: 2, WallS: 10}
	contended.Metrics = &m
	rows = study.Summarize([]study.Record{contended, fast})
	if txt, _ := speedupCell(rows[1], st); txt != "1.50×"+markUncertain || rows[1].Faster() {
		t.Errorf("contended baseline: %q faster %v", txt, rows[1].Faster())
	}
	tm := newTable()
	view := ansi.Strip(tm.view(rows, st, 140, 8, true))
	if !strings.Contains(view, glyphContend+" deit-tiny") || !strings.Contains(view, "mem = peak working set") {
		t.Errorf("table:\n%s", view)
	}
	if fn := footnote(rows); !strings.Contains(fn, glyphContend+" contended · "+markUncertain+" uncertain") || !strings.Contains(fn, "* decisive top-1") ||
		strings.Contains(fn, markOneRun+" 1 run") {
		t.Errorf("footnote %q", fn)
	}
	// Three paired rounds, clean: an interval and a colour, no mark.
	var recs []study.Record
	for r, j := range []float64{1, 1.02, 0.98} {
		b, v := base, fast
		bm, vm := *b.Metrics, *v.Metrics
		bm.Throughput, vm.Throughput = 600*j, 900*j*(1+0.005*float64(r))
		b.Metrics, v.Metrics = &bm, &vm
		b.Experiment.Repeat, v.Experiment.Repeat = r, r
		recs = append(recs, b, v)
	}
	rows = study.Summarize(recs)
	if txt, _ := speedupCell(rows[1], st); txt != "1.51×" || rows[1].Verdict != bench.VerdictFaster {
		t.Errorf("repeats: %q %s", txt, rows[1].Verdict)
	}
}

// TestSpeedColoursFollowTheVerdict: img/s and p50 take the row's verdict's
// colour; a p50 20% lower whose throughput ratio is within noise is not
// called faster by its colour (the table once used its own 5% band on
// the latency ratio).
func TestSpeedColoursFollowTheVerdict(t *testing.T) {
	st := newStyles(termenv.TrueColor, false, nil)
	cols := tableColumns()
	base := rec("deit-tiny", "fp32", 600, 1.6, 90<<20, 23<<20, 1, 1)
	for _, tc := range []struct {
		tput, p50 float64
		want      lipgloss.Style
	}{
		{900, 1.1, st.good},           // 1.5×: faster
		{610, 1.28, lipgloss.Style{}}, // 1.02×: within noise, whatever p50 says
		{300, 3.2, st.bad},            // 0.5×: slower
	} {
		rows := study.Summarize([]study.Record{base, rec("deit-tiny", "int8", tc.tput, tc.p50, 40<<20, 6<<20, 0.999, 0.99)})
		for _, c := range []int{colThroughput, colP50} {
			if _, sty := cols[c].text(rows[1], st); sty.GetForeground() != tc.want.GetForeground() {
				t.Errorf("%s at %v img/s, p50 %v ms (verdict %s, speedup %.2f): colour %v, want %v",
					cols[c].title, tc.tput, tc.p50, rows[1].Verdict, rows[1].Speedup, sty.GetForeground(), tc.want.GetForeground())
			}
		}
	}
}

// TestBackboneShowsNoTop1: an embedding model's top-1 is "—" in the table.
func TestBackboneShowsNoTop1(t *testing.T) {
	st := newStyles(termenv.TrueColor, false, nil)
	rows := study.Summarize([]study.Record{rec("dino-vits16", "fp32", 30, 33, 90<<20, 88<<20, 1, 1), rec("dino-vits16", "int8", 45, 22, 40<<20, 23<<20, 0.9996, 0.98)})
	if !rows[1].Traits.Backbone() {
		t.Fatalf("dino-vits16 traits %+v", rows[1].Traits)
	}
	if txt, _ := tableColumns()[colTop1].text(rows[1], st); txt != "—" {
		t.Errorf("backbone top-1 cell %q", txt)
	}
}
