package optimize

import (
	"fmt"
	"math"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"google.golang.org/protobuf/proto"
)

// graph is a model's main graph as the passes see it: the shared graph
// index (onnx.Index: producers, readers, subgraph readers, constants,
// free names) and the pass's pending changes. A pass matches on the index,
// marks the nodes it replaces dead and adds new nodes and initializers;
// commit then applies the changes, sorts the graph, removes what nothing
// uses any more and rebuilds the index.
type graph struct {
	*onnx.Index
	m     *onnx.Model
	g     *onnxpb.GraphProto
	opset int64 // the default domain's opset

	dead     map[*onnxpb.NodeProto]bool
	fresh    []*onnxpb.NodeProto
	newInits []*onnxpb.TensorProto
	msDomain bool // a com.microsoft node was added
}

func newGraph(m *onnx.Model) *graph {
	gr := &graph{m: m, g: m.Graph(), Index: onnx.NewIndex(m.Graph())}
	gr.opset = m.Opset("")
	gr.rebuild()
	return gr
}

// rebuild recomputes the index from the graph and drops pending changes.
func (gr *graph) rebuild() {
	gr.Rebuild()
	gr.dead = map[*onnxpb.NodeProto]bool{}
	gr.fresh = nil
	gr.newInits = nil
}

// unique returns a name starting with prefix that no value or node of the
// graph uses, and reserves it.
func (gr *graph) unique(prefix string) string { return gr.Unique(prefix) }

// isConst reports whether name is a constant: an initializer that is not
// also a graph input (old IR versions list initializers as inputs, which
// makes them overridable at run time), or the output of a Constant node.
func (gr *graph) isConst(name string) bool { return gr.constTensor(name) != nil }

// constTensor returns the tensor behind a constant value (see
// onnx.Index.ConstTensor), or nil; a Constant node this pass replaced is
// no longer one.
func (gr *graph) constTensor(name string) *onnxpb.TensorProto {
	if p := gr.Producer[name]; p != nil && gr.dead[p] {
		return nil
	}
	return gr.ConstTensor(name)
}

// constantValue returns a Constant node's value as a tensor (value,
// value_float(s), value_int(s)), or nil for other forms.
func constantValue(n *onnxpb.NodeProto) *onnxpb.TensorProto { return onnx.ConstantValue(n) }

// constFloats decodes a constant FLOAT value and its dims.
func (gr *graph) constFloats(name string) ([]float32, []int64, bool) {
	t := gr.constTensor(name)
	if t == nil || onnx.DataTypeOf(t) != onnx.Float || onnx.IsExternal(t) {
		return nil, nil, false
	}
	v, err := onnx.TensorFloat32(t)
	if err != nil {
		return nil, nil, false
	}
	return v, t.GetDims(), true
}

// constInts decodes a constant INT64 or INT32 value.
func (gr *graph) constInts(name string) ([]int64, []int64, bool) {
	t := gr.constTensor(name)
	if t == nil || onnx.IsExternal(t) {
		return nil, nil, false
	}
	return intsOf(t)
}

