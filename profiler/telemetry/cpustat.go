package telemetry

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// CPUTimes is one reading of the machine's CPU time, from /proc/stat's
// aggregate line, and of this process's own. Two readings bracket a phase:
// the machine's busy time minus the process's is what other processes
// used meanwhile.
type CPUTimes struct {
	// Busy is the seconds all CPUs together spent running anything: user,
	// nice, system, irq and softirq (guest time is inside user).
	Busy float64 `json:"busy_s"`
	// Idle is the seconds all CPUs together spent idle or waiting for I/O.
	Idle float64 `json:"idle_s"`
	// Steal is the seconds the hypervisor ran something else while one of
	// this machine's virtual CPUs wanted to run.
	Steal float64 `json:"steal_s"`
	// CPUs is the number of CPUs /proc/stat lists.
	CPUs int `json:"cpus"`
	// Self is the seconds this process ran, user and system, all threads.
	Self float64 `json:"self_s"`
}

// Total is all the machine's time accounted: busy, idle and steal.
func (t CPUTimes) Total() float64 { return t.Busy + t.Idle + t.Steal }

// Sub is the time between two readings; CPUs is the later reading's.
func (t CPUTimes) Sub(earlier CPUTimes) CPUTimes {
	return CPUTimes{Busy: t.Busy - earlier.Busy, Idle: t.Idle - earlier.Idle, Steal: t.Steal - earlier.Steal,
		CPUs: t.CPUs, Self: t.Self - earlier.Self}
}

// userHZ is the unit of /proc/stat's times: USER_HZ, 100 on every Linux
// architecture's ABI.
const userHZ = 100

// ReadCPUTimes reads /proc/stat and this process's resource usage.
func ReadCPUTimes() (CPUTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPUTimes{}, fmt.Errorf("read CPU times: %w", err)
	}
	t, err := ParseProcStat(b)
	if err != nil {
		return CPUTimes{}, err
	}
	t.Self, err = SelfCPUSeconds()
	return t, err
}

// SelfCPUSeconds is this process's CPU time so far, user and system, all
// threads.
func SelfCPUSeconds() (float64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("read own CPU time: %w", err)
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime), nil
}

// ParseProcStat reads the aggregate "cpu" line of /proc/stat (user nice
// system idle iowait irq softirq steal …, in USER_HZ ticks) and counts the
// per-CPU lines. Self is left 0.
func ParseProcStat(b []byte) (CPUTimes, error) {
	var t CPUTimes
	found := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			if _, err := strconv.Atoi(f[0][3:]); err == nil {
				t.CPUs++
			}
			continue
		}
		if found {
			return CPUTimes{}, fmt.Errorf("parse /proc/stat: two aggregate cpu lines")
		}
		found = true
		if len(f) < 8 { // user … softirq at least (kernels before 2.6.11 had no steal)
			return CPUTimes{}, fmt.Errorf("parse /proc/stat: cpu line has %d fields, want at least 7 times", len(f)-1)
		}
		var v [8]float64
		for i := 1; i < len(f) && i <= 8; i++ {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return CPUTimes{}, fmt.Errorf("parse /proc/stat: cpu field %d: %w", i, err)
			}
			v[i-1] = float64(n) / userHZ
		}
		// user, nice, system, idle, iowait, irq, softirq, steal
		t.Busy = v[0] + v[1] + v[2] + v[5] + v[6]
		t.Idle = v[3] + v[4]
		t.Steal = v[7]
	}
	if !found {
		return CPUTimes{}, fmt.Errorf("parse /proc/stat: no aggregate cpu line")
	}
	if t.CPUs == 0 {
		return CPUTimes{}, fmt.Errorf("parse /proc/stat: no per-CPU lines")
	}
	return t, nil
}
