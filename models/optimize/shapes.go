package optimize

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// dim is one dimension of a shape, or one element of a small int64 tensor
// that holds a shape: a known value, or a symbol (a graph input's named
// dimension such as "batch", or a name made up for a dimension nothing
// says more about). Two dims are equal when both are the same value or the
// same symbol; a made-up symbol equals only itself.
type dim struct {
	v int64
	s string // symbol; "" when v is the value
}

func known(v int64) dim { return dim{v: v} }

func (d dim) isKnown() bool { return d.s == "" }

func (d dim) String() string {
	if d.s != "" {
		return d.s
	}
	return strconv.FormatInt(d.v, 10)
}

// shape is a value's shape; nil means the rank is unknown.
type shape []dim

func (s shape) known() bool {
	if s == nil {
		return false
	}
	for _, d := range s {
		if !d.isKnown() {
			return false
		}
	}
	return true
}

func (s shape) ints() []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = d.v
	}
	return out
}

func shapeOfInts(v []int64) shape {
	s := make(shape, len(v))
	for i, x := range v {
		s[i] = known(x)
	}
	return s
}

func equalShapes(a, b shape) bool {
	return a != nil && b != nil && slices.Equal(a, b)
}

// shapes holds what shape inference found: the shape of each value it
// could follow, and the elements of small int64 tensors (shapes being
// computed in the graph: Shape → Gather → Unsqueeze → Concat chains).
type shapes struct {
	gr     *graph
	shape  map[string]shape
	values map[string][]dim
	vtype  map[string]onnx.DataType // element type of the tensors in values
	fresh  int

	declared map[string]*onnxpb.ValueInfoProto
}

// maxValueElems bounds the int64 tensors whose elements are tracked.
const maxValueElems = 64

// inferShapes walks gr's (sorted) graph and infers shapes and shape
// values. Values it cannot follow have no entry.
func inferShapes(gr *graph) *shapes {
	sh := startShapes(gr)
	for _, n := range gr.g.GetNode() {
		sh.step(n)
	}
	return sh
}

// startShapes records the shapes of the graph's inputs and initializers;
// step then follows the nodes in order.
func startShapes(gr *graph) *shapes {
	sh := &shapes{gr: gr, shape: map[string]shape{}, values: map[string][]dim{}, vtype: map[string]onnx.DataType{}}
	g := gr.g
	declared := map[string]*onnxpb.ValueInfoProto{}
	for _, list := range [][]*onnxpb.ValueInfoProto{g.GetValueInfo(), g.GetOutput()} {
		for _, vi := range list {
			declared[vi.GetName()] = vi
		}
	}
	for _, vi := range g.GetInput() {
		if _, isInit := gr.Inits[vi.GetName()]; !isInit {
			sh.shape[vi.GetName()] = sh.fromValueInfo(vi)
		}
	}
	for _, t := range g.GetInitializer() {
		if gr.Declared[t.GetName()] {
			sh.shape[t.GetName()] = shapeOfInts(t.GetDims()) // overridable: not a constant
			continue
		}
		sh.setConst(t.GetName(), t)
	}
	sh.declared = declared
	return sh
}

// step infers one node's outputs; declared shapes (value_info, graph
// outputs) fill in what the rules could not find.
func (sh *shapes) step(n *onnxpb.NodeProto) {
	sh.node(n)
	if o := out0(n); o != "" {
		if _, ok := sh.values[o]; ok {
			if dt := sh.valueType(n); dt != onnx.Undefined {
				sh.vtype[o] = dt
			} else {
				delete(sh.values, o)
			}
		}
	}
	for _, o := range n.GetOutput() {
		if _, ok := sh.shape[o]; !ok {
			if vi := sh.declared[o]; vi != nil {
				if s := sh.fromValueInfo(vi); s != nil {
					sh.shape[o] = s
				}
			}
		}
	}
}

// fromValueInfo reads a declared shape: fixed sizes, named dims as
// symbols, unknown dims as fresh symbols.
func (sh *shapes) fromValueInfo(vi *onnxpb.ValueInfoProto) shape {
	tt := vi.GetType().GetTensorType()
	if tt == nil || tt.GetShape() == nil {
		return nil
	}
	s := make(shape, len(tt.GetShape().GetDim()))
	for i, d := range tt.GetShape().GetDim() {
		switch v := d.GetValue().(type) {
		case *onnxpb.TensorShapeProto_Dimension_DimValue:
			if v.DimValue >= 0 {
				s[i] = known(v.DimValue)
				continue
			}
		case *onnxpb.TensorShapeProto_Dimension_DimParam:
			if v.DimParam != "" {
				s[i] = dim{s: "$" + v.DimParam}
				continue
			}
		}
		s[i] = sh.newSym()
	}
	return s
}

