package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/study"
)

// startCLI starts the test binary as `quantscope args...` in dir without
// waiting for it.
func startCLI(t *testing.T, dir string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "QUANTSCOPE_AS_CLI=1", "NO_COLOR=1")
	if info := ort.Probe(""); info.OK() {
		cmd.Env = append(cmd.Env, ort.EnvLibrary+"="+info.LibraryPath)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &stderr
}

// waitFor polls cond every 50 ms for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// workerOf returns the pid of a `worker` child of parent, or 0.
func workerOf(parent int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so split after ')'.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) < 2 || fields[1] != strconv.Itoa(parent) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(cmdline, []byte("worker")) {
			return pid
		}
	}
	return 0
}

// TestBenchSecondWriterRefused: two bench processes on one --out do not
// run at once: the second is refused at once, naming the first (pid,
// host, command), and the first's records are whole and not duplicated.
func TestBenchSecondWriterRefused(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	model := tinyImageModel(t, dir)
	out := filepath.Join(dir, "results.jsonl")
	args := []string{"bench", "--models", model, "--precisions", "fp32", "--duration", "2s", "--threads", "1", "--out", out, "--resume"}
	first, firstErr := startCLI(t, dir, args...)
	waitFor(t, "the first study to take the lock", func() bool { _, err := os.Stat(out + ".lock"); return err == nil })

	_, stderr, code := cli(t, dir, args...)
	host, _ := os.Hostname()
	if code == 0 || !strings.Contains(stderr, "being written by another quantscope study") ||
		!strings.Contains(stderr, "pid "+strconv.Itoa(first.Process.Pid)+" on "+host) || !strings.Contains(stderr, "bench --models") {
		t.Errorf("second writer: exit %d\n%s", code, stderr)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first study: %v\n%s", err, firstErr)
	}
	recs, warns, err := study.ReadResults(out)
	if err != nil || len(warns) != 0 || len(recs) != 1 {
		t.Errorf("results: %d records, %v, %v", len(recs), warns, err)
	}
	if _, err := os.Stat(out + ".lock"); err == nil {
		t.Error("lock file left behind")
	}
}

// TestBenchKilledBaselineThenResumeWithGate: kill -9 the FP32 worker; the
// variant runs without a reference and --gate fails ("fidelity not
// measured"); --resume --gate measures FP32 and then the variant again,
// and the gate passes.
func TestBenchKilledBaselineThenResumeWithGate(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	model := tinyImageModel(t, dir)
	out := filepath.Join(dir, "results.jsonl")
	args := []string{"bench", "--models", model, "--precisions", "int8", "--batch", "2", "--duration", "3s", "--threads", "1",
		"--out", out, "--gate", "cos>=0.9", "--format", "json"}
	bench, stderr := startCLI(t, dir, args...)
	var pid int
	waitFor(t, "the FP32 worker", func() bool { pid = workerOf(bench.Process.Pid); return pid != 0 })
	syscall.Kill(pid, syscall.SIGKILL)
	err := bench.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitGateFailed || !strings.Contains(stderr.String(), "fidelity") {
		t.Fatalf("after the kill: %v, want exit %d (gate: fidelity not measured)\n%s", err, exitGateFailed, stderr)
	}
	recs, _, _ := study.ReadResults(out)
	if len(recs) != 2 || recs[0].OK() || !recs[1].OK() || recs[1].Metrics.Fidelity != nil {
		t.Fatalf("records after the kill: %+v", recs)
	}

	args[slices.Index(args, "3s")] = "1s" // --duration
	stdout, errOut, code := cli(t, dir, append(args, "--resume")...)
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", code, stdout, errOut)
	}
	recs, _, _ = study.ReadResults(out)
	if len(recs) != 4 || !recs[2].OK() || !recs[3].OK() || recs[3].Metrics.Fidelity == nil {
		t.Errorf("records after resume: %d", len(recs))
	}
	if !strings.Contains(stdout, `"cosine_mean"`) || strings.Count(stdout, `"model"`) != 2 {
		t.Errorf("summary after resume:\n%s", stdout)
	}
}
