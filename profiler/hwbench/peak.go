package hwbench

import (
	"fmt"
	"regexp"
	"strings"
)

// CPUSpec is what the CPU peak formula needs to know about a processor.
type CPUSpec struct {
	Arch   string // GOARCH, e.g. "amd64"
	Vendor string // cpuid vendor string: "GenuineIntel", "AuthenticAMD"
	Brand  string // e.g. "Intel(R) Xeon(R) Platinum 8480+"
	Family int    // cpuid family (AMD: 0x17 Zen 1/2, 0x19 Zen 3/4, 0x1A Zen 5)
	Model  int    // cpuid model
	// Features are the present ISA features, named as package telemetry
	// names them ("AVX2", "FMA", "AVX-512F", "AVX512-VNNI", "AVX-VNNI",
	// "AMX-TILE", "AMX-INT8").
	Features []string
}

func (s CPUSpec) has(name string) bool {
	for _, f := range s.Features {
		if f == name {
			return true
		}
	}
	return false
}

// CoreRate is what one core can do per cycle, by the instruction set and the
// width of its vector units.
type CoreRate struct {
	// FP32 is FP32 FLOP per cycle through the widest FMA units: lanes × 2
	// (multiply and add) × FMA units.
	FP32 float64 `json:"fp32_per_cycle"`
	// INT8 is 8-bit integer operations (multiply and add counted apart) per
	// cycle through the best integer dot-product path ONNX Runtime's MLAS
	// uses on this ISA.
	INT8 float64 `json:"int8_per_cycle"`
	// FP32ISA and INT8ISA name the paths, e.g. "AVX-512, 2 FMA units"
	// and "AVX512-VNNI".
	FP32ISA string `json:"fp32_isa"`
	INT8ISA string `json:"int8_isa"`
}

// Per-core rates, with their sources.
//
//   - FMA lanes: 8 FP32 lanes per 256-bit FMA, 16 per 512-bit; an FMA is two
//     FLOP. Intel Xeon Scalable parts from Ice Lake on, and Skylake/Cascade
//     Lake Gold 6xxx/Platinum (and Gold 5122/5222), have two 512-bit FMA units
//     (Intel ARK, "# of AVX-512 FMA Units"); Bronze, Silver and other Gold 5xxx
//     of those two generations have one, as do client cores with AVX-512.
//     TOP500's Rpeak for Frontera (Xeon Platinum 8280, 2.7 GHz: 38,745.9
//     TFlop/s over 448,448 cores = 86.4 GFlop/s FP64 per core = 2.7 × 32)
//     is this arithmetic at FP64.
//   - AMD: Zen 1 has two 128-bit FMA pipes; Zen 2 and 3 two 256-bit; Zen 4
//     runs AVX-512 on its 256-bit pipes (two passes per instruction); Zen 5
//     desktop and server parts have full 512-bit pipes, mobile Zen 5 ("Ryzen
//     AI") keeps 256-bit ones (AMD's Zen 4 and Zen 5 architecture disclosures).
//   - INT8: VPDPBUSD (VNNI) does 4 multiply-adds per 32-bit lane, four times
//     an FMA's work on the same units: Intel states 256 INT8 operations per
//     cycle per core for AVX-512 VNNI against 64 FP32 FLOP for AVX-512
//     (Intel AMX product brief). Without VNNI the same dot product takes
//     three instructions (VPMADDUBSW, VPMADDWD, VPADDD): 4/3 of the FP32 rate
//     — VNNI's advertised 3× gain. AMX tile multiplies do 2048 INT8
//     operations (1024 BF16 FLOP) per cycle per core (same brief); MLAS
//     runs its u8s8 GEMM on AMX where the kernel lets it.
func CPURate(s CPUSpec) (CoreRate, error) {
	if s.Arch != "amd64" && s.Arch != "386" {
		return CoreRate{}, fmt.Errorf("no peak table for %s CPUs (only x86-64)", s.Arch)
	}
	var r CoreRate
	amd := strings.Contains(s.Vendor, "AMD")
	switch {
	case s.has("AVX-512F"):
		units, width := 2.0, 16.0
		switch {
		case amd && s.Family < 0x1A:
			// Zen 4: 512-bit instructions on two 256-bit pipes.
			width, r.FP32ISA = 8, "AVX-512 on 256-bit pipes (Zen 4), 2 FMA"
		case amd && zen5Mobile.MatchString(s.Brand):
			width, r.FP32ISA = 8, "AVX-512 on 256-bit pipes (mobile Zen 5), 2 FMA"
		case amd:
			r.FP32ISA = "AVX-512, 2 FMA units (Zen 5)"
		case oneFMAUnit(s.Brand):
			units, r.FP32ISA = 1, "AVX-512, 1 FMA unit"
		default:
			r.FP32ISA = "AVX-512, 2 FMA units"
		}
		r.FP32 = units * width * 2
	case s.has("AVX2") && s.has("FMA"):
		units, width := 2.0, 8.0
		r.FP32ISA = "AVX2, 2 FMA units"
		if amd && s.Family == 0x17 && s.Model < 0x30 {
			width, r.FP32ISA = 4, "AVX2 on 128-bit pipes (Zen 1), 2 FMA"
		}
		r.FP32 = units * width * 2
	case s.has("AVX2"):
		r.FP32, r.FP32ISA = 16, "AVX2 without FMA (separate multiply and add)"
	default:
		r.FP32, r.FP32ISA = 8, "SSE (4 lanes, multiply and add)"
	}
	switch {
	case s.has("AMX-TILE") && s.has("AMX-INT8"):
		r.INT8, r.INT8ISA = 2048, "AMX-INT8"
	case s.has("AVX512-VNNI"):
		r.INT8, r.INT8ISA = 4*r.FP32, "AVX512-VNNI"
	case s.has("AVX-VNNI"):
		r.INT8, r.INT8ISA = 4*min(r.FP32, 32), "AVX-VNNI"
	case s.has("AVX-512F"):
		r.INT8, r.INT8ISA = r.FP32*4/3, "AVX-512 (no VNNI)"
	case s.has("AVX2"):
		r.INT8, r.INT8ISA = r.FP32*4/3, "AVX2 (no VNNI)"
	default:
		r.INT8, r.INT8ISA = r.FP32*4/3, "SSE"
	}
	return r, nil
}