func (sh *shapes) newSym() dim {
	sh.fresh++
	return dim{s: "?" + strconv.Itoa(sh.fresh)}
}

func (sh *shapes) freshShape(rank int) shape {
	s := make(shape, rank)
	for i := range s {
		s[i] = sh.newSym()
	}
	return s
}

// setConst records a constant's shape, and its elements when it is a
// small integer tensor.
func (sh *shapes) setConst(name string, t *onnxpb.TensorProto) {
	sh.shape[name] = shapeOfInts(t.GetDims())
	if onnx.IsExternal(t) {
		return
	}
	if numel, err := onnx.TensorNumel(t); err != nil || numel > maxValueElems {
		return
	}
	if tv := decode(t, maxValueElems); tv != nil && isIntType(tv.dt) {
		d := make([]dim, len(tv.i))
		for i, x := range tv.i {
			d[i] = known(x)
		}
		sh.values[name] = d
		sh.vtype[name] = tv.dt
	}
}

// intsOf decodes an INT64 or INT32 tensor.
func intsOf(t *onnxpb.TensorProto) ([]int64, []int64, bool) {
	switch onnx.DataTypeOf(t) {
	case onnx.Int64:
		v, err := onnx.TensorInt64(t)
		return v, t.GetDims(), err == nil
	case onnx.Int32:
		v, err := onnx.TensorInt32(t)
		if err != nil {
			return nil, nil, false
		}
		out := make([]int64, len(v))
		for i, x := range v {
			out[i] = int64(x)
		}
		return out, t.GetDims(), true
	}
	return nil, nil, false
}

// valueType returns the element type of a node's tracked output.
func (sh *shapes) valueType(n *onnxpb.NodeProto) onnx.DataType {
	switch n.GetOpType() {
	case "Shape", "Size":
		return onnx.Int64
	case "Cast":
		return onnx.DataType(onnx.AttrIntOr(n, "to", 0))
	case "Equal":
		return onnx.Bool
	case "Where":
		return sh.vtype[in(n, 1)]
	case "ConstantOfShape":
		if a := onnx.Attr(n, "value"); a != nil && a.GetT() != nil {
			return onnx.DataTypeOf(a.GetT())
		}
		return onnx.Float
	case "Constant":
		if t := constantValue(n); t != nil {
			return onnx.DataTypeOf(t)
		}
		return onnx.Undefined
	}
	return sh.vtype[in(n, 0)]
}

// of returns a value's shape (nil when unknown).
func (sh *shapes) of(v string) shape { return sh.shape[v] }

// rank returns a value's rank, -1 when unknown.
func (sh *shapes) rank(v string) int {
	if s, ok := sh.shape[v]; ok && s != nil {
		return len(s)
	}
	return -1
}

// vals returns the tracked elements of a small int64 tensor.
func (sh *shapes) vals(v string) ([]dim, bool) {
	d, ok := sh.values[v]
	return d, ok
}

// constInts returns the elements of a small int64 tensor when they are all
// known.
func (sh *shapes) constInts(v string) ([]int64, bool) {
	d, ok := sh.values[v]
	if !ok {
		return nil, false
	}
	out := make([]int64, len(d))
	for i, x := range d {
		if !x.isKnown() {
			return nil, false
		}
		out[i] = x.v
	}
	return out, true
}

// normAxis maps a possibly negative axis into [0, rank), ok false when out
// of range.
func normAxis(a int64, rank int) (int, bool) {
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a >= int64(rank) {
		return 0, false
	}
	return int(a), true
}

// broadcast applies the multidirectional broadcasting rule to shapes.
func (sh *shapes) broadcast(ss ...shape) shape {
	r := 0
	for _, s := range ss {
		if s == nil {
			return nil
		}
		r = max(r, len(s))
	}
	out := make(shape, r)
	for i := range out {
		var cur dim
		set := false
		for _, s := range ss {
			j := i - (r - len(s))
			if j < 0 {
				continue
			}
			d := s[j]
			switch {
			case !set:
				cur, set = d, true
			case d.isKnown() && d.v == 1:
			case cur.isKnown() && cur.v == 1:
				cur = d
			case cur != d:
				if !cur.isKnown() && d.isKnown() {
					cur = d // a symbol broadcast against a size must be that size (or 1)
				} else if !(cur.isKnown() && !d.isKnown()) {
					cur = sh.newSym()
				}
			}
		}
		if !set {
			cur = known(1)
		}
		out[i] = cur
	}
	return out
}

