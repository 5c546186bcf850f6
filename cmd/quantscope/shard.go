package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/study"
)

// shardAuto is the --shard value that reads the scheduler's variables.
const shardAuto = "auto"

// resolveShard turns --shard and --shards into a shard: "I/N" as given,
// or "auto" from a Kubernetes Indexed Job's or a Slurm array's variables
// (read through getenv). source says where the index came from.
func resolveShard(spec string, shards int, getenv func(string) string) (sh study.Shard, source string, err error) {
	if shards < 0 {
		return study.Shard{}, "", fmt.Errorf("--shards %d: must be positive", shards)
	}
	switch strings.TrimSpace(spec) {
	case "":
		if shards > 0 {
			return study.Shard{}, "", fmt.Errorf("--shards %d without --shard: add --shard auto (or --shard I/%d)", shards, shards)
		}
		return study.Shard{}, "", nil
	case shardAuto:
		sh, source, err := study.ShardFromEnv(getenv, shards)
		if err != nil {
			return study.Shard{}, "", fmt.Errorf("--shard auto: %w", err)
		}
		return sh, source, nil
	}
	sh, err = study.ParseShard(spec)
	if err != nil {
		return study.Shard{}, "", fmt.Errorf("--shard: %w", err)
	}
	if shards > 0 && shards != sh.Count {
		return study.Shard{}, "", fmt.Errorf("--shard %s disagrees with --shards %d", spec, shards)
	}
	return sh, "--shard", nil
}

// modelGFLOPs is the compute per sample of each model of a plan: the
// catalog's for its names, an estimate from the graph for .onnx files
// (tensor data not read), 0 when neither is known. unreadable lists the
// files that could not be loaded.
func modelGFLOPs(plan []study.Experiment) (gflops map[string]float64, unreadable []string) {
	out := map[string]float64{}
	for _, e := range plan {
		if _, done := out[e.Model]; done {
			continue
		}
		out[e.Model] = 0
		if s, ok := zoo.Lookup(e.Model); ok {
			out[e.Model] = s.GFLOPs
			continue
		}
		m, err := onnx.LoadWith(e.Model, onnx.LoadOptions{SkipExternalData: true})
		if err != nil {
			unreadable = append(unreadable, e.Model)
			continue
		}
		if f, err := optimize.EstimateFLOPs(m); err == nil {
			out[e.Model] = f.GFLOPs
		}
	}
	return out, unreadable
}

// shardCost is the expected cost of an experiment: GFLOPs per sample ×
// batch size, so a model costs GFLOPs × precisions × batches summed over
// its runs. A model whose GFLOPs are unknown costs what the median known
// model does (1 GFLOP when none is known).
func shardCost(gflops map[string]float64) study.CostFunc {
	var known []float64
	for _, g := range gflops {
		if g > 0 && !math.IsInf(g, 0) {
			known = append(known, g)
		}
	}
	fallback := 1.0
	if len(known) > 0 {
		slices.Sort(known)
		fallback = known[len(known)/2]
	}
	return func(e study.Experiment) float64 {
		g := gflops[e.Model]
		if !(g > 0) || math.IsInf(g, 0) {
			g = fallback
		}
		return g * float64(max(e.Batch, 1))
	}
}

// selectShard keeps this shard's part of plan and says so on w.
func selectShard(w io.Writer, plan []study.Experiment, sh study.Shard, source string) ([]study.Experiment, error) {
	gflops, unreadable := modelGFLOPs(plan)
	if len(unreadable) > 0 {
		// Every shard must weigh the models alike, or two shards could
		// both run a model, or neither.
		return nil, fmt.Errorf("cannot read %s to weigh it for sharding: is the file on every machine of the study?", strings.Join(unreadable, ", "))
	}
	p, err := study.PartitionPlan(plan, sh.Count, shardCost(gflops))
	if err != nil {
		return nil, err
	}
	part := p.Parts[sh.Index]
	share := 0.0
	if p.Total > 0 {
		share = 100 * part.Cost / p.Total
	}
	if len(part.Experiments) == 0 {
		fmt.Fprintf(w, "quantscope bench: shard %s (from %s) has no work: the study has fewer models (%d) than shards, and a model is never split\n",
			sh, source, len(gflops))
		return nil, nil
	}
	fmt.Fprintf(w, "quantscope bench: shard %s (from %s): %d of %d experiments, models %s (%.0f%% of the study's expected cost)\n",
		sh, source, len(part.Experiments), len(plan), strings.Join(part.Models, ", "), share)
	return part.Experiments, nil
}
