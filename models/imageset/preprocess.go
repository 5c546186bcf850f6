package imageset

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Preprocess is how an image becomes one model input, timm's evaluation
// transform: resize (the shorter side to floor(size / CropPct) for a square
// input, both sides to floor(side / CropPct) otherwise) with
// Interpolation, centre crop to Height × Width, scale to [0, 1], then
// (x − Mean) / Std per RGB channel.
type Preprocess struct {
	Height, Width int
	// CropPct is the centre crop's share of the resized image, in (0, 1]:
	// 0.875 is the classic 224-of-256.
	CropPct       float64
	Interpolation Interpolation
	Mean, Std     [3]float32
}

// Validate checks the fields.
func (p Preprocess) Validate() error {
	var errs []error
	if p.Height < 1 || p.Width < 1 || p.Height > 8192 || p.Width > 8192 {
		errs = append(errs, fmt.Errorf("input size %d×%d: want 1 to 8192 pixels a side", p.Width, p.Height))
	}
	if !(p.CropPct > 0 && p.CropPct <= 1) {
		errs = append(errs, fmt.Errorf("crop_pct %v: want a number in (0, 1]", p.CropPct))
	}
	if p.Interpolation != Bilinear && p.Interpolation != Bicubic {
		errs = append(errs, fmt.Errorf("interpolation %q: want bilinear or bicubic", p.Interpolation))
	}
	for i, s := range p.Std {
		if !(s > 0) || math.IsInf(float64(s), 0) || math.IsNaN(float64(p.Mean[i])) || math.IsInf(float64(p.Mean[i]), 0) {
			errs = append(errs, fmt.Errorf("mean %v / std %v: want finite means and positive standard deviations", p.Mean, p.Std))
			break
		}
	}
	return errors.Join(errs...)
}

// ResizeSize is the size the image is resized to before the crop, for a
// source of w×h: torchvision's Resize(int) for a square input (shorter side
// to floor(size/crop_pct), the longer one scaled and truncated), its
// Resize((h, w)) for another.
func (p Preprocess) ResizeSize(w, h int) (int, int) {
	if p.Height != p.Width {
		return int(math.Floor(float64(p.Width) / p.CropPct)), int(math.Floor(float64(p.Height) / p.CropPct))
	}
	size := int(math.Floor(float64(p.Height) / p.CropPct))
	if w <= h {
		return size, int(float64(size) * float64(h) / float64(w))
	}
	return int(float64(size) * float64(w) / float64(h)), size
}

// Pixels is the number of bytes Apply returns: 3·Height·Width.
func (p Preprocess) Pixels() int { return 3 * p.Height * p.Width }

// Apply resizes and centre-crops m and returns the crop as 8-bit planar
// RGB (CHW): the part of the preprocessing that the cache stores. A
// resized image smaller than the crop (possible only for tiny sources of
// a non-square input) is padded with black, as torchvision's CenterCrop
// pads.
func (p Preprocess) Apply(m *RGB) []uint8 {
	rw, rh := p.ResizeSize(m.W, m.H)
	rw, rh = max(rw, 1), max(rh, 1)
	r := Resize(m, rw, rh, p.Interpolation)
	// torchvision: int(round((size - crop) / 2.0)), Python's round half to even.
	left := int(math.RoundToEven(float64(rw-p.Width) / 2))
	top := int(math.RoundToEven(float64(rh-p.Height) / 2))
	hw := p.Height * p.Width
	out := make([]uint8, 3*hw)
	for y := 0; y < p.Height; y++ {
		sy := top + y
		if sy < 0 || sy >= rh {
			continue
		}
		for x := 0; x < p.Width; x++ {
			sx := left + x
			if sx < 0 || sx >= rw {
				continue
			}
			s := 3 * (sy*rw + sx)
			d := y*p.Width + x
			out[d], out[hw+d], out[2*hw+d] = r.Pix[s], r.Pix[s+1], r.Pix[s+2]
		}
	}
	return out
}

// Normalize writes one image's 8-bit planar pixels into dst as model input:
// v/255, then (x − Mean[c]) / Std[c], in float32 as torchvision's ToTensor
// and Normalize compute it.
func (p Preprocess) Normalize(dst []float32, pix []uint8) {
	hw := len(pix) / 3
	for c := 0; c < 3; c++ {
		mean, std := p.Mean[c], p.Std[c]
		src := pix[c*hw : (c+1)*hw]
		out := dst[c*hw : (c+1)*hw]
		for i, v := range src {
			out[i] = (float32(v)/255 - mean) / std
		}
	}
}

// GeometryKey identifies what Apply does (size, crop, filter): the part of
// the preprocessing the cached pixels depend on. Mean and Std are applied
// as batches stream and are not part of it.
func (p Preprocess) GeometryKey() string {
	return fmt.Sprintf("%dx%d crop=%s %s", p.Width, p.Height, strconv.FormatFloat(p.CropPct, 'g', -1, 64), p.Interpolation)
}

// String describes the preprocessing for records and reports:
// "224×224: resize 248 bicubic, centre crop, mean 0.5,0.5,0.5, std 0.5,0.5,0.5".
func (p Preprocess) String() string {
	var resize string
	if p.Height == p.Width {
		rw, _ := p.ResizeSize(1, 1)
		resize = fmt.Sprintf("shorter side to %d", rw)
	} else {
		rw, rh := p.ResizeSize(1, 1)
		resize = fmt.Sprintf("to %d×%d", rw, rh)
	}
	return fmt.Sprintf("%d×%d: %s %s (crop_pct %s), centre crop, mean %s, std %s", p.Width, p.Height, resize, p.Interpolation,
		strconv.FormatFloat(p.CropPct, 'g', -1, 64), triple(p.Mean), triple(p.Std))
}

func triple(v [3]float32) string {
	s := make([]string, 3)
	for i, f := range v {
		s[i] = strconv.FormatFloat(float64(f), 'g', -1, 32)
	}
	return strings.Join(s, ",")
}

// ParseInterpolation reads "bilinear" or "bicubic" (any case).
func ParseInterpolation(s string) (Interpolation, error) {
	switch f := Interpolation(strings.ToLower(strings.TrimSpace(s))); f {
	case Bilinear, Bicubic:
		return f, nil
	}
	return "", fmt.Errorf("interpolation %q: want bilinear or bicubic", s)
}

// ParseTriple reads "a,b,c" as three numbers (a mean or std).
func ParseTriple(s string) ([3]float32, error) {
	var out [3]float32
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return out, fmt.Errorf("%q: want three comma-separated numbers (R,G,B)", s)
	}
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return out, fmt.Errorf("%q: %q is not a number", s, p)
		}
		out[i] = float32(f)
	}
	return out, nil
}
