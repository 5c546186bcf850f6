package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// Model is an ONNX model in memory: the protobuf message and the file it
// came from. After Load, every tensor's data is inline (raw_data or a typed
// field) unless LoadOptions.SkipExternalData was set.
type Model struct {
	// Proto is the model. Callers may read and change it freely.
	Proto *onnxpb.ModelProto
	// Path is the file the model was loaded from; empty for built models.
	Path string
}

// Errors that callers can test for with errors.Is.
var (
	// ErrInvalidModel means the file is not an ONNX model: empty, not
	// protobuf, truncated, a directory, or a message without a graph.
	ErrInvalidModel = errors.New("not a valid ONNX model")
	// ErrExternalData means a tensor's external data cannot be read: a bad
	// location, a missing file, a file too short. The errors also wrap the
	// underlying cause, e.g. fs.ErrNotExist.
	ErrExternalData = errors.New("external data")
)

// ExternalDataError describes a tensor whose external data cannot be read.
// It matches ErrExternalData with errors.Is and unwraps to its cause.
type ExternalDataError struct {
	Location string // the location entry as written in the model
	Tensor   string // the tensor's name
	Err      error  // what went wrong
}

// Error implements error.
func (e *ExternalDataError) Error() string {
	return fmt.Sprintf("external data %q for tensor %q: %v", e.Location, e.Tensor, e.Err)
}

// Unwrap returns the cause.
func (e *ExternalDataError) Unwrap() error { return e.Err }

// Is reports whether target is ErrExternalData.
func (e *ExternalDataError) Is(target error) bool { return target == ErrExternalData }

// LoadOptions controls LoadWith.
type LoadOptions struct {
	// SkipExternalData leaves tensors stored in external files unresolved
	// (data_location = EXTERNAL, no bytes read), to inspect the graph of a
	// large model cheaply. Such a model cannot be saved, and its external
	// tensors cannot be decoded.
	SkipExternalData bool
}

// Load reads the ONNX model at path and resolves its external data: every
// tensor stored in a file beside the model gets its bytes in raw_data and
// loses its external_data entries. Errors name path.
func Load(path string) (*Model, error) { return LoadWith(path, LoadOptions{}) }

// LoadWith is Load with options.
func LoadWith(path string, opts LoadOptions) (*Model, error) {
	m, err := load(path, opts)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return m, nil
}

func load(path string, opts LoadOptions) (*Model, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return nil, fmt.Errorf("%w: is a directory", ErrInvalidModel)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", ErrInvalidModel)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: file is empty", ErrInvalidModel)
	}
	mp := new(onnxpb.ModelProto)
	if err := proto.Unmarshal(data, mp); err != nil {
		return nil, fmt.Errorf("%w (truncated, or not an ONNX file): %w", ErrInvalidModel, err)
	}
	if mp.Graph == nil {
		return nil, fmt.Errorf("%w: no graph (%d bytes of protobuf without an ONNX graph)", ErrInvalidModel, info.Size())
	}
	if !opts.SkipExternalData {
		if err := resolveExternal(mp, filepath.Dir(path)); err != nil {
			return nil, err
		}
	}
	return &Model{Proto: mp, Path: path}, nil
}

// Clone returns a deep copy of m.
func (m *Model) Clone() *Model {
	return &Model{Proto: proto.Clone(m.Proto).(*onnxpb.ModelProto), Path: m.Path}
}

// Graph returns the model's main graph (nil for a nil model).
func (m *Model) Graph() *onnxpb.GraphProto {
	if m == nil {
		return nil
	}
	return m.Proto.GetGraph()
}

// Opset returns the version of domain imported by the model, or 0 when it
// is not imported. "" and "ai.onnx" both name the default domain.
func (m *Model) Opset(domain string) int64 {
	if m == nil {
		return 0
	}
	domain = normDomain(domain)
	for _, op := range m.Proto.GetOpsetImport() {
		if normDomain(op.GetDomain()) == domain {
			return op.GetVersion()
		}
	}
	return 0
}

