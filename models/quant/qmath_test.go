package quant

import (
	"math"
	"slices"
	"testing"
)

func TestRounding(t *testing.T) {
	tests := []struct {
		x             float32
		even, awayOut float32
	}{
		{0.5, 0, 1}, {1.5, 2, 2}, {2.5, 2, 3}, {-0.5, 0, -1}, {-2.5, -2, -3}, {7.5, 8, 8}, {6.5, 6, 7}, {2.4, 2, 2}, {-2.6, -3, -3},
	}
	for _, tc := range tests {
		if got := roundHalfEven(tc.x); got != tc.even {
			t.Errorf("roundHalfEven(%g) = %g, want %g", tc.x, got, tc.even)
		}
		if got := roundHalfAway(tc.x); got != tc.awayOut {
			t.Errorf("roundHalfAway(%g) = %g, want %g", tc.x, got, tc.awayOut)
		}
	}
}

func TestScaleZeroPoint(t *testing.T) {
	tests := []struct {
		name       string
		rmin, rmax float32
		q          intRange
		sym        bool
		scale      float32
		zp         int32
	}{
		{"uint8 asymmetric", -1, 2, uint8Range(false, false), false, float32(3.0 / 255), 85},
		{"range widened to contain 0", 1, 2.55, uint8Range(false, false), false, 0.01, 0},
		{"negative only", -2.55, -1, uint8Range(false, false), false, 0.01, 255},
		{"int8 symmetric", -0.5, 127, int8Range(true, false), true, 1, 0},
		{"int8 symmetric from the negative side", -63.5, 2, int8Range(true, false), true, 0.5, 0},
		{"uint8 symmetric zero point is the middle", -1, 1, uint8Range(true, false), true, float32(2.0 / 254), 127},
		{"reduce range int8", -64, 64, int8Range(true, true), true, 1, 0},
		{"all-zero range: scale 1, zero point 0", 0, 0, uint8Range(false, false), false, 1, 0},
		{"denormal range: scale 1", 0, 1e-40, int8Range(true, false), true, 1, 0},
		{"NaN range: scale 1", float32(math.NaN()), 1, int8Range(true, false), true, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, zp := scaleZeroPoint(tc.rmin, tc.rmax, tc.q, tc.sym)
			if s != tc.scale || zp != tc.zp {
				t.Errorf("scaleZeroPoint(%g, %g, %v, %v) = (%g, %d), want (%g, %d)", tc.rmin, tc.rmax, tc.q, tc.sym, s, zp, tc.scale, tc.zp)
			}
		})
	}
}

func TestQuantizeValue(t *testing.T) {
	q := int8Range(true, false)
	tests := []struct {
		x, s float32
		zp   int32
		want int32
	}{
		{1.25, 0.5, 0, 2},    // 2.5 rounds to even
		{1.75, 0.5, 0, 4},    // 3.5 rounds to even
		{-1.25, 0.5, 0, -2},  // -2.5 rounds to even
		{100, 0.5, 0, 127},   // saturates
		{-100, 0.5, 0, -127}, // symmetric range stops at -127
		{0.25, 0.5, 3, 3},    // 0.5 → 0, plus the zero point
		{float32(math.NaN()), 1, 0, 0},
	}
	for _, tc := range tests {
		if got := quantizeValue(tc.x, tc.s, tc.zp, q); got != tc.want {
			t.Errorf("quantizeValue(%g, %g, %d) = %d, want %d", tc.x, tc.s, tc.zp, got, tc.want)
		}
	}
}

