package imageset

import (
	"encoding/hex"
	"image"
	"image/color"
	"os"
	"testing"
)

// Every EXIF orientation turns the stored image upright, checked pixel by
// pixel on a PNG whose pixels carry their own coordinates.
func TestOrientationPNG(t *testing.T) {
	const w, h = 5, 3
	src := encodePNG(t, numbered(w, h))
	// Where stored pixel (sx, sy) lands when shown upright, for each
	// orientation: the inverse of what the camera did.
	cases := []struct {
		o      uint16
		ow, oh int
		at     func(x, y int) (sx, sy int) // upright (x, y) shows stored (sx, sy)
	}{
		{1, w, h, func(x, y int) (int, int) { return x, y }},
		{2, w, h, func(x, y int) (int, int) { return w - 1 - x, y }},
		{3, w, h, func(x, y int) (int, int) { return w - 1 - x, h - 1 - y }},
		{4, w, h, func(x, y int) (int, int) { return x, h - 1 - y }},
		{5, h, w, func(x, y int) (int, int) { return y, x }},
		{6, h, w, func(x, y int) (int, int) { return y, h - 1 - x }},
		{7, h, w, func(x, y int) (int, int) { return w - 1 - y, h - 1 - x }},
		{8, h, w, func(x, y int) (int, int) { return w - 1 - y, x }},
	}
	for _, c := range cases {
		data := withPNGExif(src, c.o)
		if got := Orientation(data); got != int(c.o) {
			t.Fatalf("Orientation = %d, want %d", got, c.o)
		}
		d, err := Decode(data)
		if err != nil {
			t.Fatalf("orientation %d: %v", c.o, err)
		}
		if d.W != c.ow || d.H != c.oh || d.Orientation != int(c.o) {
			t.Fatalf("orientation %d: %d×%d (applied %d), want %d×%d", c.o, d.W, d.H, d.Orientation, c.ow, c.oh)
		}
		for y := 0; y < c.oh; y++ {
			for x := 0; x < c.ow; x++ {
				sx, sy := c.at(x, y)
				r, g, _ := d.At(x, y)
				if int(r) != sx || int(g) != sy {
					t.Fatalf("orientation %d: upright (%d,%d) shows stored (%d,%d), want (%d,%d)", c.o, x, y, r, g, sx, sy)
				}
			}
		}
	}
	// Orientation 6, a phone held upright: the stored image's left
	// column is the top row. The classic example in PIL's exif_transpose.
}

func TestOrientationJPEG(t *testing.T) {
	// Left half red, right half blue, 32×16; EXIF 6 (rotate 90° clockwise
	// to show): the left half ends up on top.
	m := image.NewRGBA(image.Rect(0, 0, 32, 16))
	for y := 0; y < 16; y++ {
		for x := 0; x < 32; x++ {
			c := color.RGBA{220, 20, 20, 255}
			if x >= 16 {
				c = color.RGBA{20, 20, 220, 255}
			}
			m.SetRGBA(x, y, c)
		}
	}
	for _, big := range []bool{false, true} {
		data := withJPEGExif(encodeJPEG(t, m, 95), 6, big)
		d, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if d.W != 16 || d.H != 32 || d.Orientation != 6 || d.Format != "jpeg" {
			t.Fatalf("big-endian %v: %d×%d orientation %d format %s", big, d.W, d.H, d.Orientation, d.Format)
		}
		r, _, b := d.At(8, 4)
		r2, _, b2 := d.At(8, 28)
		if r < 180 || b > 60 || b2 < 180 || r2 > 60 {
			t.Errorf("big-endian %v: top (%d,%d) bottom (%d,%d): want red on top, blue below", big, r, b, r2, b2)
		}
	}
}

func TestOrientationDamaged(t *testing.T) {
	src := encodeJPEG(t, numbered(8, 8), 90)
	good := withJPEGExif(src, 3, false)
	for name, data := range map[string][]byte{
		"no exif":         src,
		"not an image":    []byte("hello"),
		"empty":           nil,
		"cut in the exif": good[:30],
		"bad value":       withJPEGExif(src, 9, false),
	} {
		if o := Orientation(data); o != 1 {
			t.Errorf("%s: orientation %d, want 1", name, o)
		}
	}
}

