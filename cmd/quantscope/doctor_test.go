package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/telemetry"
	"github.com/quantscope/quantscope/profiler/telemetry/telemetrytest"
)

// updateGolden rewrites the golden files instead of comparing:
// QUANTSCOPE_UPDATE_GOLDEN=1 go test ./cmd/quantscope -run Golden
var updateGolden = os.Getenv("QUANTSCOPE_UPDATE_GOLDEN") != ""

const fixtureCheckout = "/home/dev/quantscope"

// x86Features builds the amd64 feature list with the named features present.
func x86Features(present ...string) []telemetry.ISAFeature {
	names := []string{"AVX2", "AVX-512F", "AVX512-VNNI", "AVX-VNNI", "AMX-TILE", "AMX-INT8", "AMX-BF16", "F16C", "FMA"}
	out := make([]telemetry.ISAFeature, 0, len(names))
	for _, n := range names {
		f := telemetry.ISAFeature{Name: n}
		for _, p := range present {
			f.Present = f.Present || p == n
		}
		out = append(out, f)
	}
	return out
}

func fixtureHost(model string, physical, logical int, mem telemetry.MemoryInfo, features []telemetry.ISAFeature) telemetry.HostInfo {
	h := telemetry.HostInfo{
		Hostname: "box", OS: "linux", Arch: "amd64", Kernel: "6.8.0-49-generic",
		CPU: telemetry.CPUInfo{
			Model: model, PhysicalCores: physical, LogicalCores: logical, UsableCores: logical,
			Features: features,
		},
		Memory: mem,
	}
	h.CPU.INT8, h.CPU.FP16 = telemetry.AssessQuant("amd64", features)
	return h
}

// laptopHost is an AVX2-only desktop CPU.
func laptopHost() telemetry.HostInfo {
	return fixtureHost("AMD Ryzen 7 5800X 8-Core Processor", 8, 16,
		telemetry.MemoryInfo{TotalBytes: 32 << 30, AvailableBytes: 20 << 30},
		x86Features("AVX2", "F16C", "FMA"))
}

// serverHost is a Sapphire Rapids DGX H100 head node in a memory-limited cgroup.
func serverHost() telemetry.HostInfo {
	return fixtureHost("Intel(R) Xeon(R) Platinum 8480+", 112, 224,
		telemetry.MemoryInfo{TotalBytes: 2 << 40, AvailableBytes: 1900 << 30, LimitBytes: 256 << 30},
		x86Features("AVX2", "AVX-512F", "AVX512-VNNI", "AVX-VNNI", "AMX-TILE", "AMX-INT8", "AMX-BF16", "F16C", "FMA"))
}

func loadedORT(string) ort.Info {
	return ort.Info{
		LibraryPath: fixtureCheckout + "/.ort/libonnxruntime.so",
		Version:     "1.29.0",
		Providers:   []string{"CPUExecutionProvider"},
		Tried:       []string{fixtureCheckout + "/.ort/libonnxruntime.so: loaded"},
	}
}

func missingORT(explicit string) ort.Info {
	return ort.Info{
		Tried: []string{explicit + ": not found"},
		Err: errors.New("no usable ONNX Runtime library: the ONNX Runtime library named by --ort-lib could not be used; tried:\n  " +
			explicit + ": not found\nfix: run `make setup` in the quantscope checkout"),
	}
}

// fakeCUDA runs the real CUDA search over a temp tree holding files (paths
// as if the tree were "/").
func fakeCUDA(t *testing.T, files ...string) func(string) ort.CUDAInfo {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return func(ortLibDir string) ort.CUDAInfo {
		return ort.FindCUDA(ort.CUDASearch{
			FS: os.DirFS(root),
			Getenv: func(k string) string {
				if k == "PATH" {
					return "/opt/torch/.venv/bin:/usr/local/bin:/usr/bin"
				}
				return ""
			},
			ExeDir:    fixtureCheckout + "/bin",
			WorkDir:   fixtureCheckout,
			HomeDir:   "/home/dev",
			ORTLibDir: ortLibDir,
			Arch:      "amd64",
		})
	}
}

