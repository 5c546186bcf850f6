package quant

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"github.com/quantscope/quantscope/models/quant/quanttest"
)

func tinyViT(t testing.TB) *onnx.Model {
	t.Helper()
	m, err := quanttest.ViT(quanttest.Tiny)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func apply(t testing.TB, m *onnx.Model, spec string, opts Options) *Report {
	t.Helper()
	r, err := Apply(context.Background(), m, MustParseSpec(spec), opts)
	if err != nil {
		t.Fatalf("Apply(%s): %v", spec, err)
	}
	return r
}

func countOps(g *onnxpb.GraphProto, op string) int {
	n := 0
	for _, nd := range g.GetNode() {
		if nd.GetOpType() == op {
			n++
		}
	}
	return n
}

// TestReportCounts checks the per-op precision table on the tiny ViT
// (2 blocks: 8 linear MatMuls, 4 attention MatMuls, 5 LayerNorms, 2
// Softmaxes, a Conv patch embedding and a Gemm head).
func TestReportCounts(t *testing.T) {
	type count struct {
		op   string
		prec Precision
		n    int
	}
	tests := []struct {
		spec      string
		counts    []count
		converted int
		graphOps  map[string]int
		minBits   map[int]float64 // weight fraction at bits at least
	}{
		{"int8", []count{{"MatMul", PrecInt8, 8}, {"MatMul", PrecFP32, 4}, {"Conv", PrecInt8, 1}, {"Gemm", PrecInt8, 1}, {"LayerNormalization", PrecFP32, 5}, {"Softmax", PrecFP32, 2}},
			10, map[string]int{"DynamicQuantizeMatMul": 10, "MatMul": 4, "Conv": 0, "Gemm": 0}, map[int]float64{8: 0.6}},
		{"int8:keep-first,keep-last", []count{{"MatMul", PrecInt8, 8}, {"Conv", PrecFP32, 1}, {"Gemm", PrecFP32, 1}},
			8, map[string]int{"DynamicQuantizeMatMul": 8, "Conv": 1, "Gemm": 1}, nil},
		{"int4", []count{{"MatMul", PrecInt4, 8}, {"MatMul", PrecFP32, 4}, {"Conv", PrecInt4, 1}, {"Gemm", PrecInt4, 1}},
			10, map[string]int{"MatMulNBits": 10, "MatMul": 4}, map[int]float64{4: 0.3}},
		{"fp16", []count{{"MatMul", PrecFP16, 12}, {"LayerNormalization", PrecFP16, 5}, {"Softmax", PrecFP16, 2}, {"Shape", PrecNone, 1}},
			0, nil, map[int]float64{16: 0.9}},
		{"fp16:mixed", []count{{"MatMul", PrecFP16, 12}, {"LayerNormalization", PrecFP32, 5}, {"Softmax", PrecFP32, 2}},
			0, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			m := tinyViT(t)
			r := apply(t, m, tc.spec, Options{})
			for _, c := range tc.counts {
				if got := r.Count(c.op, c.prec); got != c.n {
					t.Errorf("%s in %s: %d nodes, want %d", c.op, c.prec, got, c.n)
				}
			}
			if tc.converted > 0 && r.NodesConverted != tc.converted {
				t.Errorf("NodesConverted = %d, want %d", r.NodesConverted, tc.converted)
			}
			for op, want := range tc.graphOps {
				if got := countOps(m.Graph(), op); got != want {
					t.Errorf("result has %d %s nodes, want %d", got, op, want)
				}
			}
			for bits, min := range tc.minBits {
				if f := r.WeightFraction(bits); f < min {
					t.Errorf("weight fraction at %d bits = %.3f, want ≥ %g", bits, f, min)
				}
			}
			if r.BytesAfter >= r.BytesBefore {
				t.Errorf("bytes %d → %d, want smaller", r.BytesBefore, r.BytesAfter)
			}
			if r.Spec != MustParseSpec(tc.spec).String() || r.QuantizerVersion != Version {
				t.Errorf("report spec %q version %q", r.Spec, r.QuantizerVersion)
			}
			var b strings.Builder
			if err := r.Write(&b); err != nil || !strings.Contains(b.String(), "MatMul") {
				t.Errorf("Write: %v\n%s", err, b.String())
			}
			if err := onnx.Check(m); err != nil {
				t.Errorf("result fails the checker: %v", err)
			}
		})
	}
}