// normDomain maps the default domain's two spellings to "".
func normDomain(d string) string {
	if d == "ai.onnx" {
		return ""
	}
	return d
}

// externalEntry returns the value of key in t's external_data entries.
func externalEntry(t *onnxpb.TensorProto, key string) (string, bool) {
	for _, e := range t.GetExternalData() {
		if e.GetKey() == key {
			return e.GetValue(), true
		}
	}
	return "", false
}

// externalReader reads tensor bytes from the external files of one model,
// opening each location once, within the model's directory.
type externalReader struct {
	root  *os.Root
	files map[string]*os.File
	sizes map[string]int64
	// budget is the total size of the files opened so far; read is how many
	// bytes tensors took from them. A model whose tensors ask for more
	// bytes than its files hold (overlapping regions, possibly on purpose)
	// is rejected rather than allowed to multiply memory use.
	budget, read int64
}

// resolveExternal replaces every external tensor of mp with inline raw_data
// read from files under dir.
func resolveExternal(mp *onnxpb.ModelProto, dir string) (err error) {
	r := &externalReader{files: map[string]*os.File{}, sizes: map[string]int64{}}
	defer func() {
		for _, f := range r.files {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
		if r.root != nil {
			r.root.Close()
		}
	}()
	return walkModelTensors(mp, func(t *onnxpb.TensorProto) error {
		if !IsExternal(t) {
			return nil
		}
		if r.root == nil {
			root, err := os.OpenRoot(dir)
			if err != nil {
				return fmt.Errorf("%w: open model directory: %w", ErrExternalData, err)
			}
			r.root = root
		}
		return r.resolve(t)
	})
}

// resolve reads t's external bytes into raw_data and clears its external
// fields.
func (r *externalReader) resolve(t *onnxpb.TensorProto) error {
	loc, _ := externalEntry(t, "location")
	fail := func(err error) error {
		return &ExternalDataError{Location: loc, Tensor: t.GetName(), Err: err}
	}
	if loc == "" {
		return fail(errors.New("no location entry"))
	}
	rel := filepath.FromSlash(loc)
	if !filepath.IsLocal(rel) {
		return fail(errors.New("location must be a relative path inside the model's directory"))
	}
	rel = filepath.Clean(rel)
	offset, err := externalInt(t, "offset")
	if err != nil {
		return fail(err)
	}
	offset = max(offset, 0) // absent: 0
	length, err := externalInt(t, "length")
	if err != nil {
		return fail(err)
	}
	f, size, err := r.open(rel)
	if err != nil {
		return fail(err)
	}
	if length < 0 { // no length entry: the rest of the file
		if offset > size {
			return fail(fmt.Errorf("file is %d bytes, need offset %d", size, offset))
		}
		length = size - offset
	}
	if offset > size || length > size-offset {
		return fail(fmt.Errorf("file is %d bytes, need offset %d + length %d", size, offset, length))
	}
	if length > r.budget-r.read {
		return fail(fmt.Errorf("tensors ask for more bytes than their files hold (%d bytes in %d files); overlapping regions are not supported",
			r.budget, len(r.files)))
	}
	if dt := DataTypeOf(t); dt.Bits() > 0 {
		if n, err := Numel(t.GetDims()); err == nil {
			if want, err := dt.ByteSize(n); err == nil && want != length {
				return fail(fmt.Errorf("length is %d bytes, dims %v of %v need %d", length, t.GetDims(), dt, want))
			}
		}
	}
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, offset); err != nil {
		return fail(fmt.Errorf("read %d bytes at offset %d: %w", length, offset, err))
	}
	r.read += length
	t.RawData = buf
	t.ExternalData = nil
	t.DataLocation = nil
	return nil
}

