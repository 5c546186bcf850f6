package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/telemetry/telemetrytest"
)

func requireORT(t *testing.T) {
	t.Helper()
	if _, err := ort.Init(""); err != nil {
		if os.Getenv("QUANTSCOPE_REQUIRE_ORT") != "" {
			t.Fatalf("ONNX Runtime required: %v", err)
		}
		t.Skipf("ONNX Runtime not installed (run `make setup`): %v", err)
	}
}

// mlpModel writes a [batch,3,8,8] → flatten → 192×100 → GELU-free ReLU → 100×10
// classifier; noise perturbs the weights to make a "quantized" variant.
func mlpModel(t *testing.T, dir, name string, noise float64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	w := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64()*0.1 + noise*rng.NormFloat64()*0.1)
		}
		return v
	}
	b := onnx.NewBuilder("mlp", 17)
	b.AddInput("pixel_values", onnx.Float, onnx.Dims("batch", 3, 8, 8))
	b.AddInitializerFloat32("w1", []int64{192, 100}, w(192*100))
	b.AddInitializerFloat32("w2", []int64{100, 10}, w(100*10))
	b.AddNode("Flatten", []string{"pixel_values"}, []string{"flat"}, onnx.AttrInt("axis", 1))
	b.AddNode("MatMul", []string{"flat", "w1"}, []string{"h"})
	b.AddNode("Relu", []string{"h"}, []string{"r"})
	b.AddNode("MatMul", []string{"r", "w2"}, []string{"logits"})
	b.AddOutput("logits", onnx.Float, onnx.Dims("batch", 10))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeEndToEnd runs the real worker (this test binary in "serve" mode)
// through the parent: FP32 writes the reference, an identical copy matches it
// exactly, a perturbed copy does not.
func TestServeEndToEnd(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	fp32 := mlpModel(t, dir, "fp32.onnx", 0)
	variant := mlpModel(t, dir, "variant.onnx", 0.3)
	ref := filepath.Join(dir, "ref.bin")
	exe, _ := os.Executable()
	run := func(spec Spec) (Result, []Event) {
		t.Helper()
		var events []Event
		out := Run(context.Background(), spec, Options{
			Exe: exe, Args: []string{"-test.run=^$"}, Env: []string{"QS_FAKE_WORKER=serve"},
			Timeout: time.Minute, OnEvent: func(e Event) { events = append(events, e) },
		})
		if out.Err != nil {
			t.Fatalf("worker failed: %v\n%s", out.Err, out.StderrTail)
		}
		var res Result
		if err := json.Unmarshal(out.Result, &res); err != nil {
			t.Fatal(err)
		}
		return res, events
	}
	base := Spec{ModelPath: fp32, Batch: 4, Threads: 1, Duration: 600 * time.Millisecond, SampleMs: 100,
		WriteReference: ref, Reference: ref, FidelitySamples: 10, GFLOPs: 0.001}
	res, events := run(base)
	m := res.Metrics
	if m.Throughput <= 0 || m.Latency.Runs < 10 || m.Latency.P50Ms <= 0 || m.Latency.P99Ms < m.Latency.P50Ms {
		t.Errorf("implausible timing: %+v", m)
	}
	if m.Fidelity == nil || m.Fidelity.CosineMin != 1 || m.Fidelity.Top1 != 1 || m.Fidelity.Samples != 10 {
		t.Errorf("FP32 against its own reference: %+v", m.Fidelity)
	}
	if m.Memory.RSSAfterLoad <= 0 || m.Memory.PeakRSS < m.Memory.RSSAfterLoad || m.ColdStart.SessionMs <= 0 {
		t.Errorf("memory/cold start not measured: %+v %+v", m.Memory, m.ColdStart)
	}
	if len(res.FileSHA256) != 64 || res.FileBytes <= 0 || res.ORTVersion == "" || res.FloorMs <= 0 || m.Placement["CPUExecutionProvider"] < 2 {
		t.Errorf("result identity: %+v", res)
	}
	if m.TFLOPS <= 0 {
		t.Error("TFLOP/s not derived from GFLOPs")
	}
	if p := m.OpProfile; p == nil || p.Runs != opProfileRuns || len(p.Ops) == 0 || p.Share("MatMul") <= 0 || len(p.Top) == 0 {
		t.Errorf("per-operator profile not recorded: %+v", p)
	}
	var samples int
	for _, e := range events {
		if e.Kind == KindSample && e.Sample.Phase == "measuring" && e.Sample.Throughput > 0 && e.Sample.CPUPct > 0 && e.Sample.SysMemUsed > 0 {
			samples++
		}
	}
	if samples < 2 {
		t.Errorf("saw %d live measuring samples in 600 ms at 100 ms", samples)
	}

	v := base
	v.ModelPath, v.WriteReference, v.NoOpProfile = variant, "", true
	res, _ = run(v)
	if res.Metrics.OpProfile != nil || res.Metrics.Placement["CPUExecutionProvider"] < 2 {
		t.Errorf("--op-profile=false: profile %+v, placement %v (want none, and placement still)", res.Metrics.OpProfile, res.Metrics.Placement)
	}
	f := res.Metrics.Fidelity
	if f == nil || f.CosineMean >= 0.9999 || f.CosineMean <= 0 || f.SQNRdB <= 0 || f.MaxAbsError <= 0 {
		t.Errorf("perturbed variant fidelity %+v: want clearly below 1 but correlated", f)
	}
}

