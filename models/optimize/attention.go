package optimize

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"google.golang.org/protobuf/proto"
)

// attnMatch is one self-attention block found in the graph, as timm writes
// it and torch.onnx.export exports it:
//
//	qkv = x·W (+ b)                       MatMul (+ Add), W constant [D_in, 3·D]
//	t   = Transpose(Reshape(qkv, [B, S, 3, H, d]), perm 2,0,3,1,4)
//	q, k, v = t[0], t[1], t[2]           Gather, or Split/Slice + Squeeze
//	s   = (q·c₁)·(Transpose(k·c₂)·c₃)·c₄  scalar constant Mul/Div anywhere on the way
//	p   = Softmax(s [+ bias], axis -1)    bias constant-derived [(1,) H|1, S, S]
//	y   = Reshape(Transpose(p·v, perm 0,2,1,3), [B, S, D])
type attnMatch struct {
	x      string            // attention input [B, S, D_in]
	mm     *onnxpb.NodeProto // QKV MatMul
	w      string            // its constant weight [D_in, 3·D]
	bias   string            // QKV bias [3·D] ("" when none)
	heads  int64
	hidden int64 // D = heads · head size
	scale  float64
	attnB  string // constant-derived attention bias ("" when none)
	biasR  int    // its rank
	out    string // the final Reshape's output
	nodes  []*onnxpb.NodeProto
}

// fuseAttention fuses every self-attention block that matches completely.
func fuseAttention(ctx context.Context, gr *graph, op AttentionOp, r *Report) (int, error) {
	sh := inferShapes(gr)
	count := 0
	for i, n := range gr.g.GetNode() {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return count, err
			}
		}
		if !gr.is(n, "Softmax") {
			continue
		}
		m, why := matchAttention(gr, sh, n)
		if m == nil {
			r.miss(Attention, n, "%s", why)
			continue
		}
		done, err := emitAttention(gr, sh, m, op)
		if err != nil {
			return count, err
		}
		if !done {
			r.miss(Attention, n, "weight cannot be split")
			continue
		}
		count++
	}
	return count, gr.commit()
}

// scaleChain walks back from v through Mul/Div by positive scalar
// constants, each result read only by the next node. It returns the value
// the chain starts from, the product of the factors and the nodes, or a
// reason when a value is read elsewhere or a Mul/Div is not a scale the
// fused operator can take.
func scaleChain(gr *graph, v string, reader *onnxpb.NodeProto, what string) (string, float64, []*onnxpb.NodeProto, string) {
	f := 1.0
	var nodes []*onnxpb.NodeProto
	for {
		if gr.only(v) != reader {
			return "", 0, nil, what + " is read outside the attention block"
		}
		p := gr.producer[v]
		if !gr.is(p, "Mul") && !gr.is(p, "Div") {
			return v, f, nodes, ""
		}
		if len(p.GetInput()) != 2 || len(p.GetOutput()) != 1 {
			return "", 0, nil, "malformed " + p.GetOpType()
		}
		a, b := in(p, 0), in(p, 1)
		var c float64
		var next string
		var ok bool
		switch {
		case gr.constDerived(b):
			c, ok = gr.scalarFloat(b, 4)
			next = a
		case gr.constDerived(a) && p.GetOpType() == "Mul":
			c, ok = gr.scalarFloat(a, 4)
			next = b
		default:
			return "", 0, nil, "the scale of " + what + " is not a constant"
		}
		if !ok || c <= 0 {
			return "", 0, nil, "the scale of " + what + " is not a positive scalar constant"
		}
		if p.GetOpType() == "Div" {
			c = 1 / c
		}
		f *= c
		nodes = append(nodes, p)
		reader, v = p, next
	}
}

// extraction says which slice of the packed q/k/v tensor a value is.
type extraction struct {
	src   string // the tensor sliced (t)
	index int64  // 0, 1 or 2
	nodes []*onnxpb.NodeProto
	split *onnxpb.NodeProto // the Split all three share, when split
}

