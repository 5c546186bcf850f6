package optimize_test

import (
	"context"
	"math"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/zoo"
)

// EstimateFLOPs on every zoo family's graph gives exactly the GFLOPs the
// catalog counts from the architecture; fused graphs (attention as
// MultiHeadAttention, the last block pruned to the class token) cost no
// more than unfused ones.
func TestEstimateFLOPsMatchesZoo(t *testing.T) {
	for _, fc := range familyCases() {
		t.Run(fc.name, func(t *testing.T) {
			a, err := zoo.Analyze(fc.spec)
			if err != nil {
				t.Fatal(err)
			}
			m, err := zoo.Build(context.Background(), fc.spec)
			if err != nil {
				t.Fatal(err)
			}
			f, err := optimize.EstimateFLOPs(m.Clone())
			if err != nil {
				t.Fatal(err)
			}
			if f.Unknown != 0 || math.Abs(f.GFLOPs-a.GFLOPs) > 1e-9*a.GFLOPs {
				t.Errorf("estimate %.9g GFLOPs (%d counted, %d unknown), zoo counts %.9g", f.GFLOPs, f.Counted, f.Unknown, a.GFLOPs)
			}
			fused, _ := apply(t, m, optimize.Default())
			ff, err := optimize.EstimateFLOPs(fused)
			if err != nil {
				t.Fatal(err)
			}
			if ff.Unknown != 0 || ff.GFLOPs > f.GFLOPs*(1+1e-9) || ff.GFLOPs < 0.5*f.GFLOPs {
				t.Errorf("fused estimate %.9g GFLOPs (%d unknown), unfused %.9g", ff.GFLOPs, ff.Unknown, f.GFLOPs)
			}
		})
	}
}

// A real torch.onnx.export (Shape/Gather/Concat reshape targets, Split +
// Squeeze for q/k/v) is counted through its shape subgraphs.
func TestEstimateFLOPsTorchExport(t *testing.T) {
	m, err := onnx.LoadWith("../testdata/timm-vit-export.onnx", onnx.LoadOptions{SkipExternalData: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := optimize.EstimateFLOPs(m)
	if err != nil {
		t.Fatal(err)
	}
	// The fixture is scripts/export-timm-vit.py --preset fixture: 32 px,
	// patch 8, width 32, depth 2, 2 heads, MLP ratio 4, 10 classes.
	spec := zoo.Spec{Name: "timm-fixture", Family: zoo.FamilyViT, Resolution: 32, Preprocess: zoo.ImageNetNorm,
		Arch: zoo.ViTConfig{Flavor: zoo.FlavorViT, Dim: 32, Depth: 2, Heads: 2, MLPDim: 128, Patch: 8, Classes: 10}}
	a, err := zoo.Analyze(spec)
	if err != nil {
		t.Fatal(err)
	}
	if f.Unknown != 0 || math.Abs(f.GFLOPs-a.GFLOPs) > 1e-9*a.GFLOPs {
		t.Errorf("estimate %.9g GFLOPs (%d counted, %d unknown), the same architecture in the zoo %.9g", f.GFLOPs, f.Counted, f.Unknown, a.GFLOPs)
	}
}

func TestEstimateFLOPsErrors(t *testing.T) {
	if _, err := optimize.EstimateFLOPs(nil); err == nil {
		t.Error("nil model accepted")
	}
	b := onnx.NewBuilder("relu-only", 17)
	x := b.AddInput("x", onnx.Float, onnx.Dims("batch", 3, 8, 8))
	b.AddNode("Relu", []string{x}, []string{"y"})
	b.AddOutput("y", onnx.Float, onnx.Dims("batch", 3, 8, 8))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := optimize.EstimateFLOPs(m); err == nil {
		t.Error("a graph without Conv/MatMul/Gemm gave an estimate")
	}
}