// axesOf returns a node's axes: the attribute before opset 13 (18 for
// the Reduce ops), the constant input from then on.
func (sh *shapes) axesOf(n *onnxpb.NodeProto, inputIdx int) ([]int64, bool) {
	if a, ok := attrInts(n, "axes"); ok {
		return a, true
	}
	if v := in(n, inputIdx); v != "" {
		return sh.constInts(v)
	}
	return nil, false
}

// node infers the outputs of one node.
func (sh *shapes) node(n *onnxpb.NodeProto) {
	if len(n.GetOutput()) == 0 {
		return
	}
	o := n.GetOutput()[0]
	x := sh.of(in(n, 0))
	set := func(s shape) {
		if s != nil {
			sh.shape[o] = s
		}
	}
	if n.GetDomain() == onnx.MicrosoftDomain {
		sh.contribNode(n, x)
		return
	}
	if !onnx.IsDefaultDomain(n) {
		return
	}
	switch op := n.GetOpType(); op {
	case "Constant":
		if t := constantValue(n); t != nil {
			sh.setConst(o, t)
		}
	case "Identity", "Cast", "Relu", "Sigmoid", "Erf", "Sqrt", "Neg", "Exp", "Log", "Tanh", "Abs",
		"Reciprocal", "Softmax", "LogSoftmax", "Clip", "Gelu", "Dropout", "LeakyRelu", "HardSigmoid",
		"HardSwish", "Floor", "Ceil", "Round", "Sin", "Cos", "Not", "Sign", "Softplus", "Elu", "Selu",
		"LayerNormalization", "BatchNormalization", "InstanceNormalization", "Mish", "CastLike", "LpNormalization":
		set(x)
		if op == "Identity" || op == "Cast" || op == "CastLike" {
			if v, ok := sh.values[in(n, 0)]; ok && (op == "Identity" || castsToInt(n)) {
				sh.values[o] = v
			}
		}
	case "Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
		"And", "Or", "Xor", "Max", "Min", "Mod", "PRelu", "Where", "Sum", "Mean", "BitShift":
		var ss []shape
		for _, v := range n.GetInput() {
			ss = append(ss, sh.of(v))
		}
		set(sh.broadcast(ss...))
		sh.elementwiseValues(n)
	case "MatMul":
		set(sh.matmul(x, sh.of(in(n, 1))))
	case "Gemm":
		set(gemmShape(n, x, sh.of(in(n, 1))))
	case "Conv", "MaxPool", "AveragePool":
		set(sh.conv(n, x))
	case "GlobalAveragePool", "GlobalMaxPool":
		if len(x) > 2 {
			s := slices.Clone(x)
			for i := 2; i < len(s); i++ {
				s[i] = known(1)
			}
			set(s)
		}
	case "Shape", "Size":
		sh.shapeOf(n, x)
	case "Reshape":
		set(sh.reshape(n, x))
		if v, ok := sh.values[in(n, 0)]; ok {
			sh.values[o] = v // a reshape keeps the elements
		}
	case "Flatten":
		if x != nil {
			axis, ok := normAxis(onnx.AttrIntOr(n, "axis", 1), len(x)+1)
			if ok {
				set(shape{sh.product(x[:axis]), sh.product(x[axis:])})
			}
		}
	case "Transpose":
		set(transposeShape(n, x))
	case "Unsqueeze", "Squeeze":
		sh.squeeze(n, x)
	case "Concat":
		sh.concat(n)
	case "Split":
		sh.split(n, x)
	case "Slice":
		sh.slice(n, x)
	case "Gather":
		sh.gather(n, x)
	case "Expand":
		if v, ok := sh.values[in(n, 1)]; ok && x != nil {
			set(sh.broadcast(x, shape(v)))
		}
	case "ConstantOfShape":
		sh.constantOfShape(n)
	case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare":
		set(sh.reduce(n, x))
	}
}

// contribNode infers the outputs of a com.microsoft node the fusions emit.
func (sh *shapes) contribNode(n *onnxpb.NodeProto, x shape) {
	o := n.GetOutput()[0]
	set := func(s shape) {
		if s != nil {
			sh.shape[o] = s
		}
	}
	switch n.GetOpType() {
	case "BiasGelu", "FastGelu", "Gelu", "QuickGelu", "BiasAdd":
		set(x)
	case "SkipLayerNormalization":
		set(x)
		if len(n.GetOutput()) > 3 && n.GetOutput()[3] != "" && x != nil {
			sh.shape[n.GetOutput()[3]] = x
		}
	case "MultiHeadAttention":
		if len(x) == 3 {
			s := slices.Clone(x)
			if v := sh.of(in(n, 2)); len(v) == 3 {
				s[2] = v[2]
			}
			set(s)
		}
	case "Attention":
		w := sh.of(in(n, 1))
		if len(x) == 3 && len(w) == 2 && w[1].isKnown() && w[1].v%3 == 0 {
			set(shape{x[0], x[1], known(w[1].v / 3)})
		}
	}
}

