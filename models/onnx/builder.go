package onnx

import (
	"errors"
	"fmt"
	"slices"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// ProducerName is the producer_name of models made by Builder.
const ProducerName = "quantscope"

// MicrosoftDomain is the domain of ONNX Runtime's contrib operators
// (MatMulNBits, QuickGelu, ...). A Builder imports it at version 1 when a
// node uses it.
const MicrosoftDomain = "com.microsoft"

// Dimension is one dimension of a value's shape: a fixed size, a symbolic
// name, or unknown.
type Dimension struct {
	// Param is a symbolic name such as "batch"; when set, Value is ignored.
	Param string
	// Value is the fixed size when Param is empty; negative means unknown.
	Value int64

	bad string // why Dims could not convert an argument
}

// Dim returns a symbolic dimension, e.g. Dim("batch"). Dim("") is an
// unknown dimension.
func Dim(name string) Dimension {
	if name == "" {
		return UnknownDim()
	}
	return Dimension{Param: name}
}

// UnknownDim returns a dimension of unknown size and no name.
func UnknownDim() Dimension { return Dimension{Value: -1} }

// Dims returns a shape from fixed sizes (any integer type), symbolic names
// (strings) and Dimensions, e.g. Dims("batch", 3, 224, 224). Other argument
// types, and negative sizes, make the Builder that receives the shape fail;
// "" is an unknown dimension.
func Dims(dims ...any) []Dimension {
	out := make([]Dimension, len(dims))
	for i, d := range dims {
		var v int64
		switch d := d.(type) {
		case Dimension:
			out[i] = d
			continue
		case string:
			out[i] = Dim(d)
			continue
		case int:
			v = int64(d)
		case int8:
			v = int64(d)
		case int16:
			v = int64(d)
		case int32:
			v = int64(d)
		case int64:
			v = d
		case uint:
			v = int64(d)
		case uint8:
			v = int64(d)
		case uint16:
			v = int64(d)
		case uint32:
			v = int64(d)
		case uint64:
			v = int64(d)
		default:
			out[i] = Dimension{bad: fmt.Sprintf("dimension %d has type %T, want an integer or a string", i, d)}
			continue
		}
		if v < 0 {
			out[i] = Dimension{bad: fmt.Sprintf("dimension %d is negative (%d); use UnknownDim()", i, v)}
			continue
		}
		out[i] = Dimension{Value: v}
	}
	return out
}

// Builder assembles an ONNX model. Add inputs, initializers, nodes and
// outputs, then call Build. Mistakes (bad shapes, data that does not match
// its dims) are collected and returned by Build, so calls chain without error
// checks. A Builder is not safe for concurrent use and must not be used
// after Build.
type Builder struct {
	graph  *onnxpb.GraphProto
	opsets map[string]int64 // normalized domain → version
	ir     int64
	doc    string
	meta   []*onnxpb.StringStringEntryProto
	names  *Namer
	errs   []error
	built  bool
}

// NewBuilder returns a Builder for a graph named graphName importing the
// default ONNX domain at opset.
func NewBuilder(graphName string, opset int64) *Builder {
	return &Builder{
		graph:  &onnxpb.GraphProto{Name: ptr(graphName)},
		opsets: map[string]int64{"": opset},
		ir:     irVersionFor(opset),
		names:  NewNamer(),
	}
}

// irVersionFor returns the IR version for a default-domain opset: 10 (ONNX
// 1.16, read by every ONNX Runtime that knows the newer opsets) from opset
// 15 on, and the version ONNX released with older opsets before that.
func irVersionFor(opset int64) int64 {
	switch {
	case opset >= 15:
		return int64(onnxpb.Version_IR_VERSION_2024_3_25)
	case opset >= 12:
		return 7
	case opset >= 10:
		return 6
	case opset == 9:
		return 4
	default:
		return 3
	}
}

// errf records a problem for Build to report.
func (b *Builder) errf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf(format, args...))
}

// SetIRVersion overrides the model's IR version.
func (b *Builder) SetIRVersion(v int64) { b.ir = v }

// SetDocString sets the model's doc_string.
func (b *Builder) SetDocString(doc string) { b.doc = doc }

