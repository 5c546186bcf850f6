package zoo_test

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/ort"
)

// requireORT loads ONNX Runtime or skips; under `make test`
// (QUANTSCOPE_REQUIRE_ORT=1) a missing library fails the test instead.
func requireORT(t testing.TB) {
	t.Helper()
	info := ort.Probe("")
	if !info.OK() {
		if os.Getenv("QUANTSCOPE_REQUIRE_ORT") != "" {
			t.Fatalf("ONNX Runtime required but not loaded: %v", info.Err)
		}
		t.Skipf("ONNX Runtime not installed (run `make setup`): %v", info.Err)
	}
}

// largeTests reports whether the models above 100M parameters run too
// (QUANTSCOPE_LARGE_TESTS=1): minutes and several GB.
func largeTests() bool { return os.Getenv("QUANTSCOPE_LARGE_TESTS") != "" }

// images returns n normalized-looking images: values of a standard
// normal, deterministic from seed.
func images(seed uint64, n, res int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]float32, n*3*res*res)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}

// run runs a session on a batch of images and returns the one output.
func run(t testing.TB, sess *ort.Session, batch, res int, data []float32) ort.Tensor {
	t.Helper()
	out, err := sess.RunFloat32(ort.Tensor{Shape: []int64{int64(batch), 3, int64(res), int64(res)}, Data: data})
	if err != nil {
		t.Fatalf("batch %d: %v", batch, err)
	}
	if len(out) != 1 {
		t.Fatalf("%d outputs", len(out))
	}
	return out[0]
}

// Every catalog model up to 100M parameters runs in ONNX Runtime with
// batch 1 and 2: the right output shape, finite values in a trained
// network's range, the same result for an image whatever the batch, and
// different results for different images.
func TestCatalogRunsInONNXRuntime(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	for _, s := range zoo.Catalog() {
		large := s.Params > 100_000_000
		t.Run(s.Name, func(t *testing.T) {
			if large && !largeTests() {
				t.Skipf("%d parameters: set QUANTSCOPE_LARGE_TESTS=1", s.Params)
			}
			start := time.Now()
			r, err := zoo.Ensure(context.Background(), s, zoo.WithCacheDir(dir))
			if err != nil {
				t.Fatal(err)
			}
			built := time.Since(start)
			start = time.Now()
			sess, err := ort.NewSession(r.Path, ort.SessionConfig{IntraOpThreads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			if len(sess.Inputs) != 1 || sess.Inputs[0].Name != zoo.InputName || len(sess.Outputs) != 1 || sess.Outputs[0].Name != string(s.Output) {
				t.Fatalf("session inputs %v outputs %v", sess.Inputs, sess.Outputs)
			}
			loaded := time.Since(start)
			res := s.Resolution
			imgs := images(1, 2, res)
			start = time.Now()
			one := run(t, sess, 1, res, imgs[:3*res*res])
			two := run(t, sess, 2, res, imgs)
			ran := time.Since(start)
			dim := int64(s.OutputDim)
			if !equalShape(one.Shape, 1, dim) || !equalShape(two.Shape, 2, dim) {
				t.Fatalf("shapes %v and %v, want [1 %d] and [2 %d]", one.Shape, two.Shape, dim, dim)
			}
			var maxAbs, diff, rms float64
			for i, v := range two.Data {
				f := float64(v)
				if math.IsNaN(f) || math.IsInf(f, 0) {
					t.Fatalf("output %d is %v", i, v)
				}
				maxAbs = max(maxAbs, math.Abs(f))
				rms += f * f
				if i < int(dim) {
					diff = max(diff, math.Abs(f-float64(one.Data[i])))
				}
			}
			rms = math.Sqrt(rms / float64(len(two.Data)))
			// Activations stay in range: well inside float16's 65504.
			if maxAbs > 1e3 || rms < 1e-3 {
				t.Errorf("outputs out of range: max |y| %g, rms %g", maxAbs, rms)
			}
			if diff > 1e-4*max(1, maxAbs) {
				t.Errorf("image 0 gives different outputs alone and in a batch of 2 (max diff %g)", diff)
			}
			var between float64
			for i := range dim {
				between = max(between, math.Abs(float64(two.Data[i]-two.Data[dim+i])))
			}
			if between < 1e-3*rms {
				t.Errorf("two different images give the same output (max diff %g)", between)
			}
			t.Logf("%s: build %v, session %v, batch 1 + batch 2 %v, max |y| %.3g", s.Name,
				built.Round(time.Millisecond), loaded.Round(time.Millisecond), ran.Round(time.Millisecond), maxAbs)
		})
	}
}

func equalShape(got []int64, want ...int64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// Newer opsets (Gelu operator, ReduceMean axes input, IR version 11) run
// and give the same results as opset 17.
func TestOpsetsAgree(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	s := zoo.Spec{Name: "tiny-beit", Resolution: 32, Preprocess: zoo.InceptionNorm,
		Arch: zoo.ViTConfig{Flavor: zoo.FlavorBEiT, Dim: 32, Depth: 2, Heads: 2, MLPDim: 64, Patch: 8, Classes: 10, LayerScale: 0.1}}
	img := images(3, 1, 32)
	var ref []float32
	for _, opset := range []int64{17, 18, 20, 21, 23} {
		r, err := zoo.Ensure(context.Background(), s, zoo.WithCacheDir(dir), zoo.WithOpset(opset))
		if err != nil {
			t.Fatal(err)
		}
		sess, err := ort.NewSession(r.Path, ort.SessionConfig{IntraOpThreads: 1})
		if err != nil {
			t.Fatalf("opset %d: %v", opset, err)
		}
		out := run(t, sess, 1, 32, img)
		sess.Close()
		if ref == nil {
			ref = out.Data
			continue
		}
		for i := range ref {
			if math.Abs(float64(ref[i]-out.Data[i])) > 1e-5 {
				t.Fatalf("opset %d: output %d is %g, opset 17 gives %g", opset, i, out.Data[i], ref[i])
			}
		}
	}
}
