package worker

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/telemetry"
)

// writeTrivialModel saves a model that does no work (Identity on one
// float) in dir and returns its path.
func writeTrivialModel(dir string) (string, error) {
	b := onnx.NewBuilder("floor", 17)
	b.AddInput("x", onnx.Float, onnx.Dims(1))
	b.AddNode("Identity", []string{"x"}, []string{"y"})
	b.AddOutput("y", onnx.Float, onnx.Dims(1))
	model, err := b.Build()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "floor.onnx")
	if err := onnx.Save(model, path, onnx.SaveOptions{}); err != nil {
		return "", err
	}
	return path, nil
}

// gpuContextShare measures, once and before the model loads, the device
// memory this process holds with a CUDA context and an empty session of
// the execution provider: a share of every later reading of the process's
// device memory that is not the configuration's. It reads NVML's process
// list (lib, or the real NVML when nil).
func gpuContextShare(cfg ort.SessionConfig, spec Spec, lib nvml.Interface) (int64, error) {
	if lib == nil {
		lib = nvml.New()
	}
	s, err := telemetry.NewGPUSampler(lib, telemetryIndex(spec, cfg), os.Getpid())
	if err != nil {
		return 0, err
	}
	defer s.Close()
	dir, err := os.MkdirTemp("", "quantscope-context-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	path, err := writeTrivialModel(dir)
	if err != nil {
		return 0, err
	}
	// No CUDA graph for an empty model: the context is what is measured.
	c := cfg
	c.EPOptions = maps.Clone(cfg.EPOptions)
	delete(c.EPOptions, "enable_cuda_graph")
	c.ProfilePrefix = "" // the experiment's own session is the one profiled
	bd, err := ort.NewBound(path, c, 1, 1)
	if err != nil {
		return 0, fmt.Errorf("empty session on %s: %w", cfg.EP, err)
	}
	defer bd.Close()
	if err := bd.Run(); err != nil {
		return 0, fmt.Errorf("empty session on %s: %w", cfg.EP, err)
	}
	pm := s.ProcessMemory()
	if !pm.OK || pm.Bytes == 0 {
		return 0, fmt.Errorf("NVML gives no device memory for this process (pid %d): %s", os.Getpid(), pm.Reason)
	}
	return int64(pm.Bytes), nil
}
