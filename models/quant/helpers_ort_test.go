package quant_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/quant/quanttest"
	"github.com/quantscope/quantscope/profiler/ort"
)

// requireORT skips the test when ONNX Runtime is not installed; under
// `make test` (QUANTSCOPE_REQUIRE_ORT set) it fails instead.
func requireORT(t testing.TB) {
	t.Helper()
	if _, err := ort.Init(""); err != nil {
		if os.Getenv("QUANTSCOPE_REQUIRE_ORT") != "" {
			t.Fatalf("ONNX Runtime required but not loaded: %v", err)
		}
		t.Skipf("ONNX Runtime not installed (run `make setup`): %v", err)
	}
}

// saveModel writes m to a temporary file and returns its path.
func saveModel(t testing.TB, m *onnx.Model, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
		t.Fatalf("save %s: %v", name, err)
	}
	return path
}

// runModel runs the model at path on samples (each one input of shape
// sampleShape), batch at a time, and returns one output row per sample.
func runModel(t testing.TB, path string, samples [][]float32, sampleShape []int64, batch int) [][]float32 {
	t.Helper()
	s, err := ort.NewSession(path, ort.SessionConfig{IntraOpThreads: 1})
	if err != nil {
		t.Fatalf("open %s: %v", filepath.Base(path), err)
	}
	defer s.Close()
	per := 1
	for _, d := range sampleShape {
		per *= int(d)
	}
	var rows [][]float32
	for i := 0; i < len(samples); i += batch {
		n := min(batch, len(samples)-i)
		data := make([]float32, 0, n*per)
		for _, smp := range samples[i : i+n] {
			data = append(data, smp...)
		}
		shape := append([]int64{int64(n)}, sampleShape...)
		out, err := s.RunFloat32(ort.Tensor{Shape: shape, Data: data})
		if err != nil {
			t.Fatalf("run %s: %v", filepath.Base(path), err)
		}
		width := len(out[0].Data) / n
		for j := 0; j < n; j++ {
			rows = append(rows, out[0].Data[j*width:(j+1)*width])
		}
	}
	return rows
}

// vitShape is the per-sample input shape of a quanttest ViT.
func vitShape(cfg quanttest.ViTConfig) []int64 {
	return []int64{3, int64(cfg.Image), int64(cfg.Image)}
}

// buildViT builds a quanttest ViT or fails the test.
func buildViT(t testing.TB, cfg quanttest.ViTConfig) *onnx.Model {
	t.Helper()
	m, err := quanttest.ViT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func tinyCfg() quanttest.ViTConfig { return quanttest.Tiny }

func tinyInputs(cfg quanttest.ViTConfig, n int) [][]float32 { return quanttest.Inputs(cfg, n, 11) }

// countNodes counts the nodes of op type op in m's graph.
func countNodes(m *onnx.Model, op string) int {
	n := 0
	for _, nd := range m.Graph().GetNode() {
		if nd.GetOpType() == op {
			n++
		}
	}
	return n
}

// evalInputs returns n seeded synthetic images for cfg's input size, from
// another seed than calibration's default.
func evalInputs(cfg quanttest.ViTConfig, n int) [][]float32 {
	in := quant.ImageInput{Channels: 3, Height: cfg.Image, Width: cfg.Image}
	out := make([][]float32, n)
	for i := range out {
		out[i] = quant.SyntheticImage(in, quant.Preprocess{}, 1234, i)
	}
	return out
}