// zen5Mobile matches the brand strings of mobile Zen 5 parts, whose vector
// pipes are 256 bits wide.
var zen5Mobile = regexp.MustCompile(`Ryzen AI|Ryzen Z2`)

// oneFMAUnit reports whether an Intel part with AVX-512 has one FMA unit:
// Skylake-SP and Cascade Lake Bronze, Silver and Gold 5xxx (but 5122 and
// 5222), and client cores (Core, not Core-X).
func oneFMAUnit(brand string) bool {
	if m := xeonGen12.FindStringSubmatch(brand); m != nil {
		switch m[1] {
		case "Bronze", "Silver":
			return true
		case "Gold":
			return strings.HasPrefix(m[2], "5") && m[2] != "5122" && m[2] != "5222"
		}
		return false
	}
	return strings.Contains(brand, "Core(TM)") && !coreX.MatchString(brand)
}

var (
	// xeonGen12 is a first- or second-generation Xeon Scalable part: 1xx or
	// 2xx in the model number's second digit.
	xeonGen12 = regexp.MustCompile(`Xeon\(R\) (Bronze|Silver|Gold|Platinum) (\d[12]\d\d)`)
	// coreX is a high-end desktop Core with two FMA units.
	coreX = regexp.MustCompile(`Core\(TM\) i[79]-\d{4,5}X`)
)

// CPUPeak is a theoretical peak: cores × GHz × per-cycle rate, in
// GFLOP/s (GOPS for INT8).
func CPUPeak(cores int, ghz, perCycle float64) float64 {
	return float64(cores) * ghz * perCycle
}

