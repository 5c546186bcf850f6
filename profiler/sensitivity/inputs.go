package sensitivity

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/quantscope/quantscope/models/imageset"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/zoo"
)

// SyntheticSeed seeds the synthetic images used without labelled ones.
const SyntheticSeed = 7

// SyntheticInputs are n seeded synthetic images (quant.SyntheticImage) at
// the model's input size, normalized with its mean and std: the inputs of
// `quantize --check`.
func SyntheticInputs(modelPath string, r zoo.Resolved, n int) (Inputs, error) {
	in, err := quant.ImageInputFile(modelPath)
	if err != nil {
		return Inputs{}, err
	}
	pre := quant.Preprocess{Mean: r.Spec.Preprocess.Mean, Std: r.Spec.Preprocess.Std}
	out := Inputs{Source: fmt.Sprintf("%d synthetic images (seed %d)", n, SyntheticSeed)}
	for i := 0; i < n; i++ {
		out.Samples = append(out.Samples, quant.SyntheticImage(in, pre, SyntheticSeed, i))
	}
	return out, nil
}

// SetInputs are the first n images of a labelled set, with their labels.
func SetInputs(set *imageset.Set, n int) (Inputs, error) {
	n = min(n, set.Len())
	r, err := set.Reader()
	if err != nil {
		return Inputs{}, err
	}
	defer r.Close()
	per := set.Preprocess.Pixels()
	out := Inputs{Source: fmt.Sprintf("the first %d images of %s", n, set.Folder), Labels: make([]int32, n)}
	for i := 0; i < n; i++ {
		x := make([]float32, per)
		if _, err := r.Next(x, out.Labels[i:i+1]); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return Inputs{}, err
		}
		out.Samples = append(out.Samples, x)
	}
	return out, nil
}

// Source resolves a model name or path to the FP32 file the candidates
// are made from: fused by models/optimize when fuse is set (as bench and
// tune run variants by default).
func Source(ctx context.Context, model string, kind quant.Kind, fuse bool) (zoo.Resolved, string, error) {
	r, err := zoo.Resolve(ctx, model)
	if err != nil {
		return r, "", err
	}
	path := r.Path
	if o, ok := optimize.For(string(kind)); ok && fuse {
		c, err := optimize.Ensure(ctx, r.Path, o)
		if err != nil {
			return r, "", err
		}
		path = c.Path
	}
	return r, path, nil
}
