package bench

import (
	"fmt"
	"time"

	"github.com/quantscope/quantscope/profiler/telemetry"
)

// ContendedShare is the share of the run's cores that other processes
// (and the hypervisor's steal) must have taken for a run to be marked
// contended: above it, a throughput figure says as much about the machine
// as about the configuration.
const ContendedShare = 0.10

// Contention is what other processes took from a timed loop's CPU.
type Contention struct {
	WallS float64 `json:"wall_s"` // the bracketed phase
	// OthersCPUS is the CPU time every other process used meanwhile: the
	// machine's busy time (/proc/stat) minus the worker's own.
	OthersCPUS float64 `json:"others_cpu_s"`
	// StealS is the time the hypervisor ran something else while one of
	// this machine's virtual CPUs wanted to run.
	StealS float64 `json:"steal_s"`
	// SelfCPUS is the worker's own CPU time over the phase.
	SelfCPUS float64 `json:"self_cpu_s"`
	CPUs     int     `json:"cpus"`    // CPUs of the machine
	Threads  int     `json:"threads"` // cores the run was given (its intra-op threads)
	// Share is the part of the run's cores others must have taken: their
	// CPU time and steal beyond what the machine's other CPUs could absorb
	// ((CPUs − Threads) × wall), over Threads × wall; 0 to 1.
	Share float64 `json:"share"`
	// Contended is Share > ContendedShare.
	Contended bool `json:"contended"`
}

// NewContention derives a phase's contention from two CPU-time readings
// taken wall apart, for a run given threads cores.
func NewContention(start, end telemetry.CPUTimes, wall time.Duration, threads int) Contention {
	c := Contention{WallS: wall.Seconds(), CPUs: end.CPUs, Threads: threads}
	c.SelfCPUS = max(0, end.Self-start.Self)
	c.OthersCPUS = max(0, end.Busy-start.Busy-c.SelfCPUS)
	c.StealS = max(0, end.Steal-start.Steal)
	given := max(1, min(threads, c.CPUs))
	if c.WallS <= 0 || c.CPUs <= 0 {
		return c
	}
	spare := float64(max(0, c.CPUs-given)) * c.WallS
	lost := max(0, c.OthersCPUS+c.StealS-spare)
	c.Share = min(1, lost/(float64(given)*c.WallS))
	c.Contended = c.Share > ContendedShare
	return c
}

// String says what the contention figures mean, e.g. "contended: other
// processes took ~34% of the run's 2 cores (3.1 CPU-s of others, 0.0 s
// steal over 4.6 s)".
func (c Contention) String() string {
	what := "not contended"
	if c.Contended {
		what = "contended"
	}
	return fmt.Sprintf("%s: other processes took ~%.0f%% of the run's %d cores (%.1f CPU-s of others, %.1f s steal over %.1f s on %d CPUs)",
		what, 100*c.Share, max(1, min(c.Threads, c.CPUs)), c.OthersCPUS, c.StealS, c.WallS, c.CPUs)
}

// ContentionMeter brackets a phase with two CPU-time readings.
type ContentionMeter struct {
	read    func() (telemetry.CPUTimes, error)
	threads int
	start   telemetry.CPUTimes
	t0      time.Time
	err     error
}

// NewContentionMeter measures with read (telemetry.ReadCPUTimes; a fake in
// tests) for a run given threads cores.
func NewContentionMeter(read func() (telemetry.CPUTimes, error), threads int) *ContentionMeter {
	if read == nil {
		read = telemetry.ReadCPUTimes
	}
	return &ContentionMeter{read: read, threads: threads}
}

// Start takes the first reading.
func (m *ContentionMeter) Start() {
	m.start, m.err = m.read()
	m.t0 = time.Now()
}

// Stop takes the second reading and returns the phase's contention; nil
// when it could not be measured (not started, or /proc/stat unreadable).
func (m *ContentionMeter) Stop() (*Contention, error) {
	if m.t0.IsZero() {
		return nil, fmt.Errorf("contention: phase never started")
	}
	if m.err != nil {
		return nil, m.err
	}
	end, err := m.read()
	if err != nil {
		return nil, err
	}
	c := NewContention(m.start, end, time.Since(m.t0), m.threads)
	return &c, nil
}
