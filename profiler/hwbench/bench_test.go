package hwbench

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/cpuid/v2"

	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/telemetry"
)

// BenchmarkCPUGEMM times doctor --bench's CPU GEMMs in this process and
// reports each against the theoretical peak of the cores it uses: the mean
// (GFLOP/s, %peak) and the best run (best-GFLOP/s, best-%peak), which on a
// shared machine is the closer estimate of what the cores can do.
//
//	go test ./profiler/hwbench -run '^$' -bench CPUGEMM -benchtime 200x
//
// QUANTSCOPE_BENCH_THREADS=1 measures one core.
func BenchmarkCPUGEMM(b *testing.B) {
	if _, err := ort.Init(""); err != nil {
		b.Skip(err)
	}
	threads := ort.PhysicalCores()
	if n, err := strconv.Atoi(os.Getenv("QUANTSCOPE_BENCH_THREADS")); err == nil && n > 0 {
		threads = n // e.g. 1: one core's efficiency, free of sharing between cores
	}
	clock, err := MeasureClock(context.Background(), threads, 300*time.Millisecond)
	if err != nil {
		b.Skip(err)
	}
	host := telemetry.ReadHostInfo()
	var feats []string
	for _, f := range host.CPU.Features {
		if f.Present {
			feats = append(feats, f.Name)
		}
	}
	rate, err := CPURate(CPUSpec{Arch: "amd64", Vendor: cpuid.CPU.VendorString, Brand: host.CPU.Model, Family: cpuid.CPU.Family, Model: cpuid.CPU.Model, Features: feats})
	if err != nil {
		b.Skip(err)
	}
	dir := b.TempDir()
	for _, p := range []Precision{FP32, INT8} {
		b.Run(string(p), func(b *testing.B) {
			g := GEMM{Precision: p, K: 1024, Layers: 4}
			const rows = 1024
			path, err := g.Ensure(dir)
			if err != nil {
				b.Fatal(err)
			}
			bd, err := ort.NewBound(path, ort.SessionConfig{IntraOpThreads: threads}, rows, 1)
			if err != nil {
				b.Fatal(err)
			}
			defer bd.Close()
			for i := 0; i < 3; i++ {
				if err := bd.Run(); err != nil {
					b.Fatal(err)
				}
			}
			perRun := g.FLOPsPerRow() * rows / 1e9
			best := time.Duration(1 << 62)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				t := time.Now()
				if err := bd.Run(); err != nil {
					b.Fatal(err)
				}
				best = min(best, time.Since(t))
			}
			mean := time.Since(start) / time.Duration(b.N)
			perCycle := rate.FP32
			if p == INT8 {
				perCycle = rate.INT8
			}
			peak := CPUPeak(threads, clock.GHz, perCycle)
			b.ReportMetric(perRun/mean.Seconds(), "GFLOP/s")
			b.ReportMetric(perRun/best.Seconds(), "best-GFLOP/s")
			b.ReportMetric(100*perRun/mean.Seconds()/peak, "%peak")
			b.ReportMetric(100*perRun/best.Seconds()/peak, "best-%peak")
			b.ReportMetric(clock.GHz, "GHz")
		})
	}
}
