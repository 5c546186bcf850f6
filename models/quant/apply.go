package quant

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// Options are the settings of a transform that are not part of the
// precision spec: which nodes to leave alone, and how to calibrate.
type Options struct {
	// Exclude names nodes (or the values they produce) kept in float32.
	Exclude []string
	// Calibration configures int8-static; other kinds ignore it.
	Calibration Calibration
	// Warn receives warnings as they happen (unreadable calibration
	// images, ...); they also go into the Report. May be nil.
	Warn func(msg string)
}

// state is what a transform works on.
type state struct {
	m       *onnx.Model
	spec    Spec
	opts    Options
	ix      *graphIndex
	types   map[string]onnx.DataType
	t       *tracker
	exclude map[string]bool
	calib   *CalibrationInfo
	warns   []string
	// convsOnly restricts toInt8Static to convolutions (int8 on a model
	// with convolutions: QDQ Convs, dynamic int8 for the rest).
	convsOnly bool
}

func (st *state) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	st.warns = append(st.warns, msg)
	if st.opts.Warn != nil {
		st.opts.Warn(msg)
	}
}

// Apply converts m to the precision spec in place and reports what it
// did. m must hold its tensors (not loaded with SkipExternalData), except
// for fp32, which changes nothing and returns a report of the model as it
// is.
//
// A spec that converts nothing on this model returns the report and an
// error matching ErrNothingConverted: the model is then the FP32 model and
// must not be measured as a variant. The result passes onnx.Check; a
// transform that would produce a graph ONNX Runtime rejects is an error.
// On error m may be partly converted: Clone it first to keep the original.
func Apply(ctx context.Context, m *onnx.Model, spec Spec, opts Options) (*Report, error) {
	if m == nil || m.Graph() == nil {
		return nil, errors.New("quantize: no model")
	}
	if !slices.Contains(Kinds, spec.Kind) {
		return nil, fmt.Errorf("quantize: %w: unknown precision %q", ErrSpec, spec.Kind)
	}
	start := time.Now()
	g := m.Graph()
	if err := sortedGraph(g); err != nil {
		return nil, fmt.Errorf("quantize to %s: %w", spec, err)
	}
	if spec.Quantizes() {
		if err := checkInline(g); err != nil {
			return nil, fmt.Errorf("quantize to %s: %w", spec, err)
		}
		if q := quantizedOps(g); q != "" {
			return nil, fmt.Errorf("quantize to %s: %w (%s): convert the FP32 model instead", spec, ErrAlreadyQuantized, q)
		}
	}
	// Weights computed from constants (Constant nodes, ConstantOfShape,
	// Identity and Cast chains) become initializers first, so every
	// transform finds them; the byte counts below are of the folded graph.
	folded := 0
	if spec.Quantizes() {
		var err error
		if folded, err = onnx.FoldWeights(ctx, g); err != nil {
			return nil, fmt.Errorf("quantize to %s: %w", spec, err)
		}
	}
	st := &state{m: m, spec: spec, opts: opts, ix: newGraphIndex(g), exclude: map[string]bool{}}
	st.types = inferTypes(g)
	st.t = newTracker(st.ix, st.types)
	if folded > 0 {
		st.t.note("folded %d constant subgraphs (Constant, ConstantOfShape, Identity/Cast/Reshape chains) into initializers", folded)
	}
	for _, name := range opts.Exclude {
		st.exclude[name] = true
	}
	plan, err := resolveLayers(m, spec)
	if err != nil {
		return nil, fmt.Errorf("quantize to %s: %w", spec, err)
	}
	if plan != nil {
		for _, o := range plan.exclusions(spec.Kind) {
			st.exclude[o] = true
		}
	}
	before := &onnxpb.GraphProto{Node: slices.Clone(g.GetNode()), Initializer: slices.Clone(g.GetInitializer())}
	beforeBytes, _ := tensorBytes(before)
	beforeNodes := len(g.GetNode())
	before = nil

	switch spec.Kind {
	case FP32:
	case FP16:
		if spec.Storage {
			err = toFP16Storage(ctx, st)
		} else {
			err = toFP16(ctx, st)
		}
	case Int8:
		err = toInt8(ctx, st)
	case Int8Static:
		err = toInt8Static(ctx, st)
	case Int4:
		err = toInt4(ctx, st)
	}
	if err == nil && plan != nil {
		err = plan.applyOverrides(ctx, st)
	}
	if err != nil {
		return nil, fmt.Errorf("quantize to %s: %w", spec, err)
	}
	if spec.Quantizes() {
		fixOpsets(m)
		stampMetadata(m, spec)
		if err := onnx.Check(m); err != nil {
			return nil, fmt.Errorf("quantize to %s: result fails the checker: %w", spec, err)
		}
	}
	r := st.t.report(spec, g)
	r.BytesBefore, r.NodesBefore = beforeBytes, beforeNodes
	r.Calibration = st.calib
	r.Warnings = st.warns
	r.Elapsed = time.Since(start)
	if spec.Quantizes() {
		if err := verifyReport(g, r); err != nil {
			return r, fmt.Errorf("quantize to %s: %w", spec, err)
		}
		if r.NodesConverted == 0 && r.NodesStoredFP16 == 0 {
			return r, fmt.Errorf("quantize to %s: %w: the model has no node this precision converts (%d kept in fp32)", spec, ErrNothingConverted, r.NodesKept)
		}
	}
	return r, nil
}

