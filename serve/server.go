package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/ssh"
	"github.com/charmbracelet/wish"
	"github.com/charmbracelet/wish/activeterm"
	bm "github.com/charmbracelet/wish/bubbletea"
	"github.com/charmbracelet/wish/logging"
	"github.com/muesli/termenv"
	"github.com/spf13/pflag"
	gossh "golang.org/x/crypto/ssh"

	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/tui"
)

// Defaults of Config.
const (
	DefaultListen      = ":2222"
	DefaultMaxSessions = 16
	DefaultIdleTimeout = 30 * time.Minute
)

// shutdownGrace bounds the wait for the study's worker and the sessions
// when the server stops.
const shutdownGrace = 15 * time.Second

// Config configures a Server.
type Config struct {
	// Listen is the address to listen on (default ":2222").
	Listen string
	// AuthorizedKeys is the file of public keys allowed in (default
	// ~/.ssh/authorized_keys of the serving user).
	AuthorizedKeys string
	// HostKey is the server's private key (default ssh_host_ed25519_key
	// in DataDir; created on first start).
	HostKey string
	// LockPath is the lock file (default LockPath()); "-" takes none.
	LockPath string
	// MaxSessions bounds the sessions open at once (default 16).
	MaxSessions int
	// IdleTimeout ends a session with no keyboard input for that long
	// (default 30 min; negative: never).
	IdleTimeout time.Duration
	// TUI are the study's options: results file, preparer, probe,
	// catalog… Shared and OnStatus are set by the server.
	TUI tui.Options
	// Log receives connections, refusals and the server's notices
	// (default stderr).
	Log io.Writer
}

func (c Config) withDefaults() (Config, error) {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
	if c.AuthorizedKeys == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return c, fmt.Errorf("authorized keys: %w (pass --authorized-keys)", err)
		}
		c.AuthorizedKeys = filepath.Join(h, ".ssh", "authorized_keys")
	}
	if c.HostKey == "" || c.LockPath == "" {
		d, err := DataDir()
		if err != nil {
			return c, err
		}
		if c.HostKey == "" {
			c.HostKey = filepath.Join(d, "ssh_host_ed25519_key")
		}
		if c.LockPath == "" {
			c.LockPath = filepath.Join(d, "serve.lock")
		}
	}
	return c, nil
}

// Server is a running `quantscope serve`.
type Server struct {
	cfg  Config
	log  *log.Logger
	srv  *ssh.Server
	hub  *tui.Hub
	lock *Lock

	// HostKeyFingerprint is the SHA256 fingerprint clients see.
	HostKeyFingerprint string

	sessions atomic.Int64
	mu       sync.Mutex
	programs map[*tea.Program]bool
	stopping atomic.Bool
}

// ctxKey keys what a session carries from one middleware to the next.
type ctxKey string

const (
	keyComment ctxKey = "quantscope.key-comment" // the authorized key's comment
	keyLeave   ctxKey = "quantscope.leave"       // func() run when the program ended
	keyIdle    ctxKey = "quantscope.idle"        // *atomic.Bool: ended for idleness
)

// New prepares a server: the host key (created on first start), the
// authorized keys (the file must exist), the lock file and the study's
// hub, which starts probing the machine and reading the results file.
// ctx bounds the study. Serve it with Serve; the lock is released when
// Serve returns (or by Close, when Serve is never called).
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log.New(cfg.Log, "quantscope serve: ", log.LstdFlags), programs: map[*tea.Program]bool{}}
	keys, bad, err := readAuthorizedKeys(cfg.AuthorizedKeys)
	if err != nil {
		return nil, fmt.Errorf("%w: put your team's public keys there, one per line, or pass --authorized-keys FILE", err)
	}
	for _, b := range bad {
		s.log.Printf("authorized keys: skipped %s", b)
	}
	if len(keys) == 0 {
		s.log.Printf("warning: %s lists no key: nobody can log in until one is added (it is read on every login)", cfg.AuthorizedKeys)
	}
	signer, created, err := HostKey(cfg.HostKey)
	if err != nil {
		return nil, err
	}
	s.HostKeyFingerprint = gossh.FingerprintSHA256(signer.PublicKey())
	if created {
		s.log.Printf("created host key %s (%s)", cfg.HostKey, s.HostKeyFingerprint)
	} else {
		s.log.Printf("host key %s (%s)", cfg.HostKey, s.HostKeyFingerprint)
	}
	if cfg.LockPath != "-" {
		s.lock, err = AcquireLock(cfg.LockPath, LockInfo{PID: os.Getpid(), Listen: cfg.Listen, Out: cfg.TUI.Out, Since: time.Now()})
		if err != nil {
			return nil, err
		}
	}
	opts := cfg.TUI
	opts.Shared = true
	opts.OnStatus = func(st tui.Status) {
		if s.lock != nil {
			s.lock.Update(st)
		}
	}
	s.hub = tui.NewHub(ctx, opts)

	s.srv, err = wish.NewServer(
		wish.WithAddress(cfg.Listen),
		wish.WithVersion("SSH-2.0-quantscope"),
		func(srv *ssh.Server) error { srv.AddHostKey(signer); return nil },
		wish.WithPublicKeyAuth(s.authorize),
		ssh.EmulatePty(),
		// The last middleware runs first: logging, the session limit, a
		// terminal required, the program, then afterProgram once it ended.
		wish.WithMiddleware(
			s.afterProgram,
			bm.MiddlewareWithProgramHandler(s.program, termenv.Ascii),
			activeterm.Middleware(),
			s.limitSessions,
			logging.MiddlewareWithLogger(s.log),
		),
	)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("ssh server: %w", err)
	}
	if cfg.IdleTimeout > 0 {
		// Connections with no traffic at all (no session ever opened).
		s.srv.IdleTimeout = cfg.IdleTimeout + time.Minute
	}
	return s, nil
}

