package quant_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/ort"
	"google.golang.org/protobuf/proto"
)

// Sizes of the single-operator graphs: batch, tokens, width, heads.
const (
	ctB, ctS, ctD, ctH = 2, 5, 16, 2
)

// contribCase is a float32 graph around one com.microsoft operator of the
// fp16 allow-list.
type contribCase struct {
	name string
	op   string
	// build adds the operator reading h ([B, S, D], float16 once
	// converted) and returns its node and the values to expose as graph
	// outputs (each through a default-domain Mul, so that every consumer
	// of the operator's T outputs is a converted node).
	build func(g *contribGraph, h string) (*onnx.Node, []string)
}

// contribGraph builds a contribCase's graph with seeded weights.
type contribGraph struct {
	*onnx.Builder
	r *rand.Rand
}

func (g *contribGraph) weight(name string, scale float64, dims ...int64) string {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(g.r.NormFloat64() * scale)
	}
	return g.AddInitializerFloat32(name, dims, v)
}

func (g *contribGraph) matmul(h, name string, cols int64) string {
	return g.AddNode("MatMul", []string{h, g.weight(name, 1/math.Sqrt(ctD), ctD, cols)}, nil).Out()
}

// mask returns an int32 key padding mask [B, S] hiding the last token of
// the second sample.
func (g *contribGraph) mask(name string) string {
	m := make([]int32, ctB*ctS)
	for i := range m {
		m[i] = 1
	}
	m[ctB*ctS-1] = 0
	return g.AddInitializerInt32(name, []int64{ctB, ctS}, m)
}

func contribCases() []contribCase {
	return []contribCase{
		{name: "MultiHeadAttention", op: "MultiHeadAttention", build: func(g *contribGraph, h string) (*onnx.Node, []string) {
			q, k, v := g.matmul(h, "wq", ctD), g.matmul(h, "wk", ctD), g.matmul(h, "wv", ctD)
			n := g.AddNodeDomain(onnx.MicrosoftDomain, "MultiHeadAttention",
				[]string{q, k, v, g.weight("qkv_bias", 0.2, 3*ctD), g.mask("key_padding_mask"), g.weight("attention_bias", 0.5, 1, ctH, ctS, ctS)}, nil,
				onnx.AttrInt("num_heads", ctH), onnx.AttrFloat("scale", 0.3))
			return n, []string{n.Out()}
		}},
		{name: "Attention", op: "Attention", build: func(g *contribGraph, h string) (*onnx.Node, []string) {
			n := g.AddNodeDomain(onnx.MicrosoftDomain, "Attention",
				[]string{h, g.weight("qkv_weight", 1/math.Sqrt(ctD), ctD, 3*ctD), g.weight("qkv_bias", 0.2, 3*ctD), g.mask("mask_index"), "", g.weight("attention_bias", 0.5, 1, ctH, ctS, ctS)}, nil,
				onnx.AttrInt("num_heads", ctH))
			return n, []string{n.Out()}
		}},
		{name: "SkipLayerNormalization", op: "SkipLayerNormalization", build: func(g *contribGraph, h string) (*onnx.Node, []string) {
			skip := g.matmul(h, "w_skip", ctD)
			// mean and inv_std_var (U = float32) are named but unread:
			// ONNX Runtime's CPU kernel does not compute them (see
			// TestFP16ContribFloatOutputs for a graph reading them).
			n := g.AddNodeDomain(onnx.MicrosoftDomain, "SkipLayerNormalization",
				[]string{h, skip, g.weight("gamma", 1, ctD), g.weight("beta", 0.5, ctD), g.weight("bias", 0.5, ctD)},
				[]string{"normed", "mean", "inv_std_var", "sum"}, onnx.AttrFloat("epsilon", 1e-5))
			return n, []string{"normed", "sum"}
		}},
		{name: "SkipLayerNormalization-minimal", op: "SkipLayerNormalization", build: func(g *contribGraph, h string) (*onnx.Node, []string) {
			skip := g.matmul(h, "w_skip", ctD)
			n := g.AddNodeDomain(onnx.MicrosoftDomain, "SkipLayerNormalization", []string{h, skip, g.weight("gamma", 1, ctD)}, nil)
			return n, []string{n.Out()}
		}},
		{name: "BiasGelu", op: "BiasGelu", build: func(g *contribGraph, h string) (*onnx.Node, []string) {
			n := g.AddNodeDomain(onnx.MicrosoftDomain, "BiasGelu", []string{g.matmul(h, "w1", 2*ctD), g.weight("b1", 0.5, 2*ctD)}, nil)
			return n, []string{n.Out()}
		}},
		{name: "FastGelu", op: "FastGelu", build: func(g *contribGraph, h string) (*onnx.Node, []string) {
			n := g.AddNodeDomain(onnx.MicrosoftDomain, "FastGelu", []string{g.matmul(h, "w1", 2*ctD), g.weight("b1", 0.5, 2*ctD)}, nil)
			return n, []string{n.Out()}
		}},
		{name: "Gelu", op: "Gelu", build: func(g *contribGraph, h string) (*onnx.Node, []string) {
			n := g.AddNodeDomain(onnx.MicrosoftDomain, "Gelu", []string{g.matmul(h, "w1", 2*ctD)}, nil)
			return n, []string{n.Out()}
		}},
		{name: "QuickGelu", op: "QuickGelu", build: func(g *contribGraph, h string) (*onnx.Node, []string) {
			n := g.AddNodeDomain(onnx.MicrosoftDomain, "QuickGelu", []string{g.matmul(h, "w1", 2*ctD)}, nil, onnx.AttrFloat("alpha", 1.702))
			return n, []string{n.Out()}
		}},
	}
}

