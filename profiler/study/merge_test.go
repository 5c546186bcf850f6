package study

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var mergeT0 = time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)

// mrec is a record of model at prec on a host of group, finished at minute.
func mrec(model, prec, hostname, group, status string, minute int) Record {
	r := rec(model, prec, status)
	r.Host = Host{Hostname: hostname, Group: group, CPU: "EPYC", GPU: "H100", ORTVersion: "1.29.0"}
	r.Started = mergeT0.Add(time.Duration(minute) * time.Minute)
	r.Finished = r.Started.Add(30 * time.Second)
	return r
}

func writeLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func line(t *testing.T, r Record) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// Overlapping shard files: a re-run of an index on another pod (same host
// group) supersedes the failure, the same file given twice adds nothing,
// another host's identical experiment stays, a torn line is skipped and a
// field this build does not know survives byte for byte.
func TestMergeOverlappingFiles(t *testing.T) {
	dir := t.TempDir()
	shard0 := filepath.Join(dir, "results-0.jsonl")
	shard0retry := filepath.Join(dir, "results-0-retry.jsonl")
	shard1 := filepath.Join(dir, "results-1.jsonl")
	other := filepath.Join(dir, "h200.jsonl")

	withExtra := strings.TrimSuffix(line(t, mrec("resnet-50", "fp32", "bench-1-x7", "h100", StatusOK, 3)), "}\n") + `,"future_field":{"kept":true}}` + "\n"
	writeLines(t, shard0,
		line(t, mrec("deit-tiny", "fp32", "bench-0-abc", "h100", StatusOK, 0)),
		line(t, mrec("deit-tiny", "int8", "bench-0-abc", "h100", StatusFailed, 1)),
		`{"schema":1,"experiment":{"model":"deit-ti`) // killed mid-write
	writeLines(t, shard0retry,
		line(t, mrec("deit-tiny", "int8", "bench-0-def", "h100", StatusOK, 9)))
	writeLines(t, shard1, withExtra)
	writeLines(t, other,
		line(t, mrec("deit-tiny", "fp32", "gpu-h200", "", StatusOK, 2)))

	out := filepath.Join(dir, "all.jsonl")
	rep, err := MergeFiles(out, []string{shard0, shard1, shard0retry, other, shard1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Read != 6 || rep.Written != 4 || rep.Superseded != 2 {
		t.Errorf("report %+v, want 6 read, 4 written, 2 superseded", rep)
	}
	if len(rep.Warnings) != 1 || rep.Warnings[0].Path != shard0 || rep.Warnings[0].Line != 3 || !strings.Contains(rep.Warnings[0].String(), "incomplete last line") {
		t.Errorf("warnings %v, want the torn line 3 of %s", rep.Warnings, shard0)
	}
	got, warns, err := ReadResults(out)
	if err != nil || len(warns) != 0 {
		t.Fatalf("read merged: %v %v", err, warns)
	}
	var desc []string
	for _, r := range got {
		desc = append(desc, r.Experiment.Model+" "+r.Experiment.Precision+" "+r.Host.Name()+" "+r.Status+" "+r.Host.Hostname)
	}
	want := []string{
		"deit-tiny fp32 h100 ok bench-0-abc",
		"deit-tiny int8 h100 ok bench-0-def", // the retry, in the failure's place
		"resnet-50 fp32 h100 ok bench-1-x7",
		"deit-tiny fp32 gpu-h200 ok gpu-h200",
	}
	if strings.Join(desc, "\n") != strings.Join(want, "\n") {
		t.Errorf("merged records:\n%s\nwant:\n%s", strings.Join(desc, "\n"), strings.Join(want, "\n"))
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), strings.TrimSpace(withExtra)) {
		t.Error("a record was not copied byte for byte (its unknown field is gone)")
	}

	// Merging the merged file with its own inputs changes nothing.
	before, _ := os.ReadFile(out)
	if _, err := MergeFiles(out, []string{out, shard0, shard1}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(out)
	if string(before) != string(after) {
		t.Errorf("re-merging changed the file:\n%s\nwas:\n%s", after, before)
	}
}

// The newest record wins whatever the input order; on a tie the later
// input does.
func TestMergeKeepsNewest(t *testing.T) {
	dir := t.TempDir()
	late := filepath.Join(dir, "late.jsonl")
	early := filepath.Join(dir, "early.jsonl")
	writeLines(t, late, line(t, mrec("deit-tiny", "int8", "n1", "", StatusFailed, 20)))
	writeLines(t, early, line(t, mrec("deit-tiny", "int8", "n1", "", StatusOK, 5)))
	out := filepath.Join(dir, "out.jsonl")
	if _, err := MergeFiles(out, []string{late, early}); err != nil {
		t.Fatal(err)
	}
	got, _, _ := ReadResults(out)
	if len(got) != 1 || got[0].Status != StatusFailed {
		t.Errorf("kept %+v, want the newer (failed) re-run", got)
	}
}

func TestMergeRefusals(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jsonl")
	writeLines(t, good, line(t, mrec("deit-tiny", "fp32", "n1", "", StatusOK, 0)))
	future := filepath.Join(dir, "future.jsonl")
	r := mrec("deit-tiny", "int8", "n1", "", StatusOK, 1)
	r.Schema = SchemaVersion + 1
	noSchema := mrec("deit-tiny", "int4", "n1", "", StatusOK, 2)
	noSchema.Schema = 0
	writeLines(t, future, line(t, mrec("deit-tiny", "fp16", "n1", "", StatusOK, 0)), line(t, r), line(t, noSchema), `{"unrelated":"json"}`+"\n")

	out := filepath.Join(dir, "out.jsonl")
	_, err := MergeFiles(out, []string{good, future})
	var se *SchemaError
	if !errors.As(err, &se) || len(se.Lines) != 2 {
		t.Fatalf("error %v, want a SchemaError naming two lines", err)
	}
	for _, want := range []string{future + fmt.Sprintf(" line 2: schema %d", SchemaVersion+1), future + " line 3: schema 0", "nothing was written", "Upgrade quantscope"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("refused merge left %s behind (%v)", out, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".merge-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}

	existing := filepath.Join(dir, "existing.jsonl")
	writeLines(t, existing, "keep me\n")
	if _, err := MergeFiles(existing, []string{good}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("overwriting an unlisted output: %v", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me\n" {
		t.Errorf("the existing output was changed: %q", b)
	}
	if _, err := MergeFiles(out, []string{filepath.Join(dir, "missing.jsonl")}); err == nil || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Errorf("missing input: %v", err)
	}
	if _, err := MergeFiles(out, nil); err == nil {
		t.Error("no inputs accepted")
	}

	// A study is writing the output: merging into it would lose its
	// records, so the merge is refused naming the study.
	w, err := OpenWriter(good)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := MergeFiles(good, []string{good, future}); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("merging into a file a study holds: %v", err)
	}
}
