package optimize_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/ort"
)

// benchBatch is the batch of the CPU bars.
const benchBatch = 8

// benchVariants are the model files the benchmarks compare: the zoo
// model (vit-base-16, or QUANTSCOPE_BENCH_MODEL: a catalog name or an
// .onnx file) unfused and optimized,
// in FP32 and int8.
type benchVariants struct {
	dir   string
	paths map[string]string
	rep   map[string]*optimize.Report
}

var (
	benchOnce sync.Once
	benchSet  *benchVariants
	benchErr  error
)

func benchModelName() string {
	if n := os.Getenv("QUANTSCOPE_BENCH_MODEL"); n != "" {
		return n
	}
	return "vit-base-16"
}

// variants builds (once per test binary) every variant's file.
func variants(b *testing.B) *benchVariants {
	b.Helper()
	benchOnce.Do(func() {
		benchSet, benchErr = buildVariants(benchModelName())
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchSet
}

func buildVariants(name string) (*benchVariants, error) {
	ctx := context.Background()
	var m *onnx.Model
	if strings.HasSuffix(name, ".onnx") {
		// A model file, e.g. scripts/export-timm-vit.py's export.
		var err error
		if m, err = onnx.Load(name); err != nil {
			return nil, err
		}
	} else {
		spec, ok := zoo.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("%s: not in the zoo's catalog", name)
		}
		var err error
		if m, err = zoo.Build(ctx, spec); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "quantscope-optimize-bench-")
	if err != nil {
		return nil, err
	}
	v := &benchVariants{dir: dir, paths: map[string]string{}, rep: map[string]*optimize.Report{}}
	write := func(key string, m *onnx.Model) error {
		p := filepath.Join(dir, key+".onnx")
		v.paths[key] = p
		return onnx.Save(m, p, onnx.SaveOptions{ExternalData: true})
	}
	models := map[string]*onnx.Model{"unfused": m}
	for key, op := range map[string]optimize.AttentionOp{
		"fused": optimize.AttentionMHA, "fused-mha-split": optimize.AttentionMHAPacked, "fused-attention": optimize.AttentionPacked,
	} {
		f := m.Clone()
		r, err := optimize.Apply(ctx, f, optimize.Options{AttentionOp: op})
		if err != nil {
			return nil, err
		}
		models[key], v.rep[key] = f, r
	}
	for key, mm := range models {
		if err := write("fp32-"+key, mm); err != nil {
			return nil, err
		}
	}
	for _, spec := range []string{"int8", "int4"} {
		for _, key := range []string{"unfused", "fused", "fused-mha-split"} {
			q, _, err := quantizeClone(models[key], spec)
			if err != nil {
				return nil, err
			}
			if err := write(spec+"-"+key, q); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// bound opens a benchmark session: batch 8, one intra-op thread per
// physical core, ONNX Runtime's graph optimizations at ORT_ENABLE_ALL (its
// own LayerNorm, GELU, BiasGelu, SkipLayerNorm and MatMul fusions on), the
// same for every variant.
func bound(b *testing.B, path string) *ort.Bound {
	b.Helper()
	bd, err := ort.NewBound(path, ort.SessionConfig{IntraOpThreads: ort.PhysicalCores()}, benchBatch, 1)
	if err != nil {
		b.Fatal(err)
	}
	if err := bd.Run(); err != nil { // warm-up: weights pre-packed, arena sized
		b.Fatal(err)
	}
	return bd
}

// BenchmarkInference runs each variant alone: ns/op is one batch of 8,
// samples/s the throughput, cosine the output's agreement with the
// unfused FP32 model on the same input.
//
//	go test ./models/optimize -run '^$' -bench Inference -benchtime 10x -count 3
func BenchmarkInference(b *testing.B) {
	requireORT(b)
	v := variants(b)
	ref := bound(b, v.paths["fp32-unfused"])
	want := slices.Clone(ref.Output(0))
	ref.Close()
	for _, key := range []string{"fp32-unfused", "fp32-fused", "fp32-fused-mha-split", "fp32-fused-attention", "int8-unfused", "int8-fused", "int8-fused-mha-split", "int4-unfused", "int4-fused", "int4-fused-mha-split"} {
		b.Run(key, func(b *testing.B) {
			bd := bound(b, v.paths[key])
			defer bd.Close()
			cos, maxAbs := compare(want, bd.Output(0))
			b.ResetTimer()
			for b.Loop() {
				if err := bd.Run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchBatch*b.N)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(cos, "cosine")
			b.ReportMetric(maxAbs, "max-abs-err")
		})
	}
}

// BenchmarkSpeedup runs the unfused and the fused model alternately, one
// batch each per iteration, so that both see the same load on a shared
// machine, and reports the median of the per-iteration time ratios
// (speedup = unfused time / fused time) with both medians.
//
//	go test ./models/optimize -run '^$' -bench Speedup -benchtime 20x
func BenchmarkSpeedup(b *testing.B) {
	requireORT(b)
	v := variants(b)
	for _, pair := range [][2]string{
		{"fp32-unfused", "fp32-fused"},
		{"fp32-unfused", "fp32-fused-mha-split"},
		{"fp32-unfused", "fp32-fused-attention"},
		{"int8-unfused", "int8-fused"},
		{"int8-unfused", "int8-fused-mha-split"},
		{"int4-unfused", "int4-fused"},
		{"int4-unfused", "int4-fused-mha-split"},
		{"fp32-fused-mha-split", "fp32-fused"},
	} {
		b.Run(pair[1]+"_vs_"+pair[0], func(b *testing.B) {
			base, fused := bound(b, v.paths[pair[0]]), bound(b, v.paths[pair[1]])
			defer base.Close()
			defer fused.Close()
			var tb, tf, ratio []float64
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				first, second := base, fused
				if i%2 == 1 {
					first, second = fused, base
				}
				d1, err := timed(first)
				if err != nil {
					b.Fatal(err)
				}
				d2, err := timed(second)
				if err != nil {
					b.Fatal(err)
				}
				if i%2 == 1 {
					d1, d2 = d2, d1
				}
				tb, tf, ratio = append(tb, d1), append(tf, d2), append(ratio, d1/d2)
			}
			b.StopTimer()
			cos, maxAbs := compare(base.Output(0), fused.Output(0))
			b.ReportMetric(median(ratio), "speedup")
			b.ReportMetric(benchBatch/median(tb), "base-samples/s")
			b.ReportMetric(benchBatch/median(tf), "fused-samples/s")
			// The fastest run of each is the least disturbed by other
			// processes on a shared machine.
			b.ReportMetric(slices.Min(tb)/slices.Min(tf), "speedup-best")
			b.ReportMetric(benchBatch/slices.Min(tb), "base-best-samples/s")
			b.ReportMetric(benchBatch/slices.Min(tf), "fused-best-samples/s")
			b.ReportMetric(cos, "cosine")
			b.ReportMetric(maxAbs, "max-abs-err")
		})
	}
}

func timed(bd *ort.Bound) (float64, error) {
	start := time.Now()
	err := bd.Run()
	return time.Since(start).Seconds(), err
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestMain removes the benchmark's model files.
func TestMain(m *testing.M) {
	// Optimized copies go to the cache (onnx.DerivedPath): a fresh one per
	// run, so no test finds another run's copy or writes to the user's.
	cache, err := os.MkdirTemp("", "quantscope-optimize-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(onnx.EnvCacheDir, cache)
	code := m.Run()
	os.RemoveAll(cache)
	if benchSet != nil {
		os.RemoveAll(benchSet.dir)
	}
	os.Exit(code)
}
