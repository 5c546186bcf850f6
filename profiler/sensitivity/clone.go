package sensitivity

import (
	"google.golang.org/protobuf/proto"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// cloneFor copies m for quantizing the layers whose outputs are in outs:
// the graph's structure and the tensors those layers (and the nodes
// reading their outputs, such as a bias Add) use are copied; every other
// initializer is shared with m. The quantizer rewrites nodes and empties
// the weights it converts, never the tensors of excluded layers, so m is
// left as it was while a 330 MB model costs a few MB to copy, not 330.
func cloneFor(m *onnx.Model, outs map[string]bool) *onnx.Model {
	g := m.Proto.GetGraph()
	inits := g.Initializer
	g.Initializer = nil
	mp := proto.Clone(m.Proto).(*onnxpb.ModelProto)
	g.Initializer = inits

	touched := map[string]bool{}
	for _, n := range g.GetNode() {
		reads := false
		for _, o := range n.GetOutput() {
			reads = reads || outs[o]
		}
		for _, in := range n.GetInput() {
			reads = reads || outs[in]
		}
		if reads {
			for _, in := range n.GetInput() {
				touched[in] = true
			}
		}
	}
	ng := mp.GetGraph()
	ng.Initializer = make([]*onnxpb.TensorProto, len(inits))
	for i, t := range inits {
		if touched[t.GetName()] {
			ng.Initializer[i] = proto.Clone(t).(*onnxpb.TensorProto)
		} else {
			ng.Initializer[i] = t
		}
	}
	return &onnx.Model{Proto: mp, Path: m.Path}
}
