package onnx

import (
	"math/rand/v2"
	"testing"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// randFloats returns n deterministic pseudo-random floats in [-1, 1).
func randFloats(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]float32, n)
	for i := range out {
		out[i] = r.Float32()*2 - 1
	}
	return out
}

// buildBlock builds the opset-17 block MatMul → Add → Softmax(axis=-1) →
// LayerNormalization(axis=-1), with a hidden size of hidden, as ONNX Runtime
// would run it.
func buildBlock(t testing.TB, hidden int) *Model {
	t.Helper()
	h := int64(hidden)
	b := NewBuilder("block", 17)
	x := b.AddInput("x", Float, Dims("batch", h))
	w := b.AddInitializerFloat32("fc.weight", []int64{h, h}, randFloats(1, hidden*hidden))
	bias := b.AddInitializerFloat32("fc.bias", []int64{h}, randFloats(2, hidden))
	scale := b.AddInitializerFloat32("ln.scale", []int64{h}, randFloats(3, hidden))
	shift := b.AddInitializerFloat32("ln.bias", []int64{h}, randFloats(4, hidden))
	mm := b.AddNode("MatMul", []string{x, w}, nil).Named("attn_q").Out()
	add := b.AddNode("Add", []string{mm, bias}, nil).Out()
	sm := b.AddNode("Softmax", []string{add}, nil, AttrInt("axis", -1)).Out()
	b.AddNode("LayerNormalization", []string{sm, scale, shift}, []string{"y"},
		AttrInt("axis", -1), AttrFloat("epsilon", 1e-5))
	b.AddOutput("y", Float, Dims("batch", h))
	m, err := b.Build()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return m
}

// initializer returns g's initializer called name.
func initializer(t testing.TB, g *onnxpb.GraphProto, name string) *onnxpb.TensorProto {
	t.Helper()
	for _, init := range g.GetInitializer() {
		if init.GetName() == name {
			return init
		}
	}
	t.Fatalf("no initializer %q", name)
	return nil
}
