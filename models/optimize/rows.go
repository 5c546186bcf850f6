package optimize

import (
	"context"
	"slices"
	"strconv"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// rowRange is the token rows [lo, hi) of a [B, S, D] activation a
// computation needs; full means all of them.
type rowRange struct {
	lo, hi int64
	full   bool
	set    bool // needed at all
}

var fullRows = rowRange{full: true, set: true}

func (r rowRange) hull(o rowRange) rowRange {
	switch {
	case !o.set:
		return r
	case !r.set:
		return o
	case r.full || o.full:
		return fullRows
	}
	return rowRange{lo: min(r.lo, o.lo), hi: max(r.hi, o.hi), set: true}
}

// rowInput says how a node's input carries the token axis: the axis of
// that input that is the output's token axis, or -1 when the input does
// not vary along it (a bias, a weight, a constant broadcast over tokens).
type rowInput struct{ axis int }

// pruneTokens computes only the token rows a model's output uses. A
// classifier or embedding head that reads the class token (Gather of
// token 0, DeiT's tokens 0 and 1, along axis 1 of [B, S, D]) needs only
// those rows of the last block's token-wise layers: the q projection,
// the attention output, its projection, the MLP, the norms and residual
// Adds. Keys and values still see every token. Each row of a token-wise
// layer depends on the same row of its input only, so the result is the
// same computation on fewer rows; in a ViT-B/16 this removes about 83% of
// the last block's matrix products.
func pruneTokens(ctx context.Context, gr *graph, r *Report) (int, error) {
	if gr.opset < 10 {
		return 0, nil // Slice takes its ranges as inputs from opset 10
	}
	p := &tokenPruner{gr: gr, sh: inferShapes(gr), need: map[string]rowRange{},
		rowIns: map[*onnxpb.NodeProto][]rowInput{}, selector: map[*onnxpb.NodeProto]rowRange{},
		renamed: map[string]string{}, rangeOf: map[string]rowRange{}, slicesMade: map[string]string{}}
	if err := p.walkBack(ctx); err != nil {
		return 0, err
	}
	count, err := p.apply(p.rewrites())
	if err != nil {
		return count, err
	}
	if count == 0 {
		// Nothing worth pruning: drop what the walk prepared.
		gr.dead = map[*onnxpb.NodeProto]bool{}
		gr.fresh, gr.newInits = nil, nil
		return 0, nil
	}
	return count, gr.commit()
}

// tokenPruner is one pruneTokens in progress.
type tokenPruner struct {
	gr       *graph
	sh       *shapes
	need     map[string]rowRange              // per value: the rows its readers use
	rowIns   map[*onnxpb.NodeProto][]rowInput // token-wise nodes needed in part: how each input carries the tokens
	selector map[*onnxpb.NodeProto]rowRange   // heads' Gathers of token rows
	// Filled while rewriting.
	renamed    map[string]string   // value → its rows-only version
	rangeOf    map[string]rowRange // rows-only value → the rows it holds
	slicesMade map[string]string   // (value, range, axis) → Slice output
}

// addNeed records that a reader of v uses rows rr.
func (p *tokenPruner) addNeed(v string, rr rowRange) {
	if v != "" {
		p.need[v] = p.need[v].hull(rr)
	}
}

// outNeed is the hull of the rows n's outputs are read in.
func (p *tokenPruner) outNeed(n *onnxpb.NodeProto) rowRange {
	out := rowRange{}
	for _, o := range n.GetOutput() {
		out = out.hull(p.need[o])
	}
	return out
}

// walkBack goes from the outputs backwards and records what each node
// needs of its inputs.
func (p *tokenPruner) walkBack(ctx context.Context) error {
	gr := p.gr
	for _, o := range gr.g.GetOutput() {
		p.need[o.GetName()] = fullRows
	}
	for v := range gr.Implicit {
		p.need[v] = fullRows
	}
	nodes := gr.g.GetNode()
	for i := len(nodes) - 1; i >= 0; i-- {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		n := nodes[i]
		if sel, ok := tokenSelector(gr, p.sh, n); ok {
			p.selector[n] = sel
			p.addNeed(in(n, 0), sel)
			for _, v := range n.GetInput()[1:] {
				p.addNeed(v, fullRows)
			}
			continue
		}
		out := p.outNeed(n)
		if !out.set {
			continue // dead
		}
		ri := tokenWise(gr, p.sh, n)
		if ri == nil || out.full {
			for _, v := range n.GetInput() {
				p.addNeed(v, fullRows)
			}
			continue
		}
		p.rowIns[n] = ri
		for j, v := range n.GetInput() {
			if ri[j].axis >= 0 {
				p.addNeed(v, out)
			} else {
				p.addNeed(v, fullRows)
			}
		}
	}
	return nil
}

// rewrites returns the nodes to rewrite and the rows each computes:
// token-wise, needed in part, worth it, and every reader of their
// outputs rewritten too (or a head's Gather).
func (p *tokenPruner) rewrites() map[*onnxpb.NodeProto]rowRange {
	rewrite := map[*onnxpb.NodeProto]rowRange{}
	for n := range p.rowIns {
		if out := p.outNeed(n); rowsWorthIt(p.sh, out0(n), out) {
			rewrite[n] = out
		}
	}
	for changed := true; changed; {
		changed = false
		for n := range rewrite {
			for _, o := range n.GetOutput() {
				for _, c := range p.gr.Consumers[o] {
					if _, ok := rewrite[c]; ok {
						continue
					}
					if _, ok := p.selector[c]; ok && in(c, 0) == o {
						continue
					}
					delete(rewrite, n)
					changed = true
				}
			}
		}
	}
	return rewrite
}

// sliceOf returns v sliced to rows rr along axis, adding the Slice once.
func (p *tokenPruner) sliceOf(v string, rr rowRange, axis int) (string, error) {
	gr := p.gr
	key := v + "\x00" + itoa(rr.lo) + ":" + itoa(rr.hi) + "@" + itoa(int64(axis))
	if s, ok := p.slicesMade[key]; ok {
		return s, nil
	}
	st, err := gr.addInts(v+"_rows_start", []int64{1}, []int64{rr.lo})
	if err != nil {
		return "", err
	}
	en, err := gr.addInts(v+"_rows_end", []int64{1}, []int64{rr.hi})
	if err != nil {
		return "", err
	}
	ax, err := gr.addInts(v+"_rows_axis", []int64{1}, []int64{int64(axis)})
	if err != nil {
		return "", err
	}
	o := gr.value(v + "_rows")
	gr.addNode("", "Slice", v+"_Slice_rows", []string{v, st, en, ax}, []string{o})
	p.slicesMade[key] = o
	return o, nil
}

// rows returns value v restricted to rr along the given axis.
func (p *tokenPruner) rows(v string, rr rowRange, axis int) (string, error) {
	if nv, ok := p.renamed[v]; ok {
		have := p.rangeOf[nv]
		if have == rr {
			return nv, nil
		}
		return p.sliceOf(nv, rowRange{lo: rr.lo - have.lo, hi: rr.hi - have.lo, set: true}, axis)
	}
	return p.sliceOf(v, rr, axis)
}

// apply rewrites, forwards, the chosen nodes to compute their rows only
// and the heads' Gathers to read them; it returns how many token-wise
// nodes it rewrote.
func (p *tokenPruner) apply(rewrite map[*onnxpb.NodeProto]rowRange) (int, error) {
	count := 0
	for _, n := range p.gr.g.GetNode() {
		if _, ok := p.selector[n]; ok {
			if err := p.rewriteSelector(n); err != nil {
				return count, err
			}
			continue
		}
		out, ok := rewrite[n]
		if !ok {
			continue
		}
		nn := cloneNode(n)
		for j, v := range n.GetInput() {
			if p.rowIns[n][j].axis < 0 || v == "" {
				continue
			}
			nv, err := p.rows(v, out, p.rowIns[n][j].axis)
			if err != nil {
				return count, err
			}
			nn.Input[j] = nv
		}
		for j, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			nv := p.gr.value(o + "_rows")
			nn.Output[j] = nv
			p.renamed[o] = nv
			p.rangeOf[nv] = out
		}
		p.gr.replace(n, nn)
		count++
	}
	return count, nil
}

