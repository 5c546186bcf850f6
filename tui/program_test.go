package tui

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest"

	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/worker"
)

// fakeStudy is a RunFunc that plays each experiment as the real runner
// would (preparing, running with samples, a record appended to the results
// file), fast. Variants run 1.5× faster than fp32.
func fakeStudy(samples int) RunFunc {
	return func(ctx context.Context, plan []study.Experiment, cfg study.RunConfig) ([]study.Record, error) {
		w, err := study.OpenWriter(cfg.Out)
		if err != nil {
			return nil, err
		}
		defer w.Close()
		var out []study.Record
		for i, e := range plan {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			cfg.OnUpdate(study.Update{Index: i, Experiment: e, Stage: study.StagePreparing})
			cfg.OnUpdate(study.Update{Index: i, Experiment: e, Stage: study.StageRunning})
			tput := 600.0
			if !e.IsBaseline() {
				tput = 900
			}
			for k := 0; k < samples; k++ {
				cfg.OnUpdate(study.Update{Index: i, Experiment: e, Stage: study.StageRunning,
					Sample: &worker.Sample{Phase: "measuring", Throughput: tput, LatencyMs: 1000 / tput, RSS: 100 << 20}})
				time.Sleep(time.Millisecond)
			}
			r := rec(e.Model, e.Precision, tput, 1000/tput, 50<<20, 10<<20, 0.9995, 0.99)
			r.Experiment = e
			if err := w.Append(r); err != nil {
				return out, err
			}
			out = append(out, r)
			cfg.OnUpdate(study.Update{Index: i, Experiment: e, Stage: study.StageDone, Record: &r})
		}
		return out, nil
	}
}

func programOptions(t *testing.T, run RunFunc) Options {
	t.Helper()
	f := &fixture{t: t, now: t0}
	o := testOptions(f)
	o.Run = run
	o.Probe = func(context.Context) Environment { return cpuEnv() }
	o.TickInterval = 10 * time.Millisecond
	return o
}

func typeKeys(tm *teatest.TestModel, keys ...string) {
	for _, k := range keys {
		if len(k) > 1 && k != "enter" && k != "esc" && k != "space" && k != "tab" {
			tm.Type(k)
			continue
		}
		tm.Send(keyMsg(k))
	}
}

// TestProgramRunsStudy drives the whole program: pick deit-tiny with int8,
// start, wait for both rows, quit with q; the results file holds both.
func TestProgramRunsStudy(t *testing.T) {
	t.Chdir(t.TempDir())
	opts := programOptions(t, fakeStudy(8))
	tm := teatest.NewTestModel(t, New(context.Background(), opts), teatest.WithInitialTermSize(120, 40))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("deit-tiny")) },
		teatest.WithDuration(5*time.Second))
	typeKeys(tm, "/", "deit-tiny", "enter", "space", "esc", "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("study finished: 2 ok")) },
		teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
	typeKeys(tm, "q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	m := tm.FinalModel(t).(Model)
	if len(m.sess.rows) != 2 || !m.sess.rows[1].HasBaseline || fmtRatio(m.sess.rows[1].Speedup) != "1.50×" {
		t.Fatalf("rows %+v", m.sess.rows)
	}
	recs, _, err := study.ReadResults("results.jsonl")
	if err != nil || len(recs) != 2 || !recs[0].OK() || !recs[1].OK() {
		t.Fatalf("results file: %d records, %v", len(recs), err)
	}
	v := m.View()
	for _, want := range []string{"deit-tiny", "int8", "1.50×", "base"} {
		if !strings.Contains(v, want) {
			t.Errorf("final view lacks %q:\n%s", want, v)
		}
	}
}

// TestProgramQuitMidStudy quits while a run is in progress: the runner's
// context is canceled and the program ends only after it returned.
func TestProgramQuitMidStudy(t *testing.T) {
	t.Chdir(t.TempDir())
	var started, returned atomic.Bool
	run := func(ctx context.Context, plan []study.Experiment, cfg study.RunConfig) ([]study.Record, error) {
		started.Store(true)
		cfg.OnUpdate(study.Update{Index: 0, Experiment: plan[0], Stage: study.StageRunning,
			Sample: &worker.Sample{Phase: "measuring", Throughput: 100}})
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // the worker's grace period
		returned.Store(true)
		return nil, ctx.Err()
	}
	opts := programOptions(t, run)
	m0 := New(context.Background(), opts)
	tm := teatest.NewTestModel(t, m0, teatest.WithInitialTermSize(80, 24))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("deit-tiny")) },
		teatest.WithDuration(5*time.Second))
	typeKeys(tm, "space", "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("measuring")) },
		teatest.WithDuration(5*time.Second))
	typeKeys(tm, "q")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("Quit?")) },
		teatest.WithDuration(5*time.Second))
	typeKeys(tm, "y")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	if !started.Load() || !returned.Load() {
		t.Fatalf("program ended before the runner returned (started %v returned %v)", started.Load(), returned.Load())
	}
	if !m0.Close(time.Second) {
		t.Fatal("Close timed out")
	}
	final := tm.FinalModel(t).(Model)
	if got := final.sess.entries[0].stage; got != stageStopped {
		t.Fatalf("stage of the interrupted run: %v", got)
	}
}
