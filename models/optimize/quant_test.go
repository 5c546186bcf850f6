package optimize_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/ort"
)

// quantize converts a clone of m to spec.
func quantize(t testing.TB, m *onnx.Model, spec string) (*onnx.Model, *quant.Report) {
	t.Helper()
	c, r, err := quantizeClone(m, spec)
	if err != nil {
		t.Fatal(err)
	}
	return c, r
}

func quantizeClone(m *onnx.Model, spec string) (*onnx.Model, *quant.Report, error) {
	sp, err := quant.ParseSpec(spec)
	if err != nil {
		return nil, nil, err
	}
	var opts quant.Options
	if sp.Kind == quant.Int8Static {
		opts.Calibration = quant.Calibration{Runner: ort.CalibRunner{Config: ort.SessionConfig{IntraOpThreads: 1}}, BatchSize: 2}
	}
	c := m.Clone()
	r, err := quant.Apply(context.Background(), c, sp, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("quantize to %s: %w", spec, err)
	}
	return c, r, nil
}

// floatLinears counts default-domain MatMul and Gemm nodes whose weight is
// a constant: the linear layers a quantizer left in float.
func floatLinears(m *onnx.Model) int {
	consts := map[string]bool{}
	for _, t := range m.Graph().GetInitializer() {
		consts[t.GetName()] = true
	}
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == "Constant" {
			consts[n.GetOutput()[0]] = true
		}
	}
	c := 0
	for _, n := range m.Graph().GetNode() {
		if (n.GetOpType() == "MatMul" || n.GetOpType() == "Gemm") && n.GetDomain() == "" && len(n.GetInput()) > 1 && consts[n.GetInput()[1]] {
			c++
		}
	}
	return c
}

// The fusions survive quantization: int8 and int4 quantize every linear
// layer of the fused graph (the q, k and v projections feeding
// MultiHeadAttention, the MLP MatMuls feeding BiasGelu), the fused
// operators stay, and the quantized fused model computes what the
// quantized unfused one does. fp16 converts the fused graph too.
func TestFusionsSurviveQuantization(t *testing.T) {
	for _, fc := range []familyCase{familyCases()[0], familyCases()[4], familyCases()[5]} { // ViT, BEiT, CLIP
		m := buildTiny(t, fc)
		fused, _ := apply(t, m, optimize.Default())
		for _, tc := range []struct {
			spec, op string
			minCos   float64 // quantized fused vs quantized unfused
		}{
			{"int8", "com.microsoft.DynamicQuantizeMatMul", 0.9995},
			{"int4", "com.microsoft.MatMulNBits", 0.9999},
			{"fp16", "", 0.999},
			{"int8-static", "", 0.99},
		} {
			t.Run(fc.name+"/"+tc.spec, func(t *testing.T) {
				if tc.spec == "int8-static" {
					requireORT(t) // calibration runs the model
				}
				qu, _ := quantize(t, m, tc.spec)
				qf, r := quantize(t, fused, tc.spec)
				got, ref := ops(qf), ops(qu)
				for _, op := range []string{"com.microsoft.MultiHeadAttention", "com.microsoft.SkipLayerNormalization"} {
					if got[op] != ops(fused)[op] {
						t.Errorf("%s: %d left of %d", op, got[op], ops(fused)[op])
					}
				}
				if tc.op != "" {
					if n := floatLinears(qf); n != 0 {
						t.Errorf("%d linear layers left in float (kept: %v)", n, r.Kept)
					}
					// The QKV projection is three MatMuls after fusion.
					if want := ref[tc.op] + 2*2; got[tc.op] != want {
						t.Errorf("%d %s, want %d (unfused %d + q/k/v split)", got[tc.op], tc.op, want, ref[tc.op])
					}
				}
				t.Logf("%s fused: %v", tc.spec, got)
				requireORT(t)
				in := randomInput([]int64{2, 3, int64(fc.spec.Resolution), int64(fc.spec.Resolution)}, 3)
				fp32 := run(t, save(t, m, "fp32.onnx"), in, false)
				a := run(t, save(t, qu, "unfused.onnx"), in, false)
				b := run(t, save(t, qf, "fused.onnx"), in, false)
				cu, _ := compare(fp32, a)
				cf, _ := compare(fp32, b)
				cq, maxAbs := compare(a, b)
				t.Logf("%s: cosine to fp32 unfused %.6f fused %.6f; fused vs unfused %.6f (max abs %.3g)", tc.spec, cu, cf, cq, maxAbs)
				if cq < tc.minCos {
					t.Errorf("%s fused vs unfused: cosine %.6f < %v", tc.spec, cq, tc.minCos)
				}
			})
		}
	}
}