// gemmShape is Gemm's output shape (nil when unknown).
func gemmShape(n *onnxpb.NodeProto, a, b shape) shape {
	if len(a) != 2 || len(b) != 2 {
		return nil
	}
	m, nn := a[0], b[1]
	if onnx.AttrIntOr(n, "transA", 0) != 0 {
		m = a[1]
	}
	if onnx.AttrIntOr(n, "transB", 0) != 0 {
		nn = b[0]
	}
	return shape{m, nn}
}

// shapeOf infers Shape (the dims as a value) and Size (their product).
func (sh *shapes) shapeOf(n *onnxpb.NodeProto, x shape) {
	o := n.GetOutput()[0]
	if n.GetOpType() == "Size" {
		sh.shape[o] = shape{}
		if x.known() {
			p := int64(1)
			for _, d := range x {
				p *= d.v
			}
			sh.values[o] = []dim{known(p)}
		}
		return
	}
	if x == nil {
		return
	}
	start, end := onnx.AttrIntOr(n, "start", 0), onnx.AttrIntOr(n, "end", int64(len(x)))
	lo, hi := clampRange(start, end, len(x))
	sh.shape[o] = shape{known(int64(hi - lo))}
	v := make([]dim, hi-lo)
	copy(v, x[lo:hi])
	sh.values[o] = v
}

// transposeShape is Transpose's output shape (nil when unknown or the
// permutation is invalid).
func transposeShape(n *onnxpb.NodeProto, x shape) shape {
	if x == nil {
		return nil
	}
	perm, ok := attrInts(n, "perm")
	if !ok {
		perm = make([]int64, len(x))
		for i := range perm {
			perm[i] = int64(len(x) - 1 - i)
		}
	}
	if len(perm) != len(x) {
		return nil
	}
	s := make(shape, len(x))
	for i, p := range perm {
		if p < 0 || p >= int64(len(x)) {
			return nil
		}
		s[i] = x[p]
	}
	return s
}

// squeeze infers Unsqueeze and Squeeze, whose values are their input's.
func (sh *shapes) squeeze(n *onnxpb.NodeProto, x shape) {
	if x == nil {
		return
	}
	var s shape
	if n.GetOpType() == "Unsqueeze" {
		s = sh.unsqueezed(n, x)
	} else {
		s = sh.squeezed(n, x)
	}
	if s == nil {
		return
	}
	o := n.GetOutput()[0]
	sh.shape[o] = s
	if v, ok := sh.values[in(n, 0)]; ok {
		sh.values[o] = v
	}
}

// unsqueezed is Unsqueeze's output shape (nil when unknown).
func (sh *shapes) unsqueezed(n *onnxpb.NodeProto, x shape) shape {
	axes, ok := sh.axesOf(n, 1)
	if !ok {
		return nil
	}
	r := len(x) + len(axes)
	ins := map[int]bool{}
	for _, a := range axes {
		if ax, ok := normAxis(a, r); ok {
			ins[ax] = true
		}
	}
	if len(ins) != len(axes) {
		return nil
	}
	s := make(shape, 0, r)
	j := 0
	for i := 0; i < r; i++ {
		if ins[i] {
			s = append(s, known(1))
		} else {
			s = append(s, x[j])
			j++
		}
	}
	return s
}

// squeezed is Squeeze's output shape (nil when unknown: without axes,
// which dims go depends on dims not known).
func (sh *shapes) squeezed(n *onnxpb.NodeProto, x shape) shape {
	axes, ok := sh.axesOf(n, 1)
	drop := map[int]bool{}
	if ok {
		for _, a := range axes {
			if ax, ok := normAxis(a, len(x)); ok {
				drop[ax] = true
			}
		}
	} else {
		for i, d := range x {
			if d.isKnown() && d.v == 1 {
				drop[i] = true
			} else if !d.isKnown() {
				return nil
			}
		}
	}
	s := shape{}
	for i, d := range x {
		if !drop[i] {
			s = append(s, d)
		}
	}
	return s
}

