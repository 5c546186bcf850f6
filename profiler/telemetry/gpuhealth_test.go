package telemetry

import (
	"errors"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/quantscope/quantscope/profiler/telemetry/telemetrytest"
)

func TestGPUProbeHealthyH100(t *testing.T) {
	srv := telemetrytest.DGXH100(2)
	g := &srv.GPUs[1]
	g.Processes = []nvml.ProcessInfo{{Pid: 4000001, UsedGpuMemory: 2 << 30}}
	g.GraphicsProcesses = []nvml.ProcessInfo{{Pid: 4000001, UsedGpuMemory: 2 << 30}, {Pid: 4000002, UsedGpuMemory: 1 << 30}}
	p, err := OpenGPUProbe(srv.NVML(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	h := p.Health()
	if h.Index != 1 || h.Name != "NVIDIA H100 80GB HBM3" || h.ComputeCapability != "9.0" || h.Cores != 16896 {
		t.Errorf("identity %+v", h)
	}
	if h.MaxSMClockMHz != 1980 || h.SMClockMHz != 1980 || h.MaxMemClockMHz != 2619 || h.MemBusWidth != 5120 {
		t.Errorf("clocks %+v", h)
	}
	if h.PowerLimitW != 700 || h.DefaultPowerLimitW != 700 || h.MaxPowerLimitW != 700 || h.SlowdownTempC != 87 || h.TempC != 34 {
		t.Errorf("power/temperature %+v", h)
	}
	if h.PCIe == nil || *h.PCIe != (PCIeLink{Gen: 5, Width: 16, MaxGen: 5, MaxWidth: 16, GPUMaxGen: 5}) {
		t.Errorf("PCIe %+v", h.PCIe)
	}
	if h.ECC == nil || !h.ECC.Enabled || h.ECC.VolatileUncorrected != 0 {
		t.Errorf("ECC %+v", h.ECC)
	}
	if h.Remapped == nil || h.Remapped.Failure || h.Retired != nil {
		t.Errorf("remapped %+v retired %+v", h.Remapped, h.Retired)
	}
	if h.MIG == nil || h.MIG.Enabled {
		t.Errorf("MIG %+v", h.MIG)
	}
	if len(h.Processes) != 2 || h.Processes[0].PID != 4000001 || h.Processes[1].UsedBytes != 1<<30 {
		t.Errorf("processes (compute and graphics, once per pid) %+v", h.Processes)
	}
	if len(h.Warnings) != 0 {
		t.Errorf("warnings %v", h.Warnings)
	}
}

func TestGPUProbeFaults(t *testing.T) {
	srv := telemetrytest.DGXH100(1)
	g := &srv.GPUs[0]
	g.PCIeWidth, g.PCIeGen = 4, 3
	g.ECCErrors[1][0], g.ECCErrors[0][1] = 2, 40
	g.ThrottleReasons = nvml.ClocksThrottleReasonHwThermalSlowdown | nvml.ClocksEventReasonSwPowerCap
	g.Fail = map[string]nvml.Return{telemetrytest.FieldRemapped: nvml.ERROR_NOT_SUPPORTED, telemetrytest.FieldMIG: nvml.ERROR_NOT_SUPPORTED}
	g.RetiredSBE, g.RetiredDBE, g.RetiredPending = []uint64{1, 2, 3}, []uint64{9}, true
	g.MIGEnabled = true // unsupported wins: no MIG group
	p, err := OpenGPUProbe(srv.NVML(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	h := p.Health()
	if h.PCIe.Width != 4 || h.PCIe.Gen != 3 || h.PCIe.MaxWidth != 16 {
		t.Errorf("PCIe %+v", h.PCIe)
	}
	if h.ECC.VolatileUncorrected != 2 || h.ECC.AggregateCorrected != 40 {
		t.Errorf("ECC %+v", h.ECC)
	}
	if h.Remapped != nil || h.Retired == nil || *h.Retired != (Retired{SingleBit: 3, DoubleBit: 1, Pending: true}) {
		t.Errorf("retired %+v remapped %+v", h.Retired, h.Remapped)
	}
	if h.MIG != nil {
		t.Errorf("MIG reported on a device without it: %+v", h.MIG)
	}
	if len(h.Throttle) != 2 || h.Throttle[0] != "hw thermal slowdown" || h.Throttle[1] != "sw power cap" {
		t.Errorf("throttle %v", h.Throttle)
	}
	if l := p.Load(); l.PCIeWidth != 4 || l.SMClockMHz != 1980 || l.ThrottleMask == 0 {
		t.Errorf("load %+v", l)
	}
}

func TestGPUProbeUnsupportedAndErrors(t *testing.T) {
	srv := telemetrytest.DGXH100(1)
	srv.GPUs[0].Fail = map[string]nvml.Return{
		telemetrytest.FieldECC: nvml.ERROR_NOT_SUPPORTED, telemetrytest.FieldPCIe: nvml.ERROR_NO_PERMISSION,
		telemetrytest.FieldMaxClock: nvml.ERROR_NOT_SUPPORTED,
	}
	p, err := OpenGPUProbe(srv.NVML(), 0)
	if err != nil {
		t.Fatal(err)
	}
	h := p.Health()
	p.Close()
	if h.ECC != nil || h.PCIe != nil || h.MaxSMClockMHz != 0 {
		t.Errorf("unsupported groups present: %+v", h)
	}
	if len(h.Warnings) != 1 || h.Warnings[0] != "PCIe link: "+nvml.ERROR_NO_PERMISSION.String() {
		t.Errorf("warnings %q: want only the PCIe permission failure", h.Warnings)
	}
	if _, err := OpenGPUProbe(telemetrytest.NoLibrary().NVML(), 0); !errors.Is(err, ErrNoGPU) {
		t.Errorf("no NVML: %v", err)
	}
	if _, err := OpenGPUProbe(telemetrytest.DGXH100(1).NVML(), 3); !errors.Is(err, ErrNoGPU) {
		t.Errorf("no device 3: %v", err)
	}
	if _, err := OpenGPUProbe(nil, 0); !errors.Is(err, ErrNoGPU) {
		t.Errorf("nil NVML: %v", err)
	}
}
