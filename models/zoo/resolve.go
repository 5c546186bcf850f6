package zoo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// Errors that callers can test for with errors.Is.
var (
	// ErrUnknownModel: the name is neither in the catalog nor a file.
	ErrUnknownModel = errors.New("unknown model")
	// ErrNotImageModel: the ONNX file is valid but not a model quantscope
	// can feed images to (one float32 input [N, 3, H, W]).
	ErrNotImageModel = errors.New("not an image model")
)

// ImageInput is a model's image input. Sizes are -1 where the dimension
// is symbolic or unknown; DimNames holds the symbolic names.
type ImageInput struct {
	Name                           string    // the input's name
	Batch, Channels, Height, Width int64     // sizes; -1 when not fixed
	DimNames                       [4]string // symbolic names ("" for fixed sizes)
}

// Resolved is a model ready to load: its file and what it is.
type Resolved struct {
	// Path is the .onnx file (its external data, if any, beside it).
	Path string
	// Spec describes the model. For an imported file it is synthesized:
	// Name from the file name, Family FamilyImported, Params counted from
	// the graph, Resolution from the input (224 when symbolic), ImageNet
	// normalization, no Arch. A file written by quantscope's zoo gets its
	// catalog entry back.
	Spec Spec
	// Imported is true for a user's file, false for a catalog model.
	Imported bool
	// Cached is true when a catalog model was already in the cache (false
	// when this call built it).
	Cached bool
	// Manifest is the cache manifest of a catalog model (nil for
	// imported files).
	Manifest *Manifest
	// Input is the image input.
	Input ImageInput
	// Output is the name of the (first) output.
	Output string
	// Bytes is the size on disk: the model file and its data files.
	Bytes int64
	// Params is the number of parameters in the file (initializer
	// elements).
	Params int64
}

// IsPath reports whether nameOrPath names a file rather than a catalog
// model: it contains a path separator or ends in .onnx.
func IsPath(nameOrPath string) bool {
	return strings.ContainsRune(nameOrPath, '/') || strings.ContainsRune(nameOrPath, filepath.Separator) ||
		strings.HasSuffix(strings.ToLower(nameOrPath), ".onnx")
}

// Resolve turns what a user typed into a model file: a catalog name is
// built (or found in the cache, see Ensure) and a path to an ONNX file is
// imported (see Import). A name that is neither gets ErrUnknownModel with
// the closest catalog names. The options apply to catalog models; an
// imported file is used as it is.
func Resolve(ctx context.Context, nameOrPath string, opts ...Option) (Resolved, error) {
	if nameOrPath == "" {
		return Resolved{}, fmt.Errorf("%w: empty name", ErrUnknownModel)
	}
	if !IsPath(nameOrPath) {
		if s, ok := Lookup(nameOrPath); ok {
			return Ensure(ctx, s, opts...)
		}
		if st, err := os.Stat(nameOrPath); err != nil || st.IsDir() {
			msg := fmt.Sprintf("%v %q: not in the catalog (`quantscope models list`) and not an .onnx file", ErrUnknownModel, nameOrPath)
			if near := nearest(nameOrPath, 3); len(near) > 0 {
				msg += "; did you mean " + strings.Join(near, ", ") + "?"
			}
			return Resolved{}, &unknownError{msg: msg}
		}
	}
	return Import(nameOrPath)
}

// unknownError is an ErrUnknownModel with a full message.
type unknownError struct{ msg string }

// Error implements error.
func (e *unknownError) Error() string { return e.msg }

// Is makes the error match ErrUnknownModel.
func (e *unknownError) Is(target error) bool { return target == ErrUnknownModel }

