package quant_test

import (
	"context"
	"testing"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/quant/quanttest"
)

// TestTransformsRunOnORT converts a small ViT to every precision, runs
// the result on ONNX Runtime's CPU execution provider and compares it with
// the FP32 model on seeded inputs. quanttest.Small is an untrained random
// network in which quantization errors compound through the blocks, so the
// thresholds are below what trained models reach; the relations between
// variants (per-channel beats per-tensor, smaller int4 blocks beat larger
// ones) are what a correct quantizer must show on any model.
func TestTransformsRunOnORT(t *testing.T) {
	requireORT(t)
	cfg := quanttest.Small
	src := buildViT(t, cfg)
	srcPath := saveModel(t, src, "fp32.onnx")
	inputs := evalInputs(cfg, 32)
	ref := runModel(t, srcPath, inputs, vitShape(cfg), 8)
	tests := []struct {
		spec      string
		minCosine float64
		minTop1   float64
		maxRatio  float64 // tensor bytes relative to FP32
	}{
		{"fp16", 0.9999, 1, 0.51},
		{"fp16:mixed", 0.9999, 1, 0.51},
		{"int8", 0.999, 0.8, 0.3},
		{"int8:per-tensor", 0.997, 0.8, 0.3},
		{"int8:reduce-range", 0.995, 0.6, 0.3},
		{"int4", 0.93, 0.5, 0.2},
		{"int4:block=16,accuracy_level=0", 0.94, 0.5, 0.23},
		{"int4:block=64,asym,accuracy_level=4", 0.93, 0.5, 0.18},
	}
	sqnr := map[string]float64{}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			m := src.Clone()
			r, err := quant.Apply(context.Background(), m, quant.MustParseSpec(tc.spec), quant.Options{})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			got := runModel(t, saveModel(t, m, "variant.onnx"), inputs, vitShape(cfg), 8)
			f, err := fidelity.Compare(ref, got)
			if err != nil {
				t.Fatal(err)
			}
			sqnr[tc.spec] = f.SQNRdB
			ratio := float64(r.BytesAfter) / float64(r.BytesBefore)
			t.Logf("%s: %s; tensor bytes %.3f×", tc.spec, f, ratio)
			if f.CosineMean < tc.minCosine || f.Top1 < tc.minTop1 {
				t.Errorf("fidelity %s, want cosine ≥ %g and top-1 ≥ %g", f, tc.minCosine, tc.minTop1)
			}
			if ratio > tc.maxRatio {
				t.Errorf("tensor bytes %.3f× of FP32, want ≤ %g", ratio, tc.maxRatio)
			}
		})
	}
	if sqnr["int8"] <= sqnr["int8:per-tensor"] {
		t.Errorf("per-channel int8 SQNR %.1f dB not above per-tensor %.1f dB", sqnr["int8"], sqnr["int8:per-tensor"])
	}
	if sqnr["int4:block=16,accuracy_level=0"] <= sqnr["int4"] {
		t.Errorf("int4 block 16 SQNR %.1f dB not above block 32 %.1f dB", sqnr["int4:block=16,accuracy_level=0"], sqnr["int4"])
	}
	if sqnr["int8"] <= sqnr["int4"]+10 {
		t.Errorf("int8 SQNR %.1f dB not well above int4 %.1f dB", sqnr["int8"], sqnr["int4"])
	}
}
