package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// GPUSample is one reading of the cheap NVML fields of a device.
type GPUSample struct {
	Time        time.Time `json:"time"`
	MemUsed     uint64    `json:"mem_used"` // device memory in use, bytes
	UtilPct     uint32    `json:"util_pct"`
	TempC       uint32    `json:"temp_c"`
	PowerW      float64   `json:"power_w"` // NVML's ~1 s average on recent GPUs
	SMClockMHz  uint32    `json:"sm_clock_mhz"`
	EnergyMJ    uint64    `json:"energy_mj"` // total-energy counter, millijoules
	HasEnergy   bool      `json:"has_energy"`
	Throttle    uint64    `json:"throttle"`     // clocks-event reason bits
	CallLatency float64   `json:"call_latency"` // seconds this reading took
}

// GPUSampler reads one device. Sample reads the fields that cost microseconds;
// ProcessMemory walks the process list, which costs milliseconds and takes
// the driver's lock, so callers do it at most about once a second.
type GPUSampler struct {
	lib nvml.Interface
	dev nvml.Device
	pid int
}

// ErrNoGPU marks a sampler that could not be opened: no NVML, no device.
var ErrNoGPU = errors.New("no NVIDIA GPU to sample")

// NewGPUSampler initializes NVML (through lib: nvml.New() on a real machine)
// and opens device index for process pid. Close releases NVML.
func NewGPUSampler(lib nvml.Interface, index, pid int) (*GPUSampler, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("%w: NVML init: %v", ErrNoGPU, ret)
	}
	dev, ret := lib.DeviceGetHandleByIndex(index)
	if ret != nvml.SUCCESS {
		lib.Shutdown()
		return nil, fmt.Errorf("%w: device %d: %v", ErrNoGPU, index, ret)
	}
	return &GPUSampler{lib: lib, dev: dev, pid: pid}, nil
}

// Close shuts NVML down.
func (s *GPUSampler) Close() { s.lib.Shutdown() }

// notAvailable64 and notAvailable32 are NVML's "not available" marker
// (nvml.VALUE_NOT_AVAILABLE, -1) in an unsigned 64- or 32-bit field: all
// ones. Recorded as a figure it would read as 16 EiB (or 4.3 GW).
const (
	notAvailable64 = ^uint64(0)
	notAvailable32 = ^uint32(0)
)

// nvmlU64 keeps a 64-bit NVML reading unless the call failed or the value
// is the "not available" marker.
func nvmlU64(v uint64, ret nvml.Return) (uint64, bool) {
	return v, ret == nvml.SUCCESS && v != notAvailable64
}

// nvmlU32 is nvmlU64 for 32-bit readings.
func nvmlU32(v uint32, ret nvml.Return) (uint32, bool) {
	return v, ret == nvml.SUCCESS && v != notAvailable32
}

// Sample reads the cheap fields; a field the device does not support, or
// reports as "not available", stays 0.
func (s *GPUSampler) Sample() GPUSample {
	start := time.Now()
	g := GPUSample{Time: start}
	if m, ret := s.dev.GetMemoryInfo(); ret == nvml.SUCCESS {
		if v, ok := nvmlU64(m.Used, ret); ok && (m.Total == 0 || v <= m.Total) {
			g.MemUsed = v
		}
	}
	if u, ret := s.dev.GetUtilizationRates(); ret == nvml.SUCCESS && u.Gpu <= 100 {
		g.UtilPct = u.Gpu
	}
	if t, ok := nvmlU32(s.dev.GetTemperature(nvml.TEMPERATURE_GPU)); ok {
		g.TempC = t
	}
	if p, ok := nvmlU32(s.dev.GetPowerUsage()); ok {
		g.PowerW = float64(p) / 1000
	}
	if c, ok := nvmlU32(s.dev.GetClockInfo(nvml.CLOCK_SM)); ok {
		g.SMClockMHz = c
	}
	if e, ok := nvmlU64(s.dev.GetTotalEnergyConsumption()); ok {
		g.EnergyMJ, g.HasEnergy = e, true
	}
	if r, ret := s.dev.GetCurrentClocksEventReasons(); ret == nvml.SUCCESS {
		g.Throttle = r
	}
	g.CallLatency = time.Since(start).Seconds()
	return g
}

// ProcessMemory is what NVML's compute process list says about one
// process's device memory.
type ProcessMemory struct {
	Bytes uint64
	// OK is true when the process is listed with a figure. Otherwise Reason
	// says why there is none, and device-wide memory is all there is.
	OK     bool
	Reason string
}

// Reasons ProcessMemory gives when NVML has no per-process figure.
const (
	// ReasonPidAbsent: the process is not in the list, as in a container
	// without the host's PID namespace (NVML lists host PIDs).
	ReasonPidAbsent = "this process is not in NVML's process list (a container without the host PID namespace?)"
	// ReasonNotAvailable: listed, but with NVML's "not available" value
	// (e.g. under some virtualized or MIG setups).
	ReasonNotAvailable = "NVML lists this process but reports its memory as not available"
)

// ProcessMemory reads the device memory the sampler's process uses from the
// compute process list. An absent pid, NVML's "not available" value
// (all ones, which would read as 16 EiB) and a failing list all leave OK
// false, with the reason.
func (s *GPUSampler) ProcessMemory() ProcessMemory {
	procs, ret := s.dev.GetComputeRunningProcesses()
	if ret != nvml.SUCCESS {
		return ProcessMemory{Reason: fmt.Sprintf("NVML process list: %v", ret)}
	}
	for _, p := range procs {
		if int(p.Pid) != s.pid {
			continue
		}
		if p.UsedGpuMemory == notAvailable64 {
			return ProcessMemory{Reason: ReasonNotAvailable}
		}
		return ProcessMemory{Bytes: p.UsedGpuMemory, OK: true}
	}
	return ProcessMemory{Reason: ReasonPidAbsent}
}

