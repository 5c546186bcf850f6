package serve

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"

	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/worker"
	"github.com/quantscope/quantscope/tui"
)

// fakePreparer accepts every experiment.
type fakePreparer struct{}

func (fakePreparer) Prepare(_ context.Context, e study.Experiment) (study.Prepared, error) {
	return study.Prepared{Path: "/tmp/" + e.Model + ".onnx"}, nil
}

// fakeCatalog offers two models.
type fakeCatalog struct{}

func (fakeCatalog) Models(context.Context) ([]tui.ModelInfo, error) {
	return []tui.ModelInfo{{Name: "deit-tiny", Family: "DeiT"}, {Name: "deit-small", Family: "DeiT"}}, nil
}

func (fakeCatalog) Cached(context.Context, []string) (map[string]bool, error) {
	return map[string]bool{}, nil
}

// gate lets a test hold the fake study between experiments.
type gate struct {
	mu   sync.Mutex
	open chan struct{}
}

// fakeStudy plays each experiment as study.Run would, appending a record
// to the results file: samples every 10 ms for `samples` periods, then
// the record. With a gate, each experiment after the first waits for it.
func fakeStudy(samples int, g *gate) tui.RunFunc {
	return func(ctx context.Context, plan []study.Experiment, cfg study.RunConfig) ([]study.Record, error) {
		w, err := study.OpenWriter(cfg.Out)
		if err != nil {
			return nil, err
		}
		defer w.Close()
		var out []study.Record
		for i, e := range plan {
			if g != nil && i > 0 {
				select {
				case <-g.open:
				case <-ctx.Done():
				}
			}
			if err := ctx.Err(); err != nil {
				return out, err
			}
			cfg.OnUpdate(study.Update{Index: i, Experiment: e, Stage: study.StagePreparing})
			cfg.OnUpdate(study.Update{Index: i, Experiment: e, Stage: study.StageRunning})
			for k := 0; k < samples; k++ {
				select {
				case <-ctx.Done():
					return out, ctx.Err()
				case <-time.After(10 * time.Millisecond):
				}
				cfg.OnUpdate(study.Update{Index: i, Experiment: e, Stage: study.StageRunning,
					Sample: &worker.Sample{Phase: "measuring", Throughput: 500, LatencyMs: 2, RSS: 50 << 20}})
			}
			r := study.Record{Schema: study.SchemaVersion, Experiment: e, Host: cfg.Host, Status: study.StatusOK,
				Started: time.Now(), Finished: time.Now(), Metrics: &bench.Metrics{Throughput: 500}}
			if err := w.Append(r); err != nil {
				return out, err
			}
			out = append(out, r)
			cfg.OnUpdate(study.Update{Index: i, Experiment: e, Stage: study.StageDone, Record: &r})
		}
		return out, nil
	}
}

