package telemetry

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/process"
	"github.com/shirou/gopsutil/v4/sensors"
)

// HostSample is one reading of this process and the machine around it.
type HostSample struct {
	Time       time.Time `json:"time"`
	CPUPct     float64   `json:"cpu_pct"` // this process, percent of one core (200 = two cores busy)
	RSS        int64     `json:"rss"`
	SysMemUsed uint64    `json:"sys_mem_used"`
	SysMemPct  float64   `json:"sys_mem_pct"`
	CPUTempC   float64   `json:"cpu_temp_c,omitempty"` // 0 when the OS exposes none
}

// HostSampler reads process CPU and memory through gopsutil, system memory,
// and CPU temperature from hwmon / thermal zones where the OS exposes them.
type HostSampler struct {
	proc    *process.Process
	lastCPU float64 // process CPU seconds at the last reading
	lastT   time.Time
	noTemp  bool // no CPU sensor was found: stop looking
}

// NewHostSampler samples the current process.
func NewHostSampler() (*HostSampler, error) {
	p, err := process.NewProcess(int32(os.Getpid()))
	if err != nil {
		return nil, err
	}
	s := &HostSampler{proc: p, lastT: time.Now()}
	if t, err := p.Times(); err == nil {
		s.lastCPU = t.User + t.System
	}
	return s, nil
}

// Sample takes one reading; CPU% is over the time since the previous one.
func (s *HostSampler) Sample(ctx context.Context) HostSample {
	now := time.Now()
	h := HostSample{Time: now}
	if t, err := s.proc.TimesWithContext(ctx); err == nil {
		cpu := t.User + t.System
		if dt := now.Sub(s.lastT).Seconds(); dt > 0 {
			h.CPUPct = 100 * (cpu - s.lastCPU) / dt
		}
		s.lastCPU, s.lastT = cpu, now
	}
	if m, err := ReadProcMemory(); err == nil {
		h.RSS = m.RSS
	}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		h.SysMemUsed, h.SysMemPct = vm.Used, vm.UsedPercent
	}
	if !s.noTemp {
		temps, _ := sensors.TemperaturesWithContext(ctx)
		h.CPUTempC = cpuTemperature(temps)
		s.noTemp = h.CPUTempC == 0
	}
	return h
}

// cpuTemperature picks the CPU package temperature from sensor readings:
// coretemp's package, k10temp's Tctl/Tdie, or an x86_pkg thermal zone;
// else the hottest plausible reading of a sensor named like a CPU.
func cpuTemperature(temps []sensors.TemperatureStat) float64 {
	best := 0.0
	for _, t := range temps {
		k := strings.ToLower(t.SensorKey)
		if t.Temperature <= 0 || t.Temperature > 150 {
			continue
		}
		switch {
		case strings.Contains(k, "package"), strings.Contains(k, "tctl"), strings.Contains(k, "tdie"), strings.Contains(k, "x86_pkg"):
			return t.Temperature
		case strings.Contains(k, "coretemp"), strings.Contains(k, "k10temp"), strings.Contains(k, "cpu"):
			best = max(best, t.Temperature)
		}
	}
	return best
}
