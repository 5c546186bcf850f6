package quant_test

import (
	"context"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/quant/quanttest"
	"google.golang.org/protobuf/proto"
)

// constantWeights rewrites a model's weights the ways older and converted
// exports carry them: every float initializer of more than 128 values as
// a Constant node read through an Identity (older exporters, converters),
// and every bias as a float16 initializer behind a Cast. The function is
// unchanged.
func constantWeights(t testing.TB, m *onnx.Model) *onnx.Model {
	t.Helper()
	g := m.Graph()
	var nodes []*onnxpb.NodeProto
	keep := g.Initializer[:0]
	for _, it := range g.GetInitializer() {
		name := it.GetName()
		n, _ := onnx.Numel(it.GetDims())
		switch {
		case onnx.DataTypeOf(it) == onnx.Float && n > 128:
			c := proto.Clone(it).(*onnxpb.TensorProto)
			c.Name = nil
			nodes = append(nodes,
				&onnxpb.NodeProto{OpType: proto.String("Constant"), Output: []string{name + "_const"}, Attribute: []*onnxpb.AttributeProto{onnx.AttrTensor("value", c)}},
				&onnxpb.NodeProto{OpType: proto.String("Identity"), Input: []string{name + "_const"}, Output: []string{name}})
		case onnx.DataTypeOf(it) == onnx.Float && len(it.GetDims()) == 1:
			v, err := onnx.TensorFloat32(it)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := onnx.NewTensorFloat16(name+"_half", it.GetDims(), onnx.Float32sToFloat16s(v))
			keep = append(keep, h)
			nodes = append(nodes, &onnxpb.NodeProto{OpType: proto.String("Cast"), Input: []string{name + "_half"}, Output: []string{name},
				Attribute: []*onnxpb.AttributeProto{onnx.AttrInt("to", int64(onnx.Float))}})
		default:
			keep = append(keep, it)
		}
	}
	g.Initializer = keep
	g.Node = append(nodes, g.Node...)
	return m
}

// A CNN whose weights are constant subgraphs (Constant + Identity,
// float16 + Cast) quantizes like the same CNN with initializers: int8
// puts every convolution in QDQ form, int8-static and fp16 convert them,
// the report says the subgraphs were folded, and the outputs stay close
// to FP32's.
func TestQuantizeConstantSubgraphWeights(t *testing.T) {
	requireORT(t)
	src, err := quanttest.CNN(5, 10)
	if err != nil {
		t.Fatal(err)
	}
	// The biases round through float16 in the converted copy: compare
	// against that copy's own FP32 outputs.
	conv := constantWeights(t, src.Clone())
	cfg := quanttest.ViTConfig{Image: 32}
	inputs := quanttest.Inputs(cfg, 16, 3)
	ref := runModel(t, saveModel(t, conv, "constants.onnx"), inputs, vitShape(cfg), 8)
	for _, spec := range []string{"int8", "int8-static:samples=8", "fp16"} {
		t.Run(spec, func(t *testing.T) {
			m := conv.Clone()
			r, err := quant.Apply(context.Background(), m, quant.MustParseSpec(spec), calibOptions())
			if err != nil {
				t.Fatal(err)
			}
			want := quant.PrecInt8
			if spec == "fp16" {
				want = quant.PrecFP16
			}
			if got := r.Count("Conv", want); got != 3 {
				t.Errorf("%d Convs in %s, want 3", got, want)
			}
			folded := false
			for _, rw := range r.Rewrites {
				folded = folded || strings.Contains(rw, "constant subgraphs")
			}
			if !folded {
				t.Errorf("report does not say the weights were folded: %q", r.Rewrites)
			}
			got := runModel(t, saveModel(t, m, "variant.onnx"), inputs, vitShape(cfg), 8)
			f, err := fidelity.Compare(ref, got)
			if err != nil {
				t.Fatal(err)
			}
			if f.CosineMean < 0.995 {
				t.Errorf("%s: %s", spec, f)
			}
		})
	}
}
