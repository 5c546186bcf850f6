package hwbench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/telemetry/telemetrytest"
	"github.com/quantscope/quantscope/profiler/worker"
)

// TestMain lets the test binary be a fake worker (HWBENCH_FAKE_WORKER=1)
// that answers like a healthy H100 would, so Run's GPU path can be tested
// on a machine without one.
func TestMain(m *testing.M) {
	if os.Getenv("HWBENCH_FAKE_WORKER") != "" {
		os.Exit(fakeWorker())
	}
	os.Exit(m.Run())
}

// Figures the fake GPU worker produces.
const (
	fakeFP16TFLOPS = 700.0
	fakeTF32TFLOPS = 300.0
	fakeFP32TFLOPS = 50.0
	fakeDeviceGBs  = 3000.0
	fakeInference  = 3200.0
	fakeCPUGFLOPS  = 150.0
)

func fakeWorker() int {
	var spec worker.Spec
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	em := worker.NewEmitter(os.Stdout)
	em.Emit(worker.Event{Kind: worker.KindStarted, Info: map[string]any{"pid": os.Getpid()}})
	fail := func(msg string) int {
		em.Emit(worker.Event{Kind: worker.KindError, Error: msg})
		return 1
	}
	if spec.EP == "cuda" && spec.RequireEP && spec.Precision == "int8" {
		return fail("CUDAExecutionProvider lacks kernels for part of this model: 2 on CPUExecutionProvider of 5 nodes ran elsewhere; not timed")
	}
	var res worker.Result
	res.EP = spec.EP
	base := filepath.Base(spec.ModelPath)
	var target, perRow float64
	switch {
	case strings.HasPrefix(base, "stream-"):
		var e, l, v int
		fmt.Sscanf(base, "stream-e%d-l%d-v%d.onnx", &e, &l, &v)
		target, perRow = fakeDeviceGBs, Stream{Elems: e, Layers: l}.BytesPerRow()/1e9
		res.Transfers = []ort.TransferRate{
			{Host: "pageable", Bytes: 64 << 20, H2DGBs: 12, D2HGBs: 14, Rounds: spec.TransferRounds},
			{Host: "pinned", Bytes: 64 << 20, H2DGBs: 52, D2HGBs: 53, Rounds: spec.TransferRounds},
		}
	case strings.HasPrefix(base, "gemm-") && spec.EP == "cuda":
		target, perRow = map[string]float64{"fp32": fakeFP32TFLOPS, "tf32": fakeTF32TFLOPS, "fp16": fakeFP16TFLOPS}[spec.Precision], spec.GFLOPs/1000
	case strings.HasPrefix(base, "gemm-"):
		target, perRow = fakeCPUGFLOPS, spec.GFLOPs
	default:
		target, perRow = fakeInference, 1
	}
	tput := target / perRow
	em.Emit(worker.Event{Kind: worker.KindSample, Sample: &worker.Sample{Phase: "measuring", Throughput: tput}})
	res.Metrics = bench.Metrics{Throughput: tput, Latency: bench.LatencyStats{P50Ms: 1}}
	b, _ := json.Marshal(res)
	em.Emit(worker.Event{Kind: worker.KindResult, Result: b})
	return 0
}

// fakePreparer hands out a path per model without building anything.
type fakePreparer struct{}

func (fakePreparer) Prepare(_ context.Context, e study.Experiment) (study.Prepared, error) {
	return study.Prepared{Path: "/nonexistent/" + e.Model + "-" + e.Precision + ".onnx", GFLOPs: 17.6}, nil
}

