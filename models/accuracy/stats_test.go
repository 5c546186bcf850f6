package accuracy

import (
	"math"
	"testing"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.6f, want %.6f (±%g)", what, got, want, tol)
	}
}

// Published Wilson score intervals (no continuity correction).
func TestWilsonPublished(t *testing.T) {
	cases := []struct {
		k, n   int
		lo, hi float64
		source string
	}{
		// Newcombe, Statistics in Medicine 17:857 (1998), Table II, method 3.
		{81, 263, 0.2553, 0.3662, "Newcombe 1998"},
		{15, 148, 0.0624, 0.1605, "Newcombe 1998"},
		{0, 20, 0, 0.1611, "Newcombe 1998"},
		{1, 29, 0.0061, 0.1718, "Newcombe 1998"},
		// Fagerland, Lydersen & Laake, Statistical Analysis of Contingency
		// Tables (2017), chapter 2: 13 of 16.
		{13, 16, 0.5699, 0.9341, "Fagerland et al. 2017"},
	}
	for _, c := range cases {
		iv := Wilson(c.k, c.n, Z95)
		near(t, c.source+" lo", iv.Lo, c.lo, 5e-5)
		near(t, c.source+" hi", iv.Hi, c.hi, 5e-5)
	}
}

func TestWilsonEdges(t *testing.T) {
	if iv := Wilson(0, 0, Z95); iv != (Interval{0, 1}) {
		t.Errorf("n=0: %v, want [0, 1]", iv)
	}
	if iv := Wilson(50, 50, Z95); iv.Hi != 1 || iv.Lo <= 0.9 || iv.Lo >= 1 {
		t.Errorf("50/50: %v", iv)
	}
	// Out-of-range counts are clamped, never NaN.
	if iv := Wilson(60, 50, Z95); math.IsNaN(iv.Lo) || iv.Hi != 1 {
		t.Errorf("60/50: %v", iv)
	}
	// Narrows with n: 950/1000 is tighter than 95/100.
	a, b := Wilson(95, 100, Z95), Wilson(950, 1000, Z95)
	if b.Hi-b.Lo >= a.Hi-a.Lo {
		t.Errorf("1000 images %v no tighter than 100 %v", b, a)
	}
}

// McNemar's exact test against published p-values (Fagerland, Lydersen &
// Laake, BMC Medical Research Methodology 13:91, 2013).
func TestMcNemarExactPublished(t *testing.T) {
	cases := []struct {
		b, c int
		p    float64
		tol  float64
		name string
	}{
		{1, 7, 0.0703, 5e-5, "Bentur et al. 2009 (b=1, c=7)"},
		{6, 16, 0.0525, 5e-5, "Cavo et al. 2012 (b=6, c=16)"},
		// The exact binomial test of 13 of 16 at 1/2 (Fagerland et al.
		// 2017, chapter 2): P = 0.02127.
		{3, 13, 0.02127, 5e-6, "13 of 16"},
	}
	for _, c := range cases {
		near(t, c.name, McNemarExact(c.b, c.c), c.p, c.tol)
		near(t, c.name+" (swapped)", McNemarExact(c.c, c.b), c.p, c.tol)
	}
	if p := McNemarExact(0, 0); p != 1 {
		t.Errorf("no discordant pairs: p = %v, want 1", p)
	}
	if p := McNemarExact(5, 5); p != 1 {
		t.Errorf("balanced: p = %v, want 1 (capped)", p)
	}
	// Large counts stay finite and tiny.
	if p := McNemarExact(0, 2000); !(p >= 0 && p < 1e-300) {
		t.Errorf("0 vs 2000: p = %v", p)
	}
	// Hand count: b=0, c=5 → 2/32.
	near(t, "0 vs 5", McNemarExact(0, 5), 2.0/32, 1e-12)
}

// Newcombe's interval for a paired difference, against the published
// value for Cavo et al. 2012 (Fagerland, Lydersen & Laake 2017, chapter 8:
// estimate −0.0621, 95% CI −0.1186 to −0.0046).
func TestDiffIntervalPublished(t *testing.T) {
	// Rows: variant right/wrong; columns: reference right/wrong. Cavo's
	// table [[59, 6], [16, 80]] read as "after" (variant) by "before".
	tb := Table{Both: 59, VariantOnly: 6, RefOnly: 16, Neither: 80}
	near(t, "diff", tb.Diff(), -0.0621, 5e-5)
	iv := tb.DiffInterval(Z95)
	near(t, "lo", iv.Lo, -0.1186, 5e-5)
	near(t, "hi", iv.Hi, -0.0046, 5e-5)
	// McNemar's exact test is conservative: p = 0.0525 here although
	// the interval just excludes 0. Significance follows the test.
	d := tb.Compare()
	if d.Significant || d.Images != 161 || math.Abs(d.P-0.0525) > 5e-5 {
		t.Errorf("Compare = %+v, want p 0.0525 (not significant) on 161 images", d)
	}
}

func TestDiffIntervalEdges(t *testing.T) {
	// Identical answers: difference 0, interval around it, not significant.
	tb := Table{Both: 950, Neither: 50}
	d := tb.Compare()
	if d.Diff != 0 || d.Significant || !d.CI.Contains(0) || d.CI.Hi-d.CI.Lo > 0.01 {
		t.Errorf("identical: %+v", d)
	}
	if iv := (Table{}).DiffInterval(Z95); iv != (Interval{-1, 1}) {
		t.Errorf("empty: %v", iv)
	}
	// All discordant one way: the interval excludes 0.
	tb = Table{Both: 90, RefOnly: 10}
	if d := tb.Compare(); d.CI.Contains(0) || !d.Significant || d.Diff != -0.1 {
		t.Errorf("10 lost: %+v", d)
	}
}