func TestServeFailsClearly(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.onnx")
	os.WriteFile(corrupt, []byte("this is not a model"), 0o644)
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"missing model", Spec{ModelPath: filepath.Join(dir, "none.onnx")}, "none.onnx"},
		{"corrupt model", Spec{ModelPath: corrupt}, "corrupt.onnx"},
		{"unknown EP", Spec{ModelPath: corrupt, EP: "tpu"}, `"tpu"`},
		{"CUDA without a GPU", Spec{ModelPath: corrupt, EP: "cuda"}, "cuda"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sb strings.Builder
			err := Serve(context.Background(), tt.spec, NewEmitter(&sb))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

// TestServeGPUTelemetryWithMockNVML runs a CPU experiment with GPU telemetry
// forced on against a mock H100: energy per sample comes from the counter,
// process memory from the process list, and samples carry GPU readings.
func TestServeGPUTelemetryWithMockNVML(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	model := mlpModel(t, dir, "m.onnx", 0)
	srv := telemetrytest.DGXH100(1)
	start := time.Now()
	srv.GPUs[0].Energy = func() uint64 { return uint64(time.Since(start).Seconds() * 250_000) } // 250 W
	srv.GPUs[0].Processes = []nvml.ProcessInfo{{Pid: uint32(os.Getpid()), UsedGpuMemory: 700 << 20}}
	var buf strings.Builder
	spec := Spec{ModelPath: model, Batch: 2, Threads: 1, Duration: 700 * time.Millisecond, SampleMs: 50, GPUTelemetry: true}
	if err := ServeWith(context.Background(), spec, NewEmitter(&buf), srv.NVML()); err != nil {
		t.Fatal(err)
	}
	var res Result
	var gpuSamples int
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("bad event %q: %v", line, err)
		}
		if ev.Kind == KindSample && ev.Sample.PowerW == 71.5 && ev.Sample.GPUBytes == 700<<20 && ev.Sample.GPUScope == bench.GPUScopeProcess {
			gpuSamples++
		}
		if ev.Kind == KindResult {
			json.Unmarshal(ev.Result, &res)
		}
	}
	m := res.Metrics
	if gpuSamples < 5 || m.Energy == nil {
		t.Fatalf("%d GPU samples, energy %+v", gpuSamples, m.Energy)
	}
	e := m.Energy
	// Joules over the timed phase ÷ samples ≈ 250 W ÷ throughput.
	want := 250 / m.Throughput
	if e.Source != "nvml counter" || e.JoulesPerSample < want*0.9 || e.JoulesPerSample > want*1.1 {
		t.Errorf("J/sample %.4g (%s), want ≈ %.4g", e.JoulesPerSample, e.Source, want)
	}
	if m.Memory.GPUBytes != 700<<20 || m.Memory.GPUSource != "process" || m.Memory.GPUNote != "" || e.TempMaxC != 34 || e.SamplerCallUs <= 0 {
		t.Errorf("GPU memory %d (%s, %q), temp %v, sampler %v µs", m.Memory.GPUBytes, m.Memory.GPUSource, m.Memory.GPUNote, e.TempMaxC, e.SamplerCallUs)
	}
}

