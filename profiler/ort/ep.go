package ort

/*
#include <stdint.h>
#include <stdlib.h>

// Execution-provider devices (C API 1.22+), which onnxruntime_go v1.27.0 does
// not wrap: OrtApi entries reached by index, as in capi.go.
typedef void* qs_ptr;
typedef qs_ptr (*qs_create_env_fn)(int, const char*, qs_ptr*);
typedef qs_ptr (*qs_get_ep_devices_fn)(qs_ptr, const qs_ptr**, size_t*);
typedef qs_ptr (*qs_append_v2_fn)(qs_ptr, qs_ptr, const qs_ptr*, size_t, const char* const*, const char* const*, size_t);
typedef const char* (*qs_ep_str_fn)(qs_ptr);
typedef qs_ptr (*qs_ep_device_fn)(qs_ptr);
typedef int (*qs_hw_type_fn)(qs_ptr);
typedef uint32_t (*qs_hw_u32_fn)(qs_ptr);
typedef const char* (*qs_hw_str_fn)(qs_ptr);
typedef qs_ptr (*qs_ep_options_fn)(qs_ptr);
typedef void (*qs_kv_pairs_fn)(qs_ptr, const char* const**, const char* const**, size_t*);

static qs_ptr qs_create_env(const void* const* api, int idx, const char* id, qs_ptr* out) {
	return ((qs_create_env_fn)api[idx])(2, id, out); // ORT_LOGGING_LEVEL_WARNING
}
static qs_ptr qs_get_ep_devices(const void* const* api, int idx, qs_ptr env, const qs_ptr** out, size_t* n) {
	return ((qs_get_ep_devices_fn)api[idx])(env, out, n);
}
static qs_ptr qs_append_v2(const void* const* api, int idx, qs_ptr so, qs_ptr env, const qs_ptr* devs, size_t nd,
		const char* const* keys, const char* const* vals, size_t nkv) {
	return ((qs_append_v2_fn)api[idx])(so, env, devs, nd, keys, vals, nkv);
}
static const char* qs_ep_str(const void* const* api, int idx, qs_ptr d) { return ((qs_ep_str_fn)api[idx])(d); }
static qs_ptr qs_ep_device(const void* const* api, int idx, qs_ptr d) { return ((qs_ep_device_fn)api[idx])(d); }
static int qs_hw_type(const void* const* api, int idx, qs_ptr h) { return ((qs_hw_type_fn)api[idx])(h); }
static uint32_t qs_hw_u32(const void* const* api, int idx, qs_ptr h) { return ((qs_hw_u32_fn)api[idx])(h); }
static const char* qs_hw_str(const void* const* api, int idx, qs_ptr h) { return ((qs_hw_str_fn)api[idx])(h); }
static qs_ptr qs_index_ptr(const qs_ptr* arr, size_t i) { return arr[i]; }
static qs_ptr qs_ep_options(const void* const* api, int idx, qs_ptr d) { return ((qs_ep_options_fn)api[idx])(d); }
static void qs_kv_pairs(const void* const* api, int idx, qs_ptr kv, const char* const** keys, const char* const** vals, size_t* n) {
	((qs_kv_pairs_fn)api[idx])(kv, keys, vals, n);
}
static const char* qs_index_str(const char* const* arr, size_t i) { return arr[i]; }
*/
import "C"

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// OrtApi indices of the EP-device entries (API version 24), checked against
// onnxruntime_c_api.h by TestOrtApiIndices and exercised on the CPU EP by
// TestEPDevicesAndAppendV2.
const (
	idxCreateEnv            = 3
	idxGetKeyValuePairs     = 298
	idxGetEpDevices         = 303
	idxAppendEPV2           = 304
	idxHardwareDeviceType   = 307
	idxHardwareDeviceVendID = 308
	idxHardwareDeviceVendor = 309
	idxHardwareDeviceID     = 310
	idxEpDeviceEpName       = 312
	idxEpDeviceEpVendor     = 313
	idxEpDeviceEpOptions    = 315
	idxEpDeviceDevice       = 316
)