// authorize lets in the keys of the authorized_keys file; every other key
// is refused and logged with its fingerprint. Passwords and
// keyboard-interactive are never offered.
func (s *Server) authorize(ctx ssh.Context, key ssh.PublicKey) bool {
	k, ok := authorized(s.cfg.AuthorizedKeys, key)
	if !ok {
		s.log.Printf("refused key %s (%s) for user %q from %s: not in %s",
			gossh.FingerprintSHA256(key), key.Type(), ctx.User(), ctx.RemoteAddr(), s.cfg.AuthorizedKeys)
		return false
	}
	ctx.SetValue(keyComment, k.comment)
	return true
}

// limitSessions refuses a session beyond MaxSessions, or while stopping.
func (s *Server) limitSessions(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		if s.stopping.Load() {
			wish.Fatalln(sess, "quantscope serve is shutting down")
			return
		}
		n := s.sessions.Add(1)
		defer s.sessions.Add(-1)
		if int(n) > s.cfg.MaxSessions {
			s.log.Printf("refused %s from %s: %d sessions open (--max-sessions %d)", sess.User(), sess.RemoteAddr(), n-1, s.cfg.MaxSessions)
			wish.Fatalf(sess, "quantscope serve: %d sessions are open, the most it takes (--max-sessions %d); try again later\r\n", n-1, s.cfg.MaxSessions)
			return
		}
		next(sess)
	}
}

// afterProgram runs once the session's program ended: it leaves the hub
// and says why the session ends when the server did it.
func (s *Server) afterProgram(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		if leave, ok := sess.Context().Value(keyLeave).(func()); ok {
			leave()
		}
		switch {
		case s.stopping.Load():
			wish.Printf(sess, "quantscope serve is shutting down: a running study is stopped; every finished run is in %s\r\n", s.cfg.TUI.Out)
			_ = sess.Exit(1)
		case idled(sess):
			wish.Printf(sess, "quantscope serve: disconnected after %s without input (--idle-timeout); the study goes on\r\n", s.cfg.IdleTimeout)
			_ = sess.Exit(1)
		}
		next(sess)
	}
}

func idled(sess ssh.Session) bool {
	b, ok := sess.Context().Value(keyIdle).(*atomic.Bool)
	return ok && b.Load()
}

// program builds the session's Bubble Tea program: the shared study, or
// (`ssh -t host replay`) a replay of its results file for this session
// alone. It writes why and returns nil for a command it does not know.
func (s *Server) program(sess ssh.Session) *tea.Program {
	var hub *tui.Hub
	var closeHub func()
	switch cmd := sess.Command(); {
	case len(cmd) == 0:
		hub = s.hub
	case cmd[0] == "replay":
		h, err := s.replayHub(sess.Context(), cmd[1:])
		if err != nil {
			wish.Fatalln(sess, "quantscope serve: "+err.Error())
			return nil
		}
		hub, closeHub = h, func() { h.Close(5 * time.Second) }
	default:
		wish.Fatalln(sess, fmt.Sprintf("quantscope serve: unknown command %q: `ssh -t HOST` shows the live study, `ssh -t HOST replay [--speed N] [--loop]` replays its results", strings.Join(cmd, " ")))
		return nil
	}
	name := sess.User()
	m := hub.NewModel(tui.ClientOptions{Name: name, Renderer: bm.MakeRenderer(sess)})
	// No tea.WithContext: the middleware quits the program when the
	// session ends, and a canceled context would only log an error.
	opts := append([]tea.ProgramOption{tea.WithAltScreen(), tea.WithFPS(tui.FPS)}, bm.MakeOptions(sess)...)
	idle := &atomic.Bool{}
	var input *activityReader
	if s.cfg.IdleTimeout > 0 {
		input = &activityReader{r: sess}
		input.touch()
		opts = append(opts, tea.WithInput(input))
	}
	p := tea.NewProgram(m, opts...)
	s.mu.Lock()
	s.programs[p] = true
	s.mu.Unlock()
	done := make(chan struct{})
	if input != nil {
		go s.watchIdle(p, input, idle, done)
	}
	sess.Context().SetValue(keyIdle, idle)
	sess.Context().SetValue(keyLeave, func() {
		close(done)
		m.Leave()
		if closeHub != nil {
			closeHub()
		}
		s.mu.Lock()
		delete(s.programs, p)
		s.mu.Unlock()
	})
	if s.stopping.Load() {
		p.Quit()
	}
	return p
}

