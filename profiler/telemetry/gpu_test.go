package telemetry_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"

	"github.com/quantscope/quantscope/profiler/telemetry"
	"github.com/quantscope/quantscope/profiler/telemetry/telemetrytest"
)

func TestReadGPUsWithoutUsableNVML(t *testing.T) {
	tests := []struct {
		name       string
		lib        nvml.Interface
		wantState  telemetry.GPUState
		wantReason string
	}{
		{"nil interface", nil, telemetry.GPUStateNoNVML, "no NVML interface"},
		{"library missing", telemetrytest.NoLibrary().NVML(), telemetry.GPUStateNoNVML,
			"NVML library libnvidia-ml.so.1 not found (no NVIDIA driver installed)"},
		{"driver not loaded", telemetrytest.Server{InitError: nvml.ERROR_DRIVER_NOT_LOADED}.NVML(),
			telemetry.GPUStateInitFailed, "NVIDIA driver not loaded"},
		{"version mismatch", telemetrytest.Server{InitError: nvml.ERROR_LIB_RM_VERSION_MISMATCH}.NVML(),
			telemetry.GPUStateInitFailed, "reboot after a driver upgrade"},
		{"no permission", telemetrytest.Server{InitError: nvml.ERROR_NO_PERMISSION}.NVML(),
			telemetry.GPUStateInitFailed, "/dev/nvidia"},
		{"other init failure", telemetrytest.Server{InitError: nvml.ERROR_UNKNOWN}.NVML(),
			telemetry.GPUStateInitFailed, "NVML initialization failed: ERROR_UNKNOWN"},
		{"zero devices", telemetrytest.DGXH100(0).NVML(), telemetry.GPUStateNoDevices,
			"driver loaded but 0 devices"},
		{"count fails", &mock.Interface{
			InitFunc:                       func() nvml.Return { return nvml.SUCCESS },
			ShutdownFunc:                   func() nvml.Return { return nvml.SUCCESS },
			SystemGetDriverVersionFunc:     func() (string, nvml.Return) { return "", nvml.ERROR_UNKNOWN },
			SystemGetCudaDriverVersionFunc: func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN },
			SystemGetNVMLVersionFunc:       func() (string, nvml.Return) { return "", nvml.ERROR_UNKNOWN },
			DeviceGetCountFunc:             func() (int, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST },
		}, telemetry.GPUStateInitFailed, "could not count devices: ERROR_GPU_IS_LOST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gpus, st := telemetry.ReadGPUs(tt.lib)
			if gpus == nil || len(gpus) != 0 {
				t.Errorf("gpus = %#v, want an empty non-nil slice", gpus)
			}
			if st.State != tt.wantState || st.Available() {
				t.Errorf("state = %q (available %v), want %q", st.State, st.Available(), tt.wantState)
			}
			if !strings.Contains(st.Reason, tt.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", st.Reason, tt.wantReason)
			}
		})
	}
}

// TestReadGPUsRealNVML runs against this machine's NVML: without a driver the
// reason must be the plain "not found" one; with one, GPUs must be listed.
func TestReadGPUsRealNVML(t *testing.T) {
	gpus, st := telemetry.ReadGPUs(nvml.New())
	switch st.State {
	case telemetry.GPUStateNoNVML:
		if !strings.Contains(st.Reason, "libnvidia-ml.so.1 not found") {
			t.Errorf("reason = %q", st.Reason)
		}
	case telemetry.GPUStateOK:
		if len(gpus) != st.DeviceCount || gpus[0].Name == "" {
			t.Errorf("gpus = %+v, status %+v", gpus, st)
		}
	default:
		t.Logf("NVML present but unusable here: %s", st.Reason)
	}
}

