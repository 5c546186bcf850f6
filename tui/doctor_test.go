package tui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/quantscope/quantscope/profiler/hwbench"
	"github.com/quantscope/quantscope/profiler/telemetry"
)

// doctorLines are a GPU machine's judged lines, one of each verdict.
func doctorLines() []hwbench.Line {
	return []hwbench.Line{
		{ID: "cpu.gemm.fp32", Group: "compute", Device: "cpu", Name: "FP32 GEMM (MatMul)", Value: 1842, Unit: "GFLOP/s", Expected: 3584, Percent: 51.4, Verdict: hwbench.OK,
			Basis: "theoretical peak: 56 cores × 2.00 GHz (measured) × 32 per cycle"},
		{ID: "gpu.gemm.fp16", Group: "compute", Device: "gpu0", Name: "FP16 GEMM", Value: 512.4, Unit: "TFLOP/s", Expected: 989.4, Percent: 51.8, Verdict: hwbench.Below,
			Cause: "likely: the link trained at x4 of x16", Next: "reseat the card and check the riser", Basis: "theoretical peak: 132 SMs × 1830 MHz × 4096"},
		{ID: "gpu.gemm.int8", Group: "compute", Device: "gpu0", Name: "INT8 GEMM (MatMulInteger)", Unit: "TOPS", Verdict: hwbench.Info,
			Error: "CUDAExecutionProvider lacks kernels for part of this model"},
		{ID: "gpu.memory.device", Group: "memory", Device: "gpu0", Name: "device memory (element-wise)", Value: 2911, Unit: "GB/s", Expected: 3350, Percent: 86.9, Verdict: hwbench.OK},
		{ID: "inference.vit-base-16", Group: "inference", Device: "gpu0", Name: "vit-base-16 FP16 b32 (CUDA, fused)", Value: 3102, Unit: "samples/s", Verdict: hwbench.Info,
			Note: "no reference for this machine"},
		{ID: "health.gpu.pcie", Group: "health", Device: "gpu0", Name: "PCIe link", Value: 15.8, Unit: "GB/s", Expected: 63, Percent: 25, Verdict: hwbench.Fault,
			Cause: "the link trained at x4 of x16: a badly seated card, a riser or a slot fault", Next: "reseat the card and check the riser", Note: "Gen5 x4"},
		{ID: "health.gpu.mig", Group: "health", Device: "gpu0", Name: "MIG mode", Verdict: hwbench.OK, Note: "off"},
	}
}

// doctorMidRun starts the check and delivers its first events by hand.
func doctorMidRun(f *fixture) {
	f.keys("4", "enter")
	gen := f.m.doc().gen
	ev := func(e hwbench.Event) { f.send(doctorEventMsg{gen: gen, ev: e, ok: true}) }
	lines := doctorLines()
	ev(hwbench.Event{Kind: hwbench.EventStep, Step: 4, Steps: 12, Label: "FP32 GEMM (CPU)"})
	ev(hwbench.Event{Kind: hwbench.EventLine, Line: &lines[0]})
	ev(hwbench.Event{Kind: hwbench.EventStep, Step: 8, Steps: 12, Label: "FP16 GEMM (GPU)"})
	f.advance(17 * time.Second)
	ev(hwbench.Event{Kind: hwbench.EventSample, Phase: "measuring", Value: 498.7, Unit: "TFLOP/s", Expected: 989.4})
	ev(hwbench.Event{Kind: hwbench.EventGPU, GPU: &telemetry.GPULoad{SMClockMHz: 1755, PowerW: 688, TempC: 71, UtilPct: 100,
		PCIeGen: 5, PCIeWidth: 4, Throttle: []string{"sw power cap"}}, MaxSMMHz: 1980, PowerLimitW: 700, SlowdownC: 87})
}

// doctorFinished plays a whole run to its report.
func doctorFinished(f *fixture) {
	doctorMidRun(f)
	f.advance(30 * time.Second)
	rep := &hwbench.Report{Schema: 1, Seconds: 47, Lines: doctorLines(), Verdict: hwbench.Fault,
		Machine: hwbench.Machine{EP: "cuda", LoadStart: 0.2, LoadEnd: 2.9}}
	f.send(doctorDoneMsg{gen: f.m.doc().gen, rep: rep})
	f.send(toastExpiredMsg{id: f.m.toastID})
}

