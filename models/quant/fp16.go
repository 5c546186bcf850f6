package quant

import (
	"context"
	"fmt"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// fp16BlockList is ONNX Runtime's float16 converter's default op block
// list (operators without float16 kernels or whose float16 results are
// wrong), plus DynamicQuantizeLinear, which only takes float32.
var fp16BlockList = map[string]bool{
	"ArrayFeatureExtractor": true, "Binarizer": true, "CastMap": true, "CategoryMapper": true,
	"DictVectorizer": true, "FeatureVectorizer": true, "Imputer": true, "LabelEncoder": true,
	"LinearClassifier": true, "LinearRegressor": true, "Normalizer": true, "OneHotEncoder": true,
	"RandomUniformLike": true, "SVMClassifier": true, "SVMRegressor": true, "Scaler": true,
	"TreeEnsembleClassifier": true, "TreeEnsembleRegressor": true, "ZipMap": true,
	"NonMaxSuppression": true, "TopK": true, "RoiAlign": true, "Range": true, "CumSum": true,
	"Min": true, "Max": true, "Upsample": true, "DynamicQuantizeLinear": true,
}

// fp16MixedOps are kept in float32 by fp16:mixed: their reductions
// overflow or lose precision in float16 on deep models. The fused
// com.microsoft operators that contain them (SkipLayerNormalization a
// LayerNormalization, the attention operators a Softmax) go with them.
var fp16MixedOps = []string{"LayerNormalization", "Softmax", "SkipLayerNormalization", "MultiHeadAttention", "Attention"}

// fp16FusedForms maps an operator a user keeps in float32 (keep=Op) to the
// com.microsoft operators models/optimize fuses it into, which are kept
// with it: keeping LayerNormalization keeps SkipLayerNormalization too.
var fp16FusedForms = map[string][]string{
	"LayerNormalization": {"SkipLayerNormalization"},
	"Softmax":            {"MultiHeadAttention", "Attention"},
	"Erf":                {"BiasGelu", "Gelu", "FastGelu"},
	"Sigmoid":            {"QuickGelu"},
}

// fp16FloatInputs lists inputs that stay float32 even on converted nodes.
var fp16FloatInputs = map[string][]int{"Resize": {2}}

// fp16Slots types the input and output slots of an operator, one byte per
// slot, by its schema's type constraint:
//
//	'T'  float or float16: converted with the node
//	'M'  an integer (masks, sequence lengths): left as it is
//	'U'  float32 only (statistics outputs): stays float32 on a converted node
//	'-'  typed independently of T: a node using the slot stays float32
//
// Slots past the end of the string are unknown: a node using one stays
// float32 too.
type fp16Slots struct{ in, out string }

// fp16Contrib is the allow-list of com.microsoft operators converted like
// default-domain float operators: the fused transformer operators
// models/optimize emits, whose ONNX Runtime schemas constrain their float
// tensors to T ∈ {float, float16} (so the CUDA execution provider runs
// its float16 fused and flash attention kernels on them). Float
// attributes (epsilon, scale, alpha, mask_filter_value) stay float
// attributes, as the schemas want. Every other operator outside the
// default domain (MatMulNBits, DynamicQuantizeMatMul, the QDQ contrib
// operators, ...) stays float32 behind Casts.
var fp16Contrib = map[string]fp16Slots{
	// query, key, value, bias, key_padding_mask (int32), attention_bias,
	// past_key, past_value, past_sequence_length (int32),
	// cache_indirection (int32) → output, present_key, present_value, qk
	// (its own type constraint QK).
	"MultiHeadAttention": {in: "TTTTMTTTMM", out: "TTT-"},
	// input, weights, bias, mask_index (int32), past, attention_bias,
	// past_sequence_length (int32) → output, present.
	"Attention": {in: "TTTMTTM", out: "TT"},
	// input, skip, gamma, beta, bias → output, mean and inv_std_var
	// (U = float), input_skip_bias_sum.
	"SkipLayerNormalization": {in: "TTTTT", out: "TUUT"},
	"BiasGelu":               {in: "TT", out: "T"}, // A, B → C
	"FastGelu":               {in: "TT", out: "T"}, // X, bias → Y
	"Gelu":                   {in: "T", out: "T"},
	"QuickGelu":              {in: "T", out: "T"},
}

// fp16ContribSlots returns the slot types of n when it is an operator of
// fp16Contrib that the fp16 transform can convert: every value it uses
// sits in a known slot, its T values are float tensors, and no float
// value sits in an integer slot. Otherwise ok is false and the node stays
// float32.
func fp16ContribSlots(n *onnxpb.NodeProto, types map[string]onnx.DataType) (s fp16Slots, ok bool) {
	if n.GetDomain() != onnx.MicrosoftDomain {
		return s, false
	}
	s, ok = fp16Contrib[n.GetOpType()]
	if !ok {
		return s, false
	}
	fits := func(values []string, slots string) bool {
		for i, v := range values {
			if v == "" {
				continue
			}
			if i >= len(slots) {
				return false
			}
			switch dt := types[v]; slots[i] {
			case 'T':
				if dt != onnx.Float && dt != onnx.Float16 {
					return false
				}
			case 'M':
				if isFloatType(dt) {
					return false
				}
			case 'U':
			default:
				return false
			}
		}
		return true
	}
	return s, fits(n.GetInput(), s.in) && fits(n.GetOutput(), s.out)
}

// fp16SlotIs reports whether slot i of slots has type class c.
func fp16SlotIs(slots string, i int, c byte) bool { return i < len(slots) && slots[i] == c }

// cpuIslands marks, for fp16:ep=cpu, the nodes that would run in float16
// between float32 neighbours only: a node without weights of its own
// (a Clip, a Reshape) whose float inputs all come from float32 nodes or
// graph inputs. Converting it would buy nothing and cost a Cast on each
// side; it stays float32 with them. Nodes are visited in graph order, so
// chains of such nodes stay float32 together.
func cpuIslands(ix *graphIndex, types map[string]onnx.DataType, blocked func(*onnxpb.NodeProto) bool, island map[*onnxpb.NodeProto]bool) {
	for _, n := range ix.g.GetNode() {
		if blocked(n) || !producesFloat(n, types) {
			continue
		}
		fp32Only, floats := true, 0
		for _, in := range n.GetInput() {
			if in == "" || types[in] != onnx.Float {
				continue
			}
			if t := ix.ConstTensor(in); t != nil {
				if c, err := onnx.Numel(t.GetDims()); err == nil && c >= storageMinElems {
					fp32Only = false // a weight: converting halves it
				}
				continue
			}
			floats++
			if p := ix.Producer[in]; p != nil && !blocked(p) {
				fp32Only = false
			}
		}
		if fp32Only && floats > 0 {
			island[n] = true
		}
	}
}

// producesFloat reports whether a node writes a float32 value.
func producesFloat(n *onnxpb.NodeProto, types map[string]onnx.DataType) bool {
	for _, o := range n.GetOutput() {
		if o != "" && types[o] == onnx.Float {
			return true
		}
	}
	return false
}

// toFP16 converts float32 tensors and activations to float16. Graph
// inputs and outputs stay float32, with one Cast at each boundary; nodes
// of blocked op types (fp16BlockList, spec.KeepOps, fp16:mixed's
// fp16MixedOps, operators of other domains except the com.microsoft
// operators of fp16Contrib, nodes with subgraphs) and excluded nodes stay
// float32, with Casts where their values meet float16 ones; float32-only
// outputs of converted nodes (LayerNormalization's statistics, U-typed
// contrib outputs) stay float32; Cast(to=FLOAT) becomes Cast(to=FLOAT16);
// initializers and Constants are converted with values clamped to ±65504;
// chains of float Casts left behind are collapsed.
func toFP16(ctx context.Context, st *state) error {
	p := newFP16Pass(st)
	p.normalizeConstants()
	p.planOutputs()
	p.keepGraphOutputsFloat()
	if err := p.convertData(ctx, p.dataWants()); err != nil {
		return err
	}
	p.rewire()
	return p.finish()
}

// fp16Pass is one fp16 conversion in progress: which nodes stay float32,
// which values become float16, and what it adds to the graph.
type fp16Pass struct {
	st       *state
	ix       *graphIndex
	types    map[string]onnx.DataType
	g        *onnxpb.GraphProto
	blockOps map[string]bool
	contrib  map[*onnxpb.NodeProto]fp16Slots // the com.microsoft nodes converted, with their slot types
	island   map[*onnxpb.NodeProto]bool      // fp16:ep=cpu: float32 neighbours only, see cpuIslands
	e        *emitter
	half     map[string]bool   // node outputs that become float16
	rename   map[string]string // graph output → the float16 value its producer writes instead
	halfData map[string]string // data value → its float16 version
	casts    map[string]string // value + target type → the Cast's output
}

// newFP16Pass decides which nodes stay float32.
func newFP16Pass(st *state) *fp16Pass {
	p := &fp16Pass{st: st, ix: st.ix, types: st.types, g: st.ix.g, blockOps: map[string]bool{},
		contrib: map[*onnxpb.NodeProto]fp16Slots{}, island: map[*onnxpb.NodeProto]bool{}, e: &emitter{ix: st.ix},
		half: map[string]bool{}, rename: map[string]string{}, halfData: map[string]string{}, casts: map[string]string{}}
	for op := range fp16BlockList {
		p.blockOps[op] = true
	}
	for _, op := range st.spec.KeepOps {
		p.blockOps[op] = true
		for _, fused := range fp16FusedForms[op] {
			p.blockOps[fused] = true
		}
	}
	if st.spec.Mixed {
		for _, op := range fp16MixedOps {
			p.blockOps[op] = true
		}
	}
	for _, n := range p.g.GetNode() {
		if s, ok := fp16ContribSlots(n, p.types); ok {
			p.contrib[n] = s
		}
	}
	if st.spec.EP == "cpu" {
		cpuIslands(p.ix, p.types, p.blocked, p.island)
	}
	return p
}

// foreign reports whether n is an operator of another domain that is not
// converted.
func (p *fp16Pass) foreign(n *onnxpb.NodeProto) bool {
	_, ok := p.contrib[n]
	return !onnx.IsDefaultDomain(n) && !ok
}

// blocked reports whether n stays float32.
func (p *fp16Pass) blocked(n *onnxpb.NodeProto) bool {
	if p.foreign(n) || len(onnx.Subgraphs(n)) > 0 || p.blockOps[n.GetOpType()] || p.island[n] {
		return true
	}
	if p.st.spec.EP == "cpu" && !CPUHasFP16Kernel(n.GetOpType()) && producesFloat(n, p.types) {
		return true
	}
	return p.st.exclude[n.GetName()] || (len(n.GetOutput()) > 0 && p.st.exclude[n.GetOutput()[0]])
}

// floatOutput reports whether output i of a converted node stays float32
// whatever its inputs' type.
func (p *fp16Pass) floatOutput(n *onnxpb.NodeProto, i int) bool {
	if s, ok := p.contrib[n]; ok {
		return !fp16SlotIs(s.out, i, 'T')
	}
	return n.GetOpType() == "LayerNormalization" && i > 0 // Mean and InvStdDev follow stash_type
}

// isConstNode reports whether n is a Constant node.
func isConstNode(n *onnxpb.NodeProto) bool {
	return n.GetOpType() == "Constant" && onnx.IsDefaultDomain(n)
}

// normalizeConstants makes Constants with value_float(s) tensor-valued, so
// that one code path converts them.
func (p *fp16Pass) normalizeConstants() {
	for _, n := range p.g.GetNode() {
		if isConstNode(n) {
			normalizeConstant(n)
		}
	}
	p.ix.Rebuild()
}

// planOutputs decides which node outputs become float16.
func (p *fp16Pass) planOutputs() {
	for _, n := range p.g.GetNode() {
		if isConstNode(n) || p.blocked(n) {
			continue
		}
		for i, o := range n.GetOutput() {
			if o == "" || p.types[o] != onnx.Float || p.floatOutput(n, i) {
				continue
			}
			p.half[o] = true
		}
	}
}

// keepGraphOutputsFloat keeps graph outputs float32: their producers
// write <name>_fp16, and a Cast restores the name.
func (p *fp16Pass) keepGraphOutputsFloat() {
	for _, out := range p.g.GetOutput() {
		name := out.GetName()
		if p.half[name] {
			internal := p.ix.Unique(name + "_fp16")
			p.rename[name] = internal
			p.half[internal] = true
			p.e.node("", "Cast", name+"_output_cast", []string{internal}, []string{name}, onnx.AttrInt("to", int64(onnx.Float)))
		}
	}
	for _, n := range p.g.GetNode() {
		for i, o := range n.GetOutput() {
			if r, ok := p.rename[o]; ok {
				n.Output[i] = r
			}
		}
		for i, in := range n.GetInput() {
			if r, ok := p.rename[in]; ok {
				n.Input[i] = r
			}
		}
	}
}

// dataWant says in which precisions a data value's consumers read it.
type dataWant struct{ half, float bool }

// isData reports whether v is data: an initializer or a Constant.
func (p *fp16Pass) isData(v string) bool {
	if _, ok := p.ix.Inits[v]; ok && !p.ix.Declared[v] {
		return true
	}
	pr := p.ix.Producer[v]
	return pr != nil && isConstNode(pr)
}

// wantsHalf reports whether input i of n is read as float16.
func (p *fp16Pass) wantsHalf(n *onnxpb.NodeProto, i int) bool {
	if p.blocked(n) {
		return false
	}
	if s, ok := p.contrib[n]; ok {
		return fp16SlotIs(s.in, i, 'T')
	}
	for _, fi := range fp16FloatInputs[n.GetOpType()] {
		if fi == i {
			return false
		}
	}
	return true
}

// dataWants returns, per float data value, the precisions its consumers
// want.
func (p *fp16Pass) dataWants() map[string]*dataWant {
	data := map[string]*dataWant{}
	for _, n := range p.g.GetNode() {
		if isConstNode(n) {
			continue
		}
		for i, in := range n.GetInput() {
			if in == "" || p.types[in] != onnx.Float || !p.isData(in) {
				continue
			}
			w := data[in]
			if w == nil {
				w = &dataWant{}
				data[in] = w
			}
			if p.wantsHalf(n, i) {
				w.half = true
			} else {
				w.float = true
			}
		}
	}
	return data
}

// convertData converts the data values some consumer reads as float16:
// in place when none reads it as float32, else into a float16 copy.
func (p *fp16Pass) convertData(ctx context.Context, data map[string]*dataWant) error {
	for v, w := range data {
		if !w.half {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if t, ok := p.ix.Inits[v]; ok {
			if !w.float {
				p.ix.collect(int64(3 * len(t.GetRawData()))) // the old bytes and the decoded copy
				if err := tensorToFP16(t); err != nil {
					return err
				}
				p.halfData[v] = v
				continue
			}
			cp := &onnxpb.TensorProto{Name: ptr(p.ix.Unique(v + "_fp16")), Dims: t.GetDims(), DataType: t.DataType, RawData: t.GetRawData(), FloatData: t.GetFloatData()}
			if err := tensorToFP16(cp); err != nil {
				return err
			}
			p.e.inits = append(p.e.inits, cp)
			p.halfData[v] = cp.GetName()
			continue
		}
		val := onnx.Attr(p.ix.Producer[v], "value").GetT()
		if !w.float {
			if err := tensorToFP16(val); err != nil {
				return err
			}
			p.halfData[v] = v
			continue
		}
		cp := &onnxpb.TensorProto{Dims: val.GetDims(), DataType: val.DataType, RawData: val.GetRawData(), FloatData: val.GetFloatData()}
		if err := tensorToFP16(cp); err != nil {
			return err
		}
		out := p.ix.Unique(v + "_fp16")
		p.e.node("", "Constant", out, nil, []string{out}, onnx.AttrTensor("value", cp))
		p.halfData[v] = out
	}
	return nil
}

// castTo returns v cast to type to, adding the Cast once.
func (p *fp16Pass) castTo(v string, to onnx.DataType) string {
	key := v + "\x00" + to.String()
	if c, ok := p.casts[key]; ok {
		return c
	}
	suffix := "_to_fp32"
	if to == onnx.Float16 {
		suffix = "_to_fp16"
	}
	out := p.ix.Unique(v + suffix)
	p.e.node("", "Cast", v+suffix, []string{v}, []string{out}, onnx.AttrInt("to", int64(to)))
	p.casts[key] = out
	return out
}

// origType is a value's type before the conversion (a renamed graph
// output's included).
func (p *fp16Pass) origType(v string) onnx.DataType {
	for orig, r := range p.rename {
		if r == v {
			return p.types[orig]
		}
	}
	return p.types[v]
}

// rewire points every float input at the precision its consumer runs in,
// converts the attributes of converted nodes and records each node's
// precision.
func (p *fp16Pass) rewire() {
	for _, n := range p.g.GetNode() {
		if isConstNode(n) {
			continue
		}
		for i, in := range n.GetInput() {
			if in == "" || p.origType(in) != onnx.Float {
				continue
			}
			wantHalf := p.wantsHalf(n, i)
			if p.isData(in) {
				if wantHalf {
					n.Input[i] = p.halfData[in]
				}
				continue
			}
			switch {
			case wantHalf && !p.half[in]:
				n.Input[i] = p.castTo(in, onnx.Float16)
			case !wantHalf && p.half[in]:
				n.Input[i] = p.castTo(in, onnx.Float)
			}
		}
		p.record(n)
	}
}

// record converts a converted node's attributes and records its
// precision, or why it stays float32.
func (p *fp16Pass) record(n *onnxpb.NodeProto) {
	st := p.st
	if !p.blocked(n) {
		convertNodeAttrs(n)
		if touchesType(n, p.types, onnx.Float) && n.GetOpType() != "Shape" && n.GetOpType() != "Size" {
			st.t.set(n.GetName(), PrecFP16)
		}
		return
	}
	if !touchesType(n, p.types, onnx.Float) {
		return
	}
	switch {
	case p.blockOps[n.GetOpType()] || p.foreign(n):
		st.t.keep(n, "op type kept in fp32")
	case st.spec.EP == "cpu" && !CPUHasFP16Kernel(n.GetOpType()):
		st.t.keep(n, "no float16 kernel on the CPU execution provider")
	case p.island[n]:
		st.t.keep(n, "between float32 operators on the CPU execution provider (float16 would add a Cast on each side)")
	default:
		st.t.keep(n, "excluded")
	}
}

// finish adds the new nodes and initializers, sorts the graph, makes the
// declared types follow the conversion and collapses Cast chains.
func (p *fp16Pass) finish() error {
	g := p.g
	g.Node = append(g.Node, p.e.nodes...)
	g.Initializer = append(g.Initializer, p.e.inits...)
	if err := sortedGraph(g); err != nil {
		return err
	}
	// Declared intermediate types follow the conversion (before
	// collapseCasts, which infers types from them).
	declared := map[string]bool{}
	for _, list := range [][]*onnxpb.ValueInfoProto{g.GetInput(), g.GetOutput(), g.GetValueInfo()} {
		for _, vi := range list {
			declared[vi.GetName()] = true
		}
	}
	for _, vi := range g.GetValueInfo() {
		if p.half[vi.GetName()] && elemTypeOf(vi) == onnx.Float {
			setElemType(vi, onnx.Float16)
		}
	}
	// Float32-only outputs of converted contrib nodes are declared, so
	// that type inference, which gives a contrib operator's outputs its
	// first input's type, does not take them for float16.
	for _, n := range g.GetNode() {
		s, ok := p.contrib[n]
		if !ok || p.blocked(n) {
			continue
		}
		for i, o := range n.GetOutput() {
			if o != "" && !declared[o] && p.types[o] == onnx.Float && fp16SlotIs(s.out, i, 'U') {
				declared[o] = true
				g.ValueInfo = append(g.ValueInfo, &onnxpb.ValueInfoProto{Name: ptr(o), Type: &onnxpb.TypeProto{
					Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: ptr(int32(onnx.Float))}}}})
			}
		}
	}
	collapseCasts(g)
	pruneUnused(g)
	p.ix.Rebuild()
	return p.e.err
}

