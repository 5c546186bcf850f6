// Package telemetrytest provides fake NVML servers, built on go-nvml's mock
// package, for tests of code that reads GPUs through package telemetry.
//
// Every getter telemetry.ReadGPUs calls is set, so a fake never panics with
// "method is nil"; a field can be made to fail with a chosen nvml.Return
// through GPU.Fail.
package telemetrytest

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
)

// Field names accepted as keys of GPU.Fail.
const (
	FieldName        = "name"
	FieldUUID        = "uuid"
	FieldCompute     = "compute_capability"
	FieldMemory      = "memory"
	FieldTemperature = "temperature"
	FieldPowerDraw   = "power_draw"
	FieldPowerLimit  = "power_limit"
	FieldHandle      = "handle" // DeviceGetHandleByIndex itself
	FieldUtilization = "utilization"
	FieldClock       = "sm_clock"
	FieldEnergy      = "energy"
	FieldProcesses   = "processes"
	FieldThrottle    = "throttle"
)

// GPU is what one fake device reports.
type GPU struct {
	Config          gpus.Config // name, total memory, compute capability (go-nvml mock/gpus)
	UUID            string
	MemoryUsedBytes uint64
	TemperatureC    uint32
	PowerDrawMW     uint32 // milliwatts, as NVML reports it
	PowerLimitMW    uint32
	UtilizationPct  uint32
	SMClockMHz      uint32
	// Energy returns the total-energy counter in millijoules (nil: fixed 0).
	Energy func() uint64
	// Processes are the compute processes and the memory each uses.
	Processes []nvml.ProcessInfo
	// ThrottleReasons is the clocks-event reason bit mask.
	ThrottleReasons uint64
	// Fail makes a field's getter return the given code instead of a value,
	// e.g. {FieldPowerLimit: nvml.ERROR_NOT_SUPPORTED}.
	Fail map[string]nvml.Return
}

// Server describes a fake machine: its driver and its GPUs.
type Server struct {
	DriverVersion     string // e.g. "580.95.05"
	CUDADriverVersion int    // NVML's integer form, e.g. 13000 for 13.0
	NVMLVersion       string
	GPUs              []GPU
	InitError         nvml.Return // returned by Init when not SUCCESS (0)
}

// H100 returns an idle H100 SXM5 80GB (the go-nvml dgxh100 configuration)
// with fixed telemetry: 512 MiB used, 34 °C, 71.5 W of a 700 W limit.
func H100(index int) GPU {
	return GPU{
		Config:          gpus.H100_SXM5_80GB,
		UUID:            fmt.Sprintf("GPU-00000000-0000-0000-0000-%012d", index),
		MemoryUsedBytes: 512 << 20,
		TemperatureC:    34,
		PowerDrawMW:     71_500,
		PowerLimitMW:    700_000,
	}
}

// DGXH100 returns a server with n H100 GPUs and a CUDA 13 driver.
func DGXH100(n int) Server {
	s := Server{DriverVersion: "580.95.05", CUDADriverVersion: 13000, NVMLVersion: "13.580.95.05"}
	for i := 0; i < n; i++ {
		s.GPUs = append(s.GPUs, H100(i))
	}
	return s
}

// NoLibrary returns a server whose Init fails as it does on a machine
// without the NVIDIA driver (libnvidia-ml.so.1 missing).
func NoLibrary() Server {
	return Server{InitError: nvml.ERROR_LIBRARY_NOT_FOUND}
}