// extract recognizes v = t[c] along axis 0 of a [3, ...] tensor: Gather
// with a scalar index, Squeeze(axis 0) of a Split output or of a Slice
// [c, c+1).
func extract(gr *graph, sh *shapes, v string, reader *onnxpb.NodeProto) (extraction, bool) {
	if gr.only(v) != reader {
		return extraction{}, false
	}
	p := gr.producer[v]
	switch {
	case gr.is(p, "Gather"):
		if onnx.AttrIntOr(p, "axis", 0) != 0 {
			return extraction{}, false
		}
		idx, dims, ok := gr.constInts(in(p, 1))
		if !ok || len(idx) != 1 || len(dims) != 0 {
			return extraction{}, false
		}
		c := idx[0]
		if c < 0 {
			c += 3
		}
		return extraction{src: in(p, 0), index: c, nodes: []*onnxpb.NodeProto{p}}, c >= 0 && c < 3
	case gr.is(p, "Squeeze"):
		axes, ok := sh.axesOf(p, 1)
		if !ok || len(axes) != 1 || (axes[0] != 0 && axes[0] != -int64(sh.rank(in(p, 0)))) {
			return extraction{}, false
		}
		u := in(p, 0)
		if gr.only(u) != p {
			return extraction{}, false
		}
		s := gr.producer[u]
		switch {
		case gr.is(s, "Split"):
			if onnx.AttrIntOr(s, "axis", 0) != 0 || len(s.GetOutput()) != 3 {
				return extraction{}, false
			}
			if sizes, ok := attrInts(s, "split"); ok && !slices.Equal(sizes, []int64{1, 1, 1}) {
				return extraction{}, false
			}
			if in(s, 1) != "" {
				sizes, _, ok := gr.constInts(in(s, 1))
				if !ok || !slices.Equal(sizes, []int64{1, 1, 1}) {
					return extraction{}, false
				}
			}
			idx := slices.Index(s.GetOutput(), u)
			return extraction{src: in(s, 0), index: int64(idx), nodes: []*onnxpb.NodeProto{p}, split: s}, idx >= 0
		case gr.is(s, "Slice"):
			if _, old := attrInts(s, "starts"); old {
				return extraction{}, false
			}
			st, _, ok1 := gr.constInts(in(s, 1))
			en, _, ok2 := gr.constInts(in(s, 2))
			if !ok1 || !ok2 || len(st) != 1 || len(en) != 1 {
				return extraction{}, false
			}
			if in(s, 3) != "" {
				ax, _, ok := gr.constInts(in(s, 3))
				if !ok || len(ax) != 1 || (ax[0] != 0 && ax[0] != -int64(sh.rank(in(s, 0)))) {
					return extraction{}, false
				}
			}
			if in(s, 4) != "" {
				stp, _, ok := gr.constInts(in(s, 4))
				if !ok || len(stp) != 1 || stp[0] != 1 {
					return extraction{}, false
				}
			}
			c := st[0]
			if c < 0 {
				c += 3
			}
			e := en[0]
			if e < 0 {
				e += 3
			}
			if c < 0 || c > 2 || e != c+1 {
				return extraction{}, false
			}
			return extraction{src: in(s, 0), index: c, nodes: []*onnxpb.NodeProto{p, s}}, true
		}
	}
	return extraction{}, false
}

