package tui

import (
	"fmt"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/worker"
)

// Golden views of every screen at 80×24 and 120×40 with the ASCII profile,
// driven by fake runner events through Update. Refresh with
// `go test ./tui -run TestGolden -update` and review the diff.

var goldenSizes = [][2]int{{80, 24}, {120, 40}}

// studyWithResults runs four experiments of a deit-tiny/deit-small int8
// study: three ok, one failed, and leaves the study finished.
func studyWithResults(f *fixture) {
	f.startStudy("deit-tiny", "deit-small")
	f.runExperiment(0, rec("deit-tiny", "fp32", 642, 1.52, 92<<20, 23<<20, 1, 1), 24)
	f.runExperiment(1, rec("deit-tiny", "int8", 981, 0.98, 41<<20, 6<<20, 0.99912, 0.984), 24)
	f.runExperiment(2, rec("deit-small", "fp32", 233, 4.2, 330<<20, 88<<20, 1, 1), 24)
	f.runExperiment(3, failedRec("deit-small", "int8", "worker: exit status 134 (SIGABRT): MatMulInteger kernel aborted"), 0)
	f.segmentDone(nil)
	f.advance(2 * time.Second)
	f.send(toastExpiredMsg{id: f.m.toastID})
}

// studyMidRun finishes the baseline and leaves the int8 variant measuring.
func studyMidRun(f *fixture) {
	f.startStudy("deit-tiny", "deit-small")
	f.runExperiment(0, rec("deit-tiny", "fp32", 642, 1.52, 92<<20, 23<<20, 1, 1), 24)
	e := f.plan()[1]
	f.update(study.Update{Index: 1, Experiment: e, Stage: study.StagePreparing})
	f.advance(3 * time.Second)
	f.update(study.Update{Index: 1, Experiment: e, Stage: study.StageRunning})
	for k := 0; k < 30; k++ {
		f.advance(250 * time.Millisecond)
		phase := bench.PhaseMeasuring
		if k < 4 {
			phase = bench.PhaseWarmup
		}
		f.update(study.Update{Index: 1, Experiment: e, Stage: study.StageRunning, Sample: &worker.Sample{
			Phase: phase, Throughput: 960 + float64((k*37)%50), LatencyMs: 1.0 + float64(k%5)/50, RSS: 180<<20 + int64(k%3)<<20,
			CPUPct: 1500 + float64((k*13)%80), CPUTempC: 58 + float64(k/6),
		}})
	}
	f.send(toastExpiredMsg{id: f.m.toastID})
}

func TestGolden(t *testing.T) {
	scenarios := []struct {
		name  string
		setup func(f *fixture)
	}{
		{"setup", func(f *fixture) {
			f.keys("space", "down", "down", "space", "up")
			f.keys("tab", "down", "space", "down", "down", "down", "right")
		}},
		{"setup-filter", func(f *fixture) {
			f.keys("/")
			f.typeText("dei")
		}},
		{"dashboard-mid-run", func(f *fixture) {
			studyMidRun(f)
			if f.m.dash().compact() {
				f.keys("tab") // table → charts
			}
		}},
		{"dashboard-queue", func(f *fixture) {
			studyMidRun(f)
			if f.m.dash().compact() {
				f.keys("tab", "tab") // → queue
			} else {
				f.keys("shift+tab")
			}
		}},
		{"table", func(f *fixture) {
			studyWithResults(f)
			f.keys("down")
		}},
		{"table-sorted", func(f *fixture) {
			studyWithResults(f)
			for f.m.dash().table.sortCol != colSpeedup {
				f.keys("o")
			}
		}},
		{"heatmap", func(f *fixture) {
			studyWithResults(f)
			f.keys("3", "right")
		}},
		{"heatmap-fidelity", func(f *fixture) {
			studyWithResults(f)
			f.keys("3", "m", "m", "m")
		}},
		{"detail", func(f *fixture) {
			studyWithResults(f)
			f.keys("down", "enter")
		}},
		{"detail-failed", func(f *fixture) {
			studyWithResults(f)
			f.keys("down", "down", "down", "enter")
		}},
		{"help", func(f *fixture) {
			studyWithResults(f)
			f.keys("?")
		}},
		{"quit-confirm", func(f *fixture) {
			studyMidRun(f)
			f.keys("q")
		}},
		{"export-menu", func(f *fixture) {
			studyWithResults(f)
			f.keys("e")
		}},
	}
	for _, sc := range scenarios {
		for _, sz := range goldenSizes {
			t.Run(fmt.Sprintf("%s/%dx%d", sc.name, sz[0], sz[1]), func(t *testing.T) {
				f := newFixture(t, sz[0], sz[1], nil)
				sc.setup(f)
				golden.RequireEqual(t, []byte(f.view()))
			})
		}
	}
}

func TestGoldenTooSmall(t *testing.T) {
	f := newFixture(t, 50, 12, nil)
	golden.RequireEqual(t, []byte(f.view()))
}
