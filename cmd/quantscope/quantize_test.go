package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/quant/quanttest"
	"github.com/quantscope/quantscope/profiler/ort"
)

// quantizeNeedsORT skips when ONNX Runtime is missing, or fails under
// `make test` (QUANTSCOPE_REQUIRE_ORT set).
func quantizeNeedsORT(t *testing.T) {
	t.Helper()
	if _, err := ort.Init(""); err != nil {
		if os.Getenv("QUANTSCOPE_REQUIRE_ORT") != "" {
			t.Fatalf("ONNX Runtime required but not loaded: %v", err)
		}
		t.Skipf("ONNX Runtime not installed: %v", err)
	}
}

// tinyViTFile writes quanttest's tiny ViT into dir.
func tinyViTFile(t *testing.T, dir string) string {
	t.Helper()
	m, err := quanttest.ViT(quanttest.Tiny)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tiny.onnx")
	if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

// quantizeCLI runs `quantscope quantize args...` in process.
func quantizeCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := newRootCmd(&stdout, &stderr)
	root.SetArgs(append([]string{"quantize"}, args...))
	err := root.ExecuteContext(context.Background())
	return stdout.String(), stderr.String(), err
}

func TestQuantizeCheckAndCache(t *testing.T) {
	quantizeNeedsORT(t)
	t.Setenv(onnx.EnvCacheDir, t.TempDir())
	dir := t.TempDir()
	model := tinyViTFile(t, dir)
	args := []string{"--model", model, "--precision", "int8", "--optimize=false", "--check", "--check-samples", "8", "--batch", "4", "--threads", "1"}
	out, _, err := quantizeCLI(t, args...)
	if err != nil {
		t.Fatalf("quantize: %v", err)
	}
	for _, want := range []string{"precision int8", "MatMul", "int8", "weights: 8-bit", "file size:", "kept in fp32: 4 × MatMul: activation × activation (attention)",
		"fidelity vs fp32 on 8 seeded synthetic images", "cosine mean", "top-1 agreement", "top-5", "max abs error", "SQNR"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "(cached)") {
		t.Errorf("first run claims a cached variant:\n%s", out)
	}
	if beside, _ := filepath.Glob(filepath.Join(dir, "tiny.*")); len(beside) != 1 {
		t.Errorf("files written beside the model: %v", beside)
	}
	root, _ := onnx.CacheRoot()
	variants, _ := filepath.Glob(filepath.Join(root, "variants", "*", "tiny.int8.*.onnx"))
	if len(variants) != 1 {
		t.Fatalf("variants in the cache: %v", variants)
	}
	again, _, err := quantizeCLI(t, args[:5]...)
	if err != nil || !strings.Contains(again, "(cached)") || !strings.Contains(again, variants[0]) {
		t.Errorf("second run: %v\n%s", err, again)
	}
	// --json carries the fidelity under the names results.jsonl uses.
	js, _, err := quantizeCLI(t, append(args, "--json")...)
	if err != nil {
		t.Fatalf("--check --json: %v", err)
	}
	var res struct {
		Cached      bool
		Fidelity    map[string]any
		CheckInputs string `json:"check_inputs"`
		Weights     string
	}
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, js)
	}
	// The inputs are the one definition the benchmark worker uses too, and
	// the result says which they were.
	want := quant.NewCheckInputs(8, quant.DefaultCheckSeed, "imagenet", quant.ImageNetPreprocess.Mean, quant.ImageNetPreprocess.Std).String()
	if res.CheckInputs != want || res.Fidelity["inputs"] != want || res.Weights != "trained" {
		t.Errorf("--check inputs %q (fidelity %v), weights %q; want %q, trained (an imported model)", res.CheckInputs, res.Fidelity["inputs"], res.Weights, want)
	}
	if !strings.Contains(out, "decisive top-1") || !strings.Contains(out, "FP32 median margin") {
		t.Errorf("output lacks decisive top-1 and the margin:\n%s", out)
	}
	for _, k := range []string{"samples", "cosine_mean", "cosine_min", "top1", "top5", "max_abs_error", "mean_abs_error", "sqnr_db", "ref_median_margin"} {
		if _, ok := res.Fidelity[k]; !ok {
			t.Errorf("--json fidelity lacks %q: %v", k, res.Fidelity)
		}
	}
	var f fidelity.Result
	if b, _ := json.Marshal(res.Fidelity); json.Unmarshal(b, &f) != nil || !res.Cached || f.Samples != 8 || f.CosineMean < 0.9 || f.CosineMean > 1 || f.Top1 < 0 || f.Top5 < f.Top1 {
		t.Errorf("--check --json: cached %v, fidelity %+v", res.Cached, f)
	}
}

