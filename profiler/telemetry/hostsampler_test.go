package telemetry

import (
	"context"
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
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) { // burn one core
		x++
	}
	h := s.Sample(context.Background())
	if h.CPUPct < 50 || h.CPUPct > 400 {
		t.Errorf("process CPU %.0f%% after spinning a core for 300 ms", h.CPUPct)
	}
	if h.RSS <= 0 || h.SysMemUsed == 0 || h.SysMemPct <= 0 {
		t.Errorf("memory figures %+v", h)
	}
	_ = x
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