// TestServeGPUMemoryDeviceWide: when NVML lists the worker with its
// "not available" value (all ones), or not at all (a container), the record
// holds the device's memory labelled device-wide with the reason, never a
// 16 EiB figure, and so do the live samples.
func TestServeGPUMemoryDeviceWide(t *testing.T) {
	requireORT(t)
	model := mlpModel(t, t.TempDir(), "m.onnx", 0)
	for _, tt := range []struct {
		name  string
		procs []nvml.ProcessInfo
		why   string
	}{
		{"not available", []nvml.ProcessInfo{{Pid: uint32(os.Getpid()), UsedGpuMemory: ^uint64(0)}}, "not available"},
		{"pid absent", []nvml.ProcessInfo{{Pid: 1, UsedGpuMemory: 300 << 20}}, "not in NVML's process list"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := telemetrytest.DGXH100(1)
			srv.GPUs[0].Processes = tt.procs
			var buf strings.Builder
			spec := Spec{ModelPath: model, Batch: 2, Threads: 1, Duration: 300 * time.Millisecond, SampleMs: 50, GPUTelemetry: true}
			if err := ServeWith(context.Background(), spec, NewEmitter(&buf), srv.NVML()); err != nil {
				t.Fatal(err)
			}
			var res Result
			samples := 0
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				var ev Event
				if err := json.Unmarshal([]byte(line), &ev); err != nil {
					t.Fatal(err)
				}
				if ev.Kind == KindSample && ev.Sample.GPUBytes != 0 {
					samples++
					if ev.Sample.GPUBytes != 512<<20 || ev.Sample.GPUScope != bench.GPUScopeDevice {
						t.Errorf("sample GPU memory %d (%s), want the device's 512 MiB, device-wide", ev.Sample.GPUBytes, ev.Sample.GPUScope)
					}
				}
				if ev.Kind == KindResult {
					json.Unmarshal(ev.Result, &res)
				}
			}
			mem := res.Metrics.Memory
			if samples == 0 || mem.GPUBytes != 512<<20 || mem.GPUSource != "device-wide" ||
				!strings.Contains(mem.GPUNote, "device-wide") || !strings.Contains(mem.GPUNote, tt.why) {
				t.Errorf("%d samples; record GPU memory %d (%s, %q)", samples, mem.GPUBytes, mem.GPUSource, mem.GPUNote)
			}
		})
	}
}

// TestServeCreatesOneSession counts ONNX Runtime sessions on the
// experiment's model through ort.SessionsCreated: one, whose creation
// is cold_start.session_ms and whose first run gives the node placement.
// (The per-call floor runs a trivial model of its own.)
func TestServeCreatesOneSession(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	for _, device := range []bool{false, true} {
		model := mlpModel(t, dir, fmt.Sprintf("m-%v.onnx", device), 0)
		res := serveResult(t, Spec{ModelPath: model, Batch: 2, Threads: 1, MaxRuns: 20, DeviceBinding: device})
		if n := ort.SessionsCreated(model); n != 1 {
			t.Errorf("device binding %v: %d sessions created on the model, want 1", device, n)
		}
		m := res.Metrics
		if m.ColdStart.SessionMs <= 0 || m.ColdStart.FirstInferenceMs <= 0 || m.Placement[ort.CPUProvider] < 2 {
			t.Errorf("device binding %v: cold start %+v, placement %v", device, m.ColdStart, m.Placement)
		}
	}
}