// SetMetadata adds or replaces a metadata_props entry of the model.
func (b *Builder) SetMetadata(key, value string) {
	for _, e := range b.meta {
		if e.GetKey() == key {
			e.Value = ptr(value)
			return
		}
	}
	b.meta = append(b.meta, &onnxpb.StringStringEntryProto{Key: ptr(key), Value: ptr(value)})
}

// ImportOpset imports domain at version, replacing an earlier import of
// the same domain. "" and "ai.onnx" name the default domain.
func (b *Builder) ImportOpset(domain string, version int64) {
	b.opsets[normDomain(domain)] = version
}

// Graph returns the graph being built, for changes the Builder has no
// method for.
func (b *Builder) Graph() *onnxpb.GraphProto { return b.graph }

// Unique returns a name starting with prefix that no value or node of this
// Builder uses yet, and reserves it: prefix itself, else prefix_1,
// prefix_2, ...
func (b *Builder) Unique(prefix string) string { return b.names.Unique(prefix) }

// reserve marks names as used, so Unique avoids them.
func (b *Builder) reserve(names ...string) { b.names.Reserve(names...) }

// valueInfo builds a tensor-typed ValueInfoProto. A nil shape means unknown
// rank.
func (b *Builder) valueInfo(kind, name string, elem DataType, shape []Dimension) *onnxpb.ValueInfoProto {
	if name == "" {
		b.errf("%s with no name", kind)
	}
	if !elem.Valid() {
		b.errf("%s %q: unsupported element type %v", kind, name, elem)
	}
	tt := &onnxpb.TypeProto_Tensor{ElemType: ptr(int32(elem))}
	if shape != nil {
		tt.Shape = &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{}}
		for _, d := range shape {
			dim := &onnxpb.TensorShapeProto_Dimension{}
			switch {
			case d.bad != "":
				b.errf("%s %q: %s", kind, name, d.bad)
			case d.Param != "":
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}
			case d.Value >= 0:
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Value}
			}
			tt.Shape.Dim = append(tt.Shape.Dim, dim)
		}
	}
	return &onnxpb.ValueInfoProto{
		Name: ptr(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}},
	}
}

// AddInput declares a graph input of element type elem and the given shape
// (nil: unknown rank) and returns its name.
func (b *Builder) AddInput(name string, elem DataType, shape []Dimension) string {
	b.graph.Input = append(b.graph.Input, b.valueInfo("input", name, elem, shape))
	b.reserve(name)
	return name
}

// AddOutput declares a graph output and returns its name.
func (b *Builder) AddOutput(name string, elem DataType, shape []Dimension) string {
	b.graph.Output = append(b.graph.Output, b.valueInfo("output", name, elem, shape))
	b.reserve(name)
	return name
}

// AddValueInfo records the type and shape of an intermediate value.
func (b *Builder) AddValueInfo(name string, elem DataType, shape []Dimension) {
	b.graph.ValueInfo = append(b.graph.ValueInfo, b.valueInfo("value_info", name, elem, shape))
}

// AddInitializer adds t as an initializer and returns its name. t is used as
// is, not copied.
func (b *Builder) AddInitializer(t *onnxpb.TensorProto) string {
	if t == nil {
		b.errf("nil initializer")
		return ""
	}
	b.graph.Initializer = append(b.graph.Initializer, t)
	b.reserve(t.GetName())
	return t.GetName()
}

// addTensor adds the result of a tensor constructor as an initializer.
func (b *Builder) addTensor(name string, t *onnxpb.TensorProto, err error) string {
	if err != nil {
		b.errs = append(b.errs, fmt.Errorf("initializer: %w", err))
		b.reserve(name)
		return name
	}
	return b.AddInitializer(t)
}

// AddInitializerFloat32 adds a FLOAT initializer and returns its name.
func (b *Builder) AddInitializerFloat32(name string, dims []int64, data []float32) string {
	t, err := NewTensorFloat32(name, dims, data)
	return b.addTensor(name, t, err)
}

// AddInitializerFloat16 adds a FLOAT16 initializer from half-precision bit
// patterns and returns its name.
func (b *Builder) AddInitializerFloat16(name string, dims []int64, bits []uint16) string {
	t, err := NewTensorFloat16(name, dims, bits)
	return b.addTensor(name, t, err)
}

