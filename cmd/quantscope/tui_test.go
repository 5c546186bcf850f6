package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/tui"
)

func TestRootWithoutTerminalRunsDoctor(t *testing.T) {
	stdout, stderr, _ := cli(t, t.TempDir())
	if !strings.Contains(stderr, "not a terminal, so no interactive UI") {
		t.Errorf("no note on stderr:\n%s", stderr)
	}
	if !strings.Contains(stdout, "quantscope doctor") {
		t.Errorf("doctor did not run:\n%s", stdout)
	}
}

func TestRunTUIOptionsAndExitCodes(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	var got tui.Options
	for _, tc := range []struct {
		err  error
		code int // -1: nil error, 0: a plain error
	}{
		{nil, -1},
		{tea.ErrProgramKilled, 130},
		{fmt.Errorf("wrapped: %w", tea.ErrInterrupted), 130},
		{errors.New("no tty"), 0},
	} {
		var stdout, stderr bytes.Buffer
		g := &globalOptions{ortLib: "/x/libonnxruntime.so", stdout: &stdout, stderr: &stderr}
		o := tuiOptions{out: "study.jsonl", open: []string{"h100.jsonl", "h200.jsonl"}, models: []string{"deit-tiny"}, precisions: []string{"int4:block=64"}, duration: 3 * time.Second,
			interactive: func() bool { return true },
			run: func(_ context.Context, opts tui.Options, _ ...tea.ProgramOption) error {
				got = opts
				return tc.err
			}}
		cmd := &cobra.Command{}
		cmd.SetContext(context.Background())
		err := runRoot(cmd, g, o)
		var ee *exitError
		switch {
		case tc.code == -1 && err != nil:
			t.Errorf("%v: got %v", tc.err, err)
		case tc.code > 0 && (!errors.As(err, &ee) || ee.code != tc.code):
			t.Errorf("%v: got %v, want exit %d", tc.err, err, tc.code)
		case tc.code == 0 && (err == nil || !strings.Contains(err.Error(), "no tty")):
			t.Errorf("%v: got %v", tc.err, err)
		}
	}
	if got.Out != "study.jsonl" || strings.Join(got.Open, ",") != "h100.jsonl,h200.jsonl" || got.ORTLib != "/x/libonnxruntime.so" || got.Duration != 3*time.Second ||
		strings.Join(got.Models, ",") != "deit-tiny" || strings.Join(got.Precisions, ",") != "int4:block=64" {
		t.Errorf("options %+v", got)
	}
	if got.Preparer == nil || got.Catalog == nil || got.Probe == nil || !got.NoColor {
		t.Errorf("preparer %v catalog %v probe set %v NoColor %v", got.Preparer, got.Catalog, got.Probe != nil, got.NoColor)
	}
}