// rewriteSelector points a head's Gather at the rows-only version of its
// input, its indices shifted to the rows kept.
func (p *tokenPruner) rewriteSelector(n *onnxpb.NodeProto) error {
	gr := p.gr
	src := in(n, 0)
	if _, pruned := p.renamed[src]; !pruned {
		return nil
	}
	nv, err := p.rows(src, p.need[src], 1)
	if err != nil {
		return err
	}
	idx, dims, _ := gr.constInts(in(n, 1))
	shifted := make([]int64, len(idx))
	for k, x := range idx {
		shifted[k] = normIndex(x, p.sh.of(src)[1]) - p.need[src].lo
	}
	ix, err := gr.addInts(in(n, 1)+"_rows", dims, shifted)
	if err != nil {
		return err
	}
	nn := cloneNode(n)
	nn.Input = []string{nv, ix}
	gr.replace(n, nn)
	return nil
}

// rowsWorthIt reports whether computing rows rr of v is less than all of
// it.
func rowsWorthIt(sh *shapes, v string, rr rowRange) bool {
	if !rr.set || rr.full {
		return false
	}
	s := sh.of(v)
	if len(s) < 2 {
		return false
	}
	d := s[1]
	return !d.isKnown() || rr.hi-rr.lo < d.v
}

func normIndex(x int64, d dim) int64 {
	if x < 0 && d.isKnown() {
		return x + d.v
	}
	return x
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// tokenSelector recognizes Gather(h, indices, axis 1) with constant,
// non-negative (or, on a known length, negative) indices on a [B, S, D]
// activation: the rows a head reads.
func tokenSelector(gr *graph, sh *shapes, n *onnxpb.NodeProto) (rowRange, bool) {
	if !gr.is(n, "Gather") || len(n.GetOutput()) != 1 {
		return rowRange{}, false
	}
	s := sh.of(in(n, 0))
	if len(s) != 3 {
		return rowRange{}, false
	}
	if ax := onnx.AttrIntOr(n, "axis", 0); ax != 1 && ax != -2 {
		return rowRange{}, false
	}
	idx, _, ok := gr.constInts(in(n, 1))
	if !ok || len(idx) == 0 {
		return rowRange{}, false
	}
	rr := rowRange{set: true, lo: 1 << 62, hi: -1}
	for _, x := range idx {
		x = normIndex(x, s[1])
		if x < 0 || (s[1].isKnown() && x >= s[1].v) {
			return rowRange{}, false
		}
		rr.lo, rr.hi = min(rr.lo, x), max(rr.hi, x+1)
	}
	return rr, true
}

// tokenWise returns, for a node that computes each token row of its
// [B, S, D] output from the same row of its inputs, which inputs carry
// the token axis and along which of their axes; nil for other nodes.
func tokenWise(gr *graph, sh *shapes, n *onnxpb.NodeProto) []rowInput {
	o := sh.of(out0(n))
	if len(o) != 3 || gr.dead[n] {
		return nil
	}
	ins := make([]rowInput, len(n.GetInput()))
	for i := range ins {
		ins[i] = rowInput{axis: -1}
	}
	carries := func(i int) bool {
		s := sh.of(in(n, i))
		return len(s) == 3 && s[1] == o[1]
	}
	if n.GetDomain() == onnx.MicrosoftDomain {
		switch n.GetOpType() {
		case "BiasGelu", "FastGelu", "Gelu", "QuickGelu":
			if !carries(0) {
				return nil
			}
			ins[0].axis = 1
			return ins
		case "SkipLayerNormalization":
			if !carries(0) {
				return nil
			}
			ins[0].axis = 1
			switch s := sh.of(in(n, 1)); {
			case len(s) == 3 && s[1] == o[1]:
				ins[1].axis = 1
			case len(s) == 2 && s[0] == o[1]:
				ins[1].axis = 0
			default:
				return nil
			}
			if gr.usedOutputs(n) > 0 && (outUsed(gr, n, 1) || outUsed(gr, n, 2)) {
				return nil
			}
			return ins
		case "MultiHeadAttention":
			// Row i of the output is attention of query row i over every
			// key: the query carries the rows, keys and values do not.
			if !carries(0) || len(n.GetOutput()) > 1 && gr.usedOutputs(n) > 1 {
				return nil
			}
			for i := 6; i < len(n.GetInput()); i++ {
				if in(n, i) != "" {
					return nil // past keys and values
				}
			}
			ins[0].axis = 1
			if b := in(n, 5); b != "" {
				s := sh.of(b)
				if len(s) != 4 || s[2] != o[1] {
					return nil
				}
				ins[5].axis = 2
			}
			return ins
		}
		return nil
	}
	if !onnx.IsDefaultDomain(n) || (n.GetOpType() != "LayerNormalization" && len(n.GetOutput()) != 1) {
		return nil
	}
	switch n.GetOpType() {
	case "Relu", "Sigmoid", "Erf", "Tanh", "Gelu", "Sqrt", "Exp", "Neg", "Abs", "Identity", "Cast", "Softplus", "HardSigmoid", "LeakyRelu", "Elu":
		if !carries(0) {
			return nil
		}
		ins[0].axis = 1
		return ins
	case "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Where":
		any := false
		for i, v := range n.GetInput() {
			s := sh.of(v)
			if s == nil {
				return nil
			}
			ax := 1 - (3 - len(s)) // the input's axis aligned with the token axis
			if ax < 0 {
				continue
			}
			switch {
			case s[ax] == o[1]:
				ins[i].axis = ax
				any = true
			case s[ax] != known(1):
				return nil
			}
		}
		if !any {
			return nil
		}
		return ins
	case "LayerNormalization":
		if ax := onnx.AttrIntOr(n, "axis", -1); ax != -1 && ax != 2 {
			return nil
		}
		if !carries(0) || outUsed(gr, n, 1) || outUsed(gr, n, 2) {
			return nil
		}
		ins[0].axis = 1
		return ins
	case "MatMul":
		if !carries(0) || sh.rank(in(n, 1)) != 2 {
			return nil
		}
		ins[0].axis = 1
		return ins
	}
	return nil
}

// outUsed reports whether a node's i-th output is read.
func outUsed(gr *graph, n *onnxpb.NodeProto, i int) bool {
	if i >= len(n.GetOutput()) {
		return false
	}
	o := n.GetOutput()[i]
	return o != "" && (len(gr.Consumers[o]) > 0 || gr.Outputs[o] || gr.Implicit[o])
}

// cloneNode copies a node's name, type, inputs, outputs and attributes.
func cloneNode(n *onnxpb.NodeProto) *onnxpb.NodeProto {
	c := &onnxpb.NodeProto{
		Name:      n.Name,
		OpType:    n.OpType,
		Domain:    n.Domain,
		Input:     slices.Clone(n.GetInput()),
		Output:    slices.Clone(n.GetOutput()),
		Attribute: n.GetAttribute(),
	}
	return c
}

// replace swaps a node for a new version of it.
func (gr *graph) replace(old, nn *onnxpb.NodeProto) {
	gr.kill(old)
	if nn.GetDomain() == onnx.MicrosoftDomain {
		gr.msDomain = true
	}
	gr.fresh = append(gr.fresh, nn)
}
