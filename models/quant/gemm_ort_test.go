package quant_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/quant"
)

// gemmModel builds x[4,32] → Gemm → y[4,16] with the given attributes and
// C shape (nil: no C).
func gemmModel(t *testing.T, transA, transB int64, alpha, beta float32, cDims []int64) *onnx.Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(9, 9))
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	b := onnx.NewBuilder("gemm", 17)
	xDims := onnx.Dims(4, 32)
	if transA != 0 {
		xDims = onnx.Dims(32, 4)
	}
	x := b.AddInput("x", onnx.Float, xDims)
	wDims := []int64{32, 16}
	if transB != 0 {
		wDims = []int64{16, 32}
	}
	w := b.AddInitializerFloat32("w", wDims, rnd(512))
	inputs := []string{x, w}
	if cDims != nil {
		n, _ := onnx.Numel(cDims)
		inputs = append(inputs, b.AddInitializerFloat32("c", cDims, rnd(int(n))))
	}
	b.AddNode("Gemm", inputs, []string{"y"}, onnx.AttrInt("transA", transA), onnx.AttrInt("transB", transB),
		onnx.AttrFloat("alpha", alpha), onnx.AttrFloat("beta", beta)).Named("gemm")
	b.AddOutput("y", onnx.Float, onnx.Dims(4, 16))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGemmRewrites checks every Gemm form the quantizers rewrite to a
// MatMul: transposed or not, alpha and beta, a [N] or [1, N] bias folded,
// a [M, N] C added back; transA is kept in float.
func TestGemmRewrites(t *testing.T) {
	requireORT(t)
	x := make([]float32, 128)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	tests := []struct {
		name           string
		transA, transB int64
		alpha, beta    float32
		cDims          []int64
		converted      bool
	}{
		{"plain", 0, 0, 1, 1, []int64{16}, true},
		{"transB alpha beta", 0, 1, 0.5, 2, []int64{16}, true},
		{"row bias", 0, 1, 1, 1, []int64{1, 16}, true},
		{"full C", 0, 0, 1, 0.5, []int64{4, 16}, true},
		{"no C", 0, 1, 2, 1, nil, true},
		{"transA kept", 1, 0, 1, 1, []int64{16}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := gemmModel(t, tc.transA, tc.transB, tc.alpha, tc.beta, tc.cDims)
			shape := []int64{32}
			if !tc.converted {
				for _, spec := range []string{"int8", "int4"} {
					r, err := quant.Apply(context.Background(), src.Clone(), quant.MustParseSpec(spec), quant.Options{})
					if !errors.Is(err, quant.ErrNothingConverted) || len(r.Kept) != 1 || r.Kept[0].Reason != "Gemm with transA" {
						t.Errorf("%s: a transA Gemm: %v, kept %+v", spec, err, r.Kept)
					}
				}
				return
			}
			ref := runModel(t, saveModel(t, src, "fp32.onnx"), splitRows(x, 4), shape, 4)
			for _, spec := range []string{"int8", "int4"} {
				m := src.Clone()
				_, err := quant.Apply(context.Background(), m, quant.MustParseSpec(spec), quant.Options{})
				if err != nil {
					t.Fatalf("%s: %v", spec, err)
				}
				got := runModel(t, saveModel(t, m, spec+".onnx"), splitRows(x, 4), shape, 4)
				f, err := fidelity.Compare(ref, got)
				if err != nil {
					t.Fatal(err)
				}
				min := 0.9999
				if spec == "int4" {
					min = 0.99
				}
				if f.CosineMin < min {
					t.Errorf("%s: %s, want cosine ≥ %g", spec, f, min)
				}
			}
		})
	}
}

func splitRows(x []float32, n int) [][]float32 {
	w := len(x) / n
	out := make([][]float32, n)
	for i := range out {
		out[i] = x[i*w : (i+1)*w]
	}
	return out
}

// TestQuantizeFileExternalData quantizes a model stored with external data
// and checks the variant is written with external data, loads, and runs.
func TestQuantizeFileExternalData(t *testing.T) {
	requireORT(t)
	cfg := tinyCfg()
	src := buildViT(t, cfg)
	dir := t.TempDir()
	srcPath := filepath.Join(dir, "model.onnx")
	if err := onnx.Save(src, srcPath, onnx.SaveOptions{ExternalData: true, SizeThreshold: 256}); err != nil {
		t.Fatal(err)
	}
	inputs := tinyInputs(cfg, 4)
	ref := runModel(t, srcPath, inputs, vitShape(cfg), 4)
	for _, spec := range []string{"fp16", "int8", "int4"} {
		dst := filepath.Join(dir, "out", spec+".onnx")
		r, err := quant.QuantizeFile(context.Background(), srcPath, dst, quant.MustParseSpec(spec), quant.Options{})
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if _, err := os.Stat(dst + ".data"); err != nil {
			t.Errorf("%s: no external data file beside the variant: %v", spec, err)
		}
		if r.FileBytesBefore == 0 || r.FileBytesAfter == 0 || r.FileBytesAfter >= r.FileBytesBefore {
			t.Errorf("%s: file bytes %d → %d", spec, r.FileBytesBefore, r.FileBytesAfter)
		}
		got := runModel(t, dst, inputs, vitShape(cfg), 4)
		if f, err := fidelity.Compare(ref, got); err != nil || f.CosineMean < 0.9 {
			t.Errorf("%s: %v %v", spec, f, err)
		}
	}
}
