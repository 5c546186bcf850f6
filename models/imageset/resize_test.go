package imageset

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// pattern is scripts/imageset-reference.py's test image.
func pattern(w, h int) *RGB {
	m := &RGB{W: w, H: h, Pix: make([]uint8, 3*w*h)}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				m.Pix[3*(y*w+x)+c] = uint8((7*x*x + 13*y + 71*c + 5*(x^y)) & 255)
			}
		}
	}
	return m
}

type pilReference struct {
	PIL    string `json:"pil"`
	Resize []struct {
		Src, Dst [2]int
		Filter   string
		RGB      string
	} `json:"resize"`
	CMYKJPEGRGB string `json:"cmyk_jpeg_rgb"`
}

func loadPIL(t *testing.T) pilReference {
	t.Helper()
	raw, err := os.ReadFile("testdata/pil_resize.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref pilReference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

// Resize gives PIL's Image.resize byte for byte (references written by
// scripts/imageset-reference.py with Pillow 9.4).
func TestResizeMatchesPIL(t *testing.T) {
	ref := loadPIL(t)
	if len(ref.Resize) < 10 {
		t.Fatalf("only %d reference cases", len(ref.Resize))
	}
	for _, c := range ref.Resize {
		want, err := hex.DecodeString(c.RGB)
		if err != nil {
			t.Fatal(err)
		}
		got := Resize(pattern(c.Src[0], c.Src[1]), c.Dst[0], c.Dst[1], Interpolation(c.Filter))
		if got.W != c.Dst[0] || got.H != c.Dst[1] {
			t.Fatalf("%v→%v: got %d×%d", c.Src, c.Dst, got.W, got.H)
		}
		diff := 0
		for i := range want {
			if got.Pix[i] != want[i] {
				diff++
			}
		}
		if diff > 0 {
			t.Errorf("%s %v→%v: %d of %d bytes differ from PIL %s", c.Filter, c.Src, c.Dst, diff, len(want), ref.PIL)
		}
	}
}

// Hand-computed: halving a row of 4 pixels bilinearly averages pairs
// (support 2 at scale 2: weights ¼ ¾ ¾ ¼ around each centre, clipped at
// the edges); bicubic at scale 1 is the identity.
func TestResizeHandComputed(t *testing.T) {
	row := &RGB{W: 4, H: 1, Pix: []uint8{0, 0, 0, 100, 100, 100, 200, 200, 200, 40, 40, 40}}
	got := Resize(row, 2, 1, Bilinear)
	// Output 0: centre 1.0, taps x=0 (w 1−|0.5−1|/2=0.75), x=1 (0.75),
	// x=2 (0.25): (0·0.75 + 100·0.75 + 200·0.25)/1.75 = 71.43 → 71.
	// Output 1: centre 3.0, taps x=1 (0.25), x=2 (0.75), x=3 (0.75):
	// (100·0.25 + 200·0.75 + 40·0.75)/1.75 = 117.14 → 117.
	if got.Pix[0] != 71 || got.Pix[3] != 117 {
		t.Errorf("bilinear halving = %v, want 71, 117", got.Pix)
	}
	same := Resize(row, 4, 1, Bicubic)
	for i := range row.Pix {
		if same.Pix[i] != row.Pix[i] {
			t.Fatalf("resize to the same size changed the image: %v", same.Pix)
		}
	}
}
