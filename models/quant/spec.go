package quant

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Kind is a precision family.
type Kind string

// The precisions quantscope knows.
const (
	FP32       Kind = "fp32"        // the original model
	FP16       Kind = "fp16"        // float16 weights and activations
	Int8       Kind = "int8"        // dynamic int8: int8 weights, activations quantized at run time
	Int8Static Kind = "int8-static" // QDQ int8 with calibrated activation ranges
	Int4       Kind = "int4"        // weight-only blockwise int4 (MatMulNBits)
)

// Kinds lists every Kind in the order the study shows them.
var Kinds = []Kind{FP32, FP16, Int8, Int8Static, Int4}

// CalibMethod is how int8-static turns observed activations into ranges.
type CalibMethod string

// Calibration methods.
const (
	CalibMinMax     CalibMethod = "minmax"     // global minimum and maximum
	CalibPercentile CalibMethod = "percentile" // clip the tails at Spec.Percentile
	CalibEntropy    CalibMethod = "entropy"    // minimize KL divergence (TensorRT style)
)

// Defaults of the spec options.
const (
	DefaultPercentile   = 99.99
	DefaultCalibSamples = 32
	DefaultBlockSize    = 32
	// DefaultAccuracyLevel is MatMulNBits' accuracy_level when the spec
	// does not set one: 4 (int8 compute of A), ONNX Runtime's fast CPU
	// path.
	DefaultAccuracyLevel = 4
	maxCalibSamples      = 1 << 20
)

// Spec is a parsed precision spec string such as "int4:block=64,asym".
// The zero value of every option field is its default; Kind-specific
// fields are ignored by other kinds. Build one with ParseSpec.
type Spec struct {
	Kind Kind

	// fp16
	Mixed   bool     // keep LayerNormalization and Softmax in float32
	KeepOps []string // more op types kept in float32 (keep=A+B), with the fused operators that contain them
	// Storage (fp16:storage) stores the weights in float16 and computes in
	// float32: each weight is read through a Cast that ONNX Runtime folds
	// when the session starts. Half the file, FP32 speed on any EP.
	Storage bool
	// EP "cpu" (fp16:ep=cpu) keeps in float32 the operators ONNX Runtime's
	// CPU execution provider has no float16 kernel for, with Casts only
	// where float16 and float32 regions meet.
	EP string

	// int8 and int8-static
	PerTensor   bool // one weight scale per tensor instead of per output channel
	ReduceRange bool // 7-bit weights, for x86 CPUs without VNNI

	// int8
	ConvInteger bool // conv=integer: Convs other than patch embeddings as ConvInteger (slow on CPU)

	// int8, int8-static and int4
	KeepFirst bool // leave the patch embedding in float
	KeepLast  bool // leave the classifier head in float

	// int8-static
	Calib      CalibMethod // "" means percentile
	Percentile float64     // 0 means 99.99
	Samples    int         // calibration inputs; 0 means 32
	// Act forces the activation type: "u8" (asymmetric) or "s8"
	// (symmetric); "" picks per tensor: u8 around Convs (ONNX Runtime's
	// QLinearConv fast path), s8 elsewhere.
	Act string

	// int4
	Block         int  // 16, 32, 64 or 128; 0 means 32
	Asym          bool // asymmetric with packed zero points
	AccuracyLevel int  // MatMulNBits accuracy_level; 0 means the default (4), -1 means 0 (unset)

	// int8, int8-static and int4: layers that depart from Kind (keep=,
	// int8=, int4=; see layers.go).
	Layers LayerChoice
}

// ErrSpec is matched (errors.Is) by every ParseSpec error.
var ErrSpec = errors.New("invalid precision spec")

// ParseSpec parses a precision spec: a kind, then optionally a colon and
// comma-separated options, flags or key=value:
//
//	fp32
//	fp16[:mixed][,keep=Op+Op][,ep=cpu]
//	fp16:storage
//	int8[:per-tensor|per-channel][,reduce-range][,conv=integer|float][,keep-first][,keep-last]
//	int8-static[:calib=minmax|percentile|entropy][,percentile=P][,samples=N]
//	           [,per-tensor][,reduce-range][,act=u8|s8|auto][,keep-first][,keep-last]
//	int4[:block=16|32|64|128][,sym|asym][,accuracy_level=0..4][,keep-first][,keep-last]
//
// int8, int8-static and int4 also take per-layer choices: keep=A+B leaves
// layers (names or groups such as blocks.0, see Layers) in float32,
// int8=A+B puts layers of an int4 spec in dynamic int8, int4=A+B layers of
// an int8 spec in int4. A comma may stand for the colon
// ("int4,keep=blocks.0+head").
//
// Kinds and option names are case-insensitive; op type names are not.
func ParseSpec(s string) (Spec, error) {
	sp, err := parseSpec(s)
	if err != nil {
		return Spec{}, fmt.Errorf("%w %q: %w", ErrSpec, s, err)
	}
	return sp, nil
}

