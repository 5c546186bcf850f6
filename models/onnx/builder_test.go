package onnx

import (
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

func TestBuilderBlock(t *testing.T) {
	m := buildBlock(t, 8)
	mp := m.Proto
	if mp.GetIrVersion() != 10 || mp.GetProducerName() != "quantscope" {
		t.Errorf("ir_version %d producer %q, want 10 quantscope", mp.GetIrVersion(), mp.GetProducerName())
	}
	if len(mp.OpsetImport) != 1 || mp.OpsetImport[0].GetDomain() != "" || mp.OpsetImport[0].GetVersion() != 17 {
		t.Errorf("opset_import = %v, want default domain 17 only", mp.OpsetImport)
	}
	var ops []string
	for _, n := range mp.Graph.Node {
		ops = append(ops, n.GetOpType())
	}
	if got := strings.Join(ops, ","); got != "MatMul,Add,Softmax,LayerNormalization" {
		t.Errorf("ops = %s", got)
	}
	if n := mp.Graph.Node[0]; n.GetName() != "attn_q" || len(n.Output) != 1 || n.Output[0] != "MatMul_out" {
		t.Errorf("first node = %v", n)
	}
	ln := mp.Graph.Node[3]
	if len(ln.Attribute) != 2 || ln.Attribute[0].GetI() != -1 || ln.Attribute[1].GetF() != 1e-5 ||
		ln.Attribute[1].GetType() != onnxpb.AttributeProto_FLOAT {
		t.Errorf("LayerNormalization attributes = %v", ln.Attribute)
	}
	shape := mp.Graph.Input[0].GetType().GetTensorType().GetShape().GetDim()
	if len(shape) != 2 || shape[0].GetDimParam() != "batch" || shape[1].GetDimValue() != 8 {
		t.Errorf("input shape = %v", shape)
	}
	// Unknown dimensions have neither a value nor a name.
	b := NewBuilder("g", 17)
	vi := b.valueInfo("input", "u", Float, Dims("", UnknownDim(), uint8(3), Dim("n")))
	dims := vi.GetType().GetTensorType().GetShape().GetDim()
	if dims[0].GetValue() != nil || dims[1].GetValue() != nil || dims[2].GetDimValue() != 3 || dims[3].GetDimParam() != "n" {
		t.Errorf("dims = %v", dims)
	}
	s := m.Stats()
	if s.Nodes != 4 || s.NodesByOp["MatMul"] != 1 || s.Params != 8*8+3*8 || s.InitializerBytes != 4*(8*8+3*8) || s.BytesByType[Float] != s.InitializerBytes {
		t.Errorf("stats = %+v", s)
	}
}

func TestBuilderIRVersion(t *testing.T) {
	for _, tt := range []struct{ opset, ir int64 }{{21, 10}, {17, 10}, {15, 10}, {13, 7}, {11, 6}, {9, 4}, {7, 3}} {
		b := NewBuilder("g", tt.opset)
		b.AddInput("x", Float, nil)
		b.AddNode("Relu", []string{"x"}, []string{"y"})
		b.AddOutput("y", Float, nil)
		m, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		if m.Proto.GetIrVersion() != tt.ir {
			t.Errorf("opset %d: ir_version %d, want %d", tt.opset, m.Proto.GetIrVersion(), tt.ir)
		}
	}
}

func TestBuilderMicrosoftDomain(t *testing.T) {
	b := NewBuilder("g", 21)
	x := b.AddInput("x", Float, Dims("batch", 32))
	w := b.AddInitializerUint8("w", []int64{16, 1, 16}, PackUint4(make([]uint8, 16*32)))
	scales := b.AddInitializerFloat32("scales", []int64{16}, make([]float32, 16))
	y := b.AddNodeDomain(MicrosoftDomain, "MatMulNBits", []string{x, w, scales}, nil,
		AttrInt("K", 32), AttrInt("N", 16), AttrInt("bits", 4), AttrInt("block_size", 32)).Out()
	b.AddOutput(y, Float, Dims("batch", 16))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if m.Opset(MicrosoftDomain) != 1 || m.Opset("") != 21 || m.Opset("ai.onnx") != 21 {
		t.Errorf("opsets = %v", m.Proto.OpsetImport)
	}
	if s := m.Stats(); s.NodesByOp["com.microsoft.MatMulNBits"] != 1 {
		t.Errorf("NodesByOp = %v", s.NodesByOp)
	}
}

func TestBuilderUnique(t *testing.T) {
	b := NewBuilder("g", 17)
	b.AddInput("x", Float, nil)
	for i, want := range []string{"x_1", "x_2", "y", "y_1"} {
		prefix := "x"
		if i >= 2 {
			prefix = "y"
		}
		if got := b.Unique(prefix); got != want {
			t.Errorf("Unique(%q) = %q, want %q", prefix, got, want)
		}
	}
	n1 := b.AddNode("Relu", []string{"x"}, nil)
	n2 := b.AddNode("Relu", []string{n1.Out()}, nil)
	if n1.Proto.GetName() == n2.Proto.GetName() || n1.Out() == n2.Out() || n2.Output(1) != "" {
		t.Errorf("names not unique: %v %v", n1.Proto, n2.Proto)
	}
}

func TestBuilderConstants(t *testing.T) {
	b := NewBuilder("g", 17)
	x := b.AddInput("x", Float, Dims("batch", 2, 3))
	shape := b.AddConstantInt64("shape", []int64{2}, []int64{-1, 6})
	one := b.AddConstantFloat32("one", nil, []float32{1})
	r := b.AddNode("Reshape", []string{x, shape}, nil).Out()
	y := b.AddNode("Add", []string{r, one}, []string{"y"}).Out()
	b.AddOutput(y, Float, Dims("batch", 6))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c := m.Proto.Graph.Node[0]
	if c.GetOpType() != "Constant" || c.Output[0] != "shape" || c.Attribute[0].GetName() != "value" {
		t.Fatalf("constant node = %v", c)
	}
	if v, err := TensorInt64(c.Attribute[0].GetT()); err != nil || v[0] != -1 || v[1] != 6 {
		t.Errorf("constant value = %v, %v", v, err)
	}
}

func TestBuilderSortsNodes(t *testing.T) {
	b := NewBuilder("g", 17)
	b.AddInput("x", Float, nil)
	b.AddNode("Relu", []string{"a"}, []string{"y"}) // uses a value defined below
	b.AddNode("Neg", []string{"x"}, []string{"a"})
	b.AddOutput("y", Float, nil)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if m.Proto.Graph.Node[0].GetOpType() != "Neg" {
		t.Errorf("nodes not sorted: %v", m.Proto.Graph.Node)
	}
}

func TestBuilderErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *Builder)
		want  []string
	}{
		{"data length", func(b *Builder) {
			b.AddInitializerFloat32("w", []int64{2, 2}, []float32{1, 2, 3})
		}, []string{`tensor "w": 3 values, dims [2 2] need 4`}},
		{"bad dims", func(b *Builder) {
			b.AddInput("x", Float, Dims("batch", 2.5, -3))
		}, []string{`input "x": dimension 1 has type float64`, `input "x": dimension 2 is negative`}},
		{"bad element type", func(b *Builder) {
			b.AddInput("x", Undefined, nil)
		}, []string{`input "x": unsupported element type UNDEFINED`}},
		{"undefined input", func(b *Builder) {
			b.AddNode("Relu", []string{"nope"}, []string{"y"}).Named("r")
		}, []string{`node "r" (Relu): input "nope" is not defined`}},
		{"unknown domain", func(b *Builder) {
			b.AddInput("x", Float, nil)
			b.AddNodeDomain("my.domain", "Op", []string{"x"}, []string{"y"}).Named("custom")
		}, []string{`node "custom" (Op): domain "my.domain" is not in the model's opset_import`}},
		{"cycle", func(b *Builder) {
			b.AddNode("Relu", []string{"b"}, []string{"a"}).Named("ra")
			b.AddNode("Relu", []string{"a"}, []string{"b"}).Named("rb")
		}, []string{`node "ra" (Relu): input "b" is produced later, by node "rb" (Relu)`,
			`node "ra" (Relu) is in a cycle: node "ra" (Relu) → node "rb" (Relu) → node "ra" (Relu)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder("g", 17)
			tt.build(b)
			_, err := b.Build()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, err := b.Build(); err == nil {
				t.Error("second Build: no error")
			}
		})
	}
}
