package study

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/quick"
)

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Shard
		err  string
	}{
		{in: "0/4", want: Shard{0, 4}},
		{in: " 3 / 4 ", want: Shard{3, 4}},
		{in: "0/1", want: Shard{0, 1}},
		{in: "4/4", err: "outside 0…3"},
		{in: "-1/4", err: "outside"},
		{in: "1/0", err: "at least 1"},
		{in: "0/20000", err: "at most"},
		{in: "2", err: "want I/N"},
		{in: "a/b", err: "whole numbers"},
		{in: "", err: "want I/N"},
	} {
		got, err := ParseShard(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseShard(%q) error = %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if got.String() != strings.ReplaceAll(tc.in, " ", "") {
			t.Errorf("String() = %q", got.String())
		}
	}
}

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestShardFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    func(string) string
		count  int
		want   Shard
		source string
		err    string
	}{
		{name: "k8s", env: envOf("JOB_COMPLETION_INDEX", "2"), count: 4, want: Shard{2, 4}, source: "Kubernetes"},
		{name: "k8s without count", env: envOf("JOB_COMPLETION_INDEX", "2"), err: "pass --shards N"},
		{name: "k8s index beyond count", env: envOf("JOB_COMPLETION_INDEX", "4"), count: 4, err: "outside 0…3"},
		{name: "k8s garbage", env: envOf("JOB_COMPLETION_INDEX", "two"), count: 4, err: "not a whole number"},
		{name: "k8s wins over slurm", env: envOf("JOB_COMPLETION_INDEX", "1", "SLURM_ARRAY_TASK_ID", "3", "SLURM_ARRAY_TASK_COUNT", "4"), count: 2, want: Shard{1, 2}, source: "Kubernetes"},
		{name: "slurm from 0", env: envOf("SLURM_ARRAY_TASK_ID", "3", "SLURM_ARRAY_TASK_COUNT", "4", "SLURM_ARRAY_TASK_MIN", "0"), want: Shard{3, 4}, source: "Slurm"},
		{name: "slurm from 1", env: envOf("SLURM_ARRAY_TASK_ID", "1", "SLURM_ARRAY_TASK_COUNT", "4", "SLURM_ARRAY_TASK_MIN", "1", "SLURM_ARRAY_TASK_MAX", "4"), want: Shard{0, 4}, source: "Slurm"},
		{name: "slurm stepped", env: envOf("SLURM_ARRAY_TASK_ID", "12", "SLURM_ARRAY_TASK_COUNT", "4", "SLURM_ARRAY_TASK_MIN", "0", "SLURM_ARRAY_TASK_STEP", "4"), want: Shard{3, 4}, source: "Slurm"},
		{name: "slurm count agrees", env: envOf("SLURM_ARRAY_TASK_ID", "0", "SLURM_ARRAY_TASK_COUNT", "2"), count: 2, want: Shard{0, 2}, source: "Slurm"},
		{name: "slurm count disagrees", env: envOf("SLURM_ARRAY_TASK_ID", "0", "SLURM_ARRAY_TASK_COUNT", "2"), count: 3, err: "disagrees"},
		{name: "slurm without count", env: envOf("SLURM_ARRAY_TASK_ID", "0"), err: "SLURM_ARRAY_TASK_COUNT"},
		{name: "slurm list array", env: envOf("SLURM_ARRAY_TASK_ID", "7", "SLURM_ARRAY_TASK_COUNT", "3", "SLURM_ARRAY_TASK_MIN", "0"), err: "--array=0-2"},
		{name: "nothing", env: envOf(), err: "neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, src, err := ShardFromEnv(tc.env, tc.count)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want || !strings.HasPrefix(src, tc.source) {
				t.Fatalf("got %v from %q, %v; want %v from %s", got, src, err, tc.want, tc.source)
			}
		})
	}
	if _, _, err := ShardFromEnv(envOf(), 0); !errors.Is(err, ErrNoShardEnv) {
		t.Errorf("no variables: %v, want ErrNoShardEnv", err)
	}
}

// randomStudy is a random plan with a random cost per model, for the
// partition properties.
type randomStudy struct {
	Plan   []Experiment
	GFLOPs map[string]float64
	Shards int
}

// Generate implements quick.Generator: 1–24 models (some with unknown,
// zero cost), 1–4 precisions, 1–3 EPs, 1–4 batches, 1–3 repeats, 1–12
// shards.
func (randomStudy) Generate(r *rand.Rand, _ int) reflect.Value {
	nm := 1 + r.Intn(24)
	s := randomStudy{GFLOPs: map[string]float64{}, Shards: 1 + r.Intn(12)}
	var models []string
	for i := range nm {
		m := fmt.Sprintf("model-%02d", i)
		models = append(models, m)
		switch r.Intn(8) {
		case 0:
			s.GFLOPs[m] = 0 // unknown: costs nothing
		case 1:
			s.GFLOPs[m] = 100 + 300*r.Float64() // one huge model
		default:
			s.GFLOPs[m] = 0.3 + 20*r.Float64()
		}
	}
	precs := []string{"fp16", "int8", "int4:block=64", "int8-static"}[:r.Intn(5)]
	eps := []string{"cpu", "cuda", "tensorrt"}[:1+r.Intn(3)]
	batches := []int{1, 8, 32, 4}[:1+r.Intn(4)]
	plan, err := Plan(PlanConfig{Models: models, Precisions: precs, EPs: eps, Batches: batches, Repeat: 1 + r.Intn(3)})
	if err != nil {
		panic(err)
	}
	s.Plan = plan
	return reflect.ValueOf(s)
}