// MustParseSpec is ParseSpec for specs known to be valid (constants in
// code and tests); it panics on an invalid spec.
func MustParseSpec(s string) Spec {
	sp, err := ParseSpec(s)
	if err != nil {
		panic(err)
	}
	return sp
}

func parseSpec(s string) (Spec, error) {
	s = strings.TrimSpace(s)
	kindStr, opts, hasOpts := strings.Cut(s, ":")
	if !hasOpts && strings.Contains(kindStr, ",") {
		// "int4,keep=blocks.0+head": options after a comma read the same.
		kindStr, opts, hasOpts = strings.Cut(s, ",")
	}
	var sp Spec
	switch k := Kind(strings.ToLower(strings.TrimSpace(kindStr))); k {
	case FP32, FP16, Int8, Int8Static, Int4:
		sp.Kind = k
	case "":
		return sp, errors.New("empty precision")
	default:
		return sp, fmt.Errorf("unknown precision %q (want one of fp32, fp16, int8, int8-static, int4)", kindStr)
	}
	if hasOpts && strings.TrimSpace(opts) == "" {
		return sp, errors.New("empty option list after ':'")
	}
	seen := map[string]bool{}
	if hasOpts {
		for _, raw := range strings.Split(opts, ",") {
			key, val, hasVal := strings.Cut(strings.TrimSpace(raw), "=")
			key = strings.ToLower(strings.TrimSpace(key))
			val = strings.TrimSpace(val)
			if key == "" {
				return sp, errors.New("empty option")
			}
			group := optionGroup(key)
			if seen[group] {
				return sp, fmt.Errorf("option %q given twice or conflicts with another", key)
			}
			seen[group] = true
			if err := sp.setOption(key, val, hasVal); err != nil {
				return sp, err
			}
		}
	}
	if sp.Storage && (sp.Mixed || len(sp.KeepOps) > 0 || sp.EP != "") {
		return sp, errors.New("fp16:storage computes in float32: mixed, keep and ep do not apply to it")
	}
	return sp, nil
}

// optionGroup maps options that set the same thing to one name, so that
// contradictions ("sym,asym") are caught as duplicates.
func optionGroup(key string) string {
	switch key {
	case "sym", "asym":
		return "symmetry"
	case "per-tensor", "per-channel":
		return "granularity"
	case "accuracy_level", "accuracy-level":
		return "accuracy_level"
	}
	return key
}

// optionArgs is one option being set: its key and value, and the checks
// every setter shares.
type optionArgs struct {
	key, val string
	hasVal   bool
}

// flag checks that a flag option has no value.
func (a optionArgs) flag() error {
	if a.hasVal {
		return fmt.Errorf("option %q takes no value", a.key)
	}
	return nil
}

// need checks that a key=value option has a value.
func (a optionArgs) need() error {
	if !a.hasVal || a.val == "" {
		return fmt.Errorf("option %q needs a value (%s=...)", a.key, a.key)
	}
	return nil
}

// optionKinds says which kinds take each option.
var optionKinds = map[string][]Kind{
	"mixed": {FP16}, "keep": {FP16}, "storage": {FP16}, "ep": {FP16},
	"per-tensor": {Int8, Int8Static}, "per-channel": {Int8, Int8Static}, "reduce-range": {Int8, Int8Static},
	"keep-first": {Int8, Int8Static, Int4}, "keep-last": {Int8, Int8Static, Int4},
	"calib": {Int8Static}, "percentile": {Int8Static}, "samples": {Int8Static}, "act": {Int8Static},
	"conv":  {Int8},
	"block": {Int4}, "sym": {Int4}, "asym": {Int4}, "accuracy_level": {Int4}, "accuracy-level": {Int4},
}

func (sp *Spec) setOption(key, val string, hasVal bool) error {
	if handled, err := sp.setLayerOption(key, val, hasVal); handled {
		return err
	}
	kinds, ok := optionKinds[key]
	if !ok {
		return fmt.Errorf("unknown option %q for %s", key, sp.Kind)
	}
	if !slices.Contains(kinds, sp.Kind) {
		return fmt.Errorf("option %q does not apply to %s", key, sp.Kind)
	}
	a := optionArgs{key: key, val: val, hasVal: hasVal}
	switch sp.Kind {
	case FP16:
		return sp.setFP16Option(a)
	case Int8Static:
		if done, err := sp.setStaticOption(a); done {
			return err
		}
	case Int4:
		if done, err := sp.setInt4Option(a); done {
			return err
		}
	}
	return sp.setInt8Option(a)
}