// normalizeConstant turns a Constant's value_float / value_floats into an
// equivalent tensor-valued Constant.
func normalizeConstant(n *onnxpb.NodeProto) {
	for i, a := range n.GetAttribute() {
		var t *onnxpb.TensorProto
		var err error
		switch a.GetName() {
		case "value_float":
			t, err = onnx.NewTensorFloat32("", nil, []float32{a.GetF()})
		case "value_floats":
			t, err = onnx.NewTensorFloat32("", []int64{int64(len(a.GetFloats()))}, a.GetFloats())
		default:
			continue
		}
		if err == nil {
			n.Attribute[i] = onnx.AttrTensor("value", t)
		}
	}
}

// tensorToFP16 converts a FLOAT tensor to FLOAT16 in place, finite values
// beyond the float16 range clamped to ±65504.
func tensorToFP16(t *onnxpb.TensorProto) error {
	if t == nil || onnx.DataTypeOf(t) != onnx.Float {
		return nil
	}
	v, err := onnx.TensorFloat32(t)
	if err != nil {
		return fmt.Errorf("convert %s to float16: %w", t.GetName(), err)
	}
	h, err := onnx.NewTensorFloat16(t.GetName(), t.GetDims(), onnx.Float32sToFloat16sClamped(v))
	if err != nil {
		return fmt.Errorf("convert %s to float16: %w", t.GetName(), err)
	}
	t.DataType, t.RawData, t.FloatData = h.DataType, h.RawData, nil
	return nil
}