func TestQuantizeInt8Weights(t *testing.T) {
	// [K=3, N=2]: column 0 spans ±127 (scale 1), column 1 ±63.5 (scale 0.5).
	w := []float32{
		127, 63.5,
		63.5, -31.25,
		-2.5, 0,
	}
	t.Run("per channel", func(t *testing.T) {
		q := quantizeInt8Weights(w, 3, 2, false, false)
		if !slices.Equal(q.scales, []float32{1, 0.5}) {
			t.Errorf("scales = %v, want [1 0.5]", q.scales)
		}
		// 63.5 → 64 (half to even), -62.5 → -62, -2.5 → -2.
		if want := []int8{127, 127, 64, -62, -2, 0}; !slices.Equal(q.q, want) {
			t.Errorf("q = %v, want %v", q.q, want)
		}
	})
	t.Run("per tensor", func(t *testing.T) {
		q := quantizeInt8Weights(w, 3, 2, true, false)
		if !slices.Equal(q.scales, []float32{1}) {
			t.Errorf("scales = %v, want [1]", q.scales)
		}
		if want := []int8{127, 64, 64, -31, -2, 0}; !slices.Equal(q.q, want) {
			t.Errorf("q = %v, want %v", q.q, want)
		}
	})
	t.Run("reduce range", func(t *testing.T) {
		q := quantizeInt8Weights([]float32{64, -32}, 2, 1, false, true)
		if q.scales[0] != 1 || !slices.Equal(q.q, []int8{64, -32}) {
			t.Errorf("got scales %v q %v, want [1] [64 -32]", q.scales, q.q)
		}
	})
	t.Run("all-zero column", func(t *testing.T) {
		q := quantizeInt8Weights([]float32{0, 1, 0, -1}, 2, 2, false, false)
		if q.scales[0] != 1 || q.q[0] != 0 || q.q[2] != 0 {
			t.Errorf("zero column: scale %g codes %d %d, want 1 0 0", q.scales[0], q.q[0], q.q[2])
		}
	})
}

// column builds a [K, 1] weight.
func column(vs ...float32) []float32 { return vs }

