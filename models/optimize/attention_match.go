package optimize

import (
	"fmt"
	"math"
	"slices"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// attnMatch is one self-attention block found in the graph. Three
// exporter structures are recognized:
//
// timm (packed QKV, heads split in one 5-D Reshape):
//
//	qkv = x·W (+ b)                       W constant [D_in, 3·D]
//	t   = Transpose(Reshape(qkv, [B, S, 3, H, d]), perm 2,0,3,1,4)
//	q, k, v = t[0], t[1], t[2]           Gather, or Split/Slice + Squeeze
//
// Hugging Face ViTSelfAttention (separate projections, transpose_for_scores):
//
//	q = Transpose(Reshape(x·Wq (+ bq), [B, S, H, d]), perm 0,2,1,3)  (k, v alike)
//	kᵀ = Transpose(Reshape(x·Wk + bk, [B, S, H, d]), perm 0,2,3,1)   or kᵀ of k
//
// torch.nn.MultiheadAttention as PyTorch's exporter writes it (sequence
// first, batch and heads merged into one axis, the packed projection cut
// by Slices, the output projection on [S·B, D]):
//
//	xₛ  = Transpose(x, perm 1,0,2)                       [S, B, D_in]
//	q   = Transpose(Reshape(Slice(xₛ·W + b, 0..D), [S, B·H, d]), perm 1,0,2)
//	kᵀ  = Transpose(Reshape(Slice(…, D..2D), [S, B·H, d]), perm 1,2,0)
//	y   = Transpose(Reshape(Gemm(Reshape(Transpose(p·v, 1,0,2), [S·B, D]), Wₒ, bₒ), [S, B, D]), 1,0,2)
//
// and in every form
//
//	s = (q·c₁)·(kᵀ·c₂)·c₃               scalar constant Mul/Div anywhere on the way
//	p = Softmax(s [+ bias], axis -1)    bias constant-derived [(1,) H|1, S, S]
//	y = merge heads (p·v)               [B, S, D]
type attnMatch struct {
	x       string       // attention input [B, S, D_in], as the fused projections read it
	packed  *projection  // one QKV projection whose weight's columns are q | k | v
	qkv     []projection // separate q, k and v projections (packed nil)
	heads   int64
	hidden  int64 // D = heads · head size
	scale   float64
	attnB   string // constant-derived attention bias ("" when none)
	biasR   int    // its rank
	out     string // the value the fused block writes, [B, S, D] (or [B, S, D_out] with outProj)
	outProj *projection
	nodes   []*onnxpb.NodeProto
}

func (m *attnMatch) add(ns ...*onnxpb.NodeProto) { m.nodes = append(m.nodes, ns...) }

// projection is a linear layer y = x·W (+ b), W a constant float matrix
// [D_in, N] ([N, D_in] when transB, as Gemm reads nn.Linear's weight) and
// b a constant [N] vector ("" when none).
type projection struct {
	x      string
	w      string
	bias   string
	transB bool
	n      int64 // output width N
	nodes  []*onnxpb.NodeProto
}

// linearOf recognizes v as the output of a linear layer: MatMul(x, W) with
// an optional bias Add (either operand order), or Gemm(x, W, b) without
// scaling or a transposed x. Every value inside is read only by the
// layer's own nodes.
func linearOf(gr *graph, sh *shapes, v string) (projection, bool) {
	p := gr.Producer[v]
	if gr.is(p, "Gemm") {
		if onnx.AttrIntOr(p, "transA", 0) != 0 || onnx.AttrFloatOr(p, "alpha", 1) != 1 || onnx.AttrFloatOr(p, "beta", 1) != 1 {
			return projection{}, false
		}
		pr := projection{x: in(p, 0), w: in(p, 1), bias: in(p, 2), transB: onnx.AttrIntOr(p, "transB", 0) != 0, nodes: []*onnxpb.NodeProto{p}}
		return pr, pr.check(gr, sh)
	}
	var pr projection
	if gr.is(p, "Add") && len(p.GetInput()) == 2 {
		for i := range 2 {
			c, y := in(p, i), in(p, 1-i)
			if mm := gr.Producer[y]; gr.is(mm, "MatMul") && gr.only(y) == p && gr.constDerived(c) {
				pr = projection{x: in(mm, 0), w: in(mm, 1), bias: c, nodes: []*onnxpb.NodeProto{p, mm}}
				break
			}
		}
		if pr.w == "" {
			return projection{}, false
		}
	} else if gr.is(p, "MatMul") {
		pr = projection{x: in(p, 0), w: in(p, 1), nodes: []*onnxpb.NodeProto{p}}
	} else {
		return projection{}, false
	}
	return pr, pr.check(gr, sh)
}

// check verifies the weight is a constant float matrix and the bias a
// constant [N] vector, and sets n.
func (pr *projection) check(gr *graph, sh *shapes) bool {
	wt := gr.constTensor(pr.w)
	if wt == nil || onnx.DataTypeOf(wt) != onnx.Float || len(wt.GetDims()) != 2 {
		return false
	}
	pr.n = wt.GetDims()[1]
	if pr.transB {
		pr.n = wt.GetDims()[0]
	}
	if pr.bias != "" && !(gr.constDerived(pr.bias) && equalShapes(sh.of(pr.bias), shape{known(pr.n)})) {
		return false
	}
	return true
}

// name is the name of the projection's MatMul or Gemm.
func (pr *projection) name() string {
	for _, n := range pr.nodes {
		if op := n.GetOpType(); op == "MatMul" || op == "Gemm" {
			return n.GetName()
		}
	}
	return ""
}

// dIn is the projection's input width.
func (pr *projection) dIn(gr *graph) int64 {
	d := gr.constTensor(pr.w).GetDims()
	if pr.transB {
		return d[1]
	}
	return d[0]
}

// scores is the part of a match from Softmax back to q·kᵀ: the operands
// of the q·kᵀ MatMul after their scale chains, and the nodes reading
// them.
type scores struct {
	q, kt             string
	qReader, ktReader *onnxpb.NodeProto
	probs             string
}

// matchScores matches Softmax(scale·q·kᵀ [+ bias]) back to the q·kᵀ
// MatMul. It fills m's scale, bias and nodes.
func matchScores(gr *graph, sh *shapes, sm *onnxpb.NodeProto, m *attnMatch) (scores, string) {
	sIn := in(sm, 0)
	if r := sh.rank(sIn); r != 4 && r != 3 {
		return scores{}, "Softmax input is not [B, H, S, S] or [B·H, S, S]"
	}
	def := int64(-1)
	if gr.opset < 13 {
		def = 1
	}
	if ax := onnx.AttrIntOr(sm, "axis", def); ax != -1 && ax != int64(sh.rank(sIn)-1) {
		return scores{}, "Softmax is not over the last axis"
	}
	if !gr.singleOutput(sm) {
		return scores{}, "Softmax has more outputs"
	}
	m.add(sm)
	probs := out0(sm)
	// Optional constant-derived bias, then the scale chain, then q·kᵀ.
	v := sIn
	if p := gr.Producer[v]; gr.is(p, "Add") {
		if gr.only(v) != sm {
			return scores{}, "scores feed other nodes"
		}
		a, b := in(p, 0), in(p, 1)
		switch {
		case gr.constDerived(b) && !gr.constDerived(a):
			m.attnB, v = b, a
		case gr.constDerived(a) && !gr.constDerived(b):
			m.attnB, v = a, b
		default:
			return scores{}, "the Add before Softmax is not a constant bias (a mask computed from inputs is not fused)"
		}
		m.add(p)
		sm = p // the chain below must feed this Add
	}
	v, fs, scaleNodes, why := scaleChain(gr, v, sm, "the scores")
	if why != "" {
		return scores{}, why
	}
	m.add(scaleNodes...)
	qk := gr.Producer[v]
	if !gr.is(qk, "MatMul") {
		if gr.is(qk, "Add") && len(scaleNodes) > 0 {
			return scores{}, "a bias is added before the scale (the fused operator scales before adding)"
		}
		return scores{}, "no MatMul q·kᵀ before Softmax"
	}
	m.add(qk)
	qv, fq, qNodes, why := scaleChain(gr, in(qk, 0), qk, "q")
	if why != "" {
		return scores{}, why
	}
	m.add(qNodes...)
	ktv, fk, kNodes, why := scaleChain(gr, in(qk, 1), qk, "kᵀ")
	if why != "" {
		return scores{}, why
	}
	m.add(kNodes...)
	m.scale = fs * fq * fk
	return scores{q: qv, kt: ktv, qReader: lastReader(qk, qNodes), ktReader: lastReader(qk, kNodes), probs: probs}, ""
}

// matchAttention tries to match the attention block around a Softmax. It
// returns the match, or nil and why not.
func matchAttention(gr *graph, sh *shapes, sm *onnxpb.NodeProto) (*attnMatch, string) {
	m := &attnMatch{}
	sc, why := matchScores(gr, sh, sm, m)
	if why != "" {
		return nil, why
	}
	probs := sc.probs
	pv := gr.only(probs)
	if pv == nil && len(gr.Consumers[probs]) > 0 {
		return nil, "the Softmax output is read outside the attention block"
	}
	if !gr.is(pv, "MatMul") || in(pv, 0) != probs {
		return nil, "the Softmax output is not multiplied by v"
	}
	m.add(pv)
	if sh.rank(probs) == 3 {
		why = matchSeqFirst(gr, sh, m, sc, pv)
	} else {
		why = matchBatchFirst(gr, sh, m, sc, pv)
	}
	if why != "" {
		return nil, why
	}
	if !(m.scale > 0) || math.IsInf(m.scale, 0) {
		return nil, "the attention scale is not a positive number"
	}
	return m, finishMatch(gr, sh, m)
}

// matchBatchFirst matches the [B, H, S, d] forms (timm, Hugging Face):
// the heads merged back by Transpose(0, 2, 1, 3) and Reshape, q, k and v
// from one packed tensor or from three projections.
func matchBatchFirst(gr *graph, sh *shapes, m *attnMatch, sc scores, pv *onnxpb.NodeProto) string {
	vt := gr.only(out0(pv))
	if !gr.is(vt, "Transpose") {
		return "the attention output is not transposed back"
	}
	if perm, _ := attrInts(vt, "perm"); !slices.Equal(perm, []int64{0, 2, 1, 3}) {
		return "the attention output's Transpose is not [0, 2, 1, 3]"
	}
	m.add(vt)
	rs := gr.only(out0(vt))
	if !gr.is(rs, "Reshape") {
		return "the heads are not merged by a Reshape"
	}
	m.add(rs)
	m.out = out0(rs)
	k, why := keyHeads(gr, sh, m, sc, 4)
	if why != "" {
		return why
	}
	ins := [3]headsIn{{v: sc.q, reader: sc.qReader}, k, {v: in(pv, 1), reader: pv}}
	if k.direct {
		return matchHeads(gr, sh, m, ins, 4)
	}
	eq, ok1 := extract(gr, sh, sc.q, sc.qReader)
	ek, ok2 := extract(gr, sh, k.v, k.reader)
	ev, ok3 := extract(gr, sh, in(pv, 1), pv)
	if !ok1 || !ok2 || !ok3 {
		return matchHeads(gr, sh, m, ins, 4)
	}
	return matchPacked5(gr, sh, m, eq, ek, ev)
}

// matchPacked5 matches timm's packed form: q, k and v slices 0, 1, 2 of
// Transpose(Reshape(x·W + b, [B, S, 3, H, d]), perm 2, 0, 3, 1, 4).
func matchPacked5(gr *graph, sh *shapes, m *attnMatch, eq, ek, ev extraction) string {
	if eq.src != ek.src || eq.src != ev.src || eq.index != 0 || ek.index != 1 || ev.index != 2 {
		return "q, k and v are not slices 0, 1 and 2 of one packed QKV tensor"
	}
	if (eq.split != nil || ek.split != nil || ev.split != nil) && (eq.split != ek.split || eq.split != ev.split) {
		return "q, k and v come from different Splits"
	}
	m.add(eq.nodes...)
	m.add(ek.nodes...)
	m.add(ev.nodes...)
	t := eq.src
	if eq.split != nil {
		m.add(eq.split)
		if gr.only(t) != eq.split {
			return "the packed QKV tensor feeds other nodes"
		}
	} else {
		readers := []*onnxpb.NodeProto{eq.nodes[len(eq.nodes)-1], ek.nodes[len(ek.nodes)-1], ev.nodes[len(ev.nodes)-1]}
		if !gr.private(t, readers...) || len(gr.Consumers[t]) != 3 {
			return "the packed QKV tensor feeds other nodes"
		}
	}
	tr := gr.Producer[t]
	if !gr.is(tr, "Transpose") {
		return "the packed QKV tensor is not a Transpose"
	}
	if perm, _ := attrInts(tr, "perm"); !slices.Equal(perm, []int64{2, 0, 3, 1, 4}) {
		return "the packed QKV Transpose is not [2, 0, 3, 1, 4]"
	}
	m.add(tr)
	r5 := in(tr, 0)
	rsq := gr.Producer[r5]
	if !gr.is(rsq, "Reshape") || gr.only(r5) != tr {
		return "the packed QKV tensor is not reshaped from the projection"
	}
	m.add(rsq)
	qkv := in(rsq, 0)
	s5, sq := sh.of(r5), sh.of(qkv)
	if len(s5) != 5 || len(sq) != 3 || s5[0] != sq[0] || s5[1] != sq[1] || s5[2] != known(3) || !s5[3].isKnown() || !s5[4].isKnown() {
		return "the QKV projection is not reshaped to [B, S, 3, heads, head size]"
	}
	m.heads = s5[3].v
	m.hidden = s5[3].v * s5[4].v
	if m.heads <= 0 || s5[4].v <= 0 || sq[2] != known(3*m.hidden) {
		return "the QKV projection's width is not 3 × heads × head size"
	}
	if gr.only(qkv) != rsq {
		return "the QKV projection feeds other nodes"
	}
	pr, ok := linearOf(gr, sh, qkv)
	if !ok || pr.transB || pr.n != 3*m.hidden {
		return "the QKV projection is not a MatMul by a constant float [D_in, 3·D] weight (+ a constant [3·D] bias)"
	}
	m.add(pr.nodes...)
	m.packed, m.x = &pr, pr.x
	return ""
}

// keyHeads matches kᵀ: k with its last two axes swapped (k then a value
// of the same layout as q, with its own scale chain), or the heads of the
// key projection transposed to [B, H, d, S] ([B·H, d, S]) at once.
func keyHeads(gr *graph, sh *shapes, m *attnMatch, sc scores, rank int) (headsIn, string) {
	kt := gr.Producer[sc.kt]
	if !gr.is(kt, "Transpose") || gr.only(sc.kt) != sc.ktReader {
		return headsIn{}, "kᵀ is not a Transpose of k"
	}
	m.add(kt)
	perm, _ := attrInts(kt, "perm")
	direct, swap := []int64{0, 2, 3, 1}, []int64{0, 1, 3, 2}
	if rank == 3 {
		direct, swap = []int64{1, 2, 0}, []int64{0, 2, 1}
	}
	if slices.Equal(perm, direct) {
		return headsIn{v: in(kt, 0), reader: kt, direct: true}, ""
	}
	if !slices.Equal(perm, swap) {
		return headsIn{}, "kᵀ is not k with its last two axes swapped"
	}
	kv, fk, kNodes, why := scaleChain(gr, in(kt, 0), kt, "k")
	if why != "" {
		return headsIn{}, why
	}
	m.add(kNodes...)
	m.scale *= fk
	return headsIn{v: kv, reader: lastReader(kt, kNodes)}, ""
}

// headsIn is one of q, kᵀ, v as the attention reads it: the value, the node
// reading it, and for kᵀ taken straight from the key projection's heads
// (Transpose 0,2,3,1 or 1,2,0), direct.
type headsIn struct {
	v      string
	reader *onnxpb.NodeProto
	direct bool
}

// matchHeads matches q, k and v each as the heads of a [B, S, D] (rank 4)
// or [S, B, D] (rank 3, sequence first) value: Reshape to [B, S, H, d]
// then Transpose(0, 2, 1, 3), or Reshape to [S, B·H, d] then
// Transpose(1, 0, 2); the three values are three projections of one input,
// or three column slices of one packed projection.
func matchHeads(gr *graph, sh *shapes, m *attnMatch, ins [3]headsIn, rank int) string {
	var src [3]string
	var hs, ds [3]int64
	for i, h := range ins {
		p, heads, d, why := headsOf(gr, sh, m, h, rank)
		if why != "" {
			return []string{"q", "k", "v"}[i] + ": " + why
		}
		src[i], hs[i], ds[i] = p, heads, d
	}
	if hs[0] != hs[1] || hs[0] != hs[2] || ds[0] != ds[1] || ds[0] != ds[2] {
		return "q, k and v are split into different heads"
	}
	m.heads, m.hidden = hs[0], hs[0]*ds[0]
	if pr, why := packedSlices(gr, sh, m, src); why == "" {
		m.packed, m.x = &pr, pr.x
		m.add(pr.nodes...)
	} else if why != "not sliced" {
		return why
	} else {
		m.qkv = make([]projection, 3)
		for i, v := range src {
			pr, ok := linearOf(gr, sh, v)
			if !ok || pr.n != m.hidden {
				return []string{"q", "k", "v"}[i] + " is not a projection by a constant float weight (+ a constant bias)"
			}
			if i > 0 && pr.x != m.qkv[0].x {
				return "q, k and v are not projections of one input (cross-attention is not fused)"
			}
			m.qkv[i] = pr
			m.add(pr.nodes...)
		}
		m.x = m.qkv[0].x
	}
	if rank == 3 {
		// The projections read the input transposed to [S, B, D]: the fused
		// ones read it as it was.
		t := gr.Producer[m.x]
		if perm, _ := attrInts(t, "perm"); !gr.is(t, "Transpose") || !slices.Equal(perm, []int64{1, 0, 2}) {
			return "the sequence-first projections do not read a [B, S, D] input transposed"
		}
		m.add(t)
		m.x = in(t, 0)
	}
	return ""
}

// headsOf walks one of q, kᵀ, v back to the [B, S, D] (or [S, B, D])
// value whose heads it is, and returns it with the heads and head size.
func headsOf(gr *graph, sh *shapes, m *attnMatch, h headsIn, rank int) (string, int64, int64, string) {
	want := []int64{0, 2, 1, 3}
	if rank == 3 {
		want = []int64{1, 0, 2}
	}
	t := h.reader // direct: keyHeads matched the Transpose
	if !h.direct {
		if gr.only(h.v) != h.reader {
			return "", 0, 0, "read outside the attention block"
		}
		t = gr.Producer[h.v]
		if perm, _ := attrInts(t, "perm"); !gr.is(t, "Transpose") || !slices.Equal(perm, want) {
			return "", 0, 0, fmt.Sprintf("not the heads of a projection (no Transpose %v)", want)
		}
		m.add(t)
	}
	h.v = in(t, 0)
	if gr.only(h.v) != t {
		return "", 0, 0, "read outside the attention block"
	}
	rs := gr.Producer[h.v]
	if !gr.is(rs, "Reshape") {
		return "", 0, 0, "the heads are not split by a Reshape"
	}
	m.add(rs)
	p := in(rs, 0)
	sp, so := sh.of(p), sh.of(h.v)
	if len(sp) != 3 || !sp[2].isKnown() {
		return "", 0, 0, "the projection is not [B, S, D]"
	}
	if rank == 4 {
		if len(so) != 4 || so[0] != sp[0] || so[1] != sp[1] || !so[2].isKnown() || !so[3].isKnown() || so[2].v*so[3].v != sp[2].v {
			return "", 0, 0, "the projection is not reshaped to [B, S, heads, head size]"
		}
		return p, so[2].v, so[3].v, ""
	}
	if len(so) != 3 || so[0] != sp[0] || !so[2].isKnown() || so[2].v <= 0 || sp[2].v%so[2].v != 0 {
		return "", 0, 0, "the projection is not reshaped to [S, B·heads, head size]"
	}
	return p, sp[2].v / so[2].v, so[2].v, ""
}

// packedSlices recognizes q, k and v as the column slices [0, D), [D, 2D)
// and [2D, 3D) of one packed projection (nn.MultiheadAttention's in_proj).
// It returns "not sliced" when none of them is a Slice.
func packedSlices(gr *graph, sh *shapes, m *attnMatch, src [3]string) (projection, string) {
	var t string
	var nodes []*onnxpb.NodeProto
	for i, v := range src {
		s := gr.Producer[v]
		if !gr.is(s, "Slice") {
			if i == 0 {
				return projection{}, "not sliced"
			}
			return projection{}, "q is a slice of a packed projection, k or v is not"
		}
		if _, old := attrInts(s, "starts"); old || gr.only(v) == nil {
			return projection{}, "the q/k/v slice is not a Slice with constant inputs"
		}
		st, _, ok1 := gr.constInts(in(s, 1))
		en, _, ok2 := gr.constInts(in(s, 2))
		ax, _, ok3 := gr.constInts(in(s, 3))
		ok4 := in(s, 4) == ""
		if !ok4 {
			stp, _, ok := gr.constInts(in(s, 4))
			ok4 = ok && len(stp) == 1 && stp[0] == 1
		}
		r := int64(sh.rank(in(s, 0)))
		if !ok1 || !ok2 || !ok3 || !ok4 || len(st) != 1 || len(en) != 1 || len(ax) != 1 || (ax[0] != -1 && ax[0] != r-1) {
			return projection{}, "the q/k/v slice is not a constant slice of the last axis"
		}
		if st[0] != int64(i)*m.hidden || en[0] != int64(i+1)*m.hidden {
			return projection{}, "q, k and v are not the packed projection's columns [0, D), [D, 2D), [2D, 3D)"
		}
		if i > 0 && in(s, 0) != t {
			return projection{}, "q, k and v are not slices of one packed projection"
		}
		t = in(s, 0)
		nodes = append(nodes, s)
	}
	if !gr.private(t, nodes...) {
		return projection{}, "the packed QKV projection feeds other nodes"
	}
	pr, ok := linearOf(gr, sh, t)
	if !ok || pr.n != 3*m.hidden {
		return projection{}, "the packed QKV tensor is not a projection by a constant float [D_in, 3·D] weight"
	}
	pr.nodes = append(pr.nodes, nodes...)
	return pr, ""
}

// matchSeqFirst matches nn.MultiheadAttention's [B·H, S, d] form, from
// p·v through the output projection back to [B, S, D_out].
func matchSeqFirst(gr *graph, sh *shapes, m *attnMatch, sc scores, pv *onnxpb.NodeProto) string {
	chain := []string{"Transpose", "Reshape"}
	v := out0(pv)
	var nodes []*onnxpb.NodeProto
	for _, op := range chain {
		n := gr.only(v)
		if !gr.is(n, op) {
			return "the attention output is not merged back by Transpose and Reshape"
		}
		nodes = append(nodes, n)
		v = out0(n)
	}
	if perm, _ := attrInts(nodes[0], "perm"); !slices.Equal(perm, []int64{1, 0, 2}) {
		return "the attention output's Transpose is not [1, 0, 2]"
	}
	m.add(nodes...)
	merged := v
	// The output projection, then back to [S, B, D_out] and [B, S, D_out].
	op := gr.only(merged)
	if op == nil {
		return "the merged heads are not projected (sequence-first attention fuses with its output projection)"
	}
	pr, ok := linearOf(gr, sh, lastOut(gr, op))
	if !ok || pr.x != merged {
		return "the merged heads are not projected by a constant linear layer"
	}
	m.add(pr.nodes...)
	m.outProj = &pr
	rs := gr.only(lastOut(gr, op))
	if !gr.is(rs, "Reshape") {
		return "the output projection is not reshaped back to [S, B, D]"
	}
	tr := gr.only(out0(rs))
	if perm, _ := attrInts(tr, "perm"); !gr.is(tr, "Transpose") || !slices.Equal(perm, []int64{1, 0, 2}) {
		return "the output is not transposed back to [B, S, D]"
	}
	m.add(rs, tr)
	m.out = out0(tr)
	k, why := keyHeads(gr, sh, m, sc, 3)
	if why != "" {
		return why
	}
	if why := matchHeads(gr, sh, m, [3]headsIn{{v: sc.q, reader: sc.qReader}, k, {v: in(pv, 1), reader: pv}}, 3); why != "" {
		return why
	}
	// Shapes: merged [S·B, D] or [S, B, D]; reshaped [S, B, D_out].
	sx := sh.of(m.x)
	if len(sx) != 3 {
		return "the attention input is not [B, S, D_in]"
	}
	if s := sh.of(merged); len(s) == 0 || s[len(s)-1] != known(m.hidden) || (len(s) == 3 && (s[0] != sx[1] || s[1] != sx[0])) || len(s) > 3 {
		return "the heads are not merged into [S·B, D] or [S, B, D]"
	}
	if s := sh.of(out0(rs)); len(s) != 3 || s[0] != sx[1] || s[1] != sx[0] || s[2] != known(pr.n) {
		return "the output projection is not reshaped back to [S, B, D]"
	}
	return ""
}

// lastOut returns the output of a projection's last node, given its first
// reader of the input.
func lastOut(gr *graph, n *onnxpb.NodeProto) string {
	o := out0(n)
	if gr.is(n, "MatMul") {
		if a := gr.only(o); gr.is(a, "Add") {
			return out0(a)
		}
	}
	return o
}

// finishMatch checks what every form shares: the input and output shapes,
// that every value inside the block is private to it, and the bias shape.
func finishMatch(gr *graph, sh *shapes, m *attnMatch) string {
	sx := sh.of(m.x)
	dIn := int64(0)
	if m.packed != nil {
		dIn = m.packed.dIn(gr)
	} else {
		dIn = m.qkv[0].dIn(gr)
	}
	if len(sx) != 3 || sx[2] != known(dIn) {
		return "the attention input is not [B, S, D_in]"
	}
	d := m.hidden
	if m.outProj != nil {
		d = m.outProj.n
	}
	if so := sh.of(m.out); !equalShapes(so, shape{sx[0], sx[1], known(d)}) {
		return "the heads are not merged back into [B, S, D]"
	}
	for _, n := range m.nodes {
		for _, o := range n.GetOutput() {
			if o == m.out || o == "" {
				continue
			}
			if !gr.private(o, m.nodes...) {
				return fmt.Sprintf("%s's output is read outside the attention block", label(n))
			}
		}
	}
	if m.attnB == "" {
		return ""
	}
	// The attention bias must be [B|1, H|1, S, S] once unsqueezed.
	bs := sh.of(m.attnB)
	if bs == nil || len(bs) < 2 || len(bs) > 4 {
		return "the attention bias's shape is unknown or not [(B,) (H,) S, S]"
	}
	if m.outProj != nil {
		return "a bias on sequence-first attention scores is not fused"
	}
	full := append(make(shape, 4-len(bs)), bs...)
	for i := range 4 - len(bs) {
		full[i] = known(1)
	}
	S, one := sx[1], known(1)
	if full[2] != S || full[3] != S || (full[1] != one && full[1] != known(m.heads)) || (full[0] != one && full[0] != sx[0]) {
		return "the attention bias is not [(B|1,) (H|1,) S, S]"
	}
	m.biasR = len(bs)
	return ""
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