// torchCUDAFiles is the GPU box layout: PyTorch in a venv whose bin/ is on
// PATH but not activated, the CUDA 13 libraries from its NVIDIA wheels,
// cuDNN beside them, the driver's libcuda, ONNX Runtime with its bridge
// library (`make setup`) and the plugin (`make setup-cuda`).
func torchCUDAFiles() []string {
	site := "/opt/torch/.venv/lib/python3.12/site-packages/nvidia"
	return []string{
		site + "/cu13/lib/libcudart.so.13", site + "/cu13/lib/libcublas.so.13",
		site + "/cu13/lib/libcublasLt.so.13", site + "/cu13/lib/libcurand.so.10",
		site + "/cudnn/lib/libcudnn.so.9", "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
		"/opt/torch/.venv/bin/python3", "/usr/bin/python3",
		fixtureCheckout + "/.ort/" + ort.BridgeFile,
		fixtureCheckout + "/.ort/cuda/" + ort.CUDAPluginFile,
	}
}

func noGPUSystem(t *testing.T) doctorSystem {
	return doctorSystem{
		probe:  loadedORT,
		host:   laptopHost,
		nvml:   telemetrytest.NoLibrary().NVML,
		cuda:   fakeCUDA(t),
		getenv: func(string) string { return "" },
		isTTY:  func(io.Writer) bool { return false },
	}
}

func h100System(t *testing.T) doctorSystem {
	srv := telemetrytest.DGXH100(2)
	srv.GPUs[1].MemoryUsedBytes = 61 << 30
	srv.GPUs[1].TemperatureC = 67
	srv.GPUs[1].PowerDrawMW = 612_340
	srv.GPUs[1].Fail = map[string]nvml.Return{telemetrytest.FieldPowerLimit: nvml.ERROR_NOT_SUPPORTED}
	sys := noGPUSystem(t)
	sys.host = serverHost
	sys.nvml = srv.NVML
	sys.cuda = fakeCUDA(t, torchCUDAFiles()...)
	return sys
}

func plainStyles() doctorStyles {
	return newDoctorStyles(doctorRenderer(io.Discard, false))
}

func TestDoctorGolden(t *testing.T) {
	tests := []struct {
		name   string
		golden string
		sys    func(*testing.T) doctorSystem
	}{
		{"no GPU", "doctor_nogpu.golden", noGPUSystem},
		{"DGX H100", "doctor_h100.golden", h100System},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := renderDoctor(gatherDoctor("", tt.sys(t).withDefaults()), plainStyles())
			path := filepath.Join("testdata", tt.golden)
			if updateGolden {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with QUANTSCOPE_UPDATE_GOLDEN=1 to create it)", err)
			}
			if got != string(want) {
				t.Errorf("rendering differs from %s (QUANTSCOPE_UPDATE_GOLDEN=1 rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
			}
			if strings.Contains(got, "\x1b") {
				t.Error("plain rendering contains escape codes")
			}
		})
	}
}

// runDoctorWith runs the command function against sys and returns stdout.
func runDoctorWith(t *testing.T, sys doctorSystem, ortLib string, jsonOut bool) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	g := &globalOptions{ortLib: ortLib, stdout: &stdout, stderr: &stderr}
	err := runDoctor(context.Background(), g, doctorOptions{json: jsonOut, sys: sys})
	return stdout.String(), err
}

