package onnx

import (
	"container/heap"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// MaxIRVersion is the newest IR version Check accepts: the newest that
// ONNX Runtime 1.29 reads.
const MaxIRVersion = 11

// ErrInvalidGraph is matched (errors.Is) by the errors of Check and
// TopoSort.
var ErrInvalidGraph = errors.New("invalid graph")

// CheckError lists every problem Check or TopoSort found, each naming the
// node, value or tensor involved. Its message has one problem per line.
type CheckError struct {
	Problems []error
}

// Error implements error.
func (e *CheckError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems.
func (e *CheckError) Unwrap() []error { return e.Problems }

// Is reports whether target is ErrInvalidGraph.
func (e *CheckError) Is(target error) bool { return target == ErrInvalidGraph }

// nodeLabel names a node in messages: by name when it has one, else by
// index.
func nodeLabel(n *onnxpb.NodeProto, i int) string {
	if n.GetName() != "" {
		return fmt.Sprintf("node %q (%s)", n.GetName(), n.GetOpType())
	}
	return fmt.Sprintf("node #%d (%s)", i, n.GetOpType())
}

// scope is the set of value names visible in a graph, chained to the
// enclosing graphs' scopes for subgraphs.
type scope struct {
	names  map[string]string // value name → what produces it
	parent *scope
}

func (s *scope) lookup(name string) (string, bool) {
	for ; s != nil; s = s.parent {
		if p, ok := s.names[name]; ok {
			return p, true
		}
	}
	return "", false
}

// checker collects the problems of one model.
type checker struct {
	problems      []error
	opsets        map[string]int64
	missingDomain map[string]bool
}

func (c *checker) addf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Errorf(format, args...))
}

// Check reports what ONNX Runtime would reject when loading m: a missing or
// unsupported ir_version, missing or duplicate opset imports, nodes of a
// domain that is not imported, node inputs that are not defined before use
// (graph inputs, initializers, outputs of earlier nodes, values of enclosing
// graphs; "" marks an omitted optional input), values produced twice,
// duplicate initializer or node names, tensors whose data does not match
// their dims and type, and graph outputs nothing produces. Subgraphs are
// checked too. It returns nil or a *CheckError listing every problem.
func Check(m *Model) error {
	c := &checker{opsets: map[string]int64{}, missingDomain: map[string]bool{}}
	if m == nil || m.Proto == nil {
		c.addf("nil model")
		return c.err()
	}
	mp := m.Proto
	switch ir := mp.GetIrVersion(); {
	case mp.IrVersion == nil:
		c.addf("model has no ir_version")
	case ir < 1 || ir > MaxIRVersion:
		c.addf("ir_version %d is not supported (want 1 to %d)", ir, MaxIRVersion)
	}
	if len(mp.GetOpsetImport()) == 0 {
		c.addf("model has no opset_import")
	}
	for _, op := range mp.GetOpsetImport() {
		d := normDomain(op.GetDomain())
		if _, dup := c.opsets[d]; dup {
			c.addf("opset_import lists %s twice", domainLabel(d))
		}
		if op.GetVersion() < 1 {
			c.addf("opset_import of %s has version %d", domainLabel(d), op.GetVersion())
		}
		c.opsets[d] = op.GetVersion()
	}
	if mp.GetGraph() == nil {
		c.addf("model has no graph")
		return c.err()
	}
	c.graph(mp.GetGraph(), nil, "")
	return c.err()
}

func (c *checker) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return &CheckError{Problems: c.problems}
}

func domainLabel(d string) string {
	if d == "" {
		return "the default domain (ai.onnx)"
	}
	return fmt.Sprintf("domain %q", d)
}

