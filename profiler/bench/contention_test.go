package bench

import (
	"errors"
	"testing"
	"time"

	"github.com/quantscope/quantscope/profiler/telemetry"
)

func TestNewContention(t *testing.T) {
	at := func(busy, steal, self float64, cpus int) telemetry.CPUTimes {
		return telemetry.CPUTimes{Busy: busy, Steal: steal, Self: self, CPUs: cpus}
	}
	const wall = 10 * time.Second
	tests := []struct {
		name       string
		start, end telemetry.CPUTimes
		threads    int
		share      float64
		contended  bool
	}{
		// 2 CPUs, 2 threads: the worker used 19.5 CPU-s, others 0.5 (2.5%).
		{"quiet 2-core", at(100, 0, 1, 2), at(120, 0, 20.5, 2), 2, 0.025, false},
		// The same with others using one core for the whole loop: half the run's cores.
		{"a hog on a 2-core machine", at(100, 0, 1, 2), at(130, 0, 21, 2), 2, 0.5, true},
		// Steal counts like another process: 3 s of 20 = 15%.
		{"steal", at(100, 10, 1, 2), at(119, 13, 20, 2), 2, 0.15, true},
		// 16 CPUs, 2 threads: 10 busy cores of others fit on the 14 spare ones.
		{"others on spare cores", at(0, 0, 0, 16), at(120, 0, 20, 16), 2, 0, false},
		// 16 CPUs, 2 threads, others on all 16: 160 − 140 spare = 20 of 20.
		{"others everywhere", at(0, 0, 0, 16), at(180, 0, 20, 16), 2, 1, true},
		// The worker's own time is never "others", even when it is all there is.
		{"own time only", at(0, 0, 0, 2), at(20, 0, 20, 2), 2, 0, false},
		// More threads than CPUs: judged against the CPUs there are.
		{"oversubscribed", at(0, 0, 0, 2), at(22, 0, 20, 2), 8, 0.1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewContention(tt.start, tt.end, wall, tt.threads)
			if d := c.Share - tt.share; d > 1e-9 || d < -1e-9 || c.Contended != tt.contended {
				t.Errorf("share %v contended %v, want %v %v (%s)", c.Share, c.Contended, tt.share, tt.contended, c)
			}
		})
	}
}

func TestContentionMeter(t *testing.T) {
	readings := []telemetry.CPUTimes{{Busy: 100, Self: 1, CPUs: 2}, {Busy: 100.5, Self: 1.4, CPUs: 2}}
	i := 0
	m := NewContentionMeter(func() (telemetry.CPUTimes, error) { r := readings[i]; i++; return r, nil }, 2)
	if _, err := m.Stop(); err == nil {
		t.Error("Stop before Start measured something")
	}
	m.Start()
	c, err := m.Stop()
	if err != nil || c == nil || c.SelfCPUS < 0.399 || c.SelfCPUS > 0.401 || c.OthersCPUS < 0.099 || c.OthersCPUS > 0.101 || c.Threads != 2 || c.CPUs != 2 {
		t.Fatalf("contention %+v %v", c, err)
	}
	bad := NewContentionMeter(func() (telemetry.CPUTimes, error) { return telemetry.CPUTimes{}, errors.New("no /proc") }, 1)
	bad.Start()
	if c, err := bad.Stop(); c != nil || err == nil {
		t.Errorf("unreadable /proc/stat gave %+v %v", c, err)
	}
}
