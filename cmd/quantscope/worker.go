package main

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/quantscope/quantscope/profiler/worker"
)

// newWorkerCmd is the hidden command a study starts once per experiment: it
// reads one worker.Spec as JSON on stdin and writes JSON-lines events on stdout.
func newWorkerCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:    "worker",
		Short:  "Run one experiment and stream its events as JSON lines (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Keep the protocol on a private copy of stdout and send fd 1 to
			// stderr, so anything a native library prints cannot corrupt it.
			proto := os.Stdout
			if fd, err := syscall.Dup(1); err == nil {
				if err := syscall.Dup3(2, 1, 0); err == nil {
					proto = os.NewFile(uintptr(fd), "protocol")
				} else {
					syscall.Close(fd)
				}
			}
			em := worker.NewEmitter(proto)
			var spec worker.Spec
			if err := json.NewDecoder(cmd.InOrStdin()).Decode(&spec); err != nil {
				err = fmt.Errorf("read experiment spec on stdin: %w", err)
				em.Emit(worker.Event{Kind: worker.KindError, Error: err.Error()})
				return &exitError{code: 2, err: err}
			}
			if spec.ORTLib == "" {
				spec.ORTLib = g.ortLib
			}
			// Number CUDA devices the way NVML does (PCI bus order), so
			// --ep-option device_id=N and the GPU telemetry read the same
			// card. Set before ONNX Runtime loads CUDA; a user's choice stands.
			if os.Getenv("CUDA_DEVICE_ORDER") == "" {
				os.Setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
			}
			if err := worker.Serve(cmd.Context(), spec, em); err != nil {
				em.Emit(worker.Event{Kind: worker.KindError, Error: err.Error()})
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
}
