package optimize_test

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/profiler/ort"
)

// requireORT loads ONNX Runtime or skips; under `make test`
// (QUANTSCOPE_REQUIRE_ORT=1) a missing library fails the test instead.
func requireORT(t testing.TB) {
	t.Helper()
	if _, err := ort.Init(""); err != nil {
		if os.Getenv("QUANTSCOPE_REQUIRE_ORT") != "" {
			t.Fatalf("ONNX Runtime required but not loaded: %v", err)
		}
		t.Skipf("ONNX Runtime not installed (run `make setup`): %v", err)
	}
}

// perturb adds seeded noise to the model's float initializers so that
// biases, LayerNorm scales and shifts, LayerScale factors and relative
// position tables (zero or one in the zoo's synthetic weights) all matter
// in the numerical comparisons.
func perturb(t testing.TB, m *onnx.Model, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	for i, init := range m.Graph().GetInitializer() {
		if onnx.DataTypeOf(init) != onnx.Float {
			continue
		}
		v, err := onnx.TensorFloat32(init)
		if err != nil {
			t.Fatal(err)
		}
		std := 0.0
		switch {
		case len(init.GetDims()) <= 1:
			std = 0.2
		case strings.Contains(init.GetName(), "relative_position_bias_table"):
			std = 0.5
		}
		if std == 0 {
			continue
		}
		for j := range v {
			v[j] += float32(r.NormFloat64() * std)
		}
		nt, err := onnx.NewTensorFloat32(init.GetName(), init.GetDims(), v)
		if err != nil {
			t.Fatal(err)
		}
		m.Graph().Initializer[i] = nt
	}
}

// save writes m to a temporary file and returns its path.
func save(t testing.TB, m *onnx.Model, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
		t.Fatalf("save %s: %v", name, err)
	}
	return path
}

// run runs the model at path on one input with ONNX Runtime (graph
// optimizations on unless noOpt) and returns the first output.
func run(t testing.TB, path string, input ort.Tensor, noOpt bool) []float32 {
	t.Helper()
	s, err := ort.NewSession(path, ort.SessionConfig{IntraOpThreads: 1, DisableOptimizations: noOpt})
	if err != nil {
		t.Fatalf("open %s: %v", filepath.Base(path), err)
	}
	defer s.Close()
	out, err := s.RunFloat32(input)
	if err != nil {
		t.Fatalf("run %s: %v", filepath.Base(path), err)
	}
	return out[0].Data
}

// compare returns the cosine similarity of a and b and their largest
// absolute difference.
func compare(a, b []float32) (cos, maxAbs float64) {
	if len(a) != len(b) {
		return math.NaN(), math.Inf(1)
	}
	var dot, na, nb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
		maxAbs = math.Max(maxAbs, math.Abs(x-y))
	}
	if na == 0 && nb == 0 {
		return 1, maxAbs
	}
	return dot / math.Sqrt(na*nb), maxAbs
}

// randomInput returns a seeded standard-normal tensor.
func randomInput(shape []int64, seed uint64) ort.Tensor {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	return ort.Tensor{Shape: shape, Data: data}
}

// ops counts a model's nodes by operator key ("MatMul",
// "com.microsoft.MultiHeadAttention").
func ops(m *onnx.Model) map[string]int { return m.Stats().NodesByOp }

// apply optimizes a clone of m and returns it with the report.
func apply(t testing.TB, m *onnx.Model, opts optimize.Options) (*onnx.Model, *optimize.Report) {
	t.Helper()
	c := m.Clone()
	r, err := optimize.Apply(context.Background(), c, opts)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return c, r
}

// equivalent runs the unfused model (ONNX Runtime's optimizations off:
// the plain graph) and the fused one (optimizations on, as sessions run
// it, and off) on input and checks that the outputs agree.
func equivalent(t testing.TB, unfused, fused *onnx.Model, input ort.Tensor, minCos float64) {
	t.Helper()
	requireORT(t)
	ref := run(t, save(t, unfused, "unfused.onnx"), input, true)
	fp := save(t, fused, "fused.onnx")
	for _, noOpt := range []bool{false, true} {
		got := run(t, fp, input, noOpt)
		cos, maxAbs := compare(ref, got)
		t.Logf("fused (ORT optimizations off=%v) vs unfused: cosine %.9f, max abs error %.3g", noOpt, cos, maxAbs)
		if !(cos >= minCos) {
			t.Errorf("fused (ORT optimizations off=%v): cosine %.9f < %v (max abs error %.3g)", noOpt, cos, minCos, maxAbs)
		}
	}
}
