package optimize_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/profiler/ort"
)

// small builds a test graph over an input x [B, 5, 8] (or the shape
// given) with a helper for seeded initializers.
type small struct {
	b   *onnx.Builder
	r   *rand.Rand
	x   string
	in  []int64 // the input's shape for runs (B = 2)
	out []string
}

func newSmall(opset int64, shape ...any) *small {
	if len(shape) == 0 {
		shape = []any{"B", 5, 8}
	}
	s := &small{b: onnx.NewBuilder("t", opset), r: rand.New(rand.NewPCG(1, 2))}
	s.x = s.b.AddInput("x", onnx.Float, onnx.Dims(shape...))
	for _, d := range shape {
		switch d := d.(type) {
		case int:
			s.in = append(s.in, int64(d))
		default:
			s.in = append(s.in, 2)
		}
	}
	return s
}

func (s *small) init(name string, std, mean float64, dims ...int64) string {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(mean + s.r.NormFloat64()*std)
	}
	return s.b.AddInitializerFloat32(name, dims, v)
}

func (s *small) scalar(v float64) string {
	return s.b.AddConstantFloat32(s.b.Unique("c"), nil, []float32{float32(v)})
}

func (s *small) node(op string, ins ...string) string { return s.b.AddNode(op, ins, nil).Out() }

// linear is x·W + b with W [k, n].
func (s *small) linear(x string, k, n int64) string {
	w := s.init(s.b.Unique("w"), 0.4, 0, k, n)
	b := s.init(s.b.Unique("b"), 0.3, 0, n)
	return s.node("Add", s.node("MatMul", x, w), b)
}

func (s *small) output(v string) {
	s.b.AddOutput(v, onnx.Float, nil)
	s.out = append(s.out, v)
}

func (s *small) build(t testing.TB) *onnx.Model {
	t.Helper()
	m, err := s.b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (s *small) input(seed uint64) ort.Tensor { return randomInput(s.in, seed) }

// patternCase is a small graph, the patterns it must (or must not) match,
// and for near misses the reason expected in the report.
type patternCase struct {
	name  string
	graph func() *small
	want  map[optimize.Pattern]int
	miss  string // a substring of a Miss reason (near misses)
	op    string // an operator key the fused graph must have
}

func runPatternCases(t *testing.T, cases []patternCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.graph()
			m := s.build(t)
			fused, r := apply(t, m, optimize.Default())
			for _, p := range optimize.Patterns {
				if p == optimize.FoldConstants || p == optimize.FoldReshapes {
					continue
				}
				if r.Count(p) != tc.want[p] {
					t.Errorf("%s: %d matches, want %d (misses %v)", p, r.Count(p), tc.want[p], r.Misses)
				}
			}
			if tc.op != "" && ops(fused)[tc.op] == 0 {
				t.Errorf("no %s in %v", tc.op, ops(fused))
			}
			if tc.miss != "" {
				found := false
				for _, ms := range r.Misses {
					found = found || strings.Contains(ms.Reason, tc.miss)
				}
				if !found {
					t.Errorf("no miss mentions %q: %v", tc.miss, r.Misses)
				}
			}
			if r.Changed() {
				equivalent(t, m, fused, s.input(4), 0.99999)
			}
		})
	}
}

