package onnx

import (
	"context"
	"fmt"
	"slices"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"google.golang.org/protobuf/proto"
)

// FoldWeights turns weights that a graph computes from constants into
// initializers, the way ONNX Runtime's quantization pre-processing does:
// Constant nodes, ConstantOfShape of a constant shape (the ONNX backend
// test suite's "light" models carry every weight that way), Identity,
// Cast between float types (float16, float, double → float or float16),
// and Reshape, Squeeze, Unsqueeze and Flatten of constants with constant
// shapes. It repeats until nothing more folds, so chains fold whole.
// Folded values keep their names: readers are unchanged. Initializers
// that are also graph inputs (overridable at run time) are not constants,
// graph outputs are left as they are, and nodes inside subgraphs are not
// touched. It returns how many nodes became initializers; g is sorted
// topologically.
func FoldWeights(ctx context.Context, g *onnxpb.GraphProto) (int, error) {
	if err := TopoSort(g); err != nil {
		return 0, fmt.Errorf("fold weights: %w", err)
	}
	consts := map[string]*onnxpb.TensorProto{}
	for _, t := range g.GetInitializer() {
		consts[t.GetName()] = t
	}
	for _, in := range g.GetInput() {
		delete(consts, in.GetName())
	}
	outputs := map[string]bool{}
	for _, o := range g.GetOutput() {
		outputs[o.GetName()] = true
	}
	folded := 0
	keep := g.Node[:0]
	for i, n := range g.GetNode() {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return folded, err
			}
		}
		t := foldWeight(n, consts)
		if t == nil || len(n.GetOutput()) != 1 || outputs[n.GetOutput()[0]] {
			keep = append(keep, n)
			continue
		}
		t.Name = proto.String(n.GetOutput()[0])
		consts[t.GetName()] = t
		g.Initializer = append(g.Initializer, t)
		folded++
	}
	for i := len(keep); i < len(g.Node); i++ {
		g.Node[i] = nil
	}
	g.Node = keep
	if folded > 0 {
		sweepInitializers(g)
	}
	return folded, nil
}

// foldWeight computes one node from constants, or returns nil.
func foldWeight(n *onnxpb.NodeProto, consts map[string]*onnxpb.TensorProto) *onnxpb.TensorProto {
	if !IsDefaultDomain(n) || len(Subgraphs(n)) > 0 {
		return nil
	}
	in := func(i int) *onnxpb.TensorProto {
		if i >= len(n.GetInput()) || n.GetInput()[i] == "" {
			return nil
		}
		t := consts[n.GetInput()[i]]
		if t == nil || IsExternal(t) {
			return nil
		}
		return t
	}
	x := in(0)
	switch n.GetOpType() {
	case "Constant":
		if t := ConstantValue(n); t != nil {
			return proto.Clone(t).(*onnxpb.TensorProto)
		}
		return nil
	case "ConstantOfShape":
		return constantOfShape(n, x)
	case "Identity":
		if x == nil {
			return nil
		}
		return proto.Clone(x).(*onnxpb.TensorProto)
	case "Cast":
		return castFloat(x, DataType(AttrIntOr(n, "to", 0)))
	case "Reshape", "Squeeze", "Unsqueeze", "Flatten":
		if x == nil || (n.GetOpType() == "Reshape" && in(1) == nil) {
			return nil
		}
		dims, ok := reshapedDims(n, x.GetDims(), in(1))
		if !ok {
			return nil
		}
		t := proto.Clone(x).(*onnxpb.TensorProto)
		t.Dims = dims
		return t
	}
	return nil
}

// ConstantValue returns a Constant node's value as a tensor: its value
// attribute itself (not a copy), or a new tensor for value_float(s) and
// value_int(s); nil for other forms.
func ConstantValue(n *onnxpb.NodeProto) *onnxpb.TensorProto {
	for _, a := range n.GetAttribute() {
		var t *onnxpb.TensorProto
		var err error
		switch a.GetName() {
		case "value":
			return a.GetT()
		case "value_float":
			t, err = NewTensorFloat32("", nil, []float32{a.GetF()})
		case "value_floats":
			t, err = NewTensorFloat32("", []int64{int64(len(a.GetFloats()))}, a.GetFloats())
		case "value_int":
			t, err = NewTensorInt64("", nil, []int64{a.GetI()})
		case "value_ints":
			t, err = NewTensorInt64("", []int64{int64(len(a.GetInts()))}, a.GetInts())
		default:
			continue
		}
		if err != nil {
			return nil
		}
		return t
	}
	return nil
}

// maxFoldedBytes bounds a tensor ConstantOfShape may expand into (1 GiB):
// a shape input of absurd size must not exhaust memory.
const maxFoldedBytes = 1 << 30

// constantOfShape fills a tensor of the constant shape with the node's
// value (float 0 by default).
func constantOfShape(n *onnxpb.NodeProto, shape *onnxpb.TensorProto) *onnxpb.TensorProto {
	if shape == nil {
		return nil
	}
	dims, err := TensorInt64(shape)
	if err != nil {
		return nil
	}
	count, err := Numel(dims)
	if err != nil {
		return nil
	}
	fill := &onnxpb.TensorProto{DataType: proto.Int32(int32(Float)), Dims: []int64{1}, FloatData: []float32{0}}
	if a := Attr(n, "value"); a != nil && a.GetT() != nil {
		fill = a.GetT()
	}
	dt := DataTypeOf(fill)
	size, err := dt.ByteSize(count)
	if err != nil || size > maxFoldedBytes || dt.Bits() < 8 {
		return nil
	}
	one, err := ByteValue(fill)
	if err != nil || len(one) != dt.Size() {
		return nil
	}
	raw := make([]byte, size)
	for i := 0; i < len(raw); i += len(one) {
		copy(raw[i:], one)
	}
	t, err := NewTensorRaw("", dt, slices.Clone(dims), raw)
	if err != nil {
		return nil
	}
	return t
}