// matchAttention tries to match the attention block around a Softmax. It
// returns the match, or nil and why not.
func matchAttention(gr *graph, sh *shapes, sm *onnxpb.NodeProto) (*attnMatch, string) {
	m := &attnMatch{}
	add := func(ns ...*onnxpb.NodeProto) { m.nodes = append(m.nodes, ns...) }
	// Softmax over the last axis of [B, H, S, S].
	sIn := in(sm, 0)
	if sh.rank(sIn) != 4 {
		return nil, "Softmax input is not [B, H, S, S]"
	}
	def := int64(-1)
	if gr.opset < 13 {
		def = 1
	}
	if ax := onnx.AttrIntOr(sm, "axis", def); ax != -1 && ax != 3 {
		return nil, "Softmax is not over the last axis"
	}
	if !gr.singleOutput(sm) {
		return nil, "Softmax has more outputs"
	}
	add(sm)
	// Optional constant-derived bias, then the scale chain, then q·kᵀ.
	v := sIn
	if p := gr.producer[v]; gr.is(p, "Add") {
		if gr.only(v) != sm {
			return nil, "scores feed other nodes"
		}
		a, b := in(p, 0), in(p, 1)
		switch {
		case gr.constDerived(b) && !gr.constDerived(a):
			m.attnB, v = b, a
		case gr.constDerived(a) && !gr.constDerived(b):
			m.attnB, v = a, b
		default:
			return nil, "the Add before Softmax is not a constant bias (a mask computed from inputs is not fused)"
		}
		add(p)
		sm = p // the chain below must feed this Add
	}
	v, fs, scaleNodes, why := scaleChain(gr, v, sm, "the scores")
	if why != "" {
		return nil, why
	}
	add(scaleNodes...)
	qk := gr.producer[v]
	if !gr.is(qk, "MatMul") {
		if gr.is(qk, "Add") && len(scaleNodes) > 0 {
			return nil, "a bias is added before the scale (the fused operator scales before adding)"
		}
		return nil, "no MatMul q·kᵀ before Softmax"
	}
	add(qk)
	qv, fq, qNodes, why := scaleChain(gr, in(qk, 0), qk, "q")
	if why != "" {
		return nil, why
	}
	add(qNodes...)
	ktv, fk1, kNodes1, why := scaleChain(gr, in(qk, 1), qk, "kᵀ")
	if why != "" {
		return nil, why
	}
	add(kNodes1...)
	var last *onnxpb.NodeProto = qk
	if len(kNodes1) > 0 {
		last = kNodes1[len(kNodes1)-1]
	}
	kt := gr.producer[ktv]
	if !gr.is(kt, "Transpose") || gr.only(ktv) != last {
		return nil, "kᵀ is not a Transpose of k"
	}
	if perm, _ := attrInts(kt, "perm"); !slices.Equal(perm, []int64{0, 1, 3, 2}) {
		return nil, "kᵀ is not k with its last two axes swapped"
	}
	add(kt)
	kv, fk2, kNodes2, why := scaleChain(gr, in(kt, 0), kt, "k")
	if why != "" {
		return nil, why
	}
	add(kNodes2...)
	m.scale = fs * fq * fk1 * fk2
	if !(m.scale > 0) || math.IsInf(m.scale, 0) {
		return nil, "the attention scale is not a positive number"
	}
	// p·v, Transpose, Reshape.
	probs := out0(sm0(m))
	pv := gr.only(probs)
	if pv == nil && len(gr.consumers[probs]) > 0 {
		return nil, "the Softmax output is read outside the attention block"
	}
	if !gr.is(pv, "MatMul") || in(pv, 0) != probs {
		return nil, "the Softmax output is not multiplied by v"
	}
	add(pv)
	vt := gr.only(out0(pv))
	if !gr.is(vt, "Transpose") {
		return nil, "the attention output is not transposed back"
	}
	if perm, _ := attrInts(vt, "perm"); !slices.Equal(perm, []int64{0, 2, 1, 3}) {
		return nil, "the attention output's Transpose is not [0, 2, 1, 3]"
	}
	add(vt)
	rs := gr.only(out0(vt))
	if !gr.is(rs, "Reshape") {
		return nil, "the heads are not merged by a Reshape"
	}
	add(rs)
	m.out = out0(rs)
	// q, k, v from one packed tensor.
	eq, ok1 := extract(gr, sh, qv, lastReader(qk, qNodes))
	ek, ok2 := extract(gr, sh, kv, lastReader(kt, kNodes2))
	ev, ok3 := extract(gr, sh, in(pv, 1), pv)
	if !ok1 || !ok2 || !ok3 {
		return nil, "q, k and v are not taken from one packed QKV tensor"
	}
	if eq.src != ek.src || eq.src != ev.src || eq.index != 0 || ek.index != 1 || ev.index != 2 {
		return nil, "q, k and v are not slices 0, 1 and 2 of one packed QKV tensor"
	}
	if (eq.split != nil || ek.split != nil || ev.split != nil) && (eq.split != ek.split || eq.split != ev.split) {
		return nil, "q, k and v come from different Splits"
	}
	add(eq.nodes...)
	add(ek.nodes...)
	add(ev.nodes...)
	t := eq.src
	if eq.split != nil {
		add(eq.split)
		if gr.only(t) != eq.split {
			return nil, "the packed QKV tensor feeds other nodes"
		}
	} else {
		readers := append(append(slices.Clone(eq.nodes[len(eq.nodes)-1:]), ek.nodes[len(ek.nodes)-1]), ev.nodes[len(ev.nodes)-1])
		if !gr.private(t, readers...) || len(gr.consumers[t]) != 3 {
			return nil, "the packed QKV tensor feeds other nodes"
		}
	}
	tr := gr.producer[t]
	if !gr.is(tr, "Transpose") {
		return nil, "the packed QKV tensor is not a Transpose"
	}
	if perm, _ := attrInts(tr, "perm"); !slices.Equal(perm, []int64{2, 0, 3, 1, 4}) {
		return nil, "the packed QKV Transpose is not [2, 0, 3, 1, 4]"
	}
	add(tr)
	r5 := in(tr, 0)
	rsq := gr.producer[r5]
	if !gr.is(rsq, "Reshape") || gr.only(r5) != tr {
		return nil, "the packed QKV tensor is not reshaped from the projection"
	}
	add(rsq)
	qkv := in(rsq, 0)
	s5, sq := sh.of(r5), sh.of(qkv)
	if len(s5) != 5 || len(sq) != 3 || s5[0] != sq[0] || s5[1] != sq[1] || s5[2] != known(3) || !s5[3].isKnown() || !s5[4].isKnown() {
		return nil, "the QKV projection is not reshaped to [B, S, 3, heads, head size]"
	}
	m.heads = s5[3].v
	m.hidden = s5[3].v * s5[4].v
	if m.heads <= 0 || s5[4].v <= 0 || sq[2] != known(3*m.hidden) {
		return nil, "the QKV projection's width is not 3 × heads × head size"
	}
	if gr.only(qkv) != rsq {
		return nil, "the QKV projection feeds other nodes"
	}
	// Optional bias Add, then the MatMul with a constant weight.
	mmOut := qkv
	if p := gr.producer[qkv]; gr.is(p, "Add") {
		a, b := in(p, 0), in(p, 1)
		switch {
		case gr.constDerived(b) && equalShapes(sh.of(b), shape{known(3 * m.hidden)}):
			m.bias, mmOut = b, a
		case gr.constDerived(a) && equalShapes(sh.of(a), shape{known(3 * m.hidden)}):
			m.bias, mmOut = a, b
		default:
			return nil, "the QKV projection's Add is not a constant [3·D] bias"
		}
		add(p)
		if gr.only(mmOut) != p {
			return nil, "the QKV MatMul feeds other nodes"
		}
	}
	mm := gr.producer[mmOut]
	if !gr.is(mm, "MatMul") {
		return nil, "the QKV projection is not a MatMul"
	}
	m.mm, m.x, m.w = mm, in(mm, 0), in(mm, 1)
	wt := gr.constTensor(m.w)
	if wt == nil || onnx.DataTypeOf(wt) != onnx.Float || len(wt.GetDims()) != 2 || wt.GetDims()[1] != 3*m.hidden {
		return nil, "the QKV weight is not a constant float [D_in, 3·D] matrix"
	}
	sx := sh.of(m.x)
	if len(sx) != 3 || sx[0] != sq[0] || sx[1] != sq[1] || sx[2] != known(wt.GetDims()[0]) {
		return nil, "the attention input is not [B, S, D_in]"
	}
	// The merged output is [B, S, D].
	if so := sh.of(m.out); !equalShapes(so, shape{sx[0], sx[1], known(m.hidden)}) {
		return nil, "the heads are not merged back into [B, S, D]"
	}
	if gr.outputs[m.out] {
		// Fine: the fused node writes the same value.
	}
	// Every value inside the block is private to it (the final output
	// excepted), and none is a graph output.
	for _, n := range m.nodes {
		for _, o := range n.GetOutput() {
			if o == m.out || o == "" {
				continue
			}
			if !gr.private(o, m.nodes...) {
				return nil, fmt.Sprintf("%s's output is read outside the attention block", label(n))
			}
		}
	}
	// The attention bias must be [B|1, H|1, S, S] once unsqueezed.
	if m.attnB != "" {
		bs := sh.of(m.attnB)
		if bs == nil || len(bs) < 2 || len(bs) > 4 {
			return nil, "the attention bias's shape is unknown or not [(B,) (H,) S, S]"
		}
		full := append(make(shape, 4-len(bs)), bs...)
		for i := range 4 - len(bs) {
			full[i] = known(1)
		}
		S := sx[1]
		one := known(1)
		if full[2] != S || full[3] != S || (full[1] != one && full[1] != known(m.heads)) || (full[0] != one && full[0] != sx[0]) {
			return nil, "the attention bias is not [(B|1,) (H|1,) S, S]"
		}
		m.biasR = len(bs)
	}
	return m, ""
}

