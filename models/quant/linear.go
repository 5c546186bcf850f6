package quant

import (
	"fmt"
	"runtime"
	"slices"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// linear is a layer y = x·W (+ bias) with a constant weight, found in the
// source graph as a MatMul, a Gemm, or a patch-embedding Conv. The
// quantizers replace it by their own nodes; its input and output values
// keep their names, so the rest of the graph is untouched.
type linear struct {
	node   *onnxpb.NodeProto // the MatMul, Gemm or Conv
	input  string            // the activation x
	output string            // the value the layer produces (the bias Add's output when folded)
	k, n   int
	wName  string                    // the constant holding the weight
	load   func() ([]float32, error) // decodes the weight as [k, n] row-major
	bias   []float32                 // [n], or nil
	add    *onnxpb.NodeProto         // MatMul's bias Add folded into the layer, or nil
	patch  *patchify                 // set for a patch-embedding Conv: reshape x into patches first
	conv   []int64                   // set for another Conv (ConvInteger): the weight's dims [O, C/g, k...]
	gemmC  string                    // Gemm's C when it is not a [n] bias: added after the layer
	gemmCB float32                   // Gemm's beta for gemmC
	first  bool                      // the graph's first layer with a constant weight (patch embedding)
	last   bool                      // its last (classifier head)
}

// patchify describes a Conv whose kernel equals its stride (no padding,
// no dilation, one group): a MatMul over non-overlapping patches.
type patchify struct {
	c, kh, kw int // input channels, kernel
	gh, gw    int // output grid
}

// candidateOptions says which layers findLinears may return.
type candidateOptions struct {
	exclude             map[string]bool // node names the user excluded
	foldBias            bool            // fold MatMul + Add(bias) into one layer
	convs               bool            // rewrite patch-embedding Convs
	anyConv             bool            // also return other Convs (as conv layers)
	convReason          string          // why other Convs are kept, when anyConv is off
	keepFirst, keepLast bool            // leave the first / last weighted layer in float
}

// findLinears returns the graph's quantizable linear layers in graph
// order, and records on t why other candidates stay in float. g must be
// topologically sorted; types comes from inferTypes.
func findLinears(ix *graphIndex, types map[string]onnx.DataType, t *tracker, opts candidateOptions) []*linear {
	var out []*linear
	taken := map[*onnxpb.NodeProto]bool{} // Adds folded into a layer
	// The first and last layers with a constant weight, whether
	// convertible or not: the patch embedding and the head.
	var firstW, lastW *onnxpb.NodeProto
	for _, n := range ix.g.GetNode() {
		switch n.GetOpType() {
		case "MatMul", "Gemm", "Conv":
			if onnx.IsDefaultDomain(n) && len(n.GetInput()) > 1 && ix.ConstTensor(n.GetInput()[1]) != nil {
				if firstW == nil {
					firstW = n
				}
				lastW = n
			}
		}
	}
	for _, n := range ix.g.GetNode() {
		if !onnx.IsDefaultDomain(n) || taken[n] {
			continue
		}
		var l *linear
		var reason string
		switch n.GetOpType() {
		case "MatMul":
			l, reason = matMulLinear(ix, types, n)
		case "Gemm":
			l, reason = gemmLinear(ix, types, n)
		case "Conv":
			if opts.convs {
				l, reason = convLinear(ix, types, n)
				if l == nil && opts.anyConv {
					if cl, why := convLayer(ix, types, n); cl != nil || why != "" {
						l, reason = cl, why
					}
				}
			} else {
				reason = "Conv is not converted by this precision"
			}
			if l == nil && reason == notPatchReason && opts.convReason != "" {
				reason = opts.convReason
			}
		default:
			continue
		}
		if l == nil {
			if reason != "" {
				t.keep(n, reason)
			}
			continue
		}
		l.first, l.last = n == firstW, n == lastW
		if opts.exclude[n.GetName()] || opts.exclude[n.GetOutput()[0]] {
			t.keep(n, "excluded")
			continue
		}
		if opts.keepFirst && l.first {
			t.keep(n, "first layer (keep-first)")
			continue
		}
		if opts.keepLast && l.last {
			t.keep(n, "last layer (keep-last)")
			continue
		}
		if opts.foldBias && n.GetOpType() == "MatMul" {
			if add, bias := biasAdd(ix, n.GetOutput()[0], l.n); add != nil && !opts.exclude[add.GetName()] {
				l.add, l.bias, l.output = add, bias, add.GetOutput()[0]
				taken[add] = true
			}
		}
		out = append(out, l)
	}
	return out
}

// matMulLinear accepts MatMul(x, W) with a constant 2-D float W.
func matMulLinear(ix *graphIndex, types map[string]onnx.DataType, n *onnxpb.NodeProto) (*linear, string) {
	if len(n.GetInput()) != 2 || len(n.GetOutput()) != 1 {
		return nil, "malformed MatMul"
	}
	x, wName := n.GetInput()[0], n.GetInput()[1]
	if types[x] != onnx.Float {
		return nil, ""
	}
	if ix.ConstTensor(wName) == nil {
		return nil, "activation × activation (attention)"
	}
	wt := ix.ConstTensor(wName)
	if onnx.DataTypeOf(wt) != onnx.Float {
		return nil, "weight is not float32"
	}
	dims := wt.GetDims()
	if len(dims) != 2 {
		return nil, fmt.Sprintf("weight has rank %d, not 2", len(dims))
	}
	load := func() ([]float32, error) { return onnx.TensorFloat32(wt) }
	return &linear{node: n, input: x, output: n.GetOutput()[0], k: int(dims[0]), n: int(dims[1]), wName: wName, load: load}, ""
}

// gemmLinear accepts Gemm(x, B, C) with transA = 0 and a constant 2-D
// float B: W = alpha·(B or Bᵀ), bias = beta·C when C is a constant [n] or
// [1, n]; any other C is added back after the layer.
func gemmLinear(ix *graphIndex, types map[string]onnx.DataType, n *onnxpb.NodeProto) (*linear, string) {
	in := n.GetInput()
	if len(in) < 2 || len(n.GetOutput()) != 1 {
		return nil, "malformed Gemm"
	}
	if types[in[0]] != onnx.Float {
		return nil, ""
	}
	if onnx.AttrIntOr(n, "transA", 0) != 0 {
		return nil, "Gemm with transA"
	}
	bt := ix.ConstTensor(in[1])
	if bt == nil {
		return nil, "activation × activation"
	}
	dims := bt.GetDims()
	if onnx.DataTypeOf(bt) != onnx.Float || len(dims) != 2 {
		return nil, "weight is not a 2-D float32 constant"
	}
	alpha, beta := onnx.AttrFloatOr(n, "alpha", 1), onnx.AttrFloatOr(n, "beta", 1)
	transB := onnx.AttrIntOr(n, "transB", 0) != 0
	k, nn := int(dims[0]), int(dims[1])
	if transB {
		k, nn = nn, k
	}
	load := func() ([]float32, error) {
		b, err := onnx.TensorFloat32(bt)
		if err != nil {
			return nil, err
		}
		w := b
		if transB {
			w = make([]float32, k*nn)
			for j := 0; j < nn; j++ {
				for i := 0; i < k; i++ {
					w[i*nn+j] = b[j*k+i]
				}
			}
		}
		if alpha != 1 {
			for i := range w {
				w[i] *= alpha
			}
		}
		return w, nil
	}
	l := &linear{node: n, input: in[0], output: n.GetOutput()[0], k: k, n: nn, wName: in[1], load: load}
	if len(in) > 2 && in[2] != "" && beta != 0 {
		c, cdims, ok := ix.constFloat32(in[2])
		if ok && len(c) == nn && (len(cdims) == 1 || (len(cdims) == 2 && cdims[0] == 1)) {
			l.bias = slices.Clone(c)
			if beta != 1 {
				for i := range l.bias {
					l.bias[i] *= beta
				}
			}
		} else {
			l.gemmC, l.gemmCB = in[2], beta
		}
	}
	return l, ""
}

// convLinear accepts a patch-embedding Conv: 2-D, kernel = stride, no
// padding or dilation, one group, a constant float weight, and an input
// whose channels, height and width are known and divisible by the kernel.
func convLinear(ix *graphIndex, types map[string]onnx.DataType, n *onnxpb.NodeProto) (*linear, string) {
	in := n.GetInput()
	if len(in) < 2 || len(n.GetOutput()) != 1 || types[in[0]] != onnx.Float {
		return nil, ""
	}
	wt := ix.ConstTensor(in[1])
	wd := wt.GetDims()
	if wt == nil || onnx.DataTypeOf(wt) != onnx.Float || len(wd) != 4 {
		return nil, "Conv weight is not a constant 4-D float32 tensor"
	}
	o, c, kh, kw := int(wd[0]), int(wd[1]), int(wd[2]), int(wd[3])
	const notPatch = notPatchReason
	if ks := attrInts(n, "kernel_shape"); ks != nil && !slices.Equal(ks, []int64{int64(kh), int64(kw)}) {
		return nil, notPatch
	}
	if s := attrInts(n, "strides"); !slices.Equal(s, []int64{int64(kh), int64(kw)}) {
		return nil, notPatch
	}
	for _, p := range attrInts(n, "pads") {
		if p != 0 {
			return nil, notPatch
		}
	}
	for _, d := range attrInts(n, "dilations") {
		if d != 1 {
			return nil, notPatch
		}
	}
	if onnx.AttrIntOr(n, "group", 1) != 1 {
		return nil, notPatch
	}
	if a := onnx.Attr(n, "auto_pad"); a != nil && string(a.GetS()) != "NOTSET" && string(a.GetS()) != "VALID" {
		return nil, notPatch
	}
	shape, ok := ix.valueShape(in[0])
	if !ok || len(shape) != 4 || shape[1] != int64(c) || shape[2] <= 0 || shape[3] <= 0 {
		return nil, "Conv input shape unknown (need fixed channels, height and width)"
	}
	if shape[2]%int64(kh) != 0 || shape[3]%int64(kw) != 0 {
		return nil, "Conv input size not a multiple of the kernel"
	}
	k := c * kh * kw
	// W[o, c, i, j] → Wm[(c·kh + i)·kw + j, o].
	load := convWeightLoader(wt, o, k)
	l := &linear{node: n, input: in[0], output: n.GetOutput()[0], k: k, n: o, wName: in[1], load: load,
		patch: &patchify{c: c, kh: kh, kw: kw, gh: int(shape[2]) / kh, gw: int(shape[3]) / kw}}
	if len(in) > 2 && in[2] != "" {
		b, _, ok := ix.constFloat32(in[2])
		if !ok || len(b) != o {
			return nil, "Conv bias is not a constant float32 vector"
		}
		l.bias = slices.Clone(b)
	}
	return l, ""
}

// convWeightLoader returns a loader of a Conv weight [O, C/g, kh, kw]
// viewed as [O, K] and transposed to [K, O], one column per output channel.
func convWeightLoader(wt *onnxpb.TensorProto, o, k int) func() ([]float32, error) {
	return func() ([]float32, error) {
		w, err := onnx.TensorFloat32(wt)
		if err != nil {
			return nil, err
		}
		wm := make([]float32, k*o)
		for oi := 0; oi < o; oi++ {
			for ki := 0; ki < k; ki++ {
				wm[ki*o+oi] = w[oi*k+ki]
			}
		}
		return wm, nil
	}
}

// convLayer accepts any Conv with a constant float weight and an optional
// constant bias, for ConvInteger. Its weight is presented as [K, O] (K =
// C/g·kernel), one column per output channel.
func convLayer(ix *graphIndex, types map[string]onnx.DataType, n *onnxpb.NodeProto) (*linear, string) {
	in := n.GetInput()
	if len(in) < 2 || len(n.GetOutput()) != 1 || types[in[0]] != onnx.Float {
		return nil, ""
	}
	wt := ix.ConstTensor(in[1])
	wd := wt.GetDims()
	if wt == nil || onnx.DataTypeOf(wt) != onnx.Float || len(wd) < 3 {
		return nil, "Conv weight is not a constant float32 tensor"
	}
	o := int(wd[0])
	numel, err := onnx.Numel(wd)
	if err != nil || o <= 0 {
		return nil, "Conv weight has invalid dims"
	}
	k := int(numel) / o
	load := convWeightLoader(wt, o, k)
	l := &linear{node: n, input: in[0], output: n.GetOutput()[0], k: k, n: o, wName: in[1], load: load, conv: slices.Clone(wd)}
	if len(in) > 2 && in[2] != "" {
		b, _, ok := ix.constFloat32(in[2])
		if !ok || len(b) != o {
			return nil, "Conv bias is not a constant float32 vector"
		}
		l.bias = slices.Clone(b)
	}
	return l, ""
}

// weight decodes the layer's weight as [k, n] and, when nothing else uses
// the source constant, drops the source's bytes: the layer is about to be
// replaced, and a huge model then never holds its float weights twice.
func (l *linear) weight(ix *graphIndex) ([]float32, error) {
	w, err := l.load()
	if err != nil {
		return nil, fmt.Errorf("weight %s of %s: %w", l.wName, l.node.GetName(), err)
	}
	if len(w) != l.k*l.n {
		return nil, fmt.Errorf("weight %s of %s: %d values, want %d×%d", l.wName, l.node.GetName(), len(w), l.k, l.n)
	}
	if t, isInit := ix.Inits[l.wName]; isInit && ix.OnlyReader(l.wName) != nil {
		ix.garbage += int64(len(t.GetRawData()) + 4*len(t.GetFloatData()))
		t.RawData, t.FloatData = nil, nil
		t.Dims = []int64{0}
	}
	// The previous layer's float copy is garbage now too. The Go heap
	// grows to twice the live data before collecting, and the live data
	// is the whole model: collect every gcEvery bytes of garbage so a
	// large model's transform peaks near its own size, not twice it.
	ix.collect(int64(4 * len(w)))
	return w, nil
}

// gcEvery is how much garbage (released weights, decoded copies) a
// transform makes between garbage collections.
const gcEvery = 256 << 20

// collect counts n bytes of new garbage and collects every gcEvery.
func (ix *graphIndex) collect(n int64) {
	ix.garbage += n
	if ix.garbage > gcEvery {
		ix.garbage = 0
		runtime.GC()
	}
}

// notPatchReason is why a Conv that is not a patch embedding is kept.
const notPatchReason = "Conv is not a patch embedding (kernel ≠ stride, padding, dilation or groups)"

// biasAdd finds Add(v, bias) where v has no other consumer and bias is a
// constant float vector of n values (shape [n], [1, n], [1, 1, n]).
func biasAdd(ix *graphIndex, v string, n int) (*onnxpb.NodeProto, []float32) {
	add := ix.OnlyReader(v)
	if add == nil || add.GetOpType() != "Add" || !onnx.IsDefaultDomain(add) || len(add.GetInput()) != 2 {
		return nil, nil
	}
	other := add.GetInput()[1]
	if other == v {
		other = add.GetInput()[0]
	}
	if other == v {
		return nil, nil
	}
	b, dims, ok := ix.constFloat32(other)
	if !ok || len(b) != n || len(dims) == 0 || dims[len(dims)-1] != int64(n) {
		return nil, nil
	}
	return add, slices.Clone(b)
}

// emitter collects the nodes and initializers a quantizer adds.
type emitter struct {
	ix    *graphIndex
	nodes []*onnxpb.NodeProto
	inits []*onnxpb.TensorProto
	err   error
}

func (e *emitter) node(domain, op, name string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	n := &onnxpb.NodeProto{
		Name:      ptr(e.ix.Unique(name)),
		OpType:    ptr(op),
		Input:     inputs,
		Output:    outputs,
		Attribute: attrs,
	}
	if domain != "" {
		n.Domain = ptr(domain)
	}
	e.nodes = append(e.nodes, n)
	return n
}

// value returns a fresh value name.
func (e *emitter) value(prefix string) string { return e.ix.Unique(prefix) }

// init adds an initializer made by a tensor constructor under a fresh name.
func (e *emitter) init(prefix string, mk func(name string) (*onnxpb.TensorProto, error)) string {
	name := e.ix.Unique(prefix)
	t, err := mk(name)
	if err != nil && e.err == nil {
		e.err = fmt.Errorf("tensor %s: %w", name, err)
	}
	if t != nil {
		e.inits = append(e.inits, t)
	}
	return name
}

func (e *emitter) floats(prefix string, dims []int64, v []float32) string {
	return e.init(prefix, func(n string) (*onnxpb.TensorProto, error) { return onnx.NewTensorFloat32(n, dims, v) })
}

func (e *emitter) int64s(prefix string, dims []int64, v []int64) string {
	return e.init(prefix, func(n string) (*onnxpb.TensorProto, error) { return onnx.NewTensorInt64(n, dims, v) })
}

// patchIn emits the reshape of a Conv's input [B, C, H, W] into patch rows
// [B, gh, gw, C·kh·kw] and returns the rows' value name.
func (e *emitter) patchIn(l *linear, base string) string {
	p := l.patch
	s1 := e.int64s(base+"_patch_shape", []int64{6}, []int64{-1, int64(p.c), int64(p.gh), int64(p.kh), int64(p.gw), int64(p.kw)})
	r1 := e.value(base + "_patches6d")
	e.node("", "Reshape", base+"_patch_reshape", []string{l.input, s1}, []string{r1})
	t1 := e.value(base + "_patches_t")
	e.node("", "Transpose", base+"_patch_transpose", []string{r1}, []string{t1}, onnx.AttrInts("perm", 0, 2, 4, 1, 3, 5))
	s2 := e.int64s(base+"_rows_shape", []int64{4}, []int64{-1, int64(p.gh), int64(p.gw), int64(l.k)})
	rows := e.value(base + "_patch_rows")
	e.node("", "Reshape", base+"_rows_reshape", []string{t1, s2}, []string{rows})
	return rows
}

// patchOut emits the transpose of patch results [B, gh, gw, O] back to the
// Conv's layout [B, O, gh, gw] into out.
func (e *emitter) patchOut(in, out, base string) {
	e.node("", "Transpose", base+"_to_nchw", []string{in}, []string{out}, onnx.AttrInts("perm", 0, 3, 1, 2))
}

// splice replaces the layers' source nodes (and folded Adds) with the
// emitted nodes, keeps the graph sorted, and drops initializers and
// Constant nodes nothing uses any more.
func splice(ix *graphIndex, layers []*linear, e *emitter) error {
	if e.err != nil {
		return e.err
	}
	drop := map[*onnxpb.NodeProto]bool{}
	for _, l := range layers {
		drop[l.node] = true
		if l.add != nil {
			drop[l.add] = true
		}
	}
	g := ix.g
	kept := make([]*onnxpb.NodeProto, 0, len(g.GetNode())+len(e.nodes))
	for _, n := range g.GetNode() {
		if !drop[n] {
			kept = append(kept, n)
		}
	}
	g.Node = append(kept, e.nodes...)
	g.Initializer = append(g.Initializer, e.inits...)
	if err := sortedGraph(g); err != nil {
		return err
	}
	pruneUnused(g)
	ix.Rebuild()
	return nil
}

// pruneUnused removes initializers, Constant nodes and value_info entries
// that nothing refers to any more.
func pruneUnused(g *onnxpb.GraphProto) {
	for {
		used := map[string]bool{}
		for _, n := range g.GetNode() {
			for _, in := range n.GetInput() {
				used[in] = true
			}
			for _, sg := range onnx.Subgraphs(n) {
				for _, name := range onnx.FreeInputs(sg) {
					used[name] = true
				}
			}
		}
		for _, o := range g.GetOutput() {
			used[o.GetName()] = true
		}
		changed := false
		nodes := g.Node[:0]
		for _, n := range g.GetNode() {
			if n.GetOpType() == "Constant" && onnx.IsDefaultDomain(n) && len(n.GetOutput()) == 1 && !used[n.GetOutput()[0]] {
				changed = true
				continue
			}
			nodes = append(nodes, n)
		}
		g.Node = nodes
		inputs := map[string]bool{}
		for _, in := range g.GetInput() {
			inputs[in.GetName()] = true
		}
		inits := g.Initializer[:0]
		for _, t := range g.GetInitializer() {
			if !used[t.GetName()] && !inputs[t.GetName()] {
				changed = true
				continue
			}
			inits = append(inits, t)
		}
		g.Initializer = inits
		if !changed {
			break
		}
	}
	produced := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			produced[o] = true
		}
	}
	vis := g.ValueInfo[:0]
	for _, vi := range g.GetValueInfo() {
		if produced[vi.GetName()] {
			vis = append(vis, vi)
		}
	}
	g.ValueInfo = vis
}
