// Package fidelity measures how closely a variant's outputs (an FP16, INT8
// or INT4 model's) follow the FP32 reference's on the same inputs: cosine
// similarity, arg-max agreement, absolute error and SQNR. It is the one
// implementation the quantizer's check (models/quant, cmd/quantscope
// quantize --check), the benchmark worker (profiler) and the reports and TUI
// that read its records share; it depends on the standard library only.
package fidelity

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// MaxSQNRdB bounds Result.SQNRdB: identical outputs report MaxSQNRdB
// (JSON has no infinity; float32 rounding noise sits far below it, near
// 140 dB) and a zero reference against a non-zero variant reports
// −MaxSQNRdB.
const MaxSQNRdB = 300

// Result compares a variant's outputs with the reference's, one output
// vector (logits or embeddings) per sample. The JSON names are those of the
// records results.jsonl has always held; mean_abs_error is newer, so older
// records read it as 0, and it is left out when it is 0.
//
// A NaN in a sample's outputs (either side) makes the cosine, error and
// SQNR fields NaN, which fails every gate clause, and counts the sample as
// disagreeing for Top1 and Top5: NaN outputs never look faithful.
// JSON has no NaN or infinity: MarshalJSON writes such fields as null and
// UnmarshalJSON reads null back as NaN, so a record of a variant whose
// outputs overflowed is stored and read like any other.
type Result struct {
	// Samples is the Number of output vectors compared.
	Samples int `json:"samples"`
	// CosineMean is the cosine similarity of each sample's two vectors,
	// averaged over samples; −1 to 1. Two zero vectors count as identical
	// (1), a zero vector against a non-zero one as orthogonal (0).
	CosineMean float64 `json:"cosine_mean"`
	// CosineMin is the worst sample's cosine similarity.
	CosineMin float64 `json:"cosine_min"`
	// Top1 is the fraction of samples (0–1) whose arg-max agrees; ties go
	// to the first index.
	Top1 float64 `json:"top1"`
	// Top5 is the fraction of samples (0–1) whose reference arg-max is
	// among the variant's five largest values (ties ranked by index, so
	// equal values do not all count as top 5; vectors of five values or
	// fewer always agree).
	Top5 float64 `json:"top5"`
	// MaxAbsError is the largest absolute difference of any output value.
	MaxAbsError float64 `json:"max_abs_error"`
	// MeanAbsError is the mean absolute difference over all output values.
	// JSON omits it when 0 (identical outputs), so such records read as
	// they did before the field existed.
	MeanAbsError float64 `json:"mean_abs_error,omitempty"`
	// SQNRdB is the signal-to-quantization-noise ratio over all samples,
	// 10·log10(Σref² / Σ(ref−got)²) in dB, clamped to ±MaxSQNRdB:
	// MaxSQNRdB when the outputs are identical (zero noise, even for a
	// zero reference), −MaxSQNRdB when the reference is all zeros and the
	// variant is not (no signal, only noise).
	SQNRdB float64 `json:"sqnr_db"`

	// RefMedianMargin is the median, over samples, of the reference's
	// top-1 margin: its largest value minus its second largest. Logits of
	// untrained (synthetic) weights are nearly tied, so their arg-max
	// flips on tiny errors: compare Top1 with this margin. NaN when
	// unknown (vectors of one value, NaN outputs, records older than it).
	RefMedianMargin float64 `json:"ref_median_margin"`
	// DecisiveSamples counts the samples whose reference margin exceeds
	// MaxAbsError, the variant's largest error; DecisiveTop1 is the
	// arg-max agreement on those samples (NaN when there are none, or in
	// records older than it). A flip where the margin is within the
	// error is a near-tie, not evidence of damage; a flip where it is
	// not is.
	DecisiveTop1    float64 `json:"decisive_top1"`
	DecisiveSamples int     `json:"decisive_samples"`

	// Inputs says what the outputs were computed on, e.g. "64 seeded
	// synthetic images (seed 7, imagenet normalisation)"; set by the
	// caller that fed them ("" when not recorded).
	Inputs string `json:"inputs,omitempty"`
}