// TestRunGPUPath runs the whole check against a fake H100 (NVML mock) with
// a fake worker: peaks, datasheet bandwidth, PCIe lines, the INT8 fallback,
// a reference row, the health watcher and the causes it lends the figures.
func TestRunGPUPath(t *testing.T) {
	requireORT(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv := telemetrytest.DGXH100(1)
	g := &srv.GPUs[0]
	g.PCIeWidth, g.UtilizationPct, g.ThrottleReasons = 4, 100, nvml.ClocksEventReasonSwPowerCap
	refs := []Reference{{Kind: "inference", Item: "vit-base-16", Precision: "fp16", EP: "cuda", Batch: 32, Fused: true,
		MachineKey: "gpu:H100 SXM", Machine: "an H100 SXM node", Value: 3400, Unit: "samples/s", Engine: EngineQuantscope, Date: "2026-12-01", Source: "test"}}
	cfg := Config{
		EP: "auto", CacheDir: t.TempDir(), NVML: srv.NVML, Prepare: fakePreparer{}, References: refs,
		Worker: worker.Options{Exe: exe, Args: []string{"-test.run=^$"}, Env: []string{"HWBENCH_FAKE_WORKER=1"}},
		resolveEP: func(string) (ort.EPChoice, error) {
			return ort.EPChoice{EP: "cuda", Route: "plugin", Reason: "test"}, nil
		},
		tiny: true,
	}
	var mu sync.Mutex
	kinds := map[EventKind]int{}
	rep, err := Run(context.Background(), cfg, func(e Event) {
		mu.Lock()
		kinds[e.Kind]++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Machine.EP != "cuda" || rep.Machine.GPUKey != "gpu:H100 SXM" || rep.GPU == nil || rep.GPU.Samples == 0 {
		t.Fatalf("machine %+v, GPU state %+v", rep.Machine, rep.GPU)
	}
	check := func(id string, value, expected float64, verdict Verdict) Line {
		t.Helper()
		l, ok := rep.Line(id)
		if !ok {
			t.Fatalf("no line %s", id)
		}
		if !near(l.Value, value, 0.01) || !near(l.Expected, expected, 0.01) || l.Verdict != verdict {
			t.Errorf("%s: %v of %v (%s), want %v of %v (%s); %s", id, l.Value, l.Expected, l.Verdict, value, expected, verdict, l.Error)
		}
		return l
	}
	check("gpu.gemm.fp16", fakeFP16TFLOPS, 989.4, OK)
	check("gpu.gemm.tf32", fakeTF32TFLOPS, 494.7, OK)
	check("gpu.gemm.fp32", fakeFP32TFLOPS, 66.9, OK)
	check("gpu.memory.device", fakeDeviceGBs, 3350, OK)
	check("gpu.pcie.h2d.pinned", 52, 63.0, OK)
	pageable := check("gpu.pcie.h2d.pageable", 12, 63.0, Below)
	if !strings.Contains(pageable.Cause, "x4 of x16") {
		t.Errorf("pageable copies below expectation without the x4 link as cause: %q", pageable.Cause)
	}
	check("inference.vit-base-16", fakeInference, 3400, OK)
	if l, _ := rep.Line("gpu.gemm.int8"); l.Verdict != Info || !strings.Contains(l.Error, "lacks kernels") {
		t.Errorf("INT8 fallback: %+v", l)
	}
	if l, _ := rep.Line("health.gpu.pcie"); l.Verdict != Fault {
		t.Errorf("x4 link: %+v", l)
	}
	if rep.Verdict != Fault || len(rep.Faults()) != 1 {
		t.Errorf("verdict %s, faults %+v", rep.Verdict, rep.Faults())
	}
	if kinds[EventGPU] == 0 || kinds[EventStep] != len(rep.Steps)+1 || kinds[EventLine] != len(rep.Lines) || kinds[EventSample] == 0 {
		t.Errorf("events %v for %d steps and %d lines", kinds, len(rep.Steps), len(rep.Lines))
	}
	if l, _ := rep.Line("cpu.gemm.fp32"); !near(l.Value, fakeCPUGFLOPS, 0.01) {
		t.Errorf("CPU GEMM through the worker: %+v", l)
	}
}