func (s randomStudy) cost(e Experiment) float64 { return s.GFLOPs[e.Model] * float64(e.Batch) }

// TestPartitionProperties checks, over random plans: the shards together
// are the plan (every experiment once, in plan order within a shard), no
// model is split (so each baseline is with its variants), every shard's
// cost is the sum of its experiments', the most expensive shard is within
// Total/N + MaxUnit (the list-scheduling bound), and partitioning is
// deterministic.
func TestPartitionProperties(t *testing.T) {
	prop := func(s randomStudy) bool {
		p, err := PartitionPlan(s.Plan, s.Shards, s.cost)
		if err != nil {
			t.Logf("PartitionPlan: %v", err)
			return false
		}
		if len(p.Parts) != s.Shards {
			t.Logf("%d parts for %d shards", len(p.Parts), s.Shards)
			return false
		}
		// Union is the plan, disjoint: every experiment lands exactly once,
		// and each shard keeps the plan's order.
		pos := map[string]int{}
		for i, e := range s.Plan {
			pos[e.Key()] = i
		}
		seen := map[string]int{}
		shardOfModel := map[string]int{}
		var total float64
		for si, part := range p.Parts {
			last := -1
			var cost float64
			for _, e := range part.Experiments {
				k := e.Key()
				if _, dup := seen[k]; dup {
					t.Logf("experiment %s in shards %d and %d", k, seen[k], si)
					return false
				}
				seen[k] = si
				if pos[k] <= last {
					t.Logf("shard %d out of plan order at %s", si, k)
					return false
				}
				last = pos[k]
				if prev, ok := shardOfModel[e.Model]; ok && prev != si {
					t.Logf("model %s split over shards %d and %d", e.Model, prev, si)
					return false
				}
				shardOfModel[e.Model] = si
				cost += s.cost(e)
			}
			if !near(cost, part.Cost) {
				t.Logf("shard %d cost %g, its experiments sum to %g", si, part.Cost, cost)
				return false
			}
			for _, m := range part.Models {
				if shardOfModel[m] != si {
					t.Logf("shard %d lists model %s that runs in %d", si, m, shardOfModel[m])
					return false
				}
			}
			total += part.Cost
		}
		if len(seen) != len(s.Plan) {
			t.Logf("%d of %d experiments placed", len(seen), len(s.Plan))
			return false
		}
		// Baselines co-located: every variant's FP32 experiment is in its shard.
		for _, e := range s.Plan {
			if b, ok := seen[e.BaselineKey()]; !ok || b != seen[e.Key()] {
				t.Logf("%s runs in shard %d, its baseline in %d (present %v)", e.Key(), seen[e.Key()], b, ok)
				return false
			}
		}
		if !near(total, p.Total) {
			t.Logf("Total %g, parts sum to %g", p.Total, total)
			return false
		}
		bound := p.Total/float64(s.Shards) + p.MaxUnit
		for si, part := range p.Parts {
			if part.Cost > bound*(1+1e-9) {
				t.Logf("shard %d costs %g, above Total/N + MaxUnit = %g", si, part.Cost, bound)
				return false
			}
		}
		again, _ := PartitionPlan(slices.Clone(s.Plan), s.Shards, s.cost)
		if !reflect.DeepEqual(p, again) {
			t.Log("partitioning the same plan twice gave different shards")
			return false
		}
		return true
	}
	cfg := &quick.Config{MaxCount: 300, Rand: rand.New(rand.NewSource(19))}
	if err := quick.Check(prop, cfg); err != nil {
		t.Fatal(err)
	}
}

// TestPartitionWithinLPTBound checks the stated balance bound against the
// best possible split, found by brute force on small random studies: the
// most expensive shard costs at most (4/3 − 1/(3N)) × the optimum.
func TestPartitionWithinLPTBound(t *testing.T) {
	prop := func(seed int64) bool {
		r := rand.New(rand.NewSource(seed))
		n := 1 + r.Intn(9)
		shards := 2 + r.Intn(3)
		var models []string
		gflops := map[string]float64{}
		for i := range n {
			m := fmt.Sprintf("m%d", i)
			models = append(models, m)
			gflops[m] = float64(1 + r.Intn(40))
		}
		plan, _ := Plan(PlanConfig{Models: models, Precisions: []string{"int8"}, Batches: []int{1, 8}})
		cost := func(e Experiment) float64 { return gflops[e.Model] * float64(e.Batch) }
		p, err := PartitionPlan(plan, shards, cost)
		if err != nil {
			return false
		}
		var worst float64
		for _, part := range p.Parts {
			worst = max(worst, part.Cost)
		}
		units := make([]float64, n)
		for i, m := range models {
			units[i] = gflops[m] * 2 * 9 // fp32+int8 × batches 1 and 8
		}
		opt := bestMakespan(units, shards)
		limit := (4.0/3 - 1/(3*float64(shards))) * opt
		if worst > limit*(1+1e-9) {
			t.Logf("seed %d: worst shard %g, optimum %g, bound %g", seed, worst, opt, limit)
			return false
		}
		return true
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 200, Rand: rand.New(rand.NewSource(4))}); err != nil {
		t.Fatal(err)
	}
}

