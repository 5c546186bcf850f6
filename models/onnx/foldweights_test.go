package onnx_test

import (
	"context"
	"slices"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// Weights computed from constants become initializers under their own
// names: a ConstantOfShape weight (the backend test suite's light models),
// a Constant node, an Identity and a float16 → float Cast of initializers,
// and a Reshape of a Constant by a constant shape (a chain, folded whole).
// An initializer that is also a graph input can be overridden at run time
// and is not a constant; a graph output stays a node.
func TestFoldWeights(t *testing.T) {
	b := onnx.NewBuilder("g", 17)
	x := b.AddInput("x", onnx.Float, onnx.Dims(2, 4))
	shape := b.AddInitializerInt64("w0_shape", []int64{2}, []int64{4, 4})
	fill, _ := onnx.NewTensorFloat32("", []int64{1}, []float32{0.5})
	w0 := b.AddNode("ConstantOfShape", []string{shape}, []string{"w0"}, onnx.AttrTensor("value", fill)).Out()
	h := b.AddNode("MatMul", []string{x, w0}, nil).Out()
	w1 := b.AddConstantFloat32("w1", []int64{4}, []float32{1, 2, 3, 4})
	h = b.AddNode("Add", []string{h, w1}, nil).Out()
	w2 := b.AddNode("Identity", []string{b.AddInitializerFloat32("w2_src", []int64{4}, []float32{5, 6, 7, 8})}, []string{"w2"}).Out()
	h = b.AddNode("Mul", []string{h, w2}, nil).Out()
	half := b.AddInitializerFloat16("w3_half", []int64{4}, onnx.Float32sToFloat16s([]float32{0.5, 1, 1.5, 2}))
	w3 := b.AddNode("Cast", []string{half}, []string{"w3"}, onnx.AttrInt("to", int64(onnx.Float))).Out()
	h = b.AddNode("Sub", []string{h, w3}, nil).Out()
	flat := b.AddConstantFloat32("w4_flat", []int64{16}, make([]float32, 16))
	target := b.AddConstantInt64("w4_target", []int64{2}, []int64{0, -1})
	w4 := b.AddNode("Reshape", []string{b.AddNode("Identity", []string{flat}, nil).Out(), target}, []string{"w4"}).Out()
	h = b.AddNode("MatMul", []string{h, b.AddNode("Reshape", []string{w4, b.AddConstantInt64("w4_t2", []int64{2}, []int64{4, 4})}, nil).Out()}, nil).Out()
	over := b.AddInitializerFloat32("over", []int64{4}, []float32{1, 1, 1, 1})
	h = b.AddNode("Add", []string{h, b.AddNode("Identity", []string{over}, nil).Out()}, nil).Out()
	b.AddOutput(h, onnx.Float, nil)
	b.AddOutput(b.AddConstantFloat32("out_const", []int64{1}, []float32{9}), onnx.Float, nil)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph()
	g.Input = append(g.Input, &onnxpb.ValueInfoProto{Name: ptr("over"), Type: g.GetInput()[0].GetType()})
	n, err := onnx.FoldWeights(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, nd := range g.GetNode() {
		ops[nd.GetOpType()]++
	}
	// Folded: ConstantOfShape, Constant w1, Identity w2, Cast w3, the two
	// Constants, Identity and two Reshapes of w4, w4_target and w4_t2.
	if ops["ConstantOfShape"] != 0 || ops["Cast"] != 0 || ops["Reshape"] != 0 || ops["Identity"] != 1 || ops["Constant"] != 1 {
		t.Errorf("%d folded; left %v (want one Identity of the overridable input, one Constant graph output)", n, ops)
	}
	inits := map[string]*onnxpb.TensorProto{}
	for _, it := range g.GetInitializer() {
		inits[it.GetName()] = it
	}
	check := func(name string, dims []int64, want []float32) {
		t.Helper()
		it := inits[name]
		if it == nil {
			t.Fatalf("%s is not an initializer", name)
		}
		v, err := onnx.TensorFloat32(it)
		if err != nil || !slices.Equal(it.GetDims(), dims) || (want != nil && !slices.Equal(v, want)) {
			t.Errorf("%s: dims %v values %v (%v), want %v %v", name, it.GetDims(), v, err, dims, want)
		}
	}
	check(w0, []int64{4, 4}, slices.Repeat([]float32{0.5}, 16))
	check(w1, []int64{4}, []float32{1, 2, 3, 4})
	check(w2, []int64{4}, []float32{5, 6, 7, 8})
	check(w3, []int64{4}, []float32{0.5, 1, 1.5, 2})
	if inits["w3_half"] != nil || inits["w2_src"] != nil {
		t.Error("the sources of folded weights are still there")
	}
	if inits["over"] == nil {
		t.Error("the overridable initializer was dropped")
	}
	if err := onnx.Check(m); err != nil {
		t.Errorf("folded graph fails the checker: %v", err)
	}
	again, _ := onnx.FoldWeights(context.Background(), g)
	if again != 0 {
		t.Errorf("second pass folded %d", again)
	}
}

func ptr[T any](v T) *T { return &v }