// TestServeDeviceBinding runs the IO-binding path (the one GPU EPs take) on
// the CPU EP's memory: fidelity against the host-bound FP32 reference is
// exact and the copy times are recorded apart from the loop.
func TestServeDeviceBinding(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	model := mlpModel(t, dir, "m.onnx", 0)
	ref := filepath.Join(dir, "ref.bin")
	base := Spec{ModelPath: model, Batch: 4, Threads: 1, Duration: 200 * time.Millisecond, FidelitySamples: 9}
	host := base
	host.WriteReference = ref
	if err := Serve(context.Background(), host, NewEmitter(io.Discard)); err != nil {
		t.Fatal(err)
	}
	dev := base
	dev.Reference, dev.DeviceBinding = ref, true
	res := serveResult(t, dev)
	m := res.Metrics
	if m.Fidelity == nil || m.Fidelity.CosineMin != 1 || m.Fidelity.MaxAbsError != 0 {
		t.Errorf("device-bound outputs differ from host-bound ones: %+v", m.Fidelity)
	}
	if m.CopyH2DMs <= 0 || m.CopyD2HMs <= 0 || m.Throughput <= 0 {
		t.Errorf("copy times %v / %v ms, throughput %v", m.CopyH2DMs, m.CopyD2HMs, m.Throughput)
	}
}

// serveResult runs Serve on spec in this process and returns the Result its
// last event carries.
func serveResult(t *testing.T, spec Spec) Result {
	t.Helper()
	var buf strings.Builder
	if err := Serve(context.Background(), spec, NewEmitter(&buf)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var ev Event
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ev); err != nil {
		t.Fatalf("last event %q: %v", lines[len(lines)-1], err)
	}
	var res Result
	if err := json.Unmarshal(ev.Result, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestServeTransfers measures host↔device copies on the CPU EP's memory:
// pageable copies are measured, pinned memory is reported missing, and a
// host-bound session says it has nothing to copy.
func TestServeTransfers(t *testing.T) {
	requireORT(t)
	model := mlpModel(t, t.TempDir(), "m.onnx", 0)
	spec := Spec{ModelPath: model, Batch: 4, Threads: 1, MaxRuns: 3, TransferRounds: 2, DeviceBinding: true, RequireEP: true}
	res := serveResult(t, spec)
	if len(res.Transfers) != 1 || res.Transfers[0].Host != "pageable" || res.Transfers[0].H2DGBs <= 0 || res.Transfers[0].Bytes != 4*3*8*8*4 {
		t.Errorf("transfers %+v", res.Transfers)
	}
	if len(res.TransferNotes) != 1 || !strings.Contains(res.TransferNotes[0], "no pinned host memory") {
		t.Errorf("notes %q", res.TransferNotes)
	}
	spec.DeviceBinding = false
	res = serveResult(t, spec)
	if len(res.Transfers) != 0 || len(res.TransferNotes) != 1 || !strings.Contains(res.TransferNotes[0], "host memory directly") {
		t.Errorf("host-bound: %+v %q", res.Transfers, res.TransferNotes)
	}
}

func TestPlacedOn(t *testing.T) {
	if err := placedOn(map[string]int{ort.CUDAProvider: 7}, ort.CUDAProvider); err != nil {
		t.Errorf("all on CUDA: %v", err)
	}
	err := placedOn(map[string]int{ort.CUDAProvider: 3, ort.CPUProvider: 2}, ort.CUDAProvider)
	if err == nil || !strings.Contains(err.Error(), "2 on CPUExecutionProvider of 5 nodes") {
		t.Errorf("fallback: %v", err)
	}
}

// TestServeLoopBounds: the spec's warm-up bound and minimum timed runs
// reach the loop.
func TestServeLoopBounds(t *testing.T) {
	requireORT(t)
	model := mlpModel(t, t.TempDir(), "m.onnx", 0)
	res := serveResult(t, Spec{ModelPath: model, Batch: 1, Threads: 1, Duration: time.Nanosecond, MinWarmup: 1, MaxWarmup: 2, MinRuns: 4})
	if m := res.Metrics; m.Latency.Runs != 4 || m.WarmupRuns < 1 || m.WarmupRuns > 2 {
		t.Errorf("%d timed runs (want 4), %d warm-up runs (want 1–2)", m.Latency.Runs, m.WarmupRuns)
	}
}
