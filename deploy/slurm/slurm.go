// Package slurm writes a sharded quantscope study as an sbatch script for a
// Slurm job array: one array task per shard, each with its GPU (--gres),
// its part of the study from SLURM_ARRAY_TASK_ID, and its results file in a
// directory every node sees.
package slurm

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/quantscope/quantscope/deploy"
	"github.com/quantscope/quantscope/profiler/study"
)

// Options are the cluster side of the array job.
type Options struct {
	// GPUs per task (--gres=gpu:N); 0 for CPU partitions.
	GPUs int
	// Partition, Account and Time (sbatch --time, e.g. 04:00:00) are
	// passed to sbatch when set.
	Partition, Account, Time string
	// CPUsPerTask and Mem (e.g. 32G) size each task; 0 and "" leave
	// Slurm's defaults.
	CPUsPerTask int
	Mem         string
	// MaxParallel bounds the tasks running at once (--array=…%N); 0 for
	// no bound.
	MaxParallel int
	// ResultsDir is where the tasks write, on a file system every node
	// sees ("" for results/NAME under the directory sbatch runs in).
	ResultsDir string
	// Image runs quantscope in a container through the pyxis/enroot srun
	// plugin (--container-image), with the results directory mounted (add
	// a mount for .onnx models outside the image); "" runs the quantscope
	// on the nodes' PATH.
	Image string
}

var (
	timeRE = regexp.MustCompile(`^(\d+-)?\d+(:\d{1,2}){0,2}$`)
	memRE  = regexp.MustCompile(`^\d+[KMGT]?$`)
	wordRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

func validate(s deploy.Study, o Options) error {
	errs := []error{s.Validate()}
	if s.Name != "" && !wordRE.MatchString(s.Name) {
		errs = append(errs, fmt.Errorf("--name %q: letters, digits, '.', '_' and '-' only", s.Name))
	}
	if o.GPUs < 0 {
		errs = append(errs, fmt.Errorf("--gpu %d: must be 0 or more", o.GPUs))
	}
	if o.CPUsPerTask < 0 {
		errs = append(errs, fmt.Errorf("--cpus-per-task %d: must be 0 or more", o.CPUsPerTask))
	}
	if o.MaxParallel < 0 {
		errs = append(errs, fmt.Errorf("--max-parallel %d: must be 0 (no bound) or more", o.MaxParallel))
	}
	if o.Time != "" && !timeRE.MatchString(o.Time) {
		errs = append(errs, fmt.Errorf("--time %q: want minutes, HH:MM:SS or D-HH:MM:SS as sbatch takes it", o.Time))
	}
	if o.Mem != "" && !memRE.MatchString(o.Mem) {
		errs = append(errs, fmt.Errorf("--mem %q: want a size such as 32G", o.Mem))
	}
	for flag, v := range map[string]string{"--partition": o.Partition, "--account": o.Account} {
		if v != "" && !wordRE.MatchString(v) {
			errs = append(errs, fmt.Errorf("%s %q: letters, digits, '.', '_' and '-' only", flag, v))
		}
	}
	if strings.ContainsAny(o.ResultsDir, "\n\x00") || strings.ContainsAny(o.Image, "\n\x00") {
		errs = append(errs, errors.New("--results-dir and --image must be one line"))
	}
	return errors.Join(errs...)
}

// Quote makes s one word for a POSIX shell: as is when it holds only safe
// characters, else in single quotes.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,=+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Render writes the sbatch script. preview lines (deploy.Preview) go into
// its comments.
func Render(w io.Writer, s deploy.Study, o Options, preview []string) error {
	if err := validate(s, o); err != nil {
		return err
	}
	results := o.ResultsDir
	if results == "" {
		results = "results/" + s.Name
	}
	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	line("#!/bin/bash")
	line("# quantscope study %q: %d shards as a Slurm job array, one task per shard.", s.Name, s.Shards)
	line("# Task i runs `quantscope bench --shard auto`, which takes shard i from SLURM_ARRAY_TASK_ID")
	line("# (relative to SLURM_ARRAY_TASK_MIN) of SLURM_ARRAY_TASK_COUNT, and writes")
	line("# %s on a file system every node sees.", results+"/"+deploy.ResultsFile("<i>"))
	line("# A model's FP32 baseline runs in the same task as its variants; a task whose experiments")
	line("# failed still completes (their records say why); a requeued task resumes its file.")
	if len(preview) > 0 {
		line("#")
		line("# Expected split (GFLOPs × batch; every task computes the same):")
		for _, p := range preview {
			line("#   %s", p)
		}
	}
	line("#")
	line("# Submit and follow (from the directory the results should go under):")
	line("#   sbatch %s.sbatch", s.Name)
	line("#   squeue --me --name=%s", s.Name)
	line("#   sacct --name=%s --format=JobID,State,ExitCode,Elapsed", s.Name)
	line("# Collect, once every task is done (logs: %s-<job>_<i>.out):", s.Name)
	for _, c := range deploy.CollectSteps(results, s.Name) {
		line("#   %s", c)
	}
	line("#SBATCH --job-name=%s", s.Name)
	array := fmt.Sprintf("0-%d", s.Shards-1)
	if o.MaxParallel > 0 {
		array += fmt.Sprintf("%%%d", o.MaxParallel)
	}
	line("#SBATCH --array=%s", array)
	line("#SBATCH --ntasks=1")
	if o.GPUs > 0 {
		line("#SBATCH --gres=gpu:%d", o.GPUs)
	}
	if o.CPUsPerTask > 0 {
		line("#SBATCH --cpus-per-task=%d", o.CPUsPerTask)
	}
	if o.Mem != "" {
		line("#SBATCH --mem=%s", o.Mem)
	}
	if o.Partition != "" {
		line("#SBATCH --partition=%s", o.Partition)
	}
	if o.Account != "" {
		line("#SBATCH --account=%s", o.Account)
	}
	if o.Time != "" {
		line("#SBATCH --time=%s", o.Time)
	}
	line("#SBATCH --output=%s-%%A_%%a.out", s.Name)
	line("#SBATCH --requeue")
	line("")
	line("set -u")
	line("RESULTS=%s", Quote(results))
	line(`mkdir -p "$RESULTS" && RESULTS=$(cd "$RESULTS" && pwd) || exit 1`)
	// Everything bench needs besides --out, which names the task.
	args := s.BenchArgs("@OUT@")
	var words []string
	for _, a := range args {
		if a == "@OUT@" {
			words = append(words, `"$RESULTS/`+deploy.ResultsFile("${"+study.EnvSlurmArrayTaskID+"}")+`"`)
			continue
		}
		words = append(words, Quote(a))
	}
	run := "srun"
	if o.Image != "" {
		run += " --container-image=" + Quote(o.Image) + ` --container-mounts="$RESULTS:$RESULTS"`
	}
	line("%s %s %s", run, deploy.Binary, strings.Join(words, " "))
	line("%s", deploy.ExitStatus)
	_, err := io.WriteString(w, b.String())
	return err
}
