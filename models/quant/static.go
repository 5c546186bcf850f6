package quant

import (
	"context"

	"github.com/quantscope/quantscope/models/onnx"
)

// toInt8Static quantizes the linear layers in QDQ format: each layer's
// activation goes through QuantizeLinear → DequantizeLinear with a scale
// calibrated on representative inputs, and its weight is stored as int8
// (symmetric, per output channel unless spec.PerTensor) behind a
// DequantizeLinear. ONNX Runtime's CPU execution provider fuses
// DQ(activation) + DQ(weight) → MatMul into MatMulIntegerToFloat.
//
// Placement is ViT-aware, as ModelOpt and Optimum place it for
// transformers: only the inputs of linear layers (MatMul/Gemm with a
// constant weight, patch-embedding Convs) are quantized; LayerNorm,
// Softmax, GELU, residual Adds and attention's activation × activation
// MatMuls stay float, outputs are not requantized.
func toInt8Static(ctx context.Context, st *state) error {
	layers := findLinears(st.ix, st.types, st.t, candidateOptions{
		exclude: st.exclude, foldBias: false, convs: true,
		keepFirst: st.spec.KeepFirst, keepLast: st.spec.KeepLast,
	})
	if len(layers) == 0 {
		return nil // nothing to calibrate; Apply reports ErrNothingConverted
	}
	var acts []string
	seen := map[string]bool{}
	for _, l := range layers {
		if !seen[l.input] {
			seen[l.input] = true
			acts = append(acts, l.input)
		}
	}
	ranges, err := calibrate(ctx, st, acts)
	if err != nil {
		return err
	}
	// int8 symmetric activations by default (S8S8, ONNX Runtime's
	// recommended QDQ format on CPU; ModelOpt's choice for ViTs); uint8
	// asymmetric with act=u8.
	sym := !st.spec.UnsignedActs
	actRange, actType := int8Range(true, false), onnx.Int8
	if !sym {
		actRange, actType = uint8Range(false, false), onnx.Uint8
	}
	e := &emitter{ix: st.ix}
	type qparams struct{ scale, zp string }
	qp := map[string]qparams{}
	quantized := map[string]string{} // activation → its QuantizeLinear output
	for i, l := range layers {
		if i%16 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		base := l.node.GetName()
		// Activation scale and zero point, one pair per activation.
		p, ok := qp[l.input]
		if !ok {
			r := ranges[l.input]
			s, z := scaleZeroPoint(r[0], r[1], actRange, sym)
			p.scale = e.floats(l.input+"_scale", nil, []float32{s})
			if actType == onnx.Uint8 {
				p.zp = e.init(l.input+"_zero_point", func(n string) (*onnxTensor, error) {
					return onnx.NewTensorUint8(n, nil, []uint8{uint8(z)})
				})
			} else {
				p.zp = e.init(l.input+"_zero_point", func(n string) (*onnxTensor, error) {
					return onnx.NewTensorInt8(n, nil, []int8{int8(z)})
				})
			}
			qp[l.input] = p
		}
		a := l.input
		if l.patch != nil {
			// Quantize the patch rows, not the image: the rows are the
			// MatMul's input and hold the same values.
			a = e.patchIn(l, base)
			st.t.note("Conv %s (%dx%d kernel = stride) rewritten as a MatMul over patches", base, l.patch.kh, l.patch.kw)
		}
		q, ok := quantized[a]
		if !ok {
			q = e.value(a + "_QuantizeLinear_Output")
			e.node("", "QuantizeLinear", a+"_QuantizeLinear", []string{a, p.scale, p.zp}, []string{q})
			quantized[a] = q
		}
		// A DequantizeLinear per consumer, as ONNX Runtime's node-unit
		// fusions expect.
		dq := e.value(base + "_input_DequantizeLinear_Output")
		e.node("", "DequantizeLinear", base+"_input_DequantizeLinear", []string{q, p.scale, p.zp}, []string{dq})

		w, err := l.weight(st.ix)
		if err != nil {
			return err
		}
		wq := quantizeInt8Weights(w, l.k, l.n, st.spec.PerTensor, st.spec.ReduceRange)
		wName := e.init(base+"_weight_quantized", func(n string) (*onnxTensor, error) {
			return onnx.NewTensorInt8(n, []int64{int64(l.k), int64(l.n)}, wq.q)
		})
		var ws string
		var dqAttrs []*onnxAttr
		if len(wq.scales) == 1 {
			ws = e.floats(base+"_weight_scale", nil, wq.scales)
		} else {
			ws = e.floats(base+"_weight_scale", []int64{int64(l.n)}, wq.scales)
			dqAttrs = append(dqAttrs, onnx.AttrInt("axis", 1))
		}
		wdq := e.value(base + "_weight_DequantizeLinear_Output")
		e.node("", "DequantizeLinear", base+"_weight_DequantizeLinear", []string{wName, ws}, []string{wdq}, dqAttrs...)

		y := l.output
		if l.patch != nil || l.bias != nil || l.gemmC != "" {
			y = e.value(base + "_matmul_out")
		}
		mm := e.node("", "MatMul", base+"_quant", []string{dq, wdq}, []string{y})
		if l.node.GetOpType() == "MatMul" {
			mm.Name = l.node.Name // keep the source name: it is still a MatMul
		} else if l.node.GetOpType() == "Gemm" {
			st.t.note("Gemm %s rewritten as a MatMul (+ bias)", base)
		}
		if l.bias != nil {
			out := l.output
			if l.patch != nil || l.gemmC != "" {
				out = e.value(base + "_biased")
			}
			b := e.floats(base+"_bias", []int64{int64(l.n)}, l.bias)
			e.node("", "Add", base+"_bias_add", []string{y, b}, []string{out})
			y = out
		}
		y = e.gemmTail(l, y, base)
		if l.patch != nil {
			e.patchOut(y, l.output, base)
		}
		st.t.set(base, PrecInt8)
	}
	return splice(st.ix, layers, e)
}
