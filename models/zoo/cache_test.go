package zoo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quantscope/quantscope/internal/tempdir"
)

func TestCacheDirFromEnvironment(t *testing.T) {
	t.Setenv(EnvCacheDir, "/srv/qs")
	if d, err := CacheDir(); err != nil || d != "/srv/qs/models" {
		t.Errorf("with %s: %q, %v", EnvCacheDir, d, err)
	}
	t.Setenv(EnvCacheDir, "")
	t.Setenv("XDG_CACHE_HOME", "/home/u/.xdg")
	if d, err := CacheDir(); err != nil || d != "/home/u/.xdg/quantscope/models" {
		t.Errorf("with XDG_CACHE_HOME: %q, %v", d, err)
	}
}

func TestEnsureBuildsOnceThenHits(t *testing.T) {
	dir := t.TempDir()
	s, _ := Lookup("deit-tiny")
	var stages []Stage
	r, err := Ensure(context.Background(), s, WithCacheDir(dir), WithProgress(func(p Progress) { stages = append(stages, p.Stage) }))
	if err != nil {
		t.Fatal(err)
	}
	if r.Cached || r.Imported || r.Spec.Name != "deit-tiny" || r.Output != "logits" || r.Input.Name != InputName || r.Input.Height != 224 {
		t.Errorf("first Ensure: %+v", r)
	}
	if !strings.HasPrefix(r.Path, dir) || filepath.Base(r.Path) != ModelFile || !strings.Contains(r.Path, "deit-tiny-224px-opset17-") {
		t.Errorf("path %s", r.Path)
	}
	st, err := os.Stat(r.Path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.Stat(r.Path + ".data")
	if err != nil {
		t.Fatal(err)
	}
	// 5.7M float32 parameters (22.9 MB, above ExternalAutoBytes: external).
	if r.Bytes != st.Size()+data.Size() || r.Bytes < 4*5_717_416 || r.Bytes > 4*5_717_416+1<<20 || !r.Manifest.External {
		t.Errorf("size %d (files %d + %d), external %v", r.Bytes, st.Size(), data.Size(), r.Manifest.External)
	}
	if got := strings.Join(stagesNames(stages), ","); got != "graph,weights,write,done" {
		t.Errorf("stages %s", got)
	}
	before, _ := os.ReadFile(r.Path + ".data")

	start := time.Now()
	r2, err := Ensure(context.Background(), s, WithCacheDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Cached || r2.Path != r.Path || r2.Bytes != r.Bytes {
		t.Errorf("second Ensure: cached %v path %s", r2.Cached, r2.Path)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("cache hit took %v", d)
	}
	if m, ok := Cached(s, WithCacheDir(dir)); !ok || m.Params != 5_717_416 || m.Name != "deit-tiny" {
		t.Errorf("Cached: %+v %v", m, ok)
	}
	if p, err := CachePath(s, WithCacheDir(dir)); err != nil || p != r.Path {
		t.Errorf("CachePath %s, %v", p, err)
	}
	// Other options are other cache entries.
	if _, ok := Cached(s, WithCacheDir(dir), WithOpset(18)); ok {
		t.Errorf("opset 18 counted as cached")
	}
	if p, _ := CachePath(s, WithCacheDir(dir), WithSeed(3)); p == r.Path {
		t.Errorf("seed 3 shares the cache entry")
	}

	// Rebuild replaces the entry with identical bytes.
	r3, err := Ensure(context.Background(), s, WithCacheDir(dir), WithRebuild(true))
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(r3.Path + ".data")
	if r3.Cached || !bytes.Equal(before, after) {
		t.Errorf("rebuild: cached %v, identical %v", r3.Cached, bytes.Equal(before, after))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("cache dir holds %d entries after a rebuild, want 1", len(entries))
	}
}

func stagesNames(st []Stage) []string {
	var out []string
	for _, s := range st {
		if len(out) == 0 || out[len(out)-1] != string(s) {
			out = append(out, string(s))
		}
	}
	return out
}

// A model whose manifest or files are missing or wrong is not cached, and
// the next Ensure replaces it.
func TestEnsureIgnoresIncompleteEntries(t *testing.T) {
	dir := t.TempDir()
	s, _ := Lookup("mobilevit-xxs")
	r, err := Ensure(context.Background(), s, WithCacheDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	entry := filepath.Dir(r.Path)
	tests := []struct {
		name    string
		corrupt func()
	}{
		{"truncated model", func() { os.Truncate(r.Path, 100) }},
		{"no manifest", func() { os.Remove(filepath.Join(entry, ManifestFile)) }},
		{"garbage manifest", func() { os.WriteFile(filepath.Join(entry, ManifestFile), []byte("{"), 0o644) }},
		{"old builder", func() {
			b, _ := os.ReadFile(filepath.Join(entry, ManifestFile))
			os.WriteFile(filepath.Join(entry, ManifestFile), bytes.Replace(b, []byte(`"builder_version": 1`), []byte(`"builder_version": 0`), 1), 0o644)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.corrupt()
			if _, ok := Cached(s, WithCacheDir(dir)); ok {
				t.Fatalf("a broken entry counts as cached")
			}
			r2, err := Ensure(context.Background(), s, WithCacheDir(dir))
			if err != nil {
				t.Fatal(err)
			}
			if r2.Cached {
				t.Errorf("Ensure used the broken entry")
			}
			if _, ok := Cached(s, WithCacheDir(dir)); !ok {
				t.Errorf("not cached after the rebuild")
			}
		})
	}
}

// A cancelled build leaves nothing behind that counts as built.
func TestEnsureCancelledLeavesNoModel(t *testing.T) {
	dir := t.TempDir()
	s, _ := Lookup("deit-tiny")
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Ensure(ctx, s, WithCacheDir(dir), WithProgress(func(p Progress) {
		if p.Stage == StageWeights {
			cancel()
		}
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, ok := Cached(s, WithCacheDir(dir)); ok {
		t.Errorf("cancelled build counts as cached")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
}

// Large weights go to an external data file, listed in the manifest.
func TestEnsureExternalData(t *testing.T) {
	dir := t.TempDir()
	s, _ := Lookup("mobilevit-xxs")
	r, err := Ensure(context.Background(), s, WithCacheDir(dir), WithExternalData(ExternalAlways))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Manifest.External || len(r.Manifest.Files) != 2 || r.Manifest.Files[1].Name != DataFile {
		t.Fatalf("manifest %+v", r.Manifest)
	}
	data, err := os.Stat(filepath.Join(filepath.Dir(r.Path), DataFile))
	if err != nil || data.Size() < 4*1_200_000 || r.Bytes < 4*1_269_968 {
		t.Errorf("data file: %v, %v", data, err)
	}
	// The automatic choice: vit-base-16 (346 MB) and deit-tiny (23 MB) are
	// external, mobilenet-v2 (14 MB) is not.
	for name, want := range map[string]bool{"vit-base-16": true, "deit-tiny": true, "mobilenet-v2": false} {
		s, _ := Lookup(name)
		if a, _ := Analyze(s); newOptions(nil).externalData(a.WeightBytes) != want {
			t.Errorf("%s: external data %v, want %v", name, !want, want)
		}
	}
	// ExternalNever writes one file.
	r, err = Ensure(context.Background(), s, WithCacheDir(dir), WithExternalData(ExternalNever))
	if err != nil {
		t.Fatal(err)
	}
	if r.Manifest.External || len(r.Manifest.Files) != 1 {
		t.Errorf("ExternalNever: manifest %+v", r.Manifest)
	}
}

// TestRemoveStale: a build directory whose process is gone (its owner file
// no longer locked: killed, crashed) is removed at once; one whose builder
// still runs is kept however old; one without an owner file (older
// quantscope) after 24 h.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, ".x.tmp-1")
	fresh := filepath.Join(dir, ".y.tmp-2")
	orphan := filepath.Join(dir, ".z.tmp-3")
	keep := filepath.Join(dir, "deit-tiny-224px-opset17-abc")
	for _, d := range []string{old, fresh, keep, orphan} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// What a killed build leaves: an owner file nobody holds.
	os.WriteFile(filepath.Join(orphan, tempdir.OwnerFile), []byte(`{"pid":999999}`), 0o644)
	live, err := tempdir.New(dir, ".w.tmp-")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()
	past := time.Now().Add(-48 * time.Hour)
	for _, d := range []string{old, keep, live.Path} {
		os.Chtimes(d, past, past)
	}
	removeStale(dir)
	for d, want := range map[string]bool{old: false, fresh: true, keep: true, orphan: false, live.Path: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{"vit-base-16": "vit-base-16", "a/b c": "a_b_c", "..": "m..", "": "m"} {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// Concurrent requests for one model build it once.
func TestEnsureConcurrentCallersBuildOnce(t *testing.T) {
	dir := t.TempDir()
	s, _ := Lookup("mobilevit-xxs")
	const n = 4
	results := make(chan Resolved, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			r, err := Ensure(context.Background(), s, WithCacheDir(dir))
			results <- r
			errs <- err
		}()
	}
	built := 0
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if r := <-results; !r.Cached {
			built++
		}
	}
	if built != 1 {
		t.Errorf("%d of %d concurrent calls built the model, want 1", built, n)
	}
}