func withDoctor(o *Options) {
	o.Doctor = func(ctx context.Context, emit func(hwbench.Event)) (*hwbench.Report, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
}

func TestGoldenDoctor(t *testing.T) {
	for _, sc := range []struct {
		name  string
		setup func(f *fixture)
	}{
		{"doctor-idle", func(f *fixture) { f.keys("4") }},
		{"doctor-running", doctorMidRun},
		{"doctor-done", func(f *fixture) {
			doctorFinished(f)
			f.keys("down", "down", "down", "down", "down") // the PCIe fault
		}},
	} {
		for _, sz := range goldenSizes {
			t.Run(fmt.Sprintf("%s/%dx%d", sc.name, sz[0], sz[1]), func(t *testing.T) {
				f := newFixture(t, sz[0], sz[1], withDoctor)
				sc.setup(f)
				golden.RequireEqual(t, []byte(f.view()))
			})
		}
	}
}

// TestDoctorScreenRules: no Doctor screen without a check to run; a late
// message from an earlier run changes nothing; a study and the check never
// run together.
func TestDoctorScreenRules(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	f.keys("4")
	if f.m.screen == screenDoctor || strings.Contains(f.view(), "4 Doctor") {
		t.Fatal("Doctor screen without a DoctorFunc")
	}

	f = newFixture(t, 120, 40, withDoctor)
	doctorMidRun(f)
	before := len(f.m.doc().lines)
	line := doctorLines()[1]
	f.send(doctorEventMsg{gen: f.m.doc().gen - 1, ev: hwbench.Event{Kind: hwbench.EventLine, Line: &line}, ok: true})
	f.send(doctorDoneMsg{gen: f.m.doc().gen - 1, err: errBoom})
	if len(f.m.doc().lines) != before || !f.m.doc().running {
		t.Error("a stale run's messages were applied")
	}
	f.keys("1")
	f.startStudyExpectingRefusal(t)

	// Events queued behind the report (the run ends before the UI drained
	// them) must not add its lines twice.
	f = newFixture(t, 120, 40, withDoctor)
	doctorFinished(f)
	n := len(f.m.doc().lines)
	late := doctorLines()[5]
	if cmd := f.m.doc().onEvent(doctorEventMsg{gen: f.m.doc().gen, ev: hwbench.Event{Kind: hwbench.EventLine, Line: &late}, ok: true}); cmd != nil || len(f.m.doc().lines) != n {
		t.Errorf("a late event after the report: %d lines, want %d", len(f.m.doc().lines), n)
	}

	f = newFixture(t, 120, 40, withDoctor)
	f.startStudy("deit-tiny")
	f.keys("4", "enter")
	if f.m.doc().running || !strings.Contains(f.m.toast, "a study is running") {
		t.Errorf("the check started during a study (toast %q)", f.m.toast)
	}
}

// startStudyExpectingRefusal tries to start a study while the check runs.
func (f *fixture) startStudyExpectingRefusal(t *testing.T) {
	t.Helper()
	f.keys("/")
	f.typeText("deit-tiny")
	f.keys("enter", "space", "esc", "enter")
	if f.m.screen == screenDashboard || !strings.Contains(f.m.setup().err, "hardware check is running") {
		t.Errorf("a study started during the check (screen %v, err %q)", f.m.screen, f.m.setup().err)
	}
}

// TestProgramRunsDoctor drives the real commands: the check runs in a
// tea.Cmd, its events arrive one by one, the report lands; a second run is
// canceled with x and its DoctorFunc sees the cancellation.
func TestProgramRunsDoctor(t *testing.T) {
	t.Chdir(t.TempDir())
	var runs, canceled atomic.Int32
	opts := programOptions(t, fakeStudy(1))
	opts.Doctor = func(ctx context.Context, emit func(hwbench.Event)) (*hwbench.Report, error) {
		n := runs.Add(1)
		lines := doctorLines()
		for i := range lines {
			emit(hwbench.Event{Kind: hwbench.EventStep, Step: i + 1, Steps: len(lines), Label: "step " + lines[i].Name})
			emit(hwbench.Event{Kind: hwbench.EventSample, Value: float64(i), Unit: "GB/s"})
			emit(hwbench.Event{Kind: hwbench.EventLine, Line: &lines[i]})
			time.Sleep(5 * time.Millisecond)
		}
		if n == 2 {
			<-ctx.Done()
			canceled.Add(1)
			return nil, ctx.Err()
		}
		return &hwbench.Report{Lines: lines, Verdict: hwbench.Fault, Machine: hwbench.Machine{EP: "cuda"}}, nil
	}
	tm := teatest.NewTestModel(t, New(context.Background(), opts), teatest.WithInitialTermSize(120, 40))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("4 Doctor")) },
		teatest.WithDuration(5*time.Second))
	typeKeys(tm, "4", "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("hardware check done: fault")) },
		teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
	typeKeys(tm, "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("step MIG mode")) },
		teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
	typeKeys(tm, "x")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("hardware check: context canceled")) },
		teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
	typeKeys(tm, "q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	m := tm.FinalModel(t).(Model)
	if runs.Load() != 2 || canceled.Load() != 1 || m.doc().running || !errors.Is(m.doc().err, context.Canceled) {
		t.Fatalf("runs %d, canceled %d, running %v, err %v", runs.Load(), canceled.Load(), m.doc().running, m.doc().err)
	}
}
