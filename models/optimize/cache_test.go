package optimize_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
)

// Ensure optimizes once and then reuses the file; a different option set
// or a changed source gets a new key; a model nothing matches in is
// returned as it is, with only the report cached.
func TestEnsure(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "vit.onnx")
	if err := onnx.Save(buildTiny(t, familyCases()[0]), src, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	first, err := optimize.Ensure(ctx, src, optimize.Default())
	if err != nil {
		t.Fatal(err)
	}
	if first.Cached || first.Path == src || first.Report.Count(optimize.Attention) != 2 {
		t.Fatalf("first call: %+v %s", first, first.Report)
	}
	m, err := onnx.Load(first.Path)
	if err != nil {
		t.Fatal(err)
	}
	if ops(m)["com.microsoft.MultiHeadAttention"] != 2 {
		t.Errorf("cached file ops %v", ops(m))
	}
	again, err := optimize.Ensure(ctx, src, optimize.Default())
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Path != first.Path || again.Report.String() != first.Report.String() {
		t.Errorf("second call: %+v", again)
	}

	noAttn := optimize.Default()
	noAttn.Disable = []optimize.Pattern{optimize.Attention}
	other, err := optimize.Ensure(ctx, src, noAttn)
	if err != nil {
		t.Fatal(err)
	}
	if other.Path == first.Path || other.Report.Count(optimize.Attention) != 0 {
		t.Errorf("options not in the key: %s %s", other.Path, other.Report)
	}

	// A stale report (older optimizer) is not trusted.
	stale := `{"version":"optimize/0","matched":{"attention":2}}`
	if err := os.WriteFile(first.Path+".report.json", []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := optimize.Ensure(ctx, src, optimize.Default()); err != nil || r.Cached || r.Report.Version != optimize.Version {
		t.Errorf("stale report reused: %+v %v", r, err)
	}

	// Rewriting the source changes its hash and so the key.
	if err := onnx.Save(buildTiny(t, familyCases()[3]), src, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	changed, err := optimize.Ensure(ctx, src, optimize.Default())
	if err != nil {
		t.Fatal(err)
	}
	if changed.Cached || changed.Path == first.Path || changed.Report.Count(optimize.LinearScale) == 0 {
		t.Errorf("changed source: %+v %s", changed, changed.Report)
	}

	cnn := filepath.Join(dir, "cnn.onnx")
	if err := onnx.Save(buildTiny(t, familyCases()[7]), cnn, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		r, err := optimize.Ensure(ctx, cnn, optimize.Default())
		if err != nil {
			t.Fatal(err)
		}
		if r.Path != cnn || r.Report.Changed() || r.Cached != (i == 1) {
			t.Errorf("cnn call %d: %+v", i, r)
		}
	}
	if _, err := optimize.Ensure(ctx, filepath.Join(dir, "missing.onnx"), optimize.Default()); err == nil {
		t.Error("no error for a missing model")
	}
	// Everything derived went to the cache: the models' folder holds the
	// two models and nothing else.
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("the models' folder gained files: %v", entries)
	}
	root, _ := onnx.CacheRoot()
	if !strings.HasPrefix(first.Path, filepath.Join(root, "optimized")+"/") {
		t.Errorf("optimized copy at %s, want it under %s", first.Path, filepath.Join(root, "optimized"))
	}
}
