package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/quantscope/quantscope/serve"
)

// serveOptions are serve's flags.
type serveOptions struct {
	listen         string
	authorizedKeys string
	hostKey        string
	maxSessions    int
	idleTimeout    time.Duration
	tui            tuiOptions // the study's: --out and the setup screen's defaults
}

func newServeCmd(g *globalOptions) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the interactive UI over SSH: one shared study per machine for a team",
		Long: `serve is an SSH server that gives every connection the full interactive UI,
sized and coloured for that client's terminal, on one study shared by everyone
connected: one user has control (start, stop, cancel, re-run), the others watch
and press c to ask for it. The study goes on when its starter disconnects, and
everyone's results go to the same --out file.

Only public keys in --authorized-keys get in (read on every login; passwords are
never accepted); the server's ed25519 host key is created on first start in the
user data dir and reused. While serve runs a study, a local quantscope warns and
bench refuses (unless --force). SIGTERM or Ctrl-C stops the study's worker and
keeps every finished record.

Connect with: ssh -p 2222 -t HOST (the live study) or ssh -p 2222 -t HOST replay
[--speed N] [--loop] (a replay of the results file).`,
		Example: `  quantscope serve
  quantscope serve --listen :2222 --authorized-keys ~/.ssh/team_keys --max-sessions 8 --idle-timeout 1h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", serve.DefaultListen, "address to listen on")
	f.StringVar(&o.authorizedKeys, "authorized-keys", "", "public keys allowed in, OpenSSH authorized_keys format (default ~/.ssh/authorized_keys)")
	f.StringVar(&o.hostKey, "host-key", "", "the server's private key, created (ed25519, mode 0600) when missing (default ssh_host_ed25519_key in the user data dir)")
	f.IntVar(&o.maxSessions, "max-sessions", serve.DefaultMaxSessions, "most sessions open at once")
	f.DurationVar(&o.idleTimeout, "idle-timeout", serve.DefaultIdleTimeout, "end a session without keyboard input for this long (0: never); the study goes on")
	addTUIFlags(f, &o.tui)
	return cmd
}

func runServe(ctx context.Context, g *globalOptions, o serveOptions) error {
	idle := o.idleTimeout
	if idle == 0 {
		idle = -1 // never
	}
	srv, err := serve.New(ctx, serve.Config{
		Listen:         o.listen,
		AuthorizedKeys: o.authorizedKeys,
		HostKey:        o.hostKey,
		MaxSessions:    o.maxSessions,
		IdleTimeout:    idle,
		TUI:            studyOptions(g, o.tui),
		Log:            g.stderr,
	})
	if err != nil {
		return err
	}
	port := o.listen
	if _, p, err := net.SplitHostPort(o.listen); err == nil {
		port = p
	}
	fmt.Fprintf(g.stderr, "quantscope serve: connect with `ssh -p %s -t <this host>`; host key %s\n", port, srv.HostKeyFingerprint)
	if err := srv.ListenAndServe(ctx); err != nil {
		return err
	}
	return nil
}