// graph checks g, whose enclosing graphs' values are outer. Messages start
// with prefix, which names the subgraph ("" for the main graph).
func (c *checker) graph(g *onnxpb.GraphProto, outer *scope, prefix string) {
	sc := &scope{names: map[string]string{}, parent: outer}
	for i, vi := range g.GetInput() {
		name := vi.GetName()
		switch _, dup := sc.names[name]; {
		case name == "":
			c.addf("%sgraph input #%d has no name", prefix, i)
		case dup:
			c.addf("%sgraph input %q is declared twice", prefix, name)
		default:
			sc.names[name] = "graph input"
		}
	}
	inits := map[string]bool{}
	for i, t := range g.GetInitializer() {
		name := t.GetName()
		switch {
		case name == "":
			c.addf("%sinitializer #%d has no name", prefix, i)
		case inits[name]:
			c.addf("%sinitializer %q is defined twice", prefix, name)
		default:
			inits[name] = true
			sc.names[name] = "initializer" // may also be a graph input
		}
		if err := tensorDataError(t); err != nil {
			c.addf("%sinitializer %q: %v", prefix, name, err)
		}
	}
	for i, s := range g.GetSparseInitializer() {
		name := s.GetValues().GetName()
		if name == "" {
			c.addf("%ssparse initializer #%d has no name", prefix, i)
			continue
		}
		if _, dup := sc.names[name]; dup && !inits[name] {
			c.addf("%ssparse initializer %q is defined twice", prefix, name)
		}
		sc.names[name] = "sparse initializer"
	}

	// Where each value is produced, to tell "defined later" from "never".
	producer := map[string]int{}
	for i, n := range g.GetNode() {
		for _, out := range n.GetOutput() {
			if _, ok := producer[out]; !ok && out != "" {
				producer[out] = i
			}
		}
	}
	nodeNames := map[string]int{}
	for i, n := range g.GetNode() {
		label := nodeLabel(n, i)
		if name := n.GetName(); name != "" {
			if j, dup := nodeNames[name]; dup {
				c.addf("%s%s: node name is already used by %s", prefix, label, nodeLabel(g.GetNode()[j], j))
			} else {
				nodeNames[name] = i
			}
		}
		if n.GetOpType() == "" {
			c.addf("%s%s: no op_type", prefix, label)
		}
		d := normDomain(n.GetDomain())
		if _, ok := c.opsets[d]; !ok && !c.missingDomain[d] {
			c.missingDomain[d] = true
			c.addf("%s%s: %s is not in the model's opset_import", prefix, label, domainLabel(d))
		}
		for _, in := range n.GetInput() {
			if in == "" {
				continue
			}
			if _, ok := sc.lookup(in); ok {
				continue
			}
			if j, later := producer[in]; later && j >= i {
				c.addf("%s%s: input %q is produced later, by %s (nodes are not in topological order)",
					prefix, label, in, nodeLabel(g.GetNode()[j], j))
			} else {
				c.addf("%s%s: input %q is not defined", prefix, label, in)
			}
		}
		attrs := map[string]bool{}
		for k, a := range n.GetAttribute() {
			switch name := a.GetName(); {
			case name == "":
				c.addf("%s%s: attribute #%d has no name", prefix, label, k)
			case attrs[name]:
				c.addf("%s%s: attribute %q is given twice", prefix, label, name)
			default:
				attrs[name] = true
			}
			c.attrTensors(a, fmt.Sprintf("%s%s: attribute %q", prefix, label, a.GetName()))
			for _, sg := range append([]*onnxpb.GraphProto{a.GetG()}, a.GetGraphs()...) {
				if sg != nil {
					c.graph(sg, sc, fmt.Sprintf("%sgraph %q in %s: ", prefix, sg.GetName(), label))
				}
			}
		}
		for _, out := range n.GetOutput() {
			if out == "" {
				continue
			}
			if p, dup := sc.names[out]; dup {
				c.addf("%s%s: output %q is already produced by %s", prefix, label, out, p)
				continue
			}
			sc.names[out] = label
		}
	}
	for i, vi := range g.GetOutput() {
		name := vi.GetName()
		if name == "" {
			c.addf("%sgraph output #%d has no name", prefix, i)
			continue
		}
		if _, ok := sc.lookup(name); !ok {
			c.addf("%sgraph output %q is not produced by any node, graph input or initializer", prefix, name)
		}
	}
}

// attrTensors checks the data of the tensors held in attribute a.
func (c *checker) attrTensors(a *onnxpb.AttributeProto, label string) {
	ts := a.GetTensors()
	if t := a.GetT(); t != nil {
		ts = append([]*onnxpb.TensorProto{t}, ts...)
	}
	for _, t := range ts {
		if err := tensorDataError(t); err != nil {
			c.addf("%s: tensor %q: %v", label, t.GetName(), err)
		}
	}
}