// convertNodeAttrs retargets a converted node's float32 attributes:
// Cast(to=FLOAT), ConstantOfShape's value, random generators' dtype.
func convertNodeAttrs(n *onnxpb.NodeProto) {
	switch n.GetOpType() {
	case "Cast":
		if a := onnx.Attr(n, "to"); a != nil && onnx.DataType(a.GetI()) == onnx.Float {
			setAttr(n, onnx.AttrInt("to", int64(onnx.Float16)))
		}
	case "ConstantOfShape":
		a := onnx.Attr(n, "value")
		if a == nil {
			t, _ := onnx.NewTensorFloat16("", []int64{1}, []uint16{0})
			setAttr(n, onnx.AttrTensor("value", t))
		} else if a.GetT() != nil {
			_ = tensorToFP16(a.GetT())
		}
	case "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "EyeLike":
		if a := onnx.Attr(n, "dtype"); a != nil && onnx.DataType(a.GetI()) == onnx.Float {
			setAttr(n, onnx.AttrInt("dtype", int64(onnx.Float16)))
		} else if a == nil && (n.GetOpType() == "RandomNormal" || n.GetOpType() == "RandomUniform") {
			setAttr(n, onnx.AttrInt("dtype", int64(onnx.Float16)))
		}
	}
}

// isFloatType reports whether dt is a floating-point type a Cast chain
// may skip through.
func isFloatType(dt onnx.DataType) bool {
	return dt == onnx.Float || dt == onnx.Float16 || dt == onnx.Double
}