func TestDoctorExitStatus(t *testing.T) {
	const bogus = "/nonexistent/onnxruntime/libonnxruntime.so"
	tests := []struct {
		name     string
		probe    func(string) ort.Info
		json     bool
		wantCode int    // 0: no error
		wantOut  string // in stdout
		wantErr  string // in the error (printed on stderr by main)
	}{
		{"loaded", loadedORT, false, 0, "Ready for CPU profiling (no NVIDIA GPU)", ""},
		{"loaded json", loadedORT, true, 0, `"ok": true`, ""},
		{"missing", missingORT, false, 1, bogus, ""},
		{"missing json", missingORT, true, 1, `"ok": false`, bogus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := noGPUSystem(t)
			sys.probe = tt.probe
			out, err := runDoctorWith(t, sys, bogus, tt.json)
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantOut, out)
			}
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != tt.wantCode {
				t.Fatalf("err = %#v, want exit code %d", err, tt.wantCode)
			}
			if tt.wantErr != "" && (ee.err == nil || !strings.Contains(ee.err.Error(), tt.wantErr)) {
				t.Errorf("error %v lacks %q", ee.err, tt.wantErr)
			}
			if !tt.json {
				for _, want := range []string{"✗ Library", "not loaded", "fix: run `make setup`", "Not ready"} {
					if !strings.Contains(out, want) {
						t.Errorf("stdout lacks %q:\n%s", want, out)
					}
				}
			}
		})
	}
}