// setFP16Option sets mixed, keep=Op+Op, storage or ep=cpu.
func (sp *Spec) setFP16Option(a optionArgs) error {
	switch a.key {
	case "mixed":
		sp.Mixed = true
		return a.flag()
	case "storage":
		sp.Storage = true
		return a.flag()
	case "ep":
		if err := a.need(); err != nil {
			return err
		}
		if v := strings.ToLower(a.val); v != "cpu" {
			return fmt.Errorf("ep=%q: want cpu (keep in float32 the operators ONNX Runtime's CPU execution provider has no float16 kernel for)", a.val)
		}
		sp.EP = "cpu"
		return nil
	}
	if err := a.need(); err != nil {
		return err
	}
	for _, op := range strings.Split(a.val, "+") {
		op = strings.TrimSpace(op)
		if !validOpType(op) {
			return fmt.Errorf("keep: %q is not an op type name", op)
		}
		if !slices.Contains(sp.KeepOps, op) {
			sp.KeepOps = append(sp.KeepOps, op)
		}
	}
	slices.Sort(sp.KeepOps)
	return nil
}

// setInt8Option sets the options int8, int8-static and int4 share with
// int8 (granularity, reduce-range, keep-first/last) and int8's conv=.
func (sp *Spec) setInt8Option(a optionArgs) error {
	switch a.key {
	case "per-tensor", "per-channel":
		sp.PerTensor = a.key == "per-tensor"
		return a.flag()
	case "reduce-range":
		sp.ReduceRange = true
		return a.flag()
	case "keep-first":
		sp.KeepFirst = true
		return a.flag()
	case "keep-last":
		sp.KeepLast = true
		return a.flag()
	}
	// conv=
	if err := a.need(); err != nil {
		return err
	}
	switch strings.ToLower(a.val) {
	case "integer":
		sp.ConvInteger = true
	case "float":
		sp.ConvInteger = false
	default:
		return fmt.Errorf("conv=%q: want integer or float", a.val)
	}
	return nil
}

// setStaticOption sets int8-static's calib, percentile, samples and act;
// done is false for the options it shares with int8.
func (sp *Spec) setStaticOption(a optionArgs) (done bool, err error) {
	switch a.key {
	case "calib", "percentile", "samples", "act":
	default:
		return false, nil
	}
	if err := a.need(); err != nil {
		return true, err
	}
	switch a.key {
	case "calib":
		switch m := CalibMethod(strings.ToLower(a.val)); m {
		case CalibMinMax, CalibEntropy:
			sp.Calib = m
		case CalibPercentile:
			sp.Calib = "" // the default
		default:
			return true, fmt.Errorf("calib=%q: want minmax, percentile or entropy", a.val)
		}
	case "percentile":
		p, err := strconv.ParseFloat(a.val, 64)
		if err != nil || math.IsNaN(p) || p <= 50 || p > 100 {
			return true, fmt.Errorf("percentile=%q: want a number in (50, 100]", a.val)
		}
		if p == DefaultPercentile {
			p = 0
		}
		sp.Percentile = p
	case "samples":
		n, err := strconv.Atoi(a.val)
		if err != nil || n < 1 || n > maxCalibSamples {
			return true, fmt.Errorf("samples=%q: want an integer from 1 to %d", a.val, maxCalibSamples)
		}
		if n == DefaultCalibSamples {
			n = 0
		}
		sp.Samples = n
	case "act":
		switch strings.ToLower(a.val) {
		case "u8", "uint8":
			sp.Act = "u8"
		case "s8", "int8":
			sp.Act = "s8"
		case "auto":
			sp.Act = ""
		default:
			return true, fmt.Errorf("act=%q: want u8, s8 or auto", a.val)
		}
	}
	return true, nil
}

// setInt4Option sets int4's block, sym/asym and accuracy_level; done is
// false for keep-first/last.
func (sp *Spec) setInt4Option(a optionArgs) (done bool, err error) {
	switch a.key {
	case "sym", "asym":
		sp.Asym = a.key == "asym"
		return true, a.flag()
	case "block":
		if err := a.need(); err != nil {
			return true, err
		}
		b, err := strconv.Atoi(a.val)
		if err != nil || (b != 16 && b != 32 && b != 64 && b != 128) {
			return true, fmt.Errorf("block=%q: want 16, 32, 64 or 128", a.val)
		}
		if b == DefaultBlockSize {
			b = 0
		}
		sp.Block = b
		return true, nil
	case "accuracy_level", "accuracy-level":
		if err := a.need(); err != nil {
			return true, err
		}
		l, err := strconv.Atoi(a.val)
		if err != nil || l < 0 || l > 4 {
			return true, fmt.Errorf("accuracy_level=%q: want 0 to 4", a.val)
		}
		switch l {
		case DefaultAccuracyLevel:
			sp.AccuracyLevel = 0
		case 0:
			sp.AccuracyLevel = -1
		default:
			sp.AccuracyLevel = l
		}
		return true, nil
	}
	return false, nil
}

