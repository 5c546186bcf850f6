package quant

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/quantscope/quantscope/internal/bytefmt"
	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// Version is the quantizer version. It is part of every variant's cache
// key: bump it whenever a transform's output changes.
const Version = "quant/6"

// Precision is the arithmetic a node runs in.
type Precision string

// Precisions a node can be reported in.
const (
	PrecFP32 Precision = "fp32"
	PrecFP16 Precision = "fp16"
	PrecInt8 Precision = "int8"
	PrecInt4 Precision = "int4"
	// PrecNone marks nodes without float data (shape arithmetic, integer
	// indexing): they are neither converted nor kept.
	PrecNone Precision = "none"
)

// reportPrecisions is the column order of reports.
var reportPrecisions = []Precision{PrecFP32, PrecFP16, PrecInt8, PrecInt4, PrecNone}

// ErrNothingConverted is returned when a transform found nothing to
// convert: the variant would be the FP32 model under another name, and
// its numbers would be a lie.
var ErrNothingConverted = errors.New("nothing was converted")

// Report describes what a transform did. Node counts are per node of the
// source model (Constant nodes, which only hold data, are left out), by the
// precision the node runs in afterwards; byte counts are of the tensors
// (initializers and Constant values) of the source and the result.
type Report struct {
	Spec             string `json:"spec"`
	QuantizerVersion string `json:"quantizer_version"`
	// Ops lists, per op type of the source model, how many of its nodes
	// run in each precision. Sorted by op type.
	Ops []OpPrecision `json:"ops"`
	// NodesConverted counts source nodes now running in a lower
	// precision; NodesKept counts the source nodes with float data left
	// in float32.
	NodesConverted int `json:"nodes_converted"`
	NodesKept      int `json:"nodes_kept"`
	// NodesStoredFP16 counts the nodes (fp16:storage) whose weights are
	// stored in float16 and cast to float32 once, when the session starts:
	// they compute in float32 and are among NodesKept.
	NodesStoredFP16 int `json:"nodes_fp16_storage,omitempty"`
	// Kept lists the nodes the transform could have converted and did
	// not, and why (attention activation×activation MatMuls, exclusions,
	// unsupported shapes).
	Kept []KeptNode `json:"kept,omitempty"`
	// Layers lists each quantized layer and the operator form it took
	// (dynamic int8, calibrated QDQ, ConvInteger, MatMulNBits).
	Layers []LayerForm `json:"layers,omitempty"`
	// Rewrites notes graph rewrites done on the way (Gemm to MatMul, a
	// patch-embedding Conv to a MatMul over patches).
	Rewrites []string `json:"rewrites,omitempty"`
	// NodesBefore and NodesAfter count the graphs' nodes.
	NodesBefore int `json:"nodes_before"`
	NodesAfter  int `json:"nodes_after"`
	// BytesBefore and BytesAfter are tensor data bytes; FileBytesBefore
	// and FileBytesAfter the model files on disk with their external
	// data (0 when no file was involved).
	BytesBefore     int64 `json:"bytes_before"`
	BytesAfter      int64 `json:"bytes_after"`
	FileBytesBefore int64 `json:"file_bytes_before,omitempty"`
	FileBytesAfter  int64 `json:"file_bytes_after,omitempty"`
	// WeightBytes splits BytesAfter by the bits a stored weight value
	// takes: 4 (packed MatMulNBits weights and zero points, INT4/UINT4),
	// 8, 16 and 32; everything else (int64 shapes, float64) is under 0.
	WeightBytes map[int]int64 `json:"weight_bytes_by_bits"`
	// Calibration describes the calibration run of int8-static.
	Calibration *CalibrationInfo `json:"calibration,omitempty"`
	Warnings    []string         `json:"warnings,omitempty"`
	// Elapsed is how long the transform took (calibration included).
	Elapsed time.Duration `json:"elapsed_ns"`
}

// OpPrecision counts the nodes of one op type by precision.
type OpPrecision struct {
	Op    string            `json:"op"`
	Nodes map[Precision]int `json:"nodes"`
}

// KeptNode is a node left in float, and why.
type KeptNode struct {
	Node   string `json:"node"`
	Op     string `json:"op"`
	Reason string `json:"reason"`
}

// CalibrationInfo describes a calibration run.
type CalibrationInfo struct {
	Method     CalibMethod `json:"method"`
	Percentile float64     `json:"percentile,omitempty"`
	Samples    int         `json:"samples"`
	Source     string      `json:"source"` // "synthetic (seed N)" or the image folder
	Tensors    int         `json:"tensors"`
	Skipped    []string    `json:"skipped,omitempty"` // unreadable images
}