func TestDoctorJSON(t *testing.T) {
	tests := []struct {
		name string
		sys  func(*testing.T) doctorSystem
		gpus int
	}{
		{"no GPU", noGPUSystem, 0},
		{"DGX H100", h100System, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runDoctorWith(t, tt.sys(t), "", true)
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]json.RawMessage
			if err := json.Unmarshal([]byte(out), &raw); err != nil {
				t.Fatalf("output is not one JSON object: %v\n%s", err, out)
			}
			for _, key := range []string{"ok", "cuda_ready", "host", "ort", "gpu_status", "gpus", "cuda"} {
				if _, ok := raw[key]; !ok {
					t.Errorf("JSON lacks %q", key)
				}
			}
			var rep struct {
				OK        bool                `json:"ok"`
				CUDAReady bool                `json:"cuda_ready"`
				Host      telemetry.HostInfo  `json:"host"`
				ORT       ort.Info            `json:"ort"`
				GPUStatus telemetry.GPUStatus `json:"gpu_status"`
				GPUs      []telemetry.GPUInfo `json:"gpus"`
				CUDA      ort.CUDAInfo        `json:"cuda"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			if !rep.OK || rep.ORT.Version != "1.29.0" || rep.Host.CPU.Model == "" || len(rep.CUDA.Libraries) != 6 {
				t.Errorf("decoded report = %+v", rep)
			}
			if rep.GPUs == nil || len(rep.GPUs) != tt.gpus {
				t.Errorf("gpus = %v, want %d (an array, never null)", rep.GPUs, tt.gpus)
			}
			if tt.gpus == 0 && (rep.GPUStatus.State != telemetry.GPUStateNoNVML || rep.CUDAReady) {
				t.Errorf("gpu_status = %+v, cuda_ready %v", rep.GPUStatus, rep.CUDAReady)
			}
			if tt.gpus > 0 && (!rep.CUDAReady || rep.GPUs[1].PowerLimitW != nil || len(rep.CUDA.LibraryDirs) != 2) {
				t.Errorf("H100 report: cuda_ready %v, gpu 1 %+v, dirs %v", rep.CUDAReady, rep.GPUs[1], rep.CUDA.LibraryDirs)
			}
		})
	}
}

func TestDoctorColor(t *testing.T) {
	tests := []struct {
		name      string
		tty       bool
		env       map[string]string
		wantColor bool
	}{
		{"terminal", true, nil, true},
		{"terminal with NO_COLOR", true, map[string]string{"NO_COLOR": "1"}, false},
		{"terminal with TERM=dumb", true, map[string]string{"TERM": "dumb"}, false},
		{"pipe", false, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := noGPUSystem(t)
			sys.isTTY = func(io.Writer) bool { return tt.tty }
			sys.getenv = func(k string) string { return tt.env[k] }
			out, err := runDoctorWith(t, sys, "", false)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(out, "\x1b["); got != tt.wantColor {
				t.Errorf("escape codes present = %v, want %v:\n%q", got, tt.wantColor, out)
			}
			if !strings.Contains(out, "Ready for CPU profiling") {
				t.Errorf("output lacks the verdict:\n%s", out)
			}
		})
	}
}

func TestDoctorCUDANotReady(t *testing.T) {
	srv := telemetrytest.DGXH100(1)
	srv.DriverVersion, srv.CUDADriverVersion = "550.54.15", 12040
	sys := noGPUSystem(t)
	sys.nvml = srv.NVML
	sys.cuda = fakeCUDA(t, "/usr/local/cuda-13.0/lib64/libcudart.so.13", "/usr/lib/x86_64-linux-gnu/libcuda.so.1")
	out, err := runDoctorWith(t, sys, "", false)
	if err != nil {
		t.Fatalf("ONNX Runtime loaded, so doctor must succeed: %v", err)
	}
	for _, want := range []string{
		"! Driver        driver 550.54.15 · CUDA 12.4 (driver API)",
		"upgrade the NVIDIA driver to 580 or newer",
		"✗ Plugin        libonnxruntime_providers_cuda.so not found",
		"tried: " + fixtureCheckout + "/.ort/cuda/" + ort.CUDAPluginFile,
		"fix: run `make setup-cuda`",
		"✗ Bridge        libonnxruntime_providers_shared.so missing beside .ort/libonnxruntime.so",
		"fix: run `make setup` (installs it beside libonnxruntime.so)",
		"✓ CUDA runtime  /usr/local/cuda-13.0/lib64/libcudart.so.13 (via /usr/local/cuda*/lib64)",
		"✓ CUDA driver   /usr/lib/x86_64-linux-gnu/libcuda.so.1 (via /usr/lib/x86_64-linux-gnu)",
		"✗ cuBLAS        libcublas.so.13 not found",
		"install: apt-get install libcublas-13-0 (NVIDIA's CUDA apt repository)",
		"     or: python3 -m pip install 'nvidia-cublas==13.*'",
		"✗ cuDNN 9       libcudnn.so.9 not found",
		"install: apt-get install libcudnn9-cuda-13 (NVIDIA's CUDA apt repository)",
		"     or: python3 -m pip install 'nvidia-cudnn-cu13==9.*'",
		"searched: $QUANTSCOPE_CUDA_LIBS (none) · LD_LIBRARY_PATH (none) · $VIRTUAL_ENV, $CONDA_PREFIX, ~/.local (none)",
		"/usr/local/cuda*/lib64 (1 dir)",
		"QUANTSCOPE_CUDA_LIBS=DIR",
		"Worker env    LD_LIBRARY_PATH=/usr/local/cuda-13.0/lib64",
		"CUDA not ready: the driver supports CUDA 12.4, the plugin needs 13.0; CUDA plugin not found: run `make setup-cuda`",
		"missing libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libcudnn.so.9",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDoctorCUDALinkedBuildNeedsNoPlugin(t *testing.T) {
	sys := h100System(t)
	sys.cuda = fakeCUDA(t, torchCUDAFiles()[:9]...) // libraries, no bridge, no plugin
	sys.probe = func(e string) ort.Info {
		info := loadedORT(e)
		info.Providers = []string{"CUDAExecutionProvider", "CPUExecutionProvider"}
		return info
	}
	out, err := runDoctorWith(t, sys, "", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"not needed: this ONNX Runtime build has CUDAExecutionProvider", "Ready: CPU and CUDA profiling"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestFormatting(t *testing.T) {
	w := func(v float64) *float64 { return &v }
	tests := []struct{ got, want string }{
		{formatWatts(nil), "n/a"},
		{formatWatts(w(700)), "700 W"},
		{formatWatts(w(71.54)), "71.5 W"},
		{strings.Join(wrapTokens([]string{"a", "b", "c"}, 2), "|"), "a  b|c"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// --- end to end: the test binary runs itself as quantscope ------------------

// TestDoctorHelperProcess is not a test: the end-to-end tests below start the
// test binary through it so that each run gets a fresh process (ONNX Runtime
// is initialized once per process).
func TestDoctorHelperProcess(t *testing.T) {
	if os.Getenv("QUANTSCOPE_DOCTOR_HELPER") != "1" {
		t.Skip("helper process for the end-to-end doctor tests")
	}
	args := []string{}
	for i, a := range os.Args {
		if a == "--" {
			args = os.Args[i+1:]
			break
		}
	}
	os.Args = append([]string{"quantscope"}, args...)
	os.Exit(run())
}

// quantscope runs the command line in a child process with NO_COLOR unset
// and returns its stdout, stderr and exit code.
func quantscope(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestDoctorHelperProcess$", "--"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NO_COLOR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "QUANTSCOPE_DOCTOR_HELPER=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// installedORT returns the absolute path of the library `make setup`
// installs, or skips (fails under QUANTSCOPE_REQUIRE_ORT=1) when it is absent.
func installedORT(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", ".ort", ort.LibraryName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("QUANTSCOPE_REQUIRE_ORT") != "" {
			t.Fatalf("ONNX Runtime required but missing: %v", err)
		}
		t.Skipf("ONNX Runtime not installed at %s (run `make setup`)", p)
	}
	return p
}

func TestDoctorEndToEnd(t *testing.T) {
	lib := installedORT(t)
	_, gpuStatus := telemetry.ReadGPUs(nvml.New())

	t.Run("checklist", func(t *testing.T) {
		out, stderr, code := quantscope(t, "doctor", "--ort-lib", lib)
		if code != 0 {
			t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
		}
		for _, want := range []string{"ONNX Runtime", "✓ Library       " + lib, "CPUExecutionProvider", "CPU", "Memory"} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
		if !gpuStatus.Available() && !strings.Contains(out, "no NVIDIA GPU: "+gpuStatus.Reason) {
			t.Errorf("stdout lacks the no-GPU reason %q:\n%s", gpuStatus.Reason, out)
		}
		if strings.Contains(out, "\x1b") {
			t.Errorf("output to a pipe contains escape codes:\n%q", out)
		}
	})

	t.Run("json", func(t *testing.T) {
		out, stderr, code := quantscope(t, "doctor", "--json", "--ort-lib", lib)
		if code != 0 {
			t.Fatalf("exit %d, want 0\nstderr:\n%s", code, stderr)
		}
		var rep struct {
			OK        bool                `json:"ok"`
			Host      telemetry.HostInfo  `json:"host"`
			ORT       ort.Info            `json:"ort"`
			GPUStatus telemetry.GPUStatus `json:"gpu_status"`
			GPUs      []telemetry.GPUInfo `json:"gpus"`
			CUDA      ort.CUDAInfo        `json:"cuda"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		if !rep.OK || rep.ORT.LibraryPath != lib || rep.ORT.Version == "" || len(rep.ORT.Providers) == 0 {
			t.Errorf("ort = %+v", rep.ORT)
		}
		if rep.Host.CPU.LogicalCores < 1 || rep.Host.Memory.TotalBytes == 0 || rep.GPUs == nil || len(rep.CUDA.Libraries) != 6 {
			t.Errorf("report = %+v", rep)
		}
		if rep.GPUStatus.State != gpuStatus.State {
			t.Errorf("gpu_status.state = %q, want %q", rep.GPUStatus.State, gpuStatus.State)
		}
	})
}

