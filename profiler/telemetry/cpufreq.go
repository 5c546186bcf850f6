package telemetry

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/shirou/gopsutil/v4/load"
)

// CPUFreq is the frequency-scaling setup of the host's CPUs, from
// /sys/devices/system/cpu. Available is false where the kernel exposes no
// cpufreq (most virtual machines); then only NominalMHz, from /proc/cpuinfo,
// is known.
type CPUFreq struct {
	Available bool   `json:"available"`
	Driver    string `json:"driver,omitempty"` // e.g. "intel_pstate", "amd-pstate-epp", "acpi-cpufreq"
	// Governors and EPP are the distinct scaling governors and energy-
	// performance preferences across CPUs, sorted.
	Governors []string `json:"governors,omitempty"`
	EPP       []string `json:"epp,omitempty"`
	// CurMHz is the mean current frequency; MaxMHz the hardware maximum
	// (cpuinfo_max_freq); ScalingMaxMHz the lowest software cap
	// (scaling_max_freq), below MaxMHz when someone capped it.
	CurMHz        float64 `json:"cur_mhz,omitempty"`
	MaxMHz        float64 `json:"max_mhz,omitempty"`
	ScalingMaxMHz float64 `json:"scaling_max_mhz,omitempty"`
	// Boost is whether turbo/boost is allowed (nil: the kernel does not say).
	Boost *bool `json:"boost,omitempty"`
	// NominalMHz is /proc/cpuinfo's "cpu MHz" (mean); in a virtual machine
	// usually the host's nominal clock, not what the core runs at.
	NominalMHz float64 `json:"nominal_mhz,omitempty"`
}

// ReadCPUFreq reads the cpufreq setup from fsys (the root file system:
// os.DirFS("/") for the real one). It never fails; what is missing stays
// zero.
func ReadCPUFreq(fsys fs.FS) CPUFreq {
	var f CPUFreq
	f.NominalMHz = nominalMHz(fsys)
	cpus, _ := fs.Glob(fsys, "sys/devices/system/cpu/cpu[0-9]*")
	var cur []float64
	govs, epps := map[string]bool{}, map[string]bool{}
	for _, c := range cpus {
		dir := path.Join(c, "cpufreq")
		if _, err := fs.Stat(fsys, dir); err != nil {
			continue
		}
		f.Available = true
		if f.Driver == "" {
			f.Driver = readTrim(fsys, path.Join(dir, "scaling_driver"))
		}
		if g := readTrim(fsys, path.Join(dir, "scaling_governor")); g != "" {
			govs[g] = true
		}
		if e := readTrim(fsys, path.Join(dir, "energy_performance_preference")); e != "" {
			epps[e] = true
		}
		if v, ok := readKHz(fsys, path.Join(dir, "scaling_cur_freq")); ok {
			cur = append(cur, v)
		}
		if v, ok := readKHz(fsys, path.Join(dir, "cpuinfo_max_freq")); ok {
			f.MaxMHz = max(f.MaxMHz, v)
		}
		if v, ok := readKHz(fsys, path.Join(dir, "scaling_max_freq")); ok && (f.ScalingMaxMHz == 0 || v < f.ScalingMaxMHz) {
			f.ScalingMaxMHz = v
		}
	}
	for _, v := range cur {
		f.CurMHz += v / float64(len(cur))
	}
	f.Governors = sortedKeys(govs)
	f.EPP = sortedKeys(epps)
	if v := readTrim(fsys, "sys/devices/system/cpu/intel_pstate/no_turbo"); v != "" {
		on := v == "0"
		f.Boost = &on
	} else if v := readTrim(fsys, "sys/devices/system/cpu/cpufreq/boost"); v != "" {
		on := v == "1"
		f.Boost = &on
	}
	return f
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func readTrim(fsys fs.FS, name string) string {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// readKHz reads a cpufreq file (kHz) as MHz.
func readKHz(fsys fs.FS, name string) (float64, bool) {
	v, err := strconv.ParseFloat(readTrim(fsys, name), 64)
	if err != nil || v <= 0 {
		return 0, false
	}
	return v / 1000, true
}

// nominalMHz is the mean "cpu MHz" of /proc/cpuinfo (0 when absent).
func nominalMHz(fsys fs.FS) float64 {
	b, err := fs.ReadFile(fsys, "proc/cpuinfo")
	if err != nil {
		return 0
	}
	var sum float64
	var n int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "cpu MHz" {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil && v > 0 {
			sum += v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// LoadAverage is the 1-minute load average (0 when unknown).
func LoadAverage() float64 {
	a, err := load.Avg()
	if err != nil {
		return 0
	}
	return a.Load1
}

// RootFS is the root file system, for ReadCPUFreq.
func RootFS() fs.FS { return os.DirFS("/") }
