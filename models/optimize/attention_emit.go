package optimize

import (
	"fmt"
	"math"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"google.golang.org/protobuf/proto"
)

// emitAttention replaces a matched block. It returns false when a weight
// it must rewrite is not loaded (external data).
func emitAttention(gr *graph, m *attnMatch, op AttentionOp) (bool, error) {
	base := m.out
	if m.packed != nil {
		base = m.packed.name()
	} else if m.qkv != nil {
		base = m.qkv[0].name()
	}
	prefix := trimOp(base)
	attrs := []*onnxpb.AttributeProto{onnx.AttrInt("num_heads", m.heads)}
	def := 1 / math.Sqrt(float64(m.hidden/m.heads))
	if math.Abs(m.scale-def) > 1e-6*def {
		attrs = append(attrs, onnx.AttrFloat("scale", float32(m.scale)))
	}
	if m.outProj != nil && !weightLoaded(gr, m.outProj.w) {
		return false, nil
	}
	bias, err := attentionBias(gr, m, prefix)
	if err != nil {
		return false, err
	}
	out := m.out
	if m.outProj != nil {
		out = gr.value(prefix + "attention_output")
	}
	var ok bool
	if m.packed != nil {
		ok, err = emitPacked(gr, m, op, prefix, base, bias, out, attrs)
	} else {
		ok, err = emitSeparate(gr, m, prefix, bias, out, attrs)
	}
	if err != nil || !ok {
		return ok, err
	}
	if m.outProj != nil {
		if err := emitOutProj(gr, m, prefix, out); err != nil {
			return false, err
		}
	}
	gr.kill(m.nodes...)
	return true, nil
}

// weightLoaded reports whether a constant's bytes are in memory.
func weightLoaded(gr *graph, name string) bool {
	t := gr.constTensor(name)
	return t != nil && !onnx.IsExternal(t)
}

// attentionBias returns the attention bias as the fused operator reads it,
// [B|1, H|1, S, S]: a constant gets its leading 1s in place, a computed
// one an Unsqueeze.
func attentionBias(gr *graph, m *attnMatch, prefix string) (string, error) {
	bias := m.attnB
	if bias == "" || m.biasR == 4 {
		return bias, nil
	}
	if t := gr.constTensor(bias); t != nil && !onnx.IsExternal(t) {
		nt := proto.Clone(t).(*onnxpb.TensorProto)
		nt.Dims = append(make([]int64, 4-m.biasR), t.GetDims()...)
		for i := range 4 - m.biasR {
			nt.Dims[i] = 1
		}
		return gr.addInit(prefix+"attention_bias", nt), nil
	}
	axes := make([]int64, 4-m.biasR)
	for i := range axes {
		axes[i] = int64(i)
	}
	u := gr.value(prefix + "attention_bias")
	if gr.opset >= 13 {
		ax, err := gr.addInts(prefix+"attention_bias_axes", []int64{int64(len(axes))}, axes)
		if err != nil {
			return "", err
		}
		gr.addNode("", "Unsqueeze", prefix+"Unsqueeze_attention_bias", []string{bias, ax}, []string{u})
	} else {
		gr.addNode("", "Unsqueeze", prefix+"Unsqueeze_attention_bias", []string{bias}, []string{u}, onnx.AttrInts("axes", axes...))
	}
	return u, nil
}

