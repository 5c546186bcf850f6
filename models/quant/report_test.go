package quant

import (
	"math"
	"testing"

	"github.com/quantscope/quantscope/models/quant/quanttest"
)

// TestConvIntegers counts the ConvInteger layers of real transforms: none
// for a ViT, whose only Conv (the patch embedding) becomes a MatMul over
// patches, and one per convolution for a CNN with conv=integer.
func TestConvIntegers(t *testing.T) {
	vit := apply(t, tinyViT(t), "int8", Options{})
	if vit.Converted("Conv") != 1 || vit.ConvIntegers() != 0 {
		t.Errorf("ViT int8: %d Convs converted, %d ConvIntegers; want 1 and 0", vit.Converted("Conv"), vit.ConvIntegers())
	}
	patch := 0
	for _, w := range vit.Rewrites {
		if isPatchNote(w) {
			patch++
		}
	}
	if patch != 1 {
		t.Errorf("ViT int8 rewrites %q: want one patch-embedding note", vit.Rewrites)
	}
	cnn, err := quanttest.CNN(5, 10)
	if err != nil {
		t.Fatal(err)
	}
	r := apply(t, cnn, "int8:conv=integer", Options{})
	if got := r.ConvIntegers(); got != 3 {
		t.Errorf("CNN int8:conv=integer: %d ConvIntegers, want 3", got)
	}
}

// TestReportFigures checks the figures read from a report, including a
// report written before layers had forms (the older quantizer's notes).
func TestReportFigures(t *testing.T) {
	convs := []OpPrecision{{Op: "Conv", Nodes: map[Precision]int{PrecInt8: 3, PrecFP32: 1}}}
	tests := []struct {
		name         string
		r            *Report
		convIntegers int
		coverage     float64 // NaN: unknown
	}{
		{"nil", nil, 0, math.NaN()},
		{"forms", &Report{Ops: convs, Layers: []LayerForm{{Form: FormConvInteger}, {Form: FormQDQConv}, {Form: FormQDQConv}},
			WeightBytes: map[int]int64{8: 300, 32: 100, 0: 50}}, 1, 0.75},
		{"calibrated convs are not ConvInteger", &Report{Ops: convs, Layers: []LayerForm{{Form: FormQDQConv}}}, 0, math.NaN()},
		{"legacy: converted Convs", &Report{Ops: convs, WeightBytes: map[int]int64{4: 10, 16: 10, 32: 80}}, 3, 0.2},
		{"legacy: patch embedding", &Report{Ops: convs, Rewrites: []string{patchNote("/patch_embed/proj/Conv", 16, 16), "Gemm /head/Gemm rewritten as a MatMul (+ bias)"}}, 2, math.NaN()},
		{"only other bytes", &Report{WeightBytes: map[int]int64{0: 10}}, 0, math.NaN()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.ConvIntegers(); got != tc.convIntegers {
				t.Errorf("ConvIntegers = %d, want %d", got, tc.convIntegers)
			}
			c, ok := tc.r.Coverage()
			if ok != !math.IsNaN(tc.coverage) || ok && math.Abs(c-tc.coverage) > 1e-12 {
				t.Errorf("Coverage = %v, %v; want %v", c, ok, tc.coverage)
			}
		})
	}
}
