package optimize

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// foldLimit is the largest tensor (elements) constant folding creates:
// shape arithmetic, scales and biases, not weights. A bigger result is
// left for ONNX Runtime, which folds constant subgraphs when a session
// starts, so that folding never grows the model file.
const foldLimit = 1 << 16

// foldConstants replaces nodes whose inputs are all constants by
// initializers holding their results (Shape → Gather → Unsqueeze →
// Concat chains over static dimensions, attention scales computed from
// shapes, biases concatenated from pieces), and gives Reshapes whose
// target is computed from the graph's shapes a constant target using 0
// (copy the input's dimension) where the dimension is symbolic. It returns
// the number of nodes folded and of Reshape targets made constant.
func foldConstants(ctx context.Context, gr *graph, doFold, doReshapes bool) (folded, reshapes int, err error) {
	sh := startShapes(gr)
	local := map[string]*onnxpb.TensorProto{}
	constOf := func(v string) *onnxpb.TensorProto {
		if t, ok := local[v]; ok {
			return t
		}
		return gr.constTensor(v)
	}
	for i, n := range gr.g.GetNode() {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return folded, reshapes, err
			}
		}
		sh.step(n)
		if doFold {
			if t := foldNode(gr, sh, n, constOf); t != nil {
				o := out0(n)
				t.Name = &o
				gr.kill(n)
				gr.newInits = append(gr.newInits, t)
				local[o] = t
				sh.setConst(o, t)
				folded++
				continue
			}
		}
		if doReshapes && gr.is(n, "Reshape") && constOf(in(n, 1)) == nil {
			if target, ok := reshapeTarget(sh, n); ok {
				name, err := gr.addInts(out0(n)+"_shape", []int64{int64(len(target))}, target)
				if err != nil {
					return folded, reshapes, err
				}
				n.Input[1] = name
				reshapes++
			}
		}
	}
	return folded, reshapes, gr.commit()
}

// reshapeTarget returns a constant target for a Reshape whose target
// tensor is computed in the graph: each element that is a known size stays,
// each that is the input's own dimension at the same position becomes 0
// (copy), and one remaining element may become -1 when every other element
// is a known positive size.
func reshapeTarget(sh *shapes, n *onnxpb.NodeProto) ([]int64, bool) {
	if onnx.AttrIntOr(n, "allowzero", 0) != 0 {
		return nil, false
	}
	vals, ok := sh.vals(in(n, 1))
	if !ok {
		return nil, false
	}
	x := sh.of(in(n, 0))
	out := make([]int64, len(vals))
	open := -1
	for i, d := range vals {
		switch {
		case d.isKnown():
			if d.v == 0 {
				return nil, false // copies the input's dim already, but keep the tensor as it is
			}
			out[i] = d.v
		case x != nil && i < len(x) && x[i] == d:
			out[i] = 0
		default:
			if open >= 0 {
				return nil, false
			}
			open = i
		}
	}
	if open >= 0 {
		for i, d := range vals {
			if i != open && (!d.isKnown() || d.v <= 0) {
				return nil, false
			}
		}
		out[open] = -1
	}
	return out, true
}

// tensor is a small constant being computed: float32 or integer (int64,
// int32, bool, uint8 held as int64) elements.
type tensor struct {
	dt   onnx.DataType
	dims []int64
	f    []float32
	i    []int64
}

func (t *tensor) numel() int {
	if t.dt == onnx.Float {
		return len(t.f)
	}
	return len(t.i)
}

func isIntType(dt onnx.DataType) bool {
	switch dt {
	case onnx.Int64, onnx.Int32, onnx.Bool:
		return true
	}
	return false
}