// Residual Add + LayerNormalization.
func TestSkipLayerNormPatterns(t *testing.T) {
	sln := map[optimize.Pattern]int{optimize.SkipLayerNorm: 1}
	ln := func(s *small, x string, attrs ...any) string {
		g := s.init(s.b.Unique("g"), 0.2, 1, 8)
		be := s.init(s.b.Unique("be"), 0.2, 0, 8)
		n := s.b.AddNode("LayerNormalization", []string{x, g, be}, nil, onnx.AttrInt("axis", -1), onnx.AttrFloat("epsilon", 1e-6))
		return n.Out()
	}
	runPatternCases(t, []patternCase{
		{name: "add+ln", want: sln, op: "com.microsoft.SkipLayerNormalization", graph: func() *small {
			s := newSmall(17)
			h := s.node("Relu", s.x)
			s.output(ln(s, s.node("Add", s.x, h)))
			return s
		}},
		{name: "residual-stream-read-on", want: sln, graph: func() *small {
			s := newSmall(17)
			sum := s.node("Add", s.x, s.node("Relu", s.x))
			s.output(ln(s, sum))
			s.output(s.node("Mul", sum, s.scalar(2))) // the next block's residual
			return s
		}},
		{name: "sum-is-a-graph-output", want: sln, graph: func() *small {
			s := newSmall(17)
			sum := s.node("Add", s.x, s.node("Relu", s.x))
			s.output(ln(s, sum))
			s.output(sum)
			return s
		}},
		{name: "linear-bias-moves-in", want: sln, graph: func() *small {
			s := newSmall(17)
			h := s.linear(s.x, 8, 8)
			s.output(ln(s, s.node("Add", h, s.x)))
			return s
		}},
		{name: "position-embedding-skip", want: sln, graph: func() *small {
			s := newSmall(17)
			pos := s.init("pos", 1, 0, 1, 5, 8)
			s.output(ln(s, s.node("Add", pos, s.x)))
			return s
		}},
		{name: "2d", want: sln, graph: func() *small {
			s := newSmall(17, 6, 8)
			s.output(ln(s, s.node("Add", s.x, s.node("Relu", s.x))))
			return s
		}},
		{name: "miss/not-last-axis", miss: "last axis", graph: func() *small {
			s := newSmall(17, "B", 8, 8)
			g := s.init("g", 0.2, 1, 8, 8)
			be := s.init("be", 0.2, 0, 8, 8)
			sum := s.node("Add", s.x, s.node("Relu", s.x))
			s.output(s.b.AddNode("LayerNormalization", []string{sum, g, be}, nil, onnx.AttrInt("axis", 1)).Out())
			return s
		}},
		{name: "miss/mean-read", miss: "mean", graph: func() *small {
			s := newSmall(17)
			g := s.init("g", 0.2, 1, 8)
			sum := s.node("Add", s.x, s.node("Relu", s.x))
			n := s.b.AddNode("LayerNormalization", []string{sum, g}, []string{"y", "mean"}, onnx.AttrInt("axis", -1))
			s.output(n.Output(0))
			s.output(n.Output(1))
			return s
		}},
		{name: "miss/broadcast-operand", miss: "operands", graph: func() *small {
			s := newSmall(17)
			c := s.init("c", 1, 0, 1, 5, 1) // per token: a shape SkipLayerNormalization does not broadcast
			s.output(ln(s, s.node("Add", c, s.x)))
			return s
		}},
		{name: "miss/not-an-add", miss: "not an Add", graph: func() *small {
			s := newSmall(17)
			s.output(ln(s, s.node("Relu", s.x)))
			return s
		}},
	})
}

