// Package deploy writes what runs a sharded quantscope study on the batch
// engines clusters already have, rather than scheduling anything itself:
// a Kubernetes Indexed Job (package deploy/kube) and a Slurm job array
// (package deploy/slurm). Every task of either runs
// `quantscope bench --shard auto`, which takes its part of the study from
// the engine's task index (profiler/study partitions the plan), and writes
// results-<index>.jsonl; `quantscope merge` puts the files back together.
// This package holds what both generators share: the study's bench
// arguments, the wrapper that counts a shard with failed experiments as
// done, and the text that says how to collect the files.
package deploy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/quantscope/quantscope/profiler/study"
)

// Binary is the command the tasks run: the container image and the Slurm
// nodes have quantscope on their PATH.
const Binary = "quantscope"

// Study is the sharded study a generator writes a job for.
type Study struct {
	// Name names the job, the results directory and the host group of the
	// records (bench --host-group): the tasks of one job run on like
	// machines and report as one host.
	Name       string
	Models     []string
	Precisions []string
	EPs        []string
	Batches    []int
	// Shards is the number of tasks; each runs one part of the plan.
	Shards int
	// Extra are further bench flags (--duration, --repeat, --gate…),
	// passed on as given.
	Extra []string
}

// reserved are the bench flags the generators set themselves.
var reserved = []string{"--shard", "--shards", "--out", "--host-group", "--resume", "--models", "--precisions", "--ep", "--batch"}

// Validate checks what every generator needs.
func (s Study) Validate() error {
	var errs []error
	if strings.TrimSpace(s.Name) == "" {
		errs = append(errs, errors.New("the study needs a name (--name)"))
	}
	if len(s.Models) == 0 {
		errs = append(errs, errors.New("no models: pass --models"))
	}
	if s.Shards < 1 || s.Shards > study.MaxShards {
		errs = append(errs, fmt.Errorf("--shards %d: want 1 to %d", s.Shards, study.MaxShards))
	}
	for _, b := range s.Batches {
		if b < 1 {
			errs = append(errs, fmt.Errorf("batch size %d: must be at least 1", b))
		}
	}
	for _, a := range s.Extra {
		name, _, _ := strings.Cut(a, "=")
		if slices.Contains(reserved, name) {
			errs = append(errs, fmt.Errorf("bench flag %s is set by the generated job; leave it out of the extra arguments", name))
		}
	}
	return errors.Join(errs...)
}

// BenchArgs is the argument list after the binary for every task: bench
// with the study's plan, --shard auto with the number of shards (which a
// Kubernetes pod cannot see), the host group, --resume (a task retried
// after a crash or a preemption continues its own file), and out.
func (s Study) BenchArgs(out string) []string {
	args := []string{"bench", "--models", strings.Join(s.Models, ",")}
	if len(s.Precisions) > 0 {
		args = append(args, "--precisions", strings.Join(s.Precisions, ","))
	}
	if len(s.EPs) > 0 {
		args = append(args, "--ep", strings.Join(s.EPs, ","))
	}
	if len(s.Batches) > 0 {
		bs := make([]string, len(s.Batches))
		for i, b := range s.Batches {
			bs[i] = strconv.Itoa(b)
		}
		args = append(args, "--batch", strings.Join(bs, ","))
	}
	args = append(args, "--shard", "auto", "--shards", strconv.Itoa(s.Shards), "--host-group", s.Name, "--resume", "--out", out)
	return append(args, s.Extra...)
}

// ResultsFile is the results file of the task whose index is index.
func ResultsFile(index string) string { return "results-" + index + ".jsonl" }

// Exit codes of quantscope bench that mean the shard ran to its end: a
// configuration failed --gate (3), or some experiments failed (4). Their
// records say why; retrying the task would only measure the same failure.
const (
	ExitGateFailed = 3
	ExitFailures   = 4
)

// RunScript is the POSIX shell the tasks run quantscope through, with
// quantscope's arguments as "$@": it passes every exit status on except
// ExitGateFailed and ExitFailures, which become 0 (with a line on stderr)
// so that the engine neither retries the task nor fails the whole study
// for results it has recorded.
const RunScript = Binary + ` "$@"` + "\n" + ExitStatus

// ExitStatus is the shell that ends a task after quantscope bench ran:
// RunScript's mapping of its exit status, for scripts that start it their
// own way. Its 3|4 are ExitGateFailed and ExitFailures.
const ExitStatus = `rc=$?
case "$rc" in
3|4) echo "quantscope exited $rc: some experiments failed or missed the gate (their records say why); the shard is done" >&2; exit 0 ;;
esac
exit "$rc"`

// Preview describes a partition for a generated file's comments: which
// models each shard runs and its share of the expected cost.
func Preview(p study.Partition) []string {
	var out []string
	for i, part := range p.Parts {
		share := ""
		if p.Total > 0 {
			share = fmt.Sprintf(" (%.0f%% of the expected cost)", 100*part.Cost/p.Total)
		}
		models := strings.Join(part.Models, ", ")
		if models == "" {
			models = "nothing (more shards than models)"
		}
		out = append(out, fmt.Sprintf("shard %d: %s%s", i, models, share))
	}
	return out
}

// CollectSteps is the shell that turns the results files in dir into one
// file and a report, the last step of every collection.
func CollectSteps(dir, name string) []string {
	return []string{
		fmt.Sprintf("quantscope merge %s.jsonl %s/results-*.jsonl", name, dir),
		fmt.Sprintf("quantscope report %s.jsonl --out %s-report/", name, name),
	}
}
