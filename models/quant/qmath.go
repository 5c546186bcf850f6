package quant

import (
	"math"
)

// The arithmetic below reproduces ONNX Runtime's exactly, operation by
// operation in float32 (explicit float32 conversions keep the compiler
// from fusing a multiply and an add), so that weights quantized here match
// the bits ONNX Runtime's own quantizers write.

// roundHalfEven rounds to the nearest integer, ties to even: numpy's
// round, ONNX QuantizeLinear's and DynamicQuantizeLinear's rounding.
func roundHalfEven(x float32) float32 { return float32(math.RoundToEven(float64(x))) }

// roundHalfAway rounds to the nearest integer, ties away from zero: C's
// roundf, which MLAS's blockwise 4-bit quantizer uses.
func roundHalfAway(x float32) float32 { return float32(math.Round(float64(x))) }

// smallestNormal32 is numpy.finfo(float32).tiny, below which ONNX Runtime's
// quantization tool replaces a scale by 1.
const smallestNormal32 = 0x1p-126

// intRange is the integer range [lo, hi] a tensor is quantized to.
type intRange struct{ lo, hi int32 }

// int8Range returns the range ONNX Runtime's quantization tool uses for
// int8 weights: [-127, 127] symmetric, [-64, 64] with reduce_range,
// [-128, 127] otherwise.
func int8Range(symmetric, reduceRange bool) intRange {
	switch {
	case reduceRange:
		return intRange{-64, 64}
	case symmetric:
		return intRange{-127, 127}
	}
	return intRange{-128, 127}
}

// uint8Range returns the range for uint8 values: [0, 127] with
// reduce_range, [0, 254] symmetric, [0, 255] otherwise.
func uint8Range(symmetric, reduceRange bool) intRange {
	switch {
	case reduceRange:
		return intRange{0, 127}
	case symmetric:
		return intRange{0, 254}
	}
	return intRange{0, 255}
}

// scaleZeroPoint computes a scale and zero point for the real range
// [rmin, rmax] as ONNX Runtime's quantization tool (compute_scale_zp) does:
// the range is widened to contain 0 (and made symmetric when asked), the
// scale is (rmax-rmin)/(qmax-qmin) computed in float64 and stored as
// float32, a scale below the smallest normal float32 (an all-zero range)
// becomes 1 with zero point 0, and the zero point is
// round_half_even(qmin - rmin/scale), or the middle of the range when
// symmetric.
func scaleZeroPoint(rmin, rmax float32, q intRange, symmetric bool) (scale float32, zp int32) {
	if math.IsNaN(float64(rmin)) || math.IsNaN(float64(rmax)) {
		return 1, 0
	}
	rmin = min(rmin, 0)
	rmax = max(rmax, 0)
	if symmetric {
		absmax := max(float32(math.Abs(float64(rmin))), float32(math.Abs(float64(rmax))))
		rmin, rmax = -absmax, absmax
	}
	s := float32((float64(rmax) - float64(rmin)) / float64(q.hi-q.lo))
	if !(s >= smallestNormal32) || math.IsInf(float64(s), 0) {
		return 1, 0
	}
	if symmetric {
		return s, int32(roundHalfEven(float32(q.lo+q.hi) / 2))
	}
	z := roundHalfEven(float32(float32(q.lo) - rmin/s))
	return s, int32(min(max(z, float32(q.lo)), float32(q.hi)))
}

// quantizeValue is ONNX Runtime's quantize_nparray for one value:
// clip(round_half_even(x / scale) + zp, lo, hi), the division in float32.
func quantizeValue(x, scale float32, zp int32, q intRange) int32 {
	v := roundHalfEven(x/scale) + float32(zp)
	if math.IsNaN(float64(v)) {
		return zp
	}
	return int32(min(max(v, float32(q.lo)), float32(q.hi)))
}

// absMax returns the largest |v| of vs (0 for an empty slice; NaNs are
// ignored).
func absMax(vs []float32) float32 {
	var m float32
	for _, v := range vs {
		if a := float32(math.Abs(float64(v))); a > m {
			m = a
		}
	}
	return m
}