// Bias + GELU in every form the exporters write.
func TestGeluPatterns(t *testing.T) {
	// erf writes 0.5·x·(1 + erf(x/√2)) in one of three operand orders,
	// x/√2 as Div or Mul.
	erf := func(s *small, x string, order int, mulForm bool, half, root float64) string {
		var d string
		if mulForm {
			d = s.node("Mul", x, s.scalar(1/root))
		} else {
			d = s.node("Div", x, s.scalar(root))
		}
		a := s.node("Add", s.node("Erf", d), s.scalar(1))
		switch order {
		case 1:
			return s.node("Mul", x, s.node("Mul", a, s.scalar(half)))
		case 2:
			return s.node("Mul", s.node("Mul", s.scalar(half), x), a)
		}
		return s.node("Mul", s.node("Mul", x, a), s.scalar(half))
	}
	mlp := func(order int, mulForm bool, half, root float64) func() *small {
		return func() *small {
			s := newSmall(17)
			s.output(erf(s, s.linear(s.x, 8, 16), order, mulForm, half, root))
			return s
		}
	}
	bg := map[optimize.Pattern]int{optimize.BiasGelu: 1}
	runPatternCases(t, []patternCase{
		{name: "torch-export-order", graph: mlp(0, false, 0.5, math.Sqrt2), want: bg, op: "com.microsoft.BiasGelu"},
		{name: "half-then-x", graph: mlp(1, false, 0.5, math.Sqrt2), want: bg},
		{name: "half-x-first", graph: mlp(2, false, 0.5, math.Sqrt2), want: bg},
		{name: "mul-by-1/sqrt2", graph: mlp(0, true, 0.5, math.Sqrt2), want: bg},
		{name: "opset20-gelu-op", want: bg, graph: func() *small {
			s := newSmall(20)
			s.output(s.node("Gelu", s.linear(s.x, 8, 16)))
			return s
		}},
		{name: "tanh-gelu-is-fastgelu", want: map[optimize.Pattern]int{optimize.FastGelu: 1}, op: "com.microsoft.FastGelu", graph: func() *small {
			s := newSmall(20)
			h := s.linear(s.x, 8, 16)
			s.output(s.b.AddNode("Gelu", []string{h}, nil, onnx.AttrString("approximate", "tanh")).Out())
			return s
		}},
		{name: "no-bias-erf-gelu", want: map[optimize.Pattern]int{optimize.Gelu: 1}, op: "com.microsoft.Gelu", graph: func() *small {
			s := newSmall(17)
			s.output(erf(s, s.node("Relu", s.x), 0, false, 0.5, math.Sqrt2))
			return s
		}},
		{name: "bias-read-elsewhere", want: map[optimize.Pattern]int{optimize.Gelu: 1}, graph: func() *small {
			s := newSmall(17)
			h := s.linear(s.x, 8, 16)
			s.output(erf(s, h, 0, false, 0.5, math.Sqrt2))
			s.output(h)
			return s
		}},
		{name: "miss/not-half", graph: mlp(0, false, 0.6, math.Sqrt2)},
		{name: "miss/not-sqrt2", graph: mlp(0, false, 0.5, math.Sqrt(3))},
		{name: "miss/erf-read-elsewhere", graph: func() *small {
			s := newSmall(17)
			x := s.linear(s.x, 8, 16)
			e := s.node("Erf", s.node("Div", x, s.scalar(math.Sqrt2)))
			s.output(s.node("Mul", s.node("Mul", x, s.node("Add", e, s.scalar(1))), s.scalar(0.5)))
			s.output(e)
			return s
		}},
	})
}

// QuickGELU and SiLU after a linear layer; MatMul + Add on 2-D inputs.
func TestQuickGeluAndGemmPatterns(t *testing.T) {
	runPatternCases(t, []patternCase{
		{name: "clip-quickgelu", want: map[optimize.Pattern]int{optimize.QuickGelu: 1}, op: "com.microsoft.QuickGelu", graph: func() *small {
			s := newSmall(17)
			h := s.linear(s.x, 8, 16)
			s.output(s.node("Mul", h, s.node("Sigmoid", s.node("Mul", h, s.scalar(1.702)))))
			return s
		}},
		{name: "silu", want: map[optimize.Pattern]int{optimize.QuickGelu: 1}, graph: func() *small {
			s := newSmall(17)
			h := s.linear(s.x, 8, 16)
			s.output(s.node("Mul", s.node("Sigmoid", h), h))
			return s
		}},
		{name: "miss/vector-alpha", graph: func() *small {
			s := newSmall(17)
			h := s.linear(s.x, 8, 16)
			s.output(s.node("Mul", h, s.node("Sigmoid", s.node("Mul", h, s.init("a", 1, 1, 16)))))
			return s
		}},
		{name: "miss/not-after-a-linear-layer", graph: func() *small {
			s := newSmall(17)
			s.output(s.node("Mul", s.x, s.node("Sigmoid", s.x)))
			return s
		}},
		{name: "matmul-add-2d", want: map[optimize.Pattern]int{optimize.Gemm: 1}, op: "Gemm", graph: func() *small {
			s := newSmall(17, "B", 8)
			s.output(s.linear(s.x, 8, 4))
			return s
		}},
		{name: "miss/matmul-add-3d", graph: func() *small {
			s := newSmall(17)
			s.output(s.linear(s.x, 8, 4))
			return s
		}},
		{name: "miss/bias-not-constant", graph: func() *small {
			s := newSmall(17, "B", 8)
			s.output(s.node("Add", s.node("MatMul", s.x, s.init("w", 1, 0, 8, 8)), s.node("Relu", s.x)))
			return s
		}},
	})
}