// AddInitializerInt64 adds an INT64 initializer and returns its name.
func (b *Builder) AddInitializerInt64(name string, dims []int64, data []int64) string {
	t, err := NewTensorInt64(name, dims, data)
	return b.addTensor(name, t, err)
}

// AddInitializerInt32 adds an INT32 initializer and returns its name.
func (b *Builder) AddInitializerInt32(name string, dims []int64, data []int32) string {
	t, err := NewTensorInt32(name, dims, data)
	return b.addTensor(name, t, err)
}

// AddInitializerInt8 adds an INT8 initializer and returns its name.
func (b *Builder) AddInitializerInt8(name string, dims []int64, data []int8) string {
	t, err := NewTensorInt8(name, dims, data)
	return b.addTensor(name, t, err)
}

// AddInitializerUint8 adds a UINT8 initializer and returns its name.
// MatMulNBits weights are UINT8 tensors of packed nibbles: see PackUint4.
func (b *Builder) AddInitializerUint8(name string, dims []int64, data []uint8) string {
	t, err := NewTensorUint8(name, dims, data)
	return b.addTensor(name, t, err)
}

// AddInitializerInt4 adds an INT4 initializer from one value in -8..7 per
// element, packed two per byte, and returns its name.
func (b *Builder) AddInitializerInt4(name string, dims []int64, vals []int8) string {
	t, err := NewTensorInt4(name, dims, vals)
	return b.addTensor(name, t, err)
}

// AddInitializerUint4 adds a UINT4 initializer from one value in 0..15 per
// element, packed two per byte, and returns its name.
func (b *Builder) AddInitializerUint4(name string, dims []int64, vals []uint8) string {
	t, err := NewTensorUint4(name, dims, vals)
	return b.addTensor(name, t, err)
}

// AddConstant adds a Constant node whose output, name, holds t, and returns
// name. Constants suit small values such as Reshape shapes; weights belong
// in initializers.
func (b *Builder) AddConstant(name string, t *onnxpb.TensorProto) string {
	if t == nil {
		b.errf("constant %q: nil tensor", name)
		return name
	}
	if t.GetName() == "" {
		t.Name = ptr(name)
	}
	b.AddNode("Constant", nil, []string{name}, AttrTensor("value", t))
	return name
}

// AddConstantFloat32 adds a FLOAT Constant node (empty dims: a scalar) and
// returns its output's name.
func (b *Builder) AddConstantFloat32(name string, dims []int64, data []float32) string {
	t, err := NewTensorFloat32(name, dims, data)
	if err != nil {
		b.errs = append(b.errs, fmt.Errorf("constant: %w", err))
		b.reserve(name)
		return name
	}
	return b.AddConstant(name, t)
}

// AddConstantInt64 adds an INT64 Constant node (empty dims: a scalar) and
// returns its output's name.
func (b *Builder) AddConstantInt64(name string, dims []int64, data []int64) string {
	t, err := NewTensorInt64(name, dims, data)
	if err != nil {
		b.errs = append(b.errs, fmt.Errorf("constant: %w", err))
		b.reserve(name)
		return name
	}
	return b.AddConstant(name, t)
}

// Node is a node added by a Builder.
type Node struct {
	// Proto is the node in the graph.
	Proto *onnxpb.NodeProto
	b     *Builder
}

