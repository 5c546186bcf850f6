package study

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Shard is one part of a study split across machines: part Index of Count,
// numbered from 0 as Kubernetes numbers the pods of an Indexed Job.
type Shard struct {
	Index, Count int
}

// String is "I/N", the form --shard takes.
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// MaxShards bounds the number of shards a study is split into.
const MaxShards = 10000

func (s Shard) validate() error {
	switch {
	case s.Count < 1:
		return fmt.Errorf("shard count %d: a study splits into at least 1 shard", s.Count)
	case s.Count > MaxShards:
		return fmt.Errorf("shard count %d: at most %d shards", s.Count, MaxShards)
	case s.Index < 0 || s.Index >= s.Count:
		return fmt.Errorf("shard index %d is outside 0…%d (shards are numbered from 0, as JOB_COMPLETION_INDEX numbers them)", s.Index, s.Count-1)
	}
	return nil
}

// ParseShard reads "I/N": shard I (0 ≤ I < N) of N.
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want I/N, e.g. 0/4 for the first of four shards (or auto)", s)
	}
	i, err1 := strconv.Atoi(strings.TrimSpace(is))
	n, err2 := strconv.Atoi(strings.TrimSpace(ns))
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: I and N must be whole numbers, e.g. 0/4", s)
	}
	sh := Shard{Index: i, Count: n}
	if err := sh.validate(); err != nil {
		return Shard{}, fmt.Errorf("shard %q: %w", s, err)
	}
	return sh, nil
}

// Environment variables ShardFromEnv reads.
const (
	// EnvJobCompletionIndex is set by Kubernetes in every pod of an
	// Indexed Job (completionMode: Indexed): 0 … completions−1.
	EnvJobCompletionIndex = "JOB_COMPLETION_INDEX"
	// The variables Slurm sets in every task of a job array (sbatch --array).
	EnvSlurmArrayTaskID    = "SLURM_ARRAY_TASK_ID"
	EnvSlurmArrayTaskCount = "SLURM_ARRAY_TASK_COUNT"
	EnvSlurmArrayTaskMin   = "SLURM_ARRAY_TASK_MIN"
	EnvSlurmArrayTaskStep  = "SLURM_ARRAY_TASK_STEP"
)

// ErrNoShardEnv is returned by ShardFromEnv when neither a Kubernetes
// Indexed Job nor a Slurm job array variable is set.
var ErrNoShardEnv = errors.New("neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID (Slurm job array) is set")

// ShardFromEnv finds this process's shard from the scheduler's variables,
// read through getenv: a Kubernetes Indexed Job's JOB_COMPLETION_INDEX,
// with the number of shards from count (the Job's completions, which the
// pod cannot see), or a Slurm job array's SLURM_ARRAY_TASK_ID, relative to
// SLURM_ARRAY_TASK_MIN in steps of SLURM_ARRAY_TASK_STEP, of
// SLURM_ARRAY_TASK_COUNT (count, when not 0, must agree). source says which
// it was, for messages.
func ShardFromEnv(getenv func(string) string, count int) (sh Shard, source string, err error) {
	num := func(name string) (int, bool, error) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, true, fmt.Errorf("%s=%q is not a whole number", name, v)
		}
		return n, true, nil
	}
	if idx, ok, err := num(EnvJobCompletionIndex); err != nil {
		return Shard{}, "", err
	} else if ok {
		source = "Kubernetes " + EnvJobCompletionIndex
		if count < 1 {
			return Shard{}, source, fmt.Errorf("%s=%d found but the number of shards is unknown: pass --shards N (the Job's completions)", EnvJobCompletionIndex, idx)
		}
		sh = Shard{Index: idx, Count: count}
		if err := sh.validate(); err != nil {
			return Shard{}, source, fmt.Errorf("%s=%d with --shards %d: %w", EnvJobCompletionIndex, idx, count, err)
		}
		return sh, source, nil
	}
	id, ok, err := num(EnvSlurmArrayTaskID)
	if err != nil {
		return Shard{}, "", err
	}
	if !ok {
		return Shard{}, "", ErrNoShardEnv
	}
	source = "Slurm " + EnvSlurmArrayTaskID
	n, ok, err := num(EnvSlurmArrayTaskCount)
	if err != nil {
		return Shard{}, source, err
	}
	if !ok {
		return Shard{}, source, fmt.Errorf("%s is set but %s is not: is this a job array (sbatch --array)?", EnvSlurmArrayTaskID, EnvSlurmArrayTaskCount)
	}
	lo, _, err := num(EnvSlurmArrayTaskMin)
	if err != nil {
		return Shard{}, source, err
	}
	step, ok, err := num(EnvSlurmArrayTaskStep)
	if err != nil {
		return Shard{}, source, err
	}
	if !ok || step < 1 {
		step = 1
	}
	if (id-lo)%step != 0 {
		return Shard{}, source, fmt.Errorf("%s=%d is not %s=%d plus a multiple of %s=%d: submit a contiguous array, --array=0-%d", EnvSlurmArrayTaskID, id, EnvSlurmArrayTaskMin, lo, EnvSlurmArrayTaskStep, step, n-1)
	}
	if count > 0 && count != n {
		return Shard{}, source, fmt.Errorf("--shards %d disagrees with %s=%d", count, EnvSlurmArrayTaskCount, n)
	}
	sh = Shard{Index: (id - lo) / step, Count: n}
	if err := sh.validate(); err != nil {
		return Shard{}, source, fmt.Errorf("%s=%d of %s=%d (min %d): %w; submit a contiguous array, --array=0-%d", EnvSlurmArrayTaskID, id, EnvSlurmArrayTaskCount, n, lo, err, n-1)
	}
	return sh, source, nil
}