// checkInline fails on tensors whose bytes were not loaded.
func checkInline(g *onnxpb.GraphProto) error {
	for _, t := range g.GetInitializer() {
		if onnx.IsExternal(t) {
			return fmt.Errorf("initializer %s: %w", t.GetName(), onnx.ErrExternalNotLoaded)
		}
	}
	return nil
}

// fixOpsets imports com.microsoft (version 1) when a node uses it. The
// default domain's opset is never raised: that would change the meaning of
// the model's other operators (Squeeze's axes, Softmax's axis...); the
// transforms emit only operators the model's opset has.
func fixOpsets(m *onnx.Model) {
	usesMS := false
	for _, n := range m.Graph().GetNode() {
		if n.GetDomain() == onnx.MicrosoftDomain {
			usesMS = true
		}
	}
	if usesMS && m.Opset(onnx.MicrosoftDomain) == 0 {
		m.Proto.OpsetImport = append(m.Proto.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: ptr(onnx.MicrosoftDomain), Version: ptr(int64(1))})
	}
}

// Metadata keys stamped on every variant.
const (
	MetaPrecision = "quantscope.precision"
	MetaVersion   = "quantscope.quantizer"
)

// stampMetadata records the spec and quantizer version in the model's
// metadata, replacing earlier stamps.
func stampMetadata(m *onnx.Model, spec Spec) {
	set := func(k, v string) {
		for _, e := range m.Proto.GetMetadataProps() {
			if e.GetKey() == k {
				e.Value = ptr(v)
				return
			}
		}
		m.Proto.MetadataProps = append(m.Proto.MetadataProps, &onnxpb.StringStringEntryProto{Key: ptr(k), Value: ptr(v)})
	}
	set(MetaPrecision, spec.String())
	set(MetaVersion, Version)
}

// verifyReport cross-checks the reported precisions against the operators
// actually in the graph, so a report can never claim a precision the
// model does not run: the int4 count must match the 4-bit MatMulNBits
// nodes and the int8 count the int8 kernels and QDQ-fed operators.
// ErrAlreadyQuantized is returned for a model that already holds quantized
// operators: quantizing a variant again compounds errors and mislabels
// what runs.
var ErrAlreadyQuantized = errors.New("the model is already quantized")

// quantizedOps lists the quantized operators in g ("3 × MatMulNBits,
// 2 × DequantizeLinear"), or "" for none.
func quantizedOps(g *onnxpb.GraphProto) string {
	counts := map[string]int{}
	for _, n := range g.GetNode() {
		switch op := n.GetOpType(); op {
		case "MatMulNBits", "DynamicQuantizeMatMul", "MatMulInteger", "ConvInteger", "MatMulIntegerToFloat",
			"QLinearMatMul", "QLinearConv", "QGemm", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear":
			counts[op]++
		}
	}
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d × %s", counts[op], op))
	}
	return strings.Join(parts, ", ")
}

func verifyReport(g *onnxpb.GraphProto, r *Report) error {
	var int4, int8 int
	dqInt8 := map[string]bool{} // outputs of DequantizeLinear of int8/uint8 constants
	inits := map[string]onnx.DataType{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = onnx.DataTypeOf(t)
	}
	for _, n := range g.GetNode() {
		if n.GetOpType() == "DequantizeLinear" && len(n.GetInput()) > 0 {
			if dt := inits[n.GetInput()[0]]; dt == onnx.Int8 || dt == onnx.Uint8 {
				dqInt8[n.GetOutput()[0]] = true
			}
		}
	}
	for _, n := range g.GetNode() {
		switch n.GetOpType() {
		case "MatMulNBits":
			if onnx.AttrIntOr(n, "bits", 4) == 4 {
				int4++
			}
		case "DynamicQuantizeMatMul", "MatMulInteger", "ConvInteger", "MatMulIntegerToFloat", "QLinearMatMul", "QLinearConv", "QGemm":
			int8++
		case "MatMul", "Gemm", "Conv":
			if len(n.GetInput()) > 1 && dqInt8[n.GetInput()[1]] {
				int8++
			}
		}
	}
	if got := r.Count("", PrecInt4); got != int4 {
		return fmt.Errorf("report claims %d int4 nodes, the graph has %d 4-bit MatMulNBits", got, int4)
	}
	if got := r.Count("", PrecInt8); got != int8 {
		return fmt.Errorf("report claims %d int8 nodes, the graph has %d int8 kernels", got, int8)
	}
	return nil
}

