package onnx

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

func TestCheckValid(t *testing.T) {
	m := buildBlock(t, 4)
	if err := Check(m); err != nil {
		t.Fatal(err)
	}
	// Allowed: an omitted optional input, an initializer that is also a
	// graph input, a subgraph reading a value of its enclosing graph.
	g := m.Proto.Graph
	g.Node[3].Input = append(g.Node[3].Input[:2:2], "")
	g.Input = append(g.Input, &onnxpb.ValueInfoProto{Name: ptr("fc.bias")})
	then := &onnxpb.GraphProto{Name: ptr("then"),
		Node:   []*onnxpb.NodeProto{{OpType: ptr("Identity"), Input: []string{"x"}, Output: []string{"t"}}},
		Output: []*onnxpb.ValueInfoProto{{Name: ptr("t")}}}
	g.Node = append(g.Node, &onnxpb.NodeProto{OpType: ptr("If"), Input: []string{"cond"}, Output: []string{"z"},
		Attribute: []*onnxpb.AttributeProto{AttrGraph("then_branch", then), AttrGraph("else_branch", then)}})
	g.Input = append(g.Input, &onnxpb.ValueInfoProto{Name: ptr("cond")})
	if err := Check(m); err != nil {
		t.Fatal(err)
	}
}

func TestCheckProblems(t *testing.T) {
	node := func(m *Model, name string) *onnxpb.NodeProto {
		for _, n := range m.Proto.Graph.Node {
			if n.GetName() == name {
				return n
			}
		}
		t.Fatalf("no node %q", name)
		return nil
	}
	tests := []struct {
		name   string
		mutate func(m *Model)
		want   []string
	}{
		{"undefined input", func(m *Model) {
			node(m, "attn_q").Input[0] = "nope"
		}, []string{`node "attn_q" (MatMul): input "nope" is not defined`}},
		{"input defined later", func(m *Model) {
			g := m.Proto.Graph
			g.Node[0], g.Node[1] = g.Node[1], g.Node[0]
		}, []string{`node "Add" (Add): input "MatMul_out" is produced later, by node "attn_q" (MatMul) (nodes are not in topological order)`}},
		{"two producers", func(m *Model) {
			node(m, "Add").Output[0] = "MatMul_out"
		}, []string{`node "Add" (Add): output "MatMul_out" is already produced by node "attn_q" (MatMul)`}},
		{"node output shadows initializer", func(m *Model) {
			node(m, "Add").Output[0] = "fc.weight"
		}, []string{`node "Add" (Add): output "fc.weight" is already produced by initializer`}},
		{"duplicate initializer", func(m *Model) {
			g := m.Proto.Graph
			g.Initializer = append(g.Initializer, g.Initializer[1])
		}, []string{`initializer "fc.bias" is defined twice`}},
		{"duplicate node name", func(m *Model) {
			node(m, "Add").Name = ptr("attn_q")
		}, []string{`node "attn_q" (Add): node name is already used by node "attn_q" (MatMul)`}},
		{"duplicate graph input", func(m *Model) {
			g := m.Proto.Graph
			g.Input = append(g.Input, g.Input[0])
		}, []string{`graph input "x" is declared twice`}},
		{"missing opset import", func(m *Model) {
			n := node(m, "Softmax")
			n.Domain = ptr(MicrosoftDomain)
		}, []string{`node "Softmax" (Softmax): domain "com.microsoft" is not in the model's opset_import`}},
		{"no default opset", func(m *Model) {
			m.Proto.OpsetImport = nil
		}, []string{"model has no opset_import", `node "attn_q" (MatMul): the default domain (ai.onnx) is not in the model's opset_import`}},
		{"duplicate opset", func(m *Model) {
			m.Proto.OpsetImport = append(m.Proto.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: ptr("ai.onnx"), Version: ptr(int64(17))})
		}, []string{"opset_import lists the default domain (ai.onnx) twice"}},
		{"ir version", func(m *Model) {
			m.Proto.IrVersion = ptr(int64(12))
		}, []string{"ir_version 12 is not supported"}},
		{"no ir version", func(m *Model) {
			m.Proto.IrVersion = nil
		}, []string{"model has no ir_version"}},
		{"raw_data length", func(m *Model) {
			w := initializer(t, m.Proto.Graph, "fc.weight")
			w.RawData = w.RawData[:len(w.RawData)-4]
		}, []string{`initializer "fc.weight": raw_data is 60 bytes, dims [4 4] of FLOAT need 64`}},
		{"dims vs float_data", func(m *Model) {
			b := initializer(t, m.Proto.Graph, "fc.bias")
			b.RawData, b.FloatData = nil, []float32{1, 2}
		}, []string{`initializer "fc.bias": float_data has 2 entries, dims [4] of FLOAT need 4`}},
		{"int4 packing", func(m *Model) {
			g := m.Proto.Graph
			g.Initializer = append(g.Initializer,
				&onnxpb.TensorProto{Name: ptr("q4"), DataType: ptr(int32(Int4)), Dims: []int64{3}, RawData: []byte{1, 2, 3}},
				&onnxpb.TensorProto{Name: ptr("q4ok"), DataType: ptr(int32(Int4)), Dims: []int64{3}, RawData: []byte{1, 2}})
		}, []string{`initializer "q4": raw_data is 3 bytes, dims [3] of INT4 need 2`}},
		{"undefined data type", func(m *Model) {
			initializer(t, m.Proto.Graph, "fc.bias").DataType = nil
		}, []string{`initializer "fc.bias": unsupported data type UNDEFINED`}},
		{"negative dims", func(m *Model) {
			initializer(t, m.Proto.Graph, "fc.bias").Dims = []int64{-4}
		}, []string{`initializer "fc.bias": negative dimension -4`}},
		{"constant tensor", func(m *Model) {
			g := m.Proto.Graph
			c := &onnxpb.TensorProto{Name: ptr("c"), DataType: ptr(int32(Int64)), Dims: []int64{2}, RawData: make([]byte, 8)}
			g.Node = append([]*onnxpb.NodeProto{{Name: ptr("shape"), OpType: ptr("Constant"), Output: []string{"c"},
				Attribute: []*onnxpb.AttributeProto{AttrTensor("value", c)}}}, g.Node...)
		}, []string{`node "shape" (Constant): attribute "value": tensor "c": raw_data is 8 bytes, dims [2] of INT64 need 16`}},
		{"graph output not produced", func(m *Model) {
			m.Proto.Graph.Output[0].Name = ptr("missing")
		}, []string{`graph output "missing" is not produced by any node, graph input or initializer`}},
		{"unnamed node", func(m *Model) {
			n := node(m, "Add")
			n.Name = nil
			n.Input[1] = "gone"
		}, []string{`node #1 (Add): input "gone" is not defined`}},
		{"subgraph input", func(m *Model) {
			g := m.Proto.Graph
			body := &onnxpb.GraphProto{Name: ptr("then"),
				Node:   []*onnxpb.NodeProto{{Name: ptr("inner"), OpType: ptr("Identity"), Input: []string{"ghost"}, Output: []string{"t"}}},
				Output: []*onnxpb.ValueInfoProto{{Name: ptr("t")}}}
			g.Node = append(g.Node, &onnxpb.NodeProto{Name: ptr("if"), OpType: ptr("If"), Input: []string{"x"}, Output: []string{"z"},
				Attribute: []*onnxpb.AttributeProto{AttrGraph("then_branch", body)}})
		}, []string{`graph "then" in node "if" (If): node "inner" (Identity): input "ghost" is not defined`}},
		{"no graph", func(m *Model) {
			m.Proto.Graph = nil
		}, []string{"model has no graph"}},
		{"several at once", func(m *Model) {
			node(m, "attn_q").Input[0] = "nope"
			m.Proto.Graph.Output[0].Name = ptr("missing")
		}, []string{`input "nope" is not defined`, `graph output "missing"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := buildBlock(t, 4)
			tt.mutate(m)
			err := Check(m)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidGraph) {
				t.Errorf("%v is not ErrInvalidGraph", err)
			}
			var ce *CheckError
			if !errors.As(err, &ce) || len(ce.Problems) < len(tt.want) {
				t.Errorf("want %d problems, got %v", len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// chainModel builds the chain x → Relu → Relu → ... → output, whose
// topological order is unique.
func chainModel(t *testing.T, n int) *Model {
	t.Helper()
	b := NewBuilder("chain", 17)
	v := b.AddInput("x", Float, nil)
	for range n {
		v = b.AddNode("Relu", []string{v}, nil).Out()
	}
	b.AddOutput(v, Float, nil)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTopoSortShuffled(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 20 {
		m := chainModel(t, 30)
		want := slices.Clone(m.Proto.Graph.Node)
		r.Shuffle(len(m.Proto.Graph.Node), func(i, j int) {
			m.Proto.Graph.Node[i], m.Proto.Graph.Node[j] = m.Proto.Graph.Node[j], m.Proto.Graph.Node[i]
		})
		if err := TopoSort(m.Proto.Graph); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m.Proto.Graph.Node, want) {
			t.Fatalf("trial %d: order not restored", trial)
		}
		if err := Check(m); err != nil {
			t.Fatal(err)
		}
	}
	// A diamond: several valid orders; the result must be valid and the
	// sort stable (a sorted graph keeps its order).
	m := buildBlock(t, 4)
	g := m.Proto.Graph
	extra := []*onnxpb.NodeProto{
		{Name: ptr("side"), OpType: ptr("Neg"), Input: []string{"x"}, Output: []string{"s"}},
		{Name: ptr("join"), OpType: ptr("Add"), Input: []string{"s", "y"}, Output: []string{"j"}},
	}
	g.Node = append(g.Node, extra...)
	sorted := slices.Clone(g.Node)
	if err := TopoSort(g); err != nil || !slices.Equal(g.Node, sorted) {
		t.Fatalf("sorted graph changed order: %v", err)
	}
	for range 20 {
		r.Shuffle(len(g.Node), func(i, j int) { g.Node[i], g.Node[j] = g.Node[j], g.Node[i] })
		if err := TopoSort(g); err != nil {
			t.Fatal(err)
		}
		if err := Check(m); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTopoSortErrors(t *testing.T) {
	tests := []struct {
		name  string
		nodes []*onnxpb.NodeProto
		want  string
	}{
		{"cycle", []*onnxpb.NodeProto{
			{Name: ptr("a"), OpType: ptr("Relu"), Input: []string{"x"}, Output: []string{"p"}},
			{Name: ptr("b"), OpType: ptr("Add"), Input: []string{"p", "r"}, Output: []string{"q"}},
			{Name: ptr("c"), OpType: ptr("Relu"), Input: []string{"q"}, Output: []string{"r"}},
		}, `node "b" (Add) is in a cycle: node "b" (Add) → node "c" (Relu) → node "b" (Add)`},
		{"self loop", []*onnxpb.NodeProto{
			{Name: ptr("a"), OpType: ptr("Relu"), Input: []string{"a_out"}, Output: []string{"a_out"}},
		}, `node "a" (Relu) is in a cycle`},
		{"never produced", []*onnxpb.NodeProto{
			{Name: ptr("a"), OpType: ptr("Relu"), Input: []string{"ghost"}, Output: []string{"p"}},
		}, `node "a" (Relu): input "ghost" is never produced`},
		{"two producers", []*onnxpb.NodeProto{
			{Name: ptr("a"), OpType: ptr("Relu"), Input: []string{"x"}, Output: []string{"p"}},
			{Name: ptr("b"), OpType: ptr("Neg"), Input: []string{"x"}, Output: []string{"p"}},
		}, `node "b" (Neg): output "p" is also produced by node "a" (Relu)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &onnxpb.GraphProto{Input: []*onnxpb.ValueInfoProto{{Name: ptr("x")}}, Node: tt.nodes}
			before := slices.Clone(g.Node)
			err := TopoSort(g)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalidGraph) {
				t.Errorf("%v is not ErrInvalidGraph", err)
			}
			if !slices.Equal(g.Node, before) {
				t.Error("graph changed on error")
			}
		})
	}
}

func TestTopoSortSubgraphDependency(t *testing.T) {
	// The If node's branch reads "a", produced by a node listed after it.
	body := &onnxpb.GraphProto{Name: ptr("b"),
		Node:   []*onnxpb.NodeProto{{OpType: ptr("Identity"), Input: []string{"a"}, Output: []string{"t"}}},
		Output: []*onnxpb.ValueInfoProto{{Name: ptr("t")}}}
	g := &onnxpb.GraphProto{
		Input: []*onnxpb.ValueInfoProto{{Name: ptr("x")}, {Name: ptr("cond")}},
		Node: []*onnxpb.NodeProto{
			{Name: ptr("if"), OpType: ptr("If"), Input: []string{"cond"}, Output: []string{"z"},
				Attribute: []*onnxpb.AttributeProto{AttrGraph("then_branch", body), AttrGraph("else_branch", body)}},
			{Name: ptr("neg"), OpType: ptr("Neg"), Input: []string{"x"}, Output: []string{"a"}},
		},
	}
	if err := TopoSort(g); err != nil {
		t.Fatal(err)
	}
	if g.Node[0].GetName() != "neg" {
		t.Errorf("If sorted before the producer of its outer-scope input")
	}
}