func TestZooCatalog(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("mine.onnx", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	models, err := zooCatalog{}.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var tiny, mine *tui.ModelInfo
	for i := range models {
		switch models[i].Name {
		case "deit-tiny":
			tiny = &models[i]
		case "mine.onnx":
			mine = &models[i]
		}
	}
	if tiny == nil || tiny.Family != "DeiT" || tiny.Params == 0 || tiny.GFLOPs <= 0 || tiny.Resolution != 224 {
		t.Errorf("deit-tiny: %+v", tiny)
	}
	if mine == nil || mine.Family != "file" {
		t.Errorf("working-directory model: %+v", mine)
	}
	t.Setenv("QUANTSCOPE_CACHE_DIR", t.TempDir())
	cached, err := zooCatalog{}.Cached(context.Background(), []string{"deit-tiny", "mine.onnx"})
	if err != nil || len(cached) != 1 || cached["deit-tiny"] {
		t.Errorf("cached %v %v (empty cache)", cached, err)
	}
}

// tmuxSession runs a command in a detached tmux session on a private
// server, so the test never touches the user's sessions.
type tmuxSession struct {
	t      *testing.T
	socket string
}

func (s tmuxSession) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// keys sends keys one at a time with a pause, so ESC is not read as Alt.
func (s tmuxSession) keys(keys ...string) {
	for _, k := range keys {
		s.run("send-keys", "-t", "qs", k)
		time.Sleep(150 * time.Millisecond)
	}
}

func (s tmuxSession) capture() string { return s.run("capture-pane", "-p", "-t", "qs") }

// waitFor polls the pane until cond holds.
func (s tmuxSession) waitFor(what string, timeout time.Duration, cond func(pane string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		pane := s.capture()
		if cond(pane) {
			return pane
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s; the pane:\n%s", what, pane)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestTUISmokeTmux drives the real program in tmux as a user would: pick
// deit-tiny with fp32 and int8 on the CPU, a short duration, wait for both
// rows with a speedup, check the results file, quit with q.
func TestTUISmokeTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a real study in tmux")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed (make tools installs it)")
	}
	requireORT(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "results.jsonl")
	status := filepath.Join(dir, "exit-status")
	s := tmuxSession{t: t, socket: fmt.Sprintf("quantscope-test-%d", os.Getpid())}
	t.Cleanup(func() { exec.Command("tmux", "-L", s.socket, "kill-server").Run() })

	env := "QUANTSCOPE_AS_CLI=1 TERM=xterm-256color"
	if info := ort.Probe(""); info.OK() {
		env += " " + ort.EnvLibrary + "=" + shellQuoteArg(info.LibraryPath)
	}
	if d := os.Getenv("QUANTSCOPE_CACHE_DIR"); d != "" {
		env += " QUANTSCOPE_CACHE_DIR=" + shellQuoteArg(d)
	}
	script := fmt.Sprintf("cd %s && env %s %s --out %s --duration 2s; echo $? > %s; sleep 30",
		shellQuoteArg(dir), env, shellQuoteArg(os.Args[0]), shellQuoteArg(out), shellQuoteArg(status))
	s.run("new-session", "-d", "-s", "qs", "-x", "120", "-y", "40", script)

	s.waitFor("the model list", 30*time.Second, func(p string) bool { return strings.Contains(p, "deit-tiny") })
	s.keys("/")
	s.run("send-keys", "-t", "qs", "-l", "deit-tiny")
	time.Sleep(200 * time.Millisecond)
	s.keys("Enter", "Space", "Escape")
	pane := s.waitFor("the plan", 5*time.Second, func(p string) bool { return strings.Contains(p, "Plan · 2 runs") })
	if !strings.Contains(pane, "deit-tiny int8 b1") {
		t.Fatalf("plan is not deit-tiny fp32 + int8:\n%s", pane)
	}
	s.keys("Enter")
	pane = s.waitFor("the study to finish", 4*time.Minute, func(p string) bool { return strings.Contains(p, "study finished") })

	var fp32, int8 string
	for _, l := range strings.Split(pane, "\n") {
		switch {
		case strings.Contains(l, "deit-tiny") && strings.Contains(l, " fp32 ") && strings.Contains(l, "base"):
			fp32 = l
		case strings.Contains(l, "deit-tiny") && strings.Contains(l, " int8 ") && strings.Contains(l, "×"):
			int8 = l
		}
	}
	if fp32 == "" || int8 == "" {
		t.Fatalf("the table lacks the fp32 baseline or the int8 row with a speedup:\n%s", pane)
	}
	recs, _, err := study.ReadResults(out)
	if err != nil || len(recs) != 2 || !recs[0].OK() || !recs[1].OK() {
		t.Fatalf("results file: %d records, %v", len(recs), err)
	}

	s.keys("q")
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := os.ReadFile(status)
		if err == nil && len(bytes.TrimSpace(b)) > 0 {
			if code := strings.TrimSpace(string(b)); code != "0" {
				t.Fatalf("quantscope exited %s", code)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("q did not quit; the pane:\n%s", s.capture())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// shellQuoteArg quotes s for sh.
func shellQuoteArg(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestDemoOptions: --demo is the two smallest catalog models, int8
// against fp32, 3 s runs, started at once, into a fresh file in the user
// cache dir (or --out).
func TestDemoOptions(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	old := filepath.Join(cache, "quantscope", "demo", "results.jsonl")
	if err := os.MkdirAll(filepath.Dir(old), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got tui.Options
	g := &globalOptions{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	o := tuiOptions{out: "results.jsonl", demo: true, interactive: func() bool { return true },
		run: func(_ context.Context, opts tui.Options, _ ...tea.ProgramOption) error { got = opts; return nil }}
	cmd := &cobra.Command{}
	cmd.SetContext(context.Background())
	if err := runRoot(cmd, g, o); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Models, ",") != "mobilevit-xxs,mobilenet-v2" || strings.Join(got.Precisions, ",") != "int8" ||
		got.Duration != 3*time.Second || !got.AutoStart || got.Out != old {
		t.Fatalf("demo options: models %v precisions %v duration %v autostart %v out %s", got.Models, got.Precisions, got.Duration, got.AutoStart, got.Out)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatal("the previous demo's results were kept")
	}
	o.outSet = true
	if err := runRoot(cmd, g, o); err != nil || got.Out != "results.jsonl" {
		t.Fatalf("demo with --out: %s %v", got.Out, err)
	}
}

func TestReplayCommand(t *testing.T) {
	dir := t.TempDir()
	g := &globalOptions{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	var got tui.Options
	o := replayOptions{speed: 4, loop: true, interactive: func() bool { return true },
		run: func(_ context.Context, opts tui.Options, _ ...tea.ProgramOption) error { got = opts; return nil }}
	if err := runReplay(context.Background(), g, "../../tui/testdata/replay/study.jsonl", o); err != nil {
		t.Fatal(err)
	}
	if r := got.Replay; r == nil || len(r.Records) != 4 || r.Speed != 4 || !r.Loop || r.File != "../../tui/testdata/replay/study.jsonl" {
		t.Fatalf("replay options %+v", got.Replay)
	}
	empty := filepath.Join(dir, "empty.jsonl")
	os.WriteFile(empty, []byte("not json\n"), 0o644)
	err := runReplay(context.Background(), g, empty, o)
	if err == nil || !strings.Contains(err.Error(), "no record to play") || !strings.Contains(g.stderr.(*bytes.Buffer).String(), "line 1: not a JSON record") {
		t.Fatalf("empty file: %v; stderr %s", err, g.stderr)
	}
	if err := runReplay(context.Background(), g, filepath.Join(dir, "missing.jsonl"), o); err == nil {
		t.Fatal("missing file replayed")
	}
	o.speed = 0
	var ee *exitError
	if err := runReplay(context.Background(), g, empty, o); !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("--speed 0: %v", err)
	}
	_, stderr, code := cli(t, dir, "replay", "../../tui/testdata/replay/study.jsonl")
	if code != 2 || !strings.Contains(stderr, "replay needs a terminal") {
		t.Fatalf("replay without a terminal: %d %s", code, stderr)
	}
}
