package onnx

import (
	"strconv"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// Namer hands out names no value or node of a graph uses: prefix itself,
// else prefix_1, prefix_2, ... The graph builder, the optimizer and the
// quantizers all name what they add through one.
type Namer struct {
	used map[string]bool
	next map[string]int
}

// NewNamer returns a Namer with no name taken.
func NewNamer() *Namer { return &Namer{used: map[string]bool{}, next: map[string]int{}} }

// Reserve marks names as taken ("" is ignored).
func (n *Namer) Reserve(names ...string) {
	for _, s := range names {
		if s != "" {
			n.used[s] = true
		}
	}
}

// Taken reports whether name is taken.
func (n *Namer) Taken(name string) bool { return n.used[name] }

// Unique returns a name starting with prefix ("v" when empty) that is not
// taken, and takes it.
func (n *Namer) Unique(prefix string) string {
	if prefix == "" {
		prefix = "v"
	}
	name := prefix
	for n.used[name] {
		n.next[prefix]++
		name = prefix + "_" + strconv.Itoa(n.next[prefix])
	}
	n.used[name] = true
	return name
}

// Index answers what graph transforms ask about a graph: who produces and
// who reads each value (subgraph readers included), which values are
// constants, which are graph inputs and outputs, and which names are
// free. Rebuild it after structural changes; names it handed out stay
// taken.
type Index struct {
	G     *onnxpb.GraphProto
	Inits map[string]*onnxpb.TensorProto
	// Producer maps a value to the node writing it.
	Producer map[string]*onnxpb.NodeProto
	// Consumers maps a value to the nodes of this graph reading it, one
	// entry per node however many of its inputs it is.
	Consumers map[string][]*onnxpb.NodeProto
	// Outputs are the graph's outputs.
	Outputs map[string]bool
	// Inputs are the graph inputs that are not initializers.
	Inputs map[string]*onnxpb.ValueInfoProto
	// Declared are all graph inputs, initializers listed as inputs (old IR
	// versions, overridable at run time) included.
	Declared map[string]bool
	// Implicit are the values of this graph read inside subgraphs of its
	// nodes (If, Loop and Scan bodies).
	Implicit map[string]bool
	Names    *Namer
}

// NewIndex indexes g.
func NewIndex(g *onnxpb.GraphProto) *Index {
	ix := &Index{G: g, Names: NewNamer()}
	ix.Rebuild()
	return ix
}

// Rebuild recomputes the index from the graph.
func (ix *Index) Rebuild() {
	g := ix.G
	ix.Inits = make(map[string]*onnxpb.TensorProto, len(g.GetInitializer()))
	ix.Producer = map[string]*onnxpb.NodeProto{}
	ix.Consumers = map[string][]*onnxpb.NodeProto{}
	ix.Outputs = map[string]bool{}
	ix.Inputs = map[string]*onnxpb.ValueInfoProto{}
	ix.Declared = map[string]bool{}
	ix.Implicit = map[string]bool{}
	for _, t := range g.GetInitializer() {
		ix.Inits[t.GetName()] = t
		ix.Names.Reserve(t.GetName())
	}
	for _, in := range g.GetInput() {
		ix.Names.Reserve(in.GetName())
		ix.Declared[in.GetName()] = true
		if _, isInit := ix.Inits[in.GetName()]; !isInit {
			ix.Inputs[in.GetName()] = in
		}
	}
	for _, out := range g.GetOutput() {
		ix.Outputs[out.GetName()] = true
		ix.Names.Reserve(out.GetName())
	}
	for _, vi := range g.GetValueInfo() {
		ix.Names.Reserve(vi.GetName())
	}
	for _, n := range g.GetNode() {
		ix.Names.Reserve(n.GetName())
		for _, o := range n.GetOutput() {
			if o != "" {
				ix.Producer[o] = n
				ix.Names.Reserve(o)
			}
		}
		seen := map[string]bool{}
		for _, in := range n.GetInput() {
			if in != "" && !seen[in] {
				seen[in] = true
				ix.Consumers[in] = append(ix.Consumers[in], n)
			}
		}
		for _, sg := range Subgraphs(n) {
			for _, v := range FreeInputs(sg) {
				ix.Implicit[v] = true
			}
		}
	}
}

// Unique returns a fresh name starting with prefix and takes it.
func (ix *Index) Unique(prefix string) string { return ix.Names.Unique(prefix) }

// ConstTensor returns the tensor behind a constant value: an initializer
// that is not also a graph input (old IR versions list initializers as
// inputs, which makes them overridable at run time), or the value of a
// Constant node (value, value_float(s), value_int(s)). nil otherwise.
func (ix *Index) ConstTensor(name string) *onnxpb.TensorProto {
	if name == "" {
		return nil
	}
	if t, ok := ix.Inits[name]; ok {
		if ix.Declared[name] {
			return nil
		}
		return t
	}
	if p := ix.Producer[name]; p != nil && p.GetOpType() == "Constant" && IsDefaultDomain(p) {
		return ConstantValue(p)
	}
	return nil
}

// Read reports whether anything reads v: a node of this graph, a
// subgraph, or the graph's outputs.
func (ix *Index) Read(v string) bool {
	return len(ix.Consumers[v]) > 0 || ix.Outputs[v] || ix.Implicit[v]
}

// OnlyReader returns the single node reading v, or nil when v has no
// reader, several, is a graph output or is read inside a subgraph.
func (ix *Index) OnlyReader(v string) *onnxpb.NodeProto {
	if v == "" || ix.Outputs[v] || ix.Implicit[v] {
		return nil
	}
	if cs := ix.Consumers[v]; len(cs) == 1 {
		return cs[0]
	}
	return nil
}

// ReadOnlyBy reports whether v is read by the given nodes only: no other
// node, no subgraph, and it is no graph output. A rewrite that removes
// those nodes may then remove v.
func (ix *Index) ReadOnlyBy(v string, readers ...*onnxpb.NodeProto) bool {
	if v == "" || ix.Outputs[v] || ix.Implicit[v] {
		return false
	}
	for _, c := range ix.Consumers[v] {
		found := false
		for _, r := range readers {
			if c == r {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
