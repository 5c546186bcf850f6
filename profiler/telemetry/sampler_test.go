package telemetry

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/quantscope/quantscope/profiler/telemetry/telemetrytest"
)

func TestGPUSamplerReadsFields(t *testing.T) {
	srv := telemetrytest.DGXH100(1)
	g := &srv.GPUs[0]
	g.UtilizationPct, g.SMClockMHz, g.ThrottleReasons = 97, 1980, nvml.ClocksEventReasonSwPowerCap
	g.Energy = func() uint64 { return 123_456 }
	g.Processes = []nvml.ProcessInfo{{Pid: 11, UsedGpuMemory: 1 << 20}, {Pid: 42, UsedGpuMemory: 3 << 30}}
	s, err := NewGPUSampler(srv.NVML(), 0, 42)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x := s.Sample()
	if x.MemUsed != 512<<20 || x.UtilPct != 97 || x.TempC != 34 || x.PowerW != 71.5 || x.SMClockMHz != 1980 ||
		!x.HasEnergy || x.EnergyMJ != 123_456 || x.CallLatency <= 0 {
		t.Errorf("sample %+v", x)
	}
	if p := s.ProcessMemory(); !p.OK || p.Bytes != 3<<30 || p.Reason != "" {
		t.Errorf("process memory %+v, want 3 GiB for pid 42", p)
	}
	if got := ThrottleReasons(x.Throttle); len(got) != 1 || got[0] != "sw power cap" {
		t.Errorf("throttle %v", got)
	}
}

func TestGPUSamplerUnsupportedFieldsAndNoGPU(t *testing.T) {
	srv := telemetrytest.DGXH100(1)
	srv.GPUs[0].Fail = map[string]nvml.Return{telemetrytest.FieldEnergy: nvml.ERROR_NOT_SUPPORTED, telemetrytest.FieldProcesses: nvml.ERROR_NO_PERMISSION}
	s, err := NewGPUSampler(srv.NVML(), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if x := s.Sample(); x.HasEnergy || x.PowerW != 71.5 {
		t.Errorf("unsupported energy: %+v", x)
	}
	if p := s.ProcessMemory(); p.OK || p.Reason != "NVML process list: ERROR_NO_PERMISSION" {
		t.Errorf("process memory without permission: %+v", p)
	}
	s.Close()
	if _, err := NewGPUSampler(telemetrytest.NoLibrary().NVML(), 0, 1); !errors.Is(err, ErrNoGPU) {
		t.Errorf("no NVML: err = %v", err)
	}
}

// TestGPUSamplerNotAvailableValues feeds NVML's "not available" value (all
// ones) into every field: none is recorded as a figure (16 EiB of memory,
// 4.3 GW of power), and a process listed without a memory figure, or not
// listed at all, says why.
func TestGPUSamplerNotAvailableValues(t *testing.T) {
	const na64, na32 = ^uint64(0), ^uint32(0)
	srv := telemetrytest.DGXH100(1)
	g := &srv.GPUs[0]
	g.MemoryUsedBytes, g.TemperatureC, g.PowerDrawMW, g.SMClockMHz = na64, na32, na32, na32
	g.Energy = func() uint64 { return na64 }
	g.Processes = []nvml.ProcessInfo{{Pid: 42, UsedGpuMemory: na64}, {Pid: 7, UsedGpuMemory: 1 << 30}}
	s, err := NewGPUSampler(srv.NVML(), 0, 42)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x := s.Sample()
	if x.MemUsed != 0 || x.TempC != 0 || x.PowerW != 0 || x.SMClockMHz != 0 || x.HasEnergy {
		t.Errorf("not-available readings recorded as figures: %+v", x)
	}
	p := s.ProcessMemory()
	if p.OK || p.Bytes != 0 || p.Reason != ReasonNotAvailable {
		t.Errorf("process listed with memory not available: %+v", p)
	}
	var r GPURun
	r.Add(x)
	r.AddProcessMemory(p)
	if sum := r.Summary(); sum.ProcessOK || sum.ProcessMem != 0 || sum.ProcessReason != ReasonNotAvailable || sum.MemPeak != 0 {
		t.Errorf("summary %+v", sum)
	}

	absent, err := NewGPUSampler(srv.NVML(), 0, 99)
	if err != nil {
		t.Fatal(err)
	}
	defer absent.Close()
	if p := absent.ProcessMemory(); p.OK || p.Reason != ReasonPidAbsent {
		t.Errorf("pid absent from the list: %+v", p)
	}
	// A figure read once stays the run's, whatever later readings lack.
	r.AddProcessMemory(ProcessMemory{Bytes: 2 << 30, OK: true})
	r.AddProcessMemory(absent.ProcessMemory())
	if sum := r.Summary(); !sum.ProcessOK || sum.ProcessMem != 2<<30 {
		t.Errorf("summary after a good reading %+v", sum)
	}
}

// TestWatchEnergyFromCounter: a counter rising 300 W worth of millijoules
// per second gives joules = elapsed × 300 within sampling error; without the
// counter, the power integral at a constant 71.5 W does the same.
func TestWatchEnergyFromCounter(t *testing.T) {
	srv := telemetrytest.DGXH100(1)
	start := time.Now()
	var calls atomic.Int64
	srv.GPUs[0].Energy = func() uint64 {
		calls.Add(1)
		return 5_000_000 + uint64(time.Since(start).Seconds()*300_000)
	}
	run := func(fail map[string]nvml.Return) (GPURunSummary, float64) {
		srv.GPUs[0].Fail = fail
		s, err := NewGPUSampler(srv.NVML(), 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var r GPURun
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		Watch(ctx, s, &r, 20*time.Millisecond, time.Second, nil)
		return r.Summary(), time.Since(t0).Seconds()
	}
	sum, elapsed := run(nil)
	if sum.EnergySource != "nvml counter" || math.Abs(sum.Joules-300*elapsed) > 300*0.05 {
		t.Errorf("counter energy %.2f J over %.3f s (want ≈ %.2f): %+v", sum.Joules, elapsed, 300*elapsed, sum)
	}
	if sum.Samples < 10 || sum.MeanPowerW != 71.5 || sum.TempMaxC != 34 {
		t.Errorf("summary %+v", sum)
	}
	sum, elapsed = run(map[string]nvml.Return{telemetrytest.FieldEnergy: nvml.ERROR_NOT_SUPPORTED})
	if sum.EnergySource != "power integral" || math.Abs(sum.Joules-71.5*elapsed) > 71.5*0.15 {
		t.Errorf("integral energy %.2f J over %.3f s (want ≈ %.2f)", sum.Joules, elapsed, 71.5*elapsed)
	}
}

// BenchmarkGPUSample measures the sampler's own per-call cost against the
// mock (the Go side of a reading; NVML itself adds ~10–60 µs per query on a
// real device).
func BenchmarkGPUSample(b *testing.B) {
	srv := telemetrytest.DGXH100(1)
	s, err := NewGPUSampler(srv.NVML(), 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for b.Loop() {
		s.Sample()
	}
}