// buildContrib builds a case's float32 graph: x [B, S, D] → Mul → the
// operator → a Mul per exposed output.
func buildContrib(t testing.TB, c contribCase) *onnx.Model {
	t.Helper()
	g := &contribGraph{Builder: onnx.NewBuilder(c.name, 17), r: rand.New(rand.NewPCG(21, 5))}
	x := g.AddInput("x", onnx.Float, onnx.Dims(ctB, ctS, ctD))
	h := g.AddNode("Mul", []string{x, g.weight("in_scale", 1, ctD)}, nil).Out()
	n, outs := c.build(g, h)
	n.Named(c.op)
	for i, o := range outs {
		y := g.AddNode("Mul", []string{o, g.weight(fmt.Sprintf("out_scale%d", i), 1, 1)}, []string{fmt.Sprintf("y%d", i)}).Out()
		g.AddOutput(y, onnx.Float, nil)
	}
	m, err := g.Build()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// runAll runs the model at path on x and returns every output, with the
// op types of the nodes ONNX Runtime ran (from its profile).
func runAll(t testing.TB, path string, x ort.Tensor) ([]ort.Tensor, []string) {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "profile")
	s, err := ort.NewSession(path, ort.SessionConfig{IntraOpThreads: 1, ProfilePrefix: prefix})
	if err != nil {
		t.Fatalf("open %s: %v", filepath.Base(path), err)
	}
	out, err := s.RunFloat32(x)
	if cerr := s.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatalf("run %s: %v", filepath.Base(path), err)
	}
	return out, profiledOps(t, prefix)
}

