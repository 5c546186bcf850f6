package telemetry

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"

	"github.com/klauspost/cpuid/v2"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/mem"
)

// HostInfo describes the machine quantscope runs on: the part of the host
// fingerprint that does not change while a process runs, plus a memory
// snapshot.
type HostInfo struct {
	Hostname string     `json:"hostname,omitempty"`
	OS       string     `json:"os"`               // GOOS, e.g. "linux"
	Arch     string     `json:"arch"`             // GOARCH, e.g. "amd64"
	Kernel   string     `json:"kernel,omitempty"` // kernel release, e.g. "6.8.0-49-generic"
	CPU      CPUInfo    `json:"cpu"`
	Memory   MemoryInfo `json:"memory"`
	// Warnings lists what could not be read, and why. A reader never fails as
	// a whole: a missing figure is zero and explained here.
	Warnings []string `json:"warnings,omitempty"`
}

// CPUInfo describes the processor and what it means for quantized inference.
type CPUInfo struct {
	Model         string `json:"model"`
	Vendor        string `json:"vendor,omitempty"`
	PhysicalCores int    `json:"physical_cores"` // 0 when unknown
	LogicalCores  int    `json:"logical_cores"`  // hardware threads on the host
	UsableCores   int    `json:"usable_cores"`   // CPUs this process may run on (affinity)
	// Features lists the instruction-set features that decide quantized
	// speed on this architecture, in a fixed order, present or not.
	Features []ISAFeature `json:"features"`
	INT8     QuantVerdict `json:"int8"`
	FP16     QuantVerdict `json:"fp16"`
}

// ISAFeature is one instruction-set feature and whether the CPU has it.
//
// Names on x86-64: AVX2, AVX-512F, AVX512-VNNI, AVX-VNNI, AMX-TILE, AMX-INT8,
// AMX-BF16, F16C, FMA. On arm64: dotprod (asimddp), i8mm, fp16 (asimdhp).
type ISAFeature struct {
	Name    string `json:"name"`
	Present bool   `json:"present"`
}

// QuantVerdict says what the CPU's features mean for one precision on ONNX
// Runtime's CPU execution provider.
type QuantVerdict struct {
	// Kernels names the fastest kernel family available, e.g. "AMX",
	// "AVX512-VNNI", "AVX2", "i8mm", "F16C".
	Kernels string `json:"kernels"`
	// Fast is true when the precision has dedicated hardware support.
	Fast bool `json:"fast"`
	// Summary is the one-line verdict, e.g. "INT8: AVX2 only — expect modest
	// INT8 gains".
	Summary string `json:"summary"`
}

// MemoryInfo is a snapshot of the host's memory.
type MemoryInfo struct {
	TotalBytes     uint64 `json:"total_bytes"`
	AvailableBytes uint64 `json:"available_bytes"`
	// LimitBytes is this process's cgroup memory limit when it is lower than
	// TotalBytes (a container or systemd slice); 0 when there is none.
	LimitBytes uint64 `json:"limit_bytes,omitempty"`
}

// Feature names, as reported in ISAFeature.Name.
const (
	featAVX2       = "AVX2"
	featAVX512F    = "AVX-512F"
	featAVX512VNNI = "AVX512-VNNI"
	featAVXVNNI    = "AVX-VNNI"
	featAMXTile    = "AMX-TILE"
	featAMXInt8    = "AMX-INT8"
	featAMXBF16    = "AMX-BF16"
	featF16C       = "F16C"
	featFMA        = "FMA"
	featDotProd    = "dotprod"
	featI8MM       = "i8mm"
	featFP16       = "fp16"
)

// hostSource is where ReadHostInfo gets its facts; tests substitute it.
type hostSource struct {
	fsys     fs.FS // the root file system, for /proc and /sys
	goos     string
	goarch   string
	usable   int
	hostname func() (string, error)
	cpuModel string
	vendor   string
	has      func(cpuid.FeatureID) bool
	counts   func(logical bool) (int, error)
	memory   func() (*mem.VirtualMemoryStat, error)
}

// ReadHostInfo reads the CPU model, core counts, quantization-relevant ISA
// features (through cpuid), memory (through gopsutil) and the kernel release.
// It does not fail: whatever cannot be read is left zero and noted in
// Warnings.
func ReadHostInfo() HostInfo {
	c := cpuid.CPU
	return readHostInfo(hostSource{
		fsys:     os.DirFS("/"),
		goos:     runtime.GOOS,
		goarch:   runtime.GOARCH,
		usable:   runtime.NumCPU(),
		hostname: os.Hostname,
		cpuModel: c.BrandName,
		vendor:   c.VendorString,
		has:      func(id cpuid.FeatureID) bool { return c.Supports(id) },
		counts:   cpu.Counts,
		memory:   mem.VirtualMemory,
	})
}

