package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/quantscope/quantscope/profiler/study"
)

// pathPreparer serves .onnx paths at fp32 until the catalog and quantizer are
// wired in.
type pathPreparer struct{}

func newStudyPreparer(g *globalOptions) study.Preparer { return pathPreparer{} }

func (pathPreparer) Prepare(ctx context.Context, model, precision string) (study.Prepared, error) {
	if !strings.HasSuffix(model, ".onnx") {
		return study.Prepared{}, fmt.Errorf("model %q: not a .onnx path", model)
	}
	if _, err := os.Stat(model); err != nil {
		return study.Prepared{}, fmt.Errorf("model %s: %w", model, err)
	}
	if precision != "fp32" {
		return study.Prepared{}, fmt.Errorf("precision %q: quantization not wired yet", precision)
	}
	return study.Prepared{Path: model}, nil
}
