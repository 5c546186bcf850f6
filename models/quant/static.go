package quant

import (
	"context"
	"fmt"
	"slices"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
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
// MatMuls stay float, outputs are not requantized. Convolutions follow
// the tensor placement of planConvs instead (QLinearConv, QLinearAdd from
// one convolution to the next); with st.convsOnly (int8) only they are
// converted.
func toInt8Static(ctx context.Context, st *state) error {
	layers := findLinears(st.ix, st.types, st.t, candidateOptions{
		exclude: st.exclude, foldBias: false, convs: true,
		anyConv:   st.m.Opset("") >= 13, // per-channel DequantizeLinear
		keepFirst: st.spec.KeepFirst, keepLast: st.spec.KeepLast,
	})
	var convs, lins []*linear
	for _, l := range layers {
		if l.conv != nil {
			convs = append(convs, l)
		} else if !st.convsOnly {
			lins = append(lins, l)
		}
	}
	if len(convs)+len(lins) == 0 {
		return nil // nothing to calibrate; Apply reports ErrNothingConverted
	}
	if op := st.m.Opset(""); op < 10 {
		return fmt.Errorf("int8-static needs opset 10 or later (QuantizeLinear), the model has %d", op)
	}
	skip := map[*onnxpb.NodeProto]bool{}
	for _, l := range lins {
		skip[l.node] = true
	}
	plan := planConvs(st, convs, skip)
	ap, err := calibrateActivations(ctx, st, plan, lins)
	if err != nil {
		return err
	}
	perTensor := st.spec.PerTensor
	if op := st.m.Opset(""); op < 13 && !perTensor {
		// Per-axis DequantizeLinear needs opset 13.
		perTensor = true
		st.warnf("the model's opset %d predates per-channel DequantizeLinear (13): weights quantized per tensor", op)
	}
	quantized := map[string]string{} // activation → its QuantizeLinear output
	if len(plan.convs) > 0 {
		ce := &emitter{ix: st.ix}
		if quantized, err = emitConvPlan(ctx, st, plan, ce, func(v string) qparams { return ap.get(ce, v) }, perTensor); err != nil {
			return err
		}
	}
	if len(lins) == 0 {
		return nil
	}
	e := &emitter{ix: st.ix}
	for i, l := range lins {
		if i%16 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := qdqLinear(st, e, l, ap.get(e, l.input), quantized, perTensor); err != nil {
			return err
		}
	}
	return splice(st.ix, lins, e)
}

// actParams are the activations' quantization parameters: calibrated
// ranges, each activation's type, and the initializers made for them.
type actParams struct {
	ranges    map[string][2]float32
	signed    map[string]bool // int8, else uint8
	symmetric map[string]bool
	root      func(string) string // the activation whose parameters v shares
	made      map[string]qparams
}

// calibrateActivations calibrates the plan's tensors and the linear
// layers' inputs. Types: int8 symmetric for linear layers (S8S8, ONNX
// Runtime's recommended QDQ format on CPU, ModelOpt's choice for ViTs;
// measured faster and more accurate than U8S8 on DeiT), uint8 asymmetric
// in the convolutions' plan (the only QLinearConv that covers depthwise
// convolutions on x86: with int8, MobileNetV2 kept a third of its Convs in
// float and ran slower than FP32; asymmetric, so that a Relu's range [0,
// max] maps onto the whole type and its clamp is the requantization's).
// act=u8 / act=s8 force one.
func calibrateActivations(ctx context.Context, st *state, plan *convPlan, lins []*linear) (*actParams, error) {
	ap := &actParams{signed: map[string]bool{}, symmetric: map[string]bool{}, root: plan.root, made: map[string]qparams{}}
	acts := plan.calibrated()
	for _, v := range acts {
		ap.signed[v] = st.spec.Act == "s8"
	}
	for _, l := range lins {
		if !plan.in[l.input] && !slices.Contains(acts, l.input) {
			acts = append(acts, l.input)
			ap.signed[l.input], ap.symmetric[l.input] = st.spec.Act != "u8", st.spec.Act != "u8"
		}
	}
	var err error
	ap.ranges, err = calibrate(ctx, st, acts, func(v string) bool { return ap.symmetric[v] })
	return ap, err
}

// get returns the scale and zero point of an activation, one pair per
// activation, its initializers added by the emitter that first asks.
func (ap *actParams) get(e *emitter, v string) qparams {
	v = ap.root(v)
	if p, ok := ap.made[v]; ok {
		return p
	}
	r := ap.ranges[v]
	actRange := uint8Range(false, false)
	if ap.signed[v] {
		actRange = int8Range(ap.symmetric[v], false)
	}
	s, z := scaleZeroPoint(r[0], r[1], actRange, ap.symmetric[v])
	p := qparams{s: s, scale: e.floats(v+"_scale", nil, []float32{s})}
	if ap.signed[v] {
		p.zp = e.init(v+"_zero_point", func(n string) (*onnxTensor, error) {
			return onnx.NewTensorInt8(n, nil, []int8{int8(z)})
		})
	} else {
		p.zp = e.init(v+"_zero_point", func(n string) (*onnxTensor, error) {
			return onnx.NewTensorUint8(n, nil, []uint8{uint8(z)})
		})
	}
	ap.made[v] = p
	return p
}

// qdqLinear emits one linear layer in QDQ form: its input (or patch rows)
// through QuantizeLinear (one per activation, shared through quantized)
// and a DequantizeLinear of its own, the int8 weight behind a
// DequantizeLinear, a float MatMul and the bias Add.
func qdqLinear(st *state, e *emitter, l *linear, p qparams, quantized map[string]string, perTensor bool) error {
	base := l.node.GetName()
	a := l.input
	if l.patch != nil {
		// Quantize the patch rows, not the image: the rows are the
		// MatMul's input and hold the same values.
		a = e.patchIn(l, base)
		st.t.note("%s", patchNote(base, l.patch.kh, l.patch.kw))
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
	return nil
}

// qparams are an activation's quantization parameters: the scale's value
// and the names of its scale and zero-point initializers.
type qparams struct {
	s         float32
	scale, zp string
}
