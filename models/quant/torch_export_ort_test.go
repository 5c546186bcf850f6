package quant_test

import (
	"context"
	"testing"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/quant"
)

// torchExport is a real torch.onnx.export graph of a small timm-architecture
// ViT (see models/optimize's export_test.go and
// scripts/export-timm-vit.py): Identity and Constant nodes, shape
// subgraphs, Split + Squeeze q/k/v, Erf GELU, MatMul + Add linears and a
// Gemm head.
const torchExport = "../testdata/timm-vit-export.onnx"

// Every precision applies to the exporter's graph as it is: the report
// counts the 9 linears (qkv, proj, fc1, fc2 per block and the Gemm head;
// the 4 activation × activation attention MatMuls stay float) and, for
// fp16, every MatMul; ONNX Runtime runs each variant; fidelity against FP32
// meets the precisions' bars (the tiny model's small tensors keep the size
// ratios a little above the full-size models').
func TestTorchExportTransforms(t *testing.T) {
	requireORT(t)
	src, err := onnx.Load(torchExport)
	if err != nil {
		t.Fatal(err)
	}
	srcPath := saveModel(t, src, "fp32.onnx")
	shape := []int64{3, 32, 32}
	inputs := make([][]float32, 32)
	for i := range inputs {
		inputs[i] = quant.SyntheticImage(quant.ImageInput{Channels: 3, Height: 32, Width: 32}, quant.Preprocess{}, 99, i)
	}
	ref := runModel(t, srcPath, inputs, shape, 8)
	for _, tc := range []struct {
		spec      string
		minCosine float64
		linears   int // MatMul and Gemm nodes converted
		maxRatio  float64
	}{
		{"fp16", 0.9999, 13, 0.51},
		{"int8", 0.999, 9, 0.31},
		{"int8-static:samples=8", 0.995, 9, 0.31},
		{"int4:keep-last", 0.99, 8, 0.3},
		{"int4", 0.99, 9, 0.25},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			m := src.Clone()
			r, err := quant.Apply(context.Background(), m, quant.MustParseSpec(tc.spec), calibOptions())
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			lin := 0
			for _, op := range []string{"MatMul", "Gemm"} {
				for _, p := range []quant.Precision{quant.PrecFP16, quant.PrecInt8, quant.PrecInt4} {
					lin += r.Count(op, p)
				}
			}
			if lin != tc.linears {
				t.Errorf("%d linears converted, want %d", lin, tc.linears)
			}
			if err := onnx.Check(m); err != nil {
				t.Errorf("checker: %v", err)
			}
			got := runModel(t, saveModel(t, m, "variant.onnx"), inputs, shape, 8)
			f, err := fidelity.Compare(ref, got)
			if err != nil {
				t.Fatal(err)
			}
			ratio := float64(r.BytesAfter) / float64(r.BytesBefore)
			t.Logf("%s: %s; tensor bytes %.3f×", tc.spec, f, ratio)
			if f.CosineMean < tc.minCosine {
				t.Errorf("cosine %.6f < %g", f.CosineMean, tc.minCosine)
			}
			if ratio > tc.maxRatio {
				t.Errorf("tensor bytes %.3f× of FP32, want ≤ %g", ratio, tc.maxRatio)
			}
		})
	}
}
