package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/profiler/study"
)

// The H200 fixture is a sharded study: two pods of the Job bench-h200
// (host group), one shard each, merged with quantscope merge.
var (
	h200Pod0 = study.Host{Hostname: "bench-h200-0-x4k2p", Group: "bench-h200", CPU: "Intel(R) Xeon(R) Platinum 8480+", ISA: []string{"avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16"},
		Cores: 56, GPU: "NVIDIA H200", Driver: "580.65.06", CUDA: "13.0", ORTVersion: "1.24.1", PowerLimit: 700}
	h200Pod1 = func() study.Host { h := h200Pod0; h.Hostname = "bench-h200-1-9fj3d"; return h }()
)

// gpuH200Shards are the two shards' records: vit-base-16 (the heavier
// model) alone in shard 0, deit-tiny in shard 1, each with its baseline.
// Beyond the H100 study: vit-base-16 at int4 and deit-tiny at int8.
func gpuH200Shards() (shard0, shard1 []fx) {
	vit := []fx{
		{model: "vit-base-16", prec: "fp32", ep: "cuda", batch: 32, p50: 15.2, file: 346_397_512, rss: 301 << 20, gpu: 1_418 << 20, fid: selfFid, joules: 0.171, powerW: 356, gflops: vitGF},
		{model: "vit-base-16", prec: "fp16", ep: "cuda", batch: 32, p50: 5.1, file: 173_236_880, rss: 163 << 20, gpu: 809 << 20, fid: fid(1, 1, 0.999998, 0.99998, 71.0, 0.0035), joules: 0.061, powerW: 382, gflops: vitGF, converted: 86, kept: 38},
		{model: "vit-base-16", prec: "int8", ep: "cuda", batch: 32, p50: 17.9, file: 88_612_004, rss: 122 << 20, gpu: 657 << 20, fid: fid(0.9921875, 1, 0.99934, 0.9961, 29.5, 0.41), joules: 0.188, powerW: 337, gflops: vitGF, converted: 74, kept: 50},
		{model: "vit-base-16", prec: "int4", ep: "cuda", batch: 32, p50: 9.8, file: 52_144_776, rss: 88 << 20, gpu: 412 << 20, fid: fid(0.98046875, 0.99609375, 0.99681, 0.9871, 21.2, 1.12), joules: 0.107, powerW: 348, gflops: vitGF, converted: 72, kept: 52},
	}
	deit := []fx{
		{model: "deit-tiny", prec: "fp32", ep: "cuda", batch: 1, p50: 0.90, file: 22_871_208, rss: 35 << 20, gpu: 118 << 20, fid: selfFid, joules: 0.118, powerW: 133, gflops: deitGF, floor: true},
		{model: "deit-tiny", prec: "fp16", ep: "cuda", batch: 1, p50: 0.86, file: 11_456_190, rss: 24 << 20, gpu: 97 << 20, fid: fid(0.99609375, 1, 0.999991, 0.99994, 68.2, 0.0041), joules: 0.112, powerW: 131, gflops: deitGF, floor: true},
		{model: "deit-tiny", prec: "int8", ep: "cuda", batch: 1, p50: 1.31, file: 6_117_904, rss: 17 << 20, gpu: 88 << 20, fid: fid(0.984375, 0.99609375, 0.99812, 0.9921, 24.1, 0.92), joules: 0.171, powerW: 128, gflops: deitGF, floor: true},
	}
	repeat := func(base []fx, jitter []float64) []fx {
		var out []fx
		for r, j := range jitter {
			for i, f := range base {
				f.repeat = r
				f.p50 *= j * (1 + 0.003*float64((i+r)%3))
				out = append(out, f)
			}
		}
		return out
	}
	return repeat(vit, []float64{1.000, 1.006, 0.996}), repeat(deit, []float64{1.000, 0.993, 1.004})
}

// mergedH200 writes the shards' files and merges them as a user would.
func mergedH200(t *testing.T) []byte {
	t.Helper()
	s0, s1 := gpuH200Shards()
	dir := t.TempDir()
	var inputs []string
	for i, f := range [][]byte{encodeFixture(t, h200Pod0, s0, nil), encodeFixture(t, h200Pod1, s1, nil)} {
		p := filepath.Join(dir, "results-"+itoa(i)+".jsonl")
		if err := os.WriteFile(p, f, 0o644); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, p)
	}
	out := filepath.Join(dir, "bench-h200.jsonl")
	if _, err := study.MergeFiles(out, inputs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHostFixtureUpToDate(t *testing.T) {
	want := mergedH200(t)
	path := filepath.Join("testdata", "gpu-h200.jsonl")
	if updateGolden {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with QUANTSCOPE_UPDATE_GOLDEN=1 to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from its generator; run with QUANTSCOPE_UPDATE_GOLDEN=1", path)
	}
}

// A two-host report: the H100 study and the merged shards of the H200 Job,
// side by side.
func TestGoldenTwoHosts(t *testing.T) {
	r := Build(mustLoad(t, "gpu-h100.jsonl", "gpu-h200.jsonl"), testOptions(t))
	checkGolden(t, "hosts-h100-h200.md", renderMD(t, r))
}

// The shards of one host group are one host: one group, labelled by the
// group, listing its pods, and one column in the side-by-side tables.
func TestHostGroupIsOneHost(t *testing.T) {
	r := Build(mustLoad(t, "gpu-h100.jsonl", "gpu-h200.jsonl"), testOptions(t))
	if len(r.Groups) != 2 {
		t.Fatalf("%d groups, want 2 (the pods of bench-h200 are one host)", len(r.Groups))
	}
	g := r.Groups[1]
	if g.Label != "bench-h200" || strings.Join(g.Hostnames, ",") != "bench-h200-0-x4k2p,bench-h200-1-9fj3d" {
		t.Errorf("group %q with hostnames %v", g.Label, g.Hostnames)
	}
	if r.Hosts == nil || len(r.Hosts.Columns) != 2 {
		t.Fatalf("host table %+v, want two columns", r.Hosts)
	}
	for _, row := range r.Hosts.Rows {
		if row.Model == "vit-base-16" && row.Precision == "int4" && (row.Cells[0] != nil || row.Cells[1] == nil) {
			t.Errorf("vit-base-16 int4 measured only on the H200: cells %v", row.Cells)
		}
		if row.Model == "vit-base-16" && row.Precision == "fp16" {
			if best, text := r.Hosts.fastest(row); best != 1 || text != "bench-h200" {
				t.Errorf("fastest for vit-base-16 fp16 = %d %q, want the H200", best, text)
			}
		}
		if row.Model == "deit-tiny" && row.Precision == "fp32" {
			if best, text := r.Hosts.fastest(row); best != -1 || !strings.HasPrefix(text, "≈ ") {
				t.Errorf("deit-tiny fp32 differs by ~2%%: fastest = %d %q, want within noise", best, text)
			}
		}
	}
	if one := Build(mustLoad(t, "gpu-h100.jsonl"), testOptions(t)); one.Hosts != nil {
		t.Error("a one-host report has a side-by-side table")
	}
}
