package study

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/quantscope/quantscope/internal/bytefmt"
	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/telemetry"
)

// MemoryEstimate is what an experiment needs in memory at least, worked
// out before it runs: the model's weights (its files, external data
// included) and the activations of one batch (see
// optimize.PeakActivationBytes; never less than the batch's input and
// output tensors, which the worker allocates up front).
type MemoryEstimate struct {
	WeightBytes     int64
	PerSampleBytes  int64 // activations of one sample
	ActivationBytes int64 // PerSampleBytes × batch
}

// Total is weights plus activations.
func (m MemoryEstimate) Total() int64 { return m.WeightBytes + m.ActivationBytes }

// FitsBatch is the largest batch whose estimate fits in avail bytes (0 when
// not even the weights do).
func (m MemoryEstimate) FitsBatch(avail int64) int64 {
	if m.PerSampleBytes <= 0 || avail <= m.WeightBytes {
		return 0
	}
	return (avail - m.WeightBytes) / m.PerSampleBytes
}

// EstimateMemory reads the model at path (its graph, not its weights) and
// estimates what running it at batch needs (at imageSize when its input's
// height and width are symbolic; 0 for the size it declares).
func EstimateMemory(path string, batch, imageSize int) (MemoryEstimate, error) {
	var est MemoryEstimate
	weights, err := onnx.FilesSize(path)
	if err != nil {
		return est, fmt.Errorf("estimate memory of %s: %w", path, err)
	}
	m, err := onnx.LoadWith(path, onnx.LoadOptions{SkipExternalData: true})
	if err != nil {
		return est, fmt.Errorf("estimate memory of %s: %w", path, err)
	}
	est.WeightBytes = weights
	est.PerSampleBytes = optimize.PeakActivationBytes(m)
	if in, err := quant.ImageInputOf(m); err == nil {
		if at, err := in.At(imageSize); err == nil {
			in = at
		}
		// The input at the size the worker runs it (symbolic H and W
		// included), which shape inference may not have sized.
		est.PerSampleBytes = max(est.PerSampleBytes, int64(4*in.SampleLen()))
	}
	est.ActivationBytes = est.PerSampleBytes * int64(max(batch, 1))
	return est, nil
}

// availableMemory is the memory an experiment on ep can use: the host's
// available memory for the CPU EP, the first GPU's free memory for GPU
// EPs (false when it cannot be read).
func availableMemory(ep string) (int64, string, bool) {
	switch ep {
	case "", "cpu", "auto":
		avail := telemetry.ReadHostInfo().Memory.AvailableBytes
		return int64(avail), "available", avail > 0
	}
	gpus, st := telemetry.ReadGPUs(nvml.New())
	if !st.Available() || len(gpus) == 0 || gpus[0].MemoryTotalBytes == nil || gpus[0].MemoryUsedBytes == nil {
		return 0, "", false
	}
	return int64(*gpus[0].MemoryTotalBytes) - int64(*gpus[0].MemoryUsedBytes), "free on " + gpus[0].Name, true
}

// memoryWarnShare is the share of available memory above which a run is
// started with a warning.
const memoryWarnShare = 0.8

// checkMemory compares an experiment's estimate with the memory it can
// use: an error when it cannot fit (the worker would die of it, often
// taking minutes and the machine's responsiveness with it), a warning when
// it is close.
func checkMemory(est MemoryEstimate, e Experiment, avail int64, where string) (warning string, err error) {
	need := est.Total()
	if avail <= 0 || need <= 0 {
		return "", nil
	}
	what := fmt.Sprintf("%s at batch %d needs at least %s (weights %s, activations %s) and %s is %s",
		e.Model, e.Batch, bytefmt.Format(need), bytefmt.Format(est.WeightBytes), bytefmt.Format(est.ActivationBytes), bytefmt.Format(avail), where)
	if need > avail {
		hint := "a smaller model"
		if b := est.FitsBatch(avail); b >= 1 {
			hint = fmt.Sprintf("--batch %d or less", b)
		}
		return "", fmt.Errorf("not run: %s; try %s", what, hint)
	}
	if float64(need) > memoryWarnShare*float64(avail) {
		return fmt.Sprintf("%s: close to the limit, the run may swap or be killed", what), nil
	}
	return "", nil
}