// Compare measures how closely got follows ref: both hold one output vector
// per sample, in the same order. It fails when there are no samples, when
// the sample counts differ, or when a sample's vectors are empty or differ
// in length.
func Compare(ref, got [][]float32) (Result, error) {
	if len(ref) != len(got) {
		return Result{}, fmt.Errorf("compare outputs: %d reference samples, %d variant samples", len(ref), len(got))
	}
	if len(ref) == 0 {
		return Result{}, fmt.Errorf("compare outputs: no samples")
	}
	r := Result{Samples: len(ref), CosineMin: math.Inf(1)}
	var sig, noise, absSum float64
	var values, top1, top5 int
	margins := make([]float64, len(ref)) // NaN: none (one value, or NaN outputs)
	agree := make([]bool, len(ref))
	for i := range ref {
		a, b := ref[i], got[i]
		if len(a) != len(b) || len(a) == 0 {
			return Result{}, fmt.Errorf("compare outputs: sample %d has %d reference values and %d variant values", i, len(a), len(b))
		}
		var dot, na, nb float64
		nan := false
		for j := range a {
			x, y := float64(a[j]), float64(b[j])
			dot += x * y
			na += x * x
			nb += y * y
			d := x - y
			noise += d * d
			ad := math.Abs(d)
			absSum += ad
			// NaN sticks: nothing compares greater than it.
			if ad > r.MaxAbsError || math.IsNaN(ad) {
				r.MaxAbsError = ad
			}
			nan = nan || math.IsNaN(x) || math.IsNaN(y)
		}
		values += len(a)
		sig += na
		cos := cosine(dot, na, nb)
		r.CosineMean += cos
		r.CosineMin = math.Min(r.CosineMin, cos) // NaN if either is
		margins[i] = math.NaN()
		if nan {
			continue
		}
		ra := argmax(a)
		margins[i] = margin(a, ra)
		if argmax(b) == ra {
			top1++
			agree[i] = true
		}
		if rank(b, ra) < 5 {
			top5++
		}
	}
	n := float64(len(ref))
	r.CosineMean /= n
	r.Top1 = float64(top1) / n
	r.Top5 = float64(top5) / n
	r.MeanAbsError = absSum / float64(values)
	r.SQNRdB = sqnr(sig, noise)
	r.RefMedianMargin = median(margins)
	var decisiveAgree int
	for i, m := range margins {
		if m > r.MaxAbsError { // false for NaN on either side
			r.DecisiveSamples++
			if agree[i] {
				decisiveAgree++
			}
		}
	}
	r.DecisiveTop1 = math.NaN()
	if r.DecisiveSamples > 0 {
		r.DecisiveTop1 = float64(decisiveAgree) / float64(r.DecisiveSamples)
	}
	return r, nil
}

// margin is v[top] minus the largest other value of v; NaN for a vector
// of one value.
func margin(v []float32, top int) float64 {
	second := math.Inf(-1)
	for i, x := range v {
		if i != top {
			second = math.Max(second, float64(x))
		}
	}
	if math.IsInf(second, -1) {
		return math.NaN()
	}
	return float64(v[top]) - second
}

// median of the finite values of v; NaN when there are none.
func median(v []float64) float64 {
	finite := make([]float64, 0, len(v))
	for _, x := range v {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			finite = append(finite, x)
		}
	}
	if len(finite) == 0 {
		return math.NaN()
	}
	slices.Sort(finite)
	n := len(finite)
	if n%2 == 1 {
		return finite[n/2]
	}
	return (finite[n/2-1] + finite[n/2]) / 2
}

// sqnr is 10·log10(sig/noise) clamped to ±MaxSQNRdB, MaxSQNRdB for zero
// noise; NaN stays NaN.
func sqnr(sig, noise float64) float64 {
	switch {
	case math.IsNaN(sig) || math.IsNaN(noise):
		return math.NaN()
	case noise == 0:
		return MaxSQNRdB
	}
	return math.Max(-MaxSQNRdB, math.Min(MaxSQNRdB, 10*math.Log10(sig/noise)))
}

// cosine of two vectors from their dot product and squared norms, clamped
// to [−1, 1] against rounding; two zero vectors are identical (1), a zero
// vector against a non-zero one is 0, NaN stays NaN. Identical vectors give
// exactly 1: √(n·n) is n.
func cosine(dot, na, nb float64) float64 {
	switch {
	case math.IsNaN(dot) || math.IsNaN(na) || math.IsNaN(nb):
		return math.NaN()
	case na == 0 && nb == 0:
		return 1
	case na == 0 || nb == 0:
		return 0
	}
	return math.Max(-1, math.Min(1, dot/math.Sqrt(na*nb)))
}

// argmax returns the index of the largest value, the first on ties.
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// rank is idx's 0-based position when v is sorted by value, largest first,
// ties by index (a stable sort): the values larger than v[idx] and the
// equal ones before it.
func rank(v []float32, idx int) int {
	r := 0
	for i, x := range v {
		if x > v[idx] || (x == v[idx] && i < idx) {
			r++
		}
	}
	return r
}

// String formats the result on one line.
func (r Result) String() string {
	return fmt.Sprintf("cosine mean %.6f min %.6f, top-1 agreement %.2f%%, top-5 %.2f%% (%d samples), max abs error %.4g (mean %.4g), SQNR %.1f dB",
		r.CosineMean, r.CosineMin, 100*r.Top1, 100*r.Top5, r.Samples, r.MaxAbsError, r.MeanAbsError, r.SQNRdB)
}

