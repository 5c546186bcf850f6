package tune

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/quantscope/quantscope/profiler/study"
)

// StudyMeasurer measures candidates as bench does: each one experiment of
// a study (prepared by the study's Preparer, timed in a worker process of
// its own, FP32 first so fidelity and accuracy pair with it), appended to
// the results file Config.Out like any bench record.
type StudyMeasurer struct {
	Model    string
	EP       string
	Batch    int
	Threads  int
	Optimize bool
	// Run configures the study: Out, Prepare, Host, Duration, Eval, ORTLib,
	// Worker, OnUpdate.
	Run study.RunConfig
	// Reuse takes a candidate's ok record from Run.Out when one is there
	// (tune --resume) instead of measuring it again.
	Reuse bool
}

func (s *StudyMeasurer) experiment(spec string) study.Experiment {
	return study.Experiment{Model: s.Model, Precision: spec, EP: s.EP, Batch: max(1, s.Batch), Threads: s.Threads, Optimize: s.Optimize}
}

// Baseline measures the FP32 model.
func (s *StudyMeasurer) Baseline(ctx context.Context) (Measurement, error) {
	return s.measure(ctx, "fp32")
}

// Measure measures one candidate spec.
func (s *StudyMeasurer) Measure(ctx context.Context, spec string) (Measurement, error) {
	return s.measure(ctx, spec)
}

func (s *StudyMeasurer) measure(ctx context.Context, spec string) (Measurement, error) {
	e := s.experiment(spec)
	if s.Reuse {
		if recs, _, err := study.ReadResults(s.Run.Out); err == nil {
			for i := len(recs) - 1; i >= 0; i-- {
				if recs[i].OK() && recs[i].Experiment.Key() == e.Key() {
					return fromRecord(spec, &recs[i]), nil
				}
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return Measurement{}, err
		}
	}
	cfg := s.Run
	if cfg.Duration <= 0 && cfg.Iters <= 0 {
		cfg.Duration = 3 * time.Second
	}
	recs, err := study.Run(ctx, []study.Experiment{e}, cfg)
	if err != nil {
		return Measurement{}, err
	}
	if len(recs) != 1 {
		return Measurement{}, fmt.Errorf("%s: no record", spec)
	}
	if !recs[0].OK() {
		return Measurement{}, errors.New(recs[0].Reason)
	}
	return fromRecord(spec, &recs[0]), nil
}

func fromRecord(spec string, r *study.Record) Measurement {
	m := r.Metrics
	return Measurement{Spec: spec, Throughput: m.Throughput, P50Ms: m.Latency.P50Ms, FileBytes: r.File.Bytes,
		Fidelity: m.Fidelity, Accuracy: m.Accuracy, Path: r.File.Path, Traits: r.Traits()}
}
