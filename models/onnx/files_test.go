package onnx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A derived file goes under the cache root, in a directory named by the
// source's content hash, never beside its model; the directory is created.
func TestDerivedPath(t *testing.T) {
	dir := t.TempDir()
	cache := t.TempDir()
	t.Setenv(EnvCacheDir, "")
	t.Setenv("XDG_CACHE_HOME", cache)
	hash := strings.Repeat("ab", 32)
	got, err := DerivedPath(filepath.Join(dir, "vit.onnx"), hash, "int8.abc", "variants")
	want := filepath.Join(cache, "quantscope", "variants", hash[:16], "vit.int8.abc.onnx")
	if err != nil || got != want {
		t.Errorf("DerivedPath = %q, %v; want %q", got, err, want)
	}
	if st, err := os.Stat(filepath.Dir(want)); err != nil || !st.IsDir() {
		t.Errorf("cache directory not created: %v", err)
	}
	root := t.TempDir()
	t.Setenv(EnvCacheDir, root)
	got, err = DerivedPath(filepath.Join(dir, "gone", "model.onnx"), hash, "opt.123", "optimized")
	want = filepath.Join(root, "optimized", hash[:16], "model.opt.123.onnx")
	if err != nil || got != want {
		t.Errorf("with %s: %q, %v; want %q", EnvCacheDir, got, err, want)
	}
	if _, err := DerivedPath("m.onnx", "abc", "x", "variants"); err == nil {
		t.Error("a short hash was accepted")
	}
}

// ModelHash remembers its result under the cache root, not beside the
// model, and notices a changed file.
func TestModelHashRemembersInTheCache(t *testing.T) {
	t.Setenv(EnvCacheDir, t.TempDir())
	dir := t.TempDir()
	src := filepath.Join(dir, "relu.onnx")
	save := func(op string) {
		b := NewBuilder("g", 17)
		x := b.AddInput("x", Float, Dims(1, 4))
		b.AddNode(op, []string{x}, []string{"y"})
		b.AddOutput("y", Float, Dims(1, 4))
		m, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		if err := Save(m, src, SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	save("Relu")
	sum, err := ModelHash(src)
	if err != nil || len(sum) != 64 {
		t.Fatalf("ModelHash = %q, %v", sum, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the model's folder gained files: %v", entries)
	}
	side, err := HashCachePath(src)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := os.ReadFile(side); err != nil || !strings.HasPrefix(string(raw), sum+"\n") {
		t.Errorf("remembered hash %q, %v", raw, err)
	}
	if again, err := ModelHash(src); err != nil || again != sum {
		t.Errorf("second ModelHash = %q, %v; want %q", again, err, sum)
	}
	save("Sigmoid")
	if changed, err := ModelHash(src); err != nil || changed == sum {
		t.Errorf("hash after the model changed: %q, %v (was %q)", changed, err, sum)
	}
}
