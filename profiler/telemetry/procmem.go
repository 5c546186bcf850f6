package telemetry

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ProcMemory is a process's resident memory as the kernel reports it.
type ProcMemory struct {
	RSS     int64 `json:"rss"`      // VmRSS: resident now, bytes
	PeakRSS int64 `json:"peak_rss"` // VmHWM: the high-water mark, bytes
}

// ReadProcMemory reads this process's VmRSS and VmHWM from /proc/self/status.
func ReadProcMemory() (ProcMemory, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ProcMemory{}, fmt.Errorf("read process memory: %w", err)
	}
	return parseProcStatus(b)
}

// parseProcStatus extracts VmRSS and VmHWM ("VmRSS:	  123456 kB") from the
// text of /proc/<pid>/status.
func parseProcStatus(b []byte) (ProcMemory, error) {
	var m ProcMemory
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("parse /proc status %s: unexpected %q", key, val)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("parse /proc status %s: %w", key, err)
		}
		if key == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.PeakRSS = kb << 10
		}
		seen++
	}
	if seen < 2 {
		return m, fmt.Errorf("parse /proc status: VmRSS or VmHWM missing")
	}
	return m, nil
}

// ResetPeakRSS restarts this process's high-water mark (VmHWM) from its
// current RSS, by writing 5 to /proc/self/clear_refs (Linux 4.0 and
// later): a later ReadProcMemory's PeakRSS then covers only what ran
// since, however short its peaks were.
func ResetPeakRSS() error {
	f, err := os.OpenFile("/proc/self/clear_refs", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("reset peak RSS: %w", err)
	}
	if _, err := f.WriteString("5"); err != nil {
		f.Close()
		return fmt.Errorf("reset peak RSS: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("reset peak RSS: %w", err)
	}
	return nil
}

// Peak sources: how PeakRSSWatch measured.
const (
	// PeakHighWater is the kernel's high-water mark, reset at the start of
	// the phase: it catches every peak, however short.
	PeakHighWater = "high-water mark"
	// PeakSampled is the largest of periodic RSS readings, used when the
	// high-water mark cannot be reset: peaks between readings are missed.
	PeakSampled = "sampled"
)

// PeakRSSWatch measures the peak resident memory of a phase of this
// process: the kernel's high-water mark, reset when the watch starts, or,
// where the reset is refused, the largest RSS reading given to Observe.
// Its methods are safe for concurrent use (a sampler observes while the
// phase runs).
type PeakRSSWatch struct {
	mu      sync.Mutex
	hwm     bool
	sampled int64
	note    string
}

// StartPeakRSS resets the high-water mark and starts a watch.
func StartPeakRSS() *PeakRSSWatch {
	w := &PeakRSSWatch{hwm: true}
	if err := ResetPeakRSS(); err != nil {
		w.hwm, w.note = false, err.Error()
	}
	if m, err := ReadProcMemory(); err == nil {
		w.sampled = m.RSS
	}
	return w
}

// Observe folds in an RSS reading taken during the phase.
func (w *PeakRSSWatch) Observe(rss int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sampled = max(w.sampled, rss)
}

// Peak returns the phase's peak RSS so far, how it was measured
// (PeakHighWater or PeakSampled) and, for a sampled peak, why the
// high-water mark could not be used.
func (w *PeakRSSWatch) Peak() (bytes int64, source, note string, err error) {
	m, err := ReadProcMemory()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		w.sampled = max(w.sampled, m.RSS)
	}
	if w.hwm {
		if err != nil {
			return 0, "", "", err
		}
		return max(m.PeakRSS, w.sampled), PeakHighWater, "", nil
	}
	return w.sampled, PeakSampled, w.note, nil
}
