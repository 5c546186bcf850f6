package bench

import (
	"math"
	"slices"
	"time"
)

// LatencyStats summarizes the per-run latencies of a timed loop.
type LatencyStats struct {
	Runs   int     `json:"runs"`
	MeanMs float64 `json:"mean_ms"`
	StdMs  float64 `json:"std_ms"`
	MinMs  float64 `json:"min_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	// CV is the coefficient of variation (std / mean) of the latencies.
	CV float64 `json:"cv"`
	// Outliers counts runs outside the Tukey fences (Q1 − 1.5·IQR, Q3 + 1.5·IQR);
	// SevereOutliers those outside 3·IQR. Many of either means something else
	// was running: the numbers deserve a second look.
	Outliers       int `json:"outliers"`
	SevereOutliers int `json:"severe_outliers"`
}

// Summarize computes LatencyStats from run durations. It returns the zero
// value for no runs.
func Summarize(d []time.Duration) LatencyStats {
	if len(d) == 0 {
		return LatencyStats{}
	}
	ms := make([]float64, len(d))
	for i, v := range d {
		ms[i] = float64(v) / float64(time.Millisecond)
	}
	slices.Sort(ms)
	mean, std := MeanStd(ms)
	s := LatencyStats{
		Runs:   len(ms),
		MeanMs: mean,
		StdMs:  std,
		MinMs:  ms[0],
		P50Ms:  Percentile(ms, 50),
		P90Ms:  Percentile(ms, 90),
		P95Ms:  Percentile(ms, 95),
		P99Ms:  Percentile(ms, 99),
		MaxMs:  ms[len(ms)-1],
	}
	if mean > 0 {
		s.CV = std / mean
	}
	q1, q3 := Percentile(ms, 25), Percentile(ms, 75)
	iqr := q3 - q1
	for _, v := range ms {
		switch {
		case v < q1-3*iqr || v > q3+3*iqr:
			s.SevereOutliers++
			s.Outliers++
		case v < q1-1.5*iqr || v > q3+1.5*iqr:
			s.Outliers++
		}
	}
	return s
}

// Percentile returns the p-th percentile (0–100) of sorted values by linear
// interpolation between closest ranks (the definition numpy uses by default).
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if n == 1 {
		return sorted[0]
	}
	p = math.Max(0, math.Min(100, p))
	rank := p / 100 * float64(n-1)
	lo := int(math.Floor(rank))
	hi := int(math.Ceil(rank))
	frac := rank - float64(lo)
	return sorted[lo] + (sorted[hi]-sorted[lo])*frac
}

// MeanStd returns the mean and the sample standard deviation (n−1).
func MeanStd(v []float64) (mean, std float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}

// ConfidenceInterval95 returns the mean of v and the half-width of its 95%
// confidence interval (Student's t), for repeated measurements of one quantity.
func ConfidenceInterval95(v []float64) (mean, halfWidth float64) {
	mean, std := MeanStd(v)
	if len(v) < 2 {
		return mean, math.Inf(1)
	}
	return mean, tCritical95(len(v)-1) * std / math.Sqrt(float64(len(v)))
}

// tCritical95 is the two-sided 95% critical value of Student's t with df
// degrees of freedom (tabulated to 30, then the normal value's neighbourhood).
func tCritical95(df int) float64 {
	table := []float64{0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	switch {
	case df <= 0:
		return math.Inf(1)
	case df < len(table):
		return table[df]
	case df < 60:
		return 2.021
	case df < 120:
		return 2.000
	default:
		return 1.960
	}
}

// Verdict is what a speed comparison concluded: the one vocabulary the
// study's rows, bench's summary, the report and the TUI share.
type Verdict string

// Verdicts of a speed comparison.
const (
	// VerdictFaster and VerdictSlower: the 95% interval of the ratio lies
	// above (below) 1.
	VerdictFaster Verdict = "faster"
	VerdictSlower Verdict = "slower"
	// VerdictNoise: the interval holds 1.
	VerdictNoise Verdict = "within noise"
	// VerdictOneRun: no interval (one run of a side, or one paired round):
	// the ratio is a single measurement.
	VerdictOneRun Verdict = "1 run"
	// VerdictContended: a run the ratio rests on was contended (other
	// processes took its CPU), so the ratio is uncertain.
	VerdictContended Verdict = "uncertain: contended"
)

// CompareRuns compares two repeated throughput measurements and says
// whether b is faster, slower or within noise of a (95% intervals
// overlapping = noise).
func CompareRuns(a, b []float64) Verdict {
	ma, ha := ConfidenceInterval95(a)
	mb, hb := ConfidenceInterval95(b)
	switch {
	case mb-hb > ma+ha:
		return VerdictFaster
	case mb+hb < ma-ha:
		return VerdictSlower
	default:
		return VerdictNoise
	}
}

// Settled reports whether the last window run times have a coefficient of
// variation at or below maxCV — the warm-up stop rule.
func Settled(d []time.Duration, window int, maxCV float64) bool {
	if window < 2 || len(d) < window {
		return false
	}
	v := make([]float64, window)
	for i, x := range d[len(d)-window:] {
		v[i] = float64(x)
	}
	mean, std := MeanStd(v)
	return mean > 0 && std/mean <= maxCV
}

// PairedRatio95 is the ratio of variant to baseline throughput from paired
// rounds (b[i] and v[i] measured in the same round of an interleaved
// study): the geometric mean of the per-round ratios, and the 95%
// interval of that mean (Student's t on the log ratios). Pairing removes
// the drift both sides of a round share. lo and hi are NaN with fewer than
// two rounds, and everything is NaN when a value is not positive.
func PairedRatio95(b, v []float64) (ratio, lo, hi float64) {
	n := min(len(b), len(v))
	if n == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	logs := make([]float64, n)
	for i := range n {
		if !(b[i] > 0) || !(v[i] > 0) {
			return math.NaN(), math.NaN(), math.NaN()
		}
		logs[i] = math.Log(v[i] / b[i])
	}
	mean, half := ConfidenceInterval95(logs)
	if n < 2 {
		return math.Exp(mean), math.NaN(), math.NaN()
	}
	return math.Exp(mean), math.Exp(mean - half), math.Exp(mean + half)
}

// RatioOfMeans95 is mean(v) ÷ mean(b) for runs that are not paired, with a
// 95% interval from the runs' spread: the log ratio's variance is the sum
// of each mean's squared relative standard error, with Welch–Satterthwaite
// degrees of freedom. lo and hi are NaN unless both sides have two runs.
func RatioOfMeans95(b, v []float64) (ratio, lo, hi float64) {
	mb, sb := MeanStd(b)
	mv, sv := MeanStd(v)
	if !(mb > 0) || !(mv > 0) {
		return math.NaN(), math.NaN(), math.NaN()
	}
	ratio = mv / mb
	if len(b) < 2 || len(v) < 2 {
		return ratio, math.NaN(), math.NaN()
	}
	eb := sb * sb / (mb * mb) / float64(len(b))
	ev := sv * sv / (mv * mv) / float64(len(v))
	se := math.Sqrt(eb + ev)
	df := len(b) + len(v) - 2
	if se > 0 {
		df = int((eb + ev) * (eb + ev) / (eb*eb/float64(len(b)-1) + ev*ev/float64(len(v)-1)))
	}
	half := tCritical95(max(1, df)) * se
	return ratio, ratio * math.Exp(-half), ratio * math.Exp(half)
}

// IntervalVerdict calls a ratio's 95% interval: "faster" when it lies
// above 1, "slower" below, "within noise" when it holds 1 (or is unknown).
func IntervalVerdict(lo, hi float64) Verdict {
	switch {
	case lo > 1:
		return VerdictFaster
	case hi < 1:
		return VerdictSlower
	}
	return VerdictNoise
}
