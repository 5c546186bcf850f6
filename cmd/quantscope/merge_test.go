package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/profiler/study"
)

func runMergeCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs(append([]string{"merge"}, args...))
	err = root.Execute()
	return out.String(), errb.String(), err
}

// The report fixtures merged: the torn line of one is reported, the two
// ONNX Runtime versions (two host environments) both stay, and merging the
// same file twice adds nothing.
func TestMergeCommand(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(reportFixtures, "cpu-ort124.jsonl")
	b := filepath.Join(reportFixtures, "cpu-ort122.jsonl")
	out := filepath.Join(dir, "all.jsonl")
	stdout, stderr, err := runMergeCLI(t, out, a, b, a)
	if err != nil {
		t.Fatal(err)
	}
	ra, _, _ := study.ReadResults(a)
	rb, _, _ := study.ReadResults(b)
	got, _, err := study.ReadResults(out)
	if err != nil || len(got) != len(ra)+len(rb) {
		t.Fatalf("merged %d records (%v), want %d + %d", len(got), err, len(ra), len(rb))
	}
	want := fmt.Sprintf("merged %d records from 3 files into %s: %d written, %d dropped (duplicates, or older records of a re-run)\n", 2*len(ra)+len(rb), out, len(ra)+len(rb), len(ra))
	if stdout != want || !strings.Contains(stderr, "cpu-ort124.jsonl line 15: incomplete last line") {
		t.Errorf("stdout %q\nstderr %q", stdout, stderr)
	}
	if _, _, err := runMergeCLI(t, filepath.Join(dir, "x.jsonl")); err == nil {
		t.Error("merge without inputs accepted")
	}
	if _, _, err := runMergeCLI(t, a, b); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("merge onto an unlisted existing file: %v", err)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}