func FuzzOrientation(f *testing.F) {
	src := encodeJPEG(f, numbered(8, 8), 90)
	f.Add(withJPEGExif(src, 6, false))
	f.Add(withJPEGExif(src, 8, true))
	f.Add(withPNGExif(encodePNG(f, numbered(4, 4)), 3))
	f.Add([]byte{0xff, 0xd8, 0xff, 0xe1, 0x00, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		if o := Orientation(data); o < 1 || o > 8 {
			t.Fatalf("orientation %d out of range", o)
		}
	})
}

func TestDecodeColourModels(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 3, 2))
	gray.Pix = []uint8{0, 50, 100, 150, 200, 250}
	g16 := image.NewGray16(image.Rect(0, 0, 2, 1))
	g16.SetGray16(0, 0, color.Gray16{Y: 0x1234}) // 4660/257 = 18.1 → 18
	g16.SetGray16(1, 0, color.Gray16{Y: 0xffff})
	rgba64 := image.NewRGBA64(image.Rect(0, 0, 1, 1))
	rgba64.SetRGBA64(0, 0, color.RGBA64{0x8080, 0x0101, 0xfeff, 0xffff})
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.RGBA{10, 20, 30, 255}, color.RGBA{200, 100, 0, 255}})
	pal.Pix = []uint8{1, 0}
	// A transparent pixel keeps its colour (PIL's convert("RGB") drops alpha).
	nrgba := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	nrgba.SetNRGBA(0, 0, color.NRGBA{90, 60, 30, 0})
	cases := []struct {
		name string
		img  image.Image
		conv string
		want []uint8
	}{
		{"gray", gray, "gray", []uint8{0, 0, 0, 50, 50, 50, 100, 100, 100, 150, 150, 150, 200, 200, 200, 250, 250, 250}},
		{"gray16", g16, "gray 16-bit", []uint8{18, 18, 18, 255, 255, 255}},
		{"rgb48", rgba64, "16-bit", []uint8{128, 1, 254}},
		{"paletted", pal, "paletted", []uint8{200, 100, 0, 10, 20, 30}},
		{"transparent", nrgba, "", []uint8{90, 60, 30}},
	}
	for _, c := range cases {
		d, err := Decode(encodePNG(t, c.img))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if string(d.Pix) != string(c.want) {
			t.Errorf("%s: %v, want %v", c.name, d.Pix, c.want)
		}
		if d.Converted != c.conv && !(c.name == "gray16" && d.Converted != "") {
			t.Errorf("%s: converted %q, want %q", c.name, d.Converted, c.conv)
		}
	}
}

// A CMYK JPEG (written by PIL: Go cannot encode one) reads as PIL reads it,
// within JPEG's own rounding.
func TestDecodeCMYKJPEG(t *testing.T) {
	data, err := os.ReadFile("testdata/cmyk.jpg")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if d.Converted != "cmyk" || d.W != 24 || d.H != 16 {
		t.Fatalf("decoded %d×%d converted %q", d.W, d.H, d.Converted)
	}
	want, _ := hex.DecodeString(loadPIL(t).CMYKJPEGRGB)
	var sum, worst int
	for i := range want {
		diff := int(d.Pix[i]) - int(want[i])
		if diff < 0 {
			diff = -diff
		}
		sum += diff
		worst = max(worst, diff)
	}
	if mean := float64(sum) / float64(len(want)); mean > 2 || worst > 12 {
		t.Errorf("CMYK JPEG: mean abs difference from PIL %.2f, worst %d", mean, worst)
	}
}

func TestDecodeBad(t *testing.T) {
	full := encodeJPEG(t, numbered(40, 30), 90)
	for name, data := range map[string][]byte{
		"truncated jpeg": full[:len(full)/2],
		"truncated png":  encodePNG(t, numbered(40, 30))[:60],
		"text":           []byte("not an image at all"),
		"empty":          nil,
	} {
		if _, err := Decode(data); err == nil {
			t.Errorf("%s decoded", name)
		}
	}
}
