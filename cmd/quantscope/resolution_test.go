package main

import (
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/profiler/study"
)

// symbolicSizeModel writes a [batch, 3, h, w] → 10-class CNN (Conv,
// GlobalAveragePool, MatMul) that runs at any image size; declared, when
// > 0, is the size its metadata asks for.
func symbolicSizeModel(t *testing.T, dir string, declared int) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	conv := make([]float32, 8*3*3*3)
	for i := range conv {
		conv[i] = float32(rng.NormFloat64() * 0.2)
	}
	fc := make([]float32, 8*10)
	for i := range fc {
		fc[i] = float32(rng.NormFloat64() * 0.3)
	}
	b := onnx.NewBuilder("anysize", 17)
	b.AddInput("pixel_values", onnx.Float, onnx.Dims("batch", 3, "h", "w"))
	b.AddInitializerFloat32("conv_w", []int64{8, 3, 3, 3}, conv)
	b.AddInitializerFloat32("fc_w", []int64{8, 10}, fc)
	b.AddNode("Conv", []string{"pixel_values", "conv_w"}, []string{"c"}, onnx.AttrInts("pads", 1, 1, 1, 1))
	b.AddNode("GlobalAveragePool", []string{"c"}, []string{"p"})
	b.AddNode("Flatten", []string{"p"}, []string{"f"}, onnx.AttrInt("axis", 1))
	b.AddNode("MatMul", []string{"f", "fc_w"}, []string{"logits"})
	b.AddOutput("logits", onnx.Float, onnx.Dims("batch", 10))
	if declared > 0 {
		b.SetMetadata("quantscope.resolution", strconv.Itoa(declared))
	}
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "anysize.onnx")
	if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSymbolicSizeOneBehaviour: a model with symbolic height and width is
// accepted by quantize and by bench alike, and both run it at the size it
// declares, or at --resolution: the worker no longer refuses what
// quantize took. A fixed-size model refuses another --resolution up front.
func TestSymbolicSizeOneBehaviour(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	model := symbolicSizeModel(t, dir, 48)
	if _, _, err := quantizeCLI(t, "--model", model, "--precision", "int8", "--check", "--check-samples", "4", "--batch", "2", "--resolution", "40"); err != nil {
		t.Fatalf("quantize --check --resolution 40: %v", err)
	}
	for _, args := range [][]string{{}, {"--resolution", "64"}} {
		out := filepath.Join(dir, "r"+strings.Join(args, "")+".jsonl")
		full := append([]string{"bench", "--models", model, "--precisions", "int8", "--duration", "200ms", "--threads", "1", "--batch", "2", "--out", out}, args...)
		_, stderr, code := cli(t, dir, full...)
		if code != 0 {
			t.Fatalf("bench %v: exit %d\n%s", args, code, stderr)
		}
		recs, _, _ := study.ReadResults(out)
		if len(recs) != 2 || !recs[1].OK() || recs[1].Metrics.Fidelity == nil {
			t.Fatalf("bench %v: %+v", args, recs)
		}
		if len(args) > 0 && recs[0].Experiment.Resolution != 64 {
			t.Errorf("the experiment does not say it ran at 64: %+v", recs[0].Experiment)
		}
	}
	if est, err := study.EstimateMemory(model, 1, 0); err != nil || est.PerSampleBytes < 3*48*48*4 || est.PerSampleBytes >= 3*64*64*4 {
		t.Errorf("declared size not used for the estimate: %+v %v", est, err)
	}
	fixed := tinyImageModel(t, dir) // 8×8
	_, stderr, code := cli(t, dir, "bench", "--models", fixed, "--resolution", "64", "--out", filepath.Join(dir, "x.jsonl"))
	if code != 2 || !strings.Contains(stderr, "fixed 8×8 size") {
		t.Errorf("fixed-size model at --resolution 64: exit %d\n%s", code, stderr)
	}
}
