package quant

import (
	"context"
	"fmt"
	"math"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// convPlan is where int8 and int8-static put QuantizeLinear →
// DequantizeLinear pairs in a model with convolutions: on tensors, not on
// layers, the placement ONNX Runtime's CPU execution provider turns into
// integer kernels from one convolution to the next:
//
//   - a Conv's input and its unit output are quantized; the unit output is
//     the output of a Relu or Clip that alone reads the Conv's (Relu6 in
//     MobileNets), so the activation stays float32 in the graph but runs
//     as the clamp of QLinearConv's requantization (ONNX Runtime drops a
//     Relu or Clip whose following QuantizeLinear clamps the same range);
//   - an Add of two quantized tensors (a residual connection) is quantized
//     too, its unit output likewise after a Relu: QLinearAdd; so are a
//     Sigmoid of a quantized tensor and a Mul of two (SiLU, x·σ(x), in
//     MobileViT and EfficientNet): QLinearSigmoid, QLinearMul;
//   - a MaxPool of a quantized tensor shares its input's scale and zero
//     point, so it runs on the integers (ONNX Runtime drops its Q/DQ);
//   - every reader of a quantized tensor reads it through a
//     DequantizeLinear of its own, so the producer's only reader is the
//     QuantizeLinear.
//
// Quantizing the Conv's raw output and letting Relu, the residual Add and
// MaxPool run in float32 between DequantizeLinear and QuantizeLinear (the
// first form) spent more time converting than the integer convolutions
// saved: on ResNet-50, DequantizeLinear took 39% of the run and
// QLinearConv 38%.
type convPlan struct {
	convs   []*linear
	tensors []string          // quantized activations, in the order found
	in      map[string]bool   // the same, as a set
	tie     map[string]string // a MaxPool's output → its input (same parameters)
	acts    map[string]bool   // Relu/Clip outputs that are a unit's output
	binary  map[string]int    // Adds, Muls (QLinearAdd, QLinearMul) and Sigmoids (QLinearSigmoid) quantized
}

// planConvs plans the quantized tensors of the given Conv layers. skip
// holds nodes another quantizer replaces (int8-static's linear layers):
// they are not units of the plan.
func planConvs(st *state, convs []*linear, skip map[*onnxpb.NodeProto]bool) *convPlan {
	p := &convPlan{in: map[string]bool{}, tie: map[string]string{}, acts: map[string]bool{}, binary: map[string]int{}}
	ix := st.ix
	add := func(v string) bool {
		if v == "" || p.in[v] {
			return p.in[v]
		}
		if _, isInit := ix.Inits[v]; isInit || st.types[v] != onnx.Float || ix.ConstTensor(v) != nil ||
			ix.Outputs[v] || ix.Implicit[v] || !ix.Read(v) {
			return false
		}
		p.in[v] = true
		p.tensors = append(p.tensors, v)
		return true
	}
	for _, l := range convs {
		if !add(l.input) {
			st.t.keep(l.node, "its input cannot be quantized (a graph output, a constant or not float32)")
			continue
		}
		p.convs = append(p.convs, l)
		add(p.unitOutput(ix, l.output, skip))
	}
	for _, n := range ix.g.GetNode() {
		if skip[n] || !onnx.IsDefaultDomain(n) {
			continue
		}
		in, out := n.GetInput(), n.GetOutput()
		switch n.GetOpType() {
		case "Add", "Mul":
			if len(in) == 2 && len(out) == 1 && in[0] != in[1] && p.in[in[0]] && p.in[in[1]] {
				if add(p.unitOutput(ix, out[0], skip)) {
					p.binary[n.GetOpType()]++
				}
			}
		case "Sigmoid":
			if len(in) == 1 && len(out) == 1 && p.in[in[0]] && add(out[0]) {
				p.binary["Sigmoid"]++
			}
		case "MaxPool":
			if len(in) == 1 && (len(out) == 1 || (len(out) == 2 && out[1] == "")) && p.in[in[0]] && add(out[0]) {
				p.tie[out[0]] = in[0]
			}
		}
	}
	return p
}

// unitOutput returns the output of the Relu or Clip that alone reads v,
// or v.
func (p *convPlan) unitOutput(ix *graphIndex, v string, skip map[*onnxpb.NodeProto]bool) string {
	r := ix.OnlyReader(v)
	if r == nil || skip[r] || !onnx.IsDefaultDomain(r) || len(r.GetOutput()) != 1 || len(r.GetInput()) == 0 || r.GetInput()[0] != v {
		return v
	}
	switch r.GetOpType() {
	case "Relu", "Clip":
		p.acts[r.GetOutput()[0]] = true
		return r.GetOutput()[0]
	}
	return v
}

// root returns the tensor whose parameters v shares.
func (p *convPlan) root(v string) string {
	for p.tie[v] != "" {
		v = p.tie[v]
	}
	return v
}

// calibrated returns the tensors that need a calibrated range (the
// others share one).
func (p *convPlan) calibrated() []string {
	var out []string
	for _, v := range p.tensors {
		if p.tie[v] == "" {
			out = append(out, v)
		}
	}
	return out
}

// emitConvPlan rewrites the graph to the plan: the Convs with int8
// weights (per output channel unless perTensor) and int32 biases behind
// DequantizeLinear, a QuantizeLinear on every planned tensor, and a
// DequantizeLinear for each of its readers, through e. params gives each calibrated
// tensor's quantization parameters; it returns the QuantizeLinear output
// of every planned tensor.
func emitConvPlan(ctx context.Context, st *state, p *convPlan, e *emitter, params func(string) qparams, perTensor bool) (map[string]string, error) {
	for i, l := range p.convs {
		if i%16 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if err := qdqConv(st, e, l, params(p.root(l.input)), perTensor); err != nil {
			return nil, err
		}
	}
	quantized := map[string]string{}
	for _, v := range p.tensors {
		qp := params(p.root(v))
		q := e.value(v + "_QuantizeLinear_Output")
		e.node("", "QuantizeLinear", v+"_QuantizeLinear", []string{v, qp.scale, qp.zp}, []string{q})
		quantized[v] = q
	}
	if err := splice(st.ix, p.convs, e); err != nil {
		return nil, err
	}
	// Every reader but the QuantizeLinear reads through a DequantizeLinear
	// of its own, as ONNX Runtime's node units expect.
	ix := st.ix
	var dqs []*onnxpb.NodeProto
	for _, v := range p.tensors {
		qp := params(p.root(v))
		for _, r := range ix.Consumers[v] {
			if r.GetOpType() == "QuantizeLinear" && len(r.GetOutput()) == 1 && r.GetOutput()[0] == quantized[v] {
				continue
			}
			dq := ix.Unique(v + "_DequantizeLinear_Output")
			dqs = append(dqs, &onnxpb.NodeProto{
				Name: ptr(ix.Unique(r.GetName() + "_input_DequantizeLinear")), OpType: ptr("DequantizeLinear"),
				Input: []string{quantized[v], qp.scale, qp.zp}, Output: []string{dq},
			})
			for i, in := range r.GetInput() {
				if in == v {
					r.Input[i] = dq
				}
			}
		}
	}
	ix.g.Node = append(ix.g.Node, dqs...)
	if err := sortedGraph(ix.g); err != nil {
		return nil, err
	}
	ix.Rebuild()
	acts := 0
	for v := range p.acts {
		if p.in[v] {
			acts++
		}
	}
	st.t.note("%s", fmt.Sprintf("%d convolutions in QDQ form (QLinearConv on ONNX Runtime's CPU EP) with %d Relu/Clip quantized after the activation; quantized between them: %d Adds (QLinearAdd), %d Sigmoids and %d Muls (SiLU: QLinearSigmoid, QLinearMul), %d MaxPools",
		len(p.convs), acts, p.binary["Add"], p.binary["Sigmoid"], p.binary["Mul"], len(p.tie)))
	return quantized, nil
}

// qdqConv replaces a (non-patch) Conv by its QDQ form: the input read
// through a DequantizeLinear (added with the plan's tensors), the weight
// as int8 (per output channel, axis 0, unless perTensor) behind a
// DequantizeLinear, the bias as int32 with scale x_scale·w_scale behind
// another. The Conv keeps its name and output.
func qdqConv(st *state, e *emitter, l *linear, in qparams, perTensor bool) error {
	base := l.node.GetName()
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
	inputs := []string{l.input, wdq}
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
	c := e.node("", "Conv", base+"_quant", inputs, []string{l.output}, attrs...)
	c.Name = l.node.Name
	st.t.set(base, PrecInt8)
	st.t.form(base, FormQDQConv)
	return nil
}
