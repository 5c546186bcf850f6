package quant

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/quant/quanttest"
)

// TestMain gives the run a cache of its own: variants go to the cache
// (onnx.DerivedPath), so no test finds another run's variant or writes to
// the user's cache.
func TestMain(m *testing.M) {
	cache, err := os.MkdirTemp("", "quantscope-quant-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(onnx.EnvCacheDir, cache)
	code := m.Run()
	os.RemoveAll(cache)
	os.Exit(code)
}

func saveTiny(t *testing.T, dir string, seed uint64, external bool) string {
	t.Helper()
	cfg := quanttest.Tiny
	cfg.Seed = seed
	m, err := quanttest.ViT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tiny.onnx")
	if err := onnx.Save(m, path, onnx.SaveOptions{ExternalData: external, SizeThreshold: 256}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVariantCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := saveTiny(t, dir, 1, false)
	int4 := MustParseSpec("int4:block=64")

	first, err := Variant(ctx, src, int4, Options{})
	if err != nil {
		t.Fatal(err)
	}
	root, _ := onnx.CacheRoot()
	if first.Cached || !strings.HasPrefix(first.Path, filepath.Join(root, "variants")+"/") || !strings.HasPrefix(filepath.Base(first.Path), "tiny.int4-block64.") {
		t.Errorf("first build: %+v; want it under %s", first, filepath.Join(root, "variants"))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the model's folder gained files: %v", entries)
	}
	if _, err := onnx.Load(first.Path); err != nil {
		t.Fatalf("cached variant does not load: %v", err)
	}
	second, err := Variant(ctx, src, int4, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !second.Cached || second.Path != first.Path || second.Report.NodesConverted != first.Report.NodesConverted ||
		second.Report.Count("MatMul", PrecInt4) != 8 {
		t.Errorf("second call: cached %v path %s report %+v", second.Cached, second.Path, second.Report)
	}

	keyOf := func(spec string, opts Options) string {
		p, err := VariantPath(src, MustParseSpec(spec), opts)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := keyOf("int4:block=64", Options{})
	if base != first.Path {
		t.Errorf("VariantPath %s ≠ built %s", base, first.Path)
	}
	for name, other := range map[string]string{
		"another spec":    keyOf("int4:block=64,asym", Options{}),
		"an exclusion":    keyOf("int4:block=64", Options{Exclude: []string{"head"}}),
		"same spec, int8": keyOf("int8", Options{}),
	} {
		if other == base {
			t.Errorf("%s maps to the same variant file", name)
		}
	}
	if keyOf("int4:sym,block=64,accuracy_level=4", Options{}) != base {
		t.Error("an equivalent spec spelling maps to another file")
	}
	if keyOf("int8", Options{Exclude: []string{"a", "b"}}) != keyOf("int8", Options{Exclude: []string{"b", "a", "a"}}) {
		t.Error("exclusion order changes the key")
	}

	// A changed model gets a new variant.
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	saveTiny(t, dir, 2, false)
	if keyOf("int4:block=64", Options{}) == base {
		t.Error("a changed source model maps to the old variant")
	}

	// A report from another quantizer version is not trusted.
	if err := os.WriteFile(first.Path+".report.json", []byte(`{"quantizer_version":"quant/0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := readCachedReport(first.Path); ok {
		t.Error("report of another quantizer version accepted")
	}
}

func TestVariantExternalDataAndFP32(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := saveTiny(t, dir, 1, true)
	h1, err := onnx.ModelHash(src)
	if err != nil {
		t.Fatal(err)
	}
	// The data file is part of the hash.
	data := src + ".data"
	raw, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	if err := os.WriteFile(data, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	h2, err := onnx.ModelHash(src)
	if err != nil || h2 == h1 {
		t.Errorf("hash after changing the data file: %s (was %s), %v", h2, h1, err)
	}
	v, err := Variant(ctx, src, MustParseSpec("fp32"), Options{})
	if err != nil || v.Path != src || v.Report.NodesConverted != 0 || v.Report.FileBytesBefore == 0 {
		t.Errorf("fp32 variant: %+v, %v", v, err)
	}
	r, err := Variant(ctx, src, MustParseSpec("int8"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.Path + ".data"); err != nil {
		t.Errorf("variant of an external-data model has no data file: %v", err)
	}
}

func TestVariantNothingConvertedCachesNothing(t *testing.T) {
	dir := t.TempDir()
	b := onnx.NewBuilder("g", 17)
	x := b.AddInput("x", onnx.Float, onnx.Dims(1, 3, 8, 8))
	b.AddNode("Relu", []string{x}, []string{"y"})
	b.AddOutput("y", onnx.Float, onnx.Dims(1, 3, 8, 8))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "relu.onnx")
	if err := onnx.Save(m, src, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Variant(context.Background(), src, MustParseSpec("int4"), Options{}); !errors.Is(err, ErrNothingConverted) {
		t.Errorf("err = %v, want ErrNothingConverted", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "int4") {
			t.Errorf("%s written for a variant that converted nothing", e.Name())
		}
	}
}

// tinyFS mounts a tmpfs of size bytes at a new directory (root only;
// skipped where mounting is not allowed) and unmounts it after the test.
func tinyFS(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// TestVariantOfModelInFullDirectory: the model's directory (a real file
// system, full but for a few KiB) is not where the variant goes: it is in
// the cache, found there the next time, and the model's directory is left
// as it was.
func TestVariantOfModelInFullDirectory(t *testing.T) {
	dir := tinyFS(t, 256<<10)
	src := saveTiny(t, dir, 1, false)
	// Fill what is left but 8 KiB.
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, free-8<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(dir)
	v, err := Variant(context.Background(), src, MustParseSpec("int8"), Options{})
	if err != nil {
		t.Fatalf("variant of a model in a full directory: %v", err)
	}
	cache, _ := onnx.CacheRoot()
	if !strings.HasPrefix(v.Path, filepath.Join(cache, "variants")) {
		t.Errorf("variant at %s, want it under the cache %s", v.Path, cache)
	}
	if after, _ := os.ReadDir(dir); len(after) != len(before) {
		t.Errorf("the full directory gained files: %v", after)
	}
	again, err := Variant(context.Background(), src, MustParseSpec("int8"), Options{})
	if err != nil || !again.Cached || again.Path != v.Path {
		t.Errorf("second call: %+v, %v; want the cached copy", again, err)
	}
}

// readOnlyDir returns a directory holding what fill wrote, in which no
// file can then be created. Root (CI) ignores permission bits, so there it
// is a tmpfs remounted read-only (skipped where mounting is not allowed);
// otherwise the directory is chmod 0555.
func readOnlyDir(t *testing.T, fill func(dir string)) string {
	t.Helper()
	if os.Geteuid() != 0 {
		dir := t.TempDir()
		fill(dir)
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return dir
	}
	dir := tinyFS(t, 4<<20)
	fill(dir)
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	return dir
}

// TestVariantOfModelInReadOnlyDirectory: a model in a folder the user
// cannot write (a shared models directory, a read-only mount) gets its
// hash, fused copy and variants all the same, in the cache.
func TestVariantOfModelInReadOnlyDirectory(t *testing.T) {
	var src string
	dir := readOnlyDir(t, func(dir string) { src = saveTiny(t, dir, 3, true) })
	if f, err := os.Create(filepath.Join(dir, "probe")); err == nil {
		f.Close()
		t.Fatal("the read-only directory took a file")
	}
	before, _ := os.ReadDir(dir)
	v, err := Variant(context.Background(), src, MustParseSpec("int8"), Options{})
	if err != nil {
		t.Fatalf("variant of a model in a read-only directory: %v", err)
	}
	cache, _ := onnx.CacheRoot()
	if !strings.HasPrefix(v.Path, cache+"/") {
		t.Errorf("variant at %s, want it under the cache %s", v.Path, cache)
	}
	if _, err := onnx.Load(v.Path); err != nil {
		t.Errorf("the variant does not load: %v", err)
	}
	if _, err := os.Stat(v.Path + ".report.json"); err != nil {
		t.Errorf("no report beside the cached variant: %v", err)
	}
	if after, _ := os.ReadDir(dir); len(after) != len(before) {
		t.Errorf("the read-only directory changed: %v → %v", before, after)
	}
}