// nearest returns up to k catalog names close to name: those containing it
// or contained in it, then by edit distance.
func nearest(name string, k int) []string {
	name = strings.ToLower(name)
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	for _, n := range Names() {
		d := editDistance(name, n)
		if strings.Contains(n, name) || strings.Contains(name, n) {
			d = 0
		}
		if d <= max(2, len(name)/3) {
			cs = append(cs, cand{n, d})
		}
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return a.d - b.d })
	var out []string
	for i := 0; i < len(cs) && i < k; i++ {
		out = append(out, cs[i].name)
	}
	return out
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Import checks that the ONNX file at path is an image model quantscope
// can profile, without reading its external weights: exactly one input
// (initializers listed as inputs aside) of float32 elements and shape
// [N, 3, H, W], each dimension static or symbolic. Anything else is an
// error wrapping ErrNotImageModel that says what was found; a file that is
// not ONNX is an error wrapping onnx.ErrInvalidModel.
func Import(path string) (Resolved, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Resolved{}, fmt.Errorf("model file %s does not exist", path)
		}
		return Resolved{}, fmt.Errorf("model file: %w", err)
	}
	if st.IsDir() {
		return Resolved{}, fmt.Errorf("model file %s is a directory, not an .onnx file", path)
	}
	m, err := onnx.LoadWith(path, onnx.LoadOptions{SkipExternalData: true})
	if err != nil {
		return Resolved{}, err // names the file and says what is wrong
	}
	g := m.Graph()
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	var inputs []*onnxpb.ValueInfoProto
	for _, in := range g.GetInput() {
		if !inits[in.GetName()] {
			inputs = append(inputs, in)
		}
	}
	notImage := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w: %s; quantscope profiles models with one float32 image input [N, 3, H, W]",
			path, ErrNotImageModel, fmt.Sprintf(format, args...))
	}
	switch len(inputs) {
	case 0:
		return Resolved{}, notImage("the graph has no inputs")
	case 1:
	default:
		descs := make([]string, len(inputs))
		for i, in := range inputs {
			descs[i] = describeValue(in)
		}
		hint := ""
		if looksLikeText(inputs) {
			hint = " (a text model?)"
		}
		return Resolved{}, notImage("found %d inputs%s: %s", len(inputs), hint, strings.Join(descs, ", "))
	}
	in := inputs[0]
	tt := in.GetType().GetTensorType()
	if tt == nil {
		return Resolved{}, notImage("input %q is not a tensor", in.GetName())
	}
	if dt := onnx.DataType(tt.GetElemType()); dt != onnx.Float {
		hint := ""
		if looksLikeText(inputs) {
			hint = " (token ids: a text model?)"
		}
		if dt == onnx.Float16 {
			hint = " (a half-precision export: give quantscope the FP32 model, it makes the FP16 variant itself)"
		}
		return Resolved{}, notImage("input %s is %s%s", describeValue(in), dt, hint)
	}
	if tt.GetShape() == nil {
		return Resolved{}, notImage("input %q has no shape (unknown rank)", in.GetName())
	}
	dims := tt.GetShape().GetDim()
	if len(dims) != 4 {
		return Resolved{}, notImage("input %s has rank %d", describeValue(in), len(dims))
	}
	var ii ImageInput
	ii.Name = in.GetName()
	sizes := [4]*int64{&ii.Batch, &ii.Channels, &ii.Height, &ii.Width}
	for i, d := range dims {
		*sizes[i] = -1
		if d.GetDimParam() != "" {
			ii.DimNames[i] = d.GetDimParam()
		} else if _, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
			*sizes[i] = d.GetDimValue()
		}
	}
	if ii.Channels != 3 && ii.Channels != -1 {
		if ii.Width == 3 {
			return Resolved{}, notImage("input %s is channels-last (NHWC); export it channels-first", describeValue(in))
		}
		return Resolved{}, notImage("input %s has %d channels, want 3 (RGB)", describeValue(in), ii.Channels)
	}
	for i, v := range []int64{ii.Height, ii.Width} {
		if v == 0 || (v > 0 && v < 8) {
			return Resolved{}, notImage("input %s has a %s of %d pixels", describeValue(in), []string{"height", "width"}[i], v)
		}
	}
	if len(g.GetOutput()) == 0 {
		return Resolved{}, notImage("the graph has no outputs")
	}

	stats := m.Stats()
	res := Resolved{
		Path: path, Imported: true, Input: ii, Output: g.GetOutput()[0].GetName(),
		Params: stats.Params, Bytes: fileBytes(path, g),
	}
	res.Spec = importedSpec(path, m, ii, stats)
	return res, nil
}

