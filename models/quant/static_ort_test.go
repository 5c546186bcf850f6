package quant_test

import (
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/quant/quanttest"
	"github.com/quantscope/quantscope/profiler/ort"
)

func calibOptions() quant.Options {
	return quant.Options{Calibration: quant.Calibration{Runner: ort.CalibRunner{Config: ort.SessionConfig{IntraOpThreads: 1}}}}
}

// TestStaticOnORT calibrates a small ViT with every method and runs the
// QDQ result.
func TestStaticOnORT(t *testing.T) {
	requireORT(t)
	cfg := quanttest.Small
	src := buildViT(t, cfg)
	inputs := evalInputs(cfg, 32)
	ref := runModel(t, saveModel(t, src, "fp32.onnx"), inputs, vitShape(cfg), 8)
	tests := []struct {
		spec      string
		minCosine float64
	}{
		{"int8-static:samples=8", 0.995},
		{"int8-static:calib=minmax,samples=8", 0.99},
		{"int8-static:calib=entropy,samples=8", 0.99},
		{"int8-static:act=u8,samples=8", 0.99},
		{"int8-static:act=s8,samples=8", 0.99},
		{"int8-static:per-tensor,samples=8", 0.99},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			m := src.Clone()
			r, err := quant.Apply(context.Background(), m, quant.MustParseSpec(tc.spec), calibOptions())
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if r.Calibration == nil || r.Calibration.Samples != 8 || r.Calibration.Tensors == 0 {
				t.Errorf("calibration info %+v", r.Calibration)
			}
			if got := r.Count("MatMul", quant.PrecInt8); got != 4*cfg.Depth {
				t.Errorf("%d int8 MatMuls, want %d", got, 4*cfg.Depth)
			}
			got := runModel(t, saveModel(t, m, "variant.onnx"), inputs, vitShape(cfg), 8)
			f, err := fidelity.Compare(ref, got)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", tc.spec, f)
			if f.CosineMean < tc.minCosine {
				t.Errorf("fidelity %s, want cosine ≥ %g", f, tc.minCosine)
			}
		})
	}
}

// TestCalibrationFolder calibrates from a folder holding PNGs, a JPEG and
// a corrupt file: the corrupt one is skipped with a warning, the others
// are used.
func TestCalibrationFolder(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	writeTestImage(t, filepath.Join(dir, "a.png"), 40, 30, color.RGBA{200, 30, 30, 255}, false)
	writeTestImage(t, filepath.Join(dir, "b.png"), 30, 50, color.RGBA{20, 160, 60, 255}, false)
	writeTestImage(t, filepath.Join(dir, "c.jpg"), 64, 64, color.RGBA{90, 90, 220, 255}, true)
	if err := os.WriteFile(filepath.Join(dir, "broken.jpg"), []byte("\xff\xd8\xff garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	var warnings []string
	opts := calibOptions()
	opts.Calibration.Dir = dir
	opts.Warn = func(msg string) { warnings = append(warnings, msg) }
	m := buildViT(t, quanttest.Tiny)
	r, err := quant.Apply(context.Background(), m, quant.MustParseSpec("int8-static:samples=10"), opts)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Calibration
	if c.Samples != 3 || c.Source != dir || len(c.Skipped) != 1 || c.Skipped[0] != "broken.jpg" {
		t.Errorf("calibration %+v, want 3 samples from %s and broken.jpg skipped", c, dir)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "broken.jpg") || len(r.Warnings) != 1 {
		t.Errorf("warnings %q (report %q), want one about broken.jpg", warnings, r.Warnings)
	}
	// Only corrupt files: an error, not a model calibrated on nothing.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "x.png"), []byte("no"), 0o644)
	opts.Calibration.Dir = bad
	if _, err := quant.Apply(context.Background(), buildViT(t, quanttest.Tiny), quant.MustParseSpec("int8-static"), opts); err == nil {
		t.Error("calibration on a folder of corrupt files succeeded")
	}
}

// TestCalibrationOneSample calibrates on a single synthetic image, on a
// model with a fixed batch of 2 (the sample is repeated to fill it).
func TestCalibrationOneSample(t *testing.T) {
	requireORT(t)
	for _, batch := range []int{0, 2} {
		cfg := quanttest.Tiny
		cfg.Batch = batch
		m := buildViT(t, cfg)
		r, err := quant.Apply(context.Background(), m, quant.MustParseSpec("int8-static:samples=1"), calibOptions())
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		if r.Calibration.Samples != max(1, batch) || r.NodesConverted != 10 {
			t.Errorf("batch %d: %d samples, %d converted", batch, r.Calibration.Samples, r.NodesConverted)
		}
		in := evalInputs(cfg, max(1, batch))
		runModel(t, saveModel(t, m, "one.onnx"), in, vitShape(cfg), max(1, batch))
	}
}

// TestStaticNeedsRunner: int8-static without a runtime is an error.
func TestStaticNeedsRunner(t *testing.T) {
	_, err := quant.Apply(context.Background(), buildViT(t, quanttest.Tiny), quant.MustParseSpec("int8-static"), quant.Options{})
	if err == nil || !strings.Contains(err.Error(), "calibration runner") {
		t.Errorf("err = %v, want a missing calibration runner", err)
	}
}

func writeTestImage(t *testing.T, path string, w, h int, c color.Color, asJPEG bool) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if (x/4+y/4)%2 == 0 {
				img.Set(x, y, c)
			} else {
				img.Set(x, y, color.White)
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if asJPEG {
		err = jpeg.Encode(f, img, nil)
	} else {
		err = png.Encode(f, img)
	}
	if err != nil {
		t.Fatal(err)
	}
}
