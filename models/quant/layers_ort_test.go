package quant_test

import (
	"context"
	"testing"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/quant/quanttest"
)

// A mixed int4/int8/fp32 variant runs on ONNX Runtime, and its fidelity
// lies between all-int4's and all-int8's.
func TestLayerChoiceRunsOnORT(t *testing.T) {
	requireORT(t)
	cfg := quanttest.Small
	src := buildViT(t, cfg)
	inputs := evalInputs(cfg, 16)
	ref := runModel(t, saveModel(t, src, "fp32.onnx"), inputs, vitShape(cfg), 8)
	sqnr := map[string]float64{}
	for _, spec := range []string{"int4", "int8", "int4:int8=blocks.0+blocks.1,keep=head", "int8:int4=blocks.3"} {
		m := src.Clone()
		if _, err := quant.Apply(context.Background(), m, quant.MustParseSpec(spec), quant.Options{}); err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		got := runModel(t, saveModel(t, m, "v.onnx"), inputs, vitShape(cfg), 8)
		f, err := fidelity.Compare(ref, got)
		if err != nil {
			t.Fatal(err)
		}
		sqnr[spec] = f.SQNRdB
	}
	if mixed := sqnr["int4:int8=blocks.0+blocks.1,keep=head"]; !(mixed > sqnr["int4"] && mixed < sqnr["int8"]) {
		t.Errorf("SQNR int4 %.1f, mixed %.1f, int8 %.1f dB: mixed not between", sqnr["int4"], mixed, sqnr["int8"])
	}
	if m := sqnr["int8:int4=blocks.3"]; !(m < sqnr["int8"] && m > sqnr["int4"]) {
		t.Errorf("int8 with one int4 block: %.1f dB, not between %.1f and %.1f", m, sqnr["int4"], sqnr["int8"])
	}
}