// decode reads a constant for evaluation (nil for other types, external
// data, or tensors over the size limit).
func decode(t *onnxpb.TensorProto, limit int64) *tensor {
	if t == nil || onnx.IsExternal(t) {
		return nil
	}
	numel, err := onnx.TensorNumel(t)
	if err != nil || numel > limit {
		return nil
	}
	for _, d := range t.GetDims() {
		// With a zero dim the count says nothing about the others.
		if d < 0 || (limit <= foldLimit && d > limit) {
			return nil
		}
	}
	dims := slices.Clone(t.GetDims())
	switch dt := onnx.DataTypeOf(t); dt {
	case onnx.Float:
		v, err := onnx.TensorFloat32(t)
		if err != nil || int64(len(v)) != numel {
			return nil
		}
		return &tensor{dt: dt, dims: dims, f: v}
	case onnx.Int64, onnx.Int32:
		v, _, ok := intsOf(t)
		if !ok || int64(len(v)) != numel {
			return nil
		}
		return &tensor{dt: dt, dims: dims, i: v}
	case onnx.Bool:
		raw := t.GetRawData()
		var v []int64
		if len(raw) > 0 {
			for _, b := range raw {
				v = append(v, int64(b&1))
			}
		} else {
			for _, x := range t.GetInt32Data() {
				v = append(v, int64(x&1))
			}
		}
		if int64(len(v)) != numel {
			return nil
		}
		return &tensor{dt: dt, dims: dims, i: v}
	}
	return nil
}

// encode turns a computed tensor into a TensorProto.
func (t *tensor) encode() (*onnxpb.TensorProto, error) {
	switch t.dt {
	case onnx.Float:
		return onnx.NewTensorFloat32("", t.dims, t.f)
	case onnx.Int64:
		return onnx.NewTensorInt64("", t.dims, t.i)
	case onnx.Int32:
		v := make([]int32, len(t.i))
		for k, x := range t.i {
			if x < math.MinInt32 || x > math.MaxInt32 {
				return nil, fmt.Errorf("int32 overflow")
			}
			v[k] = int32(x)
		}
		return onnx.NewTensorInt32("", t.dims, v)
	case onnx.Bool:
		raw := make([]byte, len(t.i))
		for k, x := range t.i {
			if x != 0 {
				raw[k] = 1
			}
		}
		return onnx.NewTensorRaw("", onnx.Bool, t.dims, raw)
	}
	return nil, fmt.Errorf("cannot encode %v", t.dt)
}

// foldable lists the operators constant folding evaluates.
var foldable = map[string]bool{
	"Identity": true, "Cast": true, "Sqrt": true, "Neg": true, "Reciprocal": true, "Abs": true,
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Equal": true, "Where": true,
	"Unsqueeze": true, "Squeeze": true, "Reshape": true, "Concat": true, "Gather": true,
	"Slice": true, "Shape": true, "Size": true, "ConstantOfShape": true, "Transpose": true,
	"Range": true,
}

// valueFoldable lists the operators whose integer results are folded from
// the elements shape inference tracks, even when an input is not constant
// (a Gather of a static dimension of a Shape).
var valueFoldable = map[string]bool{
	"Gather": true, "Unsqueeze": true, "Squeeze": true, "Concat": true, "Slice": true, "Reshape": true,
	"Identity": true, "Cast": true, "Add": true, "Sub": true, "Mul": true, "Div": true, "Equal": true,
	"Where": true, "ConstantOfShape": true,
}

