package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
)

// optimizeCLI runs `quantscope optimize args...` in process.
func optimizeCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := newRootCmd(&stdout, &stderr)
	root.SetArgs(append([]string{"optimize"}, args...))
	err := root.ExecuteContext(context.Background())
	return stdout.String(), stderr.String(), err
}

// optimize writes the fused FP32 graph of a Hugging Face-structured
// export with the fusion report; refuses to overwrite the source or an
// existing file without --force; and a graph with nothing left to fuse is
// an error that writes nothing.
func TestOptimizeCommand(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("..", "..", "models", "testdata", "exports", "hf.onnx")
	out := filepath.Join(dir, "hf-fused.onnx")
	stdout, stderr, err := optimizeCLI(t, "--model", src, "--out", out, "--json")
	if err != nil {
		t.Fatalf("optimize: %v\n%s", err, stderr)
	}
	var res optimizeResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if res.Optimized.Count(optimize.Attention) != 2 || res.Bytes <= 0 || res.Out != out {
		t.Errorf("result %+v, report %s", res, res.Optimized)
	}
	m, err := onnx.Load(out)
	if err != nil {
		t.Fatalf("written model: %v", err)
	}
	if n := m.Stats().NodesByOp["com.microsoft.MultiHeadAttention"]; n != 2 {
		t.Errorf("written model has %d MultiHeadAttention nodes", n)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", src, "--out", out}, "pass --force"},
		{[]string{"--model", src, "--out", src}, "is the source model"},
		{[]string{"--model", src, "--out", filepath.Join(dir, "x.bin")}, "name the file .onnx"},
		{[]string{"--model", src, "--out", filepath.Join(dir, "y.onnx"), "--disable", "nope"}, "not a pattern"},
		{[]string{"--model", out, "--out", filepath.Join(dir, "again.onnx")}, "nothing to fuse"},
	} {
		_, _, err := optimizeCLI(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "again.onnx")); !os.IsNotExist(err) {
		t.Errorf("nothing to fuse, yet a file was written (%v)", err)
	}
	// Text output names the near misses.
	stdout, _, err = optimizeCLI(t, "--model", filepath.Join("..", "..", "models", "testdata", "exports", "hf-masked.onnx"), "--out", filepath.Join(dir, "masked.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "near misses (2)") || !strings.Contains(stdout, "mask computed from inputs") {
		t.Errorf("text output without the near misses:\n%s", stdout)
	}
}
