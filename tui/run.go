package tui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// FPS caps the redraw rate so a slow SSH link stays usable.
const FPS = 10

// closeTimeout bounds the wait for a running worker after quitting: the
// worker parent gives its child a SIGTERM grace period, then kills it.
const closeTimeout = 15 * time.Second

// Run shows the application on the terminal until the user quits. Before
// it returns, the running study (if any) is canceled and its worker process
// reaped; everything recorded stays in the results file. Extra program
// options (input, output) come after the defaults: the alternate screen,
// the redraw cap and ctx.
func Run(ctx context.Context, opts Options, progOpts ...tea.ProgramOption) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m := New(ctx, opts)
	po := append([]tea.ProgramOption{tea.WithAltScreen(), tea.WithFPS(FPS), tea.WithContext(ctx)}, progOpts...)
	_, err := tea.NewProgram(m, po...).Run()
	// The driver is shared by every copy of the model: closing this one
	// stops whatever the final model started.
	m.Close(closeTimeout)
	return err
}