func TestDoctorEndToEndMissingLibrary(t *testing.T) {
	bogus := filepath.Join(t.TempDir(), "nowhere", ort.LibraryName)
	tests := []struct {
		name string
		args []string
	}{
		{"checklist", []string{"doctor", "--ort-lib", bogus}},
		{"json", []string{"doctor", "--json", "--ort-lib", bogus}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := quantscope(t, tt.args...)
			if code == 0 {
				t.Fatalf("exit 0 with a missing library\n%s", out)
			}
			combined := out + stderr
			for _, want := range []string{bogus, "make setup", "--ort-lib"} {
				if !strings.Contains(combined, want) {
					t.Errorf("output lacks %q:\nstdout:\n%s\nstderr:\n%s", want, out, stderr)
				}
			}
		})
	}
}

// TestDoctorCUDAPieces: on the GPU box, each missing piece alone makes CUDA
// not ready, says which, and only a missing plugin asks `make run` to add
// it (needs_cuda_plugin).
func TestDoctorCUDAPieces(t *testing.T) {
	without := func(drop string) []string {
		var out []string
		for _, f := range torchCUDAFiles() {
			if !strings.HasSuffix(f, drop) {
				out = append(out, f)
			}
		}
		return out
	}
	tests := []struct {
		name       string
		files      []string
		gpu        bool
		wantReady  bool
		wantPlugin bool // needs_cuda_plugin
		wantLine   string
	}{
		{"all there", torchCUDAFiles(), true, true, false, "Ready: CPU and CUDA profiling"},
		{"cuDNN missing", without("libcudnn.so.9"), true, false, false, "CUDA not ready: missing libcudnn.so.9"},
		{"bridge missing", without(ort.BridgeFile), true, false, false,
			"CUDA not ready: libonnxruntime_providers_shared.so missing beside the ONNX Runtime library"},
		{"plugin missing", without(ort.CUDAPluginFile), true, false, true, "CUDA not ready: CUDA plugin not found: run `make setup-cuda`"},
		{"no GPU, no plugin", without(ort.CUDAPluginFile), false, false, false, "Ready for CPU profiling (no NVIDIA GPU)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := h100System(t)
			if !tt.gpu {
				sys.nvml = telemetrytest.NoLibrary().NVML
			}
			sys.cuda = fakeCUDA(t, tt.files...)
			out, err := runDoctorWith(t, sys, "", true)
			if err != nil {
				t.Fatal(err)
			}
			var rep doctorReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.CUDAReady != tt.wantReady || rep.NeedsCUDAPlugin != tt.wantPlugin {
				t.Errorf("cuda_ready %v, needs_cuda_plugin %v; want %v, %v", rep.CUDAReady, rep.NeedsCUDAPlugin, tt.wantReady, tt.wantPlugin)
			}
			if !strings.Contains(out, `"needs_cuda_plugin": `) {
				t.Error("JSON lacks needs_cuda_plugin (make run reads it)")
			}
			text, _ := runDoctorWith(t, sys, "", false)
			if !strings.Contains(text, tt.wantLine) {
				t.Errorf("checklist lacks %q:\n%s", tt.wantLine, text)
			}
		})
	}
}

