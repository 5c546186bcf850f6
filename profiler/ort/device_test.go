package ort

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDeviceBoundOnCPU exercises device-resident binding with the CPU EP's
// memory: the same calls (CreateSession, CreateAllocator, CreateTensorAsOrtValue,
// BindInput/BindOutput, RunWithBinding, CopyTensors) a CUDA run makes, so
// wrong OrtApi indices or a broken binding fail here, without a GPU.
func TestDeviceBoundOnCPU(t *testing.T) {
	requireORT(t)
	path := reluModel(t)
	d, err := NewDeviceBound(path, SessionConfig{IntraOpThreads: 1}, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Memory != MemoryCPU || len(d.InShape) != 1 || d.InShape[0][0] != 3 {
		t.Fatalf("bound %s memory, shapes %v", d.Memory, d.InShape)
	}
	in := d.Input(0)
	for i := range in {
		in[i] = float32(i) - 6
	}
	h2d, err := d.CopyInputs()
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ { // runs reuse the bound tensors
		if err := d.Run(); err != nil {
			t.Fatalf("run %d: %v", round, err)
		}
	}
	d2h, err := d.CopyOutputs()
	if err != nil {
		t.Fatal(err)
	}
	out := d.Output(0)
	for i := range out {
		want := max(float32(i)-6, 0)
		if out[i] != want {
			t.Fatalf("y[%d] = %v, want %v", i, out[i], want)
		}
	}
	if h2d <= 0 || d2h <= 0 {
		t.Errorf("copy times %v %v not measured", h2d, d2h)
	}
	// Changing the host buffer alone changes nothing until CopyInputs.
	in[0] = 100
	d.Run()
	d.CopyOutputs()
	if d.Output(0)[0] != 0 {
		t.Error("run saw host staging memory: inputs are not device-resident")
	}
	d.CopyInputs()
	d.Run()
	d.CopyOutputs()
	if d.Output(0)[0] != 100 {
		t.Error("CopyInputs did not reach the device tensor")
	}
}

func TestDeviceBoundNeedsCUDAForCUDA(t *testing.T) {
	requireORT(t)
	_, err := NewDeviceBound(reluModel(t), SessionConfig{EP: "cuda", EPRoute: "plugin"}, 1)
	if err == nil {
		t.Fatal("CUDA binding without a CUDA device succeeded")
	}
}

// TestEpDeviceMemoryInfoEntry calls EpDevice_MemoryInfo through its index
// on the CPU EP device: ONNX Runtime documents no memory info there (the EP
// uses host memory) for either memory type. The CUDA plugin's device answers
// with its GPU memory; the index itself is checked by TestOrtApiIndices.
func TestEpDeviceMemoryInfoEntry(t *testing.T) {
	requireORT(t)
	api, err := loadedAPI()
	if err != nil {
		t.Fatal(err)
	}
	devs, err := api.epDevices()
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := PickEPDevice(devs, CPUProvider, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mem := range []epMemoryType{epMemoryDefault, epMemoryHostAccessible} {
		if mi := api.epDeviceMemoryInfo(cpu, mem); mi != nil {
			t.Errorf("CPU EP device, memory type %d: memory info %q, want none", mem, api.memoryInfoName(mi))
		}
	}
}

// TestCopyTensorsEntry calls CopyTensors through its index between two
// host tensors: no EP registers a host-to-host data transfer, and ONNX
// Runtime says so. (On CUDA the plugin's transfer does the copies.)
func TestCopyTensorsEntry(t *testing.T) {
	requireORT(t)
	d, err := NewDeviceBound(reluModel(t), SessionConfig{IntraOpThreads: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if name := d.api.memoryInfoName(d.memInfo); name != MemoryCPU {
		t.Errorf("MemoryInfoGetName = %q, want Cpu", name)
	}
	env, err := d.api.envHandle()
	if err != nil {
		t.Fatal(err)
	}
	err = d.api.copyTensors(env, d.hostIn, d.devIn)
	if err == nil || !strings.Contains(err.Error(), "Data transfer implementation between source and destination device was not found") {
		t.Errorf("CopyTensors host to host: %v, want ONNX Runtime's no-data-transfer error", err)
	}
	if err := d.api.copyTensors(env, d.hostIn, nil); err == nil {
		t.Error("mismatched copy lists accepted")
	}
}

// TestDeviceBoundRegistersThePluginFirst: on the plugin route the device is
// picked before the session is created, so the plugin must be registered
// first; with the real plugin on a machine without CUDA, registration is
// what fails (naming the plugin), not the device lookup.
func TestDeviceBoundRegistersThePluginFirst(t *testing.T) {
	info := requireORT(t)
	search := SystemCUDASearch()
	search.ORTLibDir = filepath.Dir(info.LibraryPath)
	cuda := FindCUDA(search)
	if cuda.PluginPath == "" {
		t.Skip("CUDA plugin not installed (make setup-cuda)")
	}
	_, err := NewDeviceBound(reluModel(t), SessionConfig{EP: "cuda", EPRoute: "plugin", EPPlugin: cuda.PluginPath}, 1)
	if err == nil {
		t.Skip("a CUDA device is here")
	}
	if strings.Contains(err.Error(), "is the plugin registered?") {
		t.Errorf("the device was looked up before the plugin was registered: %v", err)
	}
}