// throttleNames are the clocks-event reasons worth telling a user about.
var throttleNames = map[uint64]string{
	nvml.ClocksEventReasonSwPowerCap:              "sw power cap",
	nvml.ClocksThrottleReasonHwSlowdown:           "hw slowdown",
	nvml.ClocksEventReasonSwThermalSlowdown:       "sw thermal slowdown",
	nvml.ClocksThrottleReasonHwThermalSlowdown:    "hw thermal slowdown",
	nvml.ClocksThrottleReasonHwPowerBrakeSlowdown: "hw power brake",
}

// ThrottleReasons names the throttling bits set in mask, sorted.
func ThrottleReasons(mask uint64) []string {
	var out []string
	for bit, name := range throttleNames {
		if mask&bit != 0 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// GPURun accumulates a device's readings over a timed loop: energy, power,
// temperature, clocks, throttling, memory.
type GPURun struct {
	mu       sync.Mutex
	first    GPUSample
	last     GPUSample
	n        int
	powerSum float64
	powerMax float64
	tempMax  uint32
	clockSum float64
	memMax   uint64
	integral float64 // ∫ power dt, joules (fallback when no energy counter)
	throttle uint64
	procMem  uint64
	procOK   bool
	procWhy  string // why there is no process figure (last reason seen)
	callSum  float64
}

// Add folds one sample in.
func (r *GPURun) Add(g GPUSample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		r.first = g
	} else {
		dt := g.Time.Sub(r.last.Time).Seconds()
		r.integral += (g.PowerW + r.last.PowerW) / 2 * dt
	}
	r.last = g
	r.n++
	r.powerSum += g.PowerW
	r.powerMax = max(r.powerMax, g.PowerW)
	r.tempMax = max(r.tempMax, g.TempC)
	r.clockSum += float64(g.SMClockMHz)
	r.memMax = max(r.memMax, g.MemUsed)
	r.throttle |= g.Throttle
	r.callSum += g.CallLatency
}

// AddProcessMemory records a reading of the process's own device memory;
// a reading without a figure keeps its reason for the summary.
func (r *GPURun) AddProcessMemory(p ProcessMemory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !p.OK {
		r.procWhy = p.Reason
		return
	}
	r.procMem, r.procOK = max(r.procMem, p.Bytes), true
}

// GPURunSummary is what a GPURun measured.
type GPURunSummary struct {
	Samples      int
	Joules       float64 // energy between the first and last sample
	Window       time.Duration
	EnergySource string // "nvml counter" or "power integral"
	MeanPowerW   float64
	MaxPowerW    float64
	TempStartC   float64
	TempMaxC     float64
	SMClockMHz   float64 // mean
	Throttle     []string
	MemPeak      uint64 // device memory used, max over samples
	ProcessMem   uint64 // this process's device memory (ProcessOK)
	ProcessOK    bool
	// ProcessReason says why there is no process figure (when !ProcessOK
	// and the process list was read).
	ProcessReason string
	CallLatency   float64 // mean seconds per Sample call
}

// JoulesPerSecond is the mean power the energy figure implies: the counter's
// (or the integral's) joules over the sampled window, else the mean of the
// power readings.
func (s GPURunSummary) JoulesPerSecond() float64 {
	if s.Window > 0 && s.Joules > 0 {
		return s.Joules / s.Window.Seconds()
	}
	return s.MeanPowerW
}

// Summary reduces the samples. Energy comes from the total-energy counter
// when the device has one (exact), else from integrating power samples.
func (r *GPURun) Summary() GPURunSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := GPURunSummary{Samples: r.n}
	if r.n == 0 {
		return s
	}
	n := float64(r.n)
	s.MeanPowerW, s.MaxPowerW = r.powerSum/n, r.powerMax
	s.TempStartC, s.TempMaxC = float64(r.first.TempC), float64(r.tempMax)
	s.SMClockMHz = r.clockSum / n
	s.Throttle = ThrottleReasons(r.throttle)
	s.MemPeak, s.ProcessMem, s.ProcessOK, s.ProcessReason = r.memMax, r.procMem, r.procOK, r.procWhy
	s.CallLatency = r.callSum / n
	s.Window = r.last.Time.Sub(r.first.Time)
	if r.first.HasEnergy && r.last.HasEnergy && r.last.EnergyMJ >= r.first.EnergyMJ && r.n > 1 {
		s.Joules, s.EnergySource = float64(r.last.EnergyMJ-r.first.EnergyMJ)/1000, "nvml counter"
	} else {
		s.Joules, s.EnergySource = r.integral, "power integral"
	}
	return s
}

// Watch samples s every period into r until ctx ends, and reads the process
// list at most once per procEvery. onSample (optional) sees each sample.
func Watch(ctx context.Context, s *GPUSampler, r *GPURun, period, procEvery time.Duration, onSample func(GPUSample)) {
	t := time.NewTicker(period)
	defer t.Stop()
	var lastProc time.Time
	take := func() {
		g := s.Sample()
		r.Add(g)
		if time.Since(lastProc) >= procEvery {
			lastProc = time.Now()
			r.AddProcessMemory(s.ProcessMemory())
		}
		if onSample != nil {
			onSample(g)
		}
	}
	take()
	for {
		select {
		case <-ctx.Done():
			take() // a closing reading bounds the energy counter
			return
		case <-t.C:
			take()
		}
	}
}