// open returns the open file for a location relative to the model's
// directory and its size, opening it on first use.
func (r *externalReader) open(rel string) (*os.File, int64, error) {
	if f, ok := r.files[rel]; ok {
		return f, r.sizes[rel], nil
	}
	f, err := r.root.Open(rel)
	if err != nil {
		return nil, 0, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", rel)
	}
	r.files[rel] = f
	r.sizes[rel] = info.Size()
	r.budget += info.Size()
	return f, info.Size(), nil
}

// externalInt parses an integer external_data entry; it returns -1 when the
// entry is absent.
func externalInt(t *onnxpb.TensorProto, key string) (int64, error) {
	s, ok := externalEntry(t, key)
	if !ok {
		return -1, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%s %q is not a non-negative integer", key, s)
	}
	return v, nil
}

// walkModelTensors calls fn for every tensor in mp: initializers, sparse
// initializers, attribute tensors, in the main graph, subgraphs, training
// graphs and functions. It stops at the first error.
func walkModelTensors(mp *onnxpb.ModelProto, fn func(*onnxpb.TensorProto) error) error {
	if err := walkGraphTensors(mp.GetGraph(), fn); err != nil {
		return err
	}
	for _, ti := range mp.GetTrainingInfo() {
		if err := walkGraphTensors(ti.GetInitialization(), fn); err != nil {
			return err
		}
		if err := walkGraphTensors(ti.GetAlgorithm(), fn); err != nil {
			return err
		}
	}
	for _, f := range mp.GetFunctions() {
		for _, n := range f.GetNode() {
			if err := walkNodeTensors(n, fn); err != nil {
				return err
			}
		}
		for _, a := range f.GetAttributeProto() {
			if err := walkAttrTensors(a, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func walkGraphTensors(g *onnxpb.GraphProto, fn func(*onnxpb.TensorProto) error) error {
	if g == nil {
		return nil
	}
	for _, t := range g.GetInitializer() {
		if t != nil {
			if err := fn(t); err != nil {
				return err
			}
		}
	}
	for _, s := range g.GetSparseInitializer() {
		if err := walkSparse(s, fn); err != nil {
			return err
		}
	}
	for _, n := range g.GetNode() {
		if err := walkNodeTensors(n, fn); err != nil {
			return err
		}
	}
	return nil
}

func walkNodeTensors(n *onnxpb.NodeProto, fn func(*onnxpb.TensorProto) error) error {
	for _, a := range n.GetAttribute() {
		if err := walkAttrTensors(a, fn); err != nil {
			return err
		}
	}
	return nil
}

func walkAttrTensors(a *onnxpb.AttributeProto, fn func(*onnxpb.TensorProto) error) error {
	if t := a.GetT(); t != nil {
		if err := fn(t); err != nil {
			return err
		}
	}
	for _, t := range a.GetTensors() {
		if t != nil {
			if err := fn(t); err != nil {
				return err
			}
		}
	}
	if err := walkSparse(a.GetSparseTensor(), fn); err != nil {
		return err
	}
	for _, s := range a.GetSparseTensors() {
		if err := walkSparse(s, fn); err != nil {
			return err
		}
	}
	if err := walkGraphTensors(a.GetG(), fn); err != nil {
		return err
	}
	for _, g := range a.GetGraphs() {
		if err := walkGraphTensors(g, fn); err != nil {
			return err
		}
	}
	return nil
}

func walkSparse(s *onnxpb.SparseTensorProto, fn func(*onnxpb.TensorProto) error) error {
	if v := s.GetValues(); v != nil {
		if err := fn(v); err != nil {
			return err
		}
	}
	if i := s.GetIndices(); i != nil {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// subgraphs returns the graphs held in n's attributes.
func subgraphs(n *onnxpb.NodeProto) []*onnxpb.GraphProto {
	var gs []*onnxpb.GraphProto
	for _, a := range n.GetAttribute() {
		if g := a.GetG(); g != nil {
			gs = append(gs, g)
		}
		for _, g := range a.GetGraphs() {
			if g != nil {
				gs = append(gs, g)
			}
		}
	}
	return gs
}
