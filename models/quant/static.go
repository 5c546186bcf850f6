package quant

import (
	"context"
	"fmt"
	"math"
	"slices"

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
		anyConv:   st.m.Opset("") >= 13, // per-channel DequantizeLinear
		keepFirst: st.spec.KeepFirst, keepLast: st.spec.KeepLast,
	})
	if st.convsOnly {
		layers = slices.DeleteFunc(layers, func(l *linear) bool { return l.conv == nil })
	}
	if len(layers) == 0 {
		return nil // nothing to calibrate; Apply reports ErrNothingConverted
	}
	if op := st.m.Opset(""); op < 10 {
		return fmt.Errorf("int8-static needs opset 10 or later (QuantizeLinear), the model has %d", op)
	}
	var acts []string
	seen := map[string]bool{}
	for _, l := range layers {
		for _, v := range []string{l.input, convOutput(l)} {
			if v != "" && !seen[v] {
				seen[v] = true
				acts = append(acts, v)
			}
		}
	}
	// Activation types: int8 symmetric for linear layers (S8S8, ONNX
	// Runtime's recommended QDQ format on CPU, ModelOpt's choice for ViTs;
	// measured faster and more accurate than U8S8 on DeiT), uint8
	// asymmetric around Convs (the only QLinearConv that covers depthwise
	// convolutions on x86: with int8, MobileNetV2 kept a third of its
	// Convs in float and ran slower than FP32). act=u8 / act=s8 force one.
	unsigned := map[string]bool{}
	for _, v := range acts {
		unsigned[v] = st.spec.Act == "u8"
	}
	if st.spec.Act == "" {
		for _, l := range layers {
			if l.conv != nil {
				unsigned[l.input], unsigned[l.output] = true, true
			}
		}
	}
	ranges, err := calibrate(ctx, st, acts, func(v string) bool { return !unsigned[v] })
	if err != nil {
		return err
	}

	perTensor := st.spec.PerTensor
	if op := st.m.Opset(""); op < 13 && !perTensor {
		// Per-axis DequantizeLinear needs opset 13.
		perTensor = true
		st.warnf("the model's opset %d predates per-channel DequantizeLinear (13): weights quantized per tensor", op)
	}
	e := &emitter{ix: st.ix}
	qp := map[string]qparams{}
	// params returns the scale and zero point of an activation, one pair
	// per activation.
	params := func(v string) qparams {
		p, ok := qp[v]
		if ok {
			return p
		}
		r := ranges[v]
		actRange := int8Range(true, false)
		if unsigned[v] {
			actRange = uint8Range(false, false)
		}
		s, z := scaleZeroPoint(r[0], r[1], actRange, !unsigned[v])
		p.s = s
		p.scale = e.floats(v+"_scale", nil, []float32{s})
		if unsigned[v] {
			p.zp = e.init(v+"_zero_point", func(n string) (*onnxTensor, error) {
				return onnx.NewTensorUint8(n, nil, []uint8{uint8(z)})
			})
		} else {
			p.zp = e.init(v+"_zero_point", func(n string) (*onnxTensor, error) {
				return onnx.NewTensorInt8(n, nil, []int8{int8(z)})
			})
		}
		qp[v] = p
		return p
	}
	quantized := map[string]string{} // activation → its QuantizeLinear output
	for i, l := range layers {
		if i%16 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		base := l.node.GetName()
		p := params(l.input)
		if l.conv != nil {
			if err := qdqConv(st, e, l, p, params(l.output), quantized, perTensor); err != nil {
				return err
			}
			continue
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
		wq := quantizeInt8Weights(w, l.k, l.n, perTensor, st.spec.ReduceRange)
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
		st.t.form(base, FormQDQ)
	}
	return splice(st.ix, layers, e)
}

// qparams are an activation's quantization parameters: the scale's value
// and the names of its scale and zero-point initializers.
type qparams struct {
	s         float32
	scale, zp string
}

// convOutput returns the output of a Conv layer that int8-static
// requantizes (so that ONNX Runtime fuses the Conv into QLinearConv), or
// "" for other layers.
func convOutput(l *linear) string {
	if l.conv != nil {
		return l.output
	}
	return ""
}