func TestKeptReasons(t *testing.T) {
	m := tinyViT(t)
	r := apply(t, m, "int8", Options{Exclude: []string{"blocks.1.mlp.fc2.MatMul"}})
	reasons := map[string]int{}
	for _, k := range r.Kept {
		reasons[k.Reason]++
	}
	if reasons["activation × activation (attention)"] != 4 || reasons["excluded"] != 1 {
		t.Errorf("kept reasons %v, want 4 attention and 1 excluded", reasons)
	}
	if got := r.Count("MatMul", PrecInt8); got != 7 {
		t.Errorf("int8 MatMuls = %d, want 7 with one excluded", got)
	}
	found := false
	for _, n := range m.Graph().GetNode() {
		if n.GetName() == "blocks.1.mlp.fc2.MatMul" && n.GetOpType() == "MatMul" {
			found = true
		}
	}
	if !found {
		t.Error("excluded MatMul is gone from the graph")
	}
}

func TestFP16Structure(t *testing.T) {
	for _, spec := range []string{"fp16", "fp16:mixed"} {
		t.Run(spec, func(t *testing.T) {
			m := tinyViT(t)
			apply(t, m, spec, Options{})
			g := m.Graph()
			for _, vi := range append(g.GetInput(), g.GetOutput()...) {
				if elemTypeOf(vi) != onnx.Float {
					t.Errorf("graph I/O %s is %v, want FLOAT", vi.GetName(), elemTypeOf(vi))
				}
			}
			types := inferTypes(g)
			producer := map[string]*onnxpb.NodeProto{}
			for _, n := range g.GetNode() {
				for _, o := range n.GetOutput() {
					producer[o] = n
				}
			}
			casts := 0
			for _, n := range g.GetNode() {
				if n.GetOpType() != "Cast" {
					continue
				}
				casts++
				if p := producer[n.GetInput()[0]]; p != nil && p.GetOpType() == "Cast" {
					t.Errorf("back-to-back Casts %s → %s", p.GetName(), n.GetName())
				}
				if types[n.GetInput()[0]] == onnx.DataType(onnx.AttrIntOr(n, "to", 0)) {
					t.Errorf("Cast %s to the type its input already has", n.GetName())
				}
			}
			for _, init := range g.GetInitializer() {
				// fp16:mixed keeps the LayerNorms' own parameters float32.
				lnParam := spec == "fp16:mixed" && strings.Contains(init.GetName(), "norm")
				if isFloat := onnx.DataTypeOf(init) == onnx.Float; isFloat != lnParam {
					t.Errorf("initializer %s is %v", init.GetName(), onnx.DataTypeOf(init))
				}
			}
			for _, n := range g.GetNode() {
				for _, o := range n.GetOutput() {
					if types[o] != onnx.Float {
						continue
					}
					isIOCast := n.GetOpType() == "Cast"
					keptOp := spec == "fp16:mixed" && (n.GetOpType() == "LayerNormalization" || n.GetOpType() == "Softmax")
					if !isIOCast && !keptOp {
						t.Errorf("%s (%s) still produces float32 %s", n.GetName(), n.GetOpType(), o)
					}
				}
			}
			// Plain fp16: one Cast in, one out. Mixed: plus one pair
			// around each of the 5 LayerNorms and 2 Softmaxes.
			want := 2
			if spec == "fp16:mixed" {
				want += 2 * 7
			}
			if casts != want {
				t.Errorf("%d Casts, want %d", casts, want)
			}
		})
	}
}