// GPUArch is one NVIDIA architecture's dense throughput per SM per clock,
// in FLOP (operations for INT8), multiply and add counted apart.
type GPUArch struct {
	Compute string  // compute capability, "9.0"
	Name    string  // "Hopper"
	FP32    float64 // CUDA cores × 2
	TF32    float64 // tensor cores, dense (0: none)
	FP16    float64 // tensor cores, dense, FP32 accumulate on datacenter parts
	INT8    float64 // tensor cores, dense (0: none)
	// CoresPerSM is FP32 CUDA cores per SM, to count SMs from NVML's core
	// count.
	CoresPerSM int
}

// gpuArchs are the per-SM rates. Sources: NVIDIA's architecture whitepapers
// (Volta: 8 tensor cores × 64 FMA = 1024 FP16 FLOP/clk/SM; Turing: 1024 FP16,
// 2048 INT8; Ampere GA100: 4 tensor cores × 256 FMA = 2048 FP16, TF32 half
// that, INT8 twice; GA10x/Ada: 1024 FP16, 512 TF32, 2048 INT8, 128 FP32 cores;
// Hopper: twice GA100 per SM — 4096 FP16, 2048 TF32, 8192 INT8). Each row
// reproduces the datasheet peaks of its parts with the datasheet clocks (see
// gpuParts and the tests).
var gpuArchs = []GPUArch{
	{Compute: "7.0", Name: "Volta", FP32: 128, TF32: 0, FP16: 1024, INT8: 0, CoresPerSM: 64},
	{Compute: "7.5", Name: "Turing", FP32: 128, TF32: 0, FP16: 1024, INT8: 2048, CoresPerSM: 64},
	{Compute: "8.0", Name: "Ampere (GA100)", FP32: 128, TF32: 1024, FP16: 2048, INT8: 4096, CoresPerSM: 64},
	{Compute: "8.6", Name: "Ampere (GA10x)", FP32: 256, TF32: 512, FP16: 1024, INT8: 2048, CoresPerSM: 128},
	{Compute: "8.9", Name: "Ada Lovelace", FP32: 256, TF32: 512, FP16: 1024, INT8: 2048, CoresPerSM: 128},
	{Compute: "9.0", Name: "Hopper", FP32: 256, TF32: 2048, FP16: 4096, INT8: 8192, CoresPerSM: 128},
}

// LookupGPUArch returns the architecture of a compute capability.
func LookupGPUArch(compute string) (GPUArch, bool) {
	for _, a := range gpuArchs {
		if a.Compute == compute {
			return a, true
		}
	}
	return GPUArch{}, false
}

// Rate returns the per-SM per-clock rate for a GEMM precision (0: the
// architecture has no such path).
func (a GPUArch) Rate(p Precision) float64 {
	switch p {
	case FP32:
		return a.FP32
	case TF32:
		return a.TF32
	case FP16:
		return a.FP16
	case INT8:
		return a.INT8
	}
	return 0
}

// GPUPart is a known board: its SM count, the clocks its datasheet peaks
// are computed at, and its memory bandwidth.
type GPUPart struct {
	Name    string         // display name
	match   *regexp.Regexp // against NVML's device name
	Compute string
	SMs     int
	// VectorMHz is the boost clock of the FP32 (CUDA core) figure;
	// TensorMHz that of the tensor-core figures (lower on Hopper: H100
	// whitepaper table 3).
	VectorMHz, TensorMHz float64
	MemoryGBs            float64 // datasheet memory bandwidth, GB/s
}