// NVML builds the mock nvml.Interface for s.
func (s Server) NVML() nvml.Interface {
	devices := make([]nvml.Device, len(s.GPUs))
	for i, g := range s.GPUs {
		devices[i] = g.device()
	}
	return &mock.Interface{
		InitFunc: func() nvml.Return {
			if s.InitError != 0 {
				return s.InitError
			}
			return nvml.SUCCESS
		},
		ShutdownFunc:                   func() nvml.Return { return nvml.SUCCESS },
		SystemGetDriverVersionFunc:     func() (string, nvml.Return) { return s.DriverVersion, nvml.SUCCESS },
		SystemGetCudaDriverVersionFunc: func() (int, nvml.Return) { return s.CUDADriverVersion, nvml.SUCCESS },
		SystemGetNVMLVersionFunc:       func() (string, nvml.Return) { return s.NVMLVersion, nvml.SUCCESS },
		DeviceGetCountFunc:             func() (int, nvml.Return) { return len(devices), nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) {
			if i < 0 || i >= len(devices) {
				return nil, nvml.ERROR_INVALID_ARGUMENT
			}
			if ret, ok := s.GPUs[i].Fail[FieldHandle]; ok {
				return nil, ret
			}
			return devices[i], nvml.SUCCESS
		},
	}
}

func (g GPU) device() *mock.Device {
	fail := func(field string) (nvml.Return, bool) {
		ret, ok := g.Fail[field]
		return ret, ok
	}
	return &mock.Device{
		GetNameFunc: func() (string, nvml.Return) {
			if ret, ok := fail(FieldName); ok {
				return "", ret
			}
			return g.Config.Name, nvml.SUCCESS
		},
		GetUUIDFunc: func() (string, nvml.Return) {
			if ret, ok := fail(FieldUUID); ok {
				return "", ret
			}
			return g.UUID, nvml.SUCCESS
		},
		GetCudaComputeCapabilityFunc: func() (int, int, nvml.Return) {
			if ret, ok := fail(FieldCompute); ok {
				return 0, 0, ret
			}
			return g.Config.CudaMajor, g.Config.CudaMinor, nvml.SUCCESS
		},
		GetMemoryInfoFunc: func() (nvml.Memory, nvml.Return) {
			if ret, ok := fail(FieldMemory); ok {
				return nvml.Memory{}, ret
			}
			total := g.Config.MemoryMB << 20
			return nvml.Memory{Total: total, Used: g.MemoryUsedBytes, Free: total - g.MemoryUsedBytes}, nvml.SUCCESS
		},
		GetTemperatureFunc: func(nvml.TemperatureSensors) (uint32, nvml.Return) {
			if ret, ok := fail(FieldTemperature); ok {
				return 0, ret
			}
			return g.TemperatureC, nvml.SUCCESS
		},
		GetPowerUsageFunc: func() (uint32, nvml.Return) {
			if ret, ok := fail(FieldPowerDraw); ok {
				return 0, ret
			}
			return g.PowerDrawMW, nvml.SUCCESS
		},
		GetUtilizationRatesFunc: func() (nvml.Utilization, nvml.Return) {
			if ret, ok := fail(FieldUtilization); ok {
				return nvml.Utilization{}, ret
			}
			return nvml.Utilization{Gpu: g.UtilizationPct}, nvml.SUCCESS
		},
		GetClockInfoFunc: func(nvml.ClockType) (uint32, nvml.Return) {
			if ret, ok := fail(FieldClock); ok {
				return 0, ret
			}
			return g.SMClockMHz, nvml.SUCCESS
		},
		GetTotalEnergyConsumptionFunc: func() (uint64, nvml.Return) {
			if ret, ok := fail(FieldEnergy); ok {
				return 0, ret
			}
			if g.Energy == nil {
				return 0, nvml.SUCCESS
			}
			return g.Energy(), nvml.SUCCESS
		},
		GetComputeRunningProcessesFunc: func() ([]nvml.ProcessInfo, nvml.Return) {
			if ret, ok := fail(FieldProcesses); ok {
				return nil, ret
			}
			return g.Processes, nvml.SUCCESS
		},
		GetCurrentClocksEventReasonsFunc: func() (uint64, nvml.Return) {
			if ret, ok := fail(FieldThrottle); ok {
				return 0, ret
			}
			return g.ThrottleReasons, nvml.SUCCESS
		},
		GetEnforcedPowerLimitFunc: func() (uint32, nvml.Return) {
			if ret, ok := fail(FieldPowerLimit); ok {
				return 0, ret
			}
			return g.PowerLimitMW, nvml.SUCCESS
		},
	}
}
