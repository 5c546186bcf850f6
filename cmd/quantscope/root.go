package main

import (
	"io"

	"github.com/spf13/cobra"
)

// globalOptions are the flags every command shares.
type globalOptions struct {
	ortLib string // explicit path to libonnxruntime.so (--ort-lib)
	stdout io.Writer
	stderr io.Writer
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globalOptions{stdout: stdout, stderr: stderr}
	var tuiOpts tuiOptions
	root := &cobra.Command{
		Use:   "quantscope",
		Short: "Profile quantized vision models on ONNX Runtime",
		Long: `quantscope measures what FP16, INT8 and INT4 do to vision models on your
hardware: throughput, latency, memory, size, energy and fidelity against FP32.

Run 'quantscope doctor' first on a new machine.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// The bare command is the interactive UI (doctor when not on a terminal).
		RunE: func(cmd *cobra.Command, args []string) error {
			tuiOpts.outSet = cmd.Flags().Changed("out")
			return runRoot(cmd, g, tuiOpts)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	addTUIFlags(root.Flags(), &tuiOpts)
	root.PersistentFlags().StringVar(&g.ortLib, "ort-lib", "", "path to the ONNX Runtime shared library (default: $QUANTSCOPE_ORT_LIB, ./.ort, user data dir, system paths)")
	root.AddCommand(newDoctorCmd(g))
	root.AddCommand(newQuantizeCmd(g))
	root.AddCommand(newOptimizeCmd(g))
	root.AddCommand(newReportCmd(g))
	root.AddCommand(newModelsCmd(g))
	root.AddCommand(newWorkerCmd(g))
	root.AddCommand(newBenchCmd(g))
	root.AddCommand(newMergeCmd(g))
	root.AddCommand(newDeployCmd(g))
	root.AddCommand(newServeCmd(g))
	root.AddCommand(newReplayCmd(g))
	root.AddCommand(newSensitivityCmd(g))
	root.AddCommand(newTuneCmd(g))
	return root
}