// emitPacked writes the fused node for one packed QKV projection.
func emitPacked(gr *graph, m *attnMatch, op AttentionOp, prefix, base, bias, out string, attrs []*onnxpb.AttributeProto) (bool, error) {
	pr := m.packed
	switch op {
	case AttentionPacked:
		b := pr.bias
		if b == "" {
			var err error
			if b, err = gr.addFloats(prefix+"qkv_zero_bias", []int64{3 * m.hidden}, make([]float32, 3*m.hidden)); err != nil {
				return false, err
			}
		}
		ins := trimInputs([]string{m.x, pr.w, b, "", "", bias})
		gr.addNode(onnx.MicrosoftDomain, "Attention", prefix+"Attention", ins, []string{out}, attrs...)
		return true, nil
	case AttentionMHAPacked:
		qkv := gr.value(prefix + "qkv")
		gr.addNode("", "MatMul", base, []string{m.x, pr.w}, []string{qkv})
		q, k, v := gr.value(prefix+"q"), gr.value(prefix+"k"), gr.value(prefix+"v")
		sizes := []int64{m.hidden, m.hidden, m.hidden}
		if gr.opset >= 13 {
			s, err := gr.addInts(prefix+"qkv_split", []int64{3}, sizes)
			if err != nil {
				return false, err
			}
			gr.addNode("", "Split", prefix+"Split_qkv", []string{qkv, s}, []string{q, k, v}, onnx.AttrInt("axis", 2))
		} else {
			gr.addNode("", "Split", prefix+"Split_qkv", []string{qkv}, []string{q, k, v}, onnx.AttrInt("axis", 2), onnx.AttrInts("split", sizes...))
		}
		ins := trimInputs([]string{q, k, v, pr.bias, "", bias})
		gr.addNode(onnx.MicrosoftDomain, "MultiHeadAttention", prefix+"MultiHeadAttention", ins, []string{out}, attrs...)
		return true, nil
	}
	wt := gr.constTensor(pr.w)
	if onnx.IsExternal(wt) || !gr.private(pr.w, pr.nodes...) {
		// Without the weight's bytes, or when it is shared, keep one
		// MatMul and split its output.
		return emitPacked(gr, m, AttentionMHAPacked, prefix, base, bias, out, attrs)
	}
	parts, err := splitColumns(wt, 3)
	if err != nil {
		return false, fmt.Errorf("weight %s: %w", pr.w, err)
	}
	var outs [3]string
	for j, part := range []string{"q", "k", "v"} {
		wn := gr.addInit(pr.w+"."+part, parts[j])
		outs[j] = gr.value(prefix + part)
		gr.addNode("", "MatMul", base+"_"+part, []string{m.x, wn}, []string{outs[j]})
	}
	// The packed weight has no other reader (private above) and its
	// MatMul is gone: drop its bytes now rather than at the commit, so
	// a large model holds one copy of its attention weights, not two.
	wt.RawData, wt.FloatData = nil, nil
	ins := trimInputs([]string{outs[0], outs[1], outs[2], pr.bias, "", bias})
	gr.addNode(onnx.MicrosoftDomain, "MultiHeadAttention", prefix+"MultiHeadAttention", ins, []string{out}, attrs...)
	return true, nil
}

// emitSeparate writes the fused node for three projections: a MatMul each
// on their own weights, the three biases packed into the fused node's
// [3·D] bias.
func emitSeparate(gr *graph, m *attnMatch, prefix, bias, out string, attrs []*onnxpb.AttributeProto) (bool, error) {
	var outs [3]string
	packedBias := ""
	if m.qkv[0].bias != "" || m.qkv[1].bias != "" || m.qkv[2].bias != "" {
		b := make([]float32, 0, 3*m.hidden)
		for _, pr := range m.qkv {
			if pr.bias == "" {
				b = append(b, make([]float32, m.hidden)...)
				continue
			}
			v, _, ok := gr.constFloats(pr.bias)
			if !ok || len(v) != int(m.hidden) {
				return false, nil
			}
			b = append(b, v...)
		}
		var err error
		if packedBias, err = gr.addFloats(prefix+"qkv_bias", []int64{3 * m.hidden}, b); err != nil {
			return false, err
		}
	}
	for j, pr := range m.qkv {
		w := pr.w
		if pr.transB {
			var err error
			if w, err = transposedWeight(gr, pr.w, prefix+[]string{"q", "k", "v"}[j]+"_weight"); err != nil || w == "" {
				return false, err
			}
		}
		outs[j] = gr.value(prefix + []string{"q", "k", "v"}[j])
		gr.addNode("", "MatMul", pr.name(), []string{m.x, w}, []string{outs[j]})
	}
	ins := trimInputs([]string{outs[0], outs[1], outs[2], packedBias, "", bias})
	gr.addNode(onnx.MicrosoftDomain, "MultiHeadAttention", prefix+"MultiHeadAttention", ins, []string{out}, attrs...)
	return true, nil
}

// emitOutProj writes the output projection of sequence-first attention
// after the fused node, on [B, S, D]: MatMul by the weight (transposed
// once when Gemm read it transposed) and the bias Add.
func emitOutProj(gr *graph, m *attnMatch, prefix, y string) error {
	pr := m.outProj
	w := pr.w
	if pr.transB {
		var err error
		if w, err = transposedWeight(gr, pr.w, prefix+"out_proj_weight"); err != nil {
			return err
		}
	}
	mmOut := m.out
	if pr.bias != "" {
		mmOut = gr.value(prefix + "out_proj")
	}
	gr.addNode("", "MatMul", prefix+"out_proj/MatMul", []string{y, w}, []string{mmOut})
	if pr.bias != "" {
		gr.addNode("", "Add", prefix+"out_proj/Add", []string{mmOut, pr.bias}, []string{m.out})
	}
	return nil
}

// transposedWeight adds the transpose of a constant float matrix as an
// initializer and returns its name.
func transposedWeight(gr *graph, name, prefix string) (string, error) {
	v, dims, ok := gr.constFloats(name)
	if !ok || len(dims) != 2 {
		return "", fmt.Errorf("weight %s is not a loaded float matrix", name)
	}
	r, c := int(dims[0]), int(dims[1])
	t := make([]float32, len(v))
	for i := range r {
		for j := range c {
			t[j*r+i] = v[i*c+j]
		}
	}
	return gr.addFloats(prefix, []int64{int64(c), int64(r)}, t)
}
