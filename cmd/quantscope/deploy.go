package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/quantscope/quantscope/deploy"
	"github.com/quantscope/quantscope/deploy/kube"
	"github.com/quantscope/quantscope/deploy/slurm"
	"github.com/quantscope/quantscope/profiler/study"
)

// deployStudyOptions are the study flags both generators share.
type deployStudyOptions struct {
	name       string
	models     []string
	precisions []string
	eps        []string
	batches    []int
	shards     int
	gpus       int
}

func (o *deployStudyOptions) register(f *pflag.FlagSet) {
	f.StringVar(&o.name, "name", "quantscope-bench", "job name; also the results directory and the host group the records report under (name one per kind of machine, e.g. bench-h100)")
	f.StringSliceVar(&o.models, "models", nil, "catalog names or .onnx paths as the tasks see them, comma-separated (required)")
	f.StringSliceVar(&o.precisions, "precisions", []string{"fp32", "fp16", "int8", "int4"}, "precision specs; fp32 baselines are always added")
	f.StringSliceVar(&o.eps, "ep", nil, "execution providers (default cuda with --gpu > 0, else cpu)")
	f.IntSliceVar(&o.batches, "batch", []int{1}, "batch sizes")
	f.IntVar(&o.shards, "shards", 0, "number of shards: pods (Kubernetes) or array tasks (Slurm) (required)")
	f.IntVar(&o.gpus, "gpu", 1, "GPUs per task (0 for CPU nodes)")
}

// study turns the flags and the arguments after -- (further bench flags)
// into a deploy.Study, and previews its split on this machine's catalog.
func (o deployStudyOptions) study(extra []string) (deploy.Study, []string, error) {
	eps := o.eps
	if len(eps) == 0 {
		eps = []string{"cpu"}
		if o.gpus > 0 {
			eps = []string{"cuda"}
		}
	}
	s := deploy.Study{Name: o.name, Models: o.models, Precisions: joinSpecOptions(o.precisions), EPs: eps, Batches: o.batches, Shards: o.shards, Extra: extra}
	if err := s.Validate(); err != nil {
		return s, nil, err
	}
	plan, err := study.Plan(study.PlanConfig{Models: s.Models, Precisions: s.Precisions, EPs: s.EPs, Batches: s.Batches})
	if err != nil {
		return s, nil, err
	}
	// Files the tasks see may not be here: they weigh the median on this
	// machine, and the comments say so.
	gflops, unreadable := modelGFLOPs(plan)
	p, err := study.PartitionPlan(plan, s.Shards, shardCost(gflops))
	if err != nil {
		return s, nil, err
	}
	preview := deploy.Preview(p)
	if len(unreadable) > 0 {
		preview = append(preview, fmt.Sprintf("(%s not readable here: weighed as the median model; the tasks weigh the real files)", strings.Join(unreadable, ", ")))
	}
	return s, preview, nil
}

func newDeployCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Write a Kubernetes Job or a Slurm array script that runs a study in shards",
		Long: `deploy writes what a cluster's own batch engine needs to run a study in
shards, one task per shard, each on its own GPU: 'deploy k8s' a batch/v1 Job
in Indexed completion mode, 'deploy slurm' an sbatch --array script. Every task
runs 'quantscope bench --shard auto', which takes its part of the study from
the engine's task index (a model and its FP32 baselines always share a task),
and writes results-<index>.jsonl. The output's comments say how to submit,
follow and collect the files; 'quantscope merge' then joins them.

Flags after -- are passed to every task's bench, e.g. -- --duration 20s --repeat 3.`,
	}
	cmd.AddCommand(newDeployK8sCmd(g), newDeploySlurmCmd(g))
	return cmd
}

// extraArgs returns the arguments after --; anything before it is a
// mistake (deploy takes none).
func extraArgs(cmd *cobra.Command, args []string) ([]string, error) {
	dash := cmd.ArgsLenAtDash()
	if dash < 0 {
		if len(args) > 0 {
			return nil, fmt.Errorf("unexpected argument %q: bench flags for the tasks go after --", args[0])
		}
		return nil, nil
	}
	if dash > 0 {
		return nil, fmt.Errorf("unexpected argument %q: bench flags for the tasks go after --", args[0])
	}
	return args, nil
}

