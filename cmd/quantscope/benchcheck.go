package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/study"
)

// validateNumbers rejects numeric flags that cannot mean anything: a
// timed phase of no or negative length, negative thread or run counts, a
// study repeated zero times.
func (o benchOptions) validateNumbers() error {
	switch {
	case o.duration < 0:
		return fmt.Errorf("--duration %s: must be positive (e.g. 10s)", o.duration)
	case o.duration == 0 && o.iters == 0:
		return errors.New("--duration 0: the timed phase needs a length (e.g. 10s), or --iters N")
	case o.iters < 0:
		return fmt.Errorf("--iters %d: must be a positive number of runs (or 0: time --duration instead)", o.iters)
	case o.threads < 0:
		return fmt.Errorf("--threads %d: must be 0 (one per physical core) or a positive count", o.threads)
	case o.repeat < 1:
		return fmt.Errorf("--repeat %d: must be at least 1", o.repeat)
	case o.timeout < 0:
		return fmt.Errorf("--timeout %s: must be positive, or 0 for the default", o.timeout)
	case len(o.batches) == 0:
		return errors.New("--batch: give at least one batch size")
	}
	for _, b := range o.batches {
		if b < 1 {
			return fmt.Errorf("--batch %d: batch sizes must be at least 1", b)
		}
	}
	return nil
}

// checkModels makes sure every model of the plan can be found before the
// study starts: a catalog name, or an .onnx file that is an image model
// (its graph is read, not its weights) that can run at --resolution. A
// model that passes may still fail in its worker; that becomes a failed
// record.
func checkModels(models []string, resolution int) error {
	var problems []string
	for _, m := range models {
		m = strings.TrimSpace(m)
		if m == "" {
			problems = append(problems, "an empty model name")
			continue
		}
		if !zoo.IsPath(m) {
			if s, ok := zoo.Lookup(m); ok {
				if resolution > 0 && resolution != s.Resolution {
					problems = append(problems, fmt.Sprintf("%s is built at %d×%d; --resolution applies to imported models with a symbolic height and width", m, s.Resolution, s.Resolution))
				}
				continue
			}
		}
		if _, err := zoo.Import(m); err != nil {
			if !zoo.IsPath(m) {
				_, err = zoo.Resolve(context.Background(), m) // the catalog's "did you mean"
			}
			problems = append(problems, err.Error())
			continue
		}
		if _, err := study.RunImageSize(m, resolution); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v (--resolution)", m, err))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("--models: %s", strings.Join(problems, "; "))
	}
	return nil
}

// checkFiles checks the files the study reads and writes: --out must be a
// results file (or not exist yet) and --calib-dir a folder of images used
// by some int8-static experiment.
func (o benchOptions) checkFiles(plan []study.Experiment) error {
	if err := study.CheckResultsFile(o.out); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if o.calibDir == "" {
		return nil
	}
	static := slices.ContainsFunc(plan, func(e study.Experiment) bool {
		s, err := quant.ParseSpec(e.Precision)
		return err == nil && s.Kind == quant.Int8Static
	})
	if !static {
		return fmt.Errorf("--calib-dir applies to int8-static only, and --precisions has none")
	}
	if _, err := quant.ImageFiles(o.calibDir); err != nil {
		return fmt.Errorf("--calib-dir %s: %w", o.calibDir, err)
	}
	return nil
}

// checkEPs resolves every execution provider the plan names, as the
// worker will: an unknown name, or CUDA without its plugin and libraries,
// is an error now rather than a failed record per experiment later.
func checkEPs(info ort.Info, eps []string) error {
	search := ort.SystemCUDASearch()
	search.ORTLibDir = filepath.Dir(info.LibraryPath)
	var cuda *ort.CUDAInfo
	seen := map[string]bool{}
	for _, ep := range eps {
		if seen[ep] {
			continue
		}
		seen[ep] = true
		if ep == "cuda" && cuda == nil {
			c := ort.FindCUDA(search)
			cuda = &c
		}
		var c ort.CUDAInfo
		if cuda != nil {
			c = *cuda
		}
		if _, err := ort.ResolveEP(ep, info, c); err != nil {
			return fmt.Errorf("--ep %s: %w", ep, err)
		}
	}
	return nil
}
