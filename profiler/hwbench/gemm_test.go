package hwbench

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/profiler/ort"
)

func requireORT(t *testing.T) {
	t.Helper()
	if _, err := ort.Init(""); err != nil {
		if os.Getenv("QUANTSCOPE_REQUIRE_ORT") != "" {
			t.Fatalf("ONNX Runtime required: %v", err)
		}
		t.Skipf("ONNX Runtime not installed (run `make setup`): %v", err)
	}
}

// initializer returns a model's initializer by name.
func initializer(t *testing.T, m *onnx.Model, name string) []float32 {
	t.Helper()
	for _, in := range m.Graph().GetInitializer() {
		if in.GetName() != name {
			continue
		}
		switch in.GetDataType() {
		case int32(onnx.Float):
			v, err := onnx.TensorFloat32(in)
			if err != nil {
				t.Fatal(err)
			}
			return v
		case int32(onnx.Float16):
			v, err := onnx.TensorFloat16(in)
			if err != nil {
				t.Fatal(err)
			}
			return onnx.Float16sToFloat32s(v)
		case int32(onnx.Int8):
			v, err := onnx.TensorInt8(in)
			if err != nil {
				t.Fatal(err)
			}
			out := make([]float32, len(v))
			for i, x := range v {
				out[i] = float32(x)
			}
			return out
		}
	}
	t.Fatalf("no initializer %q", name)
	return nil
}

// matmul is x[rows,k] · w[k,n].
func matmul(x []float32, rows, k int, w []float32, n int) []float32 {
	out := make([]float32, rows*n)
	for r := 0; r < rows; r++ {
		for j := 0; j < n; j++ {
			var s float64
			for i := 0; i < k; i++ {
				s += float64(x[r*k+i]) * float64(w[i*n+j])
			}
			out[r*n+j] = float32(s)
		}
	}
	return out
}

// relErr is ‖a − b‖ / ‖b‖.
func relErr(a, b []float32) float64 {
	var d, n float64
	for i := range a {
		d += float64(a[i]-b[i]) * float64(a[i]-b[i])
		n += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(d / n)
}

// TestGEMMModelsComputeWhatTheyClaim runs every GEMM form on ONNX Runtime's
// CPU EP and checks the product against one computed here: a GEMM that
// silently did less work would measure a false peak.
func TestGEMMModelsComputeWhatTheyClaim(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	const rows, k = 3, 16
	for _, tc := range []struct {
		g   GEMM
		tol float64
	}{
		{GEMM{Precision: FP32, K: k, Layers: 3}, 1e-5},
		{GEMM{Precision: TF32, K: k, Layers: 3}, 1e-5},
		{GEMM{Precision: FP16, K: k, Layers: 3}, 3e-3},
		{GEMM{Precision: INT8, K: k, Layers: 2}, 0.05},
		{GEMM{Precision: INT8, K: k, Layers: 2, GPU: true}, 0},
	} {
		t.Run(tc.g.FileName(), func(t *testing.T) {
			m, err := tc.g.Build()
			if err != nil {
				t.Fatal(err)
			}
			path, err := tc.g.Ensure(dir)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ort.NewBound(path, ort.SessionConfig{IntraOpThreads: 1}, rows, 7)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := b.Run(); err != nil {
				t.Fatal(err)
			}
			x, got := b.Input(0), b.Output(0)
			w := initializer(t, m, "w")
			var want []float32
			switch {
			case tc.g.Precision == INT8 && tc.g.GPU:
				// One integer GEMM of the quantized first row against K×(K·layers).
				q := make([]float32, k)
				for i := range q {
					q[i] = float32(max(-128, min(127, math.RoundToEven(float64(x[i])*32))))
				}
				want = matmul(q, 1, k, w, k*tc.g.Layers)
			case tc.g.Precision == INT8:
				scale := initializer(t, m, "w_scale")[0]
				deq := make([]float32, len(w))
				for i, v := range w {
					deq[i] = v * scale
				}
				want = x
				for l := 0; l < tc.g.Layers; l++ {
					want = matmul(want, rows, k, deq, k)
				}
			default:
				want = x
				for l := 0; l < tc.g.Layers; l++ {
					want = matmul(want, rows, k, w, k)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d outputs, want %d", len(got), len(want))
			}
			if e := relErr(got, want); e > tc.tol || math.IsNaN(e) {
				t.Errorf("relative error %.3g, want ≤ %g", e, tc.tol)
			}
			if tc.g.FLOPsPerRow() != 2*k*k*float64(tc.g.Layers) {
				t.Errorf("FLOPs per row %v", tc.g.FLOPsPerRow())
			}
		})
	}
}

func TestStreamModel(t *testing.T) {
	requireORT(t)
	s := Stream{Elems: 64, Layers: 4}
	path, err := s.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ort.NewBound(path, ort.SessionConfig{IntraOpThreads: 1}, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	for i, x := range b.Input(0) {
		want := ((x*0.5+0.25)*0.5 + 0.25)
		if got := b.Output(0)[i]; math.Abs(float64(got-want)) > 1e-6 {
			t.Fatalf("y[%d] = %v, want %v", i, got, want)
		}
	}
	if s.BytesPerRow() != 2*4*64*4 {
		t.Errorf("bytes per row %v", s.BytesPerRow())
	}
	if _, err := (Stream{}).Build(); err == nil {
		t.Error("an empty stream model built")
	}
}

func TestGEMMFilesAndValidation(t *testing.T) {
	names := map[string]bool{}
	for _, g := range []GEMM{
		{Precision: FP32, K: 64, Layers: 2}, {Precision: FP16, K: 64, Layers: 2}, {Precision: INT8, K: 64, Layers: 2},
		{Precision: INT8, K: 64, Layers: 2, GPU: true}, {Precision: FP32, K: 128, Layers: 2}, {Precision: FP32, K: 64, Layers: 3},
	} {
		if names[g.FileName()] {
			t.Errorf("two configurations share %s", g.FileName())
		}
		names[g.FileName()] = true
	}
	if (GEMM{Precision: TF32, K: 64, Layers: 2}).FileName() != (GEMM{Precision: FP32, K: 64, Layers: 2}).FileName() {
		t.Error("TF32 and FP32 should share the FP32 graph")
	}
	for _, bad := range []GEMM{{Precision: "bf16", K: 64, Layers: 1}, {Precision: FP32, K: 6, Layers: 1}, {Precision: FP32, K: 64}} {
		if _, err := bad.Build(); err == nil {
			t.Errorf("%+v built", bad)
		}
		if _, err := bad.Ensure(t.TempDir()); err == nil {
			t.Errorf("%+v saved", bad)
		}
	}
	// A cached file is reused, not rewritten.
	dir := t.TempDir()
	g := GEMM{Precision: FP32, K: 32, Layers: 1}
	p1, err := g.Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(p1, old, old); err != nil {
		t.Fatal(err)
	}
	p2, err := g.Ensure(dir)
	if st, _ := os.Stat(p2); err != nil || p2 != p1 || !st.ModTime().Equal(old) {
		t.Errorf("second Ensure: %s %v (rewritten: %v)", p2, err, !st.ModTime().Equal(old))
	}
	if _, err := g.Ensure(filepath.Join(p1, "not-a-dir")); err == nil {
		t.Error("Ensure under a file succeeded")
	}
}