// WeightFraction returns the fraction of BytesAfter stored at bits bits
// per value (4, 8, 16, 32; 0 for the rest).
func (r *Report) WeightFraction(bits int) float64 {
	var total int64
	for _, b := range r.WeightBytes {
		total += b
	}
	if total == 0 {
		return 0
	}
	return float64(r.WeightBytes[bits]) / float64(total)
}

// Count returns how many nodes of op type op run in precision p ("" op:
// all op types).
func (r *Report) Count(op string, p Precision) int {
	n := 0
	for _, o := range r.Ops {
		if op == "" || o.Op == op {
			n += o.Nodes[p]
		}
	}
	return n
}

// Coverage is the fraction of the weight bytes stored below 32 bits (4, 8
// and 16 against 4, 8, 16 and 32; other tensors left out), and whether
// the report has weight bytes to tell.
func (r *Report) Coverage() (float64, bool) {
	if r == nil {
		return 0, false
	}
	var low, all int64
	for bits, n := range r.WeightBytes {
		switch bits {
		case 4, 8, 16:
			low += n
			all += n
		case 32:
			all += n
		}
	}
	if all <= 0 {
		return 0, false
	}
	return float64(low) / float64(all), true
}

// Converted counts the source nodes of op type op that run below fp32.
func (r *Report) Converted(op string) int {
	if r == nil {
		return 0
	}
	return r.Count(op, PrecFP16) + r.Count(op, PrecInt8) + r.Count(op, PrecInt4)
}

// ConvIntegers counts the layers that run as ConvInteger (dynamic int8
// convolutions, slow on ONNX Runtime's CPU EP). Reports list each layer's
// form; for a report written before they did (no layers), the converted
// Convs that were not patch embeddings rewritten as a MatMul (the notes
// patchNote writes) are the ConvIntegers, as that quantizer made them.
func (r *Report) ConvIntegers() int {
	if r == nil {
		return 0
	}
	if len(r.Layers) > 0 {
		n := 0
		for _, l := range r.Layers {
			if l.Form == FormConvInteger {
				n++
			}
		}
		return n
	}
	n := r.Converted("Conv")
	for _, w := range r.Rewrites {
		if isPatchNote(w) {
			n--
		}
	}
	return max(n, 0)
}

// patchNote is the rewrite note of a patch-embedding Conv turned into a
// MatMul over patches.
func patchNote(node string, kh, kw int) string {
	return fmt.Sprintf("Conv %s (%dx%d kernel = stride) %s", node, kh, kw, patchNoteTail)
}

const patchNoteTail = "rewritten as a MatMul over patches"

// isPatchNote reports whether a rewrite note is patchNote's.
func isPatchNote(note string) bool {
	return strings.HasPrefix(note, "Conv ") && strings.HasSuffix(note, patchNoteTail)
}

