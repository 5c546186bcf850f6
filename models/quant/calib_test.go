package quant

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestCollectors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	batch := func(n int, outlier float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.Float64()*2 - 1)
		}
		v[0] = outlier
		return v
	}
	tests := []struct {
		name      string
		method    CalibMethod
		symmetric bool
		lo, hi    float32 // expected range
		tol       float32
	}{
		{"minmax keeps the outlier", CalibMinMax, false, -1, 100, 1e-3},
		{"percentile clips it", CalibPercentile, false, -1, 1, 0.15},
		{"percentile symmetric", CalibPercentile, true, -1, 1, 0.15},
		// The outlier coarsens the bins to 1/32, and a window spans at
		// least 128 of them: the range stops at ±2 at best (and KL may
		// prefer a little more); far from the outlier's 100 anyway.
		{"entropy clips it", CalibEntropy, true, -1, 2, 1.05},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCollector(tc.method, tc.symmetric)
			c.add(batch(100000, 0.5))
			c.add(batch(100000, 100)) // forces the histogram to grow ×128
			c.add(batch(100000, -0.9))
			lo, hi := c.rangeOf(99.99)
			if d := math.Max(math.Abs(float64(lo-tc.lo)), math.Abs(float64(hi-tc.hi))); d > float64(tc.tol) {
				t.Errorf("range [%g, %g], want about [%g, %g]", lo, hi, tc.lo, tc.hi)
			}
		})
	}
	t.Run("histogram growth keeps every count", func(t *testing.T) {
		c := &histCollector{}
		c.add([]float32{0.5, -0.5, 0.25})
		c.add([]float32{7, -3})
		var total float64
		for _, v := range c.bins {
			total += v
		}
		if total != 5 || c.edge(len(c.bins)) < 7 || c.width > 7.0/1024 {
			t.Errorf("after growth: %g values counted, range ±%g, width %g", total, c.edge(len(c.bins)), c.width)
		}
		c.add([]float32{1000}) // past maxHistBins: bins merge
		total = 0
		for _, v := range c.bins {
			total += v
		}
		if total != 6 || len(c.bins) > maxHistBins || c.edge(len(c.bins)) < 1000 || c.half%2 != 0 {
			t.Errorf("after merging: %g values, %d bins, range ±%g", total, len(c.bins), c.edge(len(c.bins)))
		}
	})
	t.Run("all zeros", func(t *testing.T) {
		for _, m := range []CalibMethod{CalibMinMax, CalibPercentile, CalibEntropy} {
			c := newCollector(m, false)
			c.add(make([]float32, 100))
			if lo, hi := c.rangeOf(99.99); lo != 0 || hi != 0 {
				t.Errorf("%s of zeros: [%g, %g]", m, lo, hi)
			}
		}
	})
}

func TestSyntheticImage(t *testing.T) {
	in := ImageInput{Channels: 3, Height: 32, Width: 24}
	a := SyntheticImage(in, Preprocess{}, 1, 0)
	b := SyntheticImage(in, Preprocess{}, 1, 0)
	c := SyntheticImage(in, Preprocess{}, 1, 1)
	if len(a) != 3*32*24 || !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Fatal("synthetic images are not deterministic per (seed, index)")
	}
	// Pixels lie in [0, 1] before normalization: after it, within
	// [(0-mean)/std, (1-mean)/std] per channel.
	for ch := 0; ch < 3; ch++ {
		lo := (0 - ImageNetPreprocess.Mean[ch]) / ImageNetPreprocess.Std[ch]
		hi := (1 - ImageNetPreprocess.Mean[ch]) / ImageNetPreprocess.Std[ch]
		for _, v := range a[ch*768 : (ch+1)*768] {
			if v < lo-1e-5 || v > hi+1e-5 {
				t.Fatalf("channel %d value %g outside [%g, %g]", ch, v, lo, hi)
			}
		}
	}
}

// writeImage writes a w×h image, left half colour l, right half r.
func writeImage(t *testing.T, path string, w, h int, l, r color.Color, asJPEG bool) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if x < w/2 {
				img.Set(x, y, l)
			} else {
				img.Set(x, y, r)
			}
		}
	}
	var buf bytes.Buffer
	var err error
	if asJPEG {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 100})
	} else {
		err = png.Encode(&buf, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadImage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.png")
	// 64×32, left red, right blue: resized so the short side is
	// 16/0.875 → 19 px (38×19), centre-cropped to 16×16: the crop's
	// left half is red, right half blue.
	writeImage(t, path, 64, 32, color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}, false)
	in := ImageInput{Channels: 3, Height: 16, Width: 16}
	pre := Preprocess{Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}}
	x, err := LoadImage(path, in, pre)
	if err != nil {
		t.Fatal(err)
	}
	px := func(ch, y, xx int) float32 { return x[ch*256+y*16+xx] }
	// Normalized: 1 → 1, 0 → -1.
	if px(0, 8, 2) != 1 || px(2, 8, 2) != -1 || px(0, 8, 13) != -1 || px(2, 8, 13) != 1 {
		t.Errorf("pixels red(%g,%g) blue(%g,%g), want 1,-1,-1,1", px(0, 8, 2), px(2, 8, 2), px(0, 8, 13), px(2, 8, 13))
	}
	// The edge between the halves is in the middle of the crop.
	if v := px(0, 8, 7); v <= 0 {
		t.Errorf("left of centre is %g, want red (> 0)", v)
	}
	if v := px(0, 8, 8); v >= 0 {
		t.Errorf("right of centre is %g, want blue (< 0)", v)
	}
	// Grayscale JPEG: three equal channels.
	gpath := filepath.Join(dir, "g.jpg")
	writeImage(t, gpath, 20, 20, color.Gray{128}, color.Gray{128}, true)
	g, err := LoadImage(gpath, in, Preprocess{})
	if err != nil {
		t.Fatal(err)
	}
	raw := func(ch int) float32 { return g[ch*256+100]*ImageNetPreprocess.Std[ch] + ImageNetPreprocess.Mean[ch] }
	if math.Abs(float64(raw(0)-raw(2))) > 0.01 || math.Abs(float64(raw(0)-128.0/255)) > 0.02 {
		t.Errorf("gray pixel de-normalized to %g %g %g, want %g", raw(0), raw(1), raw(2), 128.0/255)
	}
	// A corrupt file is an error naming it.
	bad := filepath.Join(dir, "bad.jpg")
	os.WriteFile(bad, []byte("not a jpeg"), 0o644)
	if _, err := LoadImage(bad, in, Preprocess{}); err == nil {
		t.Error("corrupt JPEG decoded")
	}
	files, err := ImageFiles(dir)
	if err != nil || len(files) != 3 {
		t.Errorf("ImageFiles = %v, %v", files, err)
	}
	if _, err := ImageFiles(t.TempDir()); err == nil {
		t.Error("empty folder accepted")
	}
}

func TestImageInputOf(t *testing.T) {
	m := tinyViT(t)
	in, err := ImageInputOf(m)
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != "pixel_values" || in.Channels != 3 || in.Height != 32 || in.Width != 32 || in.Batch != 0 {
		t.Errorf("ImageInputOf = %+v", in)
	}
}
