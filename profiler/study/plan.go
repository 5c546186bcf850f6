package study

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/ort/cudaopt"
)

// PlanConfig is what the user asked for.
type PlanConfig struct {
	Models     []string
	Precisions []string // specs; fp32 is added when missing
	EPs        []string // default ["cpu"]
	Batches    []int    // default [1]
	Threads    int
	Repeat     int // run every experiment this many times, interleaved (default 1)
	// Optimize runs every experiment on the model as models/optimize
	// fuses it.
	Optimize bool
	// EPOptions are the provider options passed to every EP (--ep-option);
	// CUDAOptions those for CUDA experiments only (--tf32, --cuda-graph…).
	// Both become part of each experiment's identity (Experiment.Options).
	EPOptions, CUDAOptions map[string]string
	// Resolution runs models whose input height and width are symbolic at
	// this size (0: the size each declares).
	Resolution int
}

// experimentOptions is the canonical "key=value,…" of the options an
// experiment on ep runs with, leaving out CUDA options that only restate
// ONNX Runtime's defaults, so that `--tf32 on` and no flag are one
// experiment.
func experimentOptions(c PlanConfig, ep string) string {
	opts := maps.Clone(c.EPOptions)
	if ep == "cuda" || ep == "auto" {
		if opts == nil {
			opts = map[string]string{}
		}
		maps.Copy(opts, c.CUDAOptions)
	}
	opts = cudaopt.NormalizeAll(opts)
	defaults := cudaopt.Defaults()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if d, ok := defaults[k]; ok && d == opts[k] {
			continue
		}
		parts = append(parts, k+"="+opts[k])
	}
	return strings.Join(parts, ",")
}

// Plan lists the experiments of a study in run order. Every model/EP/batch
// gets its FP32 baseline, which runs before that group's variants; with
// Repeat > 1 the whole list is repeated round by round (A B C A B C …) so
// heat and clock drift treat every variant alike. Every precision spec is
// parsed first, so a typo fails before any experiment runs.
func Plan(c PlanConfig) ([]Experiment, error) {
	if len(c.Models) == 0 {
		return nil, fmt.Errorf("plan: no models")
	}
	eps := c.EPs
	if len(eps) == 0 {
		eps = []string{"cpu"}
	}
	batches := c.Batches
	if len(batches) == 0 {
		batches = []int{1}
	}
	for _, b := range batches {
		if b < 1 {
			return nil, fmt.Errorf("plan: batch size %d must be at least 1", b)
		}
	}
	if c.Resolution < 0 || (c.Resolution > 0 && c.Resolution < 8) {
		return nil, fmt.Errorf("plan: resolution %d: want 0 (as declared) or at least 8 pixels", c.Resolution)
	}
	if c.Threads < 0 {
		return nil, fmt.Errorf("plan: %d threads: want 0 (one per physical core) or more", c.Threads)
	}
	precs := []string{"fp32"}
	seen := map[string]bool{"fp32": true}
	var bad []string
	for _, p := range c.Precisions {
		p = strings.TrimSpace(p)
		if p == "" || seen[p] {
			continue
		}
		if _, err := quant.ParseSpec(p); err != nil {
			bad = append(bad, err.Error())
			continue
		}
		seen[p] = true
		precs = append(precs, p)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("plan: %s", strings.Join(bad, "; "))
	}
	for _, m := range c.Models {
		if strings.TrimSpace(m) == "" {
			return nil, fmt.Errorf("plan: an empty model name")
		}
	}
	repeat := max(c.Repeat, 1)
	var round []Experiment
	for _, m := range c.Models {
		for _, ep := range eps {
			for _, b := range batches {
				for _, p := range precs {
					round = append(round, Experiment{Model: m, Precision: p, EP: ep, Batch: b, Threads: c.Threads, Optimize: c.Optimize, Options: experimentOptions(c, ep), Resolution: c.Resolution})
				}
			}
		}
	}
	out := make([]Experiment, 0, len(round)*repeat)
	for r := 0; r < repeat; r++ {
		for _, e := range round {
			e.Repeat = r
			out = append(out, e)
		}
	}
	return out, nil
}