// constantOfShape infers ConstantOfShape: its shape is its input's value,
// and a small integer fill gives its value too.
func (sh *shapes) constantOfShape(n *onnxpb.NodeProto) {
	o := n.GetOutput()[0]
	v, ok := sh.values[in(n, 0)]
	if !ok {
		return
	}
	sh.shape[o] = shape(v)
	c, ok := sh.constInts(in(n, 0))
	if !ok || len(c) > 1 {
		return
	}
	fill := int64(0)
	if t := onnx.Attr(n, "value"); t != nil && t.GetT() != nil {
		iv, _, ok := intsOf(t.GetT())
		if !ok || len(iv) != 1 {
			return
		}
		fill = iv[0]
	}
	cnt := int64(1)
	if len(c) == 1 {
		cnt = c[0]
	}
	if cnt >= 0 && cnt <= maxValueElems {
		d := make([]dim, cnt)
		for i := range d {
			d[i] = known(fill)
		}
		sh.values[o] = d
	}
}

// reduce is a Reduce* node's output shape (nil when unknown).
func (sh *shapes) reduce(n *onnxpb.NodeProto, x shape) shape {
	if x == nil {
		return nil
	}
	keep := onnx.AttrIntOr(n, "keepdims", 1) != 0
	axes, ok := sh.axesOf(n, 1)
	if !ok {
		if in(n, 1) != "" {
			return nil
		}
		axes = nil
	}
	red := map[int]bool{}
	for _, a := range axes {
		if ax, ok := normAxis(a, len(x)); ok {
			red[ax] = true
		}
	}
	all := len(axes) == 0
	s := shape{}
	for i, d := range x {
		if all || red[i] {
			if keep {
				s = append(s, known(1))
			}
			continue
		}
		s = append(s, d)
	}
	return s
}

// castsToInt reports whether a Cast keeps integer elements as integers.
func castsToInt(n *onnxpb.NodeProto) bool {
	switch onnx.DataType(onnx.AttrIntOr(n, "to", 0)) {
	case onnx.Int64, onnx.Int32:
		return true
	}
	return false
}

func clampRange(start, end int64, r int) (int, int) {
	if start < 0 {
		start += int64(r)
	}
	if end < 0 {
		end += int64(r)
	}
	start = max(0, min(start, int64(r)))
	end = max(start, min(end, int64(r)))
	return int(start), int(end)
}

// product multiplies dims: a value when all are known, else the symbolic
// product (see mono).
func (sh *shapes) product(ds []dim) dim {
	coef := int64(1)
	var atoms []string
	for _, d := range ds {
		c, a := factors(d)
		coef *= c
		atoms = append(atoms, a...)
	}
	return mono(coef, atoms)
}

// factors splits a dim into its integer coefficient and symbolic atoms:
// known(6) is 6 and none, "$batch" is 1 and [$batch], "2·$batch·?3" is 2
// and [$batch ?3].
func factors(d dim) (int64, []string) {
	if d.isKnown() {
		return d.v, nil
	}
	parts := strings.Split(d.s, "·")
	coef := int64(1)
	if c, err := strconv.ParseInt(parts[0], 10, 64); err == nil {
		coef, parts = c, parts[1:]
	}
	return coef, parts
}

// mono is the dim coef · atoms in one canonical spelling (coefficient
// first unless 1, atoms sorted), so that two computations of the same
// product, such as batch × heads from two Shape chains, are equal.
func mono(coef int64, atoms []string) dim {
	if len(atoms) == 0 || coef == 0 {
		return known(coef)
	}
	atoms = slices.Clone(atoms)
	slices.Sort(atoms)
	if coef == 1 && len(atoms) == 1 {
		return dim{s: atoms[0]}
	}
	if coef != 1 {
		atoms = append([]string{strconv.FormatInt(coef, 10)}, atoms...)
	}
	return dim{s: strings.Join(atoms, "·")}
}

func (sh *shapes) matmul(a, b shape) shape {
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	switch {
	case len(a) == 1 && len(b) == 1:
		return shape{}
	case len(a) == 1:
		s := slices.Clone(b[:len(b)-2])
		return append(s, b[len(b)-1])
	case len(b) == 1:
		return slices.Clone(a[:len(a)-1])
	}
	batch := sh.broadcast(a[:len(a)-2], b[:len(b)-2])
	return append(batch, a[len(a)-2], b[len(b)-1])
}

