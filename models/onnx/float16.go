package onnx

import "math"

// Half-precision (IEEE 754 binary16) bit layout.
const (
	f16SignMask = 0x8000
	f16ExpMask  = 0x7c00 // also +Inf
	f16MantMask = 0x03ff
	f16QuietBit = 0x0200
	f16MaxBits  = 0x7bff // 65504, the largest finite float16
)

// Float32ToFloat16 converts f to the nearest IEEE half-precision value and
// returns its bit pattern. Rounding is to nearest, ties to even. Magnitudes
// above the float16 range round to ±Inf (65520 and up; 65504 is the largest
// finite value), magnitudes below the normal range become subnormals, and
// those at most half the smallest subnormal (2^-25) become a zero of the same
// sign. NaN stays NaN: the sign and the top mantissa bits are kept and the
// quiet bit is set, so a NaN never turns into Inf.
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & f16SignMask
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff

	if exp == 0xff {
		if mant == 0 {
			return sign | f16ExpMask
		}
		return sign | f16ExpMask | f16QuietBit | uint16(mant>>13)
	}
	e := exp - 127 + 15 // float16 biased exponent
	if e >= 0x1f {
		return sign | f16ExpMask
	}
	if e <= 0 {
		// Subnormal float16 (or zero): the value in units of 2^-24 is
		// m * 2^(exp-126), m the 24-bit significand.
		if e < -10 {
			return sign // below 2^-25: rounds to zero
		}
		m := mant | 0x800000
		shift := uint32(14 - e) // 14..24
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++ // may carry into the smallest normal, which is correct
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to Inf, which is correct
	}
	return sign | uint16(h)
}

// Float32ToFloat16Clamped is Float32ToFloat16, except that finite values
// beyond the float16 range become ±65504 instead of ±Inf. Inf and NaN
// convert as in Float32ToFloat16.
func Float32ToFloat16Clamped(f float32) uint16 {
	h := Float32ToFloat16(f)
	if h&^f16SignMask == f16ExpMask && !math.IsInf(float64(f), 0) {
		return h&f16SignMask | f16MaxBits
	}
	return h
}

// Float16ToFloat32 converts the half-precision bit pattern h to float32.
// Every float16 value, subnormals included, is exactly representable; NaNs
// keep their sign and payload.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&f16SignMask) << 16
	exp := uint32(h&f16ExpMask) >> 10
	mant := uint32(h & f16MantMask)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: normalize into a float32 normal.
		e := uint32(127 - 14)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&f16MantMask)<<13)
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
}

// Float32sToFloat16s converts a slice with Float32ToFloat16.
func Float32sToFloat16s(src []float32) []uint16 {
	out := make([]uint16, len(src))
	for i, f := range src {
		out[i] = Float32ToFloat16(f)
	}
	return out
}

// Float32sToFloat16sClamped converts a slice with Float32ToFloat16Clamped.
func Float32sToFloat16sClamped(src []float32) []uint16 {
	out := make([]uint16, len(src))
	for i, f := range src {
		out[i] = Float32ToFloat16Clamped(f)
	}
	return out
}

// Float16sToFloat32s converts a slice with Float16ToFloat32.
func Float16sToFloat32s(src []uint16) []float32 {
	out := make([]float32, len(src))
	for i, h := range src {
		out[i] = Float16ToFloat32(h)
	}
	return out
}
