package quant_test

import (
	"context"
	"os"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/quant/quanttest"
	"github.com/quantscope/quantscope/profiler/runtime"
)

// benchConfig picks the model of the benchmarks: DeiT-Ti shapes by
// default, ViT-B/16 with QUANTSCOPE_BENCH_MODEL=vit-base.
func benchConfig() quanttest.ViTConfig {
	if os.Getenv("QUANTSCOPE_BENCH_MODEL") == "vit-base" {
		return quanttest.ViTBase
	}
	return quanttest.DeiTTiny
}

// BenchmarkQuantize measures the quantizer itself (no ONNX Runtime): one
// Apply of each precision to a model already in memory.
func BenchmarkQuantize(b *testing.B) {
	cfg := benchConfig()
	src := buildViT(b, cfg)
	for _, spec := range []string{"fp16", "int8", "int4"} {
		b.Run(spec, func(b *testing.B) {
			sp := quant.MustParseSpec(spec)
			for b.Loop() {
				b.StopTimer()
				m := src.Clone()
				b.StartTimer()
				if _, err := quant.Apply(context.Background(), m, sp, quant.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInference runs each variant on ONNX Runtime's CPU execution
// provider, batch 8, one intra-op thread per physical core: ns/op is one
// batch. Compare variants within one run (same machine, same threads).
func BenchmarkInference(b *testing.B) {
	requireORT(b)
	cfg := benchConfig()
	src := buildViT(b, cfg)
	const batch = 8
	in := quanttest.Inputs(cfg, batch, 1)
	data := make([]float32, 0, batch*len(in[0]))
	for _, x := range in {
		data = append(data, x...)
	}
	input := runtime.Tensor{Shape: []int64{batch, 3, int64(cfg.Image), int64(cfg.Image)}, Data: data}
	for _, spec := range []string{"fp32", "fp16", "int8", "int8:per-tensor", "int4", "int4:accuracy_level=0"} {
		b.Run(spec, func(b *testing.B) {
			m := src.Clone()
			if spec != "fp32" {
				if _, err := quant.Apply(context.Background(), m, quant.MustParseSpec(spec), quant.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			path := saveModel(b, m, "model.onnx")
			s, err := runtime.NewSession(path, runtime.SessionConfig{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for range 2 { // warm-up
				if _, err := s.RunFloat32(input); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if _, err := s.RunFloat32(input); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "img/s")
		})
	}
}

var _ = onnx.Float