// conv infers a Conv's or pooling's output: [N, C_out, spatial...].
func (sh *shapes) conv(n *onnxpb.NodeProto, x shape) shape {
	if len(x) < 3 {
		return nil
	}
	sp := len(x) - 2
	out := make(shape, len(x))
	out[0] = x[0]
	kernel, _ := attrInts(n, "kernel_shape")
	if n.GetOpType() == "Conv" {
		w := sh.of(in(n, 1))
		if len(w) != len(x) {
			return nil
		}
		out[1] = w[0]
		if kernel == nil {
			kernel = make([]int64, sp)
			for i := range kernel {
				if !w[2+i].isKnown() {
					return nil
				}
				kernel[i] = w[2+i].v
			}
		}
	} else {
		out[1] = x[1]
	}
	if len(kernel) != sp {
		return nil
	}
	strides, _ := attrInts(n, "strides")
	dil, _ := attrInts(n, "dilations")
	pads, _ := attrInts(n, "pads")
	autoPad := onnx.AttrStringOr(n, "auto_pad", "NOTSET")
	ceil := onnx.AttrIntOr(n, "ceil_mode", 0) != 0
	for i := 0; i < sp; i++ {
		d := x[2+i]
		if !d.isKnown() {
			out[2+i] = sh.newSym()
			continue
		}
		s, dl := int64(1), int64(1)
		if len(strides) == sp {
			s = strides[i]
		}
		if len(dil) == sp {
			dl = dil[i]
		}
		if s <= 0 || dl <= 0 {
			return nil
		}
		switch autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			out[2+i] = known((d.v + s - 1) / s)
			continue
		case "VALID":
			pads = nil
		case "NOTSET":
		default:
			return nil
		}
		var p int64
		if len(pads) == 2*sp {
			p = pads[i] + pads[i+sp]
		}
		ek := dl*(kernel[i]-1) + 1
		num := d.v + p - ek
		if num < 0 {
			return nil
		}
		if ceil {
			out[2+i] = known((num+s-1)/s + 1)
		} else {
			out[2+i] = known(num/s + 1)
		}
	}
	return out
}

// reshape infers a Reshape's output from the target's (tracked) elements.
func (sh *shapes) reshape(n *onnxpb.NodeProto, x shape) shape {
	target, ok := sh.values[in(n, 1)]
	if !ok {
		return nil
	}
	allowZero := onnx.AttrIntOr(n, "allowzero", 0) != 0
	out := make(shape, len(target))
	neg := -1
	for i, d := range target {
		switch {
		case d.isKnown() && d.v == 0 && !allowZero:
			if x == nil || i >= len(x) {
				return nil
			}
			out[i] = x[i]
		case d.isKnown() && d.v == -1:
			if neg >= 0 {
				return nil
			}
			neg = i
		case d.isKnown() && d.v < 0:
			return nil
		default:
			out[i] = d
		}
	}
	if neg >= 0 {
		if x == nil {
			return nil
		}
		q, ok := divideDims(x, append(slices.Clone(out[:neg]), out[neg+1:]...))
		if !ok {
			out[neg] = sh.newSym()
		} else {
			out[neg] = q
		}
	}
	return out
}

// divideDims computes prod(num) / prod(den) when the division is exact:
// den's symbols all cancel against num's and its coefficient divides
// num's.
func divideDims(num, den []dim) (dim, bool) {
	nc, dc := int64(1), int64(1)
	syms := map[string]int{}
	for _, d := range num {
		c, atoms := factors(d)
		nc *= c
		for _, a := range atoms {
			syms[a]++
		}
	}
	for _, d := range den {
		c, atoms := factors(d)
		dc *= c
		for _, a := range atoms {
			if syms[a] == 0 {
				return dim{}, false
			}
			syms[a]--
		}
	}
	if dc == 0 || nc%dc != 0 {
		return dim{}, false
	}
	var left []string
	for s, c := range syms {
		for range c {
			left = append(left, s)
		}
	}
	return mono(nc/dc, left), true
}

func (sh *shapes) concat(n *onnxpb.NodeProto) {
	o := n.GetOutput()[0]
	var ss []shape
	for _, v := range n.GetInput() {
		s := sh.of(v)
		if s == nil {
			return
		}
		ss = append(ss, s)
	}
	if len(ss) == 0 {
		return
	}
	r := len(ss[0])
	axis, ok := normAxis(onnx.AttrIntOr(n, "axis", 0), r)
	if !ok {
		return
	}
	out := slices.Clone(ss[0])
	sum := make([]dim, 0, len(ss))
	for _, s := range ss {
		if len(s) != r {
			return
		}
		sum = append(sum, s[axis])
	}
	total := int64(0)
	allKnown := true
	for _, d := range sum {
		if !d.isKnown() {
			allKnown = false
			break
		}
		total += d.v
	}
	if allKnown {
		out[axis] = known(total)
	} else {
		out[axis] = sh.newSym()
	}
	sh.shape[o] = out
	// Elements of 1-D integer tensors.
	if r == 1 {
		var v []dim
		for _, x := range n.GetInput() {
			e, ok := sh.values[x]
			if !ok {
				return
			}
			v = append(v, e...)
		}
		if len(v) <= maxValueElems {
			sh.values[o] = v
		}
	}
}

