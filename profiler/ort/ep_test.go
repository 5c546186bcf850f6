package ort

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestEPDevicesAndAppendV2 exercises the unwrapped EP-device entries on the
// CPU build: GetEpDevices must list the CPU EP on a CPU device, and a session
// whose EP was attached through SessionOptionsAppendExecutionProvider_V2 must
// run. Wrong OrtApi indices crash or fail here, loudly.
func TestEPDevicesAndAppendV2(t *testing.T) {
	requireORT(t)
	devs, err := EPDevices()
	if err != nil {
		t.Fatalf("GetEpDevices (OrtApi[%d]): %v", idxGetEpDevices, err)
	}
	var cpu *EPDevice
	for i, d := range devs {
		if d.EP == CPUProvider {
			cpu = &devs[i]
		}
	}
	if cpu == nil || cpu.Hardware != "cpu" || cpu.EPVendor == "" {
		t.Fatalf("EP devices %+v: want CPUExecutionProvider on a cpu device with a vendor", devs)
	}

	b := reluModel(t)
	s, err := NewSession(b, SessionConfig{IntraOpThreads: 1, EP: CPUProvider})
	if err != nil {
		t.Fatalf("session with the CPU EP appended via V2: %v", err)
	}
	defer s.Close()
	out, err := s.RunFloat32(Tensor{Shape: []int64{1, 4}, Data: []float32{-1, 2, -3, 4}})
	if err != nil || out[0].Data[0] != 0 || out[0].Data[1] != 2 {
		t.Fatalf("run: %v %v", out, err)
	}

	if _, err := NewSession(b, SessionConfig{EP: "NoSuchExecutionProvider"}); err == nil || !strings.Contains(err.Error(), "CPUExecutionProvider") {
		t.Errorf("unknown provider: err = %v, want one listing the known devices", err)
	}
}

func TestSessionOptionsLayout(t *testing.T) {
	if err := checkSessionOptionsLayout(); err != nil {
		t.Fatal(err)
	}
}

// TestCUDAPluginWithoutGPU registers the real CUDA plugin (when `make
// setup-cuda` installed it) on a machine without CUDA: registration must fail
// with ONNX Runtime's reason, not crash.
func TestCUDAPluginWithoutGPU(t *testing.T) {
	info := requireORT(t)
	search := SystemCUDASearch()
	search.ORTLibDir = filepath.Dir(info.LibraryPath)
	cuda := FindCUDA(search)
	if cuda.PluginPath == "" {
		t.Skip("CUDA plugin not installed (make setup-cuda)")
	}
	if len(cuda.Missing()) == 0 {
		t.Skip("CUDA libraries present: this test is for machines without them")
	}
	err := RegisterPlugin("test-cuda", cuda.PluginPath)
	if err == nil {
		t.Skip("plugin registered without CUDA libraries")
	}
	if !strings.Contains(err.Error(), cuda.PluginPath) {
		t.Errorf("error %v does not name the plugin", err)
	}
}

func TestResolveEP(t *testing.T) {
	cpuOnly := Info{LibraryPath: "/x/libonnxruntime.so", Providers: []string{CPUProvider}}
	withCUDA := Info{Providers: []string{CUDAProvider, CPUProvider}}
	dir := t.TempDir()
	ready := CUDAInfo{PluginPath: dir + "/libonnxruntime_providers_cuda.so", BridgePath: dir + "/" + BridgeFile, BridgeWant: dir + "/" + BridgeFile}
	noPlugin := CUDAInfo{}
	tests := []struct {
		name, req string
		info      Info
		cuda      CUDAInfo
		want      string // EP/route, or "error:substring"
	}{
		{"cpu", "cpu", cpuOnly, noPlugin, "cpu/builtin"},
		{"default", "", cpuOnly, noPlugin, "cpu/builtin"},
		{"builtin cuda", "cuda", withCUDA, noPlugin, "cuda/builtin"},
		{"plugin cuda", "cuda", cpuOnly, ready, "cuda/plugin"},
		{"no cuda", "cuda", cpuOnly, noPlugin, "error:make setup-cuda"},
		{"auto falls back", "auto", cpuOnly, noPlugin, "cpu/builtin"},
		{"auto picks cuda", "auto", withCUDA, noPlugin, "cuda/builtin"},
		{"tensorrt missing", "tensorrt", cpuOnly, noPlugin, "error:TensorRT"},
		{"nonsense", "tpu", cpuOnly, noPlugin, "error:unknown execution provider"},
	}
	// A plugin that cannot run: ResolveEP's error carries each reason, the
	// list doctor shows.
	t.Run("plugin blockers", func(t *testing.T) {
		broken := ready
		broken.BridgePath = ""
		_, err := ResolveEP("cuda", cpuOnly, broken)
		var u *CUDAUnavailableError
		if !errors.As(err, &u) || u.NoPlugin || !slices.Equal(u.Blockers, broken.Blockers()) || len(u.Blockers) == 0 {
			t.Fatalf("err = %#v, want a CUDAUnavailableError with %q", err, broken.Blockers())
		}
		if !strings.Contains(err.Error(), "the CUDA plugin cannot run: "+BridgeFile) {
			t.Errorf("message %q does not name the missing bridge", err)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ResolveEP(tt.req, tt.info, tt.cuda)
			if want, ok := strings.CutPrefix(tt.want, "error:"); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
				return
			}
			if err != nil || c.EP+"/"+c.Route != tt.want {
				t.Fatalf("got %+v %v, want %s", c, err, tt.want)
			}
			if tt.req == "auto" && c.Reason == "" {
				t.Error("auto did not say why")
			}
		})
	}
}

