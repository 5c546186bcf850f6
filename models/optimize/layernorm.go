package optimize

import (
	"context"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// fuseSkipLayerNorm fuses y = LayerNormalization(a + b) over the last axis
// into com.microsoft SkipLayerNormalization(a, b, γ, β[, bias]): a is the
// operand of the full shape [B, S, D] (or [M, D]), b the same or a
// broadcast [1, S, D] / [S, D] (a position embedding); when the sum is
// read elsewhere too (the residual stream), the fused node's fourth output
// carries it under the same name. A bias Add of a constant [D] vector on
// a (a linear layer's bias) moves into the fused node.
func fuseSkipLayerNorm(ctx context.Context, gr *graph, r *Report) (int, error) {
	sh := inferShapes(gr)
	count := 0
	for i, ln := range gr.g.GetNode() {
		if i%128 == 0 {
			if err := ctx.Err(); err != nil {
				return count, err
			}
		}
		if !gr.is(ln, "LayerNormalization") {
			continue
		}
		if why := skipLayerNorm(gr, sh, ln); why != "" {
			r.miss(SkipLayerNorm, ln, "%s", why)
			continue
		}
		count++
	}
	return count, gr.commit()
}

// skipLayerNorm fuses one LayerNormalization, or says why not.
func skipLayerNorm(gr *graph, sh *shapes, ln *onnxpb.NodeProto) string {
	x := in(ln, 0)
	sx := sh.of(x)
	if len(sx) != 2 && len(sx) != 3 {
		return "input is not [B, S, D] or [M, D]"
	}
	if ax := onnx.AttrIntOr(ln, "axis", -1); ax != -1 && ax != int64(len(sx)-1) {
		return "not normalized over the last axis"
	}
	if onnx.AttrIntOr(ln, "stash_type", 1) != 1 {
		return "stash_type is not float"
	}
	if !gr.singleOutput(ln) {
		return "mean or inverse standard deviation is read"
	}
	d := sx[len(sx)-1]
	if !d.isKnown() {
		return "hidden size unknown"
	}
	vec := shape{d}
	gamma, beta := in(ln, 1), in(ln, 2)
	if !equalShapes(sh.of(gamma), vec) || (beta != "" && !equalShapes(sh.of(beta), vec)) {
		return "scale or bias is not a [D] vector"
	}
	add := gr.Producer[x]
	if !gr.is(add, "Add") || len(add.GetInput()) != 2 {
		return "" + "input is not an Add"
	}
	a, b := in(add, 0), in(add, 1)
	if a == b {
		return "input is x + x"
	}
	sa, sb := sh.of(a), sh.of(b)
	full := func(s shape) bool { return equalShapes(s, sx) }
	skipOK := func(s shape) bool {
		if full(s) {
			return true
		}
		if len(sx) != 3 {
			return false
		}
		return equalShapes(s, shape{known(1), sx[1], sx[2]}) || equalShapes(s, shape{sx[1], sx[2]})
	}
	// A bias Add on an operand: a + c with c a constant [D].
	biasOf := func(v string) (string, string, *onnxpb.NodeProto) {
		p := gr.Producer[v]
		if !gr.is(p, "Add") || gr.only(v) != add || len(p.GetInput()) != 2 {
			return "", "", nil
		}
		for i := range 2 {
			c, y := in(p, i), in(p, 1-i)
			if gr.isConst(c) && equalShapes(sh.of(c), vec) && full(sh.of(y)) {
				return y, c, p
			}
		}
		return "", "", nil
	}
	var input, skip, bias string
	var biasAdd *onnxpb.NodeProto
	switch {
	case full(sa) && skipOK(sb):
		input, skip = a, b
		if y, c, p := biasOf(a); p != nil {
			input, bias, biasAdd = y, c, p
		} else if full(sb) {
			if y, c, p := biasOf(b); p != nil {
				input, skip, bias, biasAdd = y, a, c, p
			}
		}
	case full(sb) && skipOK(sa):
		input, skip = b, a
		if y, c, p := biasOf(b); p != nil {
			input, bias, biasAdd = y, c, p
		}
	default:
		return "the Add's operands are not [B, S, D] and [(1,) S, D]"
	}
	if gr.Implicit[x] {
		return "the sum is read by a subgraph"
	}
	sum := ""
	if !gr.private(x, ln) {
		sum = x // the residual stream goes on: the fused node writes it
	}
	ins := []string{input, skip, gamma, beta, bias}
	outs := []string{out0(ln)}
	if sum != "" {
		outs = append(outs, "", "", sum)
	}
	eps := onnx.AttrFloatOr(ln, "epsilon", 1e-5)
	gr.addNode(onnx.MicrosoftDomain, "SkipLayerNormalization", trimOp(ln.GetName())+"SkipLayerNormalization",
		trimInputs(ins), outs, onnx.AttrFloat("epsilon", eps))
	gr.kill(ln, add, biasAdd)
	return ""
}
