package quant

import (
	"context"

	"github.com/quantscope/quantscope/models/onnx"
)

// toInt8Dynamic replaces every linear layer by com.microsoft
// DynamicQuantizeMatMul: the weight stored as symmetric int8 (per output
// channel unless spec.PerTensor), the activation quantized to uint8 at run
// time by the kernel itself (DynamicQuantizeLinear's rule), the bias added
// in the kernel's output stage. This is the node ONNX Runtime's CPU
// execution provider fuses its own DynamicQuantizeLinear → MatMulInteger →
// Cast → Mul pattern into, emitted directly: the weight is pre-packed at
// session start and the VNNI/AVX2 u8×s8 kernels run.
func toInt8Dynamic(ctx context.Context, st *state) error {
	layers := findLinears(st.ix, st.types, st.t, candidateOptions{
		exclude: st.exclude, foldBias: true, convs: true,
		// ConvInteger only on request: on ONNX Runtime's CPU EP it runs
		// about 10× slower than the float Conv it replaces (MobileNetV2,
		// 2 cores: 2.8 s against 0.3 s a batch of 8).
		anyConv:   st.spec.ConvInteger && st.m.Opset("") >= 11, // DynamicQuantizeLinear
		keepFirst: st.spec.KeepFirst, keepLast: st.spec.KeepLast,
	})
	e := &emitter{ix: st.ix}
	dql := map[string][3]string{} // activation → its DynamicQuantizeLinear outputs
	for i, l := range layers {
		if i%16 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		base := l.node.GetName()
		if l.conv != nil {
			if err := convInteger(st, e, l, dql); err != nil {
				return err
			}
			continue
		}
		a := l.input
		if l.patch != nil {
			a = e.patchIn(l, base)
			st.t.note("%s", patchNote(base, l.patch.kh, l.patch.kw))
		}
		if l.node.GetOpType() == "Gemm" {
			st.t.note("Gemm %s rewritten as a MatMul (+ bias)", base)
		}
		w, err := l.weight(st.ix)
		if err != nil {
			return err
		}
		q := quantizeInt8Weights(w, l.k, l.n, st.spec.PerTensor, st.spec.ReduceRange)
		wq := e.init(base+"_quantized", func(n string) (*onnxTensor, error) {
			return onnx.NewTensorInt8(n, []int64{int64(l.k), int64(l.n)}, q.q)
		})
		scaleDims := []int64{int64(l.n)}
		if len(q.scales) == 1 {
			scaleDims = nil
		}
		scale := e.floats(base+"_scale", scaleDims, q.scales)
		inputs := []string{a, wq, scale}
		if l.bias != nil {
			inputs = append(inputs, "", e.floats(base+"_bias", []int64{int64(l.n)}, l.bias))
		}
		y := l.output
		if l.patch != nil || l.gemmC != "" {
			y = e.value(base + "_int8_out")
		}
		e.node(onnx.MicrosoftDomain, "DynamicQuantizeMatMul", base+"_int8", inputs, []string{y})
		y = e.gemmTail(l, y, base)
		if l.patch != nil {
			e.patchOut(y, l.output, base)
		}
		st.t.set(base, PrecInt8)
		st.t.form(base, FormDynamic)
	}
	return splice(st.ix, layers, e)
}

// gemmTail adds back a Gemm's C that could not be folded as a bias:
// y + beta·C. It returns the value holding the layer's result (out
// unchanged when there is nothing to add).
func (e *emitter) gemmTail(l *linear, y, base string) string {
	if l.gemmC == "" {
		return y
	}
	c := l.gemmC
	if l.gemmCB != 1 {
		beta := e.floats(base+"_beta", nil, []float32{l.gemmCB})
		scaled := e.value(base + "_beta_c")
		e.node("", "Mul", base+"_beta_mul", []string{c, beta}, []string{scaled})
		c = scaled
	}
	e.node("", "Add", base+"_c_add", []string{y, c}, []string{l.output})
	return l.output
}

