package telemetry

import (
	"fmt"
	"os"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// GPUHealth is what NVML says about a device's fitness for sustained work:
// clocks against their maxima, power against its limits, temperature against
// the slowdown threshold, the PCIe link against what it could train at, ECC
// and retired memory, MIG mode, and who else is using it. A group NVML does
// not report on this device (ERROR_NOT_SUPPORTED, e.g. ECC on a consumer
// card) is nil; other failures are also noted in Warnings.
type GPUHealth struct {
	Index             int    `json:"index"`
	Name              string `json:"name"`
	UUID              string `json:"uuid,omitempty"`
	ComputeCapability string `json:"compute_capability,omitempty"`
	// Cores is the number of CUDA cores (0 when NVML does not say).
	Cores          int    `json:"cores,omitempty"`
	MemBusWidth    uint32 `json:"mem_bus_width_bits,omitempty"`
	SMClockMHz     uint32 `json:"sm_clock_mhz"`
	MaxSMClockMHz  uint32 `json:"max_sm_clock_mhz,omitempty"`
	MemClockMHz    uint32 `json:"mem_clock_mhz,omitempty"`
	MaxMemClockMHz uint32 `json:"max_mem_clock_mhz,omitempty"`

	PowerW             float64 `json:"power_w"`
	PowerLimitW        float64 `json:"power_limit_w,omitempty"`         // enforced
	DefaultPowerLimitW float64 `json:"default_power_limit_w,omitempty"` // as shipped
	MaxPowerLimitW     float64 `json:"max_power_limit_w,omitempty"`

	TempC         uint32 `json:"temp_c"`
	SlowdownTempC uint32 `json:"slowdown_temp_c,omitempty"` // hardware slowdown threshold

	// Throttle names the clocks-event reasons set now (ThrottleReasons).
	Throttle     []string `json:"throttle,omitempty"`
	ThrottleMask uint64   `json:"throttle_mask"`

	PCIe       *PCIeLink    `json:"pcie,omitempty"`
	ECC        *ECCStatus   `json:"ecc,omitempty"`
	Retired    *Retired     `json:"retired_pages,omitempty"` // pre-Ampere page retirement
	Remapped   *Remapped    `json:"remapped_rows,omitempty"` // Ampere and later row remapping
	MIG        *MIGMode     `json:"mig,omitempty"`           // nil: the device has no MIG
	Processes  []GPUProcess `json:"processes"`               // compute and graphics
	Persistent *bool        `json:"persistence_mode,omitempty"`

	Warnings []string `json:"warnings,omitempty"`
}

// PCIeLink is the device's PCIe link now and at best.
type PCIeLink struct {
	Gen      int `json:"gen"`
	Width    int `json:"width"`
	MaxGen   int `json:"max_gen"`   // the best the device and the slot can train at
	MaxWidth int `json:"max_width"` // ditto
	// GPUMaxGen is the GPU's own maximum, regardless of the slot (0 unknown).
	GPUMaxGen int `json:"gpu_max_gen,omitempty"`
}

// ECCStatus is the ECC mode and error counts since the driver loaded
// (volatile) and over the device's life (aggregate).
type ECCStatus struct {
	Enabled              bool   `json:"enabled"`
	PendingEnabled       bool   `json:"pending_enabled"`
	VolatileCorrected    uint64 `json:"volatile_corrected"`
	VolatileUncorrected  uint64 `json:"volatile_uncorrected"`
	AggregateCorrected   uint64 `json:"aggregate_corrected"`
	AggregateUncorrected uint64 `json:"aggregate_uncorrected"`
}

// Retired is page retirement (pre-Ampere): pages taken out of use for
// repeated single-bit or any double-bit errors.
type Retired struct {
	SingleBit int  `json:"single_bit"`
	DoubleBit int  `json:"double_bit"`
	Pending   bool `json:"pending"` // a retirement waits for the next reset
}

// Remapped is row remapping (Ampere and later).
type Remapped struct {
	Correctable   int  `json:"correctable"`
	Uncorrectable int  `json:"uncorrectable"`
	Pending       bool `json:"pending"` // a remap waits for the next reset
	Failure       bool `json:"failure"` // a remap failed: no spare rows left
}

// MIGMode is the Multi-Instance GPU mode now and after the next reset.
type MIGMode struct {
	Enabled bool `json:"enabled"`
	Pending bool `json:"pending"`
}

// GPUProcess is a process using the device.
type GPUProcess struct {
	PID       uint32 `json:"pid"`
	UsedBytes uint64 `json:"used_bytes"`
	Name      string `json:"name,omitempty"`
}

// GPULoad is a cheap reading taken repeatedly while work runs.
type GPULoad struct {
	SMClockMHz   uint32   `json:"sm_clock_mhz"`
	PowerW       float64  `json:"power_w"`
	TempC        uint32   `json:"temp_c"`
	ThrottleMask uint64   `json:"throttle_mask"`
	Throttle     []string `json:"throttle,omitempty"`
	PCIeGen      int      `json:"pcie_gen,omitempty"`
	PCIeWidth    int      `json:"pcie_width,omitempty"`
	UtilPct      uint32   `json:"util_pct"`
}

// GPUProbe keeps NVML open on one device for health readings.
type GPUProbe struct {
	lib   nvml.Interface
	dev   nvml.Device
	index int
}

// OpenGPUProbe initializes NVML through lib (nvml.New() on a real machine,
// a telemetrytest server in tests) and opens device index. Close releases
// NVML.
func OpenGPUProbe(lib nvml.Interface, index int) (*GPUProbe, error) {
	if lib == nil {
		return nil, fmt.Errorf("%w: no NVML interface", ErrNoGPU)
	}
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("%w: NVML init: %v", ErrNoGPU, ret)
	}
	dev, ret := lib.DeviceGetHandleByIndex(index)
	if ret != nvml.SUCCESS || dev == nil {
		lib.Shutdown()
		return nil, fmt.Errorf("%w: device %d: %v", ErrNoGPU, index, ret)
	}
	return &GPUProbe{lib: lib, dev: dev, index: index}, nil
}

