package quant

import (
	"fmt"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// graphIndex is the shared graph index (onnx.Index: producers,
// readers, subgraph readers included, constants, free names) with what the
// transforms add: the garbage they made since the last collection (see
// linear.weight).
type graphIndex struct {
	*onnx.Index
	g       *onnxpb.GraphProto
	garbage int64
}

func newGraphIndex(g *onnxpb.GraphProto) *graphIndex {
	return &graphIndex{Index: onnx.NewIndex(g), g: g}
}

// constFloat32 decodes a constant FLOAT value.
func (ix *graphIndex) constFloat32(name string) ([]float32, []int64, bool) {
	t := ix.ConstTensor(name)
	if t == nil || onnx.DataTypeOf(t) != onnx.Float {
		return nil, nil, false
	}
	v, err := onnx.TensorFloat32(t)
	if err != nil {
		return nil, nil, false
	}
	return v, t.GetDims(), true
}

// constInt64 decodes a constant INT64 value.
func (ix *graphIndex) constInt64(name string) ([]int64, bool) {
	t := ix.ConstTensor(name)
	if t == nil || onnx.DataTypeOf(t) != onnx.Int64 {
		return nil, false
	}
	v, err := onnx.TensorInt64(t)
	if err != nil {
		return nil, false
	}
	return v, true
}

// attrInts returns an INTS attribute (nil when absent).
func attrInts(n *onnxpb.NodeProto, name string) []int64 {
	if a := onnx.Attr(n, name); a != nil {
		return a.GetInts()
	}
	return nil
}

// setAttr replaces or adds an attribute.
func setAttr(n *onnxpb.NodeProto, a *onnxpb.AttributeProto) {
	for i, old := range n.GetAttribute() {
		if old.GetName() == a.GetName() {
			n.Attribute[i] = a
			return
		}
	}
	n.Attribute = append(n.Attribute, a)
}

// nodeLabel names a node for reports and errors.
func nodeLabel(n *onnxpb.NodeProto) string {
	if n.GetName() != "" {
		return n.GetName()
	}
	if len(n.GetOutput()) > 0 {
		return n.GetOpType() + "→" + n.GetOutput()[0]
	}
	return n.GetOpType()
}

// opKey is the report key of a node's operator.
func opKey(n *onnxpb.NodeProto) string { return onnx.OpKey(n.GetDomain(), n.GetOpType()) }

// elemTypeOf returns the element type a ValueInfoProto declares (Undefined
// when it is not a tensor).
func elemTypeOf(vi *onnxpb.ValueInfoProto) onnx.DataType {
	if tt := vi.GetType().GetTensorType(); tt != nil {
		return onnx.DataType(tt.GetElemType())
	}
	return onnx.Undefined
}

// setElemType changes the element type a ValueInfoProto declares.
func setElemType(vi *onnxpb.ValueInfoProto, dt onnx.DataType) {
	if tt := vi.GetType().GetTensorType(); tt != nil {
		tt.ElemType = ptr(int32(dt))
	}
}

// staticShape returns the fixed dims of a ValueInfoProto; symbolic or
// unknown dims are -1. ok is false when the rank is unknown.
func staticShape(vi *onnxpb.ValueInfoProto) ([]int64, bool) {
	tt := vi.GetType().GetTensorType()
	if tt == nil || tt.GetShape() == nil {
		return nil, false
	}
	dims := make([]int64, len(tt.GetShape().GetDim()))
	for i, d := range tt.GetShape().GetDim() {
		if v, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok && v.DimValue > 0 {
			dims[i] = v.DimValue
		} else {
			dims[i] = -1
		}
	}
	return dims, true
}

// valueShape finds the declared shape of a value: graph input, output or
// value_info.
func (ix *graphIndex) valueShape(name string) ([]int64, bool) {
	for _, list := range [][]*onnxpb.ValueInfoProto{ix.g.GetInput(), ix.g.GetValueInfo(), ix.g.GetOutput()} {
		for _, vi := range list {
			if vi.GetName() == name {
				return staticShape(vi)
			}
		}
	}
	return nil, false
}

// inferTypes assigns an element type to every value of g it can: graph
// inputs, initializers and declared value_info first, then node outputs by
// operator rules, in topological order (g must be sorted). Values it cannot
// type are absent from the map.
func inferTypes(g *onnxpb.GraphProto) map[string]onnx.DataType {
	types := map[string]onnx.DataType{}
	for _, t := range g.GetInitializer() {
		types[t.GetName()] = onnx.DataTypeOf(t)
	}
	declared := map[string]onnx.DataType{}
	for _, list := range [][]*onnxpb.ValueInfoProto{g.GetInput(), g.GetValueInfo(), g.GetOutput()} {
		for _, vi := range list {
			if dt := elemTypeOf(vi); dt != onnx.Undefined {
				declared[vi.GetName()] = dt
			}
		}
	}
	for _, in := range g.GetInput() {
		if dt, ok := declared[in.GetName()]; ok {
			if _, isInit := types[in.GetName()]; !isInit {
				types[in.GetName()] = dt
			}
		}
	}
	for _, n := range g.GetNode() {
		outs := outputTypes(n, types)
		for i, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			if dt, ok := declared[o]; ok {
				types[o] = dt
			} else if i < len(outs) && outs[i] != onnx.Undefined {
				types[o] = outs[i]
			}
		}
	}
	return types
}