// convInteger replaces a Conv by ONNX Runtime's dynamic pattern:
// DynamicQuantizeLinear(x) → ConvInteger(x_u8, W_s8, x_zp) → Cast(float)
// → Mul(x_scale · w_scale) (+ bias), the weight symmetric int8 per output
// channel (its zero point 0, omitted: ORT's ConvInteger takes only a
// per-tensor weight zero point), the per-channel scales applied after the
// integer convolution. One DynamicQuantizeLinear serves every Conv reading
// the same activation.
func convInteger(st *state, e *emitter, l *linear, dql map[string][3]string) error {
	base := l.node.GetName()
	w, err := l.weight(st.ix)
	if err != nil {
		return err
	}
	q := quantizeInt8Weights(w, l.k, l.n, st.spec.PerTensor, st.spec.ReduceRange)
	// Back to the Conv layout [O, C/g, k...].
	wq := make([]int8, len(q.q))
	for ki := 0; ki < l.k; ki++ {
		for oi := 0; oi < l.n; oi++ {
			wq[oi*l.k+ki] = q.q[ki*l.n+oi]
		}
	}
	wName := e.init(base+"_quantized", func(n string) (*onnxTensor, error) { return onnx.NewTensorInt8(n, l.conv, wq) })
	xq, ok := dql[l.input]
	if !ok {
		xq = [3]string{e.value(l.input + "_quantized"), e.value(l.input + "_scale"), e.value(l.input + "_zero_point")}
		e.node("", "DynamicQuantizeLinear", l.input+"_QuantizeLinear", []string{l.input}, xq[:])
		dql[l.input] = xq
	}
	var attrs []*onnxAttr
	for _, a := range l.node.GetAttribute() {
		switch a.GetName() {
		case "kernel_shape", "strides", "pads", "dilations", "group", "auto_pad":
			attrs = append(attrs, a)
		}
	}
	acc := e.value(base + "_int32")
	e.node("", "ConvInteger", base+"_int8", []string{xq[0], wName, xq[2]}, []string{acc}, attrs...)
	f := e.value(base + "_int32_float")
	e.node("", "Cast", base+"_cast", []string{acc}, []string{f}, onnx.AttrInt("to", int64(onnx.Float)))
	// Scales broadcast over [N, O, spatial...]: shape [O, 1, ...].
	bshape := make([]int64, len(l.conv)-1)
	for i := range bshape {
		bshape[i] = 1
	}
	bshape[0] = int64(l.n)
	scaleDims := bshape
	if len(q.scales) == 1 {
		scaleDims = nil
	}
	ws := e.floats(base+"_scale", scaleDims, q.scales)
	s := e.value(base + "_scales_mul")
	e.node("", "Mul", base+"_scales_mul", []string{xq[1], ws}, []string{s})
	y := l.output
	if l.bias != nil {
		y = e.value(base + "_scaled")
	}
	e.node("", "Mul", base+"_output_scale", []string{f, s}, []string{y})
	if l.bias != nil {
		b := e.floats(base+"_bias", bshape, l.bias)
		e.node("", "Add", base+"_bias_add", []string{y, b}, []string{l.output})
	}
	st.t.set(base, PrecInt8)
	st.t.form(base, FormConvInteger)
	return nil
}

// toInt8 is int8: convolutions (other than patch embeddings) in QDQ form
// with calibrated scales, placed so that ONNX Runtime's CPU EP runs them
// and the Relus, residual Adds and MaxPools between them on the integers
// (planConvs; ConvInteger, the dynamic form, runs about 10× slower than
// float), then every other linear layer as DynamicQuantizeMatMul. Without ONNX Runtime to calibrate, or with
// conv=integer, convolutions follow toInt8Dynamic's rule and a warning
// says so.
func toInt8(ctx context.Context, st *state) error {
	if !st.spec.ConvInteger && hasConvLayers(st) {
		if st.opts.Calibration.Runner == nil {
			st.warnf("the model's convolutions stay float32: int8 converts them in calibrated QDQ form, which needs ONNX Runtime to calibrate")
		} else {
			st.convsOnly = true
			err := toInt8Static(ctx, st)
			st.convsOnly = false
			if err != nil {
				return err
			}
			st.types = inferTypes(st.ix.g)
			st.t.note("convolutions with calibrated activation scales, the other linear layers dynamic int8 (DynamicQuantizeMatMul)")
		}
	}
	return toInt8Dynamic(ctx, st)
}

// hasConvLayers reports whether the model has convolutions with constant
// float weights other than patch embeddings.
func hasConvLayers(st *state) bool {
	for _, n := range st.ix.g.GetNode() {
		if n.GetOpType() != "Conv" || !onnx.IsDefaultDomain(n) || len(n.GetInput()) < 2 {
			continue
		}
		w := st.ix.ConstTensor(n.GetInput()[1])
		if w == nil || onnx.DataTypeOf(w) != onnx.Float || len(w.GetDims()) != 4 {
			continue
		}
		d := w.GetDims()
		k := onnx.Attr(n, "kernel_shape")
		s := onnx.Attr(n, "strides")
		patch := k != nil && s != nil && len(k.GetInts()) == 2 && len(s.GetInts()) == 2 &&
			k.GetInts()[0] == s.GetInts()[0] && k.GetInts()[1] == s.GetInts()[1] && d[2] == k.GetInts()[0] && d[2] > 1
		if !patch {
			return true
		}
	}
	return false
}