// sm0 returns the Softmax of a match (its first node).
func sm0(m *attnMatch) *onnxpb.NodeProto { return m.nodes[0] }

// lastReader is the node reading the start of a scale chain: the chain's
// last node, or the consumer when the chain is empty.
func lastReader(consumer *onnxpb.NodeProto, chain []*onnxpb.NodeProto) *onnxpb.NodeProto {
	if len(chain) > 0 {
		return chain[len(chain)-1]
	}
	return consumer
}

// emitAttention replaces a matched block. It returns false when the
// weight cannot be split (external data not loaded).
func emitAttention(gr *graph, sh *shapes, m *attnMatch, op AttentionOp) (bool, error) {
	base := m.mm.GetName()
	if base == "" {
		base = m.out
	}
	prefix := trimOp(base)
	attrs := []*onnxpb.AttributeProto{onnx.AttrInt("num_heads", m.heads)}
	headSize := m.hidden / m.heads
	def := 1 / math.Sqrt(float64(headSize))
	if math.Abs(m.scale-def) > 1e-6*def {
		attrs = append(attrs, onnx.AttrFloat("scale", float32(m.scale)))
	}
	bias := m.attnB
	if t := gr.constTensor(bias); t != nil && m.biasR < 4 && !onnx.IsExternal(t) {
		// A constant bias gets its leading 1s in place: same data, new dims.
		nt := proto.Clone(t).(*onnxpb.TensorProto)
		nt.Dims = append(make([]int64, 4-m.biasR), t.GetDims()...)
		for i := range 4 - m.biasR {
			nt.Dims[i] = 1
		}
		bias = gr.addInit(prefix+"attention_bias", nt)
	} else if bias != "" && m.biasR < 4 {
		axes := make([]int64, 4-m.biasR)
		for i := range axes {
			axes[i] = int64(i)
		}
		u := gr.value(prefix + "attention_bias")
		if gr.opset >= 13 {
			ax, err := gr.addInts(prefix+"attention_bias_axes", []int64{int64(len(axes))}, axes)
			if err != nil {
				return false, err
			}
			gr.addNode("", "Unsqueeze", prefix+"Unsqueeze_attention_bias", []string{bias, ax}, []string{u})
		} else {
			gr.addNode("", "Unsqueeze", prefix+"Unsqueeze_attention_bias", []string{bias}, []string{u}, onnx.AttrInts("axes", axes...))
		}
		bias = u
	}
	switch op {
	case AttentionPacked:
		b := m.bias
		if b == "" {
			var err error
			if b, err = gr.addFloats(prefix+"qkv_zero_bias", []int64{3 * m.hidden}, make([]float32, 3*m.hidden)); err != nil {
				return false, err
			}
		}
		ins := trimInputs([]string{m.x, m.w, b, "", "", bias})
		gr.addNode(onnx.MicrosoftDomain, "Attention", prefix+"Attention", ins, []string{m.out}, attrs...)
	case AttentionMHAPacked:
		qkv := gr.value(prefix + "qkv")
		gr.addNode("", "MatMul", base, []string{m.x, m.w}, []string{qkv})
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
		ins := trimInputs([]string{q, k, v, m.bias, "", bias})
		gr.addNode(onnx.MicrosoftDomain, "MultiHeadAttention", prefix+"MultiHeadAttention", ins, []string{m.out}, attrs...)
	default:
		wt := gr.constTensor(m.w)
		if onnx.IsExternal(wt) || !gr.private(m.w, m.mm) {
			// Without the weight's bytes, or when it is shared, keep one
			// MatMul and split its output.
			return emitAttention(gr, sh, m, AttentionMHAPacked)
		}
		parts, err := splitColumns(wt, 3)
		if err != nil {
			return false, fmt.Errorf("weight %s: %w", m.w, err)
		}
		var outs [3]string
		for j, part := range []string{"q", "k", "v"} {
			wn := gr.addInit(m.w+"."+part, parts[j])
			outs[j] = gr.value(prefix + part)
			gr.addNode("", "MatMul", base+"_"+part, []string{m.x, wn}, []string{outs[j]})
		}
		// The packed weight has no other reader (private above) and its
		// MatMul is gone: drop its bytes now rather than at the commit, so
		// a large model holds one copy of its attention weights, not two.
		wt.RawData, wt.FloatData = nil, nil
		ins := trimInputs([]string{outs[0], outs[1], outs[2], m.bias, "", bias})
		gr.addNode(onnx.MicrosoftDomain, "MultiHeadAttention", prefix+"MultiHeadAttention", ins, []string{m.out}, attrs...)
	}
	gr.kill(m.nodes...)
	gr.kill(m.mm)
	return true, nil
}

