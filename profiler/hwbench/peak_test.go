package hwbench

import (
	"math"
	"testing"
)

// near reports whether got is within tol (a fraction) of want.
func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol*want }

var (
	x86AVX2    = []string{"AVX2", "FMA", "F16C"}
	x86AVX512  = []string{"AVX2", "FMA", "F16C", "AVX-512F"}
	x86VNNI    = []string{"AVX2", "FMA", "F16C", "AVX-512F", "AVX512-VNNI"}
	x86AMX     = []string{"AVX2", "FMA", "F16C", "AVX-512F", "AVX512-VNNI", "AVX-VNNI", "AMX-TILE", "AMX-INT8", "AMX-BF16"}
	x86Alder   = []string{"AVX2", "FMA", "F16C", "AVX-VNNI"}
	intel, amd = "GenuineIntel", "AuthenticAMD"
)

// TestCPUPeaksAgainstPublishedFigures checks the per-core rates and the
// peak formula with figures vendors and TOP500 publish.
func TestCPUPeaksAgainstPublishedFigures(t *testing.T) {
	tests := []struct {
		name       string
		spec       CPUSpec
		cores      int
		ghz        float64
		fp32, int8 float64 // GFLOP/s, GOPS of the whole part
		why        string
	}{
		{
			name: "Xeon Platinum 8280 (Cascade Lake, 2 FMA)",
			spec: CPUSpec{Arch: "amd64", Vendor: intel, Brand: "Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz", Features: x86VNNI},
			// TOP500 Frontera: 38,745.9 TFlop/s Rpeak / 448,448 cores = 86.4 GFlop/s FP64 per core; FP32 twice; VNNI 4× FP32.
			cores: 1, ghz: 2.7, fp32: 2 * 86.4, int8: 8 * 86.4,
			why: "TOP500 Frontera Rpeak per core",
		},
		{
			name:  "Xeon Platinum 8480+ (Sapphire Rapids, AMX)",
			spec:  CPUSpec{Arch: "amd64", Vendor: intel, Brand: "Intel(R) Xeon(R) Platinum 8480+", Features: x86AMX},
			cores: 56, ghz: 2.0, fp32: 56 * 2.0 * 64, int8: 56 * 2.0 * 2048,
			why: "Intel AMX brief: AVX-512 64 FP32 FLOP, AMX 2048 INT8 ops per cycle per core",
		},
		{
			name:  "Xeon Silver 4214 (Cascade Lake, 1 FMA)",
			spec:  CPUSpec{Arch: "amd64", Vendor: intel, Brand: "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz", Features: x86VNNI},
			cores: 12, ghz: 2.2, fp32: 12 * 2.2 * 32, int8: 12 * 2.2 * 128,
			why: "Intel ARK: one AVX-512 FMA unit",
		},
		{
			name:  "Xeon Gold 6248 (Cascade Lake, 2 FMA)",
			spec:  CPUSpec{Arch: "amd64", Vendor: intel, Brand: "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", Features: x86VNNI},
			cores: 20, ghz: 2.5, fp32: 20 * 2.5 * 64, int8: 20 * 2.5 * 256,
			why: "Intel ARK: two AVX-512 FMA units",
		},
		{
			name:  "Xeon Gold 5218 (Cascade Lake, 1 FMA)",
			spec:  CPUSpec{Arch: "amd64", Vendor: intel, Brand: "Intel(R) Xeon(R) Gold 5218 CPU @ 2.30GHz", Features: x86VNNI},
			cores: 16, ghz: 2.3, fp32: 16 * 2.3 * 32, int8: 16 * 2.3 * 128,
			why: "Intel ARK: one AVX-512 FMA unit",
		},
		{
			name:  "Xeon Platinum 8180 (Skylake-SP, no VNNI)",
			spec:  CPUSpec{Arch: "amd64", Vendor: intel, Brand: "Intel(R) Xeon(R) Platinum 8180 CPU @ 2.50GHz", Features: x86AVX512},
			cores: 28, ghz: 2.5, fp32: 28 * 2.5 * 64, int8: 28 * 2.5 * 64 * 4 / 3,
			why: "VNNI's advertised 3× over the three-instruction AVX-512 dot product",
		},
		{
			name:  "EPYC 7742 (Zen 2, AVX2)",
			spec:  CPUSpec{Arch: "amd64", Vendor: amd, Brand: "AMD EPYC 7742 64-Core Processor", Family: 0x17, Model: 0x31, Features: x86AVX2},
			cores: 64, ghz: 2.25, fp32: 64 * 2.25 * 32, int8: 64 * 2.25 * 32 * 4 / 3,
			why: "two 256-bit FMA pipes: 16 FP64 FLOP per cycle, 2.3 TFLOP/s FP64 per socket",
		},
		{
			name:  "EPYC 7601 (Zen 1, 128-bit pipes)",
			spec:  CPUSpec{Arch: "amd64", Vendor: amd, Brand: "AMD EPYC 7601 32-Core Processor", Family: 0x17, Model: 0x01, Features: x86AVX2},
			cores: 32, ghz: 2.2, fp32: 32 * 2.2 * 16,
			why: "Zen 1 splits 256-bit FMAs over two 128-bit pipes",
		},
		{
			name:  "EPYC 9654 (Zen 4, AVX-512 on 256-bit pipes)",
			spec:  CPUSpec{Arch: "amd64", Vendor: amd, Brand: "AMD EPYC 9654 96-Core Processor", Family: 0x19, Model: 0x11, Features: x86VNNI},
			cores: 96, ghz: 2.4, fp32: 96 * 2.4 * 32, int8: 96 * 2.4 * 128,
			why: "Zen 4 executes a 512-bit instruction in two passes",
		},
		{
			name:  "EPYC 9005 / Turin (Zen 5, full 512-bit pipes)",
			spec:  CPUSpec{Arch: "amd64", Vendor: amd, Brand: "AMD EPYC 9575F 64-Core Processor", Family: 0x1A, Model: 0x02, Features: x86VNNI},
			cores: 64, ghz: 3.3, fp32: 64 * 3.3 * 64, int8: 64 * 3.3 * 256,
			why: "Zen 5 server cores have four 512-bit FP pipes, two with FMA",
		},
		{
			name:  "Ryzen AI 9 HX 370 (mobile Zen 5, 256-bit)",
			spec:  CPUSpec{Arch: "amd64", Vendor: amd, Brand: "AMD Ryzen AI 9 HX 370 w/ Radeon 890M", Family: 0x1A, Model: 0x24, Features: x86VNNI},
			cores: 12, ghz: 2.0, fp32: 12 * 2.0 * 32,
			why: "mobile Zen 5 keeps 256-bit pipes",
		},
		{
			name:  "Core i9-12900K (Alder Lake P-cores, AVX-VNNI)",
			spec:  CPUSpec{Arch: "amd64", Vendor: intel, Brand: "12th Gen Intel(R) Core(TM) i9-12900K", Features: x86Alder},
			cores: 8, ghz: 3.2, fp32: 8 * 3.2 * 32, int8: 8 * 3.2 * 128,
			why: "AVX-VNNI on two 256-bit ports",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := CPURate(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := CPUPeak(tc.cores, tc.ghz, r.FP32); !near(got, tc.fp32, 0.001) {
				t.Errorf("FP32 peak %.1f GFLOP/s, want %.1f (%s; %s)", got, tc.fp32, r.FP32ISA, tc.why)
			}
			if tc.int8 > 0 {
				if got := CPUPeak(tc.cores, tc.ghz, r.INT8); !near(got, tc.int8, 0.001) {
					t.Errorf("INT8 peak %.1f GOPS, want %.1f (%s; %s)", got, tc.int8, r.INT8ISA, tc.why)
				}
			}
		})
	}
	if _, err := CPURate(CPUSpec{Arch: "arm64"}); err == nil {
		t.Error("arm64 has no table, yet a rate came back")
	}
}

