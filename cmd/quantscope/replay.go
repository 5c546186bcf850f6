package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/tui"
)

// replayOptions are replay's flags.
type replayOptions struct {
	speed float64
	loop  bool
	// run replaces tui.Run in tests.
	run func(ctx context.Context, opts tui.Options, progOpts ...tea.ProgramOption) error
	// interactive replaces the terminal check in tests.
	interactive func() bool
}

func newReplayCmd(g *globalOptions) *cobra.Command {
	var o replayOptions
	cmd := &cobra.Command{
		Use:   "replay RESULTS.jsonl",
		Short: "Show a recorded study again, as it ran: dashboard, queue, table and heatmap",
		Long: `replay plays the records of a results file through the interactive UI at the
pace they were measured (or --speed times faster): each run's throughput, latency,
memory, GPU memory, temperature, power and CPU samples as the live charts drew them,
then its row in the table. Long waits (building a model, hours between studies) are
cut to two seconds. The header shows a replay badge and the host that recorded it.

Records written before quantscope kept telemetry (schema 1) have nothing to play:
their table is shown, with a note. Over quantscope serve: ssh -t HOST replay.`,
		Example: `  quantscope replay results.jsonl --speed 4
  quantscope replay demo.jsonl --loop`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReplay(cmd.Context(), g, args[0], o)
		},
	}
	cmd.Flags().Float64Var(&o.speed, "speed", 1, "play this many times faster than recorded")
	cmd.Flags().BoolVar(&o.loop, "loop", false, "start over when the study has played")
	return cmd
}

// readReplay reads a results file for a replay: warnings go to the
// user, a file without records is an error.
func readReplay(path string, warn func(string)) ([]study.Record, error) {
	recs, warns, err := study.ReadResults(path)
	if err != nil {
		return nil, err
	}
	for _, w := range warns {
		warn(fmt.Sprintf("%s %s", path, w))
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("replay %s: no record to play (run a study first: quantscope, or quantscope bench)", path)
	}
	return recs, nil
}

func runReplay(ctx context.Context, g *globalOptions, path string, o replayOptions) error {
	if o.speed <= 0 {
		return &exitError{code: 2, err: fmt.Errorf("--speed %g: want a positive factor (4 plays four times faster)", o.speed)}
	}
	interactive := o.interactive
	if interactive == nil {
		interactive = func() bool { return isTerminal(g.stdout) && isatty.IsTerminal(os.Stdin.Fd()) }
	}
	if !interactive() {
		return &exitError{code: 2, err: errors.New("replay needs a terminal (for the table alone: quantscope report)")}
	}
	recs, err := readReplay(path, func(w string) { fmt.Fprintln(g.stderr, "warning:", w) })
	if err != nil {
		return err
	}
	opts := tui.Options{
		Out:    path,
		Replay: &tui.Replay{Records: recs, File: path, Speed: o.speed, Loop: o.loop},
	}
	return runUI(ctx, g, opts, o.run, "replay")
}
