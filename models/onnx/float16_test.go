package onnx

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestFloat32ToFloat16(t *testing.T) {
	minSub := float32(math.Ldexp(1, -24)) // 5.96e-8, bits 0x0001
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"max finite 65504", 65504, 0x7bff},
		{"65505 rounds down to 65504", 65505, 0x7bff},
		{"65519 rounds down to 65504", 65519, 0x7bff},
		{"65520 ties up to inf", 65520, 0x7c00},
		{"-65520 to -inf", -65520, 0xfc00},
		{"1e6 overflows", 1e6, 0x7c00},
		{"max float32", math.MaxFloat32, 0x7c00},
		{"+inf", float32(math.Inf(1)), 0x7c00},
		{"-inf", float32(math.Inf(-1)), 0xfc00},
		{"min normal 2^-14", float32(math.Ldexp(1, -14)), 0x0400},
		{"max subnormal", float32(math.Ldexp(1023, -24)), 0x03ff},
		{"max subnormal + half ulp ties to even normal", float32(math.Ldexp(1023.5, -24)), 0x0400},
		{"min subnormal 5.96e-8", minSub, 0x0001},
		{"-min subnormal", -minSub, 0x8001},
		{"half min subnormal ties to even zero", minSub / 2, 0x0000},
		{"-half min subnormal to -0", -minSub / 2, 0x8000},
		{"just above half min subnormal", math.Nextafter32(minSub/2, 1), 0x0001},
		{"just below half min subnormal", math.Nextafter32(minSub/2, 0), 0x0000},
		{"1.5 min subnormal ties to even 2", 1.5 * minSub, 0x0002},
		{"2.5 min subnormal ties to even 2", 2.5 * minSub, 0x0002},
		{"3.5 min subnormal ties to even 4", 3.5 * minSub, 0x0004},
		{"smallest float32 subnormal", math.SmallestNonzeroFloat32, 0x0000},
		{"tiny negative", -1e-10, 0x8000},
		{"1+2^-11 ties to even 1", 1 + float32(math.Ldexp(1, -11)), 0x3c00},
		{"1+3*2^-11 ties to even 1+2^-9", 1 + float32(math.Ldexp(3, -11)), 0x3c02},
		{"just above tie rounds up", math.Nextafter32(1+float32(math.Ldexp(1, -11)), 2), 0x3c01},
		{"2049 ties to even 2048", 2049, 0x6800},
		{"2051 ties to even 2052", 2051, 0x6802},
		{"0.1", 0.1, 0x2e66},
		{"pi", math.Pi, 0x4248},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Float32ToFloat16(tt.in); got != tt.want {
				t.Errorf("Float32ToFloat16(%g) = %#04x, want %#04x", tt.in, got, tt.want)
			}
		})
	}
}

func isNaN16(h uint16) bool { return h&0x7c00 == 0x7c00 && h&0x03ff != 0 }

func TestFloat32ToFloat16NaN(t *testing.T) {
	tests := []struct {
		name string
		bits uint32
		sign uint16
	}{
		{"quiet NaN", 0x7fc00000, 0},
		{"negative NaN", 0xffc00000, 0x8000},
		{"signaling NaN, payload only in low bits", 0x7f800001, 0},
		{"NaN with high payload", 0x7fbfe000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := math.Float32frombits(tt.bits)
			for _, h := range []uint16{Float32ToFloat16(f), Float32ToFloat16Clamped(f)} {
				if !isNaN16(h) || h&0x8000 != tt.sign || h&0x0200 == 0 {
					t.Errorf("NaN %#08x → %#04x, want a quiet NaN with sign %#04x", tt.bits, h, tt.sign)
				}
			}
		})
	}
}