// profiledOps reads the op types of the nodes an ONNX Runtime profile
// shows running, with their names: "Cast:InsertedPrecisionFreeCast_...".
func profiledOps(t testing.TB, prefix string) []string {
	t.Helper()
	files, _ := filepath.Glob(prefix + "*.json")
	var ops []string
	seen := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var events []struct {
			Cat  string `json:"cat"`
			Name string `json:"name"`
			Args struct {
				OpName   string `json:"op_name"`
				Provider string `json:"provider"`
			} `json:"args"`
		}
		if err := json.Unmarshal(data, &events); err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Cat == "Node" && e.Args.OpName != "" && !seen[e.Name] {
				seen[e.Name] = true
				ops = append(ops, e.Args.OpName+":"+e.Name)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

func seededInput(shape []int64, seed uint64) ort.Tensor {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	r := rand.New(rand.NewPCG(seed, 17))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return ort.Tensor{Shape: shape, Data: v}
}

// TestFP16ContribOps converts a graph around each com.microsoft operator
// of the fp16 allow-list: the operator's T inputs and outputs become
// float16 with no Cast next to it, integer masks and float32 statistics
// outputs are left as they are, float attributes stay float, the report
// counts it in fp16, and ONNX Runtime's CPU execution provider loads and
// runs the result (inserting its own Casts where it has no float16
// kernel) with outputs within float16 tolerance of the float32 graph's.
func TestFP16ContribOps(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range contribCases() {
		covered[c.op] = true
	}
	for _, op := range quant.FP16ContribOpsForTest() {
		if !covered[op] {
			t.Errorf("allowed operator %s has no case", op)
		}
	}
	for _, c := range contribCases() {
		t.Run(c.name, func(t *testing.T) {
			src := buildContrib(t, c)
			m := src.Clone()
			r, err := quant.Apply(context.Background(), m, quant.MustParseSpec("fp16"), quant.Options{})
			if err != nil {
				t.Fatal(err)
			}
			key := onnx.OpKey(onnx.MicrosoftDomain, c.op)
			if r.Count(key, quant.PrecFP16) != 1 || r.Count(key, quant.PrecFP32) != 0 {
				t.Errorf("report: %s %d fp16, %d fp32", key, r.Count(key, quant.PrecFP16), r.Count(key, quant.PrecFP32))
			}
			checkContribNode(t, src, m, c)
			requireORT(t)
			x := seededInput([]int64{ctB, ctS, ctD}, 3)
			ref, _ := runAll(t, saveModel(t, src, "fp32.onnx"), x)
			got, ran := runAll(t, saveModel(t, m, "fp16.onnx"), x)
			// How the CPU execution provider ran it: the operator's own
			// kernel (float16, or float32 between Casts its
			// InsertCastTransformer added where it has no float16 kernel),
			// or the operator's function body when it has no kernel.
			kernel, inserted := false, 0
			for _, op := range ran {
				kernel = kernel || strings.HasPrefix(op, c.op+":")
				if strings.HasPrefix(op, "Cast:InsertedPrecisionFreeCast_") {
					inserted++
				}
			}
			how := "as its function body"
			if kernel {
				how = "with its kernel"
			}
			t.Logf("ORT CPU ran %s %s, %d Casts inserted by ORT", c.op, how, inserted)
			for i := range ref {
				f, err := fidelity.Compare([][]float32{ref[i].Data}, [][]float32{got[i].Data})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("output %d: %s", i, f)
				if f.CosineMin < 0.9999 || f.SQNRdB < 40 {
					t.Errorf("output %d: %s", i, f)
				}
			}
		})
	}
}

// checkContribNode checks the converted operator node of case c in m
// (converted from src).
func checkContribNode(t *testing.T, src, m *onnx.Model, c contribCase) {
	t.Helper()
	types := quant.InferTypesForTest(m)
	g := m.Graph()
	var n *onnxpb.NodeProto
	producer := map[string]*onnxpb.NodeProto{}
	consumers := map[string][]*onnxpb.NodeProto{}
	for _, nd := range g.GetNode() {
		if nd.GetName() == c.op {
			n = nd
		}
		for _, o := range nd.GetOutput() {
			producer[o] = nd
		}
		for _, in := range nd.GetInput() {
			consumers[in] = append(consumers[in], nd)
		}
	}
	if n == nil || n.GetDomain() != onnx.MicrosoftDomain {
		t.Fatalf("no com.microsoft %s node named %s", c.op, c.op)
	}
	var srcNode *onnxpb.NodeProto
	for _, nd := range src.Graph().GetNode() {
		if nd.GetName() == c.op {
			srcNode = nd
		}
	}
	srcInits := map[string]*onnxpb.TensorProto{}
	for _, init := range src.Graph().GetInitializer() {
		srcInits[init.GetName()] = init
	}
	inits := map[string]*onnxpb.TensorProto{}
	for _, init := range g.GetInitializer() {
		inits[init.GetName()] = init
	}
	isCast := func(nd *onnxpb.NodeProto) bool { return nd != nil && nd.GetOpType() == "Cast" }
	for i, in := range n.GetInput() {
		if in == "" {
			continue
		}
		if old := srcNode.GetInput()[i]; onnx.DataTypeOf(srcInits[old]) == onnx.Int32 {
			// Integer masks: the same initializer, untouched.
			if in != old || !proto.Equal(inits[in], srcInits[old]) {
				t.Errorf("input %d: mask %s changed to %s", i, old, in)
			}
			continue
		}
		if types[in] != onnx.Float16 {
			t.Errorf("input %d (%s) is %v, want float16", i, in, types[in])
		}
		if isCast(producer[in]) {
			t.Errorf("input %d (%s) comes from a Cast", i, in)
		}
	}
	for i, o := range n.GetOutput() {
		if o == "" {
			continue
		}
		want := onnx.Float16
		if c.op == "SkipLayerNormalization" && (i == 1 || i == 2) {
			want = onnx.Float // mean and inv_std_var: U = float
		}
		if types[o] != want {
			t.Errorf("output %d (%s) is %v, want %v", i, o, types[o], want)
		}
		for _, cons := range consumers[o] {
			if isCast(cons) && want == onnx.Float16 {
				t.Errorf("output %d (%s) is read by a Cast", i, o)
			}
		}
	}
	for _, a := range n.GetAttribute() {
		if a.GetName() == "epsilon" || a.GetName() == "scale" || a.GetName() == "alpha" {
			if a.GetType() != onnxpb.AttributeProto_FLOAT {
				t.Errorf("attribute %s became %v", a.GetName(), a.GetType())
			}
		}
	}
	if err := onnx.Check(m); err != nil {
		t.Errorf("check: %v", err)
	}
}

// A com.microsoft operator off the allow-list (FusedMatMul) stays float32
// behind Casts, and ONNX Runtime's CPU execution provider runs the result
// as it runs the float32 graph.
func TestFP16BlockedContribRunsOnORT(t *testing.T) {
	const k, n = ctD, 24
	g := &contribGraph{Builder: onnx.NewBuilder("fusedmatmul", 17), r: rand.New(rand.NewPCG(8, 8))}
	x := g.AddInput("x", onnx.Float, onnx.Dims(ctB, ctS, k))
	h := g.AddNode("Mul", []string{x, g.weight("in_scale", 1, k)}, nil).Out()
	mm := g.AddNodeDomain(onnx.MicrosoftDomain, "FusedMatMul", []string{h, g.weight("w", 0.1, k, n)}, nil,
		onnx.AttrFloat("alpha", 0.5)).Named("FusedMatMul").Out()
	g.AddNode("Mul", []string{mm, g.weight("out_scale", 1, 1)}, []string{"y"})
	g.AddOutput("y", onnx.Float, nil)
	src, err := g.Build()
	if err != nil {
		t.Fatal(err)
	}
	m := src.Clone()
	r, err := quant.Apply(context.Background(), m, quant.MustParseSpec("fp16"), quant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key := onnx.OpKey(onnx.MicrosoftDomain, "FusedMatMul")
	if r.Count(key, quant.PrecFP32) != 1 || r.Count("Mul", quant.PrecFP16) != 2 {
		t.Errorf("report: %+v", r.Ops)
	}
	types := quant.InferTypesForTest(m)
	for _, nd := range m.Graph().GetNode() {
		if nd.GetOpType() == "FusedMatMul" {
			if a, y := nd.GetInput()[0], nd.GetOutput()[0]; types[a] != onnx.Float || types[y] != onnx.Float {
				t.Errorf("FusedMatMul reads %v, writes %v; want float32", types[a], types[y])
			}
		}
	}
	if c := countNodes(m, "Cast"); c != 4 {
		t.Errorf("%d Casts, want 4 (graph input and output, around FusedMatMul)", c)
	}
	requireORT(t)
	in := seededInput([]int64{ctB, ctS, k}, 4)
	ref, _ := runAll(t, saveModel(t, src, "fp32.onnx"), in)
	got, _ := runAll(t, saveModel(t, m, "fp16.onnx"), in)
	f, err := fidelity.Compare([][]float32{ref[0].Data}, [][]float32{got[0].Data})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fp16 vs fp32: %s", f)
	if f.CosineMin < 0.9999 {
		t.Errorf("fp16 vs fp32: %s", f)
	}
}
