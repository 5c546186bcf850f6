package quant_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/quant/quanttest"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/ort"
)

// TestCNNOnORT converts a small CNN: int8 puts the convolutions in
// calibrated QDQ form (the fast int8 Conv on the CPU EP; the record names
// each layer's form) and turns the head into DynamicQuantizeMatMul, or
// with conv=integer turns the convolutions (depthwise included) into
// ConvInteger; int8-static puts every convolution in QDQ form
// (int32 bias, requantized output); int4 converts the head only and says
// why the convolutions stay float.
func TestCNNOnORT(t *testing.T) {
	requireORT(t)
	src, err := quanttest.CNN(5, 10)
	if err != nil {
		t.Fatal(err)
	}
	cfg := quanttest.ViTConfig{Image: 32}
	inputs := quanttest.Inputs(cfg, 16, 3)
	ref := runModel(t, saveModel(t, src, "cnn.onnx"), inputs, vitShape(cfg), 8)
	tests := []struct {
		spec              string
		convPrec          quant.Precision
		minCosine         float64
		convInteger, dqmm int
	}{
		{"int8", quant.PrecInt8, 0.995, 0, 1},
		{"int8:conv=integer", quant.PrecInt8, 0.999, 3, 1},
		{"int8:per-tensor,conv=integer", quant.PrecInt8, 0.995, 3, 1},
		{"int4", quant.PrecFP32, 0.99, 0, 0},
		{"int8-static:samples=8", quant.PrecInt8, 0.995, 0, 0},
		{"int8-static:samples=8,act=s8", quant.PrecInt8, 0.995, 0, 0},
		{"fp16", quant.PrecFP16, 0.9999, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			m := src.Clone()
			r, err := quant.Apply(context.Background(), m, quant.MustParseSpec(tc.spec), calibOptions())
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Count("Conv", tc.convPrec); got != 3 {
				t.Errorf("%d Convs in %s, want 3", got, tc.convPrec)
			}
			if got := countNodes(m, "ConvInteger"); got != tc.convInteger {
				t.Errorf("%d ConvInteger nodes, want %d", got, tc.convInteger)
			}
			if got := countNodes(m, "DynamicQuantizeMatMul"); got != tc.dqmm {
				t.Errorf("%d DynamicQuantizeMatMul nodes, want %d", got, tc.dqmm)
			}
			if tc.spec == "int8" {
				forms := map[quant.Form]int{}
				for _, l := range r.Layers {
					forms[l.Form]++
				}
				if forms[quant.FormQDQConv] != 3 || forms[quant.FormDynamic] != 1 || r.Calibration == nil {
					t.Errorf("layer forms %v (calibration %v), want 3 QDQ Convs and a dynamic head", forms, r.Calibration)
				}
			}
			if tc.spec == "int8:conv=integer" && countNodes(m, "DynamicQuantizeLinear") != 3 {
				t.Errorf("%d DynamicQuantizeLinear, want one per Conv input (3)", countNodes(m, "DynamicQuantizeLinear"))
			}
			got := runModel(t, saveModel(t, m, "variant.onnx"), inputs, vitShape(cfg), 8)
			f, err := fidelity.Compare(ref, got)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", tc.spec, f)
			if f.CosineMean < tc.minCosine {
				t.Errorf("fidelity %s, want cosine ≥ %g", f, tc.minCosine)
			}
		})
	}
}

