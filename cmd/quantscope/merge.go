package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/quantscope/quantscope/profiler/study"
)

func newMergeCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "merge OUT.jsonl IN.jsonl…",
		Short: "Combine results files (the shards of a study, several hosts) into one",
		Long: `merge writes the records of every IN file into OUT, once each: a measurement
recorded more than once on the same host (a shard re-run after a failure, a
resumed study, a file given twice) keeps its newest record. Hosts are told
apart by name (--host-group, else hostname), CPU, GPU, driver, CUDA and ONNX
Runtime version, so the same experiment measured on two kinds of machine stays
twice, once per host, for 'quantscope report' to compare side by side.

Records are copied byte for byte. Torn lines (a killed run) are skipped with a
warning; a record of a schema version this build does not know stops the merge
before anything is written. OUT is replaced atomically; it may be one of the
inputs, but an existing OUT that is not among them is refused.`,
		Example: `  quantscope merge all.jsonl results/results-*.jsonl
  quantscope merge all.jsonl all.jsonl late-shard.jsonl   # add to an earlier merge
  quantscope report all.jsonl --out report/`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMerge(g, args[0], args[1:])
		},
	}
}

func runMerge(g *globalOptions, out string, inputs []string) error {
	rep, err := study.MergeFiles(out, inputs)
	for _, w := range rep.Warnings {
		fmt.Fprintf(g.stderr, "warning: %s\n", w)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "merged %d records from %d files into %s: %d written, %d dropped (duplicates, or older records of a re-run)\n",
		rep.Read, len(inputs), out, rep.Written, rep.Superseded)
	return nil
}
