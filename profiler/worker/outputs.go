package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/quantscope/quantscope/profiler/ort"
)

// collectOutputs runs n inputs through bd, a batch at a time, and returns
// each input's first output, with the time spent copying inputs to the
// device and outputs back. fill writes input i into dst; the last batch is
// padded with indexes from n on, whose outputs are dropped. This is the one
// loop by which quantscope gets the outputs it judges fidelity on: the
// worker's (measureFidelity) and quantize --check's (FirstOutputs).
func collectOutputs(ctx context.Context, bd boundModel, n int, fill func(dst []float32, i int)) (outs [][]float32, h2d, d2h time.Duration, err error) {
	in := bd.Input(0)
	batch := bd.BatchSize()
	per := len(in) / batch
	outPer := len(bd.Output(0)) / batch
	outs = make([][]float32, 0, n)
	for first := 0; first < n; first += batch {
		if err := ctx.Err(); err != nil {
			return nil, 0, 0, err
		}
		for j := 0; j < batch; j++ {
			fill(in[j*per:(j+1)*per], first+j)
		}
		t, err := bd.CopyInputs()
		if err != nil {
			return nil, 0, 0, fmt.Errorf("fidelity inputs: %w", err)
		}
		h2d += t
		if err := bd.Run(); err != nil {
			return nil, 0, 0, fmt.Errorf("fidelity run: %w", err)
		}
		if t, err = bd.CopyOutputs(); err != nil {
			return nil, 0, 0, fmt.Errorf("fidelity outputs: %w", err)
		}
		d2h += t
		out := bd.Output(0)
		for j := 0; j < batch && first+j < n; j++ {
			outs = append(outs, append([]float32(nil), out[j*outPer:(j+1)*outPer]...))
		}
	}
	return outs, h2d, d2h, nil
}

// FirstOutputs opens the model at path in this process (host tensors,
// batch inputs per run) and returns the first output of each of n inputs,
// which fill writes (index i into dst; indexes from n on pad the last
// batch). It is the worker's fidelity loop for callers that compare two
// models without starting a worker (quantize --check).
func FirstOutputs(ctx context.Context, path string, cfg ort.SessionConfig, batch, n int, fill func(dst []float32, i int)) ([][]float32, error) {
	bd, err := openModel(path, cfg, batch, bindForEP)
	if err != nil {
		return nil, err
	}
	defer bd.Close()
	outs, _, _, err := collectOutputs(ctx, bd, n, fill)
	return outs, err
}