// A constant per-channel scale after a linear layer (LayerScale) folds
// into the layer's weight and bias.
func TestLinearScalePatterns(t *testing.T) {
	ls := map[optimize.Pattern]int{optimize.LinearScale: 1}
	runPatternCases(t, []patternCase{
		{name: "layerscale", want: ls, graph: func() *small {
			s := newSmall(17)
			s.output(s.node("Mul", s.linear(s.x, 8, 8), s.init("gamma", 0.3, 0.1, 8)))
			return s
		}},
		{name: "scalar-first-no-bias", want: ls, graph: func() *small {
			s := newSmall(17)
			s.output(s.node("Mul", s.scalar(0.7), s.node("MatMul", s.x, s.init("w", 0.4, 0, 8, 8))))
			return s
		}},
		{name: "then-skip-layernorm-takes-the-bias", want: map[optimize.Pattern]int{optimize.LinearScale: 1, optimize.SkipLayerNorm: 1}, graph: func() *small {
			s := newSmall(17)
			h := s.node("Mul", s.linear(s.x, 8, 8), s.init("gamma", 0.3, 0.1, 8))
			g := s.init("g", 0.2, 1, 8)
			s.output(s.b.AddNode("LayerNormalization", []string{s.node("Add", s.x, h), g}, nil, onnx.AttrInt("axis", -1)).Out())
			return s
		}},
		{name: "miss/shared-weight", graph: func() *small {
			s := newSmall(17)
			w := s.init("w", 0.4, 0, 8, 8)
			s.output(s.node("Mul", s.node("MatMul", s.x, w), s.init("gamma", 0.3, 0.1, 8)))
			s.output(s.node("MatMul", s.node("Relu", s.x), w))
			return s
		}},
		{name: "miss/per-token-scale", graph: func() *small {
			s := newSmall(17)
			s.output(s.node("Mul", s.linear(s.x, 8, 8), s.init("gamma", 0.3, 0.1, 5, 1)))
			return s
		}},
		{name: "miss/scale-broadcasts-up", graph: func() *small {
			s := newSmall(17)
			s.output(s.node("Mul", s.linear(s.x, 8, 8), s.init("gamma", 0.3, 0.1, 2, 1, 1, 8)))
			return s
		}},
	})
}