// CostFunc is the expected cost of one experiment, in any unit as long as
// it is the same for every experiment of a plan (bench uses the model's
// GFLOPs per sample × the batch size). Negative, NaN or infinite costs
// count as 0.
type CostFunc func(Experiment) float64

// ShardPart is one shard of a partition.
type ShardPart struct {
	// Models are the models this shard runs, heaviest first.
	Models []string
	// Cost is the sum of its experiments' costs.
	Cost float64
	// Experiments are its experiments, in the plan's order.
	Experiments []Experiment
}

// Partition is a plan split into shards.
type Partition struct {
	Parts []ShardPart
	// Total is the cost of the whole plan; MaxUnit that of its most
	// expensive model (the unit no partition can split).
	Total, MaxUnit float64
}

// Imbalance is the most expensive shard's cost over the mean shard's (1
// when perfectly balanced; NaN for a plan without cost).
func (p Partition) Imbalance() float64 {
	if p.Total <= 0 || len(p.Parts) == 0 {
		return math.NaN()
	}
	var most float64
	for _, s := range p.Parts {
		most = max(most, s.Cost)
	}
	return most / (p.Total / float64(len(p.Parts)))
}

// PartitionPlan splits plan into count shards. A model is never split:
// all of its experiments (its FP32 baselines, its variants at every
// precision, batch, EP and repetition) land in one shard, so every speedup
// and every repeat verdict is measured on one host. Models are balanced by
// expected cost, not by count: heaviest first, each to the shard with the
// least cost so far (fewest models, then lowest index, on a tie) — the
// longest-processing-time rule, which keeps the most expensive shard within
// 4/3 of the best possible split and within Total/count + MaxUnit. The
// result depends only on the plan and the costs, so every machine of a
// sharded study computes the same partition.
func PartitionPlan(plan []Experiment, count int, cost CostFunc) (Partition, error) {
	if err := (Shard{Count: count}).validate(); err != nil {
		return Partition{}, err
	}
	type unit struct {
		model string
		cost  float64
		first int // position in the plan
	}
	var units []*unit
	byModel := map[string]*unit{}
	for i, e := range plan {
		u, ok := byModel[e.Model]
		if !ok {
			u = &unit{model: e.Model, first: i}
			byModel[e.Model] = u
			units = append(units, u)
		}
		c := 0.0
		if cost != nil {
			c = cost(e)
		}
		if c > 0 && !math.IsInf(c, 0) {
			u.cost += c
		}
	}
	slices.SortStableFunc(units, func(a, b *unit) int {
		return cmp.Or(cmp.Compare(b.cost, a.cost), cmp.Compare(a.model, b.model))
	})
	p := Partition{Parts: make([]ShardPart, count)}
	shardOf := map[string]int{}
	for _, u := range units {
		best := 0
		for i := 1; i < count; i++ {
			s, b := p.Parts[i], p.Parts[best]
			if s.Cost < b.Cost || (s.Cost == b.Cost && len(s.Models) < len(b.Models)) {
				best = i
			}
		}
		p.Parts[best].Models = append(p.Parts[best].Models, u.model)
		p.Parts[best].Cost += u.cost
		shardOf[u.model] = best
		p.Total += u.cost
		p.MaxUnit = max(p.MaxUnit, u.cost)
	}
	for _, e := range plan {
		i := shardOf[e.Model]
		p.Parts[i].Experiments = append(p.Parts[i].Experiments, e)
	}
	return p, nil
}
