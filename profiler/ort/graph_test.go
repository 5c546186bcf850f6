package ort

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
)

// TestRuntimeRunsBuilderGraph builds MatMul → Add → Softmax → LayerNormalization
// with models/onnx, saves it (weights as external data), runs it in ONNX Runtime
// and compares with the same computation in plain Go.
func TestRuntimeRunsBuilderGraph(t *testing.T) {
	requireORT(t)
	const k, n = 16, 8
	rng := rand.New(rand.NewPCG(1, 2))
	randn := func(size int) []float32 {
		out := make([]float32, size)
		for i := range out {
			out[i] = float32(rng.NormFloat64())
		}
		return out
	}
	w, bias, gamma, beta := randn(k*n), randn(n), randn(n), randn(n)

	b := onnx.NewBuilder("mm_add_softmax_ln", 17)
	b.AddInput("x", onnx.Float, onnx.Dims("batch", k))
	b.AddInitializerFloat32("w", []int64{k, n}, w)
	b.AddInitializerFloat32("bias", []int64{n}, bias)
	b.AddInitializerFloat32("gamma", []int64{n}, gamma)
	b.AddInitializerFloat32("beta", []int64{n}, beta)
	b.AddNode("MatMul", []string{"x", "w"}, []string{"mm"})
	b.AddNode("Add", []string{"mm", "bias"}, []string{"z"})
	b.AddNode("Softmax", []string{"z"}, []string{"p"}, onnx.AttrInt("axis", -1))
	b.AddNode("LayerNormalization", []string{"p", "gamma", "beta"}, []string{"y"},
		onnx.AttrInt("axis", -1), onnx.AttrFloat("epsilon", 1e-5))
	b.AddOutput("y", onnx.Float, onnx.Dims("batch", n))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "g.onnx")
	if err := onnx.Save(m, path, onnx.SaveOptions{ExternalData: true, SizeThreshold: 16}); err != nil {
		t.Fatal(err)
	}

	sess, err := NewSession(path, SessionConfig{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	const batch = 3
	x := randn(batch * k)
	out, err := sess.RunFloat32(Tensor{Shape: []int64{batch, k}, Data: x})
	if err != nil {
		t.Fatal(err)
	}
	if got := out[0].Shape; len(got) != 2 || got[0] != batch || got[1] != n {
		t.Fatalf("output shape %v, want [%d %d]", got, batch, n)
	}
	want := referenceForward(x, w, bias, gamma, beta, batch, k, n)
	for i := range want {
		if d := math.Abs(float64(out[0].Data[i] - want[i])); d > 1e-5 {
			t.Errorf("y[%d] = %v, Go reference %v (|diff| %.2g > 1e-5)", i, out[0].Data[i], want[i], d)
		}
	}
}

// referenceForward computes LayerNorm(Softmax(x·w + bias)) in float64.
func referenceForward(x, w, bias, gamma, beta []float32, batch, k, n int) []float32 {
	y := make([]float32, batch*n)
	z := make([]float64, n)
	for r := 0; r < batch; r++ {
		maxZ := math.Inf(-1)
		for j := 0; j < n; j++ {
			s := float64(bias[j])
			for i := 0; i < k; i++ {
				s += float64(x[r*k+i]) * float64(w[i*n+j])
			}
			z[j] = s
			maxZ = math.Max(maxZ, s)
		}
		var sum float64
		for j := range z {
			z[j] = math.Exp(z[j] - maxZ)
			sum += z[j]
		}
		var mean float64
		for j := range z {
			z[j] /= sum
			mean += z[j]
		}
		mean /= float64(n)
		var variance float64
		for j := range z {
			variance += (z[j] - mean) * (z[j] - mean)
		}
		variance /= float64(n)
		for j := range z {
			y[r*n+j] = float32((z[j]-mean)/math.Sqrt(variance+1e-5)*float64(gamma[j]) + float64(beta[j]))
		}
	}
	return y
}