// Decisive returns the decisive top-1 agreement and whether any sample was
// decisive (see DecisiveTop1).
func (r Result) Decisive() (float64, bool) {
	return r.DecisiveTop1, r.DecisiveSamples > 0 && !math.IsNaN(r.DecisiveTop1)
}

// DecisiveString says what decisive top-1 found, e.g. "decisive top-1
// 100.00% on 31 of 64 samples (FP32 median margin 0.052 vs max abs error
// 0.041)", or that no sample was decisive.
func (r Result) DecisiveString() string {
	tail := fmt.Sprintf("FP32 median margin %.3g vs max abs error %.3g", r.RefMedianMargin, r.MaxAbsError)
	if math.IsNaN(r.RefMedianMargin) && r.DecisiveSamples == 0 {
		return "decisive top-1 not recorded (the result predates it)"
	}
	if _, ok := r.Decisive(); !ok {
		return "decisive top-1 not measurable: no sample's FP32 margin exceeds the max abs error (" + tail + ")"
	}
	return fmt.Sprintf("decisive top-1 %.2f%% on %d of %d samples (%s)", 100*r.DecisiveTop1, r.DecisiveSamples, r.Samples, tail)
}

// Number is a float64 whose JSON form is null when it is not finite (NaN,
// ±Inf), and which reads null back as NaN. Summaries of Results use it for
// the figures they copy.
type Number float64

// MarshalJSON writes the value, or null for NaN and ±Inf.
func (n Number) MarshalJSON() ([]byte, error) {
	if f := float64(n); math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(n))
}

// UnmarshalJSON reads a Number, or null as NaN.
func (n *Number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Number(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Number(f)
	return nil
}

// wireResult is Result as JSON holds it.
type wireResult struct {
	Samples      int    `json:"samples"`
	CosineMean   Number `json:"cosine_mean"`
	CosineMin    Number `json:"cosine_min"`
	Top1         Number `json:"top1"`
	Top5         Number `json:"top5"`
	MaxAbsError  Number `json:"max_abs_error"`
	MeanAbsError Number `json:"mean_abs_error,omitempty"`
	SQNRdB       Number `json:"sqnr_db"`

	// Left out when unknown (NaN margin, no decisive sample): records
	// older than these fields read the same way.
	RefMedianMargin *Number `json:"ref_median_margin,omitempty"`
	DecisiveTop1    *Number `json:"decisive_top1,omitempty"`
	DecisiveSamples int     `json:"decisive_samples,omitempty"`
	Inputs          string  `json:"inputs,omitempty"`
}

// MarshalJSON encodes r with non-finite fields as null (see Result).
func (r Result) MarshalJSON() ([]byte, error) {
	w := wireResult{Samples: r.Samples, CosineMean: Number(r.CosineMean), CosineMin: Number(r.CosineMin),
		Top1: Number(r.Top1), Top5: Number(r.Top5), MaxAbsError: Number(r.MaxAbsError), SQNRdB: Number(r.SQNRdB),
		DecisiveSamples: r.DecisiveSamples, Inputs: r.Inputs}
	if !math.IsNaN(r.RefMedianMargin) {
		m := Number(r.RefMedianMargin)
		w.RefMedianMargin = &m
	}
	if r.DecisiveSamples > 0 {
		d := Number(r.DecisiveTop1)
		w.DecisiveTop1 = &d
	}
	w.MeanAbsError = Number(r.MeanAbsError) // omitted when 0; NaN is not 0
	return json.Marshal(w)
}

// UnmarshalJSON decodes r, reading null fields as NaN (see Result). A
// record older than the margin and decisive fields reads them as NaN (not
// measured), not as 0.
func (r *Result) UnmarshalJSON(b []byte) error {
	var w wireResult
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	known := func(n *Number) float64 {
		if n == nil {
			return math.NaN()
		}
		return float64(*n)
	}
	*r = Result{Samples: w.Samples, CosineMean: float64(w.CosineMean), CosineMin: float64(w.CosineMin),
		Top1: float64(w.Top1), Top5: float64(w.Top5), MaxAbsError: float64(w.MaxAbsError),
		MeanAbsError: float64(w.MeanAbsError), SQNRdB: float64(w.SQNRdB),
		RefMedianMargin: known(w.RefMedianMargin), DecisiveTop1: known(w.DecisiveTop1), DecisiveSamples: w.DecisiveSamples,
		Inputs: w.Inputs}
	if r.DecisiveSamples <= 0 {
		r.DecisiveSamples, r.DecisiveTop1 = 0, math.NaN()
	}
	return nil
}