// TestQuantizeNBits4 checks MatMulNBits weights against hand-computed
// codes, following MLAS's blockwise quantizer step by step.
func TestQuantizeNBits4(t *testing.T) {
	t.Run("symmetric: largest magnitude maps to code 0, roundf ties away", func(t *testing.T) {
		// max 1 and min -1 tie in magnitude: MLAS takes the minimum, so
		// scale = -(-1)/8 = 0.125 and code = roundf(v·8 + 8).
		w := column(0.5, -1, 0.25, 0, 0.8, -0.3, 0.125, 1, 0.0625, -0.0625, 0.1875, -0.1875, 0, 0, 0, 0)
		q := quantizeNBits4(w, 16, 1, 16, false)
		if !slices.Equal(q.scales, []float32{0.125}) || q.zps != nil {
			t.Fatalf("scales %v zps %v, want [0.125] nil", q.scales, q.zps)
		}
		// codes 12 0 10 8 14 6 9 15(clamped 16) 9(8.5 away) 8(7.5 away) 10(9.5) 7(6.5) 8 8 8 8
		want := []byte{0x0C, 0x8A, 0x6E, 0xF9, 0x89, 0x7A, 0x88, 0x88}
		if !slices.Equal(q.packed, want) {
			t.Errorf("packed % x, want % x", q.packed, want)
		}
	})
	t.Run("symmetric: negative scale when the largest value is positive", func(t *testing.T) {
		w := column(4, -2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
		q := quantizeNBits4(w, 16, 1, 16, false)
		if q.scales[0] != -0.5 {
			t.Errorf("scale %g, want -0.5", q.scales[0])
		}
		// codes: 4·(-2)+8 = 0, -2·(-2)+8 = 12, 1·(-2)+8 = 6
		if q.packed[0] != 0xC0 || q.packed[1]&0x0F != 6 {
			t.Errorf("packed % x, want c0 86 ...", q.packed[:2])
		}
	})
	t.Run("asymmetric with zero point", func(t *testing.T) {
		// lo -1.5, hi 6 → scale 7.5/15 = 0.5, zp = roundf(1.5/0.5) = 3,
		// code = roundf(2v + 3).
		w := column(-1.5, 6, 0, 1.25, 0.75, -0.25, 2, 5.9, 0, 0, 0, 0, 0, 0, 0, 0)
		q := quantizeNBits4(w, 16, 1, 16, true)
		if q.scales[0] != 0.5 {
			t.Errorf("scale %g, want 0.5", q.scales[0])
		}
		// codes 0 15 3 6(5.5) 5(4.5) 3(2.5) 7 15(14.8) 3…; one block: zp byte 3 | 8<<4
		want := []byte{0xF0, 0x63, 0x35, 0xF7, 0x33, 0x33, 0x33, 0x33}
		if !slices.Equal(q.packed, want) {
			t.Errorf("packed % x, want % x", q.packed, want)
		}
		if !slices.Equal(q.zps, []byte{0x83}) {
			t.Errorf("zero points % x, want 83 (odd block count padded with 8)", q.zps)
		}
	})
	t.Run("K not a multiple of the block: zero padding quantized", func(t *testing.T) {
		// K = 17, block 16: the second block holds one value and 15
		// padding zeros; N = 2 columns.
		k, n := 17, 2
		w := make([]float32, k*n)
		for i := 0; i < k; i++ {
			w[i*n] = float32(i + 1)    // column 0: 1..17
			w[i*n+1] = -float32(i) / 2 // column 1: 0..-8
		}
		q := quantizeNBits4(w, k, n, 16, true)
		if q.kBlocks != 2 || len(q.packed) != n*2*8 || len(q.scales) != 4 || len(q.zps) != 2 {
			t.Fatalf("layout kBlocks %d packed %d scales %d zps %d, want 2, 32, 4, 2", q.kBlocks, len(q.packed), len(q.scales), len(q.zps))
		}
		// Column 0, block 1: [17, 0×15] → lo 0, hi 17, scale 17/15, zp 0;
		// 17 → 15, padding → 0.
		if q.packed[8] != 0x0F || q.packed[9] != 0 {
			t.Errorf("column 0 block 1 packed % x, want 0f 00 ...", q.packed[8:10])
		}
		// Column 1, block 1: [-8, 0×15] → lo -8, scale 8/15, zp 15: -8 → 0,
		// padding → 15.
		if q.packed[24] != 0xF0 || q.packed[25] != 0xFF {
			t.Errorf("column 1 block 1 packed % x, want f0 ff ...", q.packed[24:26])
		}
		if q.zps[1]>>4 != 15 {
			t.Errorf("column 1 block 1 zero point %d, want 15", q.zps[1]>>4)
		}
		// Dequantizing recovers every value within half a step.
		dq := dequantNBits4(q, k, n, 16)
		for i := range w {
			b := (i / n) / 16
			s := q.scales[(i%n)*2+b]
			if d := math.Abs(float64(dq[i] - w[i])); d > float64(s)/2+1e-6 {
				t.Errorf("value %d: %g dequantizes to %g (scale %g)", i, w[i], dq[i], s)
			}
		}
	})
	t.Run("all-zero block", func(t *testing.T) {
		q := quantizeNBits4(make([]float32, 16), 16, 1, 16, false)
		if q.scales[0] != 0 || !math.Signbit(float64(q.scales[0])) {
			t.Errorf("scale %g, want -0 (MLAS computes -0/8)", q.scales[0])
		}
		for _, b := range q.packed {
			if b != 0x88 {
				t.Fatalf("packed % x, want all 88 (code 8 = zero)", q.packed)
			}
		}
		qa := quantizeNBits4(make([]float32, 16), 16, 1, 16, true)
		if qa.scales[0] != 0 || qa.zps[0]&0x0F != 0 || qa.packed[0] != 0 {
			t.Errorf("asymmetric zero block: scale %g zp %d code byte %x, want 0 0 0", qa.scales[0], qa.zps[0]&0x0F, qa.packed[0])
		}
	})
}