func TestFP16ConstantsClamped(t *testing.T) {
	b := onnx.NewBuilder("g", 17)
	x := b.AddInput("x", onnx.Float, onnx.Dims(3))
	c := b.AddInitializerFloat32("c", []int64{3}, []float32{1e6, -1e6, 1e-9})
	k := b.AddConstantFloat32("k", []int64{1}, []float32{70000})
	y := b.AddNode("Mul", []string{x, c}, nil).Out()
	y = b.AddNode("Add", []string{y, k}, []string{"y"}).Out()
	b.AddOutput(y, onnx.Float, onnx.Dims(3))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	apply(t, m, "fp16", Options{})
	for _, init := range m.Graph().GetInitializer() {
		if init.GetName() == "c" {
			h, err := onnx.TensorFloat16(init)
			if err != nil {
				t.Fatal(err)
			}
			got := onnx.Float16sToFloat32s(h)
			if got[0] != 65504 || got[1] != -65504 || got[2] != 0 {
				t.Errorf("clamped values %v, want [65504 -65504 0]", got)
			}
		}
	}
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == "Constant" {
			h, _ := onnx.TensorFloat16(onnx.Attr(n, "value").GetT())
			if len(h) != 1 || onnx.Float16ToFloat32(h[0]) != 65504 {
				t.Errorf("Constant not converted and clamped: %v", h)
			}
		}
	}
}

func TestNothingConverted(t *testing.T) {
	// LayerNorm → Softmax: nothing int8 or int4 converts.
	b := onnx.NewBuilder("g", 17)
	x := b.AddInput("x", onnx.Float, onnx.Dims("batch", 8))
	g := b.AddInitializerFloat32("g", []int64{8}, make([]float32, 8))
	bb := b.AddInitializerFloat32("b", []int64{8}, make([]float32, 8))
	y := b.AddNode("LayerNormalization", []string{x, g, bb}, nil, onnx.AttrInt("axis", -1)).Out()
	y = b.AddNode("Softmax", []string{y}, []string{"y"}).Out()
	b.AddOutput(y, onnx.Float, onnx.Dims("batch", 8))
	src, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"int8", "int8:per-tensor", "int4"} {
		r, err := Apply(context.Background(), src.Clone(), MustParseSpec(spec), Options{})
		if !errors.Is(err, ErrNothingConverted) {
			t.Errorf("%s: err = %v, want ErrNothingConverted", spec, err)
		}
		if r == nil || r.NodesKept != 2 {
			t.Errorf("%s: report %+v, want 2 kept nodes", spec, r)
		}
	}
	if _, err := Apply(context.Background(), src.Clone(), MustParseSpec("fp16"), Options{}); err != nil {
		t.Errorf("fp16 of a float model: %v", err)
	}
	// Excluding every candidate converts nothing either.
	m := tinyViT(t)
	var all []string
	for _, n := range m.Graph().GetNode() {
		all = append(all, n.GetName())
	}
	if _, err := Apply(context.Background(), m, MustParseSpec("int4"), Options{Exclude: all}); !errors.Is(err, ErrNothingConverted) {
		t.Errorf("int4 with everything excluded: %v, want ErrNothingConverted", err)
	}
	// fp32 is the model itself: no error, nothing converted.
	r, err := Apply(context.Background(), tinyViT(t), MustParseSpec("fp32"), Options{})
	if err != nil || r.NodesConverted != 0 || r.BytesAfter != r.BytesBefore {
		t.Errorf("fp32: %+v, %v", r, err)
	}
}

func TestVerifyReportCatchesMislabels(t *testing.T) {
	m := tinyViT(t)
	r := apply(t, m, "int4", Options{})
	r.Ops = append(r.Ops, OpPrecision{Op: "X", Nodes: map[Precision]int{PrecInt4: 1}})
	if err := verifyReport(m.Graph(), r); err == nil {
		t.Error("a report claiming one more int4 node than the graph has passes verification")
	}
}

func TestApplyHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, spec := range []string{"int8", "int4", "fp16"} {
		if _, err := Apply(ctx, tinyViT(t), MustParseSpec(spec), Options{}); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v", spec, err)
		}
	}
}