// castFloat converts a float16, float or double constant to float or
// float16 (other casts are left to the runtime).
func castFloat(x *onnxpb.TensorProto, to DataType) *onnxpb.TensorProto {
	if x == nil || (to != Float && to != Float16) {
		return nil
	}
	var v []float32
	switch DataTypeOf(x) {
	case Float:
		f, err := TensorFloat32(x)
		if err != nil {
			return nil
		}
		v = f
	case Float16:
		h, err := TensorFloat16(x)
		if err != nil {
			return nil
		}
		v = Float16sToFloat32s(h)
	case Double:
		d, err := TensorFloat64(x)
		if err != nil {
			return nil
		}
		v = make([]float32, len(d))
		for i, f := range d {
			v[i] = float32(f)
		}
	default:
		return nil
	}
	var t *onnxpb.TensorProto
	var err error
	if to == Float {
		t, err = NewTensorFloat32("", slices.Clone(x.GetDims()), v)
	} else {
		t, err = NewTensorFloat16("", slices.Clone(x.GetDims()), Float32sToFloat16s(v))
	}
	if err != nil {
		return nil
	}
	return t
}

// reshapedDims computes the output dims of Reshape (constant target, 0
// copies and one -1, allowzero off), Squeeze, Unsqueeze (axes from the
// attribute or a constant input) and Flatten.
func reshapedDims(n *onnxpb.NodeProto, dims []int64, second *onnxpb.TensorProto) ([]int64, bool) {
	count, err := Numel(dims)
	if err != nil {
		return nil, false
	}
	axes := func() ([]int64, bool) {
		if a := Attr(n, "axes"); a != nil {
			return a.GetInts(), true
		}
		if second == nil {
			return nil, n.GetOpType() == "Squeeze"
		}
		v, err := TensorInt64(second)
		return v, err == nil
	}
	switch n.GetOpType() {
	case "Reshape":
		target, err := TensorInt64(second)
		if err != nil || AttrIntOr(n, "allowzero", 0) != 0 {
			return nil, false
		}
		return ReshapeDims(dims, target, count)
	case "Flatten":
		ax := AttrIntOr(n, "axis", 1)
		if ax < 0 {
			ax += int64(len(dims))
		}
		if ax < 0 || ax > int64(len(dims)) {
			return nil, false
		}
		a, _ := Numel(dims[:ax])
		b, _ := Numel(dims[ax:])
		return []int64{a, b}, true
	case "Squeeze":
		ax, ok := axes()
		if !ok {
			return nil, false
		}
		var out []int64
		for i, d := range dims {
			drop := len(ax) == 0 && d == 1
			for _, a := range ax {
				if a == int64(i) || a+int64(len(dims)) == int64(i) {
					if d != 1 {
						return nil, false
					}
					drop = true
				}
			}
			if !drop {
				out = append(out, d)
			}
		}
		return out, true
	}
	ax, ok := axes() // Unsqueeze
	if !ok {
		return nil, false
	}
	r := int64(len(dims) + len(ax))
	out := make([]int64, 0, r)
	set := map[int64]bool{}
	for _, a := range ax {
		if a < 0 {
			a += r
		}
		if a < 0 || a >= r || set[a] {
			return nil, false
		}
		set[a] = true
	}
	j := 0
	for i := range r {
		if set[i] {
			out = append(out, 1)
		} else {
			out = append(out, dims[j])
			j++
		}
	}
	return out, true
}

// ReshapeDims applies a Reshape target to dims holding count elements: 0
// copies the input's dimension, one -1 takes what is left. It reports false
// for a target that does not fit.
func ReshapeDims(dims, target []int64, count int64) ([]int64, bool) {
	out := make([]int64, len(target))
	neg, known := -1, int64(1)
	for i, d := range target {
		switch {
		case d == 0:
			if i >= len(dims) {
				return nil, false
			}
			out[i] = dims[i]
		case d == -1:
			if neg >= 0 {
				return nil, false
			}
			neg = i
			continue
		case d < 0:
			return nil, false
		default:
			out[i] = d
		}
		known *= out[i]
	}
	if neg >= 0 {
		if known == 0 || count%known != 0 {
			return nil, false
		}
		out[neg] = count / known
		known *= out[neg]
	}
	return out, known == count
}

// sweepInitializers removes initializers nothing reads any more (graph
// inputs, outputs and values read inside subgraphs stay).
func sweepInitializers(g *onnxpb.GraphProto) {
	read := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			read[in] = true
		}
		for _, sg := range Subgraphs(n) {
			for _, v := range FreeInputs(sg) {
				read[v] = true
			}
		}
	}
	for _, v := range g.GetInput() {
		read[v.GetName()] = true
	}
	for _, v := range g.GetOutput() {
		read[v.GetName()] = true
	}
	keep := g.Initializer[:0]
	for _, t := range g.GetInitializer() {
		if read[t.GetName()] {
			keep = append(keep, t)
		}
	}
	for i := len(keep); i < len(g.Initializer); i++ {
		g.Initializer[i] = nil
	}
	g.Initializer = keep
}