// foldNode evaluates n when it can be folded and returns its output as a
// tensor (unnamed), or nil.
func foldNode(gr *graph, sh *shapes, n *onnxpb.NodeProto, constOf func(string) *onnxpb.TensorProto) *onnxpb.TensorProto {
	if !onnx.IsDefaultDomain(n) || !foldable[n.GetOpType()] || len(n.GetOutput()) != 1 || gr.dead[n] {
		return nil
	}
	o := out0(n)
	if o == "" || gr.Outputs[o] || gr.Implicit[o] {
		return nil
	}
	// Shape-derived integers whose elements are all known.
	switch n.GetOpType() {
	case "Shape", "Size":
		x := sh.of(in(n, 0))
		if !x.known() {
			return nil
		}
		var t *onnxpb.TensorProto
		var err error
		if n.GetOpType() == "Size" {
			p := int64(1)
			for _, d := range x {
				p *= d.v
			}
			t, err = onnx.NewTensorInt64("", nil, []int64{p})
		} else {
			lo, hi := clampRange(onnx.AttrIntOr(n, "start", 0), onnx.AttrIntOr(n, "end", int64(len(x))), len(x))
			t, err = onnx.NewTensorInt64("", []int64{int64(hi - lo)}, x[lo:hi].ints())
		}
		if err != nil {
			return nil
		}
		return t
	}
	// Integer tensors whose elements shape inference knows.
	if dt, ok := sh.vtype[o]; ok && isIntType(dt) && valueFoldable[n.GetOpType()] {
		if v, ok := sh.constInts(o); ok {
			if s := sh.of(o); s.known() && (len(s) == 0 && len(v) == 1 || len(s) == 1 && s[0].v == int64(len(v))) {
				res := &tensor{dt: dt, dims: s.ints(), i: v}
				if t, err := res.encode(); err == nil {
					return t
				}
			}
		}
	}
	limit := int64(foldLimit)
	if n.GetOpType() == "Transpose" || n.GetOpType() == "Reshape" || n.GetOpType() == "Identity" ||
		n.GetOpType() == "Squeeze" || n.GetOpType() == "Unsqueeze" {
		// Moving a constant's elements never grows the model when the
		// constant has no other reader.
		if gr.only(in(n, 0)) == n {
			limit = math.MaxInt64
		}
	}
	ins := make([]*tensor, len(n.GetInput()))
	for i, v := range n.GetInput() {
		if v == "" {
			continue
		}
		t := constOf(v)
		if t == nil {
			return nil
		}
		lim := int64(foldLimit)
		if i == 0 {
			lim = limit
		}
		if ins[i] = decode(t, lim); ins[i] == nil {
			return nil
		}
	}
	res, ok := eval(n, ins, gr.opset)
	if !ok || res == nil || int64(res.numel()) > limit {
		return nil
	}
	t, err := res.encode()
	if err != nil {
		return nil
	}
	return t
}