func TestQuantizeOutJSON(t *testing.T) {
	dir := t.TempDir()
	model := tinyViTFile(t, dir)
	dst := filepath.Join(dir, "out", "tiny-int4.onnx")
	out, _, err := quantizeCLI(t, "--model", model, "--precision", "int4:block=64,asym", "--out", dst, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Precision string
		Variant   string
		Cached    bool
		Optimized *optimize.Report
		Report    quant.Report
		Fidelity  *fidelity.Result
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if res.Precision != "int4:block=64,asym" || res.Variant != dst || res.Cached || res.Fidelity != nil {
		t.Errorf("result %+v", res)
	}
	// Fused first (the default): attention's q, k and v projections are
	// three MatMuls per block feeding MultiHeadAttention, and all twelve
	// linears are 4-bit.
	if res.Optimized == nil || res.Optimized.Count(optimize.Attention) != 2 {
		t.Errorf("optimizer report %+v", res.Optimized)
	}
	if res.Report.Count("MatMul", quant.PrecInt4) != 12 || res.Report.Count("com.microsoft.MultiHeadAttention", quant.PrecFP32) != 2 ||
		res.Report.WeightBytes[4] == 0 || res.Report.FileBytesAfter == 0 {
		t.Errorf("report %+v", res.Report)
	}
	if _, err := onnx.Load(dst); err != nil {
		t.Errorf("--out file: %v", err)
	}
}

func TestQuantizeStaticFolderAndExclude(t *testing.T) {
	quantizeNeedsORT(t)
	dir := t.TempDir()
	model := tinyViTFile(t, dir)
	images := filepath.Join(dir, "images")
	os.Mkdir(images, 0o755)
	for i, c := range []color.RGBA{{200, 10, 10, 255}, {10, 200, 10, 255}} {
		img := image.NewRGBA(image.Rect(0, 0, 48, 40))
		for p := 0; p < len(img.Pix); p += 4 {
			img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = c.R, c.G, c.B, uint8(p%251)
		}
		f, _ := os.Create(filepath.Join(images, string(rune('a'+i))+".png"))
		png.Encode(f, img)
		f.Close()
	}
	os.WriteFile(filepath.Join(images, "corrupt.png"), []byte("\x89PNG broken"), 0o644)
	out, errOut, err := quantizeCLI(t, "--model", model, "--precision", "int8-static:samples=4", "--calib-dir", images,
		"--exclude", "head", "--threads", "1", "--out", filepath.Join(dir, "static.onnx"))
	if err != nil {
		t.Fatalf("quantize: %v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "warning: skipping calibration image corrupt.png") {
		t.Errorf("stderr lacks the corrupt-image warning: %q", errOut)
	}
	if !strings.Contains(out, "2 samples from "+images) || !strings.Contains(out, "Gemm: excluded") {
		t.Errorf("output:\n%s", out)
	}
}

func TestQuantizeErrors(t *testing.T) {
	dir := t.TempDir()
	model := tinyViTFile(t, dir)
	b := onnx.NewBuilder("relu", 17)
	x := b.AddInput("x", onnx.Float, onnx.Dims("n", 3, 8, 8))
	b.AddNode("Relu", []string{x}, []string{"y"})
	b.AddOutput("y", onnx.Float, onnx.Dims("n", 3, 8, 8))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	relu := filepath.Join(dir, "relu.onnx")
	if err := onnx.Save(m, relu, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		is   error
		want string
	}{
		{"bad spec", []string{"--model", model, "--precision", "int4:block=7"}, quant.ErrSpec, "block"},
		{"nothing converted", []string{"--model", relu, "--precision", "int8"}, quant.ErrNothingConverted, "nothing was converted"},
		{"calib-dir without int8-static", []string{"--model", model, "--precision", "int8", "--calib-dir", dir}, nil, "int8-static only"},
		{"missing model", []string{"--model", filepath.Join(dir, "nope.onnx"), "--precision", "int8"}, nil, "does not exist"},
		{"fp32 --out", []string{"--model", model, "--precision", "fp32", "--out", filepath.Join(dir, "x.onnx")}, nil, "fp32"},
		{"no precision", []string{"--model", model}, nil, "precision"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := quantizeCLI(t, tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

// --check-dir runs the check on a folder's images: every image that
// decodes counts, a corrupt one is skipped with a warning, --check-samples
// caps the count only when given, and a folder with nothing usable is an
// error naming it.
func TestQuantizeCheckDir(t *testing.T) {
	quantizeNeedsORT(t)
	dir := t.TempDir()
	model := tinyViTFile(t, dir)
	imgs := filepath.Join(dir, "images")
	if err := os.MkdirAll(imgs, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		img := image.NewRGBA(image.Rect(0, 0, 40+i, 36))
		for p := range img.Pix {
			img.Pix[p] = uint8(p*7 + i*31)
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(imgs, fmt.Sprintf("%d.png", i)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(imgs, "9-broken.png"), []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--model", model, "--precision", "int8", "--check-dir", imgs, "--batch", "2", "--threads", "1"}
	out, stderr, err := quantizeCLI(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "fidelity vs fp32 on 5 images from "+imgs) || !strings.Contains(stderr, "skipped 9-broken.png") {
		t.Errorf("check on the folder:\nstdout %s\nstderr %s", out, stderr)
	}
	if out, _, err := quantizeCLI(t, append(args, "--check-samples", "3")...); err != nil || !strings.Contains(out, "fidelity vs fp32 on 3 ") {
		t.Errorf("--check-samples 3: %v\n%s", err, out)
	}
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)
	os.WriteFile(filepath.Join(empty, "x.jpg"), []byte("junk"), 0o644)
	if _, _, err := quantizeCLI(t, "--model", model, "--precision", "int8", "--check-dir", empty); err == nil || !strings.Contains(err.Error(), "none of its 1 images decoded") {
		t.Errorf("folder of junk: %v", err)
	}
}

// TestQuantizeOutNeverOverwritesInput: --out naming the input model by any
// name — the same path, ./path, a symlink, a hard link, or its external
// data file — is refused before anything is written, with or without
// --force, and the FP32 files stay byte for byte. A file that is not a
// variant quantscope wrote needs --force; a variant it wrote is replaced.
func TestQuantizeOutNeverOverwritesInput(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	model := tinyViTFile(t, dir) // dir/tiny.onnx
	m, err := onnx.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	ext := filepath.Join(dir, "ext.onnx")
	if err := onnx.Save(m, ext, onnx.SaveOptions{ExternalData: true, SizeThreshold: 1}); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(model, filepath.Join(dir, "link.onnx")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(model, filepath.Join(dir, "hard.onnx")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	before := map[string]string{model: read(model), ext: read(ext), ext + ".data": read(ext + ".data")}

	for _, tc := range []struct{ model, out string }{
		{model, model},
		{"tiny.onnx", "./tiny.onnx"},
		{model, "sub/../tiny.onnx"},
		{model, "link.onnx"},
		{model, "hard.onnx"},
		{"hard.onnx", model},
		{ext, ext + ".data"}, // the output would replace the weights
		{ext, "ext.onnx"},
	} {
		for _, force := range []bool{false, true} {
			args := []string{"--model", tc.model, "--precision", "int8", "--optimize=false", "--out", tc.out}
			if force {
				args = append(args, "--force")
			}
			_, _, err := quantizeCLI(t, args...)
			if !errors.Is(err, quant.ErrOverwritesInput) || !strings.Contains(err.Error(), "choose another output path") {
				t.Errorf("--model %s --out %s (force %v): %v; want a refusal", tc.model, tc.out, force, err)
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 {
				t.Errorf("--out %s: not exit 2: %v", tc.out, err)
			}
		}
	}
	for p, want := range before {
		if read(p) != want {
			t.Fatalf("%s changed", p)
		}
	}

	// A file of the user's needs --force; a variant quantscope wrote is
	// replaced without it.
	notes := filepath.Join(dir, "notes.onnx")
	os.WriteFile(notes, []byte("my notes"), 0o644)
	if _, _, err := quantizeCLI(t, "--model", model, "--precision", "int8", "--optimize=false", "--out", notes); !errors.Is(err, quant.ErrNotVariant) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("overwrote a user's file without --force: %v", err)
	}
	if read(notes) != "my notes" {
		t.Fatal("notes.onnx changed")
	}
	if _, _, err := quantizeCLI(t, "--model", model, "--precision", "int8", "--optimize=false", "--out", notes, "--force"); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if _, _, err := quantizeCLI(t, "--model", model, "--precision", "int4", "--optimize=false", "--out", notes); err != nil {
		t.Errorf("replacing a variant quantscope wrote: %v", err)
	}
	if read(model) != before[model] {
		t.Fatal("the FP32 model changed")
	}
}
