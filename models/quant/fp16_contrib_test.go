package quant

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// contribModel builds x [2, 4, 8] → Mul → the node add makes (named
// "op", reading the Mul's output h) → a Mul per float output it returns →
// graph outputs y0, y1, ...
func contribModel(t *testing.T, add func(b *onnx.Builder, h string) []string) *onnx.Model {
	t.Helper()
	b := onnx.NewBuilder("contrib", 17)
	x := b.AddInput("x", onnx.Float, onnx.Dims(2, 4, 8))
	h := b.AddNode("Mul", []string{x, b.AddInitializerFloat32("s", []int64{8}, make([]float32, 8))}, []string{"h"}).Out()
	for i, o := range add(b, h) {
		y := "y" + string(rune('0'+i))
		b.AddNode("Mul", []string{o, b.AddInitializerFloat32("s"+y, []int64{1}, []float32{2})}, []string{y})
		b.AddOutput(y, onnx.Float, nil)
	}
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func floats(n int) []float32 { return make([]float32, n) }

// nodeNamed returns the node named name in g.
func nodeNamed(g *onnxpb.GraphProto, name string) *onnxpb.NodeProto {
	for _, n := range g.GetNode() {
		if n.GetName() == name {
			return n
		}
	}
	return nil
}

// checkKeptFloat checks that node "op" of g runs in float32 behind Casts:
// its float activations come from Cast(to=FLOAT), its float outputs go
// through Cast(to=FLOAT16) to the converted Muls, its float initializers
// are FLOAT, and the report counts it as fp32.
func checkKeptFloat(t *testing.T, m *onnx.Model, r *Report, key string) {
	t.Helper()
	g := m.Graph()
	types := inferTypes(g)
	ix := newGraphIndex(g)
	n := nodeNamed(g, "op")
	if n == nil {
		t.Fatal("node op is gone")
	}
	for _, in := range n.GetInput() {
		if in == "" || !isFloatType(types[in]) {
			continue
		}
		if types[in] != onnx.Float {
			t.Errorf("input %s is %v, want float32", in, types[in])
		}
		if _, isInit := ix.Inits[in]; isInit {
			continue
		}
		if p := ix.Producer[in]; p == nil || p.GetOpType() != "Cast" || onnx.AttrIntOr(p, "to", 0) != int64(onnx.Float) {
			t.Errorf("input %s does not come from Cast(to=FLOAT)", in)
		}
	}
	for _, o := range n.GetOutput() {
		if o == "" || !isFloatType(types[o]) {
			continue
		}
		if types[o] != onnx.Float {
			t.Errorf("output %s is %v, want float32", o, types[o])
		}
		for _, c := range ix.Consumers[o] {
			if c.GetOpType() != "Cast" || onnx.AttrIntOr(c, "to", 0) != int64(onnx.Float16) {
				t.Errorf("output %s read by %s, want Cast(to=FLOAT16)", o, c.GetOpType())
			}
		}
	}
	if r.Count(key, PrecFP32) != 1 || r.Count(key, PrecFP16) != 0 {
		t.Errorf("report: %s fp32 %d, fp16 %d", key, r.Count(key, PrecFP32), r.Count(key, PrecFP16))
	}
	if !slices.ContainsFunc(r.Kept, func(k KeptNode) bool { return k.Node == "op" }) {
		t.Errorf("op not among the kept nodes %v", r.Kept)
	}
	// The Muls around it are converted all the same.
	if r.Count("Mul", PrecFP16) < 2 {
		t.Errorf("Muls in fp16: %d", r.Count("Mul", PrecFP16))
	}
	if err := onnx.Check(m); err != nil {
		t.Errorf("check: %v", err)
	}
}

// Operators outside the default domain that are not on the allow-list,
// and allowed operators used in ways the transform cannot type, stay
// float32 behind Casts, as every non-default-domain operator did before.
func TestFP16ContribBlocked(t *testing.T) {
	tests := []struct {
		name string
		key  string
		add  func(b *onnx.Builder, h string) []string
	}{
		{"FusedMatMul", "com.microsoft.FusedMatMul", func(b *onnx.Builder, h string) []string {
			w := b.AddInitializerFloat32("w", []int64{8, 8}, floats(64))
			return []string{b.AddNodeDomain(onnx.MicrosoftDomain, "FusedMatMul", []string{h, w}, nil, onnx.AttrFloat("alpha", 0.5)).Named("op").Out()}
		}},
		{"made-up com.microsoft op", "com.microsoft.MadeUpNorm", func(b *onnx.Builder, h string) []string {
			g := b.AddInitializerFloat32("g", []int64{8}, floats(8))
			return []string{b.AddNodeDomain(onnx.MicrosoftDomain, "MadeUpNorm", []string{h, g}, nil, onnx.AttrFloat("epsilon", 1e-5)).Named("op").Out()}
		}},
		{"other domain", "com.example.Gelu", func(b *onnx.Builder, h string) []string {
			b.ImportOpset("com.example", 1)
			return []string{b.AddNodeDomain("com.example", "Gelu", []string{h}, nil).Named("op").Out()}
		}},
		{"MultiHeadAttention with qk output", "com.microsoft.MultiHeadAttention", func(b *onnx.Builder, h string) []string {
			n := b.AddNodeDomain(onnx.MicrosoftDomain, "MultiHeadAttention", []string{h, h, h}, []string{"attn", "", "", "qk"},
				onnx.AttrInt("num_heads", 2)).Named("op")
			return []string{n.Out()}
		}},
		{"Gelu with an input past its schema", "com.microsoft.Gelu", func(b *onnx.Builder, h string) []string {
			return []string{b.AddNodeDomain(onnx.MicrosoftDomain, "Gelu", []string{h, h}, nil).Named("op").Out()}
		}},
		{"MultiHeadAttention with a float mask", "com.microsoft.MultiHeadAttention", func(b *onnx.Builder, h string) []string {
			mask := b.AddInitializerFloat32("mask", []int64{2, 4}, floats(8))
			return []string{b.AddNodeDomain(onnx.MicrosoftDomain, "MultiHeadAttention", []string{h, h, h, "", mask}, nil,
				onnx.AttrInt("num_heads", 2)).Named("op").Out()}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := contribModel(t, tc.add)
			r := apply(t, m, "fp16", Options{})
			checkKeptFloat(t, m, r, tc.key)
		})
	}
}

// An allowed operator is kept in float32 like a default-domain one when
// the spec or the options say so: keep=Op, an excluded node, and
// fp16:mixed for the fused norm and attention (not for GELU).
func TestFP16ContribKeep(t *testing.T) {
	sln := func(b *onnx.Builder, h string) []string {
		g := b.AddInitializerFloat32("gamma", []int64{8}, floats(8))
		return []string{b.AddNodeDomain(onnx.MicrosoftDomain, "SkipLayerNormalization", []string{h, h, g}, nil).Named("op").Out()}
	}
	mha := func(b *onnx.Builder, h string) []string {
		return []string{b.AddNodeDomain(onnx.MicrosoftDomain, "MultiHeadAttention", []string{h, h, h}, nil, onnx.AttrInt("num_heads", 2)).Named("op").Out()}
	}
	gelu := func(b *onnx.Builder, h string) []string {
		bias := b.AddInitializerFloat32("bias", []int64{8}, floats(8))
		return []string{b.AddNodeDomain(onnx.MicrosoftDomain, "BiasGelu", []string{h, bias}, nil).Named("op").Out()}
	}
	for _, tc := range []struct {
		name, spec string
		opts       Options
		add        func(b *onnx.Builder, h string) []string
		key        string
		kept       bool
	}{
		{"keep=SkipLayerNormalization", "fp16:keep=SkipLayerNormalization", Options{}, sln, "com.microsoft.SkipLayerNormalization", true},
		// Keeping an operator keeps the fused forms that contain it.
		{"keep=LayerNormalization keeps the fused norm", "fp16:keep=LayerNormalization", Options{}, sln, "com.microsoft.SkipLayerNormalization", true},
		{"keep=Softmax keeps attention", "fp16:keep=Softmax", Options{}, mha, "com.microsoft.MultiHeadAttention", true},
		{"keep=Erf keeps BiasGelu", "fp16:keep=Erf", Options{}, gelu, "com.microsoft.BiasGelu", true},
		{"keep=Softmax leaves the norm", "fp16:keep=Softmax", Options{}, sln, "com.microsoft.SkipLayerNormalization", false},
		{"excluded", "fp16", Options{Exclude: []string{"op"}}, gelu, "com.microsoft.BiasGelu", true},
		{"mixed SkipLayerNormalization", "fp16:mixed", Options{}, sln, "com.microsoft.SkipLayerNormalization", true},
		{"mixed MultiHeadAttention", "fp16:mixed", Options{}, mha, "com.microsoft.MultiHeadAttention", true},
		{"mixed BiasGelu", "fp16:mixed", Options{}, gelu, "com.microsoft.BiasGelu", false},
		{"plain SkipLayerNormalization", "fp16", Options{}, sln, "com.microsoft.SkipLayerNormalization", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := contribModel(t, tc.add)
			r := apply(t, m, tc.spec, tc.opts)
			if tc.kept {
				checkKeptFloat(t, m, r, tc.key)
				return
			}
			if r.Count(tc.key, PrecFP16) != 1 {
				t.Errorf("report: %s fp16 %d", tc.key, r.Count(tc.key, PrecFP16))
			}
			if c := countOps(m.Graph(), "Cast"); c != 2 {
				t.Errorf("%d Casts, want the input's and the output's", c)
			}
		})
	}
}