// activityReader is a session's input that remembers when it last
// delivered bytes: keyboard input, not the output a watcher receives,
// is what keeps a session from idling out.
type activityReader struct {
	r    io.Reader
	last atomic.Int64 // unix nanoseconds
}

func (a *activityReader) touch() { a.last.Store(time.Now().UnixNano()) }

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.touch()
	}
	return n, err
}

// watchIdle quits p once its input has been quiet for IdleTimeout.
func (s *Server) watchIdle(p *tea.Program, in *activityReader, idle *atomic.Bool, done <-chan struct{}) {
	step := min(max(s.cfg.IdleTimeout/8, 10*time.Millisecond), time.Second)
	t := time.NewTicker(step)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if time.Since(time.Unix(0, in.last.Load())) >= s.cfg.IdleTimeout {
				idle.Store(true)
				p.Quit()
				return
			}
		}
	}
}

// Serve accepts connections on ln until ctx ends, then shuts down: no new
// sessions, every program told and ended, the study's worker stopped
// (every record finished so far is already in the results file), the lock
// released.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.log.Printf("listening on %s; study results go to %s", ln.Addr(), s.cfg.TUI.Out)
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		if errors.Is(err, ssh.ErrServerClosed) {
			err = nil
		}
	}
	s.shutdown()
	return err
}

// ListenAndServe listens on Config.Listen and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		s.Close()
		return fmt.Errorf("listen on %s: %w (another server there? pick one with --listen)", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// shutdown stops everything; see Serve.
func (s *Server) shutdown() {
	if s.stopping.Swap(true) {
		return
	}
	s.log.Printf("shutting down: stopping the study and %d sessions", s.sessions.Load())
	s.mu.Lock()
	for p := range s.programs {
		p.Quit()
	}
	s.mu.Unlock()
	if !s.hub.Close(shutdownGrace) {
		s.log.Printf("the study's worker did not stop within %s", shutdownGrace)
	}
	// Each session prints why it ends and exits; then the connections
	// (which clients may hold open) are closed.
	deadline := time.Now().Add(shutdownGrace)
	for s.sessions.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.srv.Close()
	s.Close()
	s.log.Printf("stopped; results in %s", s.cfg.TUI.Out)
}

// Close releases the lock file and stops the study without serving (for
// a server that was never served; Serve does it itself).
func (s *Server) Close() {
	if s.hub != nil {
		s.hub.Close(shutdownGrace)
	}
	if s.lock != nil {
		s.lock.Release()
	}
}

// replayHub is a hub of its own, for one session, replaying the study's
// results file (`ssh -t HOST replay [--speed N] [--loop]`); only that file:
// a client names no path on the server.
func (s *Server) replayHub(ctx context.Context, args []string) (*tui.Hub, error) {
	fs := pflag.NewFlagSet("replay", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	speed := fs.Float64("speed", 1, "")
	loop := fs.Bool("loop", false, "")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *speed <= 0 {
		return nil, fmt.Errorf("usage: ssh -t HOST replay [--speed N] [--loop] (it replays %s)", filepath.Base(s.cfg.TUI.Out))
	}
	recs, _, err := study.ReadResults(s.cfg.TUI.Out)
	if err != nil || len(recs) == 0 {
		return nil, fmt.Errorf("nothing recorded in %s yet to replay", filepath.Base(s.cfg.TUI.Out))
	}
	opts := tui.Options{
		Out:          s.cfg.TUI.Out,
		TickInterval: s.cfg.TUI.TickInterval,
		Replay:       &tui.Replay{Records: recs, File: filepath.Base(s.cfg.TUI.Out), Speed: *speed, Loop: *loop},
	}
	return tui.NewHub(ctx, opts), nil
}
