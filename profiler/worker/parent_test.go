package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as a fake worker: with QS_FAKE_WORKER set
// it behaves as that mode says instead of running tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("QS_FAKE_WORKER"); mode == "hog" {
		cpuHog() // another process taking every CPU it can get
		return
	} else if mode != "" {
		fakeWorker(mode)
		return
	}
	os.Exit(m.Run())
}

func fakeWorker(mode string) {
	var spec Spec
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		fmt.Fprintln(os.Stderr, "bad spec:", err)
		os.Exit(2)
	}
	em := NewEmitter(os.Stdout)
	if mode == "serve" { // the real worker
		if err := Serve(context.Background(), spec, em); err != nil {
			em.Emit(Event{Kind: KindError, Error: err.Error()})
			os.Exit(1)
		}
		return
	}

	em.Emit(Event{Kind: KindStarted, Info: map[string]any{"pid": os.Getpid(), "model": spec.ModelPath}})
	for i := 0; i < 3; i++ {
		em.Emit(Event{Kind: KindSample, Sample: &Sample{Phase: "measuring", Runs: i, Throughput: 100}})
	}
	switch mode {
	case "ok":
		em.Emit(Event{Kind: KindResult, Result: json.RawMessage(fmt.Sprintf(`{"throughput":%d}`, spec.Batch*100))})
	case "error":
		em.Emit(Event{Kind: KindError, Error: "load model: file is not ONNX"})
		os.Exit(1)
	case "crash":
		fmt.Fprintln(os.Stderr, "onnxruntime: terminate called after throwing an instance of 'Ort::Exception'")
		// Die by SIGABRT as a C++ abort does: the shell takes over this
		// process and signals itself (the Go runtime would catch it instead).
		syscall.Exec("/bin/sh", []string{"sh", "-c", "kill -ABRT $$"}, os.Environ())
	case "oom":
		fmt.Fprintln(os.Stderr, "allocating 80 GiB")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case "hang":
		fmt.Fprintln(os.Stderr, "stuck in a kernel")
		time.Sleep(time.Hour)
	case "hang-ignore-term":
		signalIgnoreTerm()
		time.Sleep(time.Hour)
	case "junk":
		fmt.Println("Segmentation fault? no, just chatter on stdout")
		time.Sleep(10 * time.Second)
	case "silent":
		// exits 0 with no result
	case "fatal-then-noise":
		// What the Go runtime prints when an allocation fails, then a dump.
		fmt.Fprintln(os.Stderr, "runtime: out of memory: cannot allocate 60213428224-byte block (3997696 in use)")
		fmt.Fprintln(os.Stderr, "fatal error: out of memory")
		for i := 0; i < 200; i++ {
			fmt.Fprintf(os.Stderr, "goroutine %d [running]:\n\tmain.work(0x%x)\n\t\t/src/noise.go:42 +0x1d\n\n", i, i*4096)
		}
		fmt.Fprintln(os.Stderr, "goroutine 999 [last]:")
		os.Exit(2)
	}
}

// signalIgnoreTerm makes the fake worker deaf to SIGTERM, so only the
// parent's SIGKILL after the grace period stops it.
func signalIgnoreTerm() { signal.Ignore(syscall.SIGTERM) }

func runFake(t *testing.T, mode string, opts Options) (Outcome, []Event) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var events []Event
	opts.Exe, opts.Args = exe, []string{"-test.run=^$"}
	opts.Env = append(opts.Env, "QS_FAKE_WORKER="+mode)
	opts.OnEvent = func(e Event) { events = append(events, e) }
	out := Run(context.Background(), Spec{ModelPath: "m.onnx", Batch: 8}, opts)
	return out, events
}