// TopoSort reorders g's nodes so that every node comes after the nodes
// producing its inputs. The sort is stable: among nodes that could go next,
// the one earliest in the current order goes first, so a sorted graph keeps
// its order. Values that a node's subgraphs take from the enclosing graph
// count as inputs of that node. TopoSort sorts g alone, not its subgraphs,
// and treats g as a main graph: every input must be a graph input, an
// initializer or a node output.
//
// On a cycle, an input that no node produces, or a value produced by two
// nodes, g is left unchanged and the *CheckError names the nodes involved.
func TopoSort(g *onnxpb.GraphProto) error {
	nodes := g.GetNode()
	available := map[string]bool{"": true}
	for _, vi := range g.GetInput() {
		available[vi.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		available[t.GetName()] = true
	}
	for _, s := range g.GetSparseInitializer() {
		available[s.GetValues().GetName()] = true
	}
	var problems []error
	producer := map[string]int{}
	for i, n := range nodes {
		for _, out := range n.GetOutput() {
			if out == "" {
				continue
			}
			if j, dup := producer[out]; dup {
				problems = append(problems, fmt.Errorf("%s: output %q is also produced by %s", nodeLabel(n, i), out, nodeLabel(nodes[j], j)))
				continue
			}
			producer[out] = i
		}
	}
	deps := make([][]int, len(nodes))  // producers each node waits for
	users := make([][]int, len(nodes)) // nodes waiting for each node
	indeg := make([]int, len(nodes))
	for i, n := range nodes {
		ins := slices.Clone(n.GetInput())
		for _, sg := range subgraphs(n) {
			ins = append(ins, freeNames(sg)...)
		}
		seen := map[int]bool{}
		for _, in := range ins {
			if available[in] {
				continue
			}
			j, ok := producer[in]
			if !ok {
				problems = append(problems, fmt.Errorf("%s: input %q is never produced", nodeLabel(n, i), in))
				continue
			}
			if !seen[j] {
				seen[j] = true
				deps[i] = append(deps[i], j)
				users[j] = append(users[j], i)
				indeg[i]++
			}
		}
	}
	if len(problems) > 0 {
		return &CheckError{Problems: problems}
	}

	ready := &intHeap{}
	for i := range nodes {
		if indeg[i] == 0 {
			heap.Push(ready, i)
		}
	}
	order := make([]int, 0, len(nodes))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		order = append(order, i)
		for _, u := range users[i] {
			if indeg[u]--; indeg[u] == 0 {
				heap.Push(ready, u)
			}
		}
	}
	if len(order) < len(nodes) {
		return &CheckError{Problems: []error{&cycleError{cycleMessage(nodes, deps, indeg)}}}
	}
	sorted := make([]*onnxpb.NodeProto, len(nodes))
	for k, i := range order {
		sorted[k] = nodes[i]
	}
	copy(nodes, sorted)
	return nil
}

// cycleError is TopoSort's error for a cycle.
type cycleError struct{ msg string }

func (e *cycleError) Error() string { return e.msg }

// cycleMessage finds a cycle among the nodes left unsorted (indeg > 0) and
// names its nodes.
func cycleMessage(nodes []*onnxpb.NodeProto, deps [][]int, indeg []int) string {
	start := slices.IndexFunc(indeg, func(d int) bool { return d > 0 })
	// Walk back through unsorted producers until a node repeats: every
	// unsorted node waits for at least one unsorted producer.
	pos := map[int]int{}
	var path []int
	i := start
	for {
		if k, seen := pos[i]; seen {
			path = path[k:]
			break
		}
		pos[i] = len(path)
		path = append(path, i)
		next := -1
		for _, j := range deps[i] {
			if indeg[j] > 0 {
				next = j
				break
			}
		}
		if next < 0 { // cannot happen; report the node found so far
			break
		}
		i = next
	}
	slices.Reverse(path) // producers first
	first := slices.Index(path, slices.Min(path))
	path = append(path[first:], path[:first]...) // start at the earliest node
	names := make([]string, 0, len(path)+1)
	for _, j := range path {
		names = append(names, nodeLabel(nodes[j], j))
	}
	names = append(names, names[0])
	return fmt.Sprintf("%s is in a cycle: %s", names[0], strings.Join(names, " → "))
}

// freeNames returns the values that g and its subgraphs use but do not
// define: the values they take from enclosing graphs.
func freeNames(g *onnxpb.GraphProto) []string {
	defined := map[string]bool{"": true}
	for _, vi := range g.GetInput() {
		defined[vi.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		defined[t.GetName()] = true
	}
	for _, s := range g.GetSparseInitializer() {
		defined[s.GetValues().GetName()] = true
	}
	for _, n := range g.GetNode() {
		for _, out := range n.GetOutput() {
			defined[out] = true
		}
	}
	var free []string
	use := func(name string) {
		if !defined[name] {
			defined[name] = true // report once
			free = append(free, name)
		}
	}
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			use(in)
		}
		for _, sg := range subgraphs(n) {
			for _, name := range freeNames(sg) {
				use(name)
			}
		}
	}
	for _, vi := range g.GetOutput() {
		use(vi.GetName())
	}
	return free
}

// intHeap is a min-heap of node indices.
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