// splitColumns cuts a 2-D float32 tensor [rows, cols] into n tensors of
// [rows, cols/n] along its columns. Raw data is copied byte for byte, row
// segment by row segment, without decoding to floats.
func splitColumns(t *onnxpb.TensorProto, n int) ([]*onnxpb.TensorProto, error) {
	dims := t.GetDims()
	if len(dims) != 2 || dims[1]%int64(n) != 0 || onnx.DataTypeOf(t) != onnx.Float {
		return nil, fmt.Errorf("cannot split a %v %v tensor in %d by columns", onnx.DataTypeOf(t), dims, n)
	}
	rows, cols := int(dims[0]), int(dims[1])
	h := cols / n
	out := make([]*onnxpb.TensorProto, n)
	if raw := t.GetRawData(); raw != nil {
		if len(raw) != rows*cols*4 {
			return nil, fmt.Errorf("%d bytes for %dx%d float32", len(raw), rows, cols)
		}
		for j := range out {
			sub := make([]byte, rows*h*4)
			for r := range rows {
				copy(sub[r*h*4:(r+1)*h*4], raw[(r*cols+j*h)*4:(r*cols+(j+1)*h)*4])
			}
			var err error
			if out[j], err = onnx.NewTensorRaw("", onnx.Float, []int64{int64(rows), int64(h)}, sub); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	w, err := onnx.TensorFloat32(t)
	if err != nil {
		return nil, err
	}
	if len(w) != rows*cols {
		return nil, fmt.Errorf("%d values for %dx%d", len(w), rows, cols)
	}
	for j := range out {
		sub := make([]float32, rows*h)
		for r := range rows {
			copy(sub[r*h:(r+1)*h], w[r*cols+j*h:r*cols+(j+1)*h])
		}
		if out[j], err = onnx.NewTensorFloat32("", []int64{int64(rows), int64(h)}, sub); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// trimInputs drops trailing omitted inputs.
func trimInputs(ins []string) []string {
	for len(ins) > 0 && ins[len(ins)-1] == "" {
		ins = ins[:len(ins)-1]
	}
	return ins
}

// trimOp turns a node name "/blocks.0/attn/MatMul" into its scope
// "/blocks.0/attn/" for naming new nodes ("" scope: the name plus "/").
func trimOp(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			return name[:i+1]
		}
	}
	return name + "/"
}
