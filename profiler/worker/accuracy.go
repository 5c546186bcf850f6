package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/models/imageset"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/evaluate"
)

// measureAccuracy runs the image set of spec.Eval through the bound model,
// writes or pairs predictions, and records the result in m.Accuracy,
// reporting progress as "accuracy" samples.
func measureAccuracy(ctx context.Context, bd boundModel, spec Spec, m *bench.Metrics, em *Emitter) error {
	ev := spec.Eval
	set, err := imageset.Open(ev.CacheDir, ev.Set, ev.Preprocess)
	if err != nil {
		return fmt.Errorf("accuracy: %w", err)
	}
	start := time.Now()
	progress := func(done, total int) {
		em.Emit(Event{Kind: KindSample, Sample: &Sample{Phase: bench.PhaseAccuracy, ElapsedS: time.Since(start).Seconds(),
			Images: done, ImagesTotal: total, Throughput: float64(done) / max(time.Since(start).Seconds(), 1e-9)}})
	}
	preds, err := evaluate.Run(ctx, bd, bd.BatchSize(), set, ev.Limit, progress)
	if err != nil {
		return fmt.Errorf("accuracy: %w", err)
	}
	var ref *accuracy.Predictions
	if ev.Reference != "" && ev.Reference != ev.WritePredictions {
		if ref, err = accuracy.ReadPredictions(ev.Reference); err != nil {
			return fmt.Errorf("accuracy: %w", err)
		}
	}
	res, err := evaluate.Score(set, preds, ref)
	if err != nil {
		return fmt.Errorf("accuracy: %w", err)
	}
	if ev.WritePredictions != "" {
		if err := accuracy.WritePredictions(ev.WritePredictions, preds); err != nil {
			return fmt.Errorf("accuracy: %w", err)
		}
	}
	m.Accuracy = res
	return nil
}