func TestWorkerOutcomes(t *testing.T) {
	tests := []struct {
		mode       string
		opts       Options
		wantErr    string // substring; "" = success
		wantIs     error
		wantStderr string
	}{
		{mode: "ok"},
		{mode: "error", wantErr: "file is not ONNX"},
		{mode: "crash", wantErr: "crashed (aborted)", wantStderr: "Ort::Exception"},
		{mode: "oom", wantErr: "out-of-memory", wantStderr: "80 GiB"},
		// 3 s: a race-instrumented test binary on a busy machine can take
		// more than half a second to print its first line.
		{mode: "hang", opts: Options{Timeout: 3 * time.Second}, wantErr: "timed out", wantIs: ErrTimeout, wantStderr: "stuck"},
		{mode: "hang-ignore-term", opts: Options{Timeout: 300 * time.Millisecond, Grace: 300 * time.Millisecond}, wantIs: ErrTimeout},
		{mode: "junk", wantErr: "broke the protocol"},
		{mode: "silent", wantErr: "without a result"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			start := time.Now()
			out, events := runFake(t, tt.mode, tt.opts)
			if time.Since(start) > 8*time.Second {
				t.Errorf("worker run took %s: not stopped promptly", time.Since(start))
			}
			if tt.wantErr == "" && tt.wantIs == nil {
				if out.Err != nil {
					t.Fatalf("unexpected failure: %v (stderr %q)", out.Err, out.StderrTail)
				}
				if string(out.Result) != `{"throughput":800}` {
					t.Errorf("result %s", out.Result)
				}
				if out.Started["model"] != "m.onnx" {
					t.Errorf("started info %v", out.Started)
				}
				if len(events) != 5 {
					t.Errorf("saw %d events, want started + 3 samples + result", len(events))
				}
				return
			}
			if out.Err == nil {
				t.Fatalf("mode %s succeeded, result %s", tt.mode, out.Result)
			}
			if out.Result != nil {
				t.Errorf("failed run kept a result %s", out.Result)
			}
			if tt.wantErr != "" && !strings.Contains(out.Err.Error(), tt.wantErr) {
				t.Errorf("err %q lacks %q", out.Err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(out.Err, tt.wantIs) {
				t.Errorf("err %v is not %v", out.Err, tt.wantIs)
			}
			if !strings.Contains(out.StderrTail, tt.wantStderr) {
				t.Errorf("stderr tail %q lacks %q", out.StderrTail, tt.wantStderr)
			}
		})
	}
}

func TestWorkerCanceled(t *testing.T) {
	exe, _ := os.Executable()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(300 * time.Millisecond); cancel() }()
	out := Run(ctx, Spec{}, Options{Exe: exe, Args: []string{"-test.run=^$"}, Env: []string{"QS_FAKE_WORKER=hang"}})
	if !errors.Is(out.Err, ErrCanceled) {
		t.Fatalf("err = %v, want ErrCanceled", out.Err)
	}
}

func TestMissingExecutable(t *testing.T) {
	out := Run(context.Background(), Spec{}, Options{Exe: "/nonexistent/quantscope"})
	if out.Err == nil || !strings.Contains(out.Err.Error(), "/nonexistent/quantscope") {
		t.Fatalf("err = %v", out.Err)
	}
}

// TestFatalLineBeforeNoiseIsKept: a worker whose Go runtime dies of an
// allocation failure, then prints 10 KiB of goroutine dump, is recorded
// with the fatal line in its reason (not just "exited with status 2") and
// with both the head and the tail of its stderr.
func TestFatalLineBeforeNoiseIsKept(t *testing.T) {
	out, _ := runFake(t, "fatal-then-noise", Options{})
	want := "worker exited with status 2: runtime: out of memory: cannot allocate 60213428224-byte block (3997696 in use) | fatal error: out of memory"
	if out.Err == nil || out.Err.Error() != want {
		t.Fatalf("err = %v, want %q", out.Err, want)
	}
	if strings.Count(out.Err.Error(), "fatal error") != 1 {
		t.Errorf("fatal line repeated: %v", out.Err)
	}
	for _, w := range []string{"runtime: out of memory: cannot allocate", "fatal error: out of memory", "bytes of stderr omitted", "goroutine 999 [last]"} {
		if !strings.Contains(out.StderrTail, w) {
			t.Errorf("stderr lacks %q:\n%s", w, out.StderrTail)
		}
	}
	if n := len(out.StderrTail); n > stderrHeadBytes+stderrTailBytes+100 {
		t.Errorf("stderr kept %d bytes", n)
	}
}