func newDeployK8sCmd(g *globalOptions) *cobra.Command {
	var so deployStudyOptions
	var ko kube.Options
	cmd := &cobra.Command{
		Use:   "k8s --image IMG --models M,… --shards N [flags] [-- bench flags]",
		Short: "Print a batch/v1 Indexed Job (and its results claim) running the study in N pods",
		Example: `  quantscope deploy k8s --image registry.example.com/quantscope:1.0 --name bench-h100 \
    --models deit-tiny,vit-base-16,vit-large-16 --precisions fp16,int8 --batch 1,32 --shards 3 \
    --node-selector nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3 -- --duration 20s > job.yaml
  kubectl apply -f job.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			extra, err := extraArgs(cmd, args)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ko.GPUs = so.gpus
			return runDeploy(g.stdout, so, extra, func(w io.Writer, s deploy.Study, preview []string) error {
				return kube.Render(w, s, ko, preview)
			})
		},
	}
	f := cmd.Flags()
	so.register(f)
	f.StringVar(&ko.Image, "image", "", "container image with quantscope, ONNX Runtime and the CUDA plugin (the repository's Dockerfile) (required)")
	f.StringVar(&ko.Namespace, "namespace", "", "namespace of the Job (default: kubectl's current one)")
	f.StringToStringVar(&ko.NodeSelector, "node-selector", nil, "node label KEY=VALUE the pods must run on, repeatable (e.g. nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3)")
	f.StringVar(&ko.ResultsPVC, "results-pvc", "", "existing PersistentVolumeClaim (ReadWriteMany) for the results (default: a claim NAME-results is written beside the Job)")
	f.StringVar(&ko.ResultsSize, "results-size", "1Gi", "size of the results claim written without --results-pvc")
	f.StringVar(&ko.StorageClass, "storage-class", "", "storage class of the results claim written without --results-pvc (default: the cluster's)")
	f.StringVar(&ko.ModelsPVC, "models-pvc", "", "claim holding .onnx models, mounted read-only at /models (then --models /models/my.onnx)")
	f.IntVar(&ko.Parallelism, "parallelism", 0, "pods running at once (default: every shard)")
	f.IntVar(&ko.Retries, "retries", 2, "times a failed shard's pod is replaced (it resumes its file); preemptions do not count")
	f.StringVar(&ko.CPU, "cpu", "", "CPU request per pod, e.g. 8")
	f.StringVar(&ko.Memory, "memory", "", "memory request and limit per pod, e.g. 32Gi")
	_ = cmd.MarkFlagRequired("image")
	_ = cmd.MarkFlagRequired("models")
	_ = cmd.MarkFlagRequired("shards")
	return cmd
}

func newDeploySlurmCmd(g *globalOptions) *cobra.Command {
	var so deployStudyOptions
	var sl slurm.Options
	cmd := &cobra.Command{
		Use:   "slurm --models M,… --shards N [flags] [-- bench flags]",
		Short: "Print an sbatch script running the study as an N-task job array",
		Example: `  quantscope deploy slurm --name bench-a100 --models deit-tiny,vit-base-16 --shards 2 \
    --partition gpu --time 04:00:00 -- --duration 20s > bench-a100.sbatch
  sbatch bench-a100.sbatch`,
		RunE: func(cmd *cobra.Command, args []string) error {
			extra, err := extraArgs(cmd, args)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			sl.GPUs = so.gpus
			return runDeploy(g.stdout, so, extra, func(w io.Writer, s deploy.Study, preview []string) error {
				return slurm.Render(w, s, sl, preview)
			})
		},
	}
	f := cmd.Flags()
	so.register(f)
	f.StringVar(&sl.Partition, "partition", "", "Slurm partition")
	f.StringVar(&sl.Account, "account", "", "Slurm account")
	f.StringVar(&sl.Time, "time", "", "time limit per task, e.g. 04:00:00")
	f.IntVar(&sl.CPUsPerTask, "cpus-per-task", 0, "CPUs per task")
	f.StringVar(&sl.Mem, "mem", "", "memory per task, e.g. 32G")
	f.IntVar(&sl.MaxParallel, "max-parallel", 0, "tasks running at once (--array=…%N; default: no bound)")
	f.StringVar(&sl.ResultsDir, "results-dir", "", "directory every node sees for the results (default results/NAME under the submit directory)")
	f.StringVar(&sl.Image, "image", "", "run in this container image through pyxis/enroot (srun --container-image) instead of the nodes' quantscope")
	_ = cmd.MarkFlagRequired("models")
	_ = cmd.MarkFlagRequired("shards")
	return cmd
}

func runDeploy(w io.Writer, so deployStudyOptions, extra []string, render func(io.Writer, deploy.Study, []string) error) error {
	s, preview, err := so.study(extra)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if err := render(w, s, preview); err != nil {
		return &exitError{code: 2, err: err}
	}
	return nil
}