// scalarFloat returns the value of a constant float tensor of one element
// whose rank does not exceed maxRank (a scalar, [1], [1, 1], ...).
func (gr *graph) scalarFloat(name string, maxRank int) (float64, bool) {
	v, dims, ok := gr.constFloats(name)
	if !ok || len(v) != 1 || len(dims) > maxRank {
		return 0, false
	}
	f := float64(v[0])
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// constDerived reports whether a value depends on constants only (no graph
// input reaches it), so ONNX Runtime folds it when the session starts.
func (gr *graph) constDerived(name string) bool {
	memo := map[string]bool{}
	var walk func(v string, depth int) bool
	walk = func(v string, depth int) bool {
		if v == "" {
			return true
		}
		if r, ok := memo[v]; ok {
			return r
		}
		if depth > 64 {
			return false
		}
		memo[v] = false // cycles and deep chains count as not constant
		var r bool
		switch {
		case gr.isConst(v):
			r = true
		case gr.Declared[v]:
			r = false
		default:
			p := gr.Producer[v]
			if p == nil || !onnx.IsDefaultDomain(p) || len(onnx.Subgraphs(p)) > 0 || nondeterministic[p.GetOpType()] {
				r = false
			} else {
				r = true
				for _, in := range p.GetInput() {
					if !walk(in, depth+1) {
						r = false
						break
					}
				}
			}
		}
		memo[v] = r
		return r
	}
	return walk(name, 0)
}

// nondeterministic ops never count as constant.
var nondeterministic = map[string]bool{
	"RandomNormal": true, "RandomNormalLike": true, "RandomUniform": true,
	"RandomUniformLike": true, "Multinomial": true, "Bernoulli": true,
}

// only returns the single node reading v, or nil when v has no consumer,
// several, is a graph output or is read by a subgraph.
func (gr *graph) only(v string) *onnxpb.NodeProto { return gr.OnlyReader(v) }

// private reports whether v is read only by the given nodes (and is no
// graph output, nor read by a subgraph), so a fusion that removes them may
// remove v.
func (gr *graph) private(v string, readers ...*onnxpb.NodeProto) bool {
	return gr.ReadOnlyBy(v, readers...)
}

// live reports whether n is still in the graph (not replaced by this pass).
func (gr *graph) live(n *onnxpb.NodeProto) bool { return n != nil && !gr.dead[n] }

// kill marks nodes replaced.
func (gr *graph) kill(nodes ...*onnxpb.NodeProto) {
	for _, n := range nodes {
		if n != nil {
			gr.dead[n] = true
		}
	}
}

// addNode adds a node of domain (""/MicrosoftDomain) named after name.
func (gr *graph) addNode(domain, op, name string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	n := &onnxpb.NodeProto{
		OpType:    proto.String(op),
		Name:      proto.String(gr.unique(name)),
		Input:     inputs,
		Output:    outputs,
		Attribute: attrs,
	}
	if domain != "" {
		n.Domain = proto.String(domain)
		if domain == onnx.MicrosoftDomain {
			gr.msDomain = true
		}
	}
	gr.fresh = append(gr.fresh, n)
	return n
}

// addInit adds an initializer under a fresh name starting with prefix and
// returns the name.
func (gr *graph) addInit(prefix string, t *onnxpb.TensorProto) string {
	name := gr.unique(prefix)
	t.Name = proto.String(name)
	gr.newInits = append(gr.newInits, t)
	return name
}

// addFloats adds a FLOAT initializer.
func (gr *graph) addFloats(prefix string, dims []int64, v []float32) (string, error) {
	t, err := onnx.NewTensorFloat32("", dims, v)
	if err != nil {
		return "", fmt.Errorf("initializer %s: %w", prefix, err)
	}
	return gr.addInit(prefix, t), nil
}

// addInts adds an INT64 initializer.
func (gr *graph) addInts(prefix string, dims []int64, v []int64) (string, error) {
	t, err := onnx.NewTensorInt64("", dims, v)
	if err != nil {
		return "", fmt.Errorf("initializer %s: %w", prefix, err)
	}
	return gr.addInit(prefix, t), nil
}

// value returns a fresh value name.
func (gr *graph) value(prefix string) string { return gr.unique(prefix) }

// rename makes every reader of old read new instead (nodes of this graph
// and graph outputs are not touched: callers never rename those).
func (gr *graph) rename(old, new string) {
	for _, c := range gr.Consumers[old] {
		for i, in := range c.GetInput() {
			if in == old {
				c.Input[i] = new
			}
		}
	}
	for _, n := range gr.fresh {
		for i, in := range n.GetInput() {
			if in == old {
				n.Input[i] = new
			}
		}
	}
}

// changed reports whether the pass has changes to commit.
func (gr *graph) changed() bool {
	return len(gr.dead) > 0 || len(gr.fresh) > 0 || len(gr.newInits) > 0
}

// commit applies the pass's changes: dead nodes out, new nodes and
// initializers in, the com.microsoft domain imported when used, then a
// topological sort, the removal of whatever nothing reads any more, and
// a fresh index.
func (gr *graph) commit() error {
	if !gr.changed() {
		return nil
	}
	g := gr.g
	nodes := make([]*onnxpb.NodeProto, 0, len(g.GetNode())+len(gr.fresh))
	for _, n := range g.GetNode() {
		if !gr.dead[n] {
			nodes = append(nodes, n)
		}
	}
	nodes = append(nodes, gr.fresh...)
	g.Node = nodes
	g.Initializer = append(g.Initializer, gr.newInits...)
	if gr.msDomain {
		importMicrosoft(gr.m)
	}
	if err := onnx.TopoSort(g); err != nil {
		return fmt.Errorf("sort the optimized graph: %w", err)
	}
	gr.rebuild()
	gr.sweep()
	return nil
}

// sweep removes nodes none of whose outputs is read (repeatedly),
// initializers nothing reads, and value_info of values that no longer
// exist. Graph inputs, initializers listed as inputs, and nodes with
// subgraphs stay.
func (gr *graph) sweep() int {
	g := gr.g
	removed := 0
	for {
		keep := g.Node[:0]
		drop := 0
		for _, n := range g.GetNode() {
			if gr.needed(n) {
				keep = append(keep, n)
				continue
			}
			drop++
		}
		// Clear the tail so dropped nodes are not kept alive.
		for i := len(keep); i < len(g.Node); i++ {
			g.Node[i] = nil
		}
		g.Node = keep
		if drop == 0 {
			break
		}
		removed += drop
		gr.rebuild()
	}
	inits := g.Initializer[:0]
	for _, t := range g.GetInitializer() {
		name := t.GetName()
		if len(gr.Consumers[name]) > 0 || gr.Outputs[name] || gr.Declared[name] || gr.Implicit[name] {
			inits = append(inits, t)
		}
	}
	for i := len(inits); i < len(g.Initializer); i++ {
		g.Initializer[i] = nil
	}
	g.Initializer = inits
	exists := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			exists[o] = true
		}
	}
	vis := g.ValueInfo[:0]
	for _, vi := range g.GetValueInfo() {
		if exists[vi.GetName()] {
			vis = append(vis, vi)
		}
	}
	for i := len(vis); i < len(g.ValueInfo); i++ {
		g.ValueInfo[i] = nil
	}
	g.ValueInfo = vis
	gr.rebuild()
	return removed
}