func TestReadGPUsH100(t *testing.T) {
	srv := telemetrytest.DGXH100(3)
	srv.GPUs[1].Fail = map[string]nvml.Return{
		telemetrytest.FieldPowerLimit:  nvml.ERROR_NOT_SUPPORTED,
		telemetrytest.FieldTemperature: nvml.ERROR_NO_PERMISSION,
	}
	srv.GPUs[2].Fail = map[string]nvml.Return{telemetrytest.FieldHandle: nvml.ERROR_GPU_IS_LOST}

	gpus, st := telemetry.ReadGPUs(srv.NVML())
	if !st.Available() || st.DeviceCount != 3 || len(gpus) != 3 {
		t.Fatalf("status %+v, %d gpus", st, len(gpus))
	}
	if st.DriverVersion != "580.95.05" || st.CUDADriverVersion != "13.0" || st.CUDADriverMajor() != 13 {
		t.Errorf("driver = %q, CUDA %q (major %d)", st.DriverVersion, st.CUDADriverVersion, st.CUDADriverMajor())
	}

	g := gpus[0]
	if g.Name != "NVIDIA H100 80GB HBM3" || g.ComputeCapability != "9.0" || g.UUID == "" {
		t.Errorf("identity = %q %q %q", g.Name, g.ComputeCapability, g.UUID)
	}
	if g.MemoryTotalBytes == nil || *g.MemoryTotalBytes != 80<<30 || g.MemoryUsedBytes == nil || *g.MemoryUsedBytes != 512<<20 {
		t.Errorf("memory = %v / %v", g.MemoryUsedBytes, g.MemoryTotalBytes)
	}
	if g.TemperatureC == nil || *g.TemperatureC != 34 {
		t.Errorf("temperature = %v", g.TemperatureC)
	}
	if g.PowerDrawW == nil || *g.PowerDrawW != 71.5 || g.PowerLimitW == nil || *g.PowerLimitW != 700 {
		t.Errorf("power = %v / %v", g.PowerDrawW, g.PowerLimitW)
	}
	if len(g.Warnings) != 0 || g.Error != "" {
		t.Errorf("healthy GPU has warnings %v / error %q", g.Warnings, g.Error)
	}

	// Not supported is "n/a" without a warning; no permission is n/a with one.
	g = gpus[1]
	if g.PowerLimitW != nil || g.TemperatureC != nil {
		t.Errorf("unsupported fields not nil: limit %v, temperature %v", g.PowerLimitW, g.TemperatureC)
	}
	if g.PowerDrawW == nil {
		t.Error("one unsupported field must not drop the others")
	}
	if len(g.Warnings) != 1 || !strings.HasPrefix(g.Warnings[0], "temperature: ") {
		t.Errorf("warnings = %v, want one for temperature only", g.Warnings)
	}

	g = gpus[2]
	if g.Index != 2 || !strings.Contains(g.Error, "open GPU 2") || g.Name != "" {
		t.Errorf("lost GPU = %+v", g)
	}
}

// TestReadGPUsNotAvailable: NVML's "not available" value (all ones) is
// never shown as a figure: memory used would read as 16 EiB.
func TestReadGPUsNotAvailable(t *testing.T) {
	srv := telemetrytest.DGXH100(1)
	srv.GPUs[0].MemoryUsedBytes, srv.GPUs[0].TemperatureC, srv.GPUs[0].PowerDrawMW = ^uint64(0), ^uint32(0), ^uint32(0)
	gpus, _ := telemetry.ReadGPUs(srv.NVML())
	g := gpus[0]
	if g.MemoryUsedBytes != nil || g.MemoryTotalBytes == nil || g.TemperatureC != nil || g.PowerDrawW != nil || g.PowerLimitW == nil {
		t.Errorf("memory %v/%v, temperature %v, power %v/%v: want the not-available ones nil, the others kept",
			g.MemoryUsedBytes, g.MemoryTotalBytes, g.TemperatureC, g.PowerDrawW, g.PowerLimitW)
	}
	if len(g.Warnings) != 1 || g.Warnings[0] != "memory used: not available" {
		t.Errorf("warnings %v", g.Warnings)
	}
}

func TestGPUInfoJSON(t *testing.T) {
	srv := telemetrytest.DGXH100(1)
	srv.GPUs[0].Fail = map[string]nvml.Return{telemetrytest.FieldPowerLimit: nvml.ERROR_NOT_SUPPORTED}
	gpus, st := telemetry.ReadGPUs(srv.NVML())
	b, err := json.Marshal(struct {
		GPUs   []telemetry.GPUInfo `json:"gpus"`
		Status telemetry.GPUStatus `json:"gpu_status"`
	}{gpus, st})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"power_limit_w":null`, `"power_draw_w":71.5`, `"state":"ok"`, `"cuda_driver_version":"13.0"`, `"memory_total_bytes":85899345920`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
}

func TestCUDADriverMajor(t *testing.T) {
	tests := map[string]int{"13.0": 13, "12.4": 12, "": 0, "x": 0}
	for in, want := range tests {
		if got := (telemetry.GPUStatus{CUDADriverVersion: in}).CUDADriverMajor(); got != want {
			t.Errorf("CUDADriverMajor(%q) = %d, want %d", in, got, want)
		}
	}
}
