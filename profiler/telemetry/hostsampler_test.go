package telemetry

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/sensors"
)

func TestHostSamplerSeesThisProcessWork(t *testing.T) {
	s, err := NewHostSampler()
	if err != nil {
		t.Fatal(err)
	}
	s.Sample(context.Background())
	start, wallStart := processCPU(t), time.Now()
	// Burn until this process has used 300 ms of CPU, however busy the
	// machine is: the sampler must report what the kernel accounted.
	x := 0
	for processCPU(t)-start < 300*time.Millisecond {
		for i := 0; i < 100000; i++ {
			x++
		}
	}
	h := s.Sample(context.Background())
	used, wall := processCPU(t)-start, time.Since(wallStart)
	want := 100 * used.Seconds() / wall.Seconds()
	if h.CPUPct < 0.5*want || h.CPUPct > 2*want+10 {
		t.Errorf("process CPU %.0f%%; the kernel accounted %v of CPU in %v (%.0f%%)", h.CPUPct, used, wall, want)
	}
	if h.RSS <= 0 || h.SysMemUsed == 0 || h.SysMemPct <= 0 {
		t.Errorf("memory figures %+v", h)
	}
	_ = x
}

// processCPU is this process's user + system CPU time from getrusage.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestCPUTemperature(t *testing.T) {
	tests := []struct {
		name  string
		temps []sensors.TemperatureStat
		want  float64
	}{
		{"intel package wins", []sensors.TemperatureStat{{SensorKey: "coretemp_core_0", Temperature: 50}, {SensorKey: "coretemp_package_id_0", Temperature: 55}}, 55},
		{"amd tctl", []sensors.TemperatureStat{{SensorKey: "nvme_composite", Temperature: 40}, {SensorKey: "k10temp_tctl", Temperature: 61.5}}, 61.5},
		{"hottest core", []sensors.TemperatureStat{{SensorKey: "coretemp_core_0", Temperature: 50}, {SensorKey: "coretemp_core_1", Temperature: 58}}, 58},
		{"no cpu sensor", []sensors.TemperatureStat{{SensorKey: "nvme_composite", Temperature: 40}, {SensorKey: "acpitz", Temperature: 27.8}}, 0},
		{"implausible ignored", []sensors.TemperatureStat{{SensorKey: "cpu_thermal", Temperature: 255}}, 0},
	}
	for _, tt := range tests {
		if got := cpuTemperature(tt.temps); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
