package bench

import (
	"fmt"
	"math"
	"sort"
)

// Fidelity compares a variant's outputs with the FP32 reference's on the same inputs.
type Fidelity struct {
	Samples     int     `json:"samples"`
	CosineMean  float64 `json:"cosine_mean"`
	CosineMin   float64 `json:"cosine_min"`
	Top1        float64 `json:"top1"` // arg-max agreement, 0–1
	Top5        float64 `json:"top5"` // reference arg-max within the variant's top 5, 0–1
	MaxAbsError float64 `json:"max_abs_error"`
	SQNRdB      float64 `json:"sqnr_db"` // 10·log10(Σref² / Σ(ref−got)²), at most MaxSQNRdB
}

// MaxSQNRdB is the SQNR reported for identical outputs (JSON has no
// infinity); float32 rounding noise sits far below it, near 140 dB.
const MaxSQNRdB = 300

// CompareOutputs measures how closely got follows ref: both hold one output
// vector per sample (logits or embeddings), in the same order.
func CompareOutputs(ref, got [][]float32) (Fidelity, error) {
	if len(ref) != len(got) {
		return Fidelity{}, fmt.Errorf("compare outputs: %d reference samples, %d variant samples", len(ref), len(got))
	}
	if len(ref) == 0 {
		return Fidelity{}, fmt.Errorf("compare outputs: no samples")
	}
	f := Fidelity{Samples: len(ref), CosineMin: math.Inf(1)}
	var sig, noise float64
	var top1, top5 int
	for i := range ref {
		r, g := ref[i], got[i]
		if len(r) != len(g) || len(r) == 0 {
			return Fidelity{}, fmt.Errorf("compare outputs: sample %d has %d reference values and %d variant values", i, len(r), len(g))
		}
		var dot, nr, ng float64
		for j := range r {
			a, b := float64(r[j]), float64(g[j])
			dot += a * b
			nr += a * a
			ng += b * b
			d := a - b
			noise += d * d
			if ad := math.Abs(d); ad > f.MaxAbsError || math.IsNaN(ad) {
				f.MaxAbsError = ad
			}
		}
		sig += nr
		cos := cosine(dot, nr, ng)
		f.CosineMean += cos
		f.CosineMin = math.Min(f.CosineMin, cos)
		ra := argmax(r)
		if argmax(g) == ra {
			top1++
		}
		if inTopK(g, ra, 5) {
			top5++
		}
	}
	n := float64(len(ref))
	f.CosineMean /= n
	f.Top1 = float64(top1) / n
	f.Top5 = float64(top5) / n
	f.SQNRdB = MaxSQNRdB
	if noise > 0 {
		f.SQNRdB = math.Min(MaxSQNRdB, 10*math.Log10(sig/noise))
	}
	return f, nil
}

// cosine of two vectors from their dot product and squared norms; two zero
// vectors are identical (1), one zero vector against another is 0.
func cosine(dot, nr, ng float64) float64 {
	switch {
	case nr == 0 && ng == 0:
		return 1
	case nr == 0 || ng == 0:
		return 0
	}
	return dot / math.Sqrt(nr*ng)
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// inTopK reports whether index idx is among the k largest values of v.
func inTopK(v []float32, idx, k int) bool {
	if k >= len(v) {
		return true
	}
	order := make([]int, len(v))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return v[order[a]] > v[order[b]] })
	for _, i := range order[:k] {
		if i == idx {
			return true
		}
	}
	return false
}
