package quant

import (
	"fmt"
	"math"
)

// Fidelity compares a variant's outputs with the FP32 model's on the same
// inputs, one output vector (e.g. logits) per sample.
type Fidelity struct {
	Samples int `json:"samples"`
	// CosineMean and CosineMin are the cosine similarity of each
	// sample's output vectors, averaged and at worst.
	CosineMean float64 `json:"cosine_mean"`
	CosineMin  float64 `json:"cosine_min"`
	// Top1Agreement is the fraction of samples whose arg-max agrees.
	Top1Agreement float64 `json:"top1_agreement"`
	// MaxAbsError is the largest absolute difference of any output value.
	MaxAbsError float64 `json:"max_abs_error"`
	// MeanAbsError is the mean absolute difference.
	MeanAbsError float64 `json:"mean_abs_error"`
	// SQNR is the signal-to-quantization-noise ratio in dB over all
	// samples: 20·log10(‖ref‖ / ‖ref − got‖), both norms floored at the
	// float32 epsilon (ONNX Runtime's qdq_loss_debug definition).
	SQNR float64 `json:"sqnr_db"`
}

// CompareOutputs computes the fidelity of got against ref, one row per
// sample. Rows must pair up and have equal lengths.
func CompareOutputs(ref, got [][]float32) (Fidelity, error) {
	f := Fidelity{Samples: len(ref), CosineMin: math.Inf(1)}
	if len(ref) != len(got) {
		return Fidelity{}, fmt.Errorf("compare outputs: %d reference samples, %d to compare", len(ref), len(got))
	}
	if len(ref) == 0 {
		return Fidelity{}, fmt.Errorf("compare outputs: no samples")
	}
	var sig, noise, absSum float64
	var count int
	agree := 0
	for i := range ref {
		r, g := ref[i], got[i]
		if len(r) != len(g) || len(r) == 0 {
			return Fidelity{}, fmt.Errorf("compare outputs: sample %d has %d reference values and %d to compare", i, len(r), len(g))
		}
		var dot, nr, ng float64
		for j := range r {
			a, b := float64(r[j]), float64(g[j])
			dot += a * b
			nr += a * a
			ng += b * b
			d := a - b
			noise += d * d
			absSum += math.Abs(d)
			f.MaxAbsError = math.Max(f.MaxAbsError, math.Abs(d))
			if math.IsNaN(d) {
				f.MaxAbsError = math.NaN()
			}
		}
		count += len(r)
		sig += nr
		cos := cosine(dot, nr, ng)
		f.CosineMean += cos
		f.CosineMin = math.Min(f.CosineMin, cos)
		if argmax(r) == argmax(g) {
			agree++
		}
	}
	f.CosineMean /= float64(len(ref))
	f.Top1Agreement = float64(agree) / float64(len(ref))
	f.MeanAbsError = absSum / float64(count)
	const eps = 1.1920928955078125e-07
	f.SQNR = 20 * math.Log10(math.Max(math.Sqrt(sig), eps)/math.Max(math.Sqrt(noise), eps))
	return f, nil
}

// cosine returns dot/(|a||b|), 1 when both vectors are zero and 0 when
// one is; NaN inputs give NaN.
func cosine(dot, na, nb float64) float64 {
	switch {
	case na == 0 && nb == 0:
		return 1
	case na == 0 || nb == 0:
		return 0
	}
	return dot / (math.Sqrt(na) * math.Sqrt(nb))
}

// argmax returns the index of the largest value (the first on ties;
// NaNs never win).
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] || (v[best] != v[best] && x == x) {
			best = i
		}
	}
	return best
}

// String formats the fidelity on one line.
func (f Fidelity) String() string {
	return fmt.Sprintf("cosine mean %.6f min %.6f, top-1 agreement %.2f%% (%d samples), max abs error %.4g, SQNR %.1f dB",
		f.CosineMean, f.CosineMin, 100*f.Top1Agreement, f.Samples, f.MaxAbsError, f.SQNR)
}
