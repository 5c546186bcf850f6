package imageset

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decoders image.Decode dispatches to
	_ "image/png"
	"os"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"
)

// RGB is an 8-bit RGB image, pixels interleaved row by row.
type RGB struct {
	W, H int
	Pix  []uint8 // 3·W·H: R, G, B of (0,0), then (1,0), …
}

// At returns the R, G, B of pixel (x, y).
func (m *RGB) At(x, y int) (r, g, b uint8) {
	i := 3 * (y*m.W + x)
	return m.Pix[i], m.Pix[i+1], m.Pix[i+2]
}

// Decoded is an image read from a file and what was done to get it to RGB.
type Decoded struct {
	*RGB
	// Format is the decoder's name: "jpeg", "png", "webp", "bmp".
	Format string
	// Orientation is the EXIF orientation applied (1 = none).
	Orientation int
	// Converted names the source colour model when it was not 8-bit RGB
	// ("gray", "cmyk", "16-bit", "paletted"), "" otherwise.
	Converted string
}

// maxPixels bounds the images decoded (a decompression bomb is skipped, not
// allocated): 100 megapixels, beyond any photograph a classifier sees.
const maxPixels = 100 << 20

// DecodeFile reads an image file into 8-bit RGB, upright by its EXIF
// orientation.
func DecodeFile(path string) (*Decoded, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Decode(data)
}

// Decode decodes an image into 8-bit RGB: grayscale is replicated to three
// channels, CMYK and YCbCr converted, 16-bit channels rounded to 8 bits,
// alpha dropped (the colour under it kept, as PIL's convert("RGB") does),
// and the EXIF orientation of a JPEG (APP1) or PNG (eXIf chunk) applied.
// A truncated or corrupt file is an error.
func Decode(data []byte) (*Decoded, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a readable image: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("%s image of %d×%d pixels", format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, fmt.Errorf("%s image of %d×%d pixels is over the %d-megapixel limit", format, cfg.Width, cfg.Height, maxPixels>>20)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w (truncated or corrupt?)", format, err)
	}
	rgb, conv := toRGB(img)
	d := &Decoded{RGB: rgb, Format: format, Converted: conv, Orientation: 1}
	if o := Orientation(data); o > 1 {
		d.RGB = orient(rgb, o)
		d.Orientation = o
	}
	return d, nil
}

// toRGB converts any decoded image to 8-bit RGB and names the conversion.
func toRGB(img image.Image) (*RGB, string) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := &RGB{W: w, H: h, Pix: make([]uint8, 3*w*h)}
	p := out.Pix
	switch m := img.(type) {
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi, ci := m.YOffset(b.Min.X+x, b.Min.Y+y), m.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bl := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				i := 3 * (y*w + x)
				p[i], p[i+1], p[i+2] = r, g, bl
			}
		}
		return out, ""
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[(y)*m.Stride:]
			for x := 0; x < w; x++ {
				v := row[x]
				i := 3 * (y*w + x)
				p[i], p[i+1], p[i+2] = v, v, v
			}
		}
		return out, "gray"
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				i := 3 * (y*w + x)
				p[i], p[i+1], p[i+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
		return out, ""
	case *image.RGBA:
		conv := ""
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride:]
			for x := 0; x < w; x++ {
				r, g, bl, a := row[4*x], row[4*x+1], row[4*x+2], row[4*x+3]
				if a != 0xff {
					c := color.NRGBAModel.Convert(color.RGBA{r, g, bl, a}).(color.NRGBA)
					r, g, bl = c.R, c.G, c.B
				}
				i := 3 * (y*w + x)
				p[i], p[i+1], p[i+2] = r, g, bl
			}
		}
		return out, conv
	}
	conv := ""
	switch img.(type) {
	case *image.Gray16:
		conv = "gray 16-bit"
	case *image.RGBA64, *image.NRGBA64:
		conv = "16-bit"
	case *image.CMYK:
		conv = "cmyk"
	case *image.Paletted:
		conv = "paletted"
	default:
		conv = fmt.Sprintf("%T", img)
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			// 16-bit non-premultiplied, rounded to 8 bits (v/257).
			c := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
			i := 3 * (y*w + x)
			p[i], p[i+1], p[i+2] = to8(c.R), to8(c.G), to8(c.B)
		}
	}
	return out, conv
}

// to8 rounds a 16-bit channel to 8 bits.
func to8(v uint16) uint8 { return uint8((uint32(v) + 128) / 257) }

// orient returns m turned upright by EXIF orientation o (2–8): the mirror
// and rotation that PIL's ImageOps.exif_transpose applies.
func orient(m *RGB, o int) *RGB {
	w, h := m.W, m.H
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := &RGB{W: ow, H: oh, Pix: make([]uint8, len(m.Pix))}
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			var sx, sy int
			switch o {
			case 2: // mirrored left-right
				sx, sy = w-1-x, y
			case 3: // rotated 180°
				sx, sy = w-1-x, h-1-y
			case 4: // mirrored top-bottom
				sx, sy = x, h-1-y
			case 5: // transposed
				sx, sy = y, x
			case 6: // stored rotated 90° counter-clockwise: turn clockwise
				sx, sy = y, h-1-x
			case 7: // transverse
				sx, sy = w-1-y, h-1-x
			case 8: // stored rotated 90° clockwise: turn counter-clockwise
				sx, sy = w-1-y, x
			default:
				sx, sy = x, y
			}
			s, d := 3*(sy*w+sx), 3*(y*ow+x)
			copy(out.Pix[d:d+3], m.Pix[s:s+3])
		}
	}
	return out
}
