package optimize

import (
	"context"
	"fmt"
	"slices"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

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
		done, err := emitAttention(gr, m, op)
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
		p := gr.Producer[v]
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
	p := gr.Producer[v]
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
		s := gr.Producer[u]
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