// TestProbeEnvironmentEPs: the TUI starts on cuda where doctor finds it
// ready; on a GPU box without the plugin it offers cpu and names the one
// command that adds cuda.
func TestProbeEnvironmentEPs(t *testing.T) {
	env := probeEnvironmentWith("", h100System(t))
	if strings.Join(env.EPs, ",") != "cpu,cuda" || env.DefaultEP != "cuda" || len(env.EPNotes) != 0 {
		t.Errorf("ready: EPs %v, default %q, notes %v", env.EPs, env.DefaultEP, env.EPNotes)
	}
	var files []string
	for _, f := range torchCUDAFiles() {
		if !strings.HasSuffix(f, ort.CUDAPluginFile) {
			files = append(files, f)
		}
	}
	sys := h100System(t)
	sys.cuda = fakeCUDA(t, files...)
	env = probeEnvironmentWith("", sys)
	if strings.Join(env.EPs, ",") != "cpu" || env.DefaultEP != "cpu" || len(env.EPNotes) != 1 ||
		!strings.Contains(env.EPNotes[0], "run `make setup-cuda`") {
		t.Errorf("no plugin: EPs %v, default %q, notes %v", env.EPs, env.DefaultEP, env.EPNotes)
	}
	if w := env.Worker.Env; len(w) != 1 || !strings.HasPrefix(w[0], "LD_LIBRARY_PATH=/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib:") {
		t.Errorf("worker env %v", w)
	}
}