// EPDevice is an execution provider paired with the hardware it runs on, as
// ONNX Runtime's GetEpDevices lists them (plugin EPs included once registered).
type EPDevice struct {
	EP       string `json:"ep"`        // e.g. "CUDAExecutionProvider"
	EPVendor string `json:"ep_vendor"` // e.g. "Microsoft"
	Hardware string `json:"hardware"`  // "cpu", "gpu" or "npu"
	Vendor   string `json:"vendor"`    // hardware vendor, e.g. "NVIDIA"
	VendorID uint32 `json:"vendor_id"`
	DeviceID uint32 `json:"device_id"` // the hardware's PCI device id
	// EPOptions are the provider options the EP attaches to this device;
	// the CUDA EP sets "device_id", the CUDA ordinal of the GPU.
	EPOptions map[string]string `json:"ep_options,omitempty"`
	// Ordinal is the device's number among the EP's devices: its
	// "device_id" option when the EP sets one, else its position.
	Ordinal int `json:"ordinal"`
	ptr     unsafe.Pointer
}

// envHandle returns the process's OrtEnv. ONNX Runtime keeps one environment
// per process, so CreateEnv hands back the one onnxruntime_go created (with
// its reference count raised for the life of the process).
func (c *capi) envHandle() (unsafe.Pointer, error) {
	if c.env != nil {
		return c.env, nil
	}
	id := C.CString("quantscope")
	defer C.free(unsafe.Pointer(id))
	var env C.qs_ptr
	if err := c.statusError(unsafe.Pointer(C.qs_create_env(c.api, idxCreateEnv, id, &env))); err != nil {
		return nil, fmt.Errorf("get ONNX Runtime environment: %w", err)
	}
	c.env = unsafe.Pointer(env)
	return c.env, nil
}

// epDevices calls OrtApi::GetEpDevices.
func (c *capi) epDevices() ([]EPDevice, error) {
	env, err := c.envHandle()
	if err != nil {
		return nil, err
	}
	var arr *C.qs_ptr
	var n C.size_t
	if err := c.statusError(unsafe.Pointer(C.qs_get_ep_devices(c.api, idxGetEpDevices, C.qs_ptr(env), &arr, &n))); err != nil {
		return nil, fmt.Errorf("GetEpDevices: %w", err)
	}
	out := make([]EPDevice, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		d := C.qs_index_ptr(arr, i)
		hw := C.qs_ep_device(c.api, idxEpDeviceDevice, d)
		dev := EPDevice{
			EP:       C.GoString(C.qs_ep_str(c.api, idxEpDeviceEpName, d)),
			EPVendor: C.GoString(C.qs_ep_str(c.api, idxEpDeviceEpVendor, d)),
			ptr:      unsafe.Pointer(d),
		}
		if kv := C.qs_ep_options(c.api, idxEpDeviceEpOptions, d); kv != nil {
			var keys, vals *C.char
			var nkv C.size_t
			C.qs_kv_pairs(c.api, idxGetKeyValuePairs, kv, (***C.char)(unsafe.Pointer(&keys)), (***C.char)(unsafe.Pointer(&vals)), &nkv)
			if nkv > 0 {
				dev.EPOptions = map[string]string{}
				k := (**C.char)(unsafe.Pointer(keys))
				v := (**C.char)(unsafe.Pointer(vals))
				for j := C.size_t(0); j < nkv; j++ {
					dev.EPOptions[C.GoString(C.qs_index_str(k, j))] = C.GoString(C.qs_index_str(v, j))
				}
			}
		}
		if hw != nil {
			dev.Hardware = hardwareType(int(C.qs_hw_type(c.api, idxHardwareDeviceType, hw)))
			dev.Vendor = C.GoString(C.qs_hw_str(c.api, idxHardwareDeviceVendor, hw))
			dev.VendorID = uint32(C.qs_hw_u32(c.api, idxHardwareDeviceVendID, hw))
			dev.DeviceID = uint32(C.qs_hw_u32(c.api, idxHardwareDeviceID, hw))
		}
		out = append(out, dev)
	}
	setOrdinals(out)
	return out, nil
}

// setOrdinals numbers each EP's devices: by the "device_id" option the EP
// gives a device, else by position among that EP's devices.
func setOrdinals(devs []EPDevice) {
	pos := map[string]int{}
	for i := range devs {
		d := &devs[i]
		d.Ordinal = pos[d.EP]
		pos[d.EP]++
		if v, ok := d.EPOptions["device_id"]; ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				d.Ordinal = n
			}
		}
	}
}

// DeviceIDOption returns the device_id provider option (0 when unset); a
// value that is not a non-negative integer is an error naming it.
func DeviceIDOption(options map[string]string) (int, error) {
	v, ok := options["device_id"]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--ep-option device_id=%s: want a GPU number (0, 1, ...)", v)
	}
	return n, nil
}

