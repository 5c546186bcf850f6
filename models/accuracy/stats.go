// Package accuracy counts how often a model's answers are right on a
// labelled image set and says how sure those counts are: top-1 and top-5
// accuracy with 95% Wilson score intervals, and, for a variant measured on
// the same images as its FP32 model, the paired difference with Newcombe's
// interval and McNemar's exact test. It owns the predictions file a run
// writes so that another run can be paired with it. Standard library only.
package accuracy

import (
	"math"
)

// Z95 is the standard normal quantile of a two-sided 95% interval.
const Z95 = 1.959963984540054

// Interval is a confidence interval for a proportion or a difference of
// proportions, both ends as fractions (0.012 is 1.2 points).
type Interval struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// Contains reports whether v lies in the interval (ends included).
func (iv Interval) Contains(v float64) bool { return v >= iv.Lo && v <= iv.Hi }

// Wilson is the Wilson score interval of k successes in n trials at the
// normal quantile z (Z95 for 95%); n = 0 gives [0, 1]. Unlike the Wald
// interval it stays inside [0, 1] and keeps its coverage near 0 and 1,
// where accuracies of good models live.
func Wilson(k, n int, z float64) Interval {
	if n <= 0 {
		return Interval{0, 1}
	}
	k = min(max(k, 0), n)
	nf, p := float64(n), float64(k)/float64(n)
	z2 := z * z
	centre := (p + z2/(2*nf)) / (1 + z2/nf)
	half := z / (1 + z2/nf) * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	lo, hi := centre-half, centre+half
	// Exact ends where the arithmetic would leave rounding dust.
	if k == 0 {
		lo = 0
	}
	if k == n {
		hi = 1
	}
	return Interval{Lo: max(0, lo), Hi: min(1, hi)}
}

// Table is the paired 2×2 table of a variant against its reference (the
// FP32 model) on the same images: how many each got right.
type Table struct {
	Both        int `json:"both"`         // both right
	VariantOnly int `json:"variant_only"` // the variant right, the reference wrong
	RefOnly     int `json:"ref_only"`     // the reference right, the variant wrong
	Neither     int `json:"neither"`      // both wrong
}

// N is the number of images in the table.
func (t Table) N() int { return t.Both + t.VariantOnly + t.RefOnly + t.Neither }

// Diff is the variant's accuracy minus the reference's, as a fraction:
// (VariantOnly − RefOnly) / N.
func (t Table) Diff() float64 {
	if t.N() == 0 {
		return 0
	}
	return float64(t.VariantOnly-t.RefOnly) / float64(t.N())
}

// DiffInterval is the confidence interval of Diff at quantile z by
// Newcombe's method 10 (the hybrid score interval for paired data,
// Statistics in Medicine 17:2635, 1998): the two marginal Wilson intervals
// combined with the correlation of the pairs. It needs no iteration, keeps
// inside [−1, 1] and has coverage close to nominal even when the
// discordant counts are small, which is the common case for a good
// quantized model.
func (t Table) DiffInterval(z float64) Interval {
	n := t.N()
	if n == 0 {
		return Interval{-1, 1}
	}
	nf := float64(n)
	a, b, c, d := float64(t.Both), float64(t.VariantOnly), float64(t.RefOnly), float64(t.Neither)
	p1, p2 := (a+b)/nf, (a+c)/nf // variant, reference
	w1 := Wilson(t.Both+t.VariantOnly, n, z)
	w2 := Wilson(t.Both+t.RefOnly, n, z)
	// φ̂, the correlation of the pairs, with Newcombe's correction of the
	// cross-product: 0 when 0 ≤ ad − bc ≤ n/2, ad − bc − n/2 above that.
	phi := 0.0
	if denom := (a + b) * (c + d) * (a + c) * (b + d); denom > 0 {
		cross := a*d - b*c
		switch {
		case cross > nf/2:
			cross -= nf / 2
		case cross >= 0:
			cross = 0
		}
		phi = cross / math.Sqrt(denom)
	}
	diff := p1 - p2
	dl1, du1 := p1-w1.Lo, w1.Hi-p1
	dl2, du2 := p2-w2.Lo, w2.Hi-p2
	lo := diff - math.Sqrt(max(0, dl1*dl1-2*phi*dl1*du2+du2*du2))
	hi := diff + math.Sqrt(max(0, du1*du1-2*phi*du1*dl2+dl2*dl2))
	return Interval{Lo: max(-1, lo), Hi: min(1, hi)}
}

// McNemarExact is the two-sided p-value of McNemar's exact (conditional)
// test: under "the two models are equally accurate" each of the b + c
// discordant images is equally likely to favour either, so the smaller
// count is binomial(b + c, 1/2); p = min(1, 2·P(X ≤ min(b, c))). No
// discordant pairs give 1.
func McNemarExact(b, c int) float64 {
	n := b + c
	if n <= 0 {
		return 1
	}
	k := min(b, c)
	// Σ_{i≤k} C(n, i) / 2ⁿ in log space, so n can be in the millions.
	lnHalfN := -float64(n) * math.Ln2
	lgN, _ := math.Lgamma(float64(n) + 1)
	var sum float64
	maxTerm := math.Inf(-1)
	terms := make([]float64, 0, k+1)
	for i := 0; i <= k; i++ {
		lgI, _ := math.Lgamma(float64(i) + 1)
		lgNI, _ := math.Lgamma(float64(n-i) + 1)
		t := lgN - lgI - lgNI + lnHalfN
		terms = append(terms, t)
		maxTerm = math.Max(maxTerm, t)
	}
	for _, t := range terms {
		sum += math.Exp(t - maxTerm)
	}
	p := 2 * math.Exp(maxTerm) * sum
	return math.Min(1, p)
}

// Significance is the level at which a paired difference is called
// significant (two-sided).
const Significance = 0.05

// Difference is the paired comparison of a variant with its reference on
// one measure (top-1 or top-5).
type Difference struct {
	// Diff is the variant's accuracy minus the reference's (fraction).
	Diff float64 `json:"diff"`
	// CI is its 95% interval (Newcombe's method 10).
	CI Interval `json:"ci95"`
	// P is McNemar's exact two-sided p-value.
	P float64 `json:"p"`
	// Significant is P < Significance.
	Significant bool `json:"significant"`
	// Images is the number of paired images.
	Images int `json:"images"`
}

// Compare summarizes a paired table.
func (t Table) Compare() Difference {
	p := McNemarExact(t.RefOnly, t.VariantOnly)
	return Difference{Diff: t.Diff(), CI: t.DiffInterval(Z95), P: p, Significant: p < Significance, Images: t.N()}
}
