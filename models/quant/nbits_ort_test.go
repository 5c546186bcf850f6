package quant_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/ort"
)

// TestMatMulNBitsLayoutMatchesORT feeds the identity matrix through a
// MatMulNBits node holding weights quantized here: ONNX Runtime's kernel
// then returns the weight as it dequantizes it, which must equal
// (code - zero point) · scale computed from our layout, value for value.
func TestMatMulNBitsLayoutMatchesORT(t *testing.T) {
	requireORT(t)
	rng := rand.New(rand.NewPCG(3, 4))
	tests := []struct {
		k, n, block int
		asym        bool
	}{
		{64, 8, 32, false},
		{64, 8, 32, true},
		{80, 5, 16, true},   // odd block count per column: padded zero points
		{100, 3, 64, false}, // K padded to 128
		{100, 3, 128, true},
	}
	for _, tc := range tests {
		w := make([]float32, tc.k*tc.n)
		for i := range w {
			w[i] = float32(rng.NormFloat64())
		}
		w[5] = 7 // an outlier
		packed, scales, zps, want := quant.QuantizeNBits4ForTest(w, tc.k, tc.n, tc.block, tc.asym)
		kBlocks := (tc.k + tc.block - 1) / tc.block
		b := onnx.NewBuilder("nbits", 17)
		a := b.AddInput("a", onnx.Float, onnx.Dims(tc.k, tc.k))
		bq := b.AddInitializerUint8("b", []int64{int64(tc.n), int64(kBlocks), int64(tc.block / 2)}, packed)
		sc := b.AddInitializerFloat32("scales", []int64{int64(tc.n * kBlocks)}, scales)
		inputs := []string{a, bq, sc}
		if tc.asym {
			inputs = append(inputs, b.AddInitializerUint8("zp", []int64{int64(len(zps))}, zps))
		}
		b.AddNodeDomain(onnx.MicrosoftDomain, "MatMulNBits", inputs, []string{"y"},
			onnx.AttrInt("K", int64(tc.k)), onnx.AttrInt("N", int64(tc.n)), onnx.AttrInt("bits", 4), onnx.AttrInt("block_size", int64(tc.block)))
		b.AddOutput("y", onnx.Float, onnx.Dims(tc.k, tc.n))
		m, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		s, err := ort.NewSession(saveModel(t, m, "nbits.onnx"), ort.SessionConfig{IntraOpThreads: 1})
		if err != nil {
			t.Fatal(err)
		}
		eye := make([]float32, tc.k*tc.k)
		for i := 0; i < tc.k; i++ {
			eye[i*tc.k+i] = 1
		}
		out, err := s.RunFloat32(ort.Tensor{Shape: []int64{int64(tc.k), int64(tc.k)}, Data: eye})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for i, v := range out[0].Data {
			if math.Abs(float64(v-want[i])) > 1e-6*math.Max(1, math.Abs(float64(want[i]))) {
				if bad++; bad <= 3 {
					t.Errorf("K=%d N=%d block=%d asym=%v: W[%d,%d] ORT %g, ours %g", tc.k, tc.n, tc.block, tc.asym, i/tc.n, i%tc.n, v, want[i])
				}
			}
		}
	}
}