// gpuParts are the boards whose datasheet figures the tests reproduce.
// Sources: NVIDIA datasheets (H100/H200 SXM: FP32 66.9, TF32 494.7, FP16
// 989.4, INT8 1978.9 dense; H100 PCIe: FP32 51.2, FP16 756.5 dense; A100 SXM:
// FP32 19.5, TF32 156, FP16 312, INT8 624; A10: 31.2/62.5/125/250; L4: 30.3,
// TF32 60, FP16 121, INT8 242.5 dense; T4: 8.1, FP16 65, INT8 130; V100
// SXM2: 15.7, FP16 125) and the H100 whitepaper (132 SMs at 1830 MHz for
// tensor and 1980 MHz for vector figures on SXM5; 114 SMs at 1620/1755 MHz on
// PCIe). Memory: H200 4.8 TB/s, H100 SXM 3.35, H100 PCIe 2.0, A100 80GB
// 2.039, A100 40GB 1.555, A10 600 GB/s, L4 300, T4 320, V100 900.
var gpuParts = []GPUPart{
	{Name: "H200 NVL", match: regexp.MustCompile(`H200.*NVL`), Compute: "9.0", SMs: 132, VectorMHz: 1785, TensorMHz: 1545, MemoryGBs: 4800},
	{Name: "H200 SXM", match: regexp.MustCompile(`H200`), Compute: "9.0", SMs: 132, VectorMHz: 1980, TensorMHz: 1830, MemoryGBs: 4800},
	{Name: "H100 PCIe", match: regexp.MustCompile(`H100.*PCIe`), Compute: "9.0", SMs: 114, VectorMHz: 1755, TensorMHz: 1620, MemoryGBs: 2000},
	{Name: "H100 SXM", match: regexp.MustCompile(`H100 (80GB HBM3|SXM)`), Compute: "9.0", SMs: 132, VectorMHz: 1980, TensorMHz: 1830, MemoryGBs: 3350},
	{Name: "A100 SXM4 80GB", match: regexp.MustCompile(`A100-SXM4-80GB`), Compute: "8.0", SMs: 108, VectorMHz: 1410, TensorMHz: 1410, MemoryGBs: 2039},
	{Name: "A100 80GB PCIe", match: regexp.MustCompile(`A100.*80GB.*PCI|A100-PCIE-80GB`), Compute: "8.0", SMs: 108, VectorMHz: 1410, TensorMHz: 1410, MemoryGBs: 1935},
	{Name: "A100 40GB", match: regexp.MustCompile(`A100`), Compute: "8.0", SMs: 108, VectorMHz: 1410, TensorMHz: 1410, MemoryGBs: 1555},
	{Name: "A10", match: regexp.MustCompile(`NVIDIA A10$`), Compute: "8.6", SMs: 72, VectorMHz: 1695, TensorMHz: 1695, MemoryGBs: 600},
	{Name: "L4", match: regexp.MustCompile(`NVIDIA L4$`), Compute: "8.9", SMs: 58, VectorMHz: 2040, TensorMHz: 2040, MemoryGBs: 300},
	{Name: "T4", match: regexp.MustCompile(`T4$`), Compute: "7.5", SMs: 40, VectorMHz: 1590, TensorMHz: 1590, MemoryGBs: 320},
	{Name: "V100 SXM2", match: regexp.MustCompile(`V100-SXM2`), Compute: "7.0", SMs: 80, VectorMHz: 1530, TensorMHz: 1530, MemoryGBs: 900},
}

// LookupGPUPart finds a known board by NVML's device name.
func LookupGPUPart(name string) (GPUPart, bool) {
	for _, p := range gpuParts {
		if p.match.MatchString(name) {
			return p, true
		}
	}
	return GPUPart{}, false
}

// GPUPeakTFLOPS is SMs × clock × per-SM rate, in TFLOP/s (TOPS for INT8).
func GPUPeakTFLOPS(sms int, mhz, perSMPerClock float64) float64 {
	return float64(sms) * mhz * 1e6 * perSMPerClock / 1e12
}

// PCIeLaneGBs is one lane's raw data rate in GB/s after line encoding:
// gens 1–2 use 8b/10b at 2.5 and 5 GT/s; gens 3–5 128b/130b at 8, 16 and
// 32 GT/s; gen 6 runs 64 GT/s PAM4 in 256-byte FLITs of which 236 bytes
// carry data (PCI-SIG base specifications).
func PCIeLaneGBs(gen int) float64 {
	switch gen {
	case 1:
		return 0.25
	case 2:
		return 0.5
	case 3:
		return 8 * 128.0 / 130 / 8
	case 4:
		return 16 * 128.0 / 130 / 8
	case 5:
		return 32 * 128.0 / 130 / 8
	case 6:
		return 64 * 236.0 / 256 / 8
	}
	return 0
}

// PCIeGBs is a link's raw rate in one direction, GB/s.
func PCIeGBs(gen, width int) float64 { return PCIeLaneGBs(gen) * float64(width) }