func (sh *shapes) split(n *onnxpb.NodeProto, x shape) {
	if x == nil {
		return
	}
	axis, ok := normAxis(onnx.AttrIntOr(n, "axis", 0), len(x))
	if !ok {
		return
	}
	outs := n.GetOutput()
	var sizes []int64
	if s, ok := attrInts(n, "split"); ok {
		sizes = s
	} else if in(n, 1) != "" {
		s, ok := sh.constInts(in(n, 1))
		if !ok {
			return
		}
		sizes = s
	}
	d := x[axis]
	if sizes == nil {
		if !d.isKnown() {
			return
		}
		k := int64(len(outs))
		if num := onnx.AttrIntOr(n, "num_outputs", 0); (num > 0 && num != k) || k <= 0 {
			return
		}
		chunk := (d.v + k - 1) / k
		for i := int64(0); i < k; i++ {
			sizes = append(sizes, min(chunk, max(0, d.v-i*chunk)))
		}
	}
	if len(sizes) != len(outs) {
		return
	}
	for i, o := range outs {
		if o == "" {
			continue
		}
		s := slices.Clone(x)
		s[axis] = known(sizes[i])
		sh.shape[o] = s
	}
}

func (sh *shapes) slice(n *onnxpb.NodeProto, x shape) {
	if x == nil {
		return
	}
	o := n.GetOutput()[0]
	var starts, ends, axes, steps []int64
	if s, ok := attrInts(n, "starts"); ok { // opset < 10
		starts = s
		ends, _ = attrInts(n, "ends")
		axes, _ = attrInts(n, "axes")
	} else {
		var ok bool
		if starts, ok = sh.constInts(in(n, 1)); !ok {
			return
		}
		if ends, ok = sh.constInts(in(n, 2)); !ok {
			return
		}
		if in(n, 3) != "" {
			if axes, ok = sh.constInts(in(n, 3)); !ok {
				return
			}
		}
		if in(n, 4) != "" {
			if steps, ok = sh.constInts(in(n, 4)); !ok {
				return
			}
		}
	}
	if len(ends) != len(starts) {
		return
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if steps == nil {
		steps = make([]int64, len(starts))
		for i := range steps {
			steps[i] = 1
		}
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		return
	}
	out := slices.Clone(x)
	ranges := make([][3]int64, len(x)) // start, end, step per axis
	for i := range ranges {
		ranges[i] = [3]int64{0, math.MaxInt64, 1}
	}
	for i := range starts {
		ax, ok := normAxis(axes[i], len(x))
		if !ok || steps[i] == 0 {
			return
		}
		ranges[ax] = [3]int64{starts[i], ends[i], steps[i]}
		d := x[ax]
		if !d.isKnown() {
			if starts[i] == 0 && ends[i] >= math.MaxInt32 && steps[i] == 1 {
				continue // the whole axis
			}
			out[ax] = sh.newSym()
			continue
		}
		out[ax] = known(sliceLen(starts[i], ends[i], steps[i], d.v))
	}
	sh.shape[o] = out
	if v, ok := sh.values[in(n, 0)]; ok && len(x) == 1 && x[0].isKnown() && x[0].v == int64(len(v)) {
		r := ranges[0]
		idx := sliceIndices(r[0], r[1], r[2], x[0].v)
		e := make([]dim, len(idx))
		for i, j := range idx {
			if j < 0 || j >= int64(len(v)) {
				return
			}
			e[i] = v[j]
		}
		sh.values[o] = e
	}
}

// sliceIndices lists the indices Slice takes along an axis of length d.
func sliceIndices(start, end, step, d int64) []int64 {
	if step == 0 {
		return nil
	}
	if start < 0 {
		start += d
	}
	if end < 0 {
		end += d
	}
	var out []int64
	if step > 0 {
		start = max(0, min(start, d))
		end = max(0, min(end, d))
		for i := start; i < end; i += step {
			out = append(out, i)
		}
	} else {
		start = max(-1, min(start, d-1))
		end = max(-1, min(end, d-1))
		for i := start; i > end; i += step {
			out = append(out, i)
		}
	}
	return out
}

// sliceLen is len(sliceIndices(...)) without listing them.
func sliceLen(start, end, step, d int64) int64 {
	if step == 0 || d < 0 {
		return 0
	}
	if start < 0 {
		start += d
	}
	if end < 0 {
		end += d
	}
	if step > 0 {
		start = max(0, min(start, d))
		end = max(0, min(end, d))
		if end <= start {
			return 0
		}
		return (end - start + step - 1) / step
	}
	start = max(-1, min(start, d-1))
	end = max(-1, min(end, d-1))
	if start <= end {
		return 0
	}
	return (start - end - step - 1) / -step
}

func (sh *shapes) gather(n *onnxpb.NodeProto, x shape) {
	if x == nil {
		return
	}
	o := n.GetOutput()[0]
	idx := sh.of(in(n, 1))
	if idx == nil {
		return
	}
	axis, ok := normAxis(onnx.AttrIntOr(n, "axis", 0), len(x))
	if !ok {
		return
	}
	out := append(slices.Clone(x[:axis]), idx...)
	out = append(out, x[axis+1:]...)
	sh.shape[o] = out
	// Elements: gathering from a tracked 1-D tensor with constant indices.
	v, ok := sh.values[in(n, 0)]
	if !ok || len(x) != 1 {
		return
	}
	ids, ok := sh.constInts(in(n, 1))
	if !ok {
		return
	}
	e := make([]dim, len(ids))
	for i, j := range ids {
		if j < 0 {
			j += int64(len(v))
		}
		if j < 0 || j >= int64(len(v)) {
			return
		}
		e[i] = v[j]
	}
	sh.values[o] = e
}

// elementwiseValues tracks the elements of integer arithmetic on shape
// tensors: known operands give known results; comparing a dimension (never
// negative) with a negative constant gives false.
func (sh *shapes) elementwiseValues(n *onnxpb.NodeProto) {
	o := n.GetOutput()[0]
	op := n.GetOpType()
	ins := n.GetInput()
	get := func(i int) ([]dim, bool) {
		if i >= len(ins) {
			return nil, false
		}
		v, ok := sh.values[ins[i]]
		return v, ok
	}
	// broadcast two element lists (lengths equal, or one of them 1).
	pair := func(a, b []dim) ([][2]dim, bool) {
		l := max(len(a), len(b))
		if (len(a) != l && len(a) != 1) || (len(b) != l && len(b) != 1) {
			return nil, false
		}
		out := make([][2]dim, l)
		for i := range out {
			x, y := a[0], b[0]
			if len(a) == l {
				x = a[i]
			}
			if len(b) == l {
				y = b[i]
			}
			out[i] = [2]dim{x, y}
		}
		return out, true
	}
	switch op {
	case "Add", "Sub", "Mul", "Div", "Equal":
		a, ok1 := get(0)
		b, ok2 := get(1)
		if !ok1 || !ok2 {
			return
		}
		ps, ok := pair(a, b)
		if !ok {
			return
		}
		res := make([]dim, len(ps))
		for i, p := range ps {
			x, y := p[0], p[1]
			if op == "Equal" {
				switch {
				case x.isKnown() && y.isKnown():
					res[i] = known(b2i(x.v == y.v))
				case x == y:
					res[i] = known(1)
				case (!x.isKnown() && y.v < 0 && y.isKnown()) || (!y.isKnown() && x.isKnown() && x.v < 0):
					res[i] = known(0)
				default:
					return
				}
				continue
			}
			if !x.isKnown() || !y.isKnown() {
				// Products of dimensions stay symbolic; a quotient when
				// it is exact.
				switch {
				case op == "Mul":
					res[i] = sh.product([]dim{x, y})
				case op == "Div" && y.isKnown() && y.v > 0:
					q, ok := divideDims([]dim{x}, []dim{y})
					if !ok {
						return
					}
					res[i] = q
				default:
					return
				}
				continue
			}
			switch op {
			case "Add":
				res[i] = known(x.v + y.v)
			case "Sub":
				res[i] = known(x.v - y.v)
			case "Mul":
				res[i] = known(x.v * y.v)
			case "Div":
				if y.v == 0 {
					return
				}
				res[i] = known(x.v / y.v)
			}
		}
		sh.values[o] = res
	case "Where":
		c, ok0 := get(0)
		a, ok1 := get(1)
		b, ok2 := get(2)
		if !ok0 || !ok1 || !ok2 {
			return
		}
		l := max(len(c), len(a), len(b))
		pick := func(v []dim, i int) (dim, bool) {
			switch len(v) {
			case l:
				return v[i], true
			case 1:
				return v[0], true
			}
			return dim{}, false
		}
		res := make([]dim, l)
		for i := range res {
			ci, ok := pick(c, i)
			if !ok || !ci.isKnown() {
				return
			}
			src := b
			if ci.v != 0 {
				src = a
			}
			d, ok := pick(src, i)
			if !ok {
				return
			}
			res[i] = d
		}
		sh.values[o] = res
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