// QuantizeFile loads the model at src, converts it to spec and writes the
// result to dst atomically, with external data when the source had any or
// the result is large (the data file is dst's name plus ".data"). The
// report includes both files' sizes. On ErrNothingConverted nothing is
// written.
func QuantizeFile(ctx context.Context, src, dst string, spec Spec, opts Options) (*Report, error) {
	if !spec.Quantizes() {
		return nil, fmt.Errorf("quantize %s: fp32 is the source model, not a variant", src)
	}
	if err := CheckOutput(dst, ReplaceAny, src); err != nil {
		return nil, fmt.Errorf("quantize %s: %w", src, err)
	}
	srcSize, err := onnx.FilesSize(src)
	if err != nil {
		return nil, fmt.Errorf("quantize %s: %w", src, err)
	}
	external, err := onnx.HasExternalData(src)
	if err != nil {
		return nil, fmt.Errorf("quantize %s: %w", src, err)
	}
	m, err := onnx.Load(src)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	r, err := Apply(ctx, m, spec, opts)
	if err != nil {
		return r, err
	}
	if r.BytesAfter > 1<<30 {
		external = true
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return r, fmt.Errorf("quantize %s: %w", src, err)
	}
	if err := onnx.Save(m, dst, onnx.SaveOptions{ExternalData: external}); err != nil {
		return r, fmt.Errorf("quantize %s: write %s: %w", src, dst, err)
	}
	r.FileBytesBefore = srcSize
	if r.FileBytesAfter, err = onnx.FilesSize(dst); err != nil {
		return r, fmt.Errorf("quantize %s: %w", src, err)
	}
	return r, nil
}

// ExcludeList splits comma-separated node names (as --exclude takes
// them) into a list, dropping blanks.
func ExcludeList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// ErrOverwritesInput is wrapped by CheckOutput when writing a variant would
// replace a file of the model it is made from.
var ErrOverwritesInput = errors.New("the output is the input model")

// ErrNotVariant is wrapped by CheckOutput when the output exists and is
// not a variant quantscope wrote.
var ErrNotVariant = errors.New("the output exists and is not a variant quantscope wrote")

// Replace says which existing file CheckOutput lets a variant replace.
type Replace bool

const (
	// ReplaceVariants lets a variant replace only a variant quantscope
	// wrote (its metadata carries MetaVersion): anything else is the
	// user's file.
	ReplaceVariants Replace = false
	// ReplaceAny lets it replace any file but a source model (--force).
	ReplaceAny Replace = true
)

// CheckOutput says whether a variant may be written to dst. Writing it
// must never replace a file of the models at srcs — the .onnx file or its
// external data — however dst names it: the same path, ./path, another
// path through a symlink, a hard link (compared by device and inode).
// Nothing overrides that. With ReplaceVariants, an existing dst must also
// be a variant quantscope wrote.
func CheckOutput(dst string, replace Replace, srcs ...string) error {
	type input struct{ path, what string }
	var ins []input
	for _, src := range srcs {
		files, err := onnx.ModelFiles(src)
		if err != nil {
			files = []string{src}
		}
		for i, f := range files {
			what := "the input model"
			if i > 0 {
				what = "the external data of " + src
			}
			ins = append(ins, input{f, what})
		}
	}
	for _, out := range []string{dst, dst + ".data"} { // what Save writes
		ost, err := os.Stat(out)
		if err != nil {
			continue
		}
		for _, in := range ins {
			if ist, err := os.Stat(in.path); err == nil && os.SameFile(ost, ist) {
				return fmt.Errorf("write %s: %w: %s is the same file on disk as %s, %s; choose another output path",
					dst, ErrOverwritesInput, out, in.path, in.what)
			}
		}
	}
	if replace == ReplaceAny {
		return nil
	}
	st, err := os.Stat(dst)
	if err != nil {
		return nil
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("write %s: it exists and is not a regular file", dst)
	}
	m, err := onnx.LoadWith(dst, onnx.LoadOptions{SkipExternalData: true})
	if err == nil {
		for _, e := range m.Proto.GetMetadataProps() {
			if e.GetKey() == MetaVersion {
				return nil
			}
		}
	}
	return fmt.Errorf("write %s: %w (a model or file of yours?); pass --force to replace it, or choose another output path", dst, ErrNotVariant)
}
