package quant_test

import (
	"context"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/quant/quanttest"
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