// int8Weights is a [K, N] MatMul weight quantized to symmetric int8.
type int8Weights struct {
	q      []int8    // [K, N] row-major
	scales []float32 // [N] per column, or [1] per tensor
}

// quantizeInt8Weights quantizes a [K, N] row-major weight to symmetric
// int8, per column (per output channel) or per tensor. Every scale comes
// from scaleZeroPoint over the column's (tensor's) range, so zero points
// are all 0.
func quantizeInt8Weights(w []float32, k, n int, perTensor, reduceRange bool) int8Weights {
	qr := int8Range(true, reduceRange)
	out := int8Weights{q: make([]int8, len(w))}
	if perTensor {
		lo, hi := minMax(w)
		s, zp := scaleZeroPoint(lo, hi, qr, true)
		out.scales = []float32{s}
		for i, v := range w {
			out.q[i] = int8(quantizeValue(v, s, zp, qr))
		}
		return out
	}
	out.scales = make([]float32, n)
	zps := make([]int32, n)
	los := make([]float32, n)
	his := make([]float32, n)
	for j := 0; j < n; j++ {
		los[j], his[j] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	for i := 0; i < k; i++ {
		row := w[i*n : (i+1)*n]
		for j, v := range row {
			los[j] = min(los[j], v)
			his[j] = max(his[j], v)
		}
	}
	for j := 0; j < n; j++ {
		if k == 0 {
			los[j], his[j] = 0, 0
		}
		out.scales[j], zps[j] = scaleZeroPoint(los[j], his[j], qr, true)
	}
	for i := 0; i < k; i++ {
		for j := 0; j < n; j++ {
			out.q[i*n+j] = int8(quantizeValue(w[i*n+j], out.scales[j], zps[j], qr))
		}
	}
	return out
}

// minMax returns the smallest and largest value of vs (0, 0 when empty).
func minMax(vs []float32) (lo, hi float32) {
	if len(vs) == 0 {
		return 0, 0
	}
	lo, hi = vs[0], vs[0]
	for _, v := range vs[1:] {
		lo = min(lo, v)
		hi = max(hi, v)
	}
	return lo, hi
}

// nbitsWeights is a [K, N] weight in MatMulNBits layout.
type nbitsWeights struct {
	kBlocks int
	blob    int       // bytes per block: block*bits/8
	packed  []byte    // B: [N, kBlocks, blob]
	scales  []float32 // [N * kBlocks], column n's block b at n*kBlocks+b
	zps     []byte    // asymmetric only: [N * ceil(kBlocks/2)], packed
}

// quantizeNBits4 quantizes a [K, N] row-major float32 weight to 4 bits in
// the layout com.microsoft MatMulNBits reads, exactly as ONNX Runtime's
// MatMulNBitsQuantizer (DEFAULT algorithm, QOperator format) and MLAS's
// BlockwiseQuantizer do it:
//
//   - K is padded with zero rows to kBlocks*block; a block is block
//     consecutive K values of one column;
//   - symmetric: m is the block's value of largest magnitude (the minimum
//     on a tie), scale = -m/8, zero point 8 (implicit, not stored): m maps
//     to code 0;
//   - asymmetric: lo = min(min, 0), hi = max(max, 0), scale = (hi-lo)/15,
//     zp = roundf(-lo/scale) clamped to [0, 15], or 0 when scale is 0;
//   - code = clamp(roundf(v * (1/scale) + zp), 0, 15), the reciprocal 0
//     when the scale is 0; roundf rounds half away from zero;
//   - two codes a byte, even k in the low nibble; zero points two a byte,
//     even block in the low nibble, a column's odd last block padded with
//     the nibble 8.
func quantizeNBits4(w []float32, k, n, block int, asym bool) nbitsWeights {
	const bits = 4
	kBlocks := (k + block - 1) / block
	blob := block * bits / 8
	out := nbitsWeights{
		kBlocks: kBlocks,
		blob:    blob,
		packed:  make([]byte, n*kBlocks*blob),
		scales:  make([]float32, n*kBlocks),
	}
	zpRow := (kBlocks + 1) / 2
	if asym {
		out.zps = make([]byte, n*zpRow)
		for i := range out.zps {
			out.zps[i] = 0x88 // MLAS fills missing zero points with the midpoint
		}
	}
	vals := make([]float32, block)
	for col := 0; col < n; col++ {
		for b := 0; b < kBlocks; b++ {
			// Gather the block, zero-padded past K.
			lo, hi := float32(math.MaxFloat32), float32(-math.MaxFloat32)
			for i := 0; i < block; i++ {
				r := b*block + i
				var v float32
				if r < k {
					v = w[r*n+col]
				}
				vals[i] = v
				if v < lo {
					lo = v
				}
				if v > hi {
					hi = v
				}
			}
			var scale float32
			zp := int32(8)
			if asym {
				var z uint8
				scale, z = range2ScaleZP4(lo, hi)
				zp = int32(z)
				bi := col*zpRow + b/2
				if b%2 == 0 {
					out.zps[bi] = out.zps[bi]&0xF0 | z
				} else {
					out.zps[bi] = out.zps[bi]&0x0F | z<<4
				}
			} else {
				scale = range2Scale4(lo, hi)
			}
			out.scales[col*kBlocks+b] = scale
			var recip float32
			if scale != 0 {
				recip = 1 / scale
			}
			base := (col*kBlocks + b) * blob
			for i := 0; i < block; i += 2 {
				c0 := code4(vals[i], recip, zp)
				c1 := code4(vals[i+1], recip, zp)
				out.packed[base+i/2] = c0&0x0F | c1<<4
			}
		}
	}
	return out
}

// range2Scale4 is MLAS range2scale for 4 bits: the value of largest
// magnitude (the minimum on a tie) over -8.
func range2Scale4(lo, hi float32) float32 {
	m := lo
	if float32(math.Abs(float64(hi))) > float32(math.Abs(float64(lo))) {
		m = hi
	}
	return -m / 8
}

// range2ScaleZP4 is MLAS range2scalezp for 4 bits.
func range2ScaleZP4(lo, hi float32) (float32, uint8) {
	lo = min(lo, 0)
	hi = max(hi, 0)
	scale := float32(hi-lo) / 15
	zpf := lo
	if scale != 0 {
		zpf = 0 - lo/scale
	}
	switch {
	case zpf < 0:
		return scale, 0
	case zpf > 15:
		return scale, 15
	}
	return scale, uint8(roundHalfAway(zpf))
}

// code4 is one 4-bit code: clamp(roundf(v*recip + zp), 0, 15).
func code4(v, recip float32, zp int32) uint8 {
	t := float32(v * recip)
	t = float32(t + float32(zp))
	r := roundHalfAway(t)
	if !(r >= 0) { // NaN too
		return 0
	}
	if r > 15 {
		return 15
	}
	return uint8(r)
}

// dequantNBits4 reverses quantizeNBits4 into a [K, N] row-major float32
// weight: (code - zp) * scale, as MatMulNBits computes it.
func dequantNBits4(q nbitsWeights, k, n, block int) []float32 {
	w := make([]float32, k*n)
	zpRow := (q.kBlocks + 1) / 2
	for col := 0; col < n; col++ {
		for r := 0; r < k; r++ {
			b := r / block
			s := q.scales[col*q.kBlocks+b]
			zp := int32(8)
			if q.zps != nil {
				zb := q.zps[col*zpRow+b/2]
				if b%2 == 0 {
					zp = int32(zb & 0x0F)
				} else {
					zp = int32(zb >> 4)
				}
			}
			byteIdx := (col*q.kBlocks+b)*q.blob + (r%block)/2
			c := q.packed[byteIdx]
			if r%2 == 0 {
				c &= 0x0F
			} else {
				c >>= 4
			}
			w[r*n+col] = float32(int32(c)-zp) * s
		}
	}
	return w
}
