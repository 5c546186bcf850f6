package study

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
	done := Done(recs)
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
