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
	FieldMaxClock    = "max_clock"
	FieldPCIe        = "pcie"
	FieldECC         = "ecc"
	FieldRemapped    = "remapped_rows"
	FieldRetired     = "retired_pages"
	FieldMIG         = "mig"
	FieldCores       = "cores"
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
	// Health: the figures GPUProbe.Health reads. Zero values read as zero;
	// use Fail to make a group unsupported.
	MaxSMClockMHz       uint32
	MemClockMHz         uint32
	MaxMemClockMHz      uint32
	MemBusWidth         uint32
	Cores               int
	DefaultPowerLimitMW uint32
	MaxPowerLimitMW     uint32
	SlowdownTempC       uint32
	PCIeGen, PCIeWidth  int
	MaxPCIeGen          int
	MaxPCIeWidth        int
	ECCEnabled          bool
	// ECC error counts by [corrected, uncorrected][volatile, aggregate].
	ECCErrors [2][2]uint64
	// RemappedRows: correctable, uncorrectable, pending, failure.
	RemappedCorrectable, RemappedUncorrectable int
	RemapPending, RemapFailure                 bool
	// RetiredSBE and RetiredDBE are retired page addresses (devices without
	// row remapping: set Fail[FieldRemapped] to ERROR_NOT_SUPPORTED).
	RetiredSBE, RetiredDBE []uint64
	RetiredPending         bool
	MIGEnabled             bool
	// GraphicsProcesses are graphics (not compute) processes.
	GraphicsProcesses []nvml.ProcessInfo
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

