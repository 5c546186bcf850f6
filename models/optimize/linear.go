package optimize

import (
	"context"
	"fmt"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// foldLinearScale folds a constant per-channel (or scalar) Mul after a
// linear layer into its weight and bias: (x·W + b)·γ = x·(W·diag γ) + b·γ.
// This is LayerScale (DINOv2, BEiT, CaiT) on the attention and MLP
// branches; once folded, the bias Add can move into the
// SkipLayerNormalization that follows. The weight and bias must be
// constants read by nothing else (they are rewritten, not copied).
func foldLinearScale(ctx context.Context, gr *graph, r *Report) (int, error) {
	sh := inferShapes(gr)
	count := 0
	for i, mul := range gr.g.GetNode() {
		if i%128 == 0 {
			if err := ctx.Err(); err != nil {
				return count, err
			}
		}
		if !gr.is(mul, "Mul") || len(mul.GetInput()) != 2 {
			continue
		}
		done, err := foldScaleInto(gr, sh, mul)
		if err != nil {
			return count, err
		}
		if done {
			count++
		}
	}
	return count, gr.commit()
}

// foldScaleInto folds one Mul into the linear layer before it, if the
// pattern matches.
func foldScaleInto(gr *graph, sh *shapes, mul *onnxpb.NodeProto) (bool, error) {
	for side := range 2 {
		c, v := in(mul, side), in(mul, 1-side)
		if c == v || !gr.isConst(c) || gr.only(v) != mul {
			continue
		}
		// The linear layer: MatMul(x, W) [+ b].
		var add, mm *onnxpb.NodeProto
		var b string
		p := gr.Producer[v]
		if gr.is(p, "Add") && len(p.GetInput()) == 2 {
			for j := range 2 {
				if gr.isConst(in(p, j)) {
					b, add = in(p, j), p
					mm = gr.Producer[in(p, 1-j)]
					if gr.only(in(p, 1-j)) != p {
						mm = nil
					}
					break
				}
			}
		} else {
			mm = p
		}
		if !gr.is(mm, "MatMul") || !gr.private(in(mm, 1), mm) || (b != "" && !gr.private(b, add)) {
			continue
		}
		w, wd, ok := gr.constFloats(in(mm, 1))
		if !ok || len(wd) != 2 {
			continue
		}
		n := int(wd[1])
		g, gd, ok := gr.constFloats(c)
		if !ok || !(len(g) == 1 || len(g) == n) {
			continue
		}
		// γ must broadcast along the output's last axis only.
		for k := 0; k+1 < len(gd); k++ {
			if gd[k] != 1 {
				ok = false
			}
		}
		if !ok || (len(g) == n && len(gd) > 0 && gd[len(gd)-1] != int64(n)) {
			continue
		}
		so := sh.of(out0(mul))
		if sv := sh.of(v); !equalShapes(so, sv) {
			continue // the Mul broadcasts v to a larger shape
		}
		var bv []float32
		var bd []int64
		if b != "" {
			if bv, bd, ok = gr.constFloats(b); !ok || len(bv) != n || len(bd) != 1 {
				continue
			}
		}
		gamma := func(j int) float32 {
			if len(g) == 1 {
				return g[0]
			}
			return g[j]
		}
		nw := make([]float32, len(w))
		for k := range nw {
			nw[k] = w[k] * gamma(k%n)
		}
		wn, err := gr.addFloats(in(mm, 1)+"_scaled", wd, nw)
		if err != nil {
			return false, err
		}
		if b != "" {
			nb := make([]float32, n)
			for k := range nb {
				nb[k] = bv[k] * gamma(k)
			}
			bn, err := gr.addFloats(b+"_scaled", bd, nb)
			if err != nil {
				return false, err
			}
			setInput(add, b, bn)
		}
		setInput(mm, in(mm, 1), wn)
		last := mm
		if add != nil {
			last = add
		}
		if len(last.GetOutput()) != 1 {
			return false, fmt.Errorf("%s has %d outputs", label(last), len(last.GetOutput()))
		}
		last.Output[0] = out0(mul)
		gr.kill(mul)
		return true, nil
	}
	return false, nil
}

// setInput replaces a node's input old by new.
func setInput(n *onnxpb.NodeProto, old, new string) {
	for i, v := range n.GetInput() {
		if v == old {
			n.Input[i] = new
		}
	}
}