// A head that reads some token rows only (the class token) gets the
// token-wise layers before it computed on those rows.
func TestPruneTokensPatterns(t *testing.T) {
	head := func(s *small, h string, idx ...int64) {
		dims := []int64{int64(len(idx))}
		if len(idx) == 1 {
			dims = nil
		}
		ix := s.b.AddConstantInt64(s.b.Unique("idx"), dims, idx)
		s.output(s.b.AddNode("Gather", []string{h, ix}, nil, onnx.AttrInt("axis", 1)).Out())
	}
	ln := func(s *small, x string) string {
		return s.b.AddNode("LayerNormalization", []string{x, s.init(s.b.Unique("g"), 0.2, 1, 8)}, nil, onnx.AttrInt("axis", -1)).Out()
	}
	prune := func(n int) map[optimize.Pattern]int { return map[optimize.Pattern]int{optimize.PruneTokens: n} }
	runPatternCases(t, []patternCase{
		{name: "class-token", want: prune(3), graph: func() *small {
			s := newSmall(17)
			head(s, ln(s, s.linear(s.x, 8, 8)), 0)
			return s
		}},
		{name: "two-tokens", want: prune(3), graph: func() *small {
			s := newSmall(17)
			h := ln(s, s.linear(s.x, 8, 8))
			head(s, h, 0)
			head(s, h, 1)
			return s
		}},
		{name: "last-token-and-residual", want: map[optimize.Pattern]int{optimize.PruneTokens: 3, optimize.SkipLayerNorm: 1}, graph: func() *small {
			s := newSmall(17)
			pos := s.init("pos", 1, 0, 1, 5, 8)
			h := s.node("Add", s.node("Relu", s.node("Add", s.x, pos)), s.x)
			head(s, ln(s, h), -1)
			return s
		}},
		{name: "miss/rows-read-in-full", graph: func() *small {
			s := newSmall(17)
			h := ln(s, s.linear(s.x, 8, 8))
			head(s, h, 0)
			s.output(h)
			return s
		}},
		{name: "miss/mixes-tokens", graph: func() *small {
			s := newSmall(17)
			// A product over the token axis (attention weights) mixes rows.
			tr := s.b.AddNode("Transpose", []string{s.x}, nil, onnx.AttrInts("perm", 0, 2, 1)).Out()
			mix := s.node("MatMul", s.init("m", 0.3, 0, 5, 5), s.node("Relu", tr))
			h := s.b.AddNode("Transpose", []string{mix}, nil, onnx.AttrInts("perm", 0, 2, 1)).Out()
			head(s, h, 0)
			return s
		}},
	})
}

// Shape subgraphs over static dimensions fold; the Reshape target built
// from Shape → Gather → Unsqueeze → Concat becomes a constant with 0 for
// the symbolic batch.
func TestFoldShapes(t *testing.T) {
	s := newSmall(17)
	shp := s.node("Shape", s.x)
	dim := func(i int64) string {
		g := s.b.AddNode("Gather", []string{shp, s.b.AddConstantInt64(s.b.Unique("i"), nil, []int64{i})}, nil, onnx.AttrInt("axis", 0)).Out()
		return s.node("Unsqueeze", g, s.b.AddConstantInt64(s.b.Unique("ax"), []int64{1}, []int64{0}))
	}
	two := s.b.AddConstantInt64("two", []int64{1}, []int64{2})
	four := s.b.AddConstantInt64("four", []int64{1}, []int64{4})
	target := s.b.AddNode("Concat", []string{dim(0), dim(1), two, four}, nil, onnx.AttrInt("axis", 0)).Out()
	s.output(s.node("Reshape", s.x, target))
	// A float scale computed from the shape, as torch exports
	// scaled_dot_product_attention's default scale.
	last := s.node("Slice", shp, s.b.AddConstantInt64("m1", []int64{1}, []int64{-1}), s.b.AddConstantInt64("big", []int64{1}, []int64{math.MaxInt64}))
	f := s.b.AddNode("Cast", []string{last}, nil, onnx.AttrInt("to", int64(onnx.Float))).Out()
	sc := s.node("Sqrt", s.node("Div", s.b.AddConstantFloat32("one", []int64{1}, []float32{1}), s.node("Sqrt", f)))
	s.output(s.node("Mul", s.x, sc))
	m := s.build(t)
	fused, r := apply(t, m, optimize.Default())
	if r.Count(optimize.FoldReshapes) != 1 || r.Count(optimize.FoldConstants) == 0 {
		t.Fatalf("got %s", r)
	}
	got := ops(fused)
	for _, op := range []string{"Shape", "Gather", "Concat", "Unsqueeze", "Sqrt", "Cast", "Slice", "Div"} {
		if got[op] != 0 {
			t.Errorf("%d %s left: %v", got[op], op, got)
		}
	}
	equivalent(t, m, fused, s.input(1), 0.9999999)
}