// needed reports whether a node must stay: one of its outputs is read or
// is a graph output, or it has side effects we do not model.
func (gr *graph) needed(n *onnxpb.NodeProto) bool {
	if len(onnx.Subgraphs(n)) > 0 || !onnx.IsDefaultDomain(n) && n.GetDomain() != onnx.MicrosoftDomain {
		return true
	}
	for _, o := range n.GetOutput() {
		if o == "" {
			continue
		}
		if len(gr.Consumers[o]) > 0 || gr.Outputs[o] || gr.Implicit[o] {
			return true
		}
	}
	return false
}

// importMicrosoft imports the com.microsoft domain at version 1 unless it
// is imported already.
func importMicrosoft(m *onnx.Model) {
	if m.Opset(onnx.MicrosoftDomain) != 0 {
		return
	}
	m.Proto.OpsetImport = append(m.Proto.OpsetImport, &onnxpb.OperatorSetIdProto{
		Domain:  proto.String(onnx.MicrosoftDomain),
		Version: proto.Int64(1),
	})
}

// is reports whether n is a live ai.onnx node of type op.
func (gr *graph) is(n *onnxpb.NodeProto, op string) bool {
	return n != nil && !gr.dead[n] && onnx.IsDefaultDomain(n) && n.GetOpType() == op
}

// attrInts returns an INTS attribute and whether it is present.
func attrInts(n *onnxpb.NodeProto, name string) ([]int64, bool) {
	if a := onnx.Attr(n, name); a != nil {
		return a.GetInts(), true
	}
	return nil, false
}

// in returns a node's i-th input, "" when absent.
func in(n *onnxpb.NodeProto, i int) string {
	if i < len(n.GetInput()) {
		return n.GetInput()[i]
	}
	return ""
}

// out0 returns a node's first output, "" when absent.
func out0(n *onnxpb.NodeProto) string {
	if len(n.GetOutput()) > 0 {
		return n.GetOutput()[0]
	}
	return ""
}

// usedOutputs counts a node's outputs that are read or are graph outputs.
func (gr *graph) usedOutputs(n *onnxpb.NodeProto) int {
	c := 0
	for _, o := range n.GetOutput() {
		if o != "" && (len(gr.Consumers[o]) > 0 || gr.Outputs[o] || gr.Implicit[o]) {
			c++
		}
	}
	return c
}

// singleOutput reports whether only the node's first output is used.
func (gr *graph) singleOutput(n *onnxpb.NodeProto) bool {
	for i, o := range n.GetOutput() {
		if i > 0 && o != "" && (len(gr.Consumers[o]) > 0 || gr.Outputs[o] || gr.Implicit[o]) {
			return false
		}
	}
	return len(n.GetOutput()) > 0 && n.GetOutput()[0] != ""
}

// other returns the input of a two-input node that is not v ("" when the
// node does not read v, or reads it twice).
func other(n *onnxpb.NodeProto, v string) string {
	ins := n.GetInput()
	if len(ins) != 2 {
		return ""
	}
	switch {
	case ins[0] == v && ins[1] != v:
		return ins[1]
	case ins[1] == v && ins[0] != v:
		return ins[0]
	}
	return ""
}

// label names a node for reports.
func label(n *onnxpb.NodeProto) string {
	if n.GetName() != "" {
		return n.GetName()
	}
	if len(n.GetOutput()) > 0 {
		return n.GetOpType() + "→" + n.GetOutput()[0]
	}
	return n.GetOpType()
}