// eval computes one node on constant inputs (nil entries: omitted optional
// inputs). ok is false for anything it does not handle exactly.
func eval(n *onnxpb.NodeProto, ins []*tensor, opset int64) (*tensor, bool) {
	get := func(i int) *tensor {
		if i < len(ins) {
			return ins[i]
		}
		return nil
	}
	x := get(0)
	if x == nil && n.GetOpType() != "Range" {
		return nil, false
	}
	switch op := n.GetOpType(); op {
	case "Identity":
		return x, true
	case "Cast":
		return cast(x, onnx.DataType(onnx.AttrIntOr(n, "to", 0)))
	case "Sqrt", "Neg", "Reciprocal", "Abs":
		if x.dt != onnx.Float {
			if op == "Neg" || op == "Abs" {
				out := &tensor{dt: x.dt, dims: x.dims, i: make([]int64, len(x.i))}
				for k, v := range x.i {
					if op == "Neg" {
						out.i[k] = -v
					} else if v < 0 {
						out.i[k] = -v
					} else {
						out.i[k] = v
					}
				}
				return out, x.dt != onnx.Bool
			}
			return nil, false
		}
		out := &tensor{dt: onnx.Float, dims: x.dims, f: make([]float32, len(x.f))}
		for k, v := range x.f {
			switch op {
			case "Sqrt":
				out.f[k] = float32(math.Sqrt(float64(v)))
			case "Neg":
				out.f[k] = -v
			case "Reciprocal":
				out.f[k] = 1 / v
			case "Abs":
				out.f[k] = float32(math.Abs(float64(v)))
			}
		}
		return out, true
	case "Add", "Sub", "Mul", "Div", "Pow", "Equal":
		return binary(op, x, get(1))
	case "Where":
		return where(x, get(1), get(2))
	case "Unsqueeze", "Squeeze":
		var axes []int64
		if a, ok := attrInts(n, "axes"); ok {
			axes = a
		} else if t := get(1); t != nil && isIntType(t.dt) {
			axes = t.i
		}
		dims, ok := squeezeDims(op, x.dims, axes)
		if !ok {
			return nil, false
		}
		return x.withDims(dims), true
	case "Reshape":
		s := get(1)
		if s == nil || !isIntType(s.dt) || onnx.AttrIntOr(n, "allowzero", 0) != 0 {
			return nil, false
		}
		dims, ok := onnx.ReshapeDims(x.dims, s.i, int64(x.numel()))
		if !ok {
			return nil, false
		}
		return x.withDims(dims), true
	case "Concat":
		return concat(ins, onnx.AttrIntOr(n, "axis", 0))
	case "Gather":
		return gather(x, get(1), onnx.AttrIntOr(n, "axis", 0))
	case "Slice":
		return slice(n, ins)
	case "Transpose":
		perm, ok := attrInts(n, "perm")
		if !ok {
			perm = make([]int64, len(x.dims))
			for i := range perm {
				perm[i] = int64(len(x.dims) - 1 - i)
			}
		}
		return transpose(x, perm)
	case "ConstantOfShape":
		if !isIntType(x.dt) {
			return nil, false
		}
		fill := &tensor{dt: onnx.Float, f: []float32{0}}
		if a := onnx.Attr(n, "value"); a != nil && a.GetT() != nil {
			if fill = decode(a.GetT(), 1); fill == nil || fill.numel() != 1 {
				return nil, false
			}
		}
		cnt := int64(1)
		for _, d := range x.i {
			if d < 0 {
				return nil, false
			}
			cnt *= d
			if cnt > foldLimit {
				return nil, false
			}
		}
		out := &tensor{dt: fill.dt, dims: slices.Clone(x.i)}
		if fill.dt == onnx.Float {
			out.f = make([]float32, cnt)
			for k := range out.f {
				out.f[k] = fill.f[0]
			}
		} else {
			out.i = make([]int64, cnt)
			for k := range out.i {
				out.i[k] = fill.i[0]
			}
		}
		return out, true
	case "Range":
		s, l, d := get(0), get(1), get(2)
		if s == nil || l == nil || d == nil || s.dt != onnx.Int64 || l.dt != onnx.Int64 || d.dt != onnx.Int64 ||
			len(s.i) != 1 || len(l.i) != 1 || len(d.i) != 1 || d.i[0] == 0 {
			return nil, false
		}
		var v []int64
		for k := s.i[0]; (d.i[0] > 0 && k < l.i[0]) || (d.i[0] < 0 && k > l.i[0]); k += d.i[0] {
			v = append(v, k)
			if len(v) > foldLimit {
				return nil, false
			}
		}
		return &tensor{dt: onnx.Int64, dims: []int64{int64(len(v))}, i: v}, true
	}
	return nil, false
}

func (t *tensor) withDims(dims []int64) *tensor {
	return &tensor{dt: t.dt, dims: dims, f: t.f, i: t.i}
}

func cast(x *tensor, to onnx.DataType) (*tensor, bool) {
	out := &tensor{dt: to, dims: x.dims}
	switch {
	case to == onnx.Float && x.dt == onnx.Float:
		out.f = x.f
	case to == onnx.Float:
		out.f = make([]float32, len(x.i))
		for k, v := range x.i {
			out.f[k] = float32(v)
		}
	case isIntType(to) && isIntType(x.dt):
		out.i = make([]int64, len(x.i))
		for k, v := range x.i {
			switch to {
			case onnx.Bool:
				out.i[k] = b2i(v != 0)
			case onnx.Int32:
				out.i[k] = int64(int32(v))
			default:
				out.i[k] = v
			}
		}
	case isIntType(to) && x.dt == onnx.Float:
		out.i = make([]int64, len(x.f))
		for k, v := range x.f {
			f := float64(v)
			if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<53 {
				return nil, false
			}
			if to == onnx.Bool {
				out.i[k] = b2i(v != 0)
			} else {
				out.i[k] = int64(math.Trunc(f))
			}
		}
	default:
		return nil, false
	}
	return out, true
}

