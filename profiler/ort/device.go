package ort

/*
#include <stdint.h>
#include <stdlib.h>

// Device-resident IO binding through OrtApi entries onnxruntime_go does not
// wrap (indices below, checked against the header by TestOrtApiIndices in
// capi_test.go and called on the CPU EP by device_test.go).
typedef void* qs_p;
typedef void (*qs_release_fn)(qs_p);
typedef qs_p (*qs_create_mem_info_fn)(const char*, int, int, int, qs_p*);
typedef qs_p (*qs_create_cpu_mem_info_fn)(int, int, qs_p*);
typedef qs_p (*qs_ep_mem_info_fn)(qs_p, int);
typedef qs_p (*qs_create_allocator_fn)(qs_p, qs_p, qs_p*);
typedef qs_p (*qs_create_tensor_fn)(qs_p, const int64_t*, size_t, int, qs_p*);
typedef qs_p (*qs_create_tensor_data_fn)(qs_p, void*, size_t, const int64_t*, size_t, int, qs_p*);
typedef qs_p (*qs_create_binding_fn)(qs_p, qs_p*);
typedef qs_p (*qs_bind_fn)(qs_p, const char*, qs_p);
typedef qs_p (*qs_run_binding_fn)(qs_p, qs_p, qs_p);
typedef qs_p (*qs_copy_tensors_fn)(qs_p, const qs_p*, const qs_p*, qs_p, size_t);
typedef qs_p (*qs_mutable_data_fn)(qs_p, void**);
typedef qs_p (*qs_mem_info_name_fn)(qs_p, const char**);

#define QS_CALL(T, api, idx) ((T)((const void* const*)(api))[idx])

static void qs_release(const void* api, int idx, qs_p p) { if (p) QS_CALL(qs_release_fn, api, idx)(p); }
static qs_p qs_create_mem_info(const void* api, int idx, const char* name, int id, qs_p* out) {
	return QS_CALL(qs_create_mem_info_fn, api, idx)(name, 0, id, 0, out); // OrtDeviceAllocator, OrtMemTypeDefault
}
static qs_p qs_create_cpu_mem_info(const void* api, int idx, qs_p* out) {
	return QS_CALL(qs_create_cpu_mem_info_fn, api, idx)(0, 0, out);
}
static qs_p qs_ep_mem_info(const void* api, int idx, qs_p dev, int mem_type) {
	return QS_CALL(qs_ep_mem_info_fn, api, idx)(dev, mem_type); // OrtDeviceMemoryType: 0 DEFAULT, 1 HOST_ACCESSIBLE
}
static qs_p qs_mem_info_name(const void* api, int idx, qs_p mi, const char** out) {
	return QS_CALL(qs_mem_info_name_fn, api, idx)(mi, out);
}
static qs_p qs_create_allocator(const void* api, int idx, qs_p sess, qs_p mi, qs_p* out) {
	return QS_CALL(qs_create_allocator_fn, api, idx)(sess, mi, out);
}
static qs_p qs_create_tensor(const void* api, int idx, qs_p alloc, const int64_t* shape, size_t n, qs_p* out) {
	return QS_CALL(qs_create_tensor_fn, api, idx)(alloc, shape, n, 1, out); // FLOAT
}
static qs_p qs_create_tensor_data(const void* api, int idx, qs_p mi, void* data, size_t bytes, const int64_t* shape, size_t n, qs_p* out) {
	return QS_CALL(qs_create_tensor_data_fn, api, idx)(mi, data, bytes, shape, n, 1, out);
}
static qs_p qs_create_binding(const void* api, int idx, qs_p sess, qs_p* out) {
	return QS_CALL(qs_create_binding_fn, api, idx)(sess, out);
}
static qs_p qs_bind(const void* api, int idx, qs_p b, const char* name, qs_p v) {
	return QS_CALL(qs_bind_fn, api, idx)(b, name, v);
}
static qs_p qs_run_binding(const void* api, int idx, qs_p sess, qs_p b) {
	return QS_CALL(qs_run_binding_fn, api, idx)(sess, NULL, b);
}
static qs_p qs_mutable_data(const void* api, int idx, qs_p v, void** out) {
	return QS_CALL(qs_mutable_data_fn, api, idx)(v, out);
}
static qs_p qs_copy_tensors(const void* api, int idx, qs_p env, const qs_p* src, const qs_p* dst, size_t n) {
	return QS_CALL(qs_copy_tensors_fn, api, idx)(env, src, dst, NULL, n);
}
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// OrtApi indices for device-resident binding (API version 24), checked
// against onnxruntime_c_api.h by TestOrtApiIndices; TestDeviceBoundOnCPU,
// TestEpDeviceMemoryInfoEntry and TestCopyTensorsEntry call them.
const (
	idxCreateSession          = 7
	idxCreateTensorAsOrtValue = 48
	idxCreateTensorWithData   = 49
	idxGetTensorMutableData   = 51
	idxCreateMemoryInfo       = 68
	idxCreateCpuMemoryInfo    = 69
	idxMemoryInfoGetName      = 71
	idxReleaseMemoryInfo      = 94
	idxReleaseSession         = 95
	idxReleaseValue           = 96
	idxCreateAllocator        = 131
	idxReleaseAllocator       = 132
	idxRunWithBinding         = 133
	idxCreateIoBinding        = 134
	idxReleaseIoBinding       = 135
	idxBindInput              = 136
	idxBindOutput             = 137
	idxEpDeviceMemoryInfo     = 374
	idxCopyTensors            = 386
)

// DeviceBound is a session whose inputs and outputs live in the execution
// provider's own memory (GPU memory for CUDA) and stay there between runs:
// Run times the model, not PCIe copies. Host copies happen only in
// CopyInputs and CopyOutputs, whose durations are measured separately.
type DeviceBound struct {
	api     *capi
	sess    *cSession
	memInfo unsafe.Pointer // device memory (owned unless borrowed from an EP device)
	ownMI   bool
	cpuMI   unsafe.Pointer
	alloc   unsafe.Pointer
	binding unsafe.Pointer
	devIn   []unsafe.Pointer // device tensors
	devOut  []unsafe.Pointer
	hostIn  []unsafe.Pointer // host tensors over hostInData
	hostOut []unsafe.Pointer
	// C-allocated host buffers (Go memory must not be held by ORT).
	hostInData  []unsafe.Pointer
	hostOutData []unsafe.Pointer
	inLen       []int
	outLen      []int
	cstrs       []*C.char
	Batch       int
	InShape     [][]int64
	OutShape    [][]int64
	// Memory names where the tensors live, e.g. MemoryCUDA or MemoryCPU.
	Memory MemoryName
	// DeviceID is the device the tensors live on (device_id; 0 for the CPU).
	DeviceID int
}

// NewDeviceBound opens path with cfg and binds device-resident tensors at
// batch. For the CUDA plugin route the device memory comes from the EP
// device that device_id picks (PickEPDevice); for a builtin CUDA build it is
// "Cuda" memory of device_id; for the CPU EP it is host memory (the same
// mechanics, which the tests exercise). One session is created, and the
// model's inputs and outputs are read from it.
func NewDeviceBound(path string, cfg SessionConfig, batch int) (*DeviceBound, error) {
	if batch < 1 {
		return nil, fmt.Errorf("batch size %d: must be at least 1", batch)
	}
	api, err := loadedAPI()
	if err != nil {
		return nil, err
	}
	// The device comes first: a device_id that names no device fails here,
	// before a session uploads anything. The plugin's devices are listed only
	// once it is registered (attachEP would do it for the session).
	if cfg.EP == "cuda" && cfg.EPRoute != "builtin" && cfg.EPPlugin != "" {
		if err := RegisterPlugin(cudaPluginName, cfg.EPPlugin); err != nil {
			return nil, err
		}
	}
	d := &DeviceBound{api: api, Batch: batch}
	fail := func(err error) (*DeviceBound, error) {
		d.Close()
		return nil, fmt.Errorf("bind %s on device: %w", path, err)
	}
	if err := d.pickMemory(cfg); err != nil {
		return fail(err)
	}
	sess, ins, outs, err := openCSession(path, cfg)
	if err != nil {
		d.Close()
		return nil, err
	}
	d.sess = sess
	st := func(p C.qs_p) error { return api.statusError(unsafe.Pointer(p)) }

	var cpu C.qs_p
	if err := st(C.qs_create_cpu_mem_info(unsafe.Pointer(api.api), idxCreateCpuMemoryInfo, &cpu)); err != nil {
		return fail(err)
	}
	d.cpuMI = unsafe.Pointer(cpu)
	var alloc C.qs_p
	if err := st(C.qs_create_allocator(unsafe.Pointer(api.api), idxCreateAllocator, C.qs_p(d.sess.ptr), C.qs_p(d.memInfo), &alloc)); err != nil {
		return fail(fmt.Errorf("allocator for %s memory of device %d: %w", d.Memory, d.DeviceID, err))
	}
	d.alloc = unsafe.Pointer(alloc)
	var binding C.qs_p
	if err := st(C.qs_create_binding(unsafe.Pointer(api.api), idxCreateIoBinding, C.qs_p(d.sess.ptr), &binding)); err != nil {
		return fail(err)
	}
	d.binding = unsafe.Pointer(binding)

	for _, in := range ins {
		shape, err := resolveShape(in, batch, cfg.ImageSize)
		if err != nil {
			return fail(err)
		}
		dev, host, hostData, n, err := d.pair(shape)
		if err != nil {
			return fail(fmt.Errorf("input %q: %w", in.Name, err))
		}
		d.devIn, d.hostIn, d.hostInData, d.inLen = append(d.devIn, dev), append(d.hostIn, host), append(d.hostInData, hostData), append(d.inLen, n)
		d.InShape = append(d.InShape, shape)
		if err := st(C.qs_bind(unsafe.Pointer(api.api), idxBindInput, C.qs_p(d.binding), d.cstr(in.Name), C.qs_p(dev))); err != nil {
			return fail(fmt.Errorf("bind input %q: %w", in.Name, err))
		}
	}
	for _, out := range outs {
		shape, err := resolveShape(out, batch, 0)
		if err != nil {
			return fail(err)
		}
		dev, host, hostData, n, err := d.pair(shape)
		if err != nil {
			return fail(fmt.Errorf("output %q: %w", out.Name, err))
		}
		d.devOut, d.hostOut, d.hostOutData, d.outLen = append(d.devOut, dev), append(d.hostOut, host), append(d.hostOutData, hostData), append(d.outLen, n)
		d.OutShape = append(d.OutShape, shape)
		if err := st(C.qs_bind(unsafe.Pointer(api.api), idxBindOutput, C.qs_p(d.binding), d.cstr(out.Name), C.qs_p(dev))); err != nil {
			return fail(fmt.Errorf("bind output %q: %w", out.Name, err))
		}
	}
	return d, nil
}

// pickMemory chooses the memory the bound tensors live in: that of the
// device device_id names.
func (d *DeviceBound) pickMemory(cfg SessionConfig) error {
	st := func(p C.qs_p) error { return d.api.statusError(unsafe.Pointer(p)) }
	switch {
	case cfg.EP == "cuda" && cfg.EPRoute != "builtin":
		devs, err := d.api.epDevices()
		if err != nil {
			return err
		}
		dev, err := PickEPDevice(devs, CUDAProvider, cfg.EPOptions)
		if err != nil {
			return err
		}
		mi := d.api.epDeviceMemoryInfo(dev, epMemoryDefault)
		if mi == nil {
			return fmt.Errorf("CUDA EP device %d reports no device memory (EpDevice_MemoryInfo returned none)", dev.Ordinal)
		}
		d.memInfo, d.ownMI, d.Memory, d.DeviceID = mi, false, d.api.memoryInfoName(mi), dev.Ordinal
		return nil
	case cfg.EP == "cuda" || cfg.EP == "tensorrt":
		id, err := DeviceIDOption(cfg.EPOptions)
		if err != nil {
			return err
		}
		name := C.CString(string(MemoryCUDA))
		defer C.free(unsafe.Pointer(name))
		var mi C.qs_p
		if err := st(C.qs_create_mem_info(unsafe.Pointer(d.api.api), idxCreateMemoryInfo, name, C.int(id), &mi)); err != nil {
			return err
		}
		d.memInfo, d.ownMI, d.Memory, d.DeviceID = unsafe.Pointer(mi), true, MemoryCUDA, id
		return nil
	default:
		var mi C.qs_p
		if err := st(C.qs_create_cpu_mem_info(unsafe.Pointer(d.api.api), idxCreateCpuMemoryInfo, &mi)); err != nil {
			return err
		}
		d.memInfo, d.ownMI, d.Memory = unsafe.Pointer(mi), true, MemoryCPU
		return nil
	}
}

// pair allocates a device tensor and a host tensor (over a C buffer) of shape.
func (d *DeviceBound) pair(shape []int64) (dev, host, hostData unsafe.Pointer, n int, err error) {
	st := func(p C.qs_p) error { return d.api.statusError(unsafe.Pointer(p)) }
	n = 1
	for _, v := range shape {
		n *= int(v)
	}
	cshape := (*C.int64_t)(C.malloc(C.size_t(8 * len(shape))))
	defer C.free(unsafe.Pointer(cshape))
	copy(unsafe.Slice((*int64)(unsafe.Pointer(cshape)), len(shape)), shape)
	var dv C.qs_p
	if err = st(C.qs_create_tensor(unsafe.Pointer(d.api.api), idxCreateTensorAsOrtValue, C.qs_p(d.alloc), cshape, C.size_t(len(shape)), &dv)); err != nil {
		return nil, nil, nil, 0, fmt.Errorf("allocate %v in %s memory: %w", shape, d.Memory, err)
	}
	if hostData, err = cBuffer(4 * n); err != nil {
		C.qs_release(unsafe.Pointer(d.api.api), idxReleaseValue, dv)
		return nil, nil, nil, 0, fmt.Errorf("host copy of %v: %w", shape, err)
	}
	var hv C.qs_p
	if err = st(C.qs_create_tensor_data(unsafe.Pointer(d.api.api), idxCreateTensorWithData, C.qs_p(d.cpuMI), hostData, C.size_t(4*n), cshape, C.size_t(len(shape)), &hv)); err != nil {
		C.qs_release(unsafe.Pointer(d.api.api), idxReleaseValue, dv)
		cFree(hostData)
		return nil, nil, nil, 0, err
	}
	return unsafe.Pointer(dv), unsafe.Pointer(hv), hostData, n, nil
}

func (d *DeviceBound) cstr(s string) *C.char {
	c := C.CString(s)
	d.cstrs = append(d.cstrs, c)
	return c
}

// Input returns input i's host staging buffer: write it, then CopyInputs.
func (d *DeviceBound) Input(i int) []float32 {
	return unsafe.Slice((*float32)(d.hostInData[i]), d.inLen[i])
}

// Output returns output i's host copy, valid after CopyOutputs.
func (d *DeviceBound) Output(i int) []float32 {
	return unsafe.Slice((*float32)(d.hostOutData[i]), d.outLen[i])
}

// CopyInputs copies the host staging buffers to the device and returns how
// long it took (host→device transfer time).
func (d *DeviceBound) CopyInputs() (time.Duration, error) {
	return d.copyAll(d.hostIn, d.devIn)
}

// CopyOutputs copies the device outputs to the host buffers and returns how
// long it took (device→host transfer time).
func (d *DeviceBound) CopyOutputs() (time.Duration, error) {
	return d.copyAll(d.devOut, d.hostOut)
}

func (d *DeviceBound) copyAll(src, dst []unsafe.Pointer) (time.Duration, error) {
	env, err := d.api.envHandle()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if d.Memory == MemoryCPU {
		// Host to host: CopyTensors only knows EP data transfers.
		for i := range src {
			var s, t unsafe.Pointer
			if err := d.api.statusError(unsafe.Pointer(C.qs_mutable_data(unsafe.Pointer(d.api.api), idxGetTensorMutableData, C.qs_p(src[i]), &s))); err != nil {
				return 0, err
			}
			if err := d.api.statusError(unsafe.Pointer(C.qs_mutable_data(unsafe.Pointer(d.api.api), idxGetTensorMutableData, C.qs_p(dst[i]), &t))); err != nil {
				return 0, err
			}
			n := d.tensorBytes(src[i])
			copy(unsafe.Slice((*byte)(t), n), unsafe.Slice((*byte)(s), n))
		}
		return time.Since(start), nil
	}
	if err := d.api.copyTensors(env, src, dst); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// copyTensors copies src[i] to dst[i] through OrtApi::CopyTensors: the data
// transfer of the EP that owns the memory (the CUDA plugin's for GPU
// memory). All source tensors share one memory, all destinations another.
func (c *capi) copyTensors(env unsafe.Pointer, src, dst []unsafe.Pointer) error {
	if len(src) != len(dst) {
		return fmt.Errorf("copy tensors: %d sources, %d destinations", len(src), len(dst))
	}
	if len(src) == 0 {
		return nil
	}
	s, t := newCArray(len(src)), newCArray(len(dst))
	defer s.free()
	defer t.free()
	for i := range src {
		s.set(i, src[i])
		t.set(i, dst[i])
	}
	st := C.qs_copy_tensors(unsafe.Pointer(c.api), idxCopyTensors, C.qs_p(env), (*C.qs_p)(s.p), (*C.qs_p)(t.p), C.size_t(len(src)))
	if err := c.statusError(unsafe.Pointer(st)); err != nil {
		return fmt.Errorf("copy tensors: %w", err)
	}
	return nil
}

// epMemoryType is OrtDeviceMemoryType: which memory of an EP device.
type epMemoryType int

const (
	epMemoryDefault        epMemoryType = 0 // OrtDeviceMemoryType_DEFAULT: the device's own
	epMemoryHostAccessible epMemoryType = 1 // OrtDeviceMemoryType_HOST_ACCESSIBLE: pinned host memory
)

// epDeviceMemoryInfo is OrtApi::EpDevice_MemoryInfo: the device's default
// memory, or its host-accessible (pinned) memory; nil when the EP sets
// none (the CPU EP: it uses host memory). ONNX Runtime owns the result.
func (c *capi) epDeviceMemoryInfo(dev EPDevice, t epMemoryType) unsafe.Pointer {
	return unsafe.Pointer(C.qs_ep_mem_info(unsafe.Pointer(c.api), idxEpDeviceMemoryInfo, C.qs_p(dev.ptr), C.int(t)))
}

// memoryInfoName is the name of an OrtMemoryInfo ("Cpu", "Cuda", "CUDA").
func (c *capi) memoryInfoName(mi unsafe.Pointer) MemoryName {
	var name *C.char
	if err := c.statusError(unsafe.Pointer(C.qs_mem_info_name(unsafe.Pointer(c.api), idxMemoryInfoGetName, C.qs_p(mi), &name))); err != nil || name == nil {
		return "unnamed"
	}
	return MemoryName(C.GoString(name))
}

// tensorBytes is the byte size of one of the bound tensors.
func (d *DeviceBound) tensorBytes(v unsafe.Pointer) int {
	for i, p := range d.hostIn {
		if p == v || d.devIn[i] == v {
			return 4 * d.inLen[i]
		}
	}
	for i, p := range d.hostOut {
		if p == v || d.devOut[i] == v {
			return 4 * d.outLen[i]
		}
	}
	return 0
}

// EndProfile ends the profiling the session was opened with
// (SessionConfig.ProfilePrefix) and returns what it recorded; the profile
// file is removed. Runs after it are not profiled.
func (d *DeviceBound) EndProfile() (Profile, error) { return endProfile(d.sess) }

// Run runs the model on the bound device tensors. An error names the
// operation, the model and the memory the tensors live in.
func (d *DeviceBound) Run() error {
	err := d.api.statusError(unsafe.Pointer(C.qs_run_binding(unsafe.Pointer(d.api.api), idxRunWithBinding, C.qs_p(d.sess.ptr), C.qs_p(d.binding))))
	if err != nil {
		return fmt.Errorf("run %s with %s-resident inputs and outputs: %w", d.sess.path, d.Memory, err)
	}
	return nil
}

// Close releases everything, in reverse order of creation.
func (d *DeviceBound) Close() error {
	if d == nil || d.api == nil {
		return nil
	}
	a := unsafe.Pointer(d.api.api)
	rel := func(idx int, p unsafe.Pointer) {
		if p != nil {
			C.qs_release(a, C.int(idx), C.qs_p(p))
		}
	}
	rel(idxReleaseIoBinding, d.binding)
	for _, v := range append(append(append(d.devIn, d.devOut...), d.hostIn...), d.hostOut...) {
		rel(idxReleaseValue, v)
	}
	for _, p := range append(d.hostInData, d.hostOutData...) {
		C.free(p)
	}
	rel(idxReleaseAllocator, d.alloc)
	d.sess.release()
	if d.ownMI {
		rel(idxReleaseMemoryInfo, d.memInfo)
	}
	rel(idxReleaseMemoryInfo, d.cpuMI)
	for _, c := range d.cstrs {
		C.free(unsafe.Pointer(c))
	}
	*d = DeviceBound{}
	return nil
}

// cpuMemInfo creates an OrtMemoryInfo for host memory (release it with
// releaseMemInfo).
func (c *capi) cpuMemInfo() (unsafe.Pointer, error) {
	var mi C.qs_p
	if err := c.statusError(unsafe.Pointer(C.qs_create_cpu_mem_info(unsafe.Pointer(c.api), idxCreateCpuMemoryInfo, &mi))); err != nil {
		return nil, fmt.Errorf("CPU memory info: %w", err)
	}
	return unsafe.Pointer(mi), nil
}

// hostTensor wraps data (C memory of 4·Numel(shape) bytes) in a float32
// tensor OrtValue of mi's memory; the value does not own data.
func (c *capi) hostTensor(mi, data unsafe.Pointer, shape []int64) (unsafe.Pointer, error) {
	n := 1
	for _, v := range shape {
		n *= int(v)
	}
	cshape := (*C.int64_t)(C.malloc(C.size_t(8 * max(len(shape), 1))))
	defer C.free(unsafe.Pointer(cshape))
	copy(unsafe.Slice((*int64)(unsafe.Pointer(cshape)), len(shape)), shape)
	var v C.qs_p
	st := C.qs_create_tensor_data(unsafe.Pointer(c.api), idxCreateTensorWithData, C.qs_p(mi), data, C.size_t(4*n), cshape, C.size_t(len(shape)), &v)
	if err := c.statusError(unsafe.Pointer(st)); err != nil {
		return nil, err
	}
	return unsafe.Pointer(v), nil
}

// releaseValue releases an OrtValue (nil is ignored).
func (c *capi) releaseValue(v unsafe.Pointer) {
	C.qs_release(unsafe.Pointer(c.api), idxReleaseValue, C.qs_p(v))
}

// releaseMemInfo releases an OrtMemoryInfo (nil is ignored).
func (c *capi) releaseMemInfo(mi unsafe.Pointer) {
	C.qs_release(unsafe.Pointer(c.api), idxReleaseMemoryInfo, C.qs_p(mi))
}
