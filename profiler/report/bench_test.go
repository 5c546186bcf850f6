package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
)

// largeStudy writes a results file of 1,000 experiments: 25 models × 5
// precisions × 4 batch sizes × 2 EPs, with failures, fidelity and energy.
func largeStudy(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "large.jsonl")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	precs := []string{"fp32", "fp16", "int8", "int8-static", "int4"}
	speed := []float64{1, 1.7, 2.1, 2.4, 1.3}
	mem := []float64{1, 2, 3.6, 3.7, 5.2}
	fids := []*fidelity.Result{selfFid, fid(1, 1, 0.99999, 0.9999, 70, 0.003), fid(0.992, 1, 0.9994, 0.996, 30, 0.4),
		fid(0.996, 1, 0.9996, 0.997, 33, 0.3), fid(0.97, 0.99, 0.996, 0.98, 20, 1.2)}
	n := 0
	for m := range 25 {
		model := fmt.Sprintf("model-%02d", m)
		for _, ep := range []string{"cpu", "cuda"} {
			for _, batch := range []int{1, 4, 16, 64} {
				for p, prec := range precs {
					base := 2000 / float64(m+1) * float64(batch) / (1 + float64(batch)/8)
					if ep == "cuda" {
						base *= 6
					}
					tput := base * speed[p] * (1 + 0.01*float64((m+p+batch)%5))
					p50 := float64(batch) * 1000 / tput
					r := study.Record{
						Schema:     study.SchemaVersion,
						Experiment: study.Experiment{Model: model, Precision: prec, EP: ep, Batch: batch, Threads: 8},
						Host:       gpuHost,
						File:       study.ModelFile{Bytes: int64(4e6 * float64(m+1) / mem[p])},
						Status:     study.StatusOK,
						Started:    fixtureStart.Add(time.Duration(n) * time.Second),
						Finished:   fixtureStart.Add(time.Duration(n)*time.Second + 900*time.Millisecond),
						Metrics: &bench.Metrics{Throughput: tput,
							Latency:  bench.LatencyStats{Runs: 500, MeanMs: p50 * 1.01, MinMs: p50 * 0.95, P50Ms: p50, P90Ms: p50 * 1.05, P95Ms: p50 * 1.08, P99Ms: p50 * 1.2, MaxMs: p50 * 1.6, CV: 0.03},
							Memory:   bench.Memory{PeakWorkingSet: int64(8e6 * float64(m+1) / mem[p]), GPUBytes: int64(16e6 * float64(m+1) / mem[p])},
							Fidelity: fids[p], TFLOPS: tput * 0.01},
					}
					if ep == "cuda" {
						r.Metrics.Energy = &bench.Energy{JoulesPerSample: 300 / tput, MeanPowerW: 300}
					}
					if (m*7+p+batch)%53 == 0 && p > 0 {
						r.Status, r.Reason, r.Metrics = study.StatusFailed, "worker exited: signal: killed", nil
					}
					if err := enc.Encode(r); err != nil {
						tb.Fatal(err)
					}
					n++
				}
			}
		}
	}
	if n != 1000 {
		tb.Fatalf("%d experiments", n)
	}
	return path
}

func largeModelInfo(name string) (ModelInfo, bool) {
	var m int
	if _, err := fmt.Sscanf(name, "model-%d", &m); err != nil || m%5 == 4 {
		return ModelInfo{}, false // some models are not in the catalog
	}
	return ModelInfo{Params: int64(1e6 * float64(m+1)), GFLOPs: float64(m + 1)}, true
}

// reportLarge is the whole command's work: read, derive, draw, write.
func reportLarge(tb testing.TB, path, out string) {
	srcs, err := Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	opts := testOptions(tb)
	opts.ModelInfo, opts.PricePerHour, opts.PricePerKWh = largeModelInfo, 3, 0.2
	r := Build(srcs, opts)
	if _, err := r.Write(out, FormatMarkdown); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkLargeStudy times `quantscope report` on a 1,000-experiment
// study: read, derive, draw every chart, write Markdown. The goal is under
// 2 s; the figure measured is in README's Performance section.
//
//	go test ./profiler/report -run '^$' -bench LargeStudy -benchtime 5x
func BenchmarkLargeStudy(b *testing.B) {
	path := largeStudy(b)
	out := b.TempDir()
	for b.Loop() {
		reportLarge(b, path, out)
	}
}