// broadcastDims returns the broadcast shape of a and b.
func broadcastDims(a, b []int64) ([]int64, bool) {
	r := max(len(a), len(b))
	out := make([]int64, r)
	for i := range out {
		x, y := int64(1), int64(1)
		if j := i - (r - len(a)); j >= 0 {
			x = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			y = b[j]
		}
		switch {
		case x == y, y == 1:
			out[i] = x
		case x == 1:
			out[i] = y
		default:
			return nil, false
		}
	}
	return out, true
}

// index maps a flat index of the broadcast shape to a flat index of a
// tensor of dims (right-aligned, size-1 dims broadcast).
func bindex(flat int, out, dims []int64) int {
	idx, stride := 0, 1
	for i := len(out) - 1; i >= 0; i-- {
		c := flat % int(out[i])
		flat /= int(out[i])
		j := i - (len(out) - len(dims))
		if j < 0 {
			continue
		}
		if dims[j] != 1 {
			idx += c * stride
		}
		stride *= int(dims[j])
	}
	return idx
}

func numelOf(dims []int64) (int, bool) {
	p := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, false
		}
		p *= d
		if p > foldLimit*16 {
			return 0, false
		}
	}
	return int(p), true
}

func binary(op string, a, b *tensor) (*tensor, bool) {
	if b == nil || (a.dt == onnx.Float) != (b.dt == onnx.Float) {
		return nil, false
	}
	dims, ok := broadcastDims(a.dims, b.dims)
	if !ok {
		return nil, false
	}
	cnt, ok := numelOf(dims)
	if !ok || cnt > foldLimit {
		return nil, false
	}
	if op == "Equal" {
		out := &tensor{dt: onnx.Bool, dims: dims, i: make([]int64, cnt)}
		for k := range cnt {
			ia, ib := bindex(k, dims, a.dims), bindex(k, dims, b.dims)
			if a.dt == onnx.Float {
				out.i[k] = b2i(a.f[ia] == b.f[ib])
			} else {
				out.i[k] = b2i(a.i[ia] == b.i[ib])
			}
		}
		return out, true
	}
	if a.dt == onnx.Float {
		out := &tensor{dt: onnx.Float, dims: dims, f: make([]float32, cnt)}
		for k := range cnt {
			x, y := a.f[bindex(k, dims, a.dims)], b.f[bindex(k, dims, b.dims)]
			switch op {
			case "Add":
				out.f[k] = x + y
			case "Sub":
				out.f[k] = x - y
			case "Mul":
				out.f[k] = x * y
			case "Div":
				out.f[k] = x / y
			case "Pow":
				out.f[k] = float32(math.Pow(float64(x), float64(y)))
			}
		}
		return out, true
	}
	if a.dt != b.dt || a.dt == onnx.Bool || op == "Pow" {
		return nil, false
	}
	out := &tensor{dt: a.dt, dims: dims, i: make([]int64, cnt)}
	for k := range cnt {
		x, y := a.i[bindex(k, dims, a.dims)], b.i[bindex(k, dims, b.dims)]
		switch op {
		case "Add":
			out.i[k] = x + y
		case "Sub":
			out.i[k] = x - y
		case "Mul":
			out.i[k] = x * y
		case "Div":
			if y == 0 {
				return nil, false
			}
			out.i[k] = x / y
		}
	}
	if a.dt == onnx.Int32 {
		for k, v := range out.i {
			out.i[k] = int64(int32(v))
		}
	}
	return out, true
}

