package ort

/*
#include <stdint.h>
#include <stdlib.h>

// Pinned host memory for transfer measurements, through OrtApi entries
// onnxruntime_go does not wrap (indices in device.go and below).
typedef void* qs_tp;
typedef qs_tp (*qs_t_create_mem_info_fn)(const char*, int, int, int, qs_tp*);
typedef qs_tp (*qs_t_ep_mem_info_fn)(qs_tp, int);
typedef qs_tp (*qs_t_create_allocator_fn)(qs_tp, qs_tp, qs_tp*);
typedef qs_tp (*qs_t_create_tensor_fn)(qs_tp, const int64_t*, size_t, int, qs_tp*);
typedef void (*qs_t_release_fn)(qs_tp);

#define QS_T_CALL(T, api, idx) ((T)((const void* const*)(api))[idx])

static qs_tp qs_t_create_mem_info(const void* api, int idx, const char* name, int id, int memType, qs_tp* out) {
	return QS_T_CALL(qs_t_create_mem_info_fn, api, idx)(name, 0, id, memType, out); // OrtDeviceAllocator
}
static qs_tp qs_t_ep_mem_info(const void* api, int idx, qs_tp dev, int memType) {
	return QS_T_CALL(qs_t_ep_mem_info_fn, api, idx)(dev, memType);
}
static qs_tp qs_t_create_allocator(const void* api, int idx, qs_tp sess, qs_tp mi, qs_tp* out) {
	return QS_T_CALL(qs_t_create_allocator_fn, api, idx)(sess, mi, out);
}
static qs_tp qs_t_create_tensor(const void* api, int idx, qs_tp alloc, const int64_t* shape, size_t n, qs_tp* out) {
	return QS_T_CALL(qs_t_create_tensor_fn, api, idx)(alloc, shape, n, 1, out); // FLOAT
}
static void qs_t_release(const void* api, int idx, qs_tp p) { if (p) QS_T_CALL(qs_t_release_fn, api, idx)(p); }
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// Memory types of the calls above: OrtMemTypeCPUOutput (-1) is where the
// builtin CUDA EP registers its pinned allocator ("CudaPinned");
// OrtDeviceMemoryType_HOST_ACCESSIBLE (1) is the plugin EP device's pinned
// host memory.
const (
	ortMemTypeCPUOutput        = -1
	ortDeviceMemHostAccessible = 1
)

// ErrNoPinnedMemory marks a session whose execution provider has no pinned
// (page-locked) host memory to copy from: the CPU EP.
var ErrNoPinnedMemory = errors.New("this execution provider has no pinned host memory")

// TransferRate is a measured copy rate between host and device memory.
type TransferRate struct {
	// Host is "pageable" (an ordinary malloc'd buffer: the driver stages it
	// through its own pinned buffer) or "pinned" (page-locked memory from
	// the execution provider's host allocator, copied by DMA directly).
	Host   string  `json:"host"`
	Bytes  int64   `json:"bytes"`   // per copy
	H2DGBs float64 `json:"h2d_gbs"` // host to device, best round, GB/s
	D2HGBs float64 `json:"d2h_gbs"` // device to host
	Rounds int     `json:"rounds"`
}

// MeasureTransfer copies input 0's tensor between the device and host
// memory rounds times in each direction and reports the best round of each
// (a round the OS interrupted is only slower). With pinned false the host
// side is the malloc'd staging buffer CopyInputs uses; with pinned true it is
// a tensor from the execution provider's pinned allocator (ErrNoPinnedMemory
// on the CPU EP). Copies go through ONNX Runtime's CopyTensors without a
// stream, so each returns when the data has arrived.
func (d *DeviceBound) MeasureTransfer(pinned bool, rounds int) (TransferRate, error) {
	if d == nil || d.api == nil || len(d.devIn) == 0 {
		return TransferRate{}, errors.New("measure transfer: no bound input")
	}
	rounds = max(1, rounds)
	r := TransferRate{Host: "pageable", Bytes: int64(4 * d.inLen[0]), Rounds: rounds}
	host := d.hostIn[0]
	if pinned {
		r.Host = "pinned"
		t, release, err := d.pinnedTensor(d.InShape[0])
		if err != nil {
			return r, err
		}
		defer release()
		host = t
	}
	var best [2]time.Duration
	for i := 0; i < rounds; i++ {
		for dir, pair := range [2][2]unsafe.Pointer{{host, d.devIn[0]}, {d.devIn[0], host}} {
			el, err := d.copyAll([]unsafe.Pointer{pair[0]}, []unsafe.Pointer{pair[1]})
			if err != nil {
				return r, fmt.Errorf("measure %s transfer: %w", r.Host, err)
			}
			if best[dir] == 0 || el < best[dir] {
				best[dir] = el
			}
		}
	}
	rate := func(t time.Duration) float64 {
		if t <= 0 {
			return 0
		}
		return float64(r.Bytes) / t.Seconds() / 1e9
	}
	r.H2DGBs, r.D2HGBs = rate(best[0]), rate(best[1])
	return r, nil
}

// pinnedTensor allocates a float tensor of shape in the EP's pinned host
// memory; release frees it and its allocator.
func (d *DeviceBound) pinnedTensor(shape []int64) (unsafe.Pointer, func(), error) {
	api := unsafe.Pointer(d.api.api)
	st := func(p C.qs_tp) error { return d.api.statusError(unsafe.Pointer(p)) }
	var mi C.qs_tp
	ownMI := false
	switch {
	case d.Memory == MemoryCPU:
		return nil, nil, ErrNoPinnedMemory
	case !d.ownMI: // plugin EP: the device's host-accessible memory
		devs, err := d.api.epDevices()
		if err != nil {
			return nil, nil, err
		}
		for _, dev := range devs {
			if dev.EP == CUDAProvider {
				mi = C.qs_t_ep_mem_info(api, idxEpDeviceMemoryInfo, C.qs_tp(dev.ptr), ortDeviceMemHostAccessible)
				break
			}
		}
		if mi == nil {
			return nil, nil, fmt.Errorf("%w: the CUDA EP device reports no host-accessible memory", ErrNoPinnedMemory)
		}
	default: // builtin CUDA EP: its "CudaPinned" allocator
		name := C.CString(string(MemoryCUDAPinned))
		defer C.free(unsafe.Pointer(name))
		if err := st(C.qs_t_create_mem_info(api, idxCreateMemoryInfo, name, 0, ortMemTypeCPUOutput, &mi)); err != nil {
			return nil, nil, fmt.Errorf("pinned memory info: %w", err)
		}
		ownMI = true
	}
	releaseMI := func() {
		if ownMI {
			C.qs_t_release(api, idxReleaseMemoryInfo, mi)
		}
	}
	var alloc C.qs_tp
	if err := st(C.qs_t_create_allocator(api, idxCreateAllocator, C.qs_tp(d.sess), mi, &alloc)); err != nil {
		releaseMI()
		return nil, nil, fmt.Errorf("%w: no allocator for it in this session: %v", ErrNoPinnedMemory, err)
	}
	cshape := (*C.int64_t)(C.malloc(C.size_t(8 * len(shape))))
	defer C.free(unsafe.Pointer(cshape))
	copy(unsafe.Slice((*int64)(unsafe.Pointer(cshape)), len(shape)), shape)
	var v C.qs_tp
	if err := st(C.qs_t_create_tensor(api, idxCreateTensorAsOrtValue, alloc, cshape, C.size_t(len(shape)), &v)); err != nil {
		C.qs_t_release(api, idxReleaseAllocator, alloc)
		releaseMI()
		return nil, nil, fmt.Errorf("allocate %v pinned: %w", shape, err)
	}
	release := func() {
		C.qs_t_release(api, idxReleaseValue, v)
		C.qs_t_release(api, idxReleaseAllocator, alloc)
		releaseMI()
	}
	return unsafe.Pointer(v), release, nil
}