func readHostInfo(src hostSource) HostInfo {
	h := HostInfo{OS: src.goos, Arch: src.goarch}
	warn := func(format string, args ...any) {
		h.Warnings = append(h.Warnings, fmt.Sprintf(format, args...))
	}

	if name, err := src.hostname(); err == nil {
		h.Hostname = name
	} else {
		warn("hostname: %v", err)
	}
	if b, err := fs.ReadFile(src.fsys, "proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}

	h.CPU.Model = strings.TrimSpace(src.cpuModel)
	if h.CPU.Model == "" {
		h.CPU.Model = cpuModelFromProc(src.fsys)
	}
	if h.CPU.Model == "" {
		h.CPU.Model = "unknown CPU"
	}
	h.CPU.Vendor = src.vendor
	if n, err := src.counts(false); err == nil {
		h.CPU.PhysicalCores = n
	} else {
		warn("physical cores: %v", err)
	}
	if n, err := src.counts(true); err == nil {
		h.CPU.LogicalCores = n
	} else {
		warn("logical cores: %v", err)
	}
	h.CPU.UsableCores = src.usable
	if h.CPU.LogicalCores == 0 {
		h.CPU.LogicalCores = src.usable
	}
	h.CPU.Features = isaFeatures(src.goarch, src.has)
	h.CPU.INT8, h.CPU.FP16 = AssessQuant(src.goarch, h.CPU.Features)

	if vm, err := src.memory(); err == nil && vm != nil {
		h.Memory.TotalBytes = vm.Total
		h.Memory.AvailableBytes = vm.Available
	} else {
		warn("memory: %v", err)
	}
	if limit := cgroupMemoryLimit(src.fsys); limit > 0 && (h.Memory.TotalBytes == 0 || limit < h.Memory.TotalBytes) {
		h.Memory.LimitBytes = limit
	}
	return h
}

// isaFeatures lists the quantization-relevant features of arch, in display
// order, asking has for each.
func isaFeatures(arch string, has func(cpuid.FeatureID) bool) []ISAFeature {
	type spec struct {
		name string
		ids  []cpuid.FeatureID
	}
	var specs []spec
	switch arch {
	case "amd64", "386":
		specs = []spec{
			{featAVX2, []cpuid.FeatureID{cpuid.AVX2}},
			{featAVX512F, []cpuid.FeatureID{cpuid.AVX512F}},
			{featAVX512VNNI, []cpuid.FeatureID{cpuid.AVX512VNNI}},
			{featAVXVNNI, []cpuid.FeatureID{cpuid.AVXVNNI}},
			{featAMXTile, []cpuid.FeatureID{cpuid.AMXTILE}},
			{featAMXInt8, []cpuid.FeatureID{cpuid.AMXINT8}},
			{featAMXBF16, []cpuid.FeatureID{cpuid.AMXBF16}},
			{featF16C, []cpuid.FeatureID{cpuid.F16C}},
			{featFMA, []cpuid.FeatureID{cpuid.FMA3}},
		}
	case "arm64":
		specs = []spec{
			{featDotProd, []cpuid.FeatureID{cpuid.ASIMDDP}},
			{featI8MM, []cpuid.FeatureID{cpuid.I8MM}},
			{featFP16, []cpuid.FeatureID{cpuid.ASIMDHP}},
		}
	}
	out := make([]ISAFeature, 0, len(specs))
	for _, s := range specs {
		present := has != nil
		for _, id := range s.ids {
			present = present && has(id)
		}
		out = append(out, ISAFeature{Name: s.name, Present: present})
	}
	return out
}

// AssessQuant turns the ISA features of an architecture (GOARCH) into one
// verdict for INT8 and one for FP16 inference on ONNX Runtime's CPU execution
// provider. It is pure, so a recorded host fingerprint can be re-assessed.
func AssessQuant(arch string, features []ISAFeature) (i8, f16 QuantVerdict) {
	has := func(name string) bool {
		for _, f := range features {
			if f.Name == name {
				return f.Present
			}
		}
		return false
	}
	switch arch {
	case "amd64", "386":
		switch {
		case has(featAMXTile) && has(featAMXInt8):
			i8 = QuantVerdict{"AMX", true, "INT8: AMX tile kernels (fastest)"}
		case has(featAVX512VNNI):
			i8 = QuantVerdict{"AVX512-VNNI", true, "INT8: AVX-512 VNNI kernels (fast)"}
		case has(featAVXVNNI):
			i8 = QuantVerdict{"AVX-VNNI", true, "INT8: AVX-VNNI kernels (fast)"}
		case has(featAVX512F):
			i8 = QuantVerdict{"AVX-512", false, "INT8: AVX-512 without VNNI — expect moderate INT8 gains"}
		case has(featAVX2):
			i8 = QuantVerdict{"AVX2", false, "INT8: AVX2 only — expect modest INT8 gains"}
		default:
			i8 = QuantVerdict{"SSE", false, "INT8: no AVX2 — INT8 may be slower than FP32"}
		}
		if has(featF16C) {
			f16 = QuantVerdict{"F16C", false, "FP16: F16C converts only — smaller files, no CPU speedup"}
		} else {
			f16 = QuantVerdict{"none", false, "FP16: no F16C — FP16 runs slower than FP32 on this CPU"}
		}
	case "arm64":
		switch {
		case has(featI8MM):
			i8 = QuantVerdict{"i8mm", true, "INT8: i8mm matrix kernels (fastest)"}
		case has(featDotProd):
			i8 = QuantVerdict{"dotprod", true, "INT8: dot-product kernels (fast)"}
		default:
			i8 = QuantVerdict{"NEON", false, "INT8: NEON only — expect modest INT8 gains"}
		}
		if has(featFP16) {
			f16 = QuantVerdict{"fp16", true, "FP16: native half-precision arithmetic (fast)"}
		} else {
			f16 = QuantVerdict{"none", false, "FP16: converted to FP32 — smaller files, no CPU speedup"}
		}
	default:
		i8 = QuantVerdict{"unknown", false, "INT8: no known INT8 acceleration on " + arch}
		f16 = QuantVerdict{"unknown", false, "FP16: no known FP16 acceleration on " + arch}
	}
	return i8, f16
}

// AssessISA re-assesses a recorded host from the names of its present ISA
// features (study.Host.ISA, as isaFeatures names them): the architecture
// is the one those names belong to. ok is false when no name is known (an
// empty list, or a feature set from another build), so an unknown CPU is
// never judged slow.
func AssessISA(present []string) (i8, f16 QuantVerdict, ok bool) {
	for _, arch := range []string{"amd64", "arm64"} {
		feats := isaFeatures(arch, nil)
		known := false
		for i := range feats {
			for _, p := range present {
				if p == feats[i].Name {
					feats[i].Present, known = true, true
				}
			}
		}
		if known {
			i8, f16 = AssessQuant(arch, feats)
			return i8, f16, true
		}
	}
	return QuantVerdict{}, QuantVerdict{}, false
}

// cpuModelFromProc reads the first "model name" (x86) or "Hardware"/"CPU
// part" free-text line of /proc/cpuinfo; "" when there is none.
func cpuModelFromProc(fsys fs.FS) string {
	b, err := fs.ReadFile(fsys, "proc/cpuinfo")
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "model name", "Hardware", "Model":
			if v := strings.TrimSpace(val); v != "" {
				return v
			}
		}
	}
	return ""
}

// cgroupMemoryLimit returns the memory limit of this process's cgroup (v2
// memory.max, or v1 memory.limit_in_bytes), or 0 when there is none or it
// cannot be read.
func cgroupMemoryLimit(fsys fs.FS) uint64 {
	b, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if err != nil {
		return 0
	}
	var files []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		rel := strings.TrimPrefix(path.Clean("/"+parts[2]), "/")
		switch {
		case parts[0] == "0" && parts[1] == "":
			files = append(files,
				path.Join("sys/fs/cgroup", rel, "memory.max"),
				"sys/fs/cgroup/memory.max")
		case hasController(parts[1], "memory"):
			files = append(files,
				path.Join("sys/fs/cgroup/memory", rel, "memory.limit_in_bytes"),
				"sys/fs/cgroup/memory/memory.limit_in_bytes")
		}
	}
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			continue
		}
		// cgroup v1 reports "no limit" as a huge page-aligned number.
		if n >= 1<<62 {
			return 0
		}
		return n
	}
	return 0
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