func TestStderrCaptureHeadTailAndFatalLines(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
		fatal  []string
	}{
		{"short", []string{"a\n", "b"}, "a\nb", nil},
		{"exactly both", []string{strings.Repeat("h", stderrHeadBytes), strings.Repeat("t", stderrTailBytes)},
			strings.Repeat("h", stderrHeadBytes) + strings.Repeat("t", stderrTailBytes), nil},
		{"one over", []string{strings.Repeat("h", stderrHeadBytes), "x", strings.Repeat("t", stderrTailBytes)},
			strings.Repeat("h", stderrHeadBytes) + "\n[… 1 bytes of stderr omitted …]\n" + strings.Repeat("t", stderrTailBytes), nil},
		{"fatal lines split across writes, CUDA and ORT", []string{"loading\n2025 [E:onnxrun", "time:Default] CUDA failure 2: out of memory\n",
			"noise\n", "terminate called after throwing an instance of 'onnxruntime::OnnxRuntimeException'"}, "",
			[]string{"2025 [E:onnxruntime:Default] CUDA failure 2: out of memory", "terminate called after throwing an instance of 'onnxruntime::OnnxRuntimeException'"}},
	} {
		c := newStderrCapture()
		for _, w := range tc.writes {
			if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("%s: Write = %d, %v", tc.name, n, err)
			}
		}
		if tc.want != "" && c.String() != tc.want {
			t.Errorf("%s: String() = %q", tc.name, c.String())
		}
		if got := c.Fatal(); strings.Join(got, "|") != strings.Join(tc.fatal, "|") {
			t.Errorf("%s: Fatal() = %q, want %q", tc.name, got, tc.fatal)
		}
	}
}

// TestWorkerDiesWithParent: a parent killed by SIGKILL (no chance to cancel)
// must not leave its worker running.
func TestWorkerDiesWithParent(t *testing.T) {
	if os.Getenv("QS_ORPHAN_PARENT") == "1" {
		// The parent: start a hanging worker, report its pid, wait to be killed.
		exe, _ := os.Executable()
		Run(context.Background(), Spec{}, Options{Exe: exe, Args: []string{"-test.run=^$"}, Env: []string{"QS_FAKE_WORKER=hang", "QS_ORPHAN_PARENT="},
			OnEvent: func(e Event) {
				if e.Kind == KindStarted {
					fmt.Println(e.Info["pid"])
				}
			}})
		return
	}
	exe, _ := os.Executable()
	parent := exec.Command(exe, "-test.run=^TestWorkerDiesWithParent$")
	parent.Env = append(os.Environ(), "QS_ORPHAN_PARENT=1")
	out, _ := parent.StdoutPipe()
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil || pid <= 0 {
		t.Fatalf("no worker pid from the parent: %v", err)
	}
	parent.Process.Kill()
	parent.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); err != nil {
			return // gone
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Fatalf("worker %d outlived its SIGKILLed parent", pid)
}

// TestCancelAfterExitKeepsTheResult: a cancel that arrives after the worker
// has exited with its result (between its exit and the parent labelling
// the run) must neither signal the reaped process group nor turn the
// success into a cancellation. Under -race it also checks the stop reason
// is not read and written unsynchronised.
func TestCancelAfterExitKeepsTheResult(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := Options{Exe: exe, Args: []string{"-test.run=^$"}, Env: []string{"QS_FAKE_WORKER=ok"}}
	opts.afterExit = func() {
		cancel()
		// Give the watcher every chance to act on the cancel before the
		// outcome is decided.
		time.Sleep(100 * time.Millisecond)
	}
	out := Run(ctx, Spec{ModelPath: "m.onnx", Batch: 8}, opts)
	if out.Err != nil {
		t.Fatalf("a run that finished before the cancel was labelled %v", out.Err)
	}
	if string(out.Result) != `{"throughput":800}` {
		t.Errorf("result %s", out.Result)
	}
}