// qdqConv quantizes a (non-patch) Conv in QDQ form the way ONNX Runtime's
// QDQ selectors turn into QLinearConv: DQ(Q(x)) and DQ(int8 weight, per
// output channel, axis 0) into the Conv, the bias as int32 with scale
// x_scale·w_scale behind a DequantizeLinear, and the output requantized
// with its calibrated range.
func qdqConv(st *state, e *emitter, l *linear, in, out qparams, quantized map[string]string, perTensor bool) error {
	base := l.node.GetName()
	q, ok := quantized[l.input]
	if !ok {
		q = e.value(l.input + "_QuantizeLinear_Output")
		e.node("", "QuantizeLinear", l.input+"_QuantizeLinear", []string{l.input, in.scale, in.zp}, []string{q})
		quantized[l.input] = q
	}
	dq := e.value(base + "_input_DequantizeLinear_Output")
	e.node("", "DequantizeLinear", base+"_input_DequantizeLinear", []string{q, in.scale, in.zp}, []string{dq})

	w, err := l.weight(st.ix)
	if err != nil {
		return err
	}
	wq := quantizeInt8Weights(w, l.k, l.n, perTensor, st.spec.ReduceRange)
	conv := make([]int8, len(wq.q)) // back to [O, C/g, k...]
	for ki := 0; ki < l.k; ki++ {
		for oi := 0; oi < l.n; oi++ {
			conv[oi*l.k+ki] = wq.q[ki*l.n+oi]
		}
	}
	wName := e.init(base+"_weight_quantized", func(n string) (*onnxTensor, error) { return onnx.NewTensorInt8(n, l.conv, conv) })
	var ws string
	var axis []*onnxAttr
	if len(wq.scales) == 1 {
		ws = e.floats(base+"_weight_scale", nil, wq.scales)
	} else {
		ws = e.floats(base+"_weight_scale", []int64{int64(l.n)}, wq.scales)
		axis = append(axis, onnx.AttrInt("axis", 0))
	}
	wdq := e.value(base + "_weight_DequantizeLinear_Output")
	e.node("", "DequantizeLinear", base+"_weight_DequantizeLinear", []string{wName, ws}, []string{wdq}, axis...)
	inputs := []string{dq, wdq}
	if l.bias != nil {
		bs := make([]float32, l.n)
		bq := make([]int32, l.n)
		for o := range bq {
			bs[o] = in.s * wq.scales[min(o, len(wq.scales)-1)]
			v := float64(roundHalfEven(l.bias[o] / bs[o]))
			bq[o] = int32(max(min(v, math.MaxInt32), math.MinInt32))
		}
		bName := e.init(base+"_bias_quantized", func(n string) (*onnxTensor, error) { return onnx.NewTensorInt32(n, []int64{int64(l.n)}, bq) })
		bsName := e.floats(base+"_bias_scale", []int64{int64(l.n)}, bs)
		bdq := e.value(base + "_bias_DequantizeLinear_Output")
		e.node("", "DequantizeLinear", base+"_bias_DequantizeLinear", []string{bName, bsName}, []string{bdq}, onnx.AttrInt("axis", 0))
		inputs = append(inputs, bdq)
	}
	var attrs []*onnxAttr
	for _, a := range l.node.GetAttribute() {
		switch a.GetName() {
		case "kernel_shape", "strides", "pads", "dilations", "group", "auto_pad":
			attrs = append(attrs, a)
		}
	}
	y := e.value(base + "_output")
	c := e.node("", "Conv", base+"_quant", inputs, []string{y}, attrs...)
	c.Name = l.node.Name
	yq := e.value(base + "_output_QuantizeLinear_Output")
	e.node("", "QuantizeLinear", base+"_output_QuantizeLinear", []string{y, out.scale, out.zp}, []string{yq})
	quantized[l.output] = yq // a following quantized layer reads it as is
	e.node("", "DequantizeLinear", base+"_output_DequantizeLinear", []string{yq, out.scale, out.zp}, []string{l.output})
	st.t.set(base, PrecInt8)
	st.t.form(base, FormQDQConv)
	return nil
}
