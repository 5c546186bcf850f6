package evaluate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantscope/quantscope/models/imageset"
	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/profiler/ort"
)

func requireORT(t *testing.T) {
	t.Helper()
	if _, err := ort.Init(""); err != nil {
		if os.Getenv("QUANTSCOPE_REQUIRE_ORT") != "" {
			t.Fatalf("ONNX Runtime required but not loaded: %v", err)
		}
		t.Skipf("ONNX Runtime not installed (run `make setup`): %v", err)
	}
}

// colourModel scores 4 classes from an image's mean colour: class c's
// logit is w[c]·(mean R, G, B) — a real ONNX graph (GlobalAveragePool,
// Flatten, MatMul) whose answers differ between images.
func colourModel(t *testing.T, size int) string {
	t.Helper()
	b := onnx.NewBuilder("colour", 17)
	x := b.AddInput("pixel_values", onnx.Float, onnx.Dims("batch", 3, size, size))
	w := b.AddInitializerFloat32("w", []int64{3, 4}, []float32{
		1, -1, 0.3, 0,
		0, 1, -0.5, 0.2,
		-1, 0, 0.4, 0.1,
	})
	p := b.AddNode("GlobalAveragePool", []string{x}, []string{"pooled"})
	f := b.AddNode("Flatten", []string{p.Out()}, []string{"flat"})
	b.AddNode("MatMul", []string{f.Out(), w}, []string{"logits"})
	b.AddOutput("logits", onnx.Float, onnx.Dims("batch", 4))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "colour.onnx")
	if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadSet(t *testing.T, p imageset.Preprocess) *imageset.Set {
	t.Helper()
	f, err := imageset.Scan("../../models/imageset/testdata/folder", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := imageset.Load(context.Background(), f, p, imageset.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Accuracy through Run and Score equals an independent count: each image
// decoded and preprocessed on its own, run alone through a plain session,
// its arg-max compared with its label.
func TestRunEqualsIndependentCount(t *testing.T) {
	requireORT(t)
	pre := imageset.Preprocess{Height: 16, Width: 16, CropPct: 0.875, Interpolation: imageset.Bicubic,
		Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.25, 0.25, 0.25}}
	set := loadSet(t, pre)
	path := colourModel(t, 16)
	cfg := ort.SessionConfig{IntraOpThreads: 1}

	// Independent: file by file, batch 1, ort.Session.
	sess, err := ort.NewSession(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var top1, top5 int
	for i, name := range set.Names {
		img, err := imageset.DecodeFile(filepath.Join(set.Folder, name))
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, pre.Pixels())
		pre.Normalize(x, pre.Apply(img.RGB))
		out, err := sess.RunFloat32(ort.Tensor{Shape: []int64{1, 3, 16, 16}, Data: x})
		if err != nil {
			t.Fatal(err)
		}
		logits := out[0].Data
		best := 0
		for c, v := range logits {
			if v > logits[best] {
				best = c
			}
		}
		if int32(best) == set.Labels[i] {
			top1++
		}
		top5++ // 4 classes: always in the top 5
	}

	for _, batch := range []int{1, 4, 5} { // 11 images: padded last batches
		bd, err := ort.NewBound(path, cfg, batch, 1)
		if err != nil {
			t.Fatal(err)
		}
		var calls int
		preds, err := Run(context.Background(), bd, batch, set, 0, func(done, total int) { calls++ })
		bd.Close()
		if err != nil {
			t.Fatal(err)
		}
		res, err := Score(set, preds, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Images != set.Len() || res.Top1 != top1 || res.Top5 != top5 || calls == 0 {
			t.Errorf("batch %d: %+v, independent count top-1 %d top-5 %d of %d", batch, res.Counts, top1, top5, set.Len())
		}
		if res.Skipped != 1 || res.Classes != 4 || res.Set != set.Key {
			t.Errorf("batch %d: record %+v", batch, res)
		}
	}
	if top1 == 0 || top1 == set.Len() {
		t.Logf("the colour model got %d of %d right: a weak check", top1, set.Len())
	}
}

// A variant paired with itself agrees everywhere; with a limit, only the
// first images count.
func TestScorePairsAndLimits(t *testing.T) {
	requireORT(t)
	pre := imageset.Preprocess{Height: 16, Width: 16, CropPct: 1, Interpolation: imageset.Bilinear, Std: [3]float32{1, 1, 1}}
	set := loadSet(t, pre)
	bd, err := ort.NewBound(colourModel(t, 16), ort.SessionConfig{IntraOpThreads: 1}, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer bd.Close()
	ref, err := Run(context.Background(), bd, 3, set, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Score(set, ref, ref)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := res.Top1Diff()
	if d.Diff != 0 || d.Significant || res.VsFP32.Top1.VariantOnly+res.VsFP32.Top1.RefOnly != 0 {
		t.Errorf("self-pairing: %+v", res.VsFP32)
	}
	few, err := Run(context.Background(), bd, 3, set, 4, nil)
	if err != nil || few.Len() != 4 {
		t.Fatalf("limit 4: %v images, %v", few.Len(), err)
	}
	if _, err := Score(set, few, ref); err == nil {
		t.Error("pairing 4 images with 11 succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, bd, 3, set, 0, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Run = %v", err)
	}
}

// A model whose input is not the set's size, or with fewer outputs than
// classes, is refused with a reason.
func TestRunRefusesMismatches(t *testing.T) {
	requireORT(t)
	pre := imageset.Preprocess{Height: 16, Width: 16, CropPct: 1, Interpolation: imageset.Bilinear, Std: [3]float32{1, 1, 1}}
	set := loadSet(t, pre)
	bd, err := ort.NewBound(colourModel(t, 24), ort.SessionConfig{IntraOpThreads: 1}, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer bd.Close()
	if _, err := Run(context.Background(), bd, 2, set, 0, nil); err == nil {
		t.Error("24 px model ran on a 16 px set")
	}
	set.Classes = append(set.Classes, "a", "b", "c")
	bd16, _ := ort.NewBound(colourModel(t, 16), ort.SessionConfig{IntraOpThreads: 1}, 2, 1)
	defer bd16.Close()
	if _, err := Run(context.Background(), bd16, 2, set, 0, nil); err == nil {
		t.Error("4-output model ran against 7 classes")
	}
}
