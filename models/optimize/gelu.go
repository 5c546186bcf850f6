package optimize

import (
	"context"
	"math"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// geluMatch is an exact GELU found in the graph: its input, output and
// nodes, and whether it is the tanh approximation.
type geluMatch struct {
	x, out string
	nodes  []*onnxpb.NodeProto
	tanh   bool
	single bool // already one operator (Gelu): fusing it alone gains nothing
}

// near reports whether v is within a relative 1e-6 of want.
func near(v, want float64) bool { return math.Abs(v-want) <= 1e-6*math.Abs(want) }

// matchErfGelu recognizes 0.5·x·(1 + erf(x/√2)) around an Erf node, in the
// operand orders exporters write:
//
//	Mul(Mul(x, 1 + erf), 0.5)   torch.onnx.export
//	Mul(x, Mul(1 + erf, 0.5))
//	Mul(Mul(x, 0.5), 1 + erf)
//
// with x/√2 written as Div(x, √2) or Mul(x, 1/√2).
func matchErfGelu(gr *graph, sh *shapes, e *onnxpb.NodeProto) *geluMatch {
	dv := in(e, 0)
	d := gr.Producer[dv]
	if gr.only(dv) != e || d == nil {
		return nil
	}
	// The constants must not broadcast x to a higher rank.
	rk := sh.rank(dv)
	if rk < 0 {
		return nil
	}
	var x string
	switch {
	case gr.is(d, "Div"):
		if c, ok := gr.scalarFloat(in(d, 1), rk); ok && near(c, math.Sqrt2) {
			x = in(d, 0)
		}
	case gr.is(d, "Mul"):
		for i := range 2 {
			if c, ok := gr.scalarFloat(in(d, i), rk); ok && near(c, 1/math.Sqrt2) {
				x = in(d, 1-i)
			}
		}
	}
	if x == "" || sh.rank(x) != rk {
		return nil
	}
	ev := out0(e)
	ad := gr.only(ev)
	if !gr.is(ad, "Add") {
		return nil
	}
	if c, ok := gr.scalarFloat(other(ad, ev), rk); !ok || c != 1 {
		return nil
	}
	av := out0(ad)
	m1 := gr.only(av)
	if !gr.is(m1, "Mul") {
		return nil
	}
	nodes := []*onnxpb.NodeProto{d, e, ad, m1}
	o := other(m1, av)
	isHalf := func(v string) bool { c, ok := gr.scalarFloat(v, rk); return ok && c == 0.5 }
	switch {
	case o == x: // Mul(x, 1+erf) then · 0.5
		m2 := gr.only(out0(m1))
		if !gr.is(m2, "Mul") || !isHalf(other(m2, out0(m1))) {
			return nil
		}
		return &geluMatch{x: x, out: out0(m2), nodes: append(nodes, m2)}
	case isHalf(o): // Mul(1+erf, 0.5) then · x
		m2 := gr.only(out0(m1))
		if !gr.is(m2, "Mul") || other(m2, out0(m1)) != x {
			return nil
		}
		return &geluMatch{x: x, out: out0(m2), nodes: append(nodes, m2)}
	default: // Mul(Mul(x, 0.5), 1+erf)
		h := gr.Producer[o]
		if !gr.is(h, "Mul") || gr.only(o) != m1 {
			return nil
		}
		if other(h, x) == "" || !isHalf(other(h, x)) {
			return nil
		}
		return &geluMatch{x: x, out: out0(m1), nodes: append(nodes, h)}
	}
}

// fuseGelu fuses bias + GELU into BiasGelu (exact) or FastGelu (tanh
// approximation, from Gelu with approximate="tanh" only), and an Erf
// GELU without a bias into com.microsoft Gelu. It counts its patterns in
// r itself.
func fuseGelu(ctx context.Context, gr *graph, r *Report, opts Options) (int, error) {
	sh := inferShapes(gr)
	total := 0
	for i, n := range gr.g.GetNode() {
		if i%128 == 0 {
			if err := ctx.Err(); err != nil {
				return total, err
			}
		}
		var gm *geluMatch
		switch {
		case gr.is(n, "Erf"):
			gm = matchErfGelu(gr, sh, n)
		case gr.is(n, "Gelu") && len(n.GetInput()) == 1:
			switch onnx.AttrStringOr(n, "approximate", "none") {
			case "none":
				gm = &geluMatch{x: in(n, 0), out: out0(n), nodes: []*onnxpb.NodeProto{n}, single: true}
			case "tanh":
				gm = &geluMatch{x: in(n, 0), out: out0(n), nodes: []*onnxpb.NodeProto{n}, single: true, tanh: true}
			}
		case n.GetDomain() == onnx.MicrosoftDomain && n.GetOpType() == "Gelu" && !gr.dead[n] && len(n.GetInput()) == 1:
			gm = &geluMatch{x: in(n, 0), out: out0(n), nodes: []*onnxpb.NodeProto{n}, single: true}
		}
		if gm == nil {
			continue
		}
		// Every intermediate value is private to the pattern.
		ok := true
		for _, nd := range gm.nodes {
			if o := out0(nd); o != gm.out && !gr.private(o, gm.nodes...) {
				ok = false
			}
		}
		if !ok {
			r.miss(Gelu, n, "an intermediate value of the GELU is read elsewhere")
			continue
		}
		prefix := trimOp(n.GetName())
		// A bias Add on x that only the GELU reads.
		var a, b string
		var biasAdd *onnxpb.NodeProto
		if p := gr.Producer[gm.x]; gr.is(p, "Add") && gr.private(gm.x, gm.nodes...) && len(p.GetInput()) == 2 {
			for i := range 2 {
				c, y := in(p, i), in(p, 1-i)
				sy := sh.of(y)
				if gr.isConst(c) && len(sy) >= 1 && sy[len(sy)-1].isKnown() &&
					equalShapes(sh.of(c), shape{sy[len(sy)-1]}) && equalShapes(sh.of(gm.x), sy) {
					a, b, biasAdd = y, c, p
					break
				}
			}
		}
		switch {
		case biasAdd != nil && gm.tanh:
			if !opts.enabled(FastGelu) {
				continue
			}
			gr.addNode(onnx.MicrosoftDomain, "FastGelu", prefix+"FastGelu", []string{a, b}, []string{gm.out})
			gr.kill(biasAdd)
			r.Matched[FastGelu]++
		case biasAdd != nil:
			if !opts.enabled(BiasGelu) {
				continue
			}
			gr.addNode(onnx.MicrosoftDomain, "BiasGelu", prefix+"BiasGelu", []string{a, b}, []string{gm.out})
			gr.kill(biasAdd)
			r.Matched[BiasGelu]++
		case !gm.single && opts.enabled(Gelu):
			gr.addNode(onnx.MicrosoftDomain, "Gelu", prefix+"Gelu", []string{gm.x}, []string{gm.out})
			r.Matched[Gelu]++
		default:
			continue
		}
		gr.kill(gm.nodes...)
		total++
	}
	return total, gr.commit()
}

// fuseQuickGelu fuses x·sigmoid(α·x) (QuickGELU; SiLU when α = 1) on the
// output of a linear layer (MatMul, or MatMul + bias) into com.microsoft
// QuickGelu.
func fuseQuickGelu(ctx context.Context, gr *graph, r *Report) (int, error) {
	sh := inferShapes(gr)
	count := 0
	for i, sg := range gr.g.GetNode() {
		if i%128 == 0 {
			if err := ctx.Err(); err != nil {
				return count, err
			}
		}
		if !gr.is(sg, "Sigmoid") {
			continue
		}
		y := in(sg, 0)
		so := out0(sg)
		mul := gr.only(so)
		if !gr.is(mul, "Mul") {
			continue
		}
		x := other(mul, so)
		if x == "" {
			continue
		}
		alpha := 1.0
		nodes := []*onnxpb.NodeProto{sg, mul}
		if y != x {
			p := gr.Producer[y]
			if !gr.is(p, "Mul") || gr.only(y) != sg {
				continue
			}
			rk := sh.rank(x)
			c, ok := gr.scalarFloat(other(p, x), rk)
			if rk < 0 || !ok || other(p, x) == "" {
				continue
			}
			alpha = c
			nodes = append(nodes, p)
		}
		if !linearOutput(gr, x) {
			continue
		}
		gr.addNode(onnx.MicrosoftDomain, "QuickGelu", trimOp(mul.GetName())+"QuickGelu", []string{x}, []string{out0(mul)},
			onnx.AttrFloat("alpha", float32(alpha)))
		gr.kill(nodes...)
		count++
	}
	return count, gr.commit()
}

// linearOutput reports whether v comes out of a linear layer: MatMul with
// a constant weight, possibly followed by a bias Add.
func linearOutput(gr *graph, v string) bool {
	p := gr.Producer[v]
	if gr.is(p, "Add") {
		for i := range 2 {
			if gr.isConst(in(p, i)) {
				p = gr.Producer[in(p, 1-i)]
				break
			}
		}
	}
	return gr.is(p, "MatMul") && gr.isConst(in(p, 1))
}

// fuseGemm fuses MatMul(x, W) + c, x of rank 2, W a constant matrix [K, N]
// and c a constant [N] or [1, N], into Gemm(x, W, c).
func fuseGemm(ctx context.Context, gr *graph, r *Report) (int, error) {
	sh := inferShapes(gr)
	count := 0
	for i, mm := range gr.g.GetNode() {
		if i%128 == 0 {
			if err := ctx.Err(); err != nil {
				return count, err
			}
		}
		if !gr.is(mm, "MatMul") || sh.rank(in(mm, 0)) != 2 {
			continue
		}
		w := sh.of(in(mm, 1))
		if !gr.isConst(in(mm, 1)) || len(w) != 2 {
			continue
		}
		mo := out0(mm)
		add := gr.only(mo)
		if !gr.is(add, "Add") {
			continue
		}
		c := other(add, mo)
		sc := sh.of(c)
		if !gr.isConst(c) || !(equalShapes(sc, shape{w[1]}) || equalShapes(sc, shape{known(1), w[1]})) {
			continue
		}
		if !equalShapes(sh.of(out0(add)), sh.of(mo)) {
			continue
		}
		gr.addNode("", "Gemm", mm.GetName()+"_Gemm", []string{in(mm, 0), in(mm, 1), c}, []string{out0(add)})
		gr.kill(mm, add)
		count++
	}
	return count, gr.commit()
}