// Close shuts NVML down.
func (p *GPUProbe) Close() { _ = p.lib.Shutdown() }

// Health reads everything GPUHealth holds. It never fails: what cannot be
// read is left out and, unless merely unsupported, noted in Warnings.
func (p *GPUProbe) Health() GPUHealth {
	d := p.dev
	h := GPUHealth{Index: p.index, Processes: []GPUProcess{}}
	note := func(field string, ret nvml.Return) {
		if ret != nvml.ERROR_NOT_SUPPORTED {
			h.Warnings = append(h.Warnings, fieldWarning(field, ret))
		}
	}
	if v, ret := d.GetName(); ret == nvml.SUCCESS {
		h.Name = v
	} else {
		note("name", ret)
	}
	if v, ret := d.GetUUID(); ret == nvml.SUCCESS {
		h.UUID = v
	}
	if major, minor, ret := d.GetCudaComputeCapability(); ret == nvml.SUCCESS {
		h.ComputeCapability = fmt.Sprintf("%d.%d", major, minor)
	} else {
		note("compute capability", ret)
	}
	if v, ret := d.GetNumGpuCores(); ret == nvml.SUCCESS {
		h.Cores = v
	}
	if v, ret := d.GetMemoryBusWidth(); ret == nvml.SUCCESS {
		h.MemBusWidth = v
	}
	if v, ret := d.GetMaxClockInfo(nvml.CLOCK_SM); ret == nvml.SUCCESS {
		h.MaxSMClockMHz = v
	} else {
		note("max SM clock", ret)
	}
	if v, ret := d.GetClockInfo(nvml.CLOCK_MEM); ret == nvml.SUCCESS {
		h.MemClockMHz = v
	}
	if v, ret := d.GetMaxClockInfo(nvml.CLOCK_MEM); ret == nvml.SUCCESS {
		h.MaxMemClockMHz = v
	}
	if mw, ret := d.GetEnforcedPowerLimit(); ret == nvml.SUCCESS {
		h.PowerLimitW = float64(mw) / 1000
	} else {
		note("power limit", ret)
	}
	if mw, ret := d.GetPowerManagementDefaultLimit(); ret == nvml.SUCCESS {
		h.DefaultPowerLimitW = float64(mw) / 1000
	}
	if _, maxMW, ret := d.GetPowerManagementLimitConstraints(); ret == nvml.SUCCESS {
		h.MaxPowerLimitW = float64(maxMW) / 1000
	}
	if v, ret := d.GetTemperatureThreshold(nvml.TEMPERATURE_THRESHOLD_SLOWDOWN); ret == nvml.SUCCESS {
		h.SlowdownTempC = v
	}
	load := p.Load()
	h.SMClockMHz, h.PowerW, h.TempC = load.SMClockMHz, load.PowerW, load.TempC
	h.ThrottleMask, h.Throttle = load.ThrottleMask, load.Throttle

	var link PCIeLink
	var ret nvml.Return
	okLink := true
	if link.Gen, ret = d.GetCurrPcieLinkGeneration(); ret != nvml.SUCCESS {
		okLink = false
	}
	if link.Width, ret = d.GetCurrPcieLinkWidth(); ret != nvml.SUCCESS {
		okLink = false
	}
	if link.MaxGen, ret = d.GetMaxPcieLinkGeneration(); ret != nvml.SUCCESS {
		okLink = false
	}
	if link.MaxWidth, ret = d.GetMaxPcieLinkWidth(); ret != nvml.SUCCESS {
		okLink = false
	}
	if g, ret := d.GetGpuMaxPcieLinkGeneration(); ret == nvml.SUCCESS {
		link.GPUMaxGen = g
	}
	if okLink {
		h.PCIe = &link
	} else if ret != nvml.ERROR_NOT_SUPPORTED {
		note("PCIe link", ret)
	}

	if cur, pending, ret := d.GetEccMode(); ret == nvml.SUCCESS {
		e := &ECCStatus{Enabled: cur == nvml.FEATURE_ENABLED, PendingEnabled: pending == nvml.FEATURE_ENABLED}
		count := func(t nvml.MemoryErrorType, c nvml.EccCounterType) uint64 {
			v, ret := d.GetTotalEccErrors(t, c)
			if ret != nvml.SUCCESS {
				return 0
			}
			return v
		}
		if e.Enabled {
			e.VolatileCorrected = count(nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.VOLATILE_ECC)
			e.VolatileUncorrected = count(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC)
			e.AggregateCorrected = count(nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.AGGREGATE_ECC)
			e.AggregateUncorrected = count(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.AGGREGATE_ECC)
		}
		h.ECC = e
	} else {
		note("ECC mode", ret)
	}
	if corr, unc, pending, failure, ret := d.GetRemappedRows(); ret == nvml.SUCCESS {
		h.Remapped = &Remapped{Correctable: corr, Uncorrectable: unc, Pending: pending, Failure: failure}
	} else if sbe, ret1 := d.GetRetiredPages(nvml.PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS); ret1 == nvml.SUCCESS {
		r := &Retired{SingleBit: len(sbe)}
		if dbe, ret := d.GetRetiredPages(nvml.PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR); ret == nvml.SUCCESS {
			r.DoubleBit = len(dbe)
		}
		if st, ret := d.GetRetiredPagesPendingStatus(); ret == nvml.SUCCESS {
			r.Pending = st == nvml.FEATURE_ENABLED
		}
		h.Retired = r
	}
	if cur, pending, ret := d.GetMigMode(); ret == nvml.SUCCESS {
		h.MIG = &MIGMode{Enabled: cur == nvml.DEVICE_MIG_ENABLE, Pending: pending == nvml.DEVICE_MIG_ENABLE}
	}
	if v, ret := d.GetPersistenceMode(); ret == nvml.SUCCESS {
		on := v == nvml.FEATURE_ENABLED
		h.Persistent = &on
	}
	h.Processes = p.Processes()
	return h
}