// Without ONNX Runtime to calibrate, int8 on a CNN keeps the convolutions
// in float32 and says so in a warning.
func TestCNNInt8WithoutCalibration(t *testing.T) {
	m, err := quanttest.CNN(5, 10)
	if err != nil {
		t.Fatal(err)
	}
	r, err := quant.Apply(context.Background(), m, quant.MustParseSpec("int8"), quant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Count("Conv", quant.PrecFP32) != 3 || len(r.Warnings) == 0 || !strings.Contains(r.Warnings[0], "convolutions stay float32") {
		t.Errorf("convs %d fp32, warnings %q", r.Count("Conv", quant.PrecFP32), r.Warnings)
	}
}

// int8 on a CNN with the structures of ResNet and MobileNetV2 runs on the
// integers from the first convolution to the pooling: in the session
// ONNX Runtime optimizes, every Conv is a QLinearConv, every residual Add
// a QLinearAdd, SiLU a QLinearSigmoid and a QLinearMul, the Relu, Relu6
// (Clip) and MaxPool run inside them or on uint8, and for int8 one QuantizeLinear (the image) and one
// DequantizeLinear (before the float pooling and head) are left;
// int8-static the same up to its QDQ head.
// The first form quantized each Conv's raw output and ran Relu, Add and
// MaxPool in float between DequantizeLinear and QuantizeLinear: on
// ResNet-50 those conversions took longer than the integer convolutions.
func TestCNNInt8RunsOnIntegers(t *testing.T) {
	requireORT(t)
	src, err := quanttest.ResidualCNN(7, 10)
	if err != nil {
		t.Fatal(err)
	}
	cfg := quanttest.ViTConfig{Image: 32}
	inputs := quanttest.Inputs(cfg, 16, 3)
	ref := runModel(t, saveModel(t, src, "cnn.onnx"), inputs, vitShape(cfg), 8)
	for _, spec := range []string{"int8", "int8-static:samples=8"} {
		t.Run(spec, func(t *testing.T) {
			m := src.Clone()
			r, err := quant.Apply(context.Background(), m, quant.MustParseSpec(spec), calibOptions())
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Count("Conv", quant.PrecInt8); got != 6 {
				t.Errorf("%d Convs int8, want 6", got)
			}
			path := saveModel(t, m, "variant.onnx")
			ran := ranOps(t, path)
			want := map[string]int{"QLinearConv": 6, "QLinearAdd": 2, "QLinearSigmoid": 1, "QLinearMul": 1}
			if spec == "int8" {
				want["QuantizeLinear"], want["DequantizeLinear"] = 1, 1
			}
			for op, n := range want {
				if ran[op] != n {
					t.Errorf("%d %s ran, want %d (ran: %v)", ran[op], op, n, ran)
				}
			}
			for _, op := range []string{"Conv", "Add", "Relu", "Clip", "MaxPool", "Sigmoid", "Mul"} {
				if ran[op] != 0 {
					t.Errorf("%d float %s ran, want none (ran: %v)", ran[op], op, ran)
				}
			}
			got := runModel(t, path, inputs, vitShape(cfg), 8)
			f, err := fidelity.Compare(ref, got)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", spec, f)
			if f.CosineMean < 0.999 {
				t.Errorf("fidelity %s, want cosine ≥ 0.999", f)
			}
		})
	}
}

// ranOps runs the model at path once, optimized as a session runs it,
// under ONNX Runtime's profiler and counts the nodes that ran per
// operator type.
func ranOps(t testing.TB, path string) map[string]int {
	t.Helper()
	cfg := ort.SessionConfig{IntraOpThreads: 1, ProfilePrefix: filepath.Join(t.TempDir(), "p")}
	bd, err := ort.NewBound(path, cfg, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer bd.Close()
	if err := bd.Run(); err != nil {
		t.Fatal(err)
	}
	prof, err := bd.EndProfile()
	if err != nil {
		t.Fatal(err)
	}
	p, err := bench.ParseOpProfile(prof.Raw, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, o := range p.Ops {
		out[o.Op] += o.Nodes
	}
	return out
}

// int8:keep-first on a CNN keeps the stem in float32 and says why once:
// the dynamic pass that follows the QDQ convolutions does not add a
// second reason for the same node.
func TestCNNKeepFirstKeptOnce(t *testing.T) {
	requireORT(t)
	m, err := quanttest.CNN(5, 10)
	if err != nil {
		t.Fatal(err)
	}
	r, err := quant.Apply(context.Background(), m, quant.MustParseSpec("int8:keep-first"), calibOptions())
	if err != nil {
		t.Fatal(err)
	}
	var stem []quant.KeptNode
	for _, k := range r.Kept {
		if k.Node == "stem" {
			stem = append(stem, k)
		}
	}
	if len(stem) != 1 || !strings.Contains(stem[0].Reason, "keep-first") {
		t.Errorf("kept entries for the stem: %+v, want one saying keep-first", stem)
	}
}
