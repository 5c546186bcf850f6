package quant_test

import (
	"context"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"github.com/quantscope/quantscope/models/quant"
	"google.golang.org/protobuf/proto"
)

// A weight that a linear layer and an If branch both read keeps its
// bytes when the layer is quantized: the subgraph still reads it (the
// quantizer once counted only the main graph's readers and blanked it).
func TestQuantizeKeepsWeightsSubgraphsRead(t *testing.T) {
	b := onnx.NewBuilder("g", 17)
	x := b.AddInput("x", onnx.Float, onnx.Dims(4, 64))
	cond := b.AddInput("cond", onnx.Bool, onnx.Dims())
	w := make([]float32, 64*64)
	for i := range w {
		w[i] = float32(i%13) * 0.01
	}
	wn := b.AddInitializerFloat32("W", []int64{64, 64}, w)
	y := b.AddNode("MatMul", []string{x, wn}, nil).Out()
	b.AddOutput(y, onnx.Float, nil)
	branch := func(name string) *onnxpb.GraphProto {
		return &onnxpb.GraphProto{
			Name:   proto.String(name),
			Node:   []*onnxpb.NodeProto{{OpType: proto.String("Identity"), Input: []string{wn}, Output: []string{name + "_w"}}},
			Output: []*onnxpb.ValueInfoProto{{Name: proto.String(name + "_w"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(onnx.Float))}}}}},
		}
	}
	ifOut := b.AddNode("If", []string{cond}, nil,
		&onnxpb.AttributeProto{Name: proto.String("then_branch"), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: branch("then")},
		&onnxpb.AttributeProto{Name: proto.String("else_branch"), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: branch("else")}).Out()
	b.AddOutput(ifOut, onnx.Float, nil)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := quant.Apply(context.Background(), m, quant.MustParseSpec("int8"), quant.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, it := range m.Graph().GetInitializer() {
		if it.GetName() != "W" {
			continue
		}
		v, err := onnx.TensorFloat32(it)
		if err != nil || len(v) != 64*64 || v[14] != w[14] {
			t.Fatalf("W lost its data (%d values, %v): the If branches read it", len(v), err)
		}
		return
	}
	t.Fatal("W was removed though the If branches read it")
}
