package study

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/quantscope/quantscope/profiler/bench"
)

func rec(model, prec string, status string) Record {
	r := Record{
		Schema:     SchemaVersion,
		Experiment: Experiment{Model: model, Precision: prec, EP: "cpu", Batch: 1},
		Status:     status,
	}
	if status == StatusOK {
		r.Metrics = &bench.Metrics{Throughput: 100}
	} else {
		r.Reason = "worker crashed"
	}
	return r
}

func TestAppendAndReadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.jsonl")
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{rec("deit-tiny", "fp32", StatusOK), rec("deit-tiny", "int8", StatusFailed)}
	for _, r := range want {
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	got, warns, err := ReadResults(path)
	if err != nil || len(warns) != 0 {
		t.Fatalf("read: %v %v", err, warns)
	}
	if len(got) != 2 || got[0].Experiment != want[0].Experiment || got[1].Reason != "worker crashed" {
		t.Fatalf("read back %+v", got)
	}
	b, _ := os.ReadFile(path)
	if n := strings.Count(string(b), "\n"); n != 2 {
		t.Errorf("file has %d lines, want one per record", n)
	}
}

// TestTornLineAndResume simulates a parent killed mid-write: the file ends in
// half a record. Reading skips it with a warning; a resumed writer starts a
// fresh line; the completed experiments are reported as done.
func TestTornLineAndResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.jsonl")
	ok1, _ := json.Marshal(rec("vit-base-16", "fp32", StatusOK))
	ok2, _ := json.Marshal(rec("vit-base-16", "fp16", StatusOK))
	failed, _ := json.Marshal(rec("vit-base-16", "int4", StatusFailed))
	torn := ok2[:len(ok2)/2]
	content := string(ok1) + "\n" + string(failed) + "\n" + string(torn)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	recs, warns, err := ReadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || len(warns) != 1 || warns[0].Line != 3 || !strings.Contains(warns[0].Reason, "incomplete last line") {
		t.Fatalf("recs %d warns %v", len(recs), warns)
	}
	done := resumable(recs, Host{}).done
	if !done[rec("vit-base-16", "fp32", StatusOK).Experiment.Key()] {
		t.Error("completed fp32 not marked done")
	}
	if done[rec("vit-base-16", "int4", StatusOK).Experiment.Key()] {
		t.Error("failed int4 marked done: resume must retry it")
	}

	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(rec("vit-base-16", "fp16", StatusOK)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	recs, warns, err = ReadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("after resume: %d records, want 3", len(recs))
	}
	// The torn fragment is now a terminated garbage line: still skipped, still reported.
	if len(warns) != 1 || warns[0].Line != 3 {
		t.Errorf("warnings after resume %v", warns)
	}
}

func TestReadResultsRejectsWhatItCannotTrust(t *testing.T) {
	newer := `{"schema":99,"experiment":{"model":"m","precision":"fp32","ep":"cpu","batch":1},"status":"ok"}`
	noSchema := `{"experiment":{"model":"m"},"status":"ok"}`
	noModel := `{"schema":1,"status":"ok"}`
	good, _ := json.Marshal(rec("m", "fp32", StatusOK))
	tests := []struct {
		name, line, want string
	}{
		{"newer schema", newer, "newer than this quantscope"},
		{"no schema", noSchema, "no schema"},
		{"no model", noModel, "names no model"},
		{"garbage", "{{{", "not a JSON record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, warns, err := DecodeResults(strings.NewReader(string(good) + "\n" + tt.line + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || len(warns) != 1 || !strings.Contains(warns[0].Reason, tt.want) {
				t.Errorf("recs %d warns %v, want 1 record and a warning containing %q", len(recs), warns, tt.want)
			}
		})
	}
}