// testEnv is a CPU machine with ONNX Runtime loaded.
func testEnv(context.Context) tui.Environment {
	return tui.Environment{
		ORT:       ort.Info{LibraryPath: "/opt/ort/libonnxruntime.so", Version: "1.29.0"},
		EPs:       []string{"cpu"},
		StudyHost: study.Host{Hostname: "gpubox", CPU: "Test CPU", ORTVersion: "1.29.0"},
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testServer is a server on a random local port.
type testServer struct {
	*Server
	addr   string
	dir    string
	log    *syncBuffer
	cancel context.CancelFunc
	done   chan error
	keys   map[string]gossh.Signer // authorized client keys by name
}

func newKey(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startServer serves a study of fake runs; edit adjusts the config.
func startServer(t *testing.T, edit func(*Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{dir: dir, log: &syncBuffer{}, done: make(chan error, 1), keys: map[string]gossh.Signer{}}
	var auth bytes.Buffer
	auth.WriteString("# the team\n\n")
	for _, name := range []string{"alice", "bob", "carol"} {
		k := newKey(t)
		ts.keys[name] = k
		fmt.Fprintf(&auth, "%s %s@laptop\n", bytes.TrimSpace(gossh.MarshalAuthorizedKey(k.PublicKey())), name)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), auth.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		AuthorizedKeys: filepath.Join(dir, "authorized_keys"),
		HostKey:        filepath.Join(dir, "data", "ssh_host_ed25519_key"),
		LockPath:       filepath.Join(dir, "data", "serve.lock"),
		Log:            ts.log,
		TUI: tui.Options{
			Catalog: fakeCatalog{}, Preparer: fakePreparer{}, Probe: testEnv,
			Run: fakeStudy(20, nil), Out: filepath.Join(dir, "results.jsonl"),
			Models: []string{"deit-tiny"}, Duration: time.Second, TickInterval: 20 * time.Millisecond,
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	s, err := New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ts.Server = s
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	go func() { ts.done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop cancels the server's context and waits for Serve to return.
func (ts *testServer) stop(t *testing.T) {
	ts.cancel()
	select {
	case err := <-ts.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		ts.done <- nil // later calls return at once
	case <-time.After(30 * time.Second):
		t.Fatal("server did not shut down")
	}
}

// client is one SSH session with a terminal.
type client struct {
	t     *testing.T
	conn  *gossh.Client
	sess  *gossh.Session
	in    io.WriteCloser
	out   *syncBuffer
	ended chan error
}

func (ts *testServer) dial(auth ...gossh.AuthMethod) (*gossh.Client, error) {
	return gossh.Dial("tcp", ts.addr, &gossh.ClientConfig{
		User: "tester", Auth: auth, HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
}

// connect logs in as name with a terminal of w×h (TERM term) running
// command ("" for the live study).
func (ts *testServer) connect(t *testing.T, name string, w, h int, term, command string) *client {
	t.Helper()
	conn, err := gossh.Dial("tcp", ts.addr, &gossh.ClientConfig{
		User: name, Auth: []gossh.AuthMethod{gossh.PublicKeys(ts.keys[name])},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	sess, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, conn: conn, sess: sess, out: &syncBuffer{}, ended: make(chan error, 1)}
	sess.Stdout, sess.Stderr = c.out, c.out
	if c.in, err = sess.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty(term, h, w, gossh.TerminalModes{gossh.ECHO: 0}); err != nil {
		t.Fatal(err)
	}
	if command == "" {
		err = sess.Shell()
	} else {
		err = sess.Start(command)
	}
	if err != nil {
		t.Fatal(err)
	}
	go func() { c.ended <- sess.Wait() }()
	t.Cleanup(func() { conn.Close() })
	return c
}

// screen is everything the client received, escape codes removed.
func (c *client) screen() string { return ansi.Strip(c.out.String()) }

// waitFor waits until the client received want.
func (c *client) waitFor(want string) {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(c.screen(), want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("never received %q; got:\n%s", want, tail(c.screen(), 3000))
}

// mark forgets what the client received so far.
func (c *client) mark() {
	c.out.mu.Lock()
	c.out.b.Reset()
	c.out.mu.Unlock()
}

func (c *client) keys(ks ...string) {
	c.t.Helper()
	for _, k := range ks {
		if _, err := io.WriteString(c.in, k); err != nil {
			c.t.Fatalf("send %q: %v", k, err)
		}
		time.Sleep(30 * time.Millisecond) // keys arrive one read apart
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func TestAuthorizedKeyGetsTheTUIAtItsSize(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.connect(t, "alice", 50, 12, "xterm-256color", "")
	c.waitFor("terminal too small: 50×12")
	if err := c.sess.WindowChange(14, 52); err != nil {
		t.Fatal(err)
	}
	c.waitFor("terminal too small: 52×14")
	c.mark()
	if err := c.sess.WindowChange(40, 120); err != nil {
		t.Fatal(err)
	}
	c.waitFor("1 Setup")
	c.waitFor("● you have control")
	// The client's colour profile (256 colours from TERM): SGR colours.
	if !regexp.MustCompile(`\x1b\[[0-9;]*3[0-7]m`).MatchString(c.out.String()) {
		t.Errorf("no colours for an xterm-256color client:\n%q", tail(c.out.String(), 500))
	}
	// A dumb terminal beside it gets none: each session has its renderer.
	d := ts.connect(t, "bob", 120, 40, "dumb", "")
	d.waitFor("1 Setup")
	time.Sleep(200 * time.Millisecond)
	if m := regexp.MustCompile(`\x1b\[[0-9;]*(3[0-7]|38;5;[0-9]+)m`).FindString(d.out.String()); m != "" {
		t.Errorf("a dumb terminal got colour %q", m)
	}
	if !strings.Contains(ts.log.String(), "alice connect") {
		t.Errorf("connection not logged:\n%s", ts.log.String())
	}
}

func TestUnknownKeyPasswordAndNoKeyRefused(t *testing.T) {
	ts := startServer(t, nil)
	stranger := newKey(t)
	cases := map[string][]gossh.AuthMethod{
		"unknown key": {gossh.PublicKeys(stranger)},
		"password":    {gossh.Password("hunter2")},
		"keyboard-interactive": {gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
			return []string{"hunter2"}, nil
		})},
		"no key": nil,
	}
	for name, auth := range cases {
		conn, err := ts.dial(auth...)
		if err == nil {
			conn.Close()
			t.Errorf("%s: logged in", name)
			continue
		}
		if !strings.Contains(err.Error(), "unable to authenticate") {
			t.Errorf("%s: %v", name, err)
		}
	}
	fp := gossh.FingerprintSHA256(stranger.PublicKey())
	if !strings.Contains(ts.log.String(), "refused key "+fp) {
		t.Errorf("unknown key not logged with its fingerprint %s:\n%s", fp, ts.log.String())
	}
	// An authorized key still gets in afterwards.
	conn, err := ts.dial(gossh.PublicKeys(ts.keys["carol"]))
	if err != nil {
		t.Fatalf("authorized key refused: %v", err)
	}
	conn.Close()
}

func TestNoTerminalRefused(t *testing.T) {
	ts := startServer(t, nil)
	conn, err := ts.dial(gossh.PublicKeys(ts.keys["alice"]))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sess, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.CombinedOutput("")
	if err == nil || !strings.Contains(string(out), "Requires an active PTY") {
		t.Fatalf("session without a terminal: %v %q", err, out)
	}
}

func TestTwoClientsSeeTheSameRunAndHandOverControl(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	ts := startServer(t, func(c *Config) { c.TUI.Run = fakeStudy(20, g) })
	alice := ts.connect(t, "alice", 120, 40, "xterm-256color", "")
	alice.waitFor("● you have control")
	bob := ts.connect(t, "bob", 100, 30, "xterm-256color", "")
	bob.waitFor("◐ watching: alice has control")
	alice.waitFor("bob connected")

	// alice starts the study (deit-tiny is preselected): fp32 then int8.
	alice.keys("\r")
	alice.waitFor("queued 2 runs")
	bob.waitFor("alice queued 2 runs")
	bob.waitFor("deit-tiny fp32")
	// The first run finishes for both; the second waits at the gate.
	bob.keys("2")
	bob.waitFor("Results · 1")
	alice.waitFor("Results · 1")

	// bob cannot stop the run, asks for control, alice hands it over.
	bob.keys("2", "s")
	bob.waitFor("alice has control of the study: press c to ask for it")
	bob.keys("c")
	bob.waitFor("asked alice for control")
	alice.waitFor("bob asks for control of the study")
	alice.keys("y")
	bob.waitFor("● you have control")
	alice.waitFor("◐ watching: bob has control")
	if st := ts.hub.Status(); st.Controller != "bob" || !st.Running {
		t.Fatalf("status after hand-over: %+v", st)
	}
	close(g.open)
	bob.waitFor("study finished: 2 ok")
	alice.waitFor("study finished: 2 ok")
	recs, _, err := study.ReadResults(ts.cfg.TUI.Out)
	if err != nil || len(recs) != 2 {
		t.Fatalf("one results file for everyone: %d records, %v", len(recs), err)
	}
}

func TestControllerDisconnectDoesNotStopTheStudy(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	ts := startServer(t, func(c *Config) { c.TUI.Run = fakeStudy(10, g) })
	alice := ts.connect(t, "alice", 120, 40, "xterm-256color", "")
	alice.waitFor("● you have control")
	alice.keys("\r")
	alice.waitFor("queued 2 runs")
	alice.waitFor("Results · 1")
	// alice's connection drops mid-study.
	alice.conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for ts.hub.Status().Clients != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := ts.hub.Status(); st.Clients != 0 || !st.Running || st.Controller != "" {
		t.Fatalf("after the controller left: %+v", st)
	}
	if busy := Busy(ts.cfg.LockPath); !strings.Contains(busy, "is running a study on this machine") {
		t.Fatalf("lock file while the study runs: %q", busy)
	}
	// A returning user lands on the running study and sees it finish.
	close(g.open)
	back := ts.connect(t, "alice", 120, 40, "xterm-256color", "")
	back.waitFor("Queue")
	back.waitFor("study finished: 2 ok")
	recs, _, _ := study.ReadResults(ts.cfg.TUI.Out)
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	deadline = time.Now().Add(5 * time.Second)
	for Busy(ts.cfg.LockPath) != "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if busy := Busy(ts.cfg.LockPath); busy != "" {
		t.Fatalf("lock still says busy after the study: %q", busy)
	}
}

func TestHostKeyCreated0600AndReused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "ssh_host_ed25519_key")
	k1, created, err := HostKey(path)
	if err != nil || !created {
		t.Fatalf("first start: created %v, %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("host key mode %v, %v", st.Mode().Perm(), err)
	}
	if k1.PublicKey().Type() != gossh.KeyAlgoED25519 {
		t.Fatalf("host key type %s", k1.PublicKey().Type())
	}
	k2, created, err := HostKey(path)
	if err != nil || created || !bytes.Equal(k1.PublicKey().Marshal(), k2.PublicKey().Marshal()) {
		t.Fatalf("second start: created %v, same %v, %v", created, bytes.Equal(k1.PublicKey().Marshal(), k2.PublicKey().Marshal()), err)
	}
	// A server on it presents that key to clients.
	ts := startServer(t, func(c *Config) { c.HostKey = path })
	var seen gossh.PublicKey
	conn, err := gossh.Dial("tcp", ts.addr, &gossh.ClientConfig{User: "alice", Auth: []gossh.AuthMethod{gossh.PublicKeys(ts.keys["alice"])},
		HostKeyCallback: func(_ string, _ net.Addr, k gossh.PublicKey) error { seen = k; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if seen == nil || !bytes.Equal(seen.Marshal(), k1.PublicKey().Marshal()) || ts.HostKeyFingerprint != gossh.FingerprintSHA256(k1.PublicKey()) {
		t.Fatal("the server presents another host key")
	}
	// A key others can read is refused.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := HostKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable host key: %v", err)
	}
}

func TestMaxSessions(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxSessions = 1 })
	a := ts.connect(t, "alice", 80, 24, "xterm", "")
	a.waitFor("1 Setup")
	b := ts.connect(t, "bob", 80, 24, "xterm", "")
	b.waitFor("the most it takes (--max-sessions 1)")
	select {
	case err := <-b.ended:
		var ee *gossh.ExitError
		if !errors.As(err, &ee) || ee.ExitStatus() != 1 {
			t.Fatalf("refused session ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("refused session stayed open")
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	busy := ts.connect(t, "alice", 80, 24, "xterm", "")
	idle := ts.connect(t, "bob", 80, 24, "xterm", "")
	idle.waitFor("1 Setup")
	// alice keeps typing (moving down the list); bob does nothing.
	stop := time.Now().Add(time.Second)
	for time.Now().Before(stop) {
		busy.keys("j")
	}
	idle.waitFor("disconnected after 300ms without input")
	select {
	case <-idle.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("idle session stayed open")
	}
	select {
	case err := <-busy.ended:
		t.Fatalf("active session ended: %v", err)
	default:
	}
}

func TestShutdownStopsTheWorkerAndKeepsRecords(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	ts := startServer(t, func(c *Config) { c.TUI.Run = fakeStudy(5, g) })
	alice := ts.connect(t, "alice", 120, 40, "xterm", "")
	alice.waitFor("● you have control")
	alice.keys("\r")
	alice.waitFor("Results · 1") // the baseline is recorded; the variant waits at the gate
	// A second server on the machine is refused while this one runs.
	if _, err := AcquireLock(ts.cfg.LockPath, LockInfo{}); err == nil || !strings.Contains(err.Error(), "another quantscope serve") {
		t.Fatalf("second lock: %v", err)
	}
	ts.stop(t) // SIGTERM cancels this context in the command
	alice.waitFor("shutting down: a running study is stopped")
	select {
	case <-alice.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("session stayed open after shutdown")
	}
	recs, _, err := study.ReadResults(ts.cfg.TUI.Out)
	if err != nil || len(recs) != 1 || recs[0].Experiment.Precision != "fp32" {
		t.Fatalf("records after shutdown: %d, %v", len(recs), err)
	}
	if _, err := os.Stat(ts.cfg.LockPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file left behind: %v", err)
	}
	if !strings.Contains(ts.log.String(), "stopped; results in") {
		t.Errorf("log:\n%s", ts.log.String())
	}
}

func TestUnknownCommandRefused(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.connect(t, "alice", 80, 24, "xterm", "rm -rf /")
	c.waitFor(`unknown command "rm -rf /"`)
	if err := <-c.ended; err == nil {
		t.Fatal("unknown command exited 0")
	}
}

func TestMissingAuthorizedKeys(t *testing.T) {
	dir := t.TempDir()
	_, err := New(context.Background(), Config{AuthorizedKeys: filepath.Join(dir, "nope"), HostKey: filepath.Join(dir, "k"), LockPath: "-", Log: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "--authorized-keys") {
		t.Fatalf("missing authorized_keys: %v", err)
	}
}

// TestReplayOverSSH: `ssh -t HOST replay --speed 50` plays the server's
// results file for that session alone; arguments naming files are refused.
func TestReplayOverSSH(t *testing.T) {
	ts := startServer(t, nil)
	b, err := os.ReadFile("../tui/testdata/replay/study.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ts.cfg.TUI.Out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c := ts.connect(t, "alice", 120, 40, "xterm-256color", "replay --speed 50")
	c.waitFor("▶ replay 50×")
	c.waitFor("recorded on ")
	c.waitFor("replay finished: 4 runs from results.jsonl")
	if st := ts.hub.Status(); st.Clients != 0 || st.Running {
		t.Fatalf("the replay touched the shared study: %+v", st)
	}
	c.keys("q")
	select {
	case <-c.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("q did not end the replay session")
	}
	bad := ts.connect(t, "bob", 80, 24, "xterm", "replay /etc/passwd")
	bad.waitFor("usage: ssh -t HOST replay [--speed N] [--loop] (it replays results.jsonl)")
}
