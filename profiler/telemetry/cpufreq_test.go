package telemetry

import (
	"testing"
	"testing/fstest"
)

func TestReadCPUFreq(t *testing.T) {
	f := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s + "\n")} }
	fsys := fstest.MapFS{
		"proc/cpuinfo": f("processor\t: 0\ncpu MHz\t\t: 2000.000\nprocessor\t: 1\ncpu MHz\t\t: 3000.000"),
		"sys/devices/system/cpu/cpu0/cpufreq/scaling_driver":   f("acpi-cpufreq"),
		"sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": f("powersave"),
		"sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq": f("1200000"),
		"sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": f("3500000"),
		"sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq": f("3500000"),
		"sys/devices/system/cpu/cpu1/cpufreq/scaling_governor": f("performance"),
		"sys/devices/system/cpu/cpu1/cpufreq/scaling_cur_freq": f("3400000"),
		"sys/devices/system/cpu/cpu1/cpufreq/cpuinfo_max_freq": f("3500000"),
		"sys/devices/system/cpu/cpu1/cpufreq/scaling_max_freq": f("2000000"),
		"sys/devices/system/cpu/cpufreq/boost":                 f("0"),
		"sys/devices/system/cpu/cpu10/topology/core_id":        f("0"),
	}
	got := ReadCPUFreq(fsys)
	if !got.Available || got.Driver != "acpi-cpufreq" || len(got.Governors) != 2 || got.Governors[0] != "performance" || got.Governors[1] != "powersave" {
		t.Errorf("setup %+v", got)
	}
	if got.CurMHz != 2300 || got.MaxMHz != 3500 || got.ScalingMaxMHz != 2000 || got.NominalMHz != 2500 {
		t.Errorf("frequencies %+v", got)
	}
	if got.Boost == nil || *got.Boost {
		t.Errorf("boost %v, want off", got.Boost)
	}

	vm := ReadCPUFreq(fstest.MapFS{"proc/cpuinfo": f("cpu MHz\t: 2096.010")})
	if vm.Available || vm.NominalMHz != 2096.01 || vm.MaxMHz != 0 || vm.Boost != nil {
		t.Errorf("virtual machine %+v", vm)
	}
	pstate := ReadCPUFreq(fstest.MapFS{"sys/devices/system/cpu/intel_pstate/no_turbo": f("1")})
	if pstate.Boost == nil || *pstate.Boost {
		t.Errorf("intel_pstate no_turbo=1: boost %v", pstate.Boost)
	}
}
