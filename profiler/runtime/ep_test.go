package runtime

import (
	"errors"
	"os"
	"path/filepath"
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
	ready := CUDAInfo{PluginPath: dir + "/libonnxruntime_providers_cuda.so"}
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
