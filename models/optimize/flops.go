package optimize

import (
	"errors"
	"fmt"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// FLOPs is what EstimateFLOPs counted.
type FLOPs struct {
	// GFLOPs is 2 × the multiply-adds of one sample, in 10⁹.
	GFLOPs float64
	// Counted is the number of Conv, MatMul, Gemm and attention nodes
	// counted; Unknown those whose shapes could not be inferred (left
	// out, so GFLOPs is then a lower bound).
	Counted, Unknown int
}

// EstimateFLOPs counts the compute of one sample through m from its graph:
// the multiply-adds of every Conv (output elements × input channels per
// group × kernel size), MatMul (output elements × the shared dimension),
// Gemm and com.microsoft MultiHeadAttention (q·kᵀ and the product with v),
// with shapes from the same shape inference the fusions use. Named or
// unknown dimensions (the batch) count as 1. Elementwise operators,
// normalizations and softmax are not counted: for vision models they are a
// few percent of the total, and the model catalog counts the same way.
// The graph is sorted topologically in place; tensor data is not read, so
// a model loaded with onnx.LoadOptions.SkipExternalData will do.
func EstimateFLOPs(m *onnx.Model) (FLOPs, error) {
	if m == nil || m.Proto == nil || m.Graph() == nil {
		return FLOPs{}, ErrNoGraph
	}
	if err := onnx.TopoSort(m.Graph()); err != nil {
		return FLOPs{}, fmt.Errorf("estimate FLOPs: %w", err)
	}
	gr := newGraph(m)
	sh := startShapes(gr)
	// One sample: a symbolic leading (batch) dimension of an input is 1,
	// so products with it (MobileViT's batch × patch positions) stay known.
	for _, vi := range m.Graph().GetInput() {
		if s := sh.shape[vi.GetName()]; len(s) > 0 && !s[0].isKnown() && gr.Inits[vi.GetName()] == nil {
			s[0] = known(1)
		}
	}
	var f FLOPs
	var macs float64
	for _, n := range m.Graph().GetNode() {
		sh.step(n)
		c, compute := nodeMACs(sh, n)
		switch {
		case !compute:
		case c < 0:
			f.Unknown++
		default:
			f.Counted++
			macs += c
		}
	}
	if f.Counted == 0 {
		return f, errors.New("estimate FLOPs: no Conv, MatMul or Gemm with inferable shapes in the graph")
	}
	f.GFLOPs = 2 * macs / 1e9
	return f, nil
}

// nodeMACs is the multiply-adds of one node: compute false for operators
// not counted, a negative count when a counted operator's shapes are
// unknown.
func nodeMACs(sh *shapes, n *onnxpb.NodeProto) (macs float64, compute bool) {
	size := func(s shape) float64 {
		p := 1.0
		for _, d := range s {
			if d.isKnown() {
				p *= float64(d.v)
			}
		}
		return p
	}
	out := sh.of(out0(n))
	if n.GetDomain() == onnx.MicrosoftDomain {
		if n.GetOpType() != "MultiHeadAttention" {
			return 0, false
		}
		q, k := sh.of(in(n, 0)), sh.of(in(n, 1))
		if len(q) != 3 || len(k) != 3 {
			return -1, true
		}
		// q·kᵀ over every head, then the weights times v: 2·B·S·L·D.
		return 2 * size(q) * size(k[1:2]), true
	}
	if !onnx.IsDefaultDomain(n) {
		return 0, false
	}
	switch n.GetOpType() {
	case "MatMul":
		a := sh.of(in(n, 0))
		if len(a) == 0 || out == nil {
			return -1, true
		}
		return size(out) * size(a[len(a)-1:]), true
	case "Gemm":
		a := sh.of(in(n, 0))
		if len(a) != 2 || len(out) != 2 {
			return -1, true
		}
		k := a[1]
		if onnx.AttrIntOr(n, "transA", 0) != 0 {
			k = a[0]
		}
		return size(out) * size(shape{k}), true
	case "Conv":
		w := sh.of(in(n, 1))
		if len(w) < 3 || len(out) != len(w) {
			return -1, true
		}
		return size(out) * size(w[1:]), true
	}
	return 0, false
}
