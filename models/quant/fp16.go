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
	ix, types, g := st.ix, st.types, st.ix.g
	blockOps := map[string]bool{}
	for op := range fp16BlockList {
		blockOps[op] = true
	}
	for _, op := range st.spec.KeepOps {
		blockOps[op] = true
		for _, fused := range fp16FusedForms[op] {
			blockOps[fused] = true
		}
	}
	if st.spec.Mixed {
		for _, op := range fp16MixedOps {
			blockOps[op] = true
		}
	}
	// The com.microsoft nodes converted, with their slot types.
	contrib := map[*onnxpb.NodeProto]fp16Slots{}
	for _, n := range g.GetNode() {
		if s, ok := fp16ContribSlots(n, types); ok {
			contrib[n] = s
		}
	}
	foreign := func(n *onnxpb.NodeProto) bool {
		_, ok := contrib[n]
		return !onnx.IsDefaultDomain(n) && !ok
	}
	island := map[*onnxpb.NodeProto]bool{} // fp16:ep=cpu: float32 neighbours only, see cpuIslands
	blocked := func(n *onnxpb.NodeProto) bool {
		if foreign(n) || len(onnx.Subgraphs(n)) > 0 || blockOps[n.GetOpType()] || island[n] {
			return true
		}
		if st.spec.EP == "cpu" && !CPUHasFP16Kernel(n.GetOpType()) && producesFloat(n, types) {
			return true
		}
		return st.exclude[n.GetName()] || (len(n.GetOutput()) > 0 && st.exclude[n.GetOutput()[0]])
	}
	if st.spec.EP == "cpu" {
		cpuIslands(ix, types, blocked, island)
	}
	// floatOutput reports whether output i of a converted node stays
	// float32 whatever its inputs' type.
	floatOutput := func(n *onnxpb.NodeProto, i int) bool {
		if s, ok := contrib[n]; ok {
			return !fp16SlotIs(s.out, i, 'T')
		}
		return n.GetOpType() == "LayerNormalization" && i > 0 // Mean and InvStdDev follow stash_type
	}
	isConst := func(n *onnxpb.NodeProto) bool { return n.GetOpType() == "Constant" && onnx.IsDefaultDomain(n) }

	// Constants with value_float(s) become tensor-valued, so that one
	// code path converts them.
	for _, n := range g.GetNode() {
		if isConst(n) {
			normalizeConstant(n)
		}
	}
	ix.Rebuild()

	// Which node outputs become float16.
	half := map[string]bool{}
	for _, n := range g.GetNode() {
		if isConst(n) || blocked(n) {
			continue
		}
		for i, o := range n.GetOutput() {
			if o == "" || types[o] != onnx.Float || floatOutput(n, i) {
				continue
			}
			half[o] = true
		}
	}
	// Graph outputs keep float32: their producers write <name>_fp16,
	// and a Cast restores the name.
	e := &emitter{ix: ix}
	rename := map[string]string{}
	for _, out := range g.GetOutput() {
		name := out.GetName()
		if half[name] {
			internal := ix.Unique(name + "_fp16")
			rename[name] = internal
			half[internal] = true
			e.node("", "Cast", name+"_output_cast", []string{internal}, []string{name}, onnx.AttrInt("to", int64(onnx.Float)))
		}
	}
	for _, n := range g.GetNode() {
		for i, o := range n.GetOutput() {
			if r, ok := rename[o]; ok {
				n.Output[i] = r
			}
		}
		for i, in := range n.GetInput() {
			if r, ok := rename[in]; ok {
				n.Input[i] = r
			}
		}
	}

	// Data values (initializers, Constants): which precisions their
	// consumers want.
	type want struct{ half, float bool }
	data := map[string]*want{}
	isData := func(v string) bool {
		if _, ok := ix.Inits[v]; ok && !ix.Declared[v] {
			return true
		}
		p := ix.Producer[v]
		return p != nil && isConst(p)
	}
	wantsHalf := func(n *onnxpb.NodeProto, i int) bool {
		if blocked(n) {
			return false
		}
		if s, ok := contrib[n]; ok {
			return fp16SlotIs(s.in, i, 'T')
		}
		for _, fi := range fp16FloatInputs[n.GetOpType()] {
			if fi == i {
				return false
			}
		}
		return true
	}
	for _, n := range g.GetNode() {
		if isConst(n) {
			continue
		}
		for i, in := range n.GetInput() {
			if in == "" || types[in] != onnx.Float || !isData(in) {
				continue
			}
			w := data[in]
			if w == nil {
				w = &want{}
				data[in] = w
			}
			if wantsHalf(n, i) {
				w.half = true
			} else {
				w.float = true
			}
		}
	}
	halfData := map[string]string{} // data value → its float16 version
	for v, w := range data {
		if !w.half {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if t, ok := ix.Inits[v]; ok {
			if !w.float {
				ix.collect(int64(3 * len(t.GetRawData()))) // the old bytes and the decoded copy
				if err := tensorToFP16(t); err != nil {
					return err
				}
				halfData[v] = v
				continue
			}
			cp := &onnxpb.TensorProto{Name: ptr(ix.Unique(v + "_fp16")), Dims: t.GetDims(), DataType: t.DataType, RawData: t.GetRawData(), FloatData: t.GetFloatData()}
			if err := tensorToFP16(cp); err != nil {
				return err
			}
			e.inits = append(e.inits, cp)
			halfData[v] = cp.GetName()
			continue
		}
		p := ix.Producer[v]
		if !w.float {
			if err := tensorToFP16(onnx.Attr(p, "value").GetT()); err != nil {
				return err
			}
			halfData[v] = v
			continue
		}
		cp := &onnxpb.TensorProto{Dims: onnx.Attr(p, "value").GetT().GetDims(), DataType: onnx.Attr(p, "value").GetT().DataType,
			RawData: onnx.Attr(p, "value").GetT().GetRawData(), FloatData: onnx.Attr(p, "value").GetT().GetFloatData()}
		if err := tensorToFP16(cp); err != nil {
			return err
		}
		out := ix.Unique(v + "_fp16")
		e.node("", "Constant", out, nil, []string{out}, onnx.AttrTensor("value", cp))
		halfData[v] = out
	}

	// Rewire every float input to the precision its consumer runs in.
	casts := map[string]string{} // value + target → cast output
	castTo := func(v string, to onnx.DataType) string {
		key := v + "\x00" + to.String()
		if c, ok := casts[key]; ok {
			return c
		}
		suffix := "_to_fp32"
		if to == onnx.Float16 {
			suffix = "_to_fp16"
		}
		out := ix.Unique(v + suffix)
		e.node("", "Cast", v+suffix, []string{v}, []string{out}, onnx.AttrInt("to", int64(to)))
		casts[key] = out
		return out
	}
	origType := func(v string) onnx.DataType {
		for orig, r := range rename {
			if r == v {
				return types[orig]
			}
		}
		return types[v]
	}
	for _, n := range g.GetNode() {
		if isConst(n) {
			continue
		}
		conv := !blocked(n)
		for i, in := range n.GetInput() {
			if in == "" || origType(in) != onnx.Float {
				continue
			}
			wantHalf := wantsHalf(n, i)
			if isData(in) {
				if wantHalf {
					n.Input[i] = halfData[in]
				}
				continue
			}
			switch {
			case wantHalf && !half[in]:
				n.Input[i] = castTo(in, onnx.Float16)
			case !wantHalf && half[in]:
				n.Input[i] = castTo(in, onnx.Float)
			}
		}
		if conv {
			convertNodeAttrs(n)
			if touchesType(n, types, onnx.Float) && n.GetOpType() != "Shape" && n.GetOpType() != "Size" {
				st.t.set(n.GetName(), PrecFP16)
			}
		} else if touchesType(n, types, onnx.Float) && !isConst(n) {
			switch {
			case blockOps[n.GetOpType()] || foreign(n):
				st.t.keep(n, "op type kept in fp32")
			case st.spec.EP == "cpu" && !CPUHasFP16Kernel(n.GetOpType()):
				st.t.keep(n, "no float16 kernel on the CPU execution provider")
			case island[n]:
				st.t.keep(n, "between float32 operators on the CPU execution provider (float16 would add a Cast on each side)")
			default:
				st.t.keep(n, "excluded")
			}
		}
	}
	g.Node = append(g.Node, e.nodes...)
	g.Initializer = append(g.Initializer, e.inits...)
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
		if half[vi.GetName()] && elemTypeOf(vi) == onnx.Float {
			setElemType(vi, onnx.Float16)
		}
	}
	// Float32-only outputs of converted contrib nodes are declared, so
	// that type inference, which gives a contrib operator's outputs its
	// first input's type, does not take them for float16.
	for _, n := range g.GetNode() {
		s, ok := contrib[n]
		if !ok || blocked(n) {
			continue
		}
		for i, o := range n.GetOutput() {
			if o != "" && !declared[o] && types[o] == onnx.Float && fp16SlotIs(s.out, i, 'U') {
				declared[o] = true
				g.ValueInfo = append(g.ValueInfo, &onnxpb.ValueInfoProto{Name: ptr(o), Type: &onnxpb.TypeProto{
					Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: ptr(int32(onnx.Float))}}}})
			}
		}
	}
	collapseCasts(g)
	pruneUnused(g)
	ix.Rebuild()
	return e.err
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