func reluModel(t *testing.T) string {
	t.Helper()
	p := t.TempDir() + "/relu.onnx"
	// A Relu graph written by the onnx builder (see bound_test.go).
	if err := os.WriteFile(p, reluBytes(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExplainSessionError(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		hint bool
	}{
		{"[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an implementation for MultiHeadAttention(1) node with name '/blocks.0/attn/MultiHeadAttention'", true},
		{"This is an invalid model. In Node, (\"/blocks.0/SkipLayerNormalization\", SkipLayerNormalization, \"com.microsoft\", -1) : is not a registered function/op", true},
		{"Could not find an implementation for Conv(11) node with name 'c'", false},
		{"Load model from m.onnx failed: protobuf parsing failed", false},
	} {
		err := explainSessionError(errors.New(tc.msg))
		if got := strings.Contains(err.Error(), "--optimize=false"); got != tc.hint {
			t.Errorf("%q: hint %v, want %v: %v", tc.msg, got, tc.hint, err)
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ONNX Runtime's message lost: %v", err)
		}
	}
	if explainSessionError(nil) != nil {
		t.Error("nil error explained")
	}
}

// TestPickEPDevice: --ep-option device_id=N picks the CUDA EP device whose
// device_id is N, for the session and for its allocator and IO binding
// (NewDeviceBound takes the memory of the same device).
func TestPickEPDevice(t *testing.T) {
	devs := []EPDevice{
		{EP: CPUProvider, Hardware: "cpu"},
		{EP: CUDAProvider, Hardware: "gpu", DeviceID: 0x2335, EPOptions: map[string]string{"device_id": "0"}},
		{EP: CUDAProvider, Hardware: "gpu", DeviceID: 0x2335, EPOptions: map[string]string{"device_id": "1"}},
		{EP: "OtherExecutionProvider"},
		{EP: "OtherExecutionProvider"},
	}
	setOrdinals(devs)
	if devs[1].Ordinal != 0 || devs[2].Ordinal != 1 || devs[0].Ordinal != 0 || devs[3].Ordinal != 0 || devs[4].Ordinal != 1 {
		t.Fatalf("ordinals: %+v", devs)
	}
	tests := []struct {
		opts map[string]string
		want int    // index in devs, or -1
		err  string // substring when want < 0
	}{
		{nil, 1, ""},
		{map[string]string{"device_id": "0"}, 1, ""},
		{map[string]string{"device_id": "1", "use_tf32": "0"}, 2, ""},
		{map[string]string{"device_id": " 1 "}, 2, ""},
		{map[string]string{"device_id": "2"}, -1, "device_id=2: CUDAExecutionProvider has devices 0, 1 only"},
		{map[string]string{"device_id": "gpu1"}, -1, "--ep-option device_id=gpu1: want a GPU number"},
		{map[string]string{"device_id": "-1"}, -1, "want a GPU number"},
	}
	for _, tt := range tests {
		got, err := PickEPDevice(devs, CUDAProvider, tt.opts)
		if tt.want < 0 {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%v: err = %v, want %q", tt.opts, err, tt.err)
			}
			continue
		}
		if err != nil || got.EPOptions["device_id"] != devs[tt.want].EPOptions["device_id"] {
			t.Errorf("%v: picked %+v, %v; want device %d", tt.opts, got, err, tt.want-1)
		}
	}
	if _, err := PickEPDevice(devs[:1], CUDAProvider, nil); err == nil || !strings.Contains(err.Error(), "is the plugin registered?") {
		t.Errorf("no CUDA device: %v", err)
	}
	if d, err := PickEPDevice(devs, "OtherExecutionProvider", map[string]string{"device_id": "1"}); err != nil || d.Ordinal != 1 {
		t.Errorf("an EP without device_id options is numbered by position: %+v %v", d, err)
	}
}

// TestDeviceBoundRejectsBadDeviceID: a builtin CUDA route takes "Cuda"
// memory of device_id; a value that is not a GPU number is refused before
// any session is created.
func TestDeviceBoundRejectsBadDeviceID(t *testing.T) {
	requireORT(t)
	path := reluModel(t)
	_, err := NewDeviceBound(path, SessionConfig{EP: "cuda", EPRoute: "builtin", EPOptions: map[string]string{"device_id": "x"}}, 1)
	if err == nil || !strings.Contains(err.Error(), "device_id=x") {
		t.Errorf("err = %v", err)
	}
	if n := SessionsCreated(path); n != 0 {
		t.Errorf("%d sessions created for a refused device", n)
	}
}