func where(c, a, b *tensor) (*tensor, bool) {
	if a == nil || b == nil || c.dt != onnx.Bool || a.dt != b.dt {
		return nil, false
	}
	d1, ok := broadcastDims(c.dims, a.dims)
	if !ok {
		return nil, false
	}
	dims, ok := broadcastDims(d1, b.dims)
	if !ok {
		return nil, false
	}
	cnt, ok := numelOf(dims)
	if !ok || cnt > foldLimit {
		return nil, false
	}
	out := &tensor{dt: a.dt, dims: dims}
	if a.dt == onnx.Float {
		out.f = make([]float32, cnt)
	} else {
		out.i = make([]int64, cnt)
	}
	for k := range cnt {
		src, j := b, bindex(k, dims, b.dims)
		if c.i[bindex(k, dims, c.dims)] != 0 {
			src, j = a, bindex(k, dims, a.dims)
		}
		if a.dt == onnx.Float {
			out.f[k] = src.f[j]
		} else {
			out.i[k] = src.i[j]
		}
	}
	return out, true
}

func squeezeDims(op string, dims, axes []int64) ([]int64, bool) {
	if op == "Unsqueeze" {
		r := len(dims) + len(axes)
		ins := map[int]bool{}
		for _, a := range axes {
			ax, ok := normAxis(a, r)
			if !ok || ins[ax] {
				return nil, false
			}
			ins[ax] = true
		}
		out := make([]int64, 0, r)
		j := 0
		for i := 0; i < r; i++ {
			if ins[i] {
				out = append(out, 1)
			} else {
				out = append(out, dims[j])
				j++
			}
		}
		return out, true
	}
	drop := map[int]bool{}
	if axes == nil {
		for i, d := range dims {
			if d == 1 {
				drop[i] = true
			}
		}
	}
	for _, a := range axes {
		ax, ok := normAxis(a, len(dims))
		if !ok || dims[ax] != 1 {
			return nil, false
		}
		drop[ax] = true
	}
	out := []int64{}
	for i, d := range dims {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return out, true
}

func concat(ins []*tensor, axis int64) (*tensor, bool) {
	if len(ins) == 0 || ins[0] == nil {
		return nil, false
	}
	first := ins[0]
	r := len(first.dims)
	ax, ok := normAxis(axis, r)
	if !ok {
		return nil, false
	}
	dims := slices.Clone(first.dims)
	dims[ax] = 0
	for _, t := range ins {
		if t == nil || t.dt != first.dt || len(t.dims) != r {
			return nil, false
		}
		for i := range r {
			if i != ax && t.dims[i] != first.dims[i] {
				return nil, false
			}
		}
		dims[ax] += t.dims[ax]
	}
	outer := 1
	for _, d := range dims[:ax] {
		outer *= int(d)
	}
	inner := 1
	for _, d := range dims[ax+1:] {
		inner *= int(d)
	}
	out := &tensor{dt: first.dt, dims: dims}
	for o := range outer {
		for _, t := range ins {
			chunk := int(t.dims[ax]) * inner
			if t.dt == onnx.Float {
				out.f = append(out.f, t.f[o*chunk:(o+1)*chunk]...)
			} else {
				out.i = append(out.i, t.i[o*chunk:(o+1)*chunk]...)
			}
		}
	}
	return out, true
}

func gather(x, idx *tensor, axis int64) (*tensor, bool) {
	if idx == nil || !isIntType(idx.dt) || idx.dt == onnx.Bool {
		return nil, false
	}
	ax, ok := normAxis(axis, len(x.dims))
	if !ok {
		return nil, false
	}
	dims := append(slices.Clone(x.dims[:ax]), idx.dims...)
	dims = append(dims, x.dims[ax+1:]...)
	cnt, ok := numelOf(dims)
	if !ok || cnt > foldLimit {
		return nil, false
	}
	outer := 1
	for _, d := range x.dims[:ax] {
		outer *= int(d)
	}
	inner := 1
	for _, d := range x.dims[ax+1:] {
		inner *= int(d)
	}
	n := int(x.dims[ax])
	out := &tensor{dt: x.dt, dims: dims}
	for o := range outer {
		for _, j := range idx.i {
			if j < 0 {
				j += int64(n)
			}
			if j < 0 || j >= int64(n) {
				return nil, false
			}
			start := (o*n + int(j)) * inner
			if x.dt == onnx.Float {
				out.f = append(out.f, x.f[start:start+inner]...)
			} else {
				out.i = append(out.i, x.i[start:start+inner]...)
			}
		}
	}
	return out, true
}

func slice(n *onnxpb.NodeProto, ins []*tensor) (*tensor, bool) {
	x := ins[0]
	var starts, ends, axes, steps []int64
	if s, ok := attrInts(n, "starts"); ok {
		starts = s
		ends, _ = attrInts(n, "ends")
		axes, _ = attrInts(n, "axes")
	} else {
		for i, dst := range []*[]int64{&starts, &ends, &axes, &steps} {
			if i+1 < len(ins) && ins[i+1] != nil {
				if !isIntType(ins[i+1].dt) {
					return nil, false
				}
				*dst = ins[i+1].i
			}
		}
	}
	if len(starts) != len(ends) {
		return nil, false
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if steps == nil {
		for range starts {
			steps = append(steps, 1)
		}
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		return nil, false
	}
	idx := make([][]int64, len(x.dims))
	for i, d := range x.dims {
		for k := int64(0); k < d; k++ {
			idx[i] = append(idx[i], k)
		}
	}
	for i := range starts {
		ax, ok := normAxis(axes[i], len(x.dims))
		if !ok || steps[i] == 0 {
			return nil, false
		}
		idx[ax] = sliceIndices(starts[i], ends[i], steps[i], x.dims[ax])
	}
	dims := make([]int64, len(x.dims))
	for i := range dims {
		dims[i] = int64(len(idx[i]))
	}
	cnt, ok := numelOf(dims)
	if !ok {
		return nil, false
	}
	out := &tensor{dt: x.dt, dims: dims}
	strides := make([]int, len(x.dims))
	s := 1
	for i := len(x.dims) - 1; i >= 0; i-- {
		strides[i] = s
		s *= int(x.dims[i])
	}
	for k := range cnt {
		src, rem := 0, k
		for i := len(dims) - 1; i >= 0; i-- {
			c := rem % int(dims[i])
			rem /= int(dims[i])
			src += int(idx[i][c]) * strides[i]
		}
		if x.dt == onnx.Float {
			out.f = append(out.f, x.f[src])
		} else {
			out.i = append(out.i, x.i[src])
		}
	}
	return out, true
}

func transpose(x *tensor, perm []int64) (*tensor, bool) {
	r := len(x.dims)
	if len(perm) != r {
		return nil, false
	}
	seen := make([]bool, r)
	dims := make([]int64, r)
	for i, p := range perm {
		if p < 0 || p >= int64(r) || seen[p] {
			return nil, false
		}
		seen[p] = true
		dims[i] = x.dims[p]
	}
	strides := make([]int, r)
	s := 1
	for i := r - 1; i >= 0; i-- {
		strides[i] = s
		s *= int(x.dims[i])
	}
	cnt := x.numel()
	out := &tensor{dt: x.dt, dims: dims}
	if x.dt == onnx.Float {
		out.f = make([]float32, cnt)
	} else {
		out.i = make([]int64, cnt)
	}
	for k := range cnt {
		src, rem := 0, k
		for i := r - 1; i >= 0; i-- {
			c := rem % int(dims[i])
			rem /= int(dims[i])
			src += c * strides[perm[i]]
		}
		if x.dt == onnx.Float {
			out.f[k] = x.f[src]
		} else {
			out.i[k] = x.i[src]
		}
	}
	return out, true
}