// PickEPDevice chooses the device of provider that a session with these
// provider options runs on: the one whose ordinal is device_id (0 when
// unset). One session runs on one device; its allocator and IO binding use
// that device's memory too.
func PickEPDevice(devs []EPDevice, provider string, options map[string]string) (EPDevice, error) {
	id, err := DeviceIDOption(options)
	if err != nil {
		return EPDevice{}, err
	}
	var all, ords []string
	for _, d := range devs {
		all = append(all, d.EP)
		if d.EP != provider {
			continue
		}
		if d.Ordinal == id {
			return d, nil
		}
		ords = append(ords, strconv.Itoa(d.Ordinal))
	}
	if len(ords) == 0 {
		return EPDevice{}, fmt.Errorf("no %s device: ONNX Runtime lists %v (is the plugin registered?)", provider, all)
	}
	return EPDevice{}, fmt.Errorf("device_id=%d: %s has devices %s only", id, provider, strings.Join(ords, ", "))
}

func hardwareType(t int) string {
	switch t {
	case 0:
		return "cpu"
	case 1:
		return "gpu"
	case 2:
		return "npu"
	}
	return fmt.Sprintf("type %d", t)
}

// sessionOptionsHandle reads the OrtSessionOptions pointer out of
// onnxruntime_go's SessionOptions, whose only field it is. TestSessionOptionsLayout
// fails if a new onnxruntime_go version changes that.
func sessionOptionsHandle(o *ort.SessionOptions) (unsafe.Pointer, error) {
	if err := checkSessionOptionsLayout(); err != nil {
		return nil, err
	}
	return *(*unsafe.Pointer)(unsafe.Pointer(o)), nil
}

func checkSessionOptionsLayout() error {
	t := reflect.TypeOf(ort.SessionOptions{})
	if t.NumField() != 1 || t.Field(0).Type.Kind() != reflect.Pointer || t.Field(0).Offset != 0 {
		return errors.New("onnxruntime_go's SessionOptions no longer holds just the C pointer: update profiler/ort/ep.go")
	}
	return nil
}

// appendEPV2 attaches devices (all of one EP) to the session options with
// provider options, through SessionOptionsAppendExecutionProvider_V2.
func (c *capi) appendEPV2(o *ort.SessionOptions, devs []EPDevice, options map[string]string) error {
	if len(devs) == 0 {
		return errors.New("append execution provider: no devices")
	}
	so, err := sessionOptionsHandle(o)
	if err != nil {
		return err
	}
	env, err := c.envHandle()
	if err != nil {
		return err
	}
	// C arrays live in C memory: cgo forbids Go memory holding Go pointers here.
	cdevs := newCArray(len(devs))
	defer cdevs.free()
	for i, d := range devs {
		cdevs.set(i, d.ptr)
	}
	keys := slices.Sorted(maps.Keys(options))
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = options[k]
	}
	ckeys, cvals := cStrings(keys), cStrings(vals)
	defer freeCStrings(&ckeys)
	defer freeCStrings(&cvals)
	st := C.qs_append_v2(c.api, idxAppendEPV2, C.qs_ptr(so), C.qs_ptr(env), (*C.qs_ptr)(cdevs.p), C.size_t(len(devs)),
		(**C.char)(ckeys.p), (**C.char)(cvals.p), C.size_t(len(keys)))
	if err := c.statusError(unsafe.Pointer(st)); err != nil {
		return fmt.Errorf("append %s: %w", devs[0].EP, err)
	}
	return nil
}

// EPDevices lists the execution-provider devices ONNX Runtime knows, including
// those of registered plugin libraries.
func EPDevices() ([]EPDevice, error) {
	api, err := loadedAPI()
	if err != nil {
		return nil, err
	}
	return api.epDevices()
}

// RegisterPlugin registers an execution-provider plugin library (such as the
// CUDA plugin from `make setup-cuda`) under name. Registering the same name
// twice is a no-op.
func RegisterPlugin(name, path string) error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.api == nil {
		return fmt.Errorf("register %s: %w (call ort.Init first)", path, ErrNoLibrary)
	}
	if env.plugins[name] {
		return nil
	}
	if err := ort.RegisterExecutionProviderLibrary(name, path); err != nil {
		return fmt.Errorf("register execution provider library %s: %w", path, err)
	}
	if env.plugins == nil {
		env.plugins = map[string]bool{}
	}
	env.plugins[name] = true
	return nil
}

func loadedAPI() (*capi, error) {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.api == nil {
		return nil, fmt.Errorf("%w (call ort.Init first)", ErrNoLibrary)
	}
	return env.api, nil
}