// H100 returns an idle, healthy H100 SXM5 80GB (the go-nvml dgxh100
// configuration) with fixed telemetry: 512 MiB used, 34 °C, 71.5 W of a
// 700 W limit, SM clock 1980 of 1980 MHz, a PCIe Gen5 x16 link, ECC on with
// no errors, no remapped rows, MIG off.
func H100(index int) GPU {
	return GPU{
		Config:              gpus.H100_SXM5_80GB,
		UUID:                fmt.Sprintf("GPU-00000000-0000-0000-0000-%012d", index),
		MemoryUsedBytes:     512 << 20,
		TemperatureC:        34,
		PowerDrawMW:         71_500,
		PowerLimitMW:        700_000,
		SMClockMHz:          1980,
		MaxSMClockMHz:       1980,
		MemClockMHz:         2619,
		MaxMemClockMHz:      2619,
		MemBusWidth:         5120,
		Cores:               16896,
		DefaultPowerLimitMW: 700_000,
		MaxPowerLimitMW:     700_000,
		SlowdownTempC:       87,
		PCIeGen:             5,
		PCIeWidth:           16,
		MaxPCIeGen:          5,
		MaxPCIeWidth:        16,
		ECCEnabled:          true,
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
		GetClockInfoFunc: func(c nvml.ClockType) (uint32, nvml.Return) {
			if ret, ok := fail(FieldClock); ok {
				return 0, ret
			}
			if c == nvml.CLOCK_MEM {
				return g.MemClockMHz, nvml.SUCCESS
			}
			return g.SMClockMHz, nvml.SUCCESS
		},
		GetMaxClockInfoFunc: func(c nvml.ClockType) (uint32, nvml.Return) {
			if ret, ok := fail(FieldMaxClock); ok {
				return 0, ret
			}
			if c == nvml.CLOCK_MEM {
				return g.MaxMemClockMHz, nvml.SUCCESS
			}
			return g.MaxSMClockMHz, nvml.SUCCESS
		},
		GetNumGpuCoresFunc: func() (int, nvml.Return) {
			if ret, ok := fail(FieldCores); ok {
				return 0, ret
			}
			return g.Cores, nvml.SUCCESS
		},
		GetMemoryBusWidthFunc: func() (uint32, nvml.Return) { return g.MemBusWidth, nvml.SUCCESS },
		GetPowerManagementDefaultLimitFunc: func() (uint32, nvml.Return) {
			if ret, ok := fail(FieldPowerLimit); ok {
				return 0, ret
			}
			return g.DefaultPowerLimitMW, nvml.SUCCESS
		},
		GetPowerManagementLimitConstraintsFunc: func() (uint32, uint32, nvml.Return) {
			if ret, ok := fail(FieldPowerLimit); ok {
				return 0, 0, ret
			}
			return g.DefaultPowerLimitMW / 2, g.MaxPowerLimitMW, nvml.SUCCESS
		},
		GetTemperatureThresholdFunc: func(t nvml.TemperatureThresholds) (uint32, nvml.Return) {
			if ret, ok := fail(FieldTemperature); ok {
				return 0, ret
			}
			if t == nvml.TEMPERATURE_THRESHOLD_SLOWDOWN {
				return g.SlowdownTempC, nvml.SUCCESS
			}
			return g.SlowdownTempC + 5, nvml.SUCCESS
		},
		GetCurrPcieLinkGenerationFunc:   func() (int, nvml.Return) { return g.pcie(g.PCIeGen) },
		GetCurrPcieLinkWidthFunc:        func() (int, nvml.Return) { return g.pcie(g.PCIeWidth) },
		GetMaxPcieLinkGenerationFunc:    func() (int, nvml.Return) { return g.pcie(g.MaxPCIeGen) },
		GetMaxPcieLinkWidthFunc:         func() (int, nvml.Return) { return g.pcie(g.MaxPCIeWidth) },
		GetGpuMaxPcieLinkGenerationFunc: func() (int, nvml.Return) { return g.pcie(g.MaxPCIeGen) },
		GetEccModeFunc: func() (nvml.EnableState, nvml.EnableState, nvml.Return) {
			if ret, ok := fail(FieldECC); ok {
				return 0, 0, ret
			}
			st := nvml.FEATURE_DISABLED
			if g.ECCEnabled {
				st = nvml.FEATURE_ENABLED
			}
			return st, st, nvml.SUCCESS
		},
		GetTotalEccErrorsFunc: func(t nvml.MemoryErrorType, c nvml.EccCounterType) (uint64, nvml.Return) {
			if ret, ok := fail(FieldECC); ok {
				return 0, ret
			}
			if t > 1 || c > 1 || t < 0 || c < 0 {
				return 0, nvml.ERROR_INVALID_ARGUMENT
			}
			return g.ECCErrors[t][c], nvml.SUCCESS
		},
		GetRemappedRowsFunc: func() (int, int, bool, bool, nvml.Return) {
			if ret, ok := fail(FieldRemapped); ok {
				return 0, 0, false, false, ret
			}
			return g.RemappedCorrectable, g.RemappedUncorrectable, g.RemapPending, g.RemapFailure, nvml.SUCCESS
		},
		GetRetiredPagesFunc: func(c nvml.PageRetirementCause) ([]uint64, nvml.Return) {
			if ret, ok := fail(FieldRetired); ok {
				return nil, ret
			}
			if c == nvml.PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR {
				return g.RetiredDBE, nvml.SUCCESS
			}
			return g.RetiredSBE, nvml.SUCCESS
		},
		GetRetiredPagesPendingStatusFunc: func() (nvml.EnableState, nvml.Return) {
			if ret, ok := fail(FieldRetired); ok {
				return 0, ret
			}
			if g.RetiredPending {
				return nvml.FEATURE_ENABLED, nvml.SUCCESS
			}
			return nvml.FEATURE_DISABLED, nvml.SUCCESS
		},
		GetMigModeFunc: func() (int, int, nvml.Return) {
			if ret, ok := fail(FieldMIG); ok {
				return 0, 0, ret
			}
			if g.MIGEnabled {
				return nvml.DEVICE_MIG_ENABLE, nvml.DEVICE_MIG_ENABLE, nvml.SUCCESS
			}
			return nvml.DEVICE_MIG_DISABLE, nvml.DEVICE_MIG_DISABLE, nvml.SUCCESS
		},
		GetPersistenceModeFunc: func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_ENABLED, nvml.SUCCESS },
		GetGraphicsRunningProcessesFunc: func() ([]nvml.ProcessInfo, nvml.Return) {
			if ret, ok := fail(FieldProcesses); ok {
				return nil, ret
			}
			return g.GraphicsProcesses, nvml.SUCCESS
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

// pcie answers a PCIe link getter, or its FieldPCIe failure.
func (g GPU) pcie(v int) (int, nvml.Return) {
	if ret, ok := g.Fail[FieldPCIe]; ok {
		return 0, ret
	}
	return v, nvml.SUCCESS
}