// TestApplyMalformed feeds graphs the builder would refuse: Apply returns
// errors (or converts nothing), never panics.
func TestApplyMalformed(t *testing.T) {
	vi := func(name string, dims ...int64) *onnxpb.ValueInfoProto {
		shape := &onnxpb.TensorShapeProto{}
		for _, d := range dims {
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
		return &onnxpb.ValueInfoProto{Name: ptr(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: ptr(int32(onnx.Float)), Shape: shape}}}}
	}
	w, _ := onnx.NewTensorFloat32("w", []int64{4, 4}, make([]float32, 16))
	short := &onnxpb.TensorProto{Name: ptr("w"), Dims: []int64{4, 4}, DataType: ptr(int32(onnx.Float)), RawData: []byte{1, 2, 3}}
	node := func(op string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{OpType: ptr(op), Input: in, Output: out, Attribute: attrs}
	}
	graphs := map[string]*onnxpb.GraphProto{
		"MatMul with one input":  {Node: []*onnxpb.NodeProto{node("MatMul", []string{"x"}, []string{"y"})}},
		"Gemm with one input":    {Node: []*onnxpb.NodeProto{node("Gemm", []string{"x"}, []string{"y"})}},
		"weight bytes too short": {Node: []*onnxpb.NodeProto{node("MatMul", []string{"x", "w"}, []string{"y"})}, Initializer: []*onnxpb.TensorProto{short}},
		"undefined input":        {Node: []*onnxpb.NodeProto{node("MatMul", []string{"x", "nope"}, []string{"y"})}, Initializer: []*onnxpb.TensorProto{w}},
		"Conv with 2-D weight":   {Node: []*onnxpb.NodeProto{node("Conv", []string{"x", "w"}, []string{"y"}, onnx.AttrInts("strides", 4, 4))}, Initializer: []*onnxpb.TensorProto{w}},
		"empty Constant":         {Node: []*onnxpb.NodeProto{node("Constant", nil, []string{"c"}), node("MatMul", []string{"x", "c"}, []string{"y"})}},
		"cycle":                  {Node: []*onnxpb.NodeProto{node("Add", []string{"x", "b"}, []string{"a"}), node("MatMul", []string{"a", "w"}, []string{"b"})}, Initializer: []*onnxpb.TensorProto{w}},
	}
	for name, g := range graphs {
		g.Input = []*onnxpb.ValueInfoProto{vi("x", 1, 4)}
		g.Output = []*onnxpb.ValueInfoProto{vi("y", 1, 4)}
		for _, spec := range []string{"fp16", "int8", "int4", "int8-static"} {
			m := &onnx.Model{Proto: &onnxpb.ModelProto{IrVersion: ptr(int64(8)), Graph: g,
				OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: ptr(""), Version: ptr(int64(17))}}}}
			m = m.Clone()
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("%s, %s: panic %v", name, spec, p)
					}
				}()
				_, err := Apply(context.Background(), m, MustParseSpec(spec), Options{})
				// fp16 converts a Conv whatever its weight's shape: the
				// graph is as wrong as before, not wrong because of fp16.
				if err == nil && !(spec == "fp16" && name == "Conv with 2-D weight") {
					t.Errorf("%s, %s: no error", name, spec)
				}
			}()
		}
	}
}

// A variant is not quantized again: every precision refuses a model that
// already holds quantized operators, naming them.
func TestAlreadyQuantized(t *testing.T) {
	for _, first := range []string{"int4", "int8", "int8:conv=integer"} {
		m := tinyViT(t)
		if _, err := Apply(context.Background(), m, MustParseSpec(first), Options{}); err != nil {
			t.Fatalf("%s: %v", first, err)
		}
		for _, again := range []string{"fp16", "int8", "int4"} {
			_, err := Apply(context.Background(), m.Clone(), MustParseSpec(again), Options{})
			if !errors.Is(err, ErrAlreadyQuantized) || !strings.Contains(err.Error(), " × ") {
				t.Errorf("%s then %s: %v", first, again, err)
			}
		}
	}
}
