package onnx

import "github.com/quantscope/quantscope/models/onnx/onnxpb"

// Attr returns the node's attribute called name, or nil.
func Attr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// AttrIntOr returns an INT attribute, or def when the node lacks it.
func AttrIntOr(n *onnxpb.NodeProto, name string, def int64) int64 {
	if a := Attr(n, name); a != nil {
		return a.GetI()
	}
	return def
}

// AttrFloatOr returns a FLOAT attribute, or def when the node lacks it.
func AttrFloatOr(n *onnxpb.NodeProto, name string, def float32) float32 {
	if a := Attr(n, name); a != nil {
		return a.GetF()
	}
	return def
}

// AttrStringOr returns a STRING attribute, or def when the node lacks it.
func AttrStringOr(n *onnxpb.NodeProto, name, def string) string {
	if a := Attr(n, name); a != nil {
		return string(a.GetS())
	}
	return def
}

// IsDefaultDomain reports whether n is an ai.onnx operator.
func IsDefaultDomain(n *onnxpb.NodeProto) bool {
	d := n.GetDomain()
	return d == "" || d == "ai.onnx"
}

// Subgraphs returns the graphs held in a node's attributes (If, Loop, Scan bodies).
func Subgraphs(n *onnxpb.NodeProto) []*onnxpb.GraphProto {
	var out []*onnxpb.GraphProto
	for _, a := range n.GetAttribute() {
		if a.GetG() != nil {
			out = append(out, a.GetG())
		}
		out = append(out, a.GetGraphs()...)
	}
	return out
}

// FreeInputs lists the values a subgraph (and its own subgraphs) reads from
// enclosing scopes, conservatively: every input name not produced inside.
func FreeInputs(g *onnxpb.GraphProto) []string {
	local := map[string]bool{}
	for _, in := range g.GetInput() {
		local[in.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		local[t.GetName()] = true
	}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			local[o] = true
		}
	}
	var out []string
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			if in != "" && !local[in] {
				out = append(out, in)
			}
		}
		for _, sg := range Subgraphs(n) {
			for _, name := range FreeInputs(sg) {
				if !local[name] {
					out = append(out, name)
				}
			}
		}
	}
	return out
}
