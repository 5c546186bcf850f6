package telemetry

import (
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/klauspost/cpuid/v2"
	"github.com/shirou/gopsutil/v4/mem"
)

// hasOnly returns a feature test that answers true for ids only.
func hasOnly(ids ...cpuid.FeatureID) func(cpuid.FeatureID) bool {
	return func(id cpuid.FeatureID) bool {
		for _, x := range ids {
			if x == id {
				return true
			}
		}
		return false
	}
}

func TestAssessQuant(t *testing.T) {
	tests := []struct {
		name      string
		arch      string
		has       []cpuid.FeatureID
		int8      string
		int8Fast  bool
		fp16      string
		wantInSum string
	}{
		{"sapphire rapids", "amd64", []cpuid.FeatureID{cpuid.AVX2, cpuid.AVX512F, cpuid.AVX512VNNI, cpuid.AMXTILE, cpuid.AMXINT8, cpuid.AMXBF16, cpuid.F16C, cpuid.FMA3}, "AMX", true, "F16C", "AMX tile kernels (fastest)"},
		{"amx tile without int8 falls back to vnni", "amd64", []cpuid.FeatureID{cpuid.AVX2, cpuid.AVX512F, cpuid.AVX512VNNI, cpuid.AMXTILE}, "AVX512-VNNI", true, "none", "VNNI kernels (fast)"},
		{"ice lake", "amd64", []cpuid.FeatureID{cpuid.AVX2, cpuid.AVX512F, cpuid.AVX512VNNI, cpuid.F16C}, "AVX512-VNNI", true, "F16C", "AVX-512 VNNI kernels (fast)"},
		{"alder lake", "amd64", []cpuid.FeatureID{cpuid.AVX2, cpuid.AVXVNNI, cpuid.F16C}, "AVX-VNNI", true, "F16C", "AVX-VNNI kernels (fast)"},
		{"skylake-sp", "amd64", []cpuid.FeatureID{cpuid.AVX2, cpuid.AVX512F, cpuid.F16C}, "AVX-512", false, "F16C", "without VNNI"},
		{"zen 2", "amd64", []cpuid.FeatureID{cpuid.AVX2, cpuid.F16C, cpuid.FMA3}, "AVX2", false, "F16C", "INT8: AVX2 only — expect modest INT8 gains"},
		{"old x86", "amd64", nil, "SSE", false, "none", "no AVX2"},
		{"graviton 3", "arm64", []cpuid.FeatureID{cpuid.ASIMDDP, cpuid.I8MM, cpuid.ASIMDHP}, "i8mm", true, "fp16", "i8mm matrix kernels"},
		{"graviton 2", "arm64", []cpuid.FeatureID{cpuid.ASIMDDP, cpuid.ASIMDHP}, "dotprod", true, "fp16", "dot-product kernels (fast)"},
		{"cortex-a72", "arm64", nil, "NEON", false, "none", "NEON only"},
		{"riscv", "riscv64", nil, "unknown", false, "unknown", "riscv64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			feats := isaFeatures(tt.arch, hasOnly(tt.has...))
			i8, f16 := AssessQuant(tt.arch, feats)
			// A record keeps the present features' names: re-assessed,
			// they give the same verdicts (none known: no verdict).
			var names []string
			for _, f := range feats {
				if f.Present {
					names = append(names, f.Name)
				}
			}
			ri8, rf16, ok := AssessISA(names)
			if ok != (len(names) > 0) || ok && (ri8 != i8 || rf16 != f16) {
				t.Errorf("AssessISA(%q) = %+v, %+v, %v; want %+v, %+v", names, ri8, rf16, ok, i8, f16)
			}
			if i8.Kernels != tt.int8 || i8.Fast != tt.int8Fast {
				t.Errorf("INT8 = %+v, want kernels %q fast %v", i8, tt.int8, tt.int8Fast)
			}
			if !strings.Contains(i8.Summary, tt.wantInSum) {
				t.Errorf("INT8 summary %q does not contain %q", i8.Summary, tt.wantInSum)
			}
			if !strings.HasPrefix(i8.Summary, "INT8: ") || !strings.HasPrefix(f16.Summary, "FP16: ") {
				t.Errorf("summaries %q / %q lack their precision prefix", i8.Summary, f16.Summary)
			}
			if f16.Kernels != tt.fp16 {
				t.Errorf("FP16 kernels = %q, want %q", f16.Kernels, tt.fp16)
			}
		})
	}
}

