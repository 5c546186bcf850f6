package imageset

import (
	"encoding/hex"
	"math"
	"strings"
	"testing"
)

var inception = Preprocess{Height: 224, Width: 224, CropPct: 0.9, Interpolation: Bicubic,
	Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}}

func TestResizeSize(t *testing.T) {
	imagenet := inception
	imagenet.CropPct = 0.875
	cases := []struct {
		p          Preprocess
		w, h       int
		rw, rh     int
		whyComment string
	}{
		// floor(224/0.875) = 256; long side int(256·500/375) = int(341.33).
		{imagenet, 500, 375, 341, 256, "landscape"},
		{imagenet, 375, 500, 256, 341, "portrait"},
		// floor(224/0.9) = floor(248.89) = 248; int(248·500/375) = 330.
		{inception, 500, 375, 330, 248, "crop 0.9"},
		{inception, 300, 300, 248, 248, "square"},
		// crop_pct 1: the shorter side becomes the crop.
		{Preprocess{Height: 384, Width: 384, CropPct: 1}, 640, 480, 512, 384, "crop 1"},
		// A non-square input resizes both sides.
		{Preprocess{Height: 100, Width: 200, CropPct: 0.5}, 640, 480, 400, 200, "non-square"},
	}
	for _, c := range cases {
		rw, rh := c.p.ResizeSize(c.w, c.h)
		if rw != c.rw || rh != c.rh {
			t.Errorf("%s: %d×%d → %d×%d, want %d×%d", c.whyComment, c.w, c.h, rw, rh, c.rw, c.rh)
		}
	}
}

// Apply on a source already at the resize size is a pure crop, so every
// output pixel can be computed by hand: a 4×4 crop of a 8×11 image with
// crop_pct 0.5 (resize shorter side to 8: the image as it is, long side
// int(8·11/8) = 11) starts at left (8−4)/2 = 2 and top round((11−4)/2) =
// round(3.5) = 4 (Python rounds half to even, as torchvision's CenterCrop).
func TestApplyCropHandComputed(t *testing.T) {
	src := pattern(8, 11)
	p := Preprocess{Height: 4, Width: 4, CropPct: 0.5, Interpolation: Bilinear, Std: [3]float32{1, 1, 1}}
	out := p.Apply(src)
	if len(out) != p.Pixels() {
		t.Fatalf("%d bytes, want %d", len(out), p.Pixels())
	}
	for c := 0; c < 3; c++ {
		for y := 0; y < 4; y++ {
			for x := 0; x < 4; x++ {
				sx, sy := x+2, y+4
				want := uint8((7*sx*sx + 13*sy + 71*c + 5*(sx^sy)) & 255)
				if got := out[c*16+y*4+x]; got != want {
					t.Fatalf("channel %d (%d,%d) = %d, want %d (stored pixel (%d,%d))", c, x, y, got, want, sx, sy)
				}
			}
		}
	}
	// Odd difference rounds half to even: 9−4 = 5, 2.5 → 2.
	p.CropPct = 4.0 / 9
	src = pattern(9, 9)
	out = p.Apply(src)
	want := uint8((7*2*2 + 13*2 + 5*(2^2)) & 255)
	if out[0] != want {
		t.Errorf("top-left of a 4×4 crop of 9×9 = %d, want stored (2,2) = %d", out[0], want)
	}
}

// Apply end to end against PIL: the 64×48 reference pattern with a 16×16
// input and crop_pct 1 resizes the shorter side to 16 and the longer to
// int(16·64/48) = 21 — the 21×16 image PIL produced — then crops 16×16 from
// left round(2.5) = 2.
func TestApplyMatchesPIL(t *testing.T) {
	ref := loadPIL(t)
	found := 0
	for _, c := range ref.Resize {
		if c.Src != [2]int{64, 48} || c.Dst != [2]int{21, 16} {
			continue
		}
		found++
		resized, _ := hex.DecodeString(c.RGB)
		p := Preprocess{Height: 16, Width: 16, CropPct: 1, Interpolation: Interpolation(c.Filter)}
		out := p.Apply(pattern(64, 48))
		for ch := 0; ch < 3; ch++ {
			for y := 0; y < 16; y++ {
				for x := 0; x < 16; x++ {
					want := resized[3*(y*21+x+2)+ch]
					if got := out[ch*256+y*16+x]; got != want {
						t.Fatalf("%s: channel %d (%d,%d) = %d, PIL resize + crop gives %d", c.Filter, ch, x, y, got, want)
					}
				}
			}
		}
	}
	if found != 2 {
		t.Fatalf("%d reference cases for 64×48 → 21×16, want 2", found)
	}
}

func TestNormalize(t *testing.T) {
	p := inception
	pix := []uint8{0, 255, 128, 0, 255, 128, 0, 255, 128}
	dst := make([]float32, 9)
	p.Normalize(dst, pix)
	want := []float32{-1, 1, float32((128.0/255 - 0.5) / 0.5)}
	for i, w := range want {
		if math.Abs(float64(dst[i]-w)) > 1e-6 {
			t.Errorf("value %d = %v, want %v", i, dst[i], w)
		}
	}
	imagenet := Preprocess{Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}}
	imagenet.Normalize(dst, []uint8{255, 0, 51})
	// (1 − 0.485)/0.229, (0 − 0.456)/0.224, (0.2 − 0.406)/0.225.
	for i, w := range []float64{2.2489083, -2.0357143, -0.9155556} {
		if math.Abs(float64(dst[i])-w) > 1e-5 {
			t.Errorf("ImageNet channel %d = %v, want %v", i, dst[i], w)
		}
	}
}

func TestPreprocessValidateAndString(t *testing.T) {
	if err := inception.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := inception
	bad.CropPct, bad.Interpolation, bad.Std[1] = 1.2, "nearest", 0
	err := bad.Validate()
	for _, want := range []string{"crop_pct 1.2", "interpolation \"nearest\"", "positive standard deviations"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %s", err, want)
		}
	}
	if s := inception.String(); s != "224×224: shorter side to 248 bicubic (crop_pct 0.9), centre crop, mean 0.5,0.5,0.5, std 0.5,0.5,0.5" {
		t.Errorf("String = %q", s)
	}
	if _, err := ParseTriple("1,2"); err == nil {
		t.Error("ParseTriple of two numbers")
	}
	if f, err := ParseInterpolation("BICUBIC"); err != nil || f != Bicubic {
		t.Errorf("ParseInterpolation = %v, %v", f, err)
	}
}
