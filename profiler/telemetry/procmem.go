package telemetry

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
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