func TestISAFeatures(t *testing.T) {
	tests := []struct {
		arch string
		has  func(cpuid.FeatureID) bool
		want []ISAFeature
	}{
		{"amd64", hasOnly(cpuid.AVX2, cpuid.FMA3), []ISAFeature{
			{"AVX2", true}, {"AVX-512F", false}, {"AVX512-VNNI", false}, {"AVX-VNNI", false},
			{"AMX-TILE", false}, {"AMX-INT8", false}, {"AMX-BF16", false}, {"F16C", false}, {"FMA", true},
		}},
		{"arm64", hasOnly(cpuid.I8MM), []ISAFeature{{"dotprod", false}, {"i8mm", true}, {"fp16", false}}},
		{"arm64", nil, []ISAFeature{{"dotprod", false}, {"i8mm", false}, {"fp16", false}}},
		{"wasm", hasOnly(cpuid.AVX2), []ISAFeature{}},
	}
	for _, tt := range tests {
		if got := isaFeatures(tt.arch, tt.has); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("isaFeatures(%s) = %v, want %v", tt.arch, got, tt.want)
		}
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
		want uint64
	}{
		{"v2 limited", fstest.MapFS{
			"proc/self/cgroup":                        {Data: []byte("0::/user.slice/job\n")},
			"sys/fs/cgroup/user.slice/job/memory.max": {Data: []byte("4294967296\n")},
		}, 4 << 30},
		{"v2 unlimited", fstest.MapFS{
			"proc/self/cgroup":                        {Data: []byte("0::/user.slice/job\n")},
			"sys/fs/cgroup/user.slice/job/memory.max": {Data: []byte("max\n")},
		}, 0},
		{"v2 namespaced container reads the root file", fstest.MapFS{
			"proc/self/cgroup":         {Data: []byte("0::/\n")},
			"sys/fs/cgroup/memory.max": {Data: []byte("2147483648\n")},
		}, 2 << 30},
		{"v1 limited, nested path missing falls back to the hierarchy root", fstest.MapFS{
			"proc/self/cgroup":                           {Data: []byte("5:devices:/\n4:memory:/process_api/abc\n0::/\n")},
			"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("8589934592\n")},
		}, 8 << 30},
		{"v1 unlimited", fstest.MapFS{
			"proc/self/cgroup":                           {Data: []byte("4:cpu,memory:/\n")},
			"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")},
		}, 0},
		{"garbage", fstest.MapFS{
			"proc/self/cgroup":         {Data: []byte("nonsense\n0::/\n")},
			"sys/fs/cgroup/memory.max": {Data: []byte("lots\n")},
		}, 0},
		{"no proc", fstest.MapFS{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cgroupMemoryLimit(tt.fsys); got != tt.want {
				t.Errorf("cgroupMemoryLimit = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestReadHostInfoFromSource(t *testing.T) {
	base := func() hostSource {
		return hostSource{
			fsys: fstest.MapFS{
				"proc/sys/kernel/osrelease": {Data: []byte("6.8.0-49-generic\n")},
				"proc/cpuinfo":              {Data: []byte("processor\t: 0\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n")},
				"proc/self/cgroup":          {Data: []byte("0::/\n")},
				"sys/fs/cgroup/memory.max":  {Data: []byte("1073741824\n")},
			},
			goos: "linux", goarch: "amd64", usable: 4,
			hostname: func() (string, error) { return "box", nil },
			cpuModel: "  AMD EPYC 7B13  ",
			vendor:   "AuthenticAMD",
			has:      hasOnly(cpuid.AVX2, cpuid.F16C, cpuid.FMA3),
			counts: func(logical bool) (int, error) {
				if logical {
					return 8, nil
				}
				return 4, nil
			},
			memory: func() (*mem.VirtualMemoryStat, error) {
				return &mem.VirtualMemoryStat{Total: 16 << 30, Available: 12 << 30}, nil
			},
		}
	}

	t.Run("complete", func(t *testing.T) {
		h := readHostInfo(base())
		if h.Hostname != "box" || h.Kernel != "6.8.0-49-generic" || h.OS != "linux" || h.Arch != "amd64" {
			t.Errorf("identity = %q %q %q %q", h.Hostname, h.Kernel, h.OS, h.Arch)
		}
		if h.CPU.Model != "AMD EPYC 7B13" || h.CPU.PhysicalCores != 4 || h.CPU.LogicalCores != 8 || h.CPU.UsableCores != 4 {
			t.Errorf("cpu = %+v", h.CPU)
		}
		if h.CPU.INT8.Kernels != "AVX2" {
			t.Errorf("INT8 verdict = %+v", h.CPU.INT8)
		}
		want := MemoryInfo{TotalBytes: 16 << 30, AvailableBytes: 12 << 30, LimitBytes: 1 << 30}
		if h.Memory != want {
			t.Errorf("memory = %+v, want %+v", h.Memory, want)
		}
		if len(h.Warnings) != 0 {
			t.Errorf("warnings = %v", h.Warnings)
		}
	})

	t.Run("failures become warnings", func(t *testing.T) {
		src := base()
		src.cpuModel = ""
		src.hostname = func() (string, error) { return "", errors.New("uname failed") }
		src.counts = func(bool) (int, error) { return 0, errors.New("no topology") }
		src.memory = func() (*mem.VirtualMemoryStat, error) { return nil, errors.New("no /proc/meminfo") }
		h := readHostInfo(src)
		if h.CPU.Model != "AMD EPYC 7B13 64-Core Processor" {
			t.Errorf("model fallback from /proc/cpuinfo = %q", h.CPU.Model)
		}
		if h.CPU.LogicalCores != 4 {
			t.Errorf("logical cores fall back to usable CPUs: got %d", h.CPU.LogicalCores)
		}
		if h.Memory.LimitBytes != 1<<30 {
			t.Errorf("cgroup limit without a total = %d", h.Memory.LimitBytes)
		}
		joined := strings.Join(h.Warnings, "\n")
		for _, w := range []string{"hostname: uname failed", "physical cores: no topology", "memory: no /proc/meminfo"} {
			if !strings.Contains(joined, w) {
				t.Errorf("warnings %q lack %q", joined, w)
			}
		}
	})

	t.Run("unknown model", func(t *testing.T) {
		src := base()
		src.cpuModel = ""
		src.fsys = fstest.MapFS{}
		if got := readHostInfo(src).CPU.Model; got != "unknown CPU" {
			t.Errorf("model = %q", got)
		}
	})
}

func TestReadHostInfoOnThisMachine(t *testing.T) {
	h := ReadHostInfo()
	if h.CPU.Model == "" || h.CPU.LogicalCores < 1 || h.CPU.UsableCores < 1 {
		t.Errorf("cpu = %+v", h.CPU)
	}
	if h.OS != runtime.GOOS || h.Arch != runtime.GOARCH {
		t.Errorf("os/arch = %s/%s", h.OS, h.Arch)
	}
	if runtime.GOARCH == "amd64" && len(h.CPU.Features) != 9 {
		t.Errorf("amd64 features = %v", h.CPU.Features)
	}
	if h.CPU.INT8.Summary == "" || h.CPU.FP16.Summary == "" {
		t.Errorf("verdicts missing: %+v %+v", h.CPU.INT8, h.CPU.FP16)
	}
	if runtime.GOOS == "linux" && h.Memory.TotalBytes == 0 {
		t.Errorf("memory total is 0 on Linux; warnings: %v", h.Warnings)
	}
}
