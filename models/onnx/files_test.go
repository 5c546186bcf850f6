package onnx

import (
	"os"
	"path/filepath"
	"testing"
)

// A derived file goes beside its model, or under the user cache directory
// when the model's directory cannot be written (here: it does not exist;
// chmod does not stop root, who runs CI).
func TestDerivedPath(t *testing.T) {
	dir := t.TempDir()
	got, err := DerivedPath(filepath.Join(dir, "vit.onnx"), "int8.abc", "variants")
	if err != nil || got != filepath.Join(dir, "vit.int8.abc.onnx") {
		t.Errorf("writable: %q, %v", got, err)
	}
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	got, err = DerivedPath(filepath.Join(dir, "gone", "model.onnx"), "opt.123", "optimized")
	want := filepath.Join(cache, "quantscope", "optimized", "model.opt.123.onnx")
	if err != nil || got != want {
		t.Errorf("unwritable: %q, %v; want %q", got, err, want)
	}
	if st, err := os.Stat(filepath.Dir(want)); err != nil || !st.IsDir() {
		t.Errorf("cache directory not created: %v", err)
	}
}