// validOpType accepts identifiers: letters, digits and underscores, not
// starting with a digit.
func validOpType(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r == '_':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// String returns the canonical spec: the kind, then the options that
// differ from their defaults in a fixed order. ParseSpec(s.String())
// returns s, and two specs that mean the same thing print the same, so
// the string keys caches and results.
func (sp Spec) String() string {
	var opts []string
	switch sp.Kind {
	case FP16:
		if sp.Mixed {
			opts = append(opts, "mixed")
		}
		if len(sp.KeepOps) > 0 {
			opts = append(opts, "keep="+strings.Join(sp.KeepOps, "+"))
		}
		if sp.Storage {
			opts = append(opts, "storage")
		}
		if sp.EP != "" {
			opts = append(opts, "ep="+sp.EP)
		}
	case Int8, Int8Static:
		if sp.Kind == Int8Static {
			if sp.Calib != "" {
				opts = append(opts, "calib="+string(sp.Calib))
			}
			if sp.Percentile != 0 {
				opts = append(opts, "percentile="+strconv.FormatFloat(sp.Percentile, 'g', -1, 64))
			}
			if sp.Samples != 0 {
				opts = append(opts, "samples="+strconv.Itoa(sp.Samples))
			}
			if sp.Act != "" {
				opts = append(opts, "act="+sp.Act)
			}
		}
		if sp.PerTensor {
			opts = append(opts, "per-tensor")
		}
		if sp.ReduceRange {
			opts = append(opts, "reduce-range")
		}
		if sp.ConvInteger {
			opts = append(opts, "conv=integer")
		}
	case Int4:
		if sp.Block != 0 {
			opts = append(opts, "block="+strconv.Itoa(sp.Block))
		}
		if sp.Asym {
			opts = append(opts, "asym")
		}
		if sp.AccuracyLevel != 0 {
			opts = append(opts, "accuracy_level="+strconv.Itoa(sp.accuracyLevel()))
		}
	}
	if sp.Kind == Int8 || sp.Kind == Int8Static || sp.Kind == Int4 {
		if sp.KeepFirst {
			opts = append(opts, "keep-first")
		}
		if sp.KeepLast {
			opts = append(opts, "keep-last")
		}
		opts = append(opts, sp.Layers.options()...)
	}
	if len(opts) == 0 {
		return string(sp.Kind)
	}
	return string(sp.Kind) + ":" + strings.Join(opts, ",")
}

// Slug is String made safe for file names: "int4:block=64,asym" becomes
// "int4-block64-asym".
func (sp Spec) Slug() string {
	r := strings.NewReplacer(":", "-", ",", "-", "=", "", "+", "_", ".", "p", "/", "_", "#", "n")
	s := r.Replace(sp.String())
	if len(s) > 64 {
		// Long per-layer choices: a readable head and a hash of the rest.
		h := sha256.Sum256([]byte(sp.String()))
		s = s[:48] + "-" + hex.EncodeToString(h[:6])
	}
	return s
}

// calibMethod returns the effective calibration method.
func (sp Spec) calibMethod() CalibMethod {
	if sp.Calib == "" {
		return CalibPercentile
	}
	return sp.Calib
}

// percentile returns the effective percentile.
func (sp Spec) percentile() float64 {
	if sp.Percentile == 0 {
		return DefaultPercentile
	}
	return sp.Percentile
}

// samples returns the effective number of calibration inputs.
func (sp Spec) samples() int {
	if sp.Samples == 0 {
		return DefaultCalibSamples
	}
	return sp.Samples
}

// blockSize returns the effective int4 block size.
func (sp Spec) blockSize() int {
	if sp.Block == 0 {
		return DefaultBlockSize
	}
	return sp.Block
}

// accuracyLevel returns the effective MatMulNBits accuracy_level.
func (sp Spec) accuracyLevel() int {
	switch {
	case sp.AccuracyLevel == 0:
		return DefaultAccuracyLevel
	case sp.AccuracyLevel < 0:
		return 0
	}
	return sp.AccuracyLevel
}

// Quantizes reports whether the spec changes the model at all (every kind
// but fp32).
func (sp Spec) Quantizes() bool { return sp.Kind != FP32 && sp.Kind != "" }