func TestReadResultsMissingFile(t *testing.T) {
	_, _, err := ReadResults(filepath.Join(t.TempDir(), "none.jsonl"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "none.jsonl") {
		t.Errorf("err = %v", err)
	}
}

func TestOverlongLineSkipped(t *testing.T) {
	good, _ := json.Marshal(rec("m", "fp32", StatusOK))
	long := strings.Repeat("x", maxLine+10)
	recs, warns, err := DecodeResults(strings.NewReader(long + "\n" + string(good) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || len(warns) != 1 || !strings.Contains(warns[0].Reason, "16 MiB") {
		t.Errorf("recs %d warns %v", len(recs), warns)
	}
}

func TestExperimentKeys(t *testing.T) {
	e := Experiment{Model: "deit-tiny", Precision: "int4:block=64", EP: "cpu", Batch: 8}
	if e.IsBaseline() {
		t.Error("int4 reported as baseline")
	}
	b := Experiment{Model: "deit-tiny", Precision: "fp32", EP: "cpu", Batch: 8}
	if !b.IsBaseline() || e.BaselineKey() != b.Key() {
		t.Errorf("baseline key %q vs %q", e.BaselineKey(), b.Key())
	}
	if e.Key() == b.Key() {
		t.Error("different precisions share a key")
	}
}

// TestSecondWriterIsRefusedNamingTheHolder: a results file is locked for a
// whole study; a second writer is refused with the holder's pid, host and
// command, and can open the file once the first has closed it. A clean
// close leaves no lock file behind.
func TestSecondWriterIsRefusedNamingTheHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.jsonl")
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenWriter(path)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer: %v, want a LockedError", err)
	}
	host, _ := os.Hostname()
	if le.Holder.PID != os.Getpid() || le.Holder.Host != host || !strings.Contains(le.Holder.Command, os.Args[0]) {
		t.Errorf("holder %+v", le.Holder)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("pid %d on %s", os.Getpid(), host)) || !strings.Contains(msg, "results.jsonl") {
		t.Errorf("message does not name the holder: %s", msg)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left after a clean close: %v", err)
	}
	w2, err := OpenWriter(path)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	w2.Close()

	// A stale lock file of a killed study (unlocked) does not block.
	os.WriteFile(path+".lock", []byte(`{"pid":999999,"host":"gone"}`), 0o644)
	w3, err := OpenWriter(path)
	if err != nil {
		t.Fatalf("stale lock file blocked the writer: %v", err)
	}
	w3.Close()
}

// TestExactDuplicatesDropped: a record copied 500 times (a file appended
// to itself, two writers) reads as one record with one warning, not as
// 500 repeats.
func TestExactDuplicatesDropped(t *testing.T) {
	one, _ := json.Marshal(rec("m", "fp32", StatusOK))
	other, _ := json.Marshal(rec("m", "int8", StatusOK))
	content := strings.Repeat(string(one)+"\n", 250) + string(other) + "\n" + strings.Repeat(string(one)+"\n", 250)
	recs, warns, err := DecodeResults(strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || len(warns) != 1 || warns[0].Line != 2 || !strings.Contains(warns[0].Reason, "repeats line 1 exactly, as do 498 later lines") {
		t.Errorf("%d records, warnings %v", len(recs), warns)
	}
}

// failingFile wraps the results file and fails the write that crosses
// failAt bytes after writing the part before it, as a full disk does.
type failingFile struct {
	*os.File
	written, failAt int
	failures        int // how many writes fail (then it recovers)
}

func (f *failingFile) Write(b []byte) (int, error) {
	if f.failures > 0 && f.written+len(b) > f.failAt {
		f.failures--
		n, _ := f.File.Write(b[:max(0, f.failAt-f.written)])
		f.written += n
		return n, syscall.ENOSPC
	}
	n, err := f.File.Write(b)
	f.written += n
	return n, err
}

func (f *failingFile) Truncate(size int64) error {
	f.written = int(size)
	return f.File.Truncate(size)
}

// TestFailedAppendKeepsTheRecord: a write that fails mid-line (disk full)
// leaves no partial line; the record is written again once the disk has
// room, or goes to a fallback file the error names; only if nothing takes
// it does the error carry the record itself.
func TestFailedAppendKeepsTheRecord(t *testing.T) {
	first, _ := json.Marshal(rec("m", "fp32", StatusOK))
	for _, tc := range []struct {
		name     string
		failures int
		fallback string
	}{
		{"room again on retry", 1, ""},
		{"still full: fallback file", 2, ""},
		{"nowhere to write", 2, filepath.Join("no-such-dir", "x.jsonl")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "results.jsonl")
			w, err := OpenWriter(path)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			w.RetryPause = 0
			w.FallbackName = tc.fallback
			if err := w.Append(rec("m", "fp32", StatusOK)); err != nil {
				t.Fatal(err)
			}
			w.f = &failingFile{File: w.f.(*os.File), written: len(first) + 1, failAt: len(first) + 40, failures: tc.failures}
			err = w.Append(rec("m", "int8", StatusOK))
			recs, warns, rerr := ReadResults(path)
			if rerr != nil || len(warns) != 0 {
				t.Fatalf("results file after the failed write: %v, warnings %v (a partial line?)", rerr, warns)
			}
			raw, _ := os.ReadFile(path)
			if !strings.HasSuffix(string(raw), "\n") {
				t.Errorf("results file does not end in a whole line")
			}
			var se *SavedElsewhereError
			switch {
			case tc.failures == 1:
				if err != nil || len(recs) != 2 {
					t.Errorf("retry: %v, %d records", err, len(recs))
				}
			case tc.fallback == "":
				if !errors.As(err, &se) || !errors.Is(err, syscall.ENOSPC) || len(recs) != 1 {
					t.Fatalf("fallback: %v, %d records", err, len(recs))
				}
				if !strings.Contains(err.Error(), se.Fallback) || !strings.Contains(err.Error(), "cat ") || w.Fallback() != se.Fallback {
					t.Errorf("message does not name the fallback file: %v", err)
				}
				saved, _, ferr := ReadResults(se.Fallback)
				if ferr != nil || len(saved) != 1 || saved[0].Experiment.Precision != "int8" {
					t.Errorf("fallback file holds %d records (%v)", len(saved), ferr)
				}
			default:
				if err == nil || errors.As(err, &se) || !strings.Contains(err.Error(), "only in memory") || !strings.Contains(err.Error(), `"precision":"int8"`) {
					t.Errorf("nowhere to write: %v", err)
				}
			}
		})
	}
}