// AddNode appends a node of the default ONNX domain. With nil outputs, the
// node gets one output with a unique name. The node is named uniquely after
// its op type; rename it with Named.
func (b *Builder) AddNode(opType string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *Node {
	return b.AddNodeDomain("", opType, inputs, outputs, attrs...)
}

// AddNodeDomain is AddNode for an operator of another domain. The
// com.microsoft domain is imported at version 1 unless already imported;
// other domains must be imported with ImportOpset.
func (b *Builder) AddNodeDomain(domain, opType string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *Node {
	if opType == "" {
		b.errf("node with no op_type")
	}
	name := b.Unique(opType)
	if outputs == nil {
		outputs = []string{b.Unique(name + "_out")}
	}
	b.reserve(outputs...)
	n := &onnxpb.NodeProto{
		Name:   ptr(name),
		OpType: ptr(opType),
		Input:  slices.Clone(inputs),
		Output: slices.Clone(outputs),
	}
	if domain != "" {
		n.Domain = ptr(domain)
		if _, ok := b.opsets[normDomain(domain)]; !ok && domain == MicrosoftDomain {
			b.opsets[MicrosoftDomain] = 1
		}
	}
	node := &Node{Proto: n, b: b}
	node.Attr(attrs...)
	b.graph.Node = append(b.graph.Node, n)
	return node
}

// Named renames the node and returns it.
func (n *Node) Named(name string) *Node {
	n.Proto.Name = ptr(name)
	n.b.reserve(name)
	return n
}

// Attr adds attributes to the node and returns it.
func (n *Node) Attr(attrs ...*onnxpb.AttributeProto) *Node {
	for _, a := range attrs {
		if a == nil {
			n.b.errf("node %q: nil attribute", n.Proto.GetName())
			continue
		}
		n.Proto.Attribute = append(n.Proto.Attribute, a)
	}
	return n
}

// Out returns the node's first output ("" if it has none).
func (n *Node) Out() string { return n.Output(0) }

// Output returns the node's i-th output ("" if it has no such output).
func (n *Node) Output(i int) string {
	if i < 0 || i >= len(n.Proto.Output) {
		return ""
	}
	return n.Proto.Output[i]
}

// AttrInt returns an INT attribute.
func AttrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: ptr(name), Type: onnxpb.AttributeProto_INT.Enum(), I: ptr(v)}
}

// AttrFloat returns a FLOAT attribute.
func AttrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: ptr(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: ptr(v)}
}

// AttrString returns a STRING attribute.
func AttrString(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: ptr(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

// AttrInts returns an INTS attribute.
func AttrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: ptr(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: slices.Clone(v)}
}

// AttrFloats returns a FLOATS attribute.
func AttrFloats(name string, v ...float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: ptr(name), Type: onnxpb.AttributeProto_FLOATS.Enum(), Floats: slices.Clone(v)}
}

// AttrStrings returns a STRINGS attribute.
func AttrStrings(name string, v ...string) *onnxpb.AttributeProto {
	a := &onnxpb.AttributeProto{Name: ptr(name), Type: onnxpb.AttributeProto_STRINGS.Enum()}
	for _, s := range v {
		a.Strings = append(a.Strings, []byte(s))
	}
	return a
}

// AttrTensor returns a TENSOR attribute (Constant's "value").
func AttrTensor(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: ptr(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t}
}

// AttrGraph returns a GRAPH attribute (If branches, Loop and Scan bodies).
func AttrGraph(name string, g *onnxpb.GraphProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: ptr(name), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: g}
}

// Build returns the model: IR version 10 for opset 15 and later (see
// SetIRVersion), producer "quantscope", the default domain and every domain
// used imported. Nodes are sorted topologically (stable, so nodes added in
// order stay in order) and the model is checked; Build returns every problem
// recorded while building or found by Check.
func (b *Builder) Build() (*Model, error) {
	if b.built {
		return nil, errors.New("build: Builder already built a model")
	}
	b.built = true
	if len(b.errs) > 0 {
		return nil, fmt.Errorf("build graph %q: %w", b.graph.GetName(), errors.Join(b.errs...))
	}
	mp := &onnxpb.ModelProto{
		IrVersion:     ptr(b.ir),
		ProducerName:  ptr(ProducerName),
		Graph:         b.graph,
		MetadataProps: b.meta,
	}
	if b.doc != "" {
		mp.DocString = ptr(b.doc)
	}
	domains := make([]string, 0, len(b.opsets))
	for d := range b.opsets {
		domains = append(domains, d)
	}
	slices.Sort(domains) // "" first
	for _, d := range domains {
		mp.OpsetImport = append(mp.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: ptr(d), Version: ptr(b.opsets[d])})
	}
	m := &Model{Proto: mp}
	if err := TopoSort(b.graph); err != nil {
		// Check lists undefined and duplicate values in full; only cycles
		// are TopoSort's alone.
		var cyc *cycleError
		if cerr := Check(m); cerr != nil && !errors.As(err, &cyc) {
			err = cerr
		} else if cerr != nil {
			err = errors.Join(cerr, err)
		}
		return nil, fmt.Errorf("build graph %q: %w", b.graph.GetName(), err)
	}
	if err := Check(m); err != nil {
		return nil, fmt.Errorf("build graph %q: %w", b.graph.GetName(), err)
	}
	return m, nil
}