// bestMakespan is the least possible cost of the most expensive of k
// shards, by trying every assignment.
func bestMakespan(units []float64, k int) float64 {
	best := math.Inf(1)
	loads := make([]float64, k)
	var rec func(i int)
	rec = func(i int) {
		if i == len(units) {
			best = min(best, slices.Max(loads))
			return
		}
		for s := range k {
			loads[s] += units[i]
			if loads[s] < best {
				rec(i + 1)
			}
			loads[s] -= units[i]
			if loads[s] == 0 {
				break // empty shards are interchangeable
			}
		}
	}
	rec(0)
	return best
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(a), math.Abs(b)) }

func TestPartitionBalancesByCostNotCount(t *testing.T) {
	plan, err := Plan(PlanConfig{Models: []string{"vit-huge-14", "deit-tiny", "deit-small", "mobilenet-v2"}, Precisions: []string{"fp16", "int8"}, Batches: []int{1, 8}})
	if err != nil {
		t.Fatal(err)
	}
	gflops := map[string]float64{"vit-huge-14": 334.9, "deit-tiny": 1.26, "deit-small": 4.61, "mobilenet-v2": 0.6}
	p, err := PartitionPlan(plan, 2, func(e Experiment) float64 { return gflops[e.Model] * float64(e.Batch) })
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Parts[0].Models; !slices.Equal(got, []string{"vit-huge-14"}) {
		t.Errorf("shard 0 = %v, want the huge model alone", got)
	}
	if got := p.Parts[1].Models; !slices.Equal(got, []string{"deit-small", "deit-tiny", "mobilenet-v2"}) {
		t.Errorf("shard 1 = %v, want the three small models, heaviest first", got)
	}
	if n := len(p.Parts[0].Experiments); n != 6 {
		t.Errorf("shard 0 has %d experiments, want 6 (3 precisions × 2 batches)", n)
	}
}

func TestPartitionZeroCostSpreadsByCount(t *testing.T) {
	plan, _ := Plan(PlanConfig{Models: []string{"a.onnx", "b.onnx", "c.onnx", "d.onnx", "e.onnx"}})
	p, err := PartitionPlan(plan, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := len(p.Parts[0].Models), len(p.Parts[1].Models); a != 3 || b != 2 {
		t.Errorf("models per shard %d and %d, want 3 and 2", a, b)
	}
	if !math.IsNaN(p.Imbalance()) {
		t.Errorf("Imbalance of a costless plan = %v, want NaN", p.Imbalance())
	}
}

func TestPartitionMoreShardsThanModels(t *testing.T) {
	plan, _ := Plan(PlanConfig{Models: []string{"deit-tiny", "resnet-50"}, Precisions: []string{"int8"}})
	p, err := PartitionPlan(plan, 4, func(e Experiment) float64 { return 1 })
	if err != nil {
		t.Fatal(err)
	}
	empty := 0
	for _, part := range p.Parts {
		if len(part.Experiments) == 0 {
			empty++
		}
	}
	if empty != 2 {
		t.Errorf("%d empty shards, want 2", empty)
	}
	for _, bad := range []func(Experiment) float64{
		func(Experiment) float64 { return math.NaN() },
		func(Experiment) float64 { return math.Inf(1) },
		func(Experiment) float64 { return -5 },
	} {
		p, err := PartitionPlan(plan, 2, bad)
		if err != nil || p.Total != 0 || len(p.Parts[0].Experiments)+len(p.Parts[1].Experiments) != len(plan) {
			t.Errorf("bad costs: %+v, %v", p, err)
		}
	}
	if _, err := PartitionPlan(plan, 0, nil); err == nil {
		t.Error("0 shards accepted")
	}
}

// FuzzParseShard: any text either parses to a valid shard that prints back
// to itself, or is refused; nothing panics.
func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"0/4", "3/4", "4/4", "-1/2", "1/0", "a/b", "", "/", "1/2/3", " 2 / 5 ", "99999999999999999999/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sh, err := ParseShard(s)
		if err != nil {
			return
		}
		if sh.Index < 0 || sh.Index >= sh.Count || sh.Count > MaxShards {
			t.Fatalf("ParseShard(%q) = %v: out of range", s, sh)
		}
		again, err := ParseShard(sh.String())
		if err != nil || again != sh {
			t.Fatalf("%v prints as %q, which parses to %v, %v", sh, sh.String(), again, err)
		}
	})
}