// importedSpec describes an imported model.
func importedSpec(path string, m *onnx.Model, ii ImageInput, stats onnx.Stats) Spec {
	meta := map[string]string{}
	for _, e := range m.Proto.GetMetadataProps() {
		meta[e.GetKey()] = e.GetValue()
	}
	res := 224
	if ii.Height > 0 && ii.Height == ii.Width {
		res = int(ii.Height)
	}
	if s, ok := Lookup(meta["quantscope.model"]); ok {
		// One of ours (a cached build or a variant of one).
		if r, err := strconv.Atoi(meta["quantscope.resolution"]); err == nil && r > 0 {
			if a, err := Analyze(s, WithResolution(r)); err == nil {
				s.GFLOPs = a.GFLOPs
			}
			s.Resolution = r
		}
		return s
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	s := Spec{
		Name: name, Family: FamilyImported, Description: "imported from " + path,
		Params: stats.Params, Resolution: res, Preprocess: ImageNetNorm,
	}
	// An exporter can declare its normalization the way quantscope's own
	// builds do (metadata quantscope.mean and quantscope.std, three
	// comma-separated numbers each); otherwise ImageNet's is assumed.
	mean, okm := parseTriple(meta["quantscope.mean"])
	std, oks := parseTriple(meta["quantscope.std"])
	if okm && oks && std[0] > 0 && std[1] > 0 && std[2] > 0 {
		s.Preprocess = Preprocess{Name: "model metadata", Mean: mean, Std: std}
	}
	readDataMeta(&s, meta)
	if outs := m.Graph().GetOutput(); len(outs) > 0 {
		if d := outs[0].GetType().GetTensorType().GetShape().GetDim(); len(d) == 2 && d[1].GetDimValue() > 0 {
			s.OutputDim = int(d[1].GetDimValue())
		}
	}
	return s
}

// parseTriple reads "a,b,c" as three float32s.
func parseTriple(v string) ([3]float32, bool) {
	var out [3]float32
	parts := strings.Split(v, ",")
	if len(parts) != 3 {
		return out, false
	}
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return out, false
		}
		out[i] = float32(f)
	}
	return out, true
}

// fileBytes is the size of the model file and of the external data files
// its initializers name.
func fileBytes(path string, g *onnxpb.GraphProto) int64 {
	var n int64
	if st, err := os.Stat(path); err == nil {
		n = st.Size()
	}
	seen := map[string]bool{}
	for _, t := range g.GetInitializer() {
		for _, e := range t.GetExternalData() {
			if e.GetKey() != "location" || seen[e.GetValue()] {
				continue
			}
			seen[e.GetValue()] = true
			loc := filepath.FromSlash(e.GetValue())
			if !filepath.IsLocal(loc) {
				continue
			}
			if st, err := os.Stat(filepath.Join(filepath.Dir(path), loc)); err == nil {
				n += st.Size()
			}
		}
	}
	return n
}

// describeValue writes a value as `"name" FLOAT [batch, 3, 224, 224]`.
func describeValue(v *onnxpb.ValueInfoProto) string {
	tt := v.GetType().GetTensorType()
	if tt == nil {
		return strconv.Quote(v.GetName()) + " (not a tensor)"
	}
	s := strconv.Quote(v.GetName()) + " " + onnx.DataType(tt.GetElemType()).String()
	if tt.GetShape() == nil {
		return s + " [?]"
	}
	dims := make([]string, len(tt.GetShape().GetDim()))
	for i, d := range tt.GetShape().GetDim() {
		switch {
		case d.GetDimParam() != "":
			dims[i] = d.GetDimParam()
		case d.GetValue() != nil:
			dims[i] = strconv.FormatInt(d.GetDimValue(), 10)
		default:
			dims[i] = "?"
		}
	}
	return s + " [" + strings.Join(dims, ", ") + "]"
}

// looksLikeText reports whether the inputs look like a text model's:
// integer inputs with token-like names.
func looksLikeText(inputs []*onnxpb.ValueInfoProto) bool {
	for _, in := range inputs {
		n := strings.ToLower(in.GetName())
		dt := onnx.DataType(in.GetType().GetTensorType().GetElemType())
		if (dt == onnx.Int64 || dt == onnx.Int32) && (strings.Contains(n, "input_ids") || strings.Contains(n, "token") ||
			strings.Contains(n, "attention_mask") || strings.Contains(n, "ids")) {
			return true
		}
	}
	return false
}
