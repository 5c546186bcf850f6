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
	hub := NewHub(ctx, opts)
	m := hub.NewModel(ClientOptions{Profile: opts.Profile, NoColor: opts.NoColor, Renderer: opts.Renderer})
	_, err := tea.NewProgram(m, ProgramOptions(ctx, progOpts...)...).Run()
	m.Leave()
	hub.Close(closeTimeout)
	return err
}

// ProgramOptions are the program options every quantscope program runs
// with (the alternate screen, the redraw cap, ctx), then extra.
func ProgramOptions(ctx context.Context, extra ...tea.ProgramOption) []tea.ProgramOption {
	return append([]tea.ProgramOption{tea.WithAltScreen(), tea.WithFPS(FPS), tea.WithContext(ctx)}, extra...)
}