// SkipLayerNormalization's mean and inv_std_var are float32 in every
// variant of the operator (type U): on a converted node they stay float32
// with a Cast to float16 before a converted reader, no Cast before a
// graph output, and a declared type so that later type inference (which
// gives a contrib operator's outputs its first input's type) agrees.
func TestFP16ContribFloatOutputs(t *testing.T) {
	b := onnx.NewBuilder("sln", 17)
	x := b.AddInput("x", onnx.Float, onnx.Dims(2, 4, 8))
	h := b.AddNode("Mul", []string{x, b.AddInitializerFloat32("s", []int64{8}, floats(8))}, []string{"h"}).Out()
	b.AddNodeDomain(onnx.MicrosoftDomain, "SkipLayerNormalization", []string{h, h, b.AddInitializerFloat32("gamma", []int64{8}, floats(8))},
		[]string{"normed", "mean", "inv_std_var", "sum"}, onnx.AttrFloat("epsilon", 1e-6)).Named("op")
	b.AddNode("Mul", []string{"normed", "mean"}, []string{"scaled"})
	b.AddNode("Add", []string{"scaled", "sum"}, []string{"y"})
	b.AddOutput("y", onnx.Float, nil)
	b.AddOutput("inv_std_var", onnx.Float, nil)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	r := apply(t, m, "fp16", Options{})
	if r.Count("com.microsoft.SkipLayerNormalization", PrecFP16) != 1 {
		t.Fatalf("report: %+v", r.Ops)
	}
	g := m.Graph()
	types := inferTypes(g)
	ix := newGraphIndex(g)
	for v, want := range map[string]onnx.DataType{"h": onnx.Float16, "normed": onnx.Float16, "sum": onnx.Float16, "mean": onnx.Float, "inv_std_var": onnx.Float} {
		if types[v] != want {
			t.Errorf("%s is %v, want %v", v, types[v], want)
		}
	}
	declared := false
	for _, vi := range g.GetValueInfo() {
		if vi.GetName() == "mean" {
			declared = elemTypeOf(vi) == onnx.Float
		}
	}
	if !declared {
		t.Error("mean is not declared float32")
	}
	cs := ix.Consumers["mean"]
	if len(cs) != 1 || cs[0].GetOpType() != "Cast" || onnx.AttrIntOr(cs[0], "to", 0) != int64(onnx.Float16) {
		t.Errorf("mean is read by %v, want one Cast to float16", cs)
	}
	if p := ix.Producer["inv_std_var"]; p == nil || p.GetName() != "op" {
		t.Errorf("graph output inv_std_var written by %v, want the SkipLayerNormalization", p)
	}
	// The input and output Casts, and mean's.
	if c := countOps(g, "Cast"); c != 3 {
		t.Errorf("%d Casts, want 3", c)
	}
	if err := onnx.Check(m); err != nil {
		t.Errorf("check: %v", err)
	}
}

// A graph of allowed operators alone converts: fp16 does not report
// ErrNothingConverted.
func TestFP16ContribOnly(t *testing.T) {
	b := onnx.NewBuilder("gelu", 17)
	x := b.AddInput("x", onnx.Float, onnx.Dims(2, 8))
	g := b.AddNodeDomain(onnx.MicrosoftDomain, "Gelu", []string{x}, nil).Out()
	b.AddNodeDomain(onnx.MicrosoftDomain, "QuickGelu", []string{g}, []string{"y"}, onnx.AttrFloat("alpha", 1.702))
	b.AddOutput("y", onnx.Float, nil)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Apply(context.Background(), m, MustParseSpec("fp16"), Options{})
	if errors.Is(err, ErrNothingConverted) || err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if r.NodesConverted != 2 || r.Count("com.microsoft.Gelu", PrecFP16) != 1 || r.Count("com.microsoft.QuickGelu", PrecFP16) != 1 {
		t.Errorf("report: %d converted, %+v", r.NodesConverted, r.Ops)
	}
}
