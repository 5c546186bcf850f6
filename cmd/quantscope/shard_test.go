package main

import (
	"bytes"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/study"
)

func TestResolveShard(t *testing.T) {
	k8s := func(k string) string {
		if k == study.EnvJobCompletionIndex {
			return "3"
		}
		return ""
	}
	none := func(string) string { return "" }
	for _, tc := range []struct {
		spec   string
		shards int
		env    func(string) string
		want   study.Shard
		err    string
	}{
		{spec: "", env: none},
		{spec: "1/3", env: none, want: study.Shard{Index: 1, Count: 3}},
		{spec: "1/3", shards: 3, env: none, want: study.Shard{Index: 1, Count: 3}},
		{spec: "1/3", shards: 4, env: none, err: "disagrees"},
		{spec: "", shards: 4, env: none, err: "without --shard"},
		{spec: "auto", shards: 4, env: k8s, want: study.Shard{Index: 3, Count: 4}},
		{spec: "auto", env: k8s, err: "pass --shards N"},
		{spec: "auto", shards: 4, env: none, err: "neither JOB_COMPLETION_INDEX"},
		{spec: "3/3", env: none, err: "outside 0…2"},
		{spec: "1/3", shards: -1, env: none, err: "must be positive"},
	} {
		got, _, err := resolveShard(tc.spec, tc.shards, tc.env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("resolveShard(%q, %d) error %v, want %q", tc.spec, tc.shards, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("resolveShard(%q, %d) = %v, %v; want %v", tc.spec, tc.shards, got, err, tc.want)
		}
	}
}

// Catalog models cost their GFLOPs, .onnx files what their graph counts,
// and unreadable ones the median of the rest; every cost scales with the
// batch.
func TestShardCost(t *testing.T) {
	dir := t.TempDir()
	file := tinyImageModel(t, dir) // one [1,192]×[192,10] MatMul per sample
	plan, err := study.Plan(study.PlanConfig{Models: []string{"deit-tiny", "resnet-50", "vit-base-16", file, filepath.Join(dir, "missing.onnx")}, Batches: []int{1, 8}})
	if err != nil {
		t.Fatal(err)
	}
	g, unreadable := modelGFLOPs(plan)
	if !slices.Equal(unreadable, []string{filepath.Join(dir, "missing.onnx")}) {
		t.Errorf("unreadable %v, want the missing file", unreadable)
	}
	for _, name := range []string{"deit-tiny", "resnet-50", "vit-base-16"} {
		s, _ := zoo.Lookup(name)
		if g[name] != s.GFLOPs || s.GFLOPs <= 0 {
			t.Errorf("%s: %v GFLOPs, catalog %v", name, g[name], s.GFLOPs)
		}
	}
	if want := 2 * 192 * 10 / 1e9; math.Abs(g[file]-want) > 1e-15 {
		t.Errorf("imported file: %v GFLOPs, want %v", g[file], want)
	}
	cost := shardCost(g)
	rn, _ := zoo.Lookup("resnet-50")
	missing := study.Experiment{Model: filepath.Join(dir, "missing.onnx"), Batch: 8}
	// Known: tiny file, deit-tiny, resnet-50, vit-base-16: the median of
	// four is the third smallest, resnet-50.
	if got := cost(missing); math.Abs(got-8*rn.GFLOPs) > 1e-9 {
		t.Errorf("unknown model at batch 8 costs %v, want 8 × the median (%v)", got, 8*rn.GFLOPs)
	}
	if got := cost(study.Experiment{Model: "deit-tiny", Batch: 4}); math.Abs(got-4*g["deit-tiny"]) > 1e-12 {
		t.Errorf("deit-tiny at batch 4 costs %v", got)
	}
	if got := shardCost(map[string]float64{"x": 0})(study.Experiment{Model: "x", Batch: 2}); got != 2 {
		t.Errorf("nothing known: cost %v, want 1 GFLOP × batch 2", got)
	}
}

// cliEnv is cli with extra environment variables.
func cliEnv(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "QUANTSCOPE_AS_CLI=1", "NO_COLOR=1")
	if info := ort.Probe(""); info.OK() {
		cmd.Env = append(cmd.Env, ort.EnvLibrary+"="+info.LibraryPath)
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// Two pods of an Indexed Job run disjoint halves of one study, each
// model's baseline with it, into their own files, naming one host group;
// a third shard of a two-model study has nothing to do and says so.
func TestBenchShardEndToEnd(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	a := tinyImageModel(t, dir)
	b := filepath.Join(dir, "tiny-b.onnx")
	data, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, data, 0o644); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for idx := range 2 {
		out := filepath.Join(dir, "tiny-pool", "results-"+string(rune('0'+idx))+".jsonl") // a directory bench creates
		_, stderr, code := cliEnv(t, dir, []string{"JOB_COMPLETION_INDEX=" + string(rune('0'+idx))},
			"bench", "--models", a+","+b, "--precisions", "fp32", "--batch", "1,2", "--duration", "150ms", "--threads", "1",
			"--shard", "auto", "--shards", "2", "--host-group", "tiny-pool", "--out", out)
		if code != 0 {
			t.Fatalf("shard %d: exit %d\n%s", idx, code, stderr)
		}
		if !strings.Contains(stderr, "shard "+string(rune('0'+idx))+"/2 (from Kubernetes JOB_COMPLETION_INDEX): 2 of 4 experiments") {
			t.Errorf("shard %d: no shard line in stderr:\n%s", idx, stderr)
		}
		recs, _, err := study.ReadResults(out)
		if err != nil || len(recs) != 2 {
			t.Fatalf("shard %d: %d records, %v", idx, len(recs), err)
		}
		for _, r := range recs {
			seen[r.Experiment.Model]++
			if r.Experiment.Model != recs[0].Experiment.Model {
				t.Errorf("shard %d ran two models: %s and %s", idx, recs[0].Experiment.Model, r.Experiment.Model)
			}
			if r.Host.Group != "tiny-pool" || r.Host.Hostname == "" {
				t.Errorf("shard %d host %+v, want group tiny-pool and the real hostname", idx, r.Host)
			}
		}
	}
	if seen[a] != 2 || seen[b] != 2 {
		t.Errorf("records per model %v, want 2 each", seen)
	}
	_, stderr, code := cli(t, dir, "bench", "--models", a+","+filepath.Join(dir, "absent.onnx"), "--precisions", "fp32", "--shard", "0/2", "--out", filepath.Join(dir, "x.jsonl"))
	// The plan check (benchcheck.go) finds it before sharding weighs it.
	if code != 2 || !strings.Contains(stderr, "absent.onnx does not exist") {
		t.Errorf("a model file this machine cannot read: exit %d\n%s", code, stderr)
	}
	out := filepath.Join(dir, "sub", "dir", "results-2.jsonl")
	_, stderr, code = cli(t, dir, "bench", "--models", a+","+b, "--precisions", "fp32", "--shard", "2/3", "--out", out)
	if code != 0 || !strings.Contains(stderr, "has no work") {
		t.Errorf("empty shard: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("empty shard wrote %s (%v)", out, err)
	}
}
