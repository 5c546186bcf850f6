package telemetry

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// NVMLLibrary is the shared library NVML is loaded from (part of the NVIDIA
// driver).
const NVMLLibrary = "libnvidia-ml.so.1"

// GPUState classifies the outcome of looking for NVIDIA GPUs.
type GPUState string

// The states ReadGPUs reports.
const (
	GPUStateOK         GPUState = "ok"               // NVML answered and found at least one GPU
	GPUStateNoNVML     GPUState = "no_nvml"          // libnvidia-ml.so.1 could not be loaded
	GPUStateInitFailed GPUState = "nvml_init_failed" // NVML loaded but did not initialize
	GPUStateNoDevices  GPUState = "no_devices"       // NVML works but reports no GPU
)

// GPUStatus is the system-wide part of an NVML reading: whether GPUs are
// usable, the driver, and the plain reason when there are none.
type GPUStatus struct {
	State GPUState `json:"state"`
	// Reason says in plain words why there is no usable GPU ("" when State is
	// GPUStateOK), e.g. "NVML library libnvidia-ml.so.1 not found (no NVIDIA
	// driver installed)".
	Reason            string `json:"reason,omitempty"`
	DriverVersion     string `json:"driver_version,omitempty"`      // e.g. "580.95.05"
	CUDADriverVersion string `json:"cuda_driver_version,omitempty"` // highest CUDA the driver supports, e.g. "13.0"
	NVMLVersion       string `json:"nvml_version,omitempty"`
	DeviceCount       int    `json:"device_count"`
	// Warnings lists driver-level figures that could not be read.
	Warnings []string `json:"warnings,omitempty"`
}

// Available reports whether at least one GPU answered through NVML.
func (s GPUStatus) Available() bool { return s.State == GPUStateOK }

// CUDADriverMajor returns the major CUDA version the driver supports (13 for
// "13.0"), or 0 when unknown.
func (s GPUStatus) CUDADriverMajor() int {
	var major, minor int
	if _, err := fmt.Sscanf(s.CUDADriverVersion, "%d.%d", &major, &minor); err != nil {
		return 0
	}
	return major
}