// Write prints the report as aligned text: the node table, the weight
// bits, the sizes, then kept nodes and notes.
func (r *Report) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "precision %s (quantizer %s), %d nodes converted, %d kept in fp32\n",
		r.Spec, r.QuantizerVersion, r.NodesConverted, r.NodesKept)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "op\t")
	cols := r.usedPrecisions()
	for _, p := range cols {
		fmt.Fprintf(tw, "%s\t", p)
	}
	fmt.Fprintln(tw)
	for _, o := range r.Ops {
		fmt.Fprintf(tw, "%s\t", o.Op)
		for _, p := range cols {
			if n := o.Nodes[p]; n > 0 {
				fmt.Fprintf(tw, "%d\t", n)
			} else {
				fmt.Fprint(tw, "·\t")
			}
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprint(&b, "weights:")
	for _, bits := range []int{4, 8, 16, 32, 0} {
		if r.WeightBytes[bits] == 0 && bits != 32 {
			continue
		}
		label := fmt.Sprintf("%d-bit", bits)
		if bits == 0 {
			label = "other"
		}
		fmt.Fprintf(&b, " %s %.1f%% (%s)", label, 100*r.WeightFraction(bits), bytefmt.Format(r.WeightBytes[bits]))
	}
	fmt.Fprintln(&b)
	fmt.Fprintf(&b, "tensor bytes: %s → %s (%.3f×)\n", bytefmt.Format(r.BytesBefore), bytefmt.Format(r.BytesAfter), ratio(r.BytesAfter, r.BytesBefore))
	if r.FileBytesBefore > 0 && r.FileBytesAfter > 0 {
		fmt.Fprintf(&b, "file size:    %s → %s (%.3f×)\n", bytefmt.Format(r.FileBytesBefore), bytefmt.Format(r.FileBytesAfter), ratio(r.FileBytesAfter, r.FileBytesBefore))
	}
	fmt.Fprintf(&b, "nodes: %d → %d\n", r.NodesBefore, r.NodesAfter)
	if c := r.Calibration; c != nil {
		fmt.Fprintf(&b, "calibration: %s", c.Method)
		if c.Method == CalibPercentile {
			fmt.Fprintf(&b, " %g", c.Percentile)
		}
		fmt.Fprintf(&b, ", %d samples from %s, %d tensors\n", c.Samples, c.Source, c.Tensors)
	}
	for _, rw := range r.Rewrites {
		fmt.Fprintf(&b, "rewrite: %s\n", rw)
	}
	if len(r.Layers) > 0 {
		forms := map[Form]int{}
		var order []Form
		for _, l := range r.Layers {
			if forms[l.Form] == 0 {
				order = append(order, l.Form)
			}
			forms[l.Form]++
		}
		parts := make([]string, len(order))
		for i, f := range order {
			parts[i] = fmt.Sprintf("%d × %s", forms[f], f)
		}
		fmt.Fprintf(&b, "layer forms: %s\n", strings.Join(parts, ", "))
	}
	if len(r.Kept) > 0 {
		reasons := map[string]int{}
		var order []string
		for _, k := range r.Kept {
			key := k.Op + ": " + k.Reason
			if reasons[key] == 0 {
				order = append(order, key)
			}
			reasons[key]++
		}
		for _, key := range order {
			fmt.Fprintf(&b, "kept in fp32: %d × %s\n", reasons[key], key)
		}
	}
	for _, wmsg := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", wmsg)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) usedPrecisions() []Precision {
	var out []Precision
	for _, p := range reportPrecisions {
		for _, o := range r.Ops {
			if o.Nodes[p] > 0 {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// tracker records the precision of every source node through a
// transform. Nodes are keyed by name; prepare names the unnamed ones.
type tracker struct {
	order []string             // source node names, in source order
	op    map[string]string    // node → op key
	prec  map[string]Precision // node → precision now
	kept  []KeptNode
	notes []string
	// stored are the nodes reading a weight fp16:storage stored in
	// float16 (they compute in float32).
	stored map[string]bool
	forms  map[string]Form
}

// Form is the operator form a quantized layer took.
type Form string

// The forms of quantized layers.
const (
	// FormDynamic is com.microsoft DynamicQuantizeMatMul: int8 weights,
	// activations quantized at run time.
	FormDynamic Form = "DynamicQuantizeMatMul (dynamic int8)"
	// FormQDQ is a MatMul between QuantizeLinear/DequantizeLinear pairs
	// with calibrated scales (ONNX Runtime runs MatMulIntegerToFloat).
	FormQDQ Form = "QDQ MatMul (calibrated int8)"
	// FormQDQConv is a Conv between QuantizeLinear/DequantizeLinear pairs
	// with calibrated scales (ONNX Runtime runs QLinearConv).
	FormQDQConv Form = "QDQ Conv (calibrated int8, QLinearConv)"
	// FormConvInteger is ConvInteger with activations quantized at run
	// time: slow on ONNX Runtime's CPU EP.
	FormConvInteger Form = "ConvInteger (dynamic int8)"
	// FormNBits is com.microsoft MatMulNBits (int4 weights).
	FormNBits Form = "MatMulNBits (int4 weights)"
)

// LayerForm says which form one quantized layer took.
type LayerForm struct {
	Node string `json:"node"`
	Op   string `json:"op"`
	Form Form   `json:"form"`
}

// form records the form a source node's layer took.
func (t *tracker) form(name string, f Form) {
	if _, ok := t.prec[name]; ok {
		t.forms[name] = f
	}
}

// newTracker names unnamed nodes of g (uniquely) and classifies every
// non-Constant node: fp32 when it touches float32 data, none otherwise.
func newTracker(ix *graphIndex, types map[string]onnx.DataType) *tracker {
	t := &tracker{op: map[string]string{}, prec: map[string]Precision{}, stored: map[string]bool{}, forms: map[string]Form{}}
	for _, n := range ix.g.GetNode() {
		if n.GetName() == "" || t.op[n.GetName()] != "" {
			n.Name = ptr(ix.Unique(n.GetOpType()))
		}
		if n.GetOpType() == "Constant" && onnx.IsDefaultDomain(n) {
			continue
		}
		t.order = append(t.order, n.GetName())
		t.op[n.GetName()] = opKey(n)
		t.prec[n.GetName()] = PrecNone
		if touchesType(n, types, onnx.Float) && n.GetOpType() != "Shape" && n.GetOpType() != "Size" {
			t.prec[n.GetName()] = PrecFP32
		}
	}
	return t
}

// touchesType reports whether any input or output of n has type dt.
func touchesType(n *onnxpb.NodeProto, types map[string]onnx.DataType, dt onnx.DataType) bool {
	for _, list := range [][]string{n.GetInput(), n.GetOutput()} {
		for _, v := range list {
			if v != "" && types[v] == dt {
				return true
			}
		}
	}
	return false
}

// set records that the source node name now runs in p.
func (t *tracker) set(name string, p Precision) {
	if _, ok := t.prec[name]; ok {
		t.prec[name] = p
	}
}

// keep records why a candidate node stays in float.
func (t *tracker) keep(n *onnxpb.NodeProto, reason string) {
	switch t.prec[n.GetName()] {
	case PrecFP16, PrecInt8, PrecInt4:
		return // converted by an earlier pass (int8's QDQ convolutions)
	}
	for _, k := range t.kept {
		if k.Node == n.GetName() && n.GetName() != "" {
			return // an earlier pass said why (int8:keep-first's stem Conv)
		}
	}
	t.kept = append(t.kept, KeptNode{Node: n.GetName(), Op: opKey(n), Reason: reason})
}

// note records a rewrite.
func (t *tracker) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

// report builds the Report of a transform whose result is out; the
// caller fills in the source's figures.
func (t *tracker) report(spec Spec, out *onnxpb.GraphProto) *Report {
	r := &Report{
		Spec:             spec.String(),
		QuantizerVersion: Version,
		Kept:             t.kept,
		Rewrites:         t.notes,
		NodesAfter:       len(out.GetNode()),
		NodesStoredFP16:  len(t.stored),
	}
	byOp := map[string]map[Precision]int{}
	for _, name := range t.order {
		if f, ok := t.forms[name]; ok {
			r.Layers = append(r.Layers, LayerForm{Node: name, Op: t.op[name], Form: f})
		}
		op, p := t.op[name], t.prec[name]
		if byOp[op] == nil {
			byOp[op] = map[Precision]int{}
		}
		byOp[op][p]++
		switch p {
		case PrecFP32:
			r.NodesKept++
		case PrecFP16, PrecInt8, PrecInt4:
			r.NodesConverted++
		}
	}
	ops := make([]string, 0, len(byOp))
	for op := range byOp {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	for _, op := range ops {
		r.Ops = append(r.Ops, OpPrecision{Op: op, Nodes: byOp[op]})
	}
	r.BytesAfter, r.WeightBytes = tensorBytes(out)
	return r
}

// tensorBytes sums the data bytes of g's initializers and Constant values
// and splits them by bits per stored value.
func tensorBytes(g *onnxpb.GraphProto) (int64, map[int]int64) {
	fourBit := map[string]bool{}
	for _, n := range g.GetNode() {
		if n.GetOpType() == "MatMulNBits" && onnx.AttrIntOr(n, "bits", 4) == 4 {
			for i, in := range n.GetInput() {
				if i == 1 || i == 3 {
					fourBit[in] = true
				}
			}
		}
	}
	by := map[int]int64{}
	var total int64
	add := func(name string, t *onnxpb.TensorProto) {
		n, err := onnx.Numel(t.GetDims())
		if err != nil {
			return
		}
		dt := onnx.DataTypeOf(t)
		size, err := dt.ByteSize(n)
		if err != nil {
			return
		}
		bits := dt.Bits()
		switch {
		case fourBit[name] && dt == onnx.Uint8:
			bits = 4
		case bits != 4 && bits != 8 && bits != 16 && bits != 32:
			bits = 0
		case dt == onnx.Int64 || dt == onnx.Bool:
			bits = 0
		}
		by[bits] += size
		total += size
	}
	for _, t := range g.GetInitializer() {
		add(t.GetName(), t)
	}
	for _, n := range g.GetNode() {
		if n.GetOpType() == "Constant" {
			if a := onnx.Attr(n, "value"); a != nil && a.GetT() != nil && len(n.GetOutput()) > 0 {
				add(n.GetOutput()[0], a.GetT())
			}
		}
	}
	return total, by
}