// collapseCasts removes back-to-back Casts: Cast(Cast(x, to=T1), to=T2)
// with T1 and T2 floating types reads x directly (skipping an
// intermediate rounding), and a Cast to the type its input already has is
// removed. Casts whose output is a graph output stay. g must be sorted;
// it stays sorted.
func collapseCasts(g *onnxpb.GraphProto) {
	for {
		types := inferTypes(g)
		producer := map[string]*onnxpb.NodeProto{}
		for _, n := range g.GetNode() {
			for _, o := range n.GetOutput() {
				producer[o] = n
			}
		}
		outputs := map[string]bool{}
		for _, o := range g.GetOutput() {
			outputs[o.GetName()] = true
		}
		isCast := func(n *onnxpb.NodeProto) bool {
			return n != nil && n.GetOpType() == "Cast" && onnx.IsDefaultDomain(n) && len(n.GetInput()) == 1 && len(n.GetOutput()) == 1
		}
		changed := false
		replace := map[string]string{}
		var drop *onnxpb.NodeProto
		for _, n := range g.GetNode() {
			if !isCast(n) {
				continue
			}
			to := onnx.DataType(onnx.AttrIntOr(n, "to", 0))
			if p := producer[n.GetInput()[0]]; isCast(p) {
				t1 := onnx.DataType(onnx.AttrIntOr(p, "to", 0))
				if isFloatType(t1) && isFloatType(to) {
					n.Input[0] = p.GetInput()[0]
					changed = true
					break
				}
			}
			if types[n.GetInput()[0]] == to && !outputs[n.GetOutput()[0]] {
				replace[n.GetOutput()[0]] = n.GetInput()[0]
				drop = n
				changed = true
				break
			}
		}
		if !changed {
			return
		}
		if drop != nil {
			nodes := g.Node[:0]
			for _, n := range g.GetNode() {
				if n != drop {
					nodes = append(nodes, n)
				}
			}
			g.Node = nodes
			for _, n := range g.GetNode() {
				for i, in := range n.GetInput() {
					if r, ok := replace[in]; ok {
						n.Input[i] = r
					}
				}
			}
		}
		pruneUnusedCasts(g)
	}
}

// pruneUnusedCasts drops Cast nodes whose output nothing reads.
func pruneUnusedCasts(g *onnxpb.GraphProto) {
	for {
		used := map[string]bool{}
		for _, n := range g.GetNode() {
			for _, in := range n.GetInput() {
				used[in] = true
			}
		}
		for _, o := range g.GetOutput() {
			used[o.GetName()] = true
		}
		nodes := g.Node[:0]
		removed := false
		for _, n := range g.GetNode() {
			if n.GetOpType() == "Cast" && len(n.GetOutput()) == 1 && !used[n.GetOutput()[0]] {
				removed = true
				continue
			}
			nodes = append(nodes, n)
		}
		g.Node = nodes
		if !removed {
			return
		}
	}
}
