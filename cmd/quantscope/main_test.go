package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/profiler/ort"
)

// TestMain lets the test binary be quantscope itself when QUANTSCOPE_AS_CLI=1:
// end-to-end tests run it with real arguments, and the worker processes a
// study starts (os.Executable() + "worker") inherit the variable and serve.
func TestMain(m *testing.M) {
	if os.Getenv("QUANTSCOPE_AS_CLI") == "1" {
		os.Exit(run())
	}
	// A cache of the run's own (catalog builds, fused copies, variants,
	// remembered hashes): no test finds what another run left, and none
	// writes into the user's cache. Tests that need a cache of their own
	// set QUANTSCOPE_CACHE_DIR again.
	cache, err := os.MkdirTemp("", "quantscope-cmd-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(onnx.EnvCacheDir, cache)
	code := m.Run()
	os.RemoveAll(cache)
	os.Exit(code)
}

// cli runs the test binary as `quantscope args...` in dir and returns its
// stdout, stderr and exit code.
func cli(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "QUANTSCOPE_AS_CLI=1", "NO_COLOR=1")
	if info := ort.Probe(""); info.OK() {
		// The child runs in dir, away from the checkout's .ort/.
		cmd.Env = append(cmd.Env, ort.EnvLibrary+"="+info.LibraryPath)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}
