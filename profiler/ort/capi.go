package ort

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>

// The ONNX Runtime C API is a table of function pointers (struct OrtApi) whose
// order is fixed by ONNX Runtime's ABI promise: entries are only ever appended.
// quantscope reaches the entries onnxruntime_go does not wrap by their index
// in that table: the idx constants of this package, each checked against
// the header's struct OrtApi by TestOrtApiIndices (capi_test.go).

typedef struct {
	const void* (*GetApi)(uint32_t version);
	const char* (*GetVersionString)(void);
} qs_api_base;

typedef qs_api_base* (*qs_get_api_base_fn)(void);
typedef void* qs_status;
typedef const char* (*qs_error_message_fn)(const qs_status);
typedef void (*qs_release_status_fn)(qs_status);
typedef qs_status (*qs_get_providers_fn)(char***, int*);
typedef qs_status (*qs_release_providers_fn)(char**, int);
typedef const char* (*qs_build_info_fn)(void);

static void* qs_open(const char* path, char** err) {
	void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char* e = dlerror();
		*err = (char*)(e ? e : "dlopen failed");
	}
	return h;
}

static void qs_close(void* h) { if (h) dlclose(h); }

static const qs_api_base* qs_api_base_of(void* h) {
	qs_get_api_base_fn f = (qs_get_api_base_fn)dlsym(h, "OrtGetApiBase");
	if (!f) return NULL;
	return f();
}

static const char* qs_version(const qs_api_base* b) { return b->GetVersionString(); }

static const void* const* qs_get_api(const qs_api_base* b, uint32_t v) {
	return (const void* const*)b->GetApi(v);
}

static const char* qs_status_message(const void* const* api, int idx, qs_status s) {
	return ((qs_error_message_fn)api[idx])(s);
}

static void qs_release_status(const void* const* api, int idx, qs_status s) {
	((qs_release_status_fn)api[idx])(s);
}

static qs_status qs_get_providers(const void* const* api, int idx, char*** out, int* n) {
	return ((qs_get_providers_fn)api[idx])(out, n);
}

static qs_status qs_release_providers(const void* const* api, int idx, char** p, int n) {
	return ((qs_release_providers_fn)api[idx])(p, n);
}

static const char* qs_build_info(const void* const* api, int idx) {
	return ((qs_build_info_fn)api[idx])();
}

static char* qs_index_string(char** arr, int i) { return arr[i]; }
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// apiVersion is the OrtApi version quantscope asks for; onnxruntime_go v1.27.0
// is built against it, so libraries older than ONNX Runtime 1.24 cannot serve it.
const apiVersion = 24

// Indices of OrtApi entries that onnxruntime_go does not wrap, counted from
// struct OrtApi in onnxruntime_c_api.h (API version 24). TestOrtApiIndices
// checks them against the header onnxruntime_go ships; the loader tests
// call them on the real library.
const (
	idxGetErrorMessage           = 2
	idxReleaseStatus             = 93
	idxGetAvailableProviders     = 125
	idxReleaseAvailableProviders = 126
	idxGetBuildInfoString        = 254
)

// capi is a handle on one ONNX Runtime library's C API table.
type capi struct {
	handle  unsafe.Pointer
	base    *C.qs_api_base
	api     *unsafe.Pointer // const void* const* — the OrtApi table (nil when the version is unsupported)
	version string
	env     unsafe.Pointer // the process's OrtEnv, fetched on first use
}

// errNotORT marks a shared library that is not ONNX Runtime.
var errNotORT = errors.New("not an ONNX Runtime library (no OrtGetApiBase symbol)")

// openCAPI dlopens path and reads its version; the API table is fetched only
// when the library supports apiVersion. A library that is not ONNX Runtime
// is closed again; a caller that rejects the one returned closes it (close).
func openCAPI(path string) (*capi, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cerr *C.char
	h := C.qs_open(cpath, &cerr)
	if h == nil {
		return nil, fmt.Errorf("dlopen: %s", C.GoString(cerr))
	}
	base := C.qs_api_base_of(h)
	if base == nil {
		C.qs_close(h)
		return nil, errNotORT
	}
	c := &capi{handle: h, base: base, version: C.GoString(C.qs_version(base))}
	api := C.qs_get_api(base, apiVersion)
	if api != nil {
		c.api = (*unsafe.Pointer)(unsafe.Pointer(api))
	}
	return c, nil
}

// close releases the dlopen handle of a library that was not chosen. The
// handle of the library in use is kept for the life of the process: its
// API table stays reachable through env.api.
func (c *capi) close() {
	if c == nil || c.handle == nil {
		return
	}
	C.qs_close(c.handle)
	c.handle, c.base, c.api = nil, nil, nil
}

// statusError turns an OrtStatus into a Go error and releases it.
func (c *capi) statusError(p unsafe.Pointer) error {
	if p == nil {
		return nil
	}
	s := C.qs_status(p)
	msg := C.GoString(C.qs_status_message(c.api, idxGetErrorMessage, s))
	C.qs_release_status(c.api, idxReleaseStatus, s)
	return errors.New(msg)
}

// availableProviders calls OrtApi::GetAvailableProviders.
func (c *capi) availableProviders() ([]string, error) {
	if c.api == nil {
		return nil, fmt.Errorf("ONNX Runtime %s does not offer C API version %d", c.version, apiVersion)
	}
	var arr **C.char
	var n C.int
	if err := c.statusError(unsafe.Pointer(C.qs_get_providers(c.api, idxGetAvailableProviders, &arr, &n))); err != nil {
		return nil, fmt.Errorf("GetAvailableProviders: %w", err)
	}
	out := make([]string, 0, int(n))
	for i := 0; i < int(n); i++ {
		out = append(out, C.GoString(C.qs_index_string(arr, C.int(i))))
	}
	if err := c.statusError(unsafe.Pointer(C.qs_release_providers(c.api, idxReleaseAvailableProviders, arr, n))); err != nil {
		return out, fmt.Errorf("ReleaseAvailableProviders: %w", err)
	}
	return out, nil
}

// buildInfo calls OrtApi::GetBuildInfoString ("ORT Build Info: git-branch=…").
func (c *capi) buildInfo() string {
	if c.api == nil {
		return ""
	}
	return C.GoString(C.qs_build_info(c.api, idxGetBuildInfoString))
}