// GPUInfo is one NVIDIA GPU: identity plus a snapshot of memory, temperature
// and power. A figure NVML cannot give (ERROR_NOT_SUPPORTED, no permission,
// or NVML's "not available" value) is nil, shown as "n/a"; anything other
// than "not supported" is also explained in Warnings.
type GPUInfo struct {
	Index             int      `json:"index"`
	Name              string   `json:"name"`
	UUID              string   `json:"uuid,omitempty"`
	ComputeCapability string   `json:"compute_capability,omitempty"` // e.g. "9.0"
	MemoryTotalBytes  *uint64  `json:"memory_total_bytes"`
	MemoryUsedBytes   *uint64  `json:"memory_used_bytes"`
	TemperatureC      *uint32  `json:"temperature_c"`
	PowerDrawW        *float64 `json:"power_draw_w"`
	PowerLimitW       *float64 `json:"power_limit_w"` // the enforced power limit
	// Error is set when the device could not be opened at all.
	Error    string   `json:"error,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// ReadGPUs initializes NVML through lib, reads every GPU and shuts NVML down
// again. It never fails: when there is no usable GPU the returned slice is
// empty and the status says why. Per-field failures leave that field nil.
//
// Pass nvml.New() in production; tests pass a go-nvml mock (mock.Interface or
// a mock/dgx* server with the telemetry getters set).
func ReadGPUs(lib nvml.Interface) ([]GPUInfo, GPUStatus) {
	gpus := []GPUInfo{}
	if lib == nil {
		return gpus, GPUStatus{State: GPUStateNoNVML, Reason: "NVML not available (no NVML interface given)"}
	}
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return gpus, initFailure(ret)
	}
	// Shutdown failures leave nothing to act on: the reading is complete.
	defer func() { _ = lib.Shutdown() }()

	var st GPUStatus
	if v, ret := lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		st.DriverVersion = v
	} else {
		st.Warnings = append(st.Warnings, fieldWarning("driver version", ret))
	}
	if v, ret := lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
		st.CUDADriverVersion = formatCUDAVersion(v)
	} else {
		st.Warnings = append(st.Warnings, fieldWarning("CUDA driver version", ret))
	}
	if v, ret := lib.SystemGetNVMLVersion(); ret == nvml.SUCCESS {
		st.NVMLVersion = v
	}

	count, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		st.State = GPUStateInitFailed
		st.Reason = fmt.Sprintf("NVML could not count devices: %v", ret)
		return gpus, st
	}
	st.DeviceCount = count
	if count == 0 {
		st.State = GPUStateNoDevices
		st.Reason = "driver loaded but 0 devices"
		return gpus, st
	}
	st.State = GPUStateOK
	for i := 0; i < count; i++ {
		gpus = append(gpus, readGPU(lib, i))
	}
	return gpus, st
}

// initFailure turns a failed nvml.Init into a status with a plain reason.
func initFailure(ret nvml.Return) GPUStatus {
	switch ret {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return GPUStatus{State: GPUStateNoNVML,
			Reason: "NVML library " + NVMLLibrary + " not found (no NVIDIA driver installed)"}
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return GPUStatus{State: GPUStateInitFailed,
			Reason: "NVIDIA driver not loaded (NVML is installed but the kernel module is not running)"}
	case nvml.ERROR_LIB_RM_VERSION_MISMATCH:
		return GPUStatus{State: GPUStateInitFailed,
			Reason: "NVML and the NVIDIA kernel driver differ in version (reboot after a driver upgrade)"}
	case nvml.ERROR_NO_PERMISSION:
		return GPUStatus{State: GPUStateInitFailed,
			Reason: "no permission to open the NVIDIA devices (/dev/nvidia*)"}
	default:
		return GPUStatus{State: GPUStateInitFailed,
			Reason: fmt.Sprintf("NVML initialization failed: %v", ret)}
	}
}

// readGPU reads one device; it records failures instead of returning them.
func readGPU(lib nvml.Interface, index int) GPUInfo {
	g := GPUInfo{Index: index}
	dev, ret := lib.DeviceGetHandleByIndex(index)
	if ret != nvml.SUCCESS || dev == nil {
		g.Error = fmt.Sprintf("open GPU %d: %v", index, ret)
		return g
	}
	note := func(field string, ret nvml.Return) {
		if ret != nvml.ERROR_NOT_SUPPORTED {
			g.Warnings = append(g.Warnings, fieldWarning(field, ret))
		}
	}

	if v, ret := dev.GetName(); ret == nvml.SUCCESS {
		g.Name = v
	} else {
		note("name", ret)
	}
	if v, ret := dev.GetUUID(); ret == nvml.SUCCESS {
		g.UUID = v
	} else {
		note("UUID", ret)
	}
	if major, minor, ret := dev.GetCudaComputeCapability(); ret == nvml.SUCCESS {
		g.ComputeCapability = fmt.Sprintf("%d.%d", major, minor)
	} else {
		note("compute capability", ret)
	}
	if m, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
		if total, ok := nvmlU64(m.Total, ret); ok {
			g.MemoryTotalBytes = &total
		} else {
			g.Warnings = append(g.Warnings, "memory total: not available")
		}
		if used, ok := nvmlU64(m.Used, ret); ok && (g.MemoryTotalBytes == nil || used <= *g.MemoryTotalBytes) {
			g.MemoryUsedBytes = &used
		} else {
			g.Warnings = append(g.Warnings, "memory used: not available")
		}
	} else {
		note("memory", ret)
	}
	if v, ret := dev.GetTemperature(nvml.TEMPERATURE_GPU); ret != nvml.SUCCESS {
		note("temperature", ret)
	} else if _, ok := nvmlU32(v, ret); ok {
		g.TemperatureC = &v
	}
	if mw, ret := dev.GetPowerUsage(); ret != nvml.SUCCESS {
		note("power draw", ret)
	} else if _, ok := nvmlU32(mw, ret); ok {
		w := float64(mw) / 1000
		g.PowerDrawW = &w
	}
	if mw, ret := dev.GetEnforcedPowerLimit(); ret != nvml.SUCCESS {
		note("power limit", ret)
	} else if _, ok := nvmlU32(mw, ret); ok {
		w := float64(mw) / 1000
		g.PowerLimitW = &w
	}
	return g
}

func fieldWarning(field string, ret nvml.Return) string {
	return fmt.Sprintf("%s: %v", field, ret)
}

// formatCUDAVersion turns NVML's integer CUDA version (13000) into "13.0".
func formatCUDAVersion(v int) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}
