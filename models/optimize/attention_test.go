package optimize_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"github.com/quantscope/quantscope/models/optimize"
)

// attnBlock describes a hand-built self-attention subgraph: input x
// [B, 5, 8], 2 heads of 4, output y [B, 5, 8] straight from the head-merge
// Reshape.
type attnBlock struct {
	extract  string  // "gather" (default), "split", "slice"
	scale    string  // "q-mul" (default), "q-div", "scores-mul", "scores-div", "sdpa", "none", "per-head", "input"
	scaleVal float64 // the factor (default 1/√4)
	bias     string  // "", "const" ([H, S, S]), "const4" ([1, H, S, S]), "mask" (graph input), "where", "after-scale"
	extra    string  // a value also made a graph output: "q", "scores", "probs", "qkv", "t"
	wInput   bool    // the QKV weight is a graph input
	axis     int64   // Softmax axis (default -1)
	kPerm    []int64 // kᵀ's permutation (default 0, 1, 3, 2)
	noBias   bool    // no QKV bias
	opset    int64
	head     bool // a head reads token 0 of y only (output "cls" instead of y)
}

const (
	tS, tD, tH = 5, 8, 2
	tHD        = tD / tH
)

func (a attnBlock) build(t testing.TB) *onnx.Model {
	t.Helper()
	opset := a.opset
	if opset == 0 {
		opset = 17
	}
	r := rand.New(rand.NewPCG(3, 4))
	rnd := func(n int, std float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * std)
		}
		return v
	}
	b := onnx.NewBuilder("attention", opset)
	x := b.AddInput("x", onnx.Float, onnx.Dims("B", tS, tD))
	var w string
	if a.wInput {
		w = b.AddInput("w", onnx.Float, onnx.Dims(tD, 3*tD))
	} else {
		w = b.AddInitializerFloat32("qkv.weight", []int64{tD, 3 * tD}, rnd(tD*3*tD, 0.5))
	}
	qkv := b.AddNode("MatMul", []string{x, w}, nil).Named("/attn/qkv/MatMul").Out()
	if !a.noBias {
		bias := b.AddInitializerFloat32("qkv.bias", []int64{3 * tD}, rnd(3*tD, 0.3))
		qkv = b.AddNode("Add", []string{qkv, bias}, nil).Out()
	}
	shape5 := b.AddConstantInt64(b.Unique("shape5"), []int64{5}, []int64{0, 0, 3, tH, tHD})
	r5 := b.AddNode("Reshape", []string{qkv, shape5}, nil).Out()
	tr := b.AddNode("Transpose", []string{r5}, nil, onnx.AttrInts("perm", 2, 0, 3, 1, 4)).Out()
	var q, k, v string
	switch a.extract {
	case "split":
		sizes := b.AddConstantInt64(b.Unique("split"), []int64{3}, []int64{1, 1, 1})
		sp := b.AddNode("Split", []string{tr, sizes}, []string{"s0", "s1", "s2"}, onnx.AttrInt("axis", 0))
		ax := b.AddConstantInt64(b.Unique("axes"), []int64{1}, []int64{0})
		q = b.AddNode("Squeeze", []string{sp.Output(0), ax}, nil).Out()
		k = b.AddNode("Squeeze", []string{sp.Output(1), ax}, nil).Out()
		v = b.AddNode("Squeeze", []string{sp.Output(2), ax}, nil).Out()
	case "slice":
		parts := make([]string, 3)
		for i := range parts {
			st := b.AddConstantInt64(b.Unique("st"), []int64{1}, []int64{int64(i)})
			en := b.AddConstantInt64(b.Unique("en"), []int64{1}, []int64{int64(i + 1)})
			ax := b.AddConstantInt64(b.Unique("ax"), []int64{1}, []int64{0})
			sl := b.AddNode("Slice", []string{tr, st, en, ax}, nil).Out()
			parts[i] = b.AddNode("Squeeze", []string{sl, ax}, nil).Out()
		}
		q, k, v = parts[0], parts[1], parts[2]
	default:
		g := func(i int64) string {
			idx := b.AddConstantInt64(b.Unique("idx"), nil, []int64{i})
			return b.AddNode("Gather", []string{tr, idx}, nil, onnx.AttrInt("axis", 0)).Out()
		}
		q, k, v = g(0), g(1), g(-1) // a negative index counts from the end
	}
	sv := a.scaleVal
	if sv == 0 && a.scale != "zero" {
		sv = 1 / math.Sqrt(tHD)
	}
	scalar := func(f float64) string { return b.AddConstantFloat32(b.Unique("c"), nil, []float32{float32(f)}) }
	qs, kRaw := q, k
	switch a.scale {
	case "", "q-mul", "zero":
		qs = b.AddNode("Mul", []string{q, scalar(sv)}, nil).Out()
	case "q-div":
		qs = b.AddNode("Div", []string{q, scalar(1 / sv)}, nil).Out()
	case "sdpa":
		qs = b.AddNode("Mul", []string{q, scalar(math.Sqrt(sv))}, nil).Out()
	case "per-head":
		s := b.AddConstantFloat32(b.Unique("c"), []int64{1, tH, 1, 1}, []float32{float32(sv), float32(sv / 2)})
		qs = b.AddNode("Mul", []string{q, s}, nil).Out()
	case "input":
		s := b.AddInput("scale", onnx.Float, onnx.Dims())
		qs = b.AddNode("Mul", []string{q, s}, nil).Out()
	}
	perm := a.kPerm
	if perm == nil {
		perm = []int64{0, 1, 3, 2}
	}
	kt := b.AddNode("Transpose", []string{kRaw}, nil, onnx.AttrInts("perm", perm...)).Out()
	if a.scale == "sdpa" {
		kt = b.AddNode("Mul", []string{kt, scalar(math.Sqrt(sv))}, nil).Out()
	}
	sc := b.AddNode("MatMul", []string{qs, kt}, nil).Out()
	scores := sc
	switch a.scale {
	case "scores-mul":
		sc = b.AddNode("Mul", []string{scalar(sv), sc}, nil).Out()
	case "scores-div":
		sc = b.AddNode("Div", []string{sc, scalar(1 / sv)}, nil).Out()
	}
	switch a.bias {
	case "const", "after-scale":
		bt := b.AddInitializerFloat32("rel_bias", []int64{tH, tS, tS}, rnd(tH*tS*tS, 1))
		sc = b.AddNode("Add", []string{sc, bt}, nil).Out()
		if a.bias == "after-scale" {
			sc = b.AddNode("Mul", []string{sc, scalar(0.5)}, nil).Out()
		}
	case "const4":
		bt := b.AddInitializerFloat32("rel_bias", []int64{1, tH, tS, tS}, rnd(tH*tS*tS, 1))
		sc = b.AddNode("Add", []string{bt, sc}, nil).Out()
	case "mask":
		mk := b.AddInput("mask", onnx.Float, onnx.Dims("B", 1, 1, tS))
		sc = b.AddNode("Add", []string{sc, mk}, nil).Out()
	case "where":
		mk := b.AddInitializer(boolTensor(t, "mask", []int64{1, 1, tS, tS}))
		sc = b.AddNode("Where", []string{mk, sc, scalar(-1e4)}, nil).Out()
	}
	axis := a.axis
	if axis == 0 {
		axis = -1
	}
	probs := b.AddNode("Softmax", []string{sc}, nil, onnx.AttrInt("axis", axis)).Out()
	o := b.AddNode("MatMul", []string{probs, v}, nil).Out()
	o = b.AddNode("Transpose", []string{o}, nil, onnx.AttrInts("perm", 0, 2, 1, 3)).Out()
	shape3 := b.AddConstantInt64(b.Unique("shape3"), []int64{3}, []int64{0, 0, tD})
	b.AddNode("Reshape", []string{o, shape3}, []string{"y"})
	if a.head {
		idx := b.AddConstantInt64(b.Unique("idx"), nil, []int64{0})
		b.AddNode("Gather", []string{"y", idx}, []string{"cls"}, onnx.AttrInt("axis", 1))
		b.AddOutput("cls", onnx.Float, onnx.Dims("B", tD))
	} else {
		b.AddOutput("y", onnx.Float, onnx.Dims("B", tS, tD))
	}
	extra := map[string]string{"q": q, "scores": scores, "probs": probs, "qkv": qkv, "t": tr}
	if a.extra != "" {
		b.AddOutput(extra[a.extra], onnx.Float, nil)
	}
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func boolTensor(t testing.TB, name string, dims []int64) *onnxpb.TensorProto {
	t.Helper()
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	raw := make([]byte, n)
	for i := range raw {
		raw[i] = byte(i % 3 % 2) // a pattern with both values
	}
	tt, err := onnx.NewTensorRaw(name, onnx.Bool, dims, raw)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

// Hand-built attention blocks: every form the exporters write fuses and
// computes the same; every near miss is left alone, with the reason in
// the report.
func TestAttentionPatterns(t *testing.T) {
	fuses := []struct {
		name string
		a    attnBlock
	}{
		{"gather+q-mul", attnBlock{}},
		{"split+squeeze", attnBlock{extract: "split"}},
		{"slice+squeeze", attnBlock{extract: "slice"}},
		{"q-div", attnBlock{scale: "q-div"}},
		{"scores-mul", attnBlock{scale: "scores-mul"}},
		{"scores-div", attnBlock{scale: "scores-div"}},
		{"sdpa-sqrt-scale-on-q-and-k", attnBlock{scale: "sdpa", extract: "split"}},
		{"no-scale", attnBlock{scale: "none"}},
		{"custom-scale", attnBlock{scaleVal: 0.3}},
		{"no-qkv-bias", attnBlock{noBias: true}},
		{"relative-bias", attnBlock{bias: "const"}},
		{"relative-bias-4d", attnBlock{bias: "const4", scale: "scores-div"}},
		{"opset13", attnBlock{opset: 13, extract: "split"}},
	}
	for _, tc := range fuses {
		t.Run("fuses/"+tc.name, func(t *testing.T) {
			m := tc.a.build(t)
			for _, op := range []optimize.AttentionOp{optimize.AttentionMHA, optimize.AttentionMHAPacked, optimize.AttentionPacked} {
				fused, r := apply(t, m, optimize.Options{AttentionOp: op})
				if r.Count(optimize.Attention) != 1 {
					t.Fatalf("%s: not fused: %v", op, r.Misses)
				}
				if got := ops(fused)["Softmax"]; got != 0 {
					t.Fatalf("%s: %d Softmax left", op, got)
				}
				equivalent(t, m, fused, randomInput([]int64{3, tS, tD}, 9), 0.99999)
			}
		})
	}
	misses := []struct {
		name string
		a    attnBlock
		why  string
	}{
		{"per-head-scale", attnBlock{scale: "per-head"}, "scale"},
		{"zero-scale", attnBlock{scale: "zero"}, "scale"},
		{"negative-scale", attnBlock{scaleVal: -0.5}, "scale"},
		{"scale-from-input", attnBlock{scale: "input"}, "scale"},
		{"mask-from-input", attnBlock{bias: "mask"}, "mask"},
		{"where-mask", attnBlock{bias: "where"}, "MatMul"},
		{"bias-then-scale", attnBlock{bias: "after-scale"}, "scale"},
		{"q-read-elsewhere", attnBlock{extra: "q"}, "q"},
		{"scores-read-elsewhere", attnBlock{extra: "scores"}, "scores"},
		{"probs-read-elsewhere", attnBlock{extra: "probs"}, "outside"},
		{"qkv-read-elsewhere", attnBlock{extra: "qkv"}, "other nodes"},
		{"packed-read-elsewhere", attnBlock{extra: "t"}, "other nodes"},
		{"weight-not-constant", attnBlock{wInput: true}, "weight"},
		{"softmax-axis", attnBlock{axis: 2}, "last axis"},
		{"k-not-transposed", attnBlock{kPerm: []int64{0, 1, 2, 3}}, "kᵀ"},
	}
	for _, tc := range misses {
		t.Run("misses/"+tc.name, func(t *testing.T) {
			m := tc.a.build(t)
			_, r := apply(t, m, optimize.Default())
			if r.Count(optimize.Attention) != 0 {
				t.Fatalf("fused a near miss: %s", r)
			}
			var reasons []string
			for _, ms := range r.Misses {
				if ms.Pattern == optimize.Attention {
					reasons = append(reasons, ms.Reason)
				}
			}
			if len(reasons) != 1 || !strings.Contains(reasons[0], tc.why) {
				t.Fatalf("reasons %q, want one mentioning %q", reasons, tc.why)
			}
		})
	}
}

// A head reading the class token only: the q projection and the attention
// run on that row, keys and values on all, the relative position bias
// sliced to the query row.
func TestAttentionPrunedToClassToken(t *testing.T) {
	for _, a := range []attnBlock{{head: true}, {head: true, bias: "const"}, {head: true, bias: "const4", extract: "split"}} {
		m := a.build(t)
		fused, r := apply(t, m, optimize.Default())
		if r.Count(optimize.Attention) != 1 || r.Count(optimize.PruneTokens) != 2 {
			t.Fatalf("%+v: %s, want attention=1 prune-unused-tokens=2 (q MatMul, attention)", a, r)
		}
		equivalent(t, m, fused, randomInput([]int64{3, tS, tD}, 5), 0.99999)
	}
}

// The fused node records the scale only when it is not 1/√head_size.
func TestAttentionScaleAttribute(t *testing.T) {
	for _, tc := range []struct {
		a    attnBlock
		want float64 // 0: no attribute
	}{
		{attnBlock{}, 0},
		{attnBlock{scale: "sdpa", extract: "split"}, 0},
		{attnBlock{scaleVal: 0.3}, 0.3},
		{attnBlock{scale: "none"}, 1},
	} {
		fused, _ := apply(t, tc.a.build(t), optimize.Default())
		var got float64
		for _, n := range fused.Graph().GetNode() {
			if n.GetOpType() == "MultiHeadAttention" {
				for _, at := range n.GetAttribute() {
					if at.GetName() == "scale" {
						got = float64(at.GetF())
					}
				}
			}
		}
		if math.Abs(got-tc.want) > 1e-6 {
			t.Errorf("%+v: scale attribute %g, want %g", tc.a, got, tc.want)
		}
	}
}
