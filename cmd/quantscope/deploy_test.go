package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/deploy"
)

func runDeployCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs(append([]string{"deploy"}, args...))
	err = root.Execute()
	return out.String(), errb.String(), err
}

// The generated jobs count exactly bench's "results recorded" exit codes
// as done.
func TestDeployExitCodesAreBenchs(t *testing.T) {
	if deploy.ExitGateFailed != exitGateFailed || deploy.ExitFailures != exitBenchFailures {
		t.Errorf("deploy maps %d and %d, bench exits %d (gate) and %d (failures)", deploy.ExitGateFailed, deploy.ExitFailures, exitGateFailed, exitBenchFailures)
	}
}

func TestDeployK8sCommand(t *testing.T) {
	out, _, err := runDeployCLI(t, "k8s", "--image", "reg.example.com/q:1", "--name", "bench-h200", "--models", "deit-tiny,vit-base-16",
		"--precisions", "int4:block=64,asym,int8", "--batch", "1,8", "--shards", "2", "--node-selector", "nvidia.com/gpu.product=NVIDIA-H200",
		"--", "--duration", "20s", "--repeat", "3")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"kind: Job", "completionMode: Indexed", "completions: 2", "nvidia.com/gpu: \"1\"", "- cuda\n", // --gpu 1 → --ep cuda
		"- int4:block=64,asym,int8\n", "- --duration\n        - 20s\n        - --repeat\n        - \"3\"\n",
		"/results/bench-h200/results-$(JOB_COMPLETION_INDEX).jsonl", "shard 0: vit-base-16 (", "kind: PersistentVolumeClaim",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy k8s output lacks %q", want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"k8s", "--image", "q:1", "--models", "a", "--shards", "2", "stray"}, "unexpected argument \"stray\""},
		{[]string{"k8s", "--image", "q:1", "--models", "a", "--shards", "0"}, "--shards 0"},
		{[]string{"k8s", "--image", "q:1", "--models", "a", "--shards", "2", "--", "--out", "x"}, "--out is set by the generated job"},
		{[]string{"k8s", "--models", "a", "--shards", "2"}, "\"image\" not set"},
		{[]string{"slurm", "--models", "a", "--shards", "2", "--time", "soon"}, "--time \"soon\""},
	} {
		_, _, err := runDeployCLI(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("deploy %v: %v, want %q", tc.args, err, tc.want)
		}
		var ee *exitError
		if err != nil && !strings.Contains(tc.want, "not set") && (!errors.As(err, &ee) || ee.code != 2) {
			t.Errorf("deploy %v: %v is not a usage error (exit 2)", tc.args, err)
		}
	}
}

func TestDeploySlurmCommand(t *testing.T) {
	out, _, err := runDeployCLI(t, "slurm", "--models", "deit-tiny,resnet-50", "--shards", "2", "--gpu", "0", "--partition", "cpu", "--", "--threads", "8")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#SBATCH --array=0-1\n", "--ep cpu", "--threads 8", "--shard auto --shards 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy slurm output lacks %q", want)
		}
	}
	if strings.Contains(out, "--gres") {
		t.Error("--gpu 0 still asks for GPUs")
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		path := filepath.Join(t.TempDir(), "s.sbatch")
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
			t.Errorf("bash -n: %v %s", err, b)
		}
	}
}
