package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/zoo"
)

// runCLI runs the root command with args and returns stdout, stderr and
// the error.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newRootCmd(&out, &errb)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestModelsListTable(t *testing.T) {
	dir := t.TempDir()
	out, _, err := runCLI(t, "models", "list", "--cache-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 1+len(zoo.Catalog()) {
		t.Fatalf("%d lines, want a header and %d models:\n%s", len(lines), len(zoo.Catalog()), out)
	}
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "NAME FAMILY PARAMS RES GFLOPS OUTPUT CACHED" {
		t.Errorf("header %q", lines[0])
	}
	want := map[string]string{
		"vit-huge-14":  "vit-huge-14 ViT 632M 224 334.6 1000 classes -",
		"vit-base-16":  "vit-base-16 ViT 86.6M 224 35.1 1000 classes -",
		"dinov2-small": "dinov2-small DINOv2 21.6M 224 12.2 384-d embed -",
		"clip-vit-b32": "clip-vit-b32 CLIP 87.8M 224 8.8 512-d embed -",
		"mobilenet-v2": "mobilenet-v2 CNN 3.50M 224 0.6 1000 classes -",
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if w, ok := want[f[0]]; ok {
			if got := strings.Join(f, " "); got != w {
				t.Errorf("row %q, want %q", got, w)
			}
			delete(want, f[0])
		}
	}
	for name := range want {
		t.Errorf("no row for %s", name)
	}
	// `quantscope models` alone lists too.
	if bare, _, err := runCLI(t, "models", "--cache-dir", dir); err != nil || bare != out {
		t.Errorf("bare `models` differs from `models list` (%v)", err)
	}
}

func TestModelsBuildThenListJSON(t *testing.T) {
	dir := t.TempDir()
	out, _, err := runCLI(t, "models", "build", "--cache-dir", dir, "deit-tiny", "mobilevit-xxs")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "deit-tiny ") || !strings.Contains(lines[0], "built in") ||
		!strings.Contains(lines[0], "21.9 MiB") || !strings.HasPrefix(lines[1], "mobilevit-xxs ") {
		t.Fatalf("build output:\n%s", out)
	}
	f := strings.Fields(lines[0])
	path := f[len(f)-1]
	if _, err := os.Stat(path); err != nil || !strings.HasPrefix(path, dir) {
		t.Errorf("printed path %s: %v", path, err)
	}

	again, _, err := runCLI(t, "models", "build", "--cache-dir", dir, "deit-tiny")
	if err != nil || !strings.Contains(again, "cached") || !strings.Contains(again, path) {
		t.Errorf("second build: %q, %v", again, err)
	}

	js, _, err := runCLI(t, "models", "list", "--json", "--cache-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	var rows []modelJSON
	if err := json.Unmarshal([]byte(js), &rows); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, js)
	}
	if len(rows) != len(zoo.Catalog()) {
		t.Fatalf("%d models", len(rows))
	}
	for _, r := range rows {
		switch r.Name {
		case "deit-tiny":
			if !r.Cached || r.Path != path || r.Bytes < 22_000_000 || r.Params != 5_717_416 || r.Output != zoo.Logits || r.OutputDim != 1000 {
				t.Errorf("deit-tiny: %+v", r)
			}
		case "clip-vit-b16":
			if r.Cached || r.Path != "" || r.EmbedDim != 768 || r.OutputDim != 512 || r.Output != zoo.Embeddings || r.Preprocess.Name != "clip" {
				t.Errorf("clip-vit-b16: %+v", r)
			}
		}
	}
}

// Names are checked before anything is built: a typo fails at once.
func TestModelsBuildRejectsUnknownNamesFirst(t *testing.T) {
	dir := t.TempDir()
	_, _, err := runCLI(t, "models", "build", "--cache-dir", dir, "deit-tiny", "deit-tiniy")
	if !errors.Is(err, zoo.ErrUnknownModel) || !strings.Contains(err.Error(), `"deit-tiniy"`) || !strings.Contains(err.Error(), "did you mean deit-tiny") {
		t.Errorf("err = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("built %d models before failing", len(entries))
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"models", "build"}, "name at least one model"},
		{[]string{"models", "build", "--all", "deit-tiny"}, "not both"},
		{[]string{"models", "build", "--resolution", "100", "deit-tiny"}, "not a multiple of the patch size 16"},
		{[]string{"models", "build", "--opset", "9", "deit-tiny"}, "opset 9 not supported"},
	} {
		if _, _, err := runCLI(t, append(tt.args, "--cache-dir", dir)...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestModelsBuildChecksFiles(t *testing.T) {
	dir := t.TempDir()
	s, _ := zoo.Lookup("mobilevit-xxs")
	m, err := zoo.Build(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "mine.onnx")
	if err := onnx.Save(m, good, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "models", "build", "--cache-dir", dir, good)
	if err != nil || !strings.Contains(out, "imported") || !strings.Contains(out, good) {
		t.Errorf("import: %q, %v", out, err)
	}
	bad := filepath.Join(dir, "notes.onnx")
	os.WriteFile(bad, []byte("hello"), 0o644)
	if _, _, err := runCLI(t, "models", "build", "--cache-dir", dir, bad); err == nil || !strings.Contains(err.Error(), "notes.onnx") {
		t.Errorf("bad file: %v", err)
	}
}

func TestProgressPrinter(t *testing.T) {
	events := []zoo.Progress{
		{Model: "m", Stage: zoo.StageGraph},
		{Model: "m", Stage: zoo.StageWeights, Done: 0, Total: 400e6},
		{Model: "m", Stage: zoo.StageWeights, Done: 50e6, Total: 400e6},
		{Model: "m", Stage: zoo.StageWeights, Done: 120e6, Total: 400e6},
		{Model: "m", Stage: zoo.StageWeights, Done: 400e6, Total: 400e6},
		{Model: "m", Stage: zoo.StageWrite, Total: 400e6},
		{Model: "m", Stage: zoo.StageDone, Done: 400e6, Total: 400e6},
	}
	var plain bytes.Buffer
	p := &progressPrinter{w: &plain}
	for _, e := range events {
		p.report(e)
	}
	p.finish()
	want := "m: weights   0% of 381 MiB\nm: weights  30% of 381 MiB\nm: weights 100% of 381 MiB\nm: writing 381 MiB\n"
	if plain.String() != want {
		t.Errorf("plain progress:\n%q\nwant\n%q", plain.String(), want)
	}
	var tty bytes.Buffer
	p = &progressPrinter{w: &tty, tty: true}
	for _, e := range events {
		p.report(e)
	}
	p.finish()
	got := tty.String()
	if strings.Contains(got, "\n") || !strings.Contains(got, "\r\x1b[Km: weights  12% 47.7 MiB / 381 MiB") || !strings.HasSuffix(got, "\r\x1b[K") {
		t.Errorf("terminal progress %q", got)
	}
	(*progressPrinter)(nil).finish() // no progress shown: no-op
}

func TestHumanFormats(t *testing.T) {
	for n, want := range map[int64]string{632_045_800: "632M", 86_567_656: "86.6M", 5_717_416: "5.72M", 1_272_024: "1.27M"} {
		if got := humanParams(n); got != want {
			t.Errorf("humanParams(%d) = %s, want %s", n, got, want)
		}
	}
}