// TestGPUPeaksAgainstDatasheets reproduces NVIDIA's published dense peaks
// from SMs × clock × per-SM rate.
func TestGPUPeaksAgainstDatasheets(t *testing.T) {
	tests := []struct {
		nvmlName               string
		fp32, tf32, fp16, int8 float64 // TFLOP/s, TOPS; 0: not published or no such path
		memGBs                 float64
	}{
		{"NVIDIA H100 80GB HBM3", 66.9, 494.7, 989.4, 1978.9, 3350},
		{"NVIDIA H200", 66.9, 494.7, 989.4, 1978.9, 4800},
		{"NVIDIA H200 141GB HBM3e", 66.9, 494.7, 989.4, 1978.9, 4800},
		{"NVIDIA H100 PCIe", 51.2, 378.0, 756.0, 1513.0, 2000},
		{"NVIDIA A100-SXM4-80GB", 19.5, 156, 312, 624, 2039},
		{"NVIDIA A100-PCIE-40GB", 19.5, 156, 312, 624, 1555},
		{"NVIDIA A10", 31.2, 62.5, 125, 250, 600},
		{"NVIDIA L4", 30.3, 60, 121, 242.5, 300},
		{"Tesla T4", 8.1, 0, 65, 130, 320},
		{"Tesla V100-SXM2-32GB", 15.7, 0, 125, 0, 900},
	}
	for _, tc := range tests {
		t.Run(tc.nvmlName, func(t *testing.T) {
			part, ok := LookupGPUPart(tc.nvmlName)
			if !ok {
				t.Fatalf("%q not recognised", tc.nvmlName)
			}
			arch, ok := LookupGPUArch(part.Compute)
			if !ok {
				t.Fatalf("no architecture %s", part.Compute)
			}
			for _, c := range []struct {
				p    Precision
				want float64
				mhz  float64
			}{{FP32, tc.fp32, part.VectorMHz}, {TF32, tc.tf32, part.TensorMHz}, {FP16, tc.fp16, part.TensorMHz}, {INT8, tc.int8, part.TensorMHz}} {
				if c.want == 0 {
					continue
				}
				// Datasheets round to two to four figures (L4's TF32 "120"
				// with sparsity is 2 × 60.6).
				if got := GPUPeakTFLOPS(part.SMs, c.mhz, arch.Rate(c.p)); !near(got, c.want, 0.011) {
					t.Errorf("%s: %.1f, datasheet %.1f (%d SMs × %.0f MHz × %.0f)", c.p, got, c.want, part.SMs, c.mhz, arch.Rate(c.p))
				}
			}
			if part.MemoryGBs != tc.memGBs {
				t.Errorf("memory %.0f GB/s, datasheet %.0f", part.MemoryGBs, tc.memGBs)
			}
		})
	}
	if _, ok := LookupGPUPart("NVIDIA GeForce RTX 4090"); ok {
		t.Error("a consumer card matched a datacenter part")
	}
	if a, ok := LookupGPUArch("8.9"); !ok || a.CoresPerSM != 128 || a.Rate(FP16) != 1024 {
		t.Errorf("Ada %+v", a)
	}
	if _, ok := LookupGPUArch("12.0"); ok {
		t.Error("an unlisted architecture has rates")
	}
}

func TestPCIeRates(t *testing.T) {
	for _, tc := range []struct {
		gen, width int
		want       float64
	}{
		{3, 16, 15.75}, {4, 16, 31.5}, {5, 16, 63.0}, {4, 4, 7.88}, {2, 16, 8}, {1, 1, 0.25}, {6, 16, 118.0}, {0, 16, 0},
	} {
		if got := PCIeGBs(tc.gen, tc.width); math.Abs(got-tc.want) > 0.01*max(tc.want, 1) {
			t.Errorf("Gen%d x%d: %.2f GB/s, want %.2f", tc.gen, tc.width, got, tc.want)
		}
	}
}