// Processes lists the compute and graphics processes on the device (one
// entry per PID); empty when NVML does not say (e.g. a container without the
// host's PID namespace).
func (p *GPUProbe) Processes() []GPUProcess {
	out := []GPUProcess{}
	seen := map[uint32]bool{}
	for _, get := range []func() ([]nvml.ProcessInfo, nvml.Return){p.dev.GetComputeRunningProcesses, p.dev.GetGraphicsRunningProcesses} {
		procs, ret := get()
		if ret != nvml.SUCCESS {
			continue
		}
		for _, pi := range procs {
			if seen[pi.Pid] {
				continue
			}
			seen[pi.Pid] = true
			out = append(out, GPUProcess{PID: pi.Pid, UsedBytes: pi.UsedGpuMemory, Name: processName(pi.Pid)})
		}
	}
	return out
}

// processName is the command name of pid from /proc ("" when unknown).
func processName(pid uint32) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	return string(b)
}

// Load takes the cheap reading: SM clock, power, temperature, throttle
// reasons, utilization and the PCIe link as it is trained now.
func (p *GPUProbe) Load() GPULoad {
	d := p.dev
	var g GPULoad
	if v, ret := d.GetClockInfo(nvml.CLOCK_SM); ret == nvml.SUCCESS {
		g.SMClockMHz = v
	}
	if mw, ret := d.GetPowerUsage(); ret == nvml.SUCCESS {
		g.PowerW = float64(mw) / 1000
	}
	if v, ret := d.GetTemperature(nvml.TEMPERATURE_GPU); ret == nvml.SUCCESS {
		g.TempC = v
	}
	if v, ret := d.GetCurrentClocksEventReasons(); ret == nvml.SUCCESS {
		g.ThrottleMask, g.Throttle = v, ThrottleReasons(v)
	}
	if u, ret := d.GetUtilizationRates(); ret == nvml.SUCCESS {
		g.UtilPct = u.Gpu
	}
	if v, ret := d.GetCurrPcieLinkGeneration(); ret == nvml.SUCCESS {
		g.PCIeGen = v
	}
	if v, ret := d.GetCurrPcieLinkWidth(); ret == nvml.SUCCESS {
		g.PCIeWidth = v
	}
	return g
}
