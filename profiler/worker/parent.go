package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure how the parent runs a worker.
type Options struct {
	// Exe and Args start the worker; defaults: os.Executable() and ["worker"].
	Exe  string
	Args []string
	// Env is added to the parent's environment (e.g. LD_LIBRARY_PATH for CUDA).
	Env []string
	// Timeout bounds the whole run (0 = none beyond ctx).
	Timeout time.Duration
	// Grace is how long SIGTERM is given before SIGKILL (default 3 s).
	Grace time.Duration
	// OnEvent, when set, sees every event as it arrives (started, samples).
	OnEvent func(Event)

	// afterExit, in tests, runs once the worker has exited and before it
	// is reaped and its outcome labelled.
	afterExit func()
}

// Outcome is how one worker run ended.
type Outcome struct {
	// Result is the worker's result payload; nil when the run failed.
	Result json.RawMessage
	// Err says why the run failed: the worker's own error, a crash, a
	// timeout, a kill, or a broken protocol. Nil when Result is set.
	Err error
	// StderrTail is the worker's stderr: its first and last 4 KiB, with
	// how much was left out between them. Lines that look fatal (a Go
	// fatal error, an ONNX Runtime exception, a CUDA error) are added to
	// Err wherever they were.
	StderrTail string
	// Started is the worker's started event info, if it got that far.
	Started map[string]any
	// Wall is how long the worker ran.
	Wall time.Duration
}

// ErrTimeout marks a worker stopped for running past Options.Timeout.
var ErrTimeout = errors.New("worker timed out")

// ErrCanceled marks a worker stopped because the study was canceled.
var ErrCanceled = errors.New("worker canceled")

// Run starts a worker for spec, streams its events and returns how it ended.
// It never panics on what the worker does and always reaps the process.
func Run(ctx context.Context, spec Spec, opts Options) Outcome {
	start := time.Now()
	out := run(ctx, spec, opts)
	out.Wall = time.Since(start)
	return out
}

func run(ctx context.Context, spec Spec, opts Options) Outcome {
	exe, args := opts.Exe, opts.Args
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return Outcome{Err: fmt.Errorf("find own executable to start a worker: %w", err)}
		}
	}
	if args == nil {
		args = []string{"worker"}
	}
	grace := opts.Grace
	if grace <= 0 {
		grace = 3 * time.Second
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return Outcome{Err: fmt.Errorf("encode worker spec: %w", err)}
	}

	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Stdin = strings.NewReader(string(specJSON) + "\n")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithParent(cmd.SysProcAttr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Outcome{Err: fmt.Errorf("worker stdout: %w", err)}
	}
	tail := newStderrCapture()
	cmd.Stderr = tail
	oomBefore := oomKills()
	if err := cmd.Start(); err != nil {
		return Outcome{Err: fmt.Errorf("start worker %s: %w", exe, err)}
	}

	// stop signals the process group: SIGTERM, then SIGKILL after the grace
	// period. Once the worker has exited (observed without reaping it, so
	// its pid cannot be reused meanwhile) stop does nothing: a cancel or
	// timeout that comes after the exit neither signals a reaped process
	// group nor relabels a finished run.
	var mu sync.Mutex
	var stopReason error
	exited := false
	stopped := make(chan struct{})
	signal := func(sig syscall.Signal) {
		mu.Lock()
		defer mu.Unlock()
		if !exited {
			_ = syscall.Kill(-cmd.Process.Pid, sig)
		}
	}
	stop := func(reason error) {
		mu.Lock()
		if exited || stopReason != nil {
			mu.Unlock()
			return
		}
		stopReason = reason
		mu.Unlock()
		signal(syscall.SIGTERM)
		go func() {
			select {
			case <-time.After(grace):
				signal(syscall.SIGKILL)
			case <-stopped:
			}
		}()
	}
	var timeout <-chan time.Time
	if opts.Timeout > 0 {
		t := time.NewTimer(opts.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	watchDone := make(chan struct{})
	watcherExited := make(chan struct{})
	go func() {
		defer close(watcherExited)
		select {
		case <-ctx.Done():
			stop(fmt.Errorf("%w: %v", ErrCanceled, context.Cause(ctx)))
		case <-timeout:
			stop(fmt.Errorf("%w after %s", ErrTimeout, opts.Timeout))
		case <-watchDone:
		}
	}()

	var res Outcome
	var protoErr, workerErr error
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil || ev.Kind == "" {
			if protoErr == nil {
				protoErr = fmt.Errorf("worker broke the protocol: wrote %q on stdout", clip(string(line), 120))
				stop(protoErr)
			}
			continue
		}
		if opts.OnEvent != nil {
			opts.OnEvent(ev)
		}
		switch ev.Kind {
		case KindStarted:
			res.Started = ev.Info
		case KindResult:
			res.Result = ev.Result
		case KindError:
			workerErr = errors.New(ev.Error)
		}
	}
	if err := sc.Err(); err != nil && protoErr == nil {
		protoErr = fmt.Errorf("read worker output: %w", err)
		stop(protoErr)
	}
	_, _ = io.Copy(io.Discard, stdout)
	markExited := func() error {
		mu.Lock()
		defer mu.Unlock()
		exited = true
		return stopReason
	}
	var reason error
	observed := waitExit(cmd.Process.Pid) // exited, not reaped yet
	if observed {
		reason = markExited()
		if opts.afterExit != nil {
			opts.afterExit()
		}
	}
	waitErr := cmd.Wait()
	if !observed {
		reason = markExited()
	}
	close(stopped)
	close(watchDone)
	<-watcherExited
	res.StderrTail = tail.String()

	switch {
	case reason != nil:
		res.Result, res.Err = nil, reason
	case protoErr != nil:
		res.Result, res.Err = nil, protoErr
	case workerErr != nil:
		res.Result, res.Err = nil, workerErr
	case waitErr != nil:
		res.Result, res.Err = nil, describeDeath(waitErr, oomBefore)
	case res.Result == nil:
		res.Err = errors.New("worker exited without a result")
	}
	res.Err = withFatal(res.Err, tail.Fatal())
	return res
}

// describeExit turns a child's exit into words a user can act on.
func describeExit(err error) error {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("worker: %w", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		switch sig := ws.Signal(); sig {
		case syscall.SIGKILL:
			return errors.New("worker was killed (SIGKILL) — most often the kernel's out-of-memory killer: try a smaller batch or model")
		case syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGABRT, syscall.SIGILL, syscall.SIGFPE:
			return fmt.Errorf("worker crashed (%s)", sig)
		default:
			return fmt.Errorf("worker stopped by signal %s", sig)
		}
	}
	return fmt.Errorf("worker exited with status %d", ee.ExitCode())
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
