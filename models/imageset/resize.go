package imageset

import "math"

// Interpolation is the resampling filter of the resize.
type Interpolation string

// The filters: PIL's (and so torchvision's and timm's) bilinear and bicubic.
const (
	Bilinear Interpolation = "bilinear" // triangle filter, support 1
	Bicubic  Interpolation = "bicubic"  // cubic convolution with a = −0.5, support 2
)

// support is the filter's radius at scale 1.
func (f Interpolation) support() float64 {
	if f == Bicubic {
		return 2
	}
	return 1
}

// weight is the filter's value at x.
func (f Interpolation) weight(x float64) float64 {
	x = math.Abs(x)
	if f == Bicubic {
		const a = -0.5
		switch {
		case x < 1:
			return ((a+2)*x-(a+3))*x*x + 1
		case x < 2:
			return (((x-5)*x+8)*x - 4) * a
		}
		return 0
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// precisionBits is the fixed-point precision of the 8-bit resampling
// coefficients (PIL's PRECISION_BITS: 32 − 8 − 2).
const precisionBits = 22

// taps are the source pixels and fixed-point weights of one output pixel.
type taps struct {
	first int     // first source index
	k     []int32 // weights, scaled by 2^precisionBits
}

// coefficients computes, for each of out output pixels along an axis of
// in source pixels, the filter taps the way PIL's resample does: the
// filter is widened by the scale when shrinking (antialiasing), clipped at
// the edges and normalized, then rounded to fixed point.
func coefficients(in, out int, f Interpolation) []taps {
	scale := float64(in) / float64(out)
	filterScale := math.Max(scale, 1)
	support := f.support() * filterScale
	ss := 1 / filterScale
	res := make([]taps, out)
	w := make([]float64, int(math.Ceil(support))*2+1)
	for xx := 0; xx < out; xx++ {
		center := (float64(xx) + 0.5) * scale
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > in {
			xmax = in
		}
		n := xmax - xmin
		var total float64
		for x := 0; x < n; x++ {
			w[x] = f.weight((float64(x+xmin) - center + 0.5) * ss)
			total += w[x]
		}
		k := make([]int32, n)
		for x := 0; x < n; x++ {
			v := w[x]
			if total != 0 {
				v /= total
			}
			if v < 0 {
				k[x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				k[x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		res[xx] = taps{first: xmin, k: k}
	}
	return res
}

// clip8 takes a fixed-point accumulator (with its rounding half added) to
// a byte.
func clip8(ss int64) uint8 {
	v := ss >> precisionBits
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return uint8(v)
}

// Resize resamples m to w×h with filter f: a horizontal pass, then a
// vertical one, each rounded to 8 bits, in PIL's fixed-point arithmetic,
// so the result is the image PIL's Image.resize gives.
func Resize(m *RGB, w, h int, f Interpolation) *RGB {
	if m.W == w && m.H == h {
		return &RGB{W: w, H: h, Pix: append([]uint8(nil), m.Pix...)}
	}
	cur := m
	if w != m.W {
		cx := coefficients(m.W, w, f)
		out := &RGB{W: w, H: m.H, Pix: make([]uint8, 3*w*m.H)}
		for y := 0; y < m.H; y++ {
			src := m.Pix[3*y*m.W : 3*(y+1)*m.W]
			dst := out.Pix[3*y*w : 3*(y+1)*w]
			for x, t := range cx {
				r, g, b := int64(1)<<(precisionBits-1), int64(1)<<(precisionBits-1), int64(1)<<(precisionBits-1)
				for j, k := range t.k {
					s := 3 * (t.first + j)
					r += int64(src[s]) * int64(k)
					g += int64(src[s+1]) * int64(k)
					b += int64(src[s+2]) * int64(k)
				}
				dst[3*x], dst[3*x+1], dst[3*x+2] = clip8(r), clip8(g), clip8(b)
			}
		}
		cur = out
	}
	if h != cur.H {
		cy := coefficients(cur.H, h, f)
		out := &RGB{W: cur.W, H: h, Pix: make([]uint8, 3*cur.W*h)}
		row := 3 * cur.W
		for y, t := range cy {
			dst := out.Pix[y*row : (y+1)*row]
			for i := 0; i < row; i++ {
				ss := int64(1) << (precisionBits - 1)
				for j, k := range t.k {
					ss += int64(cur.Pix[(t.first+j)*row+i]) * int64(k)
				}
				dst[i] = clip8(ss)
			}
		}
		cur = out
	}
	return cur
}