func TestFloat32ToFloat16Clamped(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{
		{65504, 0x7bff},
		{65520, 0x7bff},
		{1e9, 0x7bff},
		{-1e9, 0xfbff},
		{math.MaxFloat32, 0x7bff},
		{float32(math.Inf(1)), 0x7c00},
		{float32(math.Inf(-1)), 0xfc00},
		{1, 0x3c00},
		{float32(math.Ldexp(1, -25)), 0x0000},
	}
	for _, tt := range tests {
		if got := Float32ToFloat16Clamped(tt.in); got != tt.want {
			t.Errorf("Float32ToFloat16Clamped(%g) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
}

func TestFloat16ToFloat32(t *testing.T) {
	tests := []struct {
		in   uint16
		want float64
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x7bff, 65504},
		{0x0001, math.Ldexp(1, -24)},
		{0x03ff, math.Ldexp(1023, -24)},
		{0x0400, math.Ldexp(1, -14)},
		{0x3555, 0.333251953125},
		{0x7c00, math.Inf(1)},
		{0xfc00, math.Inf(-1)},
	}
	for _, tt := range tests {
		if got := Float16ToFloat32(tt.in); float64(got) != tt.want {
			t.Errorf("Float16ToFloat32(%#04x) = %g, want %g", tt.in, got, tt.want)
		}
	}
	if got := Float16ToFloat32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("Float16ToFloat32(0x8000) = %g, want -0", got)
	}
	if got := Float16ToFloat32(0xfe00); !math.IsNaN(float64(got)) || !math.Signbit(float64(got)) {
		t.Errorf("Float16ToFloat32(0xfe00) = %g, want -NaN", got)
	}
}

// TestFloat16RoundTripAll converts every float16 bit pattern to float32 and
// back: all values come back bit for bit, NaNs come back as NaNs of the same
// sign.
func TestFloat16RoundTripAll(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := Float16ToFloat32(h)
		back := Float32ToFloat16(f)
		if isNaN16(h) {
			if !math.IsNaN(float64(f)) || !isNaN16(back) || back&0x8000 != h&0x8000 {
				t.Fatalf("NaN %#04x → %g → %#04x", h, f, back)
			}
			continue
		}
		if back != h {
			t.Fatalf("%#04x → %g → %#04x", h, f, back)
		}
		if Float32ToFloat16Clamped(f) != h {
			t.Fatalf("clamped: %#04x → %g → %#04x", h, f, Float32ToFloat16Clamped(f))
		}
	}
}

// TestFloat32ToFloat16Nearest checks random float32 values against a brute
// force reference: the result is the nearest float16, ties to even.
func TestFloat32ToFloat16Nearest(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for range 200000 {
		// Random exponents across the float16 range and beyond.
		f := float32(math.Ldexp(r.Float64()+0.5, r.IntN(50)-30))
		if r.IntN(2) == 0 {
			f = -f
		}
		h := Float32ToFloat16(f)
		if h&0x7fff >= 0x7c00 { // overflow: must be at least the tie point
			if math.Abs(float64(f)) < 65520 {
				t.Fatalf("%g → %#04x (inf) below 65520", f, h)
			}
			continue
		}
		got := float64(Float16ToFloat32(h))
		dist := math.Abs(float64(f) - got)
		for _, n := range []uint16{h - 1, h + 1} {
			if n&0x7fff >= 0x7c00 || (n^h)&0x8000 != 0 {
				continue
			}
			d := math.Abs(float64(f) - float64(Float16ToFloat32(n)))
			if d < dist || (d == dist && n&1 == 0) {
				t.Fatalf("%g → %#04x (%g), but %#04x (%g) is nearer or the even tie", f, h, got, n, Float16ToFloat32(n))
			}
		}
	}
}

func TestFloat16Slices(t *testing.T) {
	in := []float32{0, 1, -2, 65520, 0.5}
	want := []uint16{0x0000, 0x3c00, 0xc000, 0x7c00, 0x3800}
	got := Float32sToFloat16s(in)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Float32sToFloat16s[%d] = %#04x, want %#04x", i, got[i], want[i])
		}
	}
	if c := Float32sToFloat16sClamped(in); c[3] != 0x7bff {
		t.Errorf("Float32sToFloat16sClamped[3] = %#04x, want 0x7bff", c[3])
	}
	back := Float16sToFloat32s(got)
	for i, f := range []float32{0, 1, -2, float32(math.Inf(1)), 0.5} {
		if back[i] != f {
			t.Errorf("Float16sToFloat32s[%d] = %g, want %g", i, back[i], f)
		}
	}
}

func BenchmarkFloat32ToFloat16(b *testing.B) {
	src := randFloats(1, 1<<16)
	b.SetBytes(int64(4 * len(src)))
	for b.Loop() {
		_ = Float32sToFloat16s(src)
	}
}
