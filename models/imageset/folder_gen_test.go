package imageset

import (
	"bytes"
	"flag"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"testing"
)

var generate = flag.Bool("generate", false, "rewrite testdata/folder from its generator")

// testFolder is the committed labelled folder: what each file is and how
// to make it. It exercises every case a user's folder can hold: PNG and
// JPEG, odd sizes, grayscale, 16-bit, paletted and CMYK images, an EXIF-
// rotated photo, a truncated file, a file that is not an image and a
// class folder without images.
var testFolder = []struct {
	rel  string
	make func(t testing.TB) []byte // nil: written by hand below
}{
	{"circle/c01.png", func(t testing.TB) []byte { return encodePNG(t, shape(37, 23, 0, 1)) }},
	{"circle/c02.jpg", func(t testing.TB) []byte { return encodeJPEG(t, shape(101, 64, 0, 2), 90) }},
	{"circle/c03-gray.png", func(t testing.TB) []byte { return encodePNG(t, grayOf(shape(48, 48, 0, 3))) }},
	{"circle/c04-16bit.png", func(t testing.TB) []byte { return encodePNG(t, deep(shape(30, 41, 0, 4))) }},
	{"circle/c05-exif6.jpg", func(t testing.TB) []byte { return withJPEGExif(encodeJPEG(t, shape(64, 40, 0, 5), 90), 6, false) }},
	{"square/s01.png", func(t testing.TB) []byte { return encodePNG(t, shape(40, 40, 1, 1)) }},
	{"square/s02.jpg", func(t testing.TB) []byte { return encodeJPEG(t, shape(77, 13, 1, 2), 85) }},
	{"square/s03-paletted.png", func(t testing.TB) []byte { return encodePNG(t, paletted(shape(33, 21, 1, 3))) }},
	{"square/s04-truncated.jpg", func(t testing.TB) []byte {
		full := encodeJPEG(t, shape(64, 64, 1, 4), 90)
		return full[:len(full)/2]
	}},
	{"square/notes.txt", func(testing.TB) []byte { return []byte("not an image: ignored and counted\n") }},
	{"stripes/t01.jpg", func(t testing.TB) []byte { return encodeJPEG(t, shape(50, 71, 2, 1), 90) }},
	{"stripes/t02.png", func(t testing.TB) []byte { return encodePNG(t, shape(19, 19, 2, 2)) }},
	{"stripes/t03-cmyk.jpg", func(t testing.TB) []byte {
		b, err := os.ReadFile("testdata/cmyk.jpg") // Go cannot encode CMYK; PIL wrote it
		if err != nil {
			t.Fatal(err)
		}
		return b
	}},
	{"empty/.gitkeep", func(testing.TB) []byte { return nil }},
	// Class order of the model differs from the sorted folder names.
	{"labels.txt", func(testing.TB) []byte { return []byte("stripes\nsquare a square\ncircle\nempty\n") }},
	{"labels-missing.txt", func(testing.TB) []byte { return []byte("stripes\ncircle\n") }},
}

// shape draws class cls (0 circle, 1 square, 2 stripes) in variant v.
func shape(w, h, cls, v int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	fg := color.NRGBA{uint8(60 + 40*v), uint8(200 - 30*v), uint8(90 + 25*cls), 255}
	bg := color.NRGBA{uint8(20 * v), 40, uint8(200 - 20*v), 255}
	cx, cy, r := float64(w)/2, float64(h)/2, 0.35*math.Min(float64(w), float64(h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			in := false
			switch cls {
			case 0:
				in = dx*dx+dy*dy < r*r
			case 1:
				in = math.Abs(dx) < r && math.Abs(dy) < r
			case 2:
				in = (x+y)/3%2 == 0
			}
			c := bg
			if in {
				c = fg
			}
			// A gradient so resizing has something to interpolate.
			c.R = uint8(min(255, int(c.R)+x*40/w))
			m.SetNRGBA(x, y, c)
		}
	}
	return m
}

func grayOf(m *image.NRGBA) *image.Gray {
	g := image.NewGray(m.Bounds())
	for y := 0; y < m.Bounds().Dy(); y++ {
		for x := 0; x < m.Bounds().Dx(); x++ {
			g.Set(x, y, m.At(x, y))
		}
	}
	return g
}

func deep(m *image.NRGBA) *image.RGBA64 {
	d := image.NewRGBA64(m.Bounds())
	for y := 0; y < m.Bounds().Dy(); y++ {
		for x := 0; x < m.Bounds().Dx(); x++ {
			c := m.NRGBAAt(x, y)
			// Low bytes that rounding to 8 bits must not ignore.
			d.SetRGBA64(x, y, color.RGBA64{uint16(c.R)<<8 | 0x7f, uint16(c.G)<<8 | 0x81, uint16(c.B) << 8, 0xffff})
		}
	}
	return d
}

func paletted(m *image.NRGBA) *image.Paletted {
	pal := color.Palette{}
	seen := map[color.NRGBA]bool{}
	for y := 0; y < m.Bounds().Dy(); y++ {
		for x := 0; x < m.Bounds().Dx(); x++ {
			if c := m.NRGBAAt(x, y); !seen[c] && len(pal) < 256 {
				seen[c] = true
				pal = append(pal, c)
			}
		}
	}
	p := image.NewPaletted(m.Bounds(), pal)
	for y := 0; y < m.Bounds().Dy(); y++ {
		for x := 0; x < m.Bounds().Dx(); x++ {
			p.Set(x, y, m.At(x, y))
		}
	}
	return p
}

const folderDir = "testdata/folder"

// TestGenerateFolder checks the committed folder against its generator
// (PNG files pixel for pixel, since encoders may change their bytes across
// Go versions; every other file byte for byte). With -generate it rewrites
// the folder instead.
func TestGenerateFolder(t *testing.T) {
	for _, f := range testFolder {
		want := f.make(t)
		path := filepath.Join(folderDir, filepath.FromSlash(f.rel))
		if *generate {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (regenerate with go test ./models/imageset -run TestGenerateFolder -generate)", err)
		}
		if filepath.Ext(path) == ".png" {
			a, _, errA := image.Decode(bytes.NewReader(got))
			b, _, errB := image.Decode(bytes.NewReader(want))
			if errA != nil || errB != nil || !samePixels(a, b) {
				t.Errorf("%s differs from its generator", f.rel)
			}
			continue
		}
		if filepath.Ext(path) == ".jpg" {
			continue // JPEG encoders may change; decoding is tested on the committed file
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from its generator", f.rel)
		}
	}
}

func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return false
			}
		}
	}
	return true
}
