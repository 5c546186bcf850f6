package bench

import (
	"math"
	"testing"
	"time"
)

func ms(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x * float64(time.Millisecond))
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestSummarizeKnownData(t *testing.T) {
	// 1..100 ms: numpy.percentile gives p50 50.5, p90 90.1, p95 95.05, p99 99.01.
	var v []float64
	for i := 100; i >= 1; i-- { // unsorted on purpose
		v = append(v, float64(i))
	}
	s := Summarize(ms(v...))
	checks := []struct {
		name      string
		got, want float64
	}{
		{"runs", float64(s.Runs), 100},
		{"mean", s.MeanMs, 50.5},
		{"std", s.StdMs, 29.011491975882016},
		{"min", s.MinMs, 1},
		{"p50", s.P50Ms, 50.5},
		{"p90", s.P90Ms, 90.1},
		{"p95", s.P95Ms, 95.05},
		{"p99", s.P99Ms, 99.01},
		{"max", s.MaxMs, 100},
		{"cv", s.CV, 29.011491975882016 / 50.5},
		{"outliers", float64(s.Outliers), 0},
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestSummarizeOutliers(t *testing.T) {
	// Q1 = Q3 = 10, so the IQR is 0 and every value other than 10 lies
	// outside both fences.
	s := Summarize(ms(10, 10, 10, 10, 10, 10, 10, 10, 11, 50))
	if s.Outliers != 2 || s.SevereOutliers != 2 {
		t.Errorf("outliers %d severe %d, want 2 and 2", s.Outliers, s.SevereOutliers)
	}
	// Spread data: Q1 = 3.25, Q3 = 7.75, IQR 4.5 → mild fence 14.5, severe 21.25.
	s = Summarize(ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 16))
	if s.Outliers != 1 || s.SevereOutliers != 0 {
		t.Errorf("outliers %d severe %d, want 1 mild", s.Outliers, s.SevereOutliers)
	}
}

func TestSummarizeEdgeCases(t *testing.T) {
	if s := Summarize(nil); s.Runs != 0 {
		t.Errorf("empty: %+v", s)
	}
	s := Summarize(ms(7))
	if s.P50Ms != 7 || s.P99Ms != 7 || s.StdMs != 0 || s.CV != 0 {
		t.Errorf("single run: %+v", s)
	}
}

func TestConfidenceIntervalAndVerdict(t *testing.T) {
	mean, hw := ConfidenceInterval95([]float64{10, 12, 14})
	// std 2, t(2) = 4.303 → 4.303·2/√3.
	if !near(mean, 12) || math.Abs(hw-4.303*2/math.Sqrt(3)) > 1e-9 {
		t.Errorf("CI = %v ± %v", mean, hw)
	}
	tests := []struct {
		a, b []float64
		want Verdict
	}{
		{[]float64{100, 101, 99}, []float64{150, 151, 149}, "faster"},
		{[]float64{100, 101, 99}, []float64{50, 51, 49}, "slower"},
		{[]float64{100, 110, 90}, []float64{102, 112, 92}, "within noise"},
		{[]float64{100}, []float64{200}, "within noise"}, // one run: no interval
	}
	for _, tt := range tests {
		if got := CompareRuns(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareRuns(%v, %v) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSettled(t *testing.T) {
	noisy := ms(10, 30, 10, 30, 10, 30)
	steady := ms(50, 40, 30, 10, 10.1, 9.9, 10, 10.05)
	if Settled(noisy, 5, 0.05) {
		t.Error("noisy runs reported settled")
	}
	if !Settled(steady, 5, 0.05) {
		t.Error("steady tail not reported settled")
	}
	if Settled(steady[:3], 5, 0.05) {
		t.Error("fewer runs than the window reported settled")
	}
}

// TestPairedRatio95 works on synthetic paired rounds: a variant 1.75×
// the baseline while both drift together by ±10% round to round.
func TestPairedRatio95(t *testing.T) {
	base := []float64{100, 110, 90, 105, 95}
	fast := []float64{175, 192.5, 157.5, 183.75, 166.25} // exactly 1.75× each round
	r, lo, hi := PairedRatio95(base, fast)
	if !near(r, 1.75) || !near(lo, 1.75) || !near(hi, 1.75) {
		t.Errorf("exact pairs: %v [%v, %v]", r, lo, hi)
	}
	// Per-round ratios 1.70, 1.78, 1.74: geometric mean ≈ 1.7398; the log
	// ratios' t-interval (df 2, t 4.303) is about ±5.7%.
	b := []float64{100, 110, 90}
	v := []float64{170, 110 * 1.78, 90 * 1.74}
	r, lo, hi = PairedRatio95(b, v)
	logs := []float64{math.Log(1.70), math.Log(1.78), math.Log(1.74)}
	m, half := ConfidenceInterval95(logs)
	if !near(r, math.Exp(m)) || !near(lo, math.Exp(m-half)) || !near(hi, math.Exp(m+half)) || lo > 1.70 || hi < 1.78 {
		t.Errorf("pairs: %v [%v, %v]", r, lo, hi)
	}
	if IntervalVerdict(lo, hi) != "faster" {
		t.Errorf("verdict %s", IntervalVerdict(lo, hi))
	}
	// Drift alone would swamp an unpaired comparison of the same runs:
	// pairing keeps the interval narrow where the ratio of means cannot.
	_, ulo, uhi := RatioOfMeans95(base, fast)
	_, plo, phi := PairedRatio95(base, fast)
	if !(uhi-ulo > phi-plo) {
		t.Errorf("unpaired [%v, %v] not wider than paired [%v, %v]", ulo, uhi, plo, phi)
	}
	// A ratio whose interval holds 1 is within noise; below, slower.
	r, lo, hi = PairedRatio95([]float64{100, 100, 100}, []float64{98, 103, 100})
	if IntervalVerdict(lo, hi) != "within noise" || lo >= 1 || hi <= 1 {
		t.Errorf("noise: %v [%v, %v]", r, lo, hi)
	}
	if _, lo, hi = PairedRatio95([]float64{100, 101, 99}, []float64{80, 81, 79}); IntervalVerdict(lo, hi) != "slower" {
		t.Errorf("slower: [%v, %v]", lo, hi)
	}
	// One round: a ratio, no interval; bad values: nothing.
	if r, lo, hi = PairedRatio95([]float64{100}, []float64{150}); !near(r, 1.5) || !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("one round: %v [%v, %v]", r, lo, hi)
	}
	if r, _, _ = PairedRatio95([]float64{0, 1}, []float64{1, 1}); !math.IsNaN(r) {
		t.Errorf("zero throughput gave %v", r)
	}
	if IntervalVerdict(math.NaN(), math.NaN()) != "within noise" {
		t.Error("an unknown interval is not a verdict")
	}
}

func TestRatioOfMeans95(t *testing.T) {
	r, lo, hi := RatioOfMeans95([]float64{100, 102, 98}, []float64{150, 153, 147})
	if !near(r, 1.5) || !(lo < 1.5 && lo > 1.4) || !(hi > 1.5 && hi < 1.6) {
		t.Errorf("%v [%v, %v]", r, lo, hi)
	}
	if r, lo, _ = RatioOfMeans95([]float64{100}, []float64{150, 150}); !near(r, 1.5) || !math.IsNaN(lo) {
		t.Errorf("one baseline run: %v %v", r, lo)
	}
}
