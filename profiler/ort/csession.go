package ort

/*
#include <stdint.h>
#include <stdlib.h>

// Sessions through OrtApi entries reached by index (see capi.go): creating
// the session, reading its inputs and outputs from the session itself, Run,
// and SessionEndProfiling.
typedef void* qs_s;

#define QS_FN(T, api, idx) ((T)((const void* const*)(api))[idx])

typedef qs_s (*qs_s_create_fn)(qs_s, const char*, qs_s, qs_s*);
typedef qs_s (*qs_s_count_fn)(qs_s, size_t*);
typedef qs_s (*qs_s_name_fn)(qs_s, size_t, qs_s, char**);
typedef qs_s (*qs_s_typeinfo_fn)(qs_s, size_t, qs_s*);
typedef qs_s (*qs_s_onnx_type_fn)(qs_s, int*);
typedef qs_s (*qs_s_cast_fn)(qs_s, qs_s*);
typedef qs_s (*qs_s_elem_fn)(qs_s, int*);
typedef qs_s (*qs_s_dimcount_fn)(qs_s, size_t*);
typedef qs_s (*qs_s_dims_fn)(qs_s, int64_t*, size_t);
typedef qs_s (*qs_s_alloc_fn)(qs_s*);
typedef qs_s (*qs_s_free_fn)(qs_s, void*);
typedef qs_s (*qs_s_endprof_fn)(qs_s, qs_s, char**);
typedef qs_s (*qs_s_run_fn)(qs_s, qs_s, const char* const*, const qs_s*, size_t, const char* const*, size_t, qs_s*);
typedef qs_s (*qs_s_shape_fn)(qs_s, qs_s*);
typedef qs_s (*qs_s_data_fn)(qs_s, void**);
typedef void (*qs_s_release_fn)(qs_s);

static qs_s qs_s_create(const void* api, int idx, qs_s env, const char* path, qs_s so, qs_s* out) {
	return QS_FN(qs_s_create_fn, api, idx)(env, path, so, out);
}
static qs_s qs_s_count(const void* api, int idx, qs_s sess, size_t* n) {
	return QS_FN(qs_s_count_fn, api, idx)(sess, n);
}
static qs_s qs_s_name(const void* api, int idx, qs_s sess, size_t i, qs_s alloc, char** out) {
	return QS_FN(qs_s_name_fn, api, idx)(sess, i, alloc, out);
}
static qs_s qs_s_typeinfo(const void* api, int idx, qs_s sess, size_t i, qs_s* out) {
	return QS_FN(qs_s_typeinfo_fn, api, idx)(sess, i, out);
}
static qs_s qs_s_onnx_type(const void* api, int idx, qs_s ti, int* out) {
	return QS_FN(qs_s_onnx_type_fn, api, idx)(ti, out);
}
static qs_s qs_s_cast(const void* api, int idx, qs_s ti, qs_s* out) {
	return QS_FN(qs_s_cast_fn, api, idx)(ti, out);
}
static qs_s qs_s_elem(const void* api, int idx, qs_s tinfo, int* out) {
	return QS_FN(qs_s_elem_fn, api, idx)(tinfo, out);
}
static qs_s qs_s_dimcount(const void* api, int idx, qs_s tinfo, size_t* out) {
	return QS_FN(qs_s_dimcount_fn, api, idx)(tinfo, out);
}
static qs_s qs_s_dims(const void* api, int idx, qs_s tinfo, int64_t* dims, size_t n) {
	return QS_FN(qs_s_dims_fn, api, idx)(tinfo, dims, n);
}
static qs_s qs_s_default_alloc(const void* api, int idx, qs_s* out) {
	return QS_FN(qs_s_alloc_fn, api, idx)(out);
}
static qs_s qs_s_free(const void* api, int idx, qs_s alloc, void* p) {
	return QS_FN(qs_s_free_fn, api, idx)(alloc, p);
}
static qs_s qs_s_end_profiling(const void* api, int idx, qs_s sess, qs_s alloc, char** out) {
	return QS_FN(qs_s_endprof_fn, api, idx)(sess, alloc, out);
}
static qs_s qs_s_run(const void* api, int idx, qs_s sess, const char* const* in_names, const qs_s* ins, size_t nin,
		const char* const* out_names, size_t nout, qs_s* outs) {
	return QS_FN(qs_s_run_fn, api, idx)(sess, NULL, in_names, ins, nin, out_names, nout, outs);
}
static qs_s qs_s_value_shape(const void* api, int idx, qs_s v, qs_s* out) {
	return QS_FN(qs_s_shape_fn, api, idx)(v, out);
}
static qs_s qs_s_value_data(const void* api, int idx, qs_s v, void** out) {
	return QS_FN(qs_s_data_fn, api, idx)(v, out);
}
static void qs_s_release(const void* api, int idx, qs_s p) { if (p) QS_FN(qs_s_release_fn, api, idx)(p); }
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// OrtApi indices of the session entries (API version 24), checked against
// onnxruntime_c_api.h by TestOrtApiIndices.
const (
	idxRun                         = 9
	idxSessionGetInputCount        = 30
	idxSessionGetOutputCount       = 31
	idxSessionGetInputTypeInfo     = 33
	idxSessionGetOutputTypeInfo    = 34
	idxSessionGetInputName         = 36
	idxSessionGetOutputName        = 37
	idxCastTypeInfoToTensorInfo    = 55
	idxGetOnnxTypeFromTypeInfo     = 56
	idxGetTensorElementType        = 60
	idxGetDimensionsCount          = 61
	idxGetDimensions               = 62
	idxGetTensorTypeAndShape       = 65
	idxAllocatorFree               = 76
	idxGetAllocatorWithDefaultOpts = 78
	idxReleaseTypeInfo             = 98
	idxReleaseTensorTypeAndShape   = 99
	idxSessionEndProfiling         = 110
)

// cSession is one ONNX Runtime session created through the C API. Every
// session this package opens is one of these, created by openCSession, so
// each creation is counted (SessionsCreated) and the model's inputs and
// outputs are read from the session that runs it: no second, temporary
// session (which on CUDA would upload the weights again) is ever built.
type cSession struct {
	api       *capi
	ptr       unsafe.Pointer
	path      string
	profiling bool // the session records ONNX Runtime's profile until endProfiling
}

// openCSession creates the session for path with cfg and reads its inputs
// and outputs. The session-creation error is explained (explainSessionError).
func openCSession(path string, cfg SessionConfig) (*cSession, []ort.InputOutputInfo, []ort.InputOutputInfo, error) {
	api, err := loadedAPI()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open session on %s: %w", path, err)
	}
	opts, err := newSessionOptions(cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open session on %s: %w", path, err)
	}
	defer opts.Destroy()
	env, err := api.envHandle()
	if err != nil {
		return nil, nil, nil, err
	}
	so, err := sessionOptionsHandle(opts)
	if err != nil {
		return nil, nil, nil, err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	countSession(path)
	var sess C.qs_s
	st := C.qs_s_create(unsafe.Pointer(api.api), idxCreateSession, C.qs_s(env), cpath, C.qs_s(so), &sess)
	if err := api.statusError(unsafe.Pointer(st)); err != nil {
		return nil, nil, nil, fmt.Errorf("open session on %s: %w", path, explainSessionError(err))
	}
	s := &cSession{api: api, ptr: unsafe.Pointer(sess), path: path, profiling: cfg.ProfilePrefix != ""}
	ins, outs, err := s.inputsOutputs()
	if err != nil {
		s.release()
		return nil, nil, nil, fmt.Errorf("read inputs/outputs of %s: %w", path, err)
	}
	return s, ins, outs, nil
}

// countSession records one CreateSession call on path.
func countSession(path string) {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.sessions == nil {
		env.sessions = map[string]int{}
	}
	env.sessions[path]++
}

// SessionsCreated returns how many ONNX Runtime sessions this process has
// asked ONNX Runtime to create on the model at path (every session of this
// package goes through one CreateSession call site). It is the seam tests
// count an experiment's sessions through: one per experiment, on any EP.
func SessionsCreated(path string) int {
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.sessions[path]
}

func (s *cSession) status(p C.qs_s) error { return s.api.statusError(unsafe.Pointer(p)) }

func (s *cSession) apiPtr() unsafe.Pointer { return unsafe.Pointer(s.api.api) }

// inputsOutputs reads the session's inputs and outputs: names, value types,
// element types and dimensions (-1 for symbolic ones).
func (s *cSession) inputsOutputs() ([]ort.InputOutputInfo, []ort.InputOutputInfo, error) {
	var alloc C.qs_s
	if err := s.status(C.qs_s_default_alloc(s.apiPtr(), idxGetAllocatorWithDefaultOpts, &alloc)); err != nil {
		return nil, nil, fmt.Errorf("default allocator: %w", err)
	}
	read := func(countIdx, nameIdx, typeIdx int, what string) ([]ort.InputOutputInfo, error) {
		var n C.size_t
		if err := s.status(C.qs_s_count(s.apiPtr(), C.int(countIdx), C.qs_s(s.ptr), &n)); err != nil {
			return nil, fmt.Errorf("count %ss: %w", what, err)
		}
		out := make([]ort.InputOutputInfo, int(n))
		for i := range out {
			var name *C.char
			if err := s.status(C.qs_s_name(s.apiPtr(), C.int(nameIdx), C.qs_s(s.ptr), C.size_t(i), alloc, &name)); err != nil {
				return nil, fmt.Errorf("%s %d name: %w", what, i, err)
			}
			out[i].Name = C.GoString(name)
			C.qs_s_free(s.apiPtr(), idxAllocatorFree, alloc, unsafe.Pointer(name))
			var ti C.qs_s
			if err := s.status(C.qs_s_typeinfo(s.apiPtr(), C.int(typeIdx), C.qs_s(s.ptr), C.size_t(i), &ti)); err != nil {
				return nil, fmt.Errorf("%s %q type: %w", what, out[i].Name, err)
			}
			err := s.fillType(ti, &out[i])
			C.qs_s_release(s.apiPtr(), idxReleaseTypeInfo, ti)
			if err != nil {
				return nil, fmt.Errorf("%s %q type: %w", what, out[i].Name, err)
			}
		}
		return out, nil
	}
	ins, err := read(idxSessionGetInputCount, idxSessionGetInputName, idxSessionGetInputTypeInfo, "input")
	if err != nil {
		return nil, nil, err
	}
	outs, err := read(idxSessionGetOutputCount, idxSessionGetOutputName, idxSessionGetOutputTypeInfo, "output")
	if err != nil {
		return nil, nil, err
	}
	return ins, outs, nil
}

// fillType sets the value type, and for tensors the element type and
// dimensions, from an OrtTypeInfo.
func (s *cSession) fillType(ti C.qs_s, dst *ort.InputOutputInfo) error {
	var onnxType C.int
	if err := s.status(C.qs_s_onnx_type(s.apiPtr(), idxGetOnnxTypeFromTypeInfo, ti, &onnxType)); err != nil {
		return err
	}
	dst.OrtValueType = ort.ONNXType(onnxType)
	dst.DataType = ort.TensorElementDataTypeUndefined
	if dst.OrtValueType != ort.ONNXTypeTensor && dst.OrtValueType != ort.ONNXTypeSparseTensor {
		return nil
	}
	var tinfo C.qs_s // owned by ti: not released
	if err := s.status(C.qs_s_cast(s.apiPtr(), idxCastTypeInfoToTensorInfo, ti, &tinfo)); err != nil {
		return err
	}
	if tinfo == nil {
		return errors.New("no tensor type information")
	}
	return s.fillTensorInfo(tinfo, dst)
}

// fillTensorInfo reads the element type and dimensions of an
// OrtTensorTypeAndShapeInfo.
func (s *cSession) fillTensorInfo(tinfo C.qs_s, dst *ort.InputOutputInfo) error {
	var elem C.int
	if err := s.status(C.qs_s_elem(s.apiPtr(), idxGetTensorElementType, tinfo, &elem)); err != nil {
		return err
	}
	dst.DataType = ort.TensorElementDataType(elem)
	var n C.size_t
	if err := s.status(C.qs_s_dimcount(s.apiPtr(), idxGetDimensionsCount, tinfo, &n)); err != nil {
		return err
	}
	dst.Dimensions = ort.Shape{}
	if n == 0 {
		return nil
	}
	dims := make([]int64, int(n))
	if err := s.status(C.qs_s_dims(s.apiPtr(), idxGetDimensions, tinfo, (*C.int64_t)(unsafe.Pointer(&dims[0])), n)); err != nil {
		return err
	}
	dst.Dimensions = ort.Shape(dims)
	return nil
}

// run calls OrtApi::Run with the given names and values (output entries
// may be nil for ONNX Runtime to allocate them). The arrays are C memory:
// ONNX Runtime must never be handed Go memory that holds pointers.
// An error names the operation and the model.
func (s *cSession) run(inNames, ins, outNames, outs cArray) error {
	err := s.status(C.qs_s_run(s.apiPtr(), idxRun, C.qs_s(s.ptr),
		(**C.char)(inNames.p), (*C.qs_s)(ins.p), C.size_t(ins.n),
		(**C.char)(outNames.p), C.size_t(outs.n), (*C.qs_s)(outs.p)))
	if err != nil {
		return fmt.Errorf("run %s: %w", s.path, err)
	}
	return nil
}

// cArray is a C-allocated array of n pointers.
type cArray struct {
	p unsafe.Pointer
	n int
}

// newCArray allocates a zeroed array of n pointers (at least one slot).
// It uses cgo's C.malloc, which never returns nil (like a Go allocation, it
// ends the process when memory is exhausted), so p is never nil.
func newCArray(n int) cArray {
	a := cArray{p: C.malloc(C.size_t(max(n, 1)) * C.size_t(unsafe.Sizeof(uintptr(0)))), n: n}
	clear(a.slots())
	return a
}

func (a cArray) slots() []unsafe.Pointer { return unsafe.Slice((*unsafe.Pointer)(a.p), max(a.n, 1)) }

// set stores v at i.
func (a cArray) set(i int, v unsafe.Pointer) { a.slots()[i] = v }

// get returns the pointer at i.
func (a cArray) get(i int) unsafe.Pointer { return a.slots()[i] }

// free releases the array itself (not what it points to).
func (a *cArray) free() {
	if a.p != nil {
		C.free(a.p)
		a.p, a.n = nil, 0
	}
}

// cStrings copies names into C strings held in a cArray; freeCStrings
// releases both.
func cStrings(names []string) cArray {
	a := newCArray(len(names))
	for i, n := range names {
		a.set(i, unsafe.Pointer(C.CString(n)))
	}
	return a
}

func freeCStrings(a *cArray) {
	for i := 0; i < a.n; i++ {
		C.free(a.get(i))
	}
	a.free()
}

// cBuffer allocates n zeroed bytes of C memory (at least one) for tensor
// data, whose size comes from the model. calloc's NULL (no memory left for
// a tensor that large) is an error naming the size, not a crash later.
func cBuffer(n int) (unsafe.Pointer, error) {
	p := C.calloc(C.size_t(max(n, 1)), 1)
	if p == nil {
		return nil, fmt.Errorf("allocate %d bytes of host memory for a tensor: out of memory", n)
	}
	return p, nil
}

// cFree frees C memory from cBuffer.
func cFree(p unsafe.Pointer) {
	if p != nil {
		C.free(p)
	}
}

// valueTensorInfo reads the element type and shape of a tensor OrtValue.
func (s *cSession) valueTensorInfo(v unsafe.Pointer) (ort.InputOutputInfo, error) {
	var info ort.InputOutputInfo
	var tinfo C.qs_s
	if err := s.status(C.qs_s_value_shape(s.apiPtr(), idxGetTensorTypeAndShape, C.qs_s(v), &tinfo)); err != nil {
		return info, err
	}
	defer C.qs_s_release(s.apiPtr(), idxReleaseTensorTypeAndShape, tinfo)
	info.OrtValueType = ort.ONNXTypeTensor
	err := s.fillTensorInfo(tinfo, &info)
	return info, err
}

// valueData returns a tensor OrtValue's data pointer.
func (s *cSession) valueData(v unsafe.Pointer) (unsafe.Pointer, error) {
	var p unsafe.Pointer
	err := s.status(C.qs_s_value_data(s.apiPtr(), idxGetTensorMutableData, C.qs_s(v), &p))
	return p, err
}

// endProfiling stops ONNX Runtime's profiler and returns the file it wrote
// (SessionEndProfiling). Runs after this one are not profiled.
func (s *cSession) endProfiling() (string, error) {
	if !s.profiling {
		return "", errors.New("end profiling: the session was not opened with profiling on")
	}
	var alloc C.qs_s
	if err := s.status(C.qs_s_default_alloc(s.apiPtr(), idxGetAllocatorWithDefaultOpts, &alloc)); err != nil {
		return "", fmt.Errorf("end profiling: %w", err)
	}
	var out *C.char
	if err := s.status(C.qs_s_end_profiling(s.apiPtr(), idxSessionEndProfiling, C.qs_s(s.ptr), alloc, &out)); err != nil {
		return "", fmt.Errorf("end profiling: %w", err)
	}
	s.profiling = false
	if out == nil {
		return "", errors.New("end profiling: ONNX Runtime returned no file name")
	}
	name := C.GoString(out)
	C.qs_s_free(s.apiPtr(), idxAllocatorFree, alloc, unsafe.Pointer(out))
	if name == "" {
		return "", errors.New("end profiling: ONNX Runtime wrote no profile")
	}
	return name, nil
}

// release frees the session.
func (s *cSession) release() {
	if s == nil || s.ptr == nil {
		return
	}
	C.qs_s_release(s.apiPtr(), idxReleaseSession, C.qs_s(s.ptr))
	s.ptr = nil
}