// outputTypes applies the element type rules of n's operator.
func outputTypes(n *onnxpb.NodeProto, types map[string]onnx.DataType) []onnx.DataType {
	in := func(i int) onnx.DataType {
		if i < len(n.GetInput()) {
			return types[n.GetInput()[i]]
		}
		return onnx.Undefined
	}
	nOut := len(n.GetOutput())
	all := func(dt onnx.DataType) []onnx.DataType {
		out := make([]onnx.DataType, nOut)
		for i := range out {
			out[i] = dt
		}
		return out
	}
	if !onnx.IsDefaultDomain(n) {
		switch n.GetOpType() {
		case "DynamicQuantizeMatMul", "MatMulIntegerToFloat":
			return all(onnx.Float)
		}
		return all(in(0))
	}
	switch n.GetOpType() {
	case "Cast":
		return all(onnx.DataType(onnx.AttrIntOr(n, "to", 0)))
	case "CastLike":
		return all(in(1))
	case "Shape", "Size", "NonZero", "ArgMax", "ArgMin":
		return all(onnx.Int64)
	case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "IsNaN", "IsInf":
		return all(onnx.Bool)
	case "Constant":
		for _, a := range n.GetAttribute() {
			switch a.GetName() {
			case "value":
				return all(onnx.DataTypeOf(a.GetT()))
			case "value_float", "value_floats":
				return all(onnx.Float)
			case "value_int", "value_ints":
				return all(onnx.Int64)
			case "value_string", "value_strings":
				return all(onnx.String)
			}
		}
		return all(onnx.Undefined)
	case "ConstantOfShape":
		if a := onnx.Attr(n, "value"); a != nil && a.GetT() != nil {
			return all(onnx.DataTypeOf(a.GetT()))
		}
		return all(onnx.Float)
	case "RandomNormal", "RandomUniform":
		return all(onnx.DataType(onnx.AttrIntOr(n, "dtype", int64(onnx.Float))))
	case "RandomNormalLike", "RandomUniformLike", "EyeLike":
		if a := onnx.Attr(n, "dtype"); a != nil {
			return all(onnx.DataType(a.GetI()))
		}
		return all(in(0))
	case "Where":
		return all(in(1))
	case "QuantizeLinear":
		if dt := in(2); dt != onnx.Undefined {
			return all(dt)
		}
		if a := onnx.Attr(n, "output_dtype"); a != nil && a.GetI() != 0 {
			return all(onnx.DataType(a.GetI()))
		}
		return all(onnx.Uint8)
	case "DequantizeLinear":
		return all(in(1))
	case "DynamicQuantizeLinear":
		return []onnx.DataType{onnx.Uint8, onnx.Float, onnx.Uint8}[:min(3, nOut)]
	case "MatMulInteger", "ConvInteger":
		return all(onnx.Int32)
	case "TopK":
		out := all(in(0))
		if nOut > 1 {
			out[1] = onnx.Int64
		}
		return out
	case "LayerNormalization":
		out := all(onnx.DataType(onnx.AttrIntOr(n, "stash_type", int64(onnx.Float))))
		if nOut > 0 {
			out[0] = in(0)
		}
		return out
	case "MaxPool":
		out := all(in(0))
		if nOut > 1 {
			out[1] = onnx.Int64
		}
		return out
	}
	// Most operators keep the type of their first (data) input.
	return all(in(0))
}

// sortedGraph topologically sorts g in place, wrapping the error.
func sortedGraph(g *onnxpb.GraphProto) error {
	if err := onnx.TopoSort(g); err != nil {
		return fmt.Errorf("sort graph: %w", err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// onnxTensor is the protobuf tensor type, shortened.
type onnxTensor = onnxpb.TensorProto

// onnxAttr is the protobuf attribute type, shortened.
type onnxAttr = onnxpb.AttributeProto
