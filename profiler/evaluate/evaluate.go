// Package evaluate runs a model over a labelled image set and counts what
// it got right: the loop that streams a models/imageset Set through a bound
// session batch by batch, ranks each image's outputs into
// models/accuracy Predictions and turns them, with the FP32 model's
// predictions on the same images, into an accuracy.Result. The benchmark
// worker, `quantscope quantize --check`, sensitivity and tune all measure
// accuracy through it.
package evaluate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/models/imageset"
)

// Model is a session with input and output buffers bound at a fixed batch
// size (ort.Bound, ort.DeviceBound): fill Input(0), Run, read
// Output(0).
type Model interface {
	Input(i int) []float32
	Output(i int) []float32
	Run() error
}

// copier is implemented by models whose buffers live on a device: inputs
// are copied up before Run and outputs down after it.
type copier interface {
	CopyInputs() (time.Duration, error)
	CopyOutputs() (time.Duration, error)
}

// Progress is called as images are evaluated (done of total).
type Progress func(done, total int)

// Run streams up to limit images of set (all when limit ≤ 0) through m,
// whose bound batch is batch, and returns its predictions. The last batch
// is padded with the previous images' inputs and the padding's outputs
// ignored. The model's first output must have at least as many values per
// image as the set has classes.
func Run(ctx context.Context, m Model, batch int, set *imageset.Set, limit int, progress Progress) (*accuracy.Predictions, error) {
	if batch < 1 {
		return nil, fmt.Errorf("evaluate: batch %d", batch)
	}
	total := set.Len()
	if limit > 0 && limit < total {
		total = limit
	}
	in := m.Input(0)
	per := set.Preprocess.Pixels()
	if len(in) != batch*per {
		return nil, fmt.Errorf("evaluate: the model's input holds %d values for a batch of %d; the image set gives %d per image (%d×%d RGB): model and set sizes differ",
			len(in), batch, per, set.Preprocess.Width, set.Preprocess.Height)
	}
	outPer := len(m.Output(0)) / batch
	if outPer < len(set.Classes) {
		return nil, fmt.Errorf("evaluate: the model outputs %d values per image but the labels have %d classes: is it a classifier with this label set? (a labels file gives the model's class order)",
			outPer, len(set.Classes))
	}
	r, err := set.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	preds := &accuracy.Predictions{Set: set.Key}
	labels := make([]int32, batch)
	cp, device := m.(copier)
	last := time.Time{}
	for done := 0; done < total; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		want := min(batch, total-done)
		n, err := r.Next(in, labels[:want])
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return nil, fmt.Errorf("evaluate: image set ended after %d of %d images", done, total)
		}
		if err != nil {
			return nil, err
		}
		for j := n; j < batch; j++ { // pad: repeat the first image
			copy(in[j*per:(j+1)*per], in[:per])
		}
		if device {
			if _, err := cp.CopyInputs(); err != nil {
				return nil, fmt.Errorf("evaluate: %w", err)
			}
		}
		if err := m.Run(); err != nil {
			return nil, fmt.Errorf("evaluate: image %d: %w", done, err)
		}
		if device {
			if _, err := cp.CopyOutputs(); err != nil {
				return nil, fmt.Errorf("evaluate: %w", err)
			}
		}
		out := m.Output(0)
		for j := 0; j < n; j++ {
			preds.Add(out[j*outPer : (j+1)*outPer])
		}
		done += n
		if progress != nil && (time.Since(last) > 200*time.Millisecond || done == total) {
			last = time.Now()
			progress(done, total)
		}
	}
	return preds, nil
}

// Score turns predictions on set into the accuracy record: counts, and,
// when ref (the FP32 model's predictions on the same set) is given, the
// paired tables against it.
func Score(set *imageset.Set, preds, ref *accuracy.Predictions) (*accuracy.Result, error) {
	labels := set.Labels[:preds.Len()]
	c, err := accuracy.Score(preds, labels)
	if err != nil {
		return nil, err
	}
	res := &accuracy.Result{Dataset: set.Folder, Set: set.Key, Preprocess: set.Preprocess.String(),
		Classes: len(set.Classes), Skipped: len(set.Skipped), Counts: c}
	if ref != nil {
		if ref.Len() != preds.Len() {
			return nil, fmt.Errorf("accuracy: the FP32 predictions cover %d images, this run %d: pair runs of the same set and limit", ref.Len(), preds.Len())
		}
		p, err := accuracy.Pair(ref, preds, labels)
		if err != nil {
			return nil, err
		}
		res.VsFP32 = &p
	}
	return res, nil
}
