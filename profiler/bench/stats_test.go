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
		want string
	}{
		{[]float64{100, 101, 99}, []float64{150, 151, 149}, "faster"},
		{[]float64{100, 101, 99}, []float64{50, 51, 49}, "slower"},
		{[]float64{100, 110, 90}, []float64{102, 112, 92}, "within noise"},
		{[]float64{100}, []float64{200}, "within noise"}, // one run: no interval
	}
	for _, tt := range tests {
		if got := Verdict(tt.a, tt.b); got != tt.want {
			t.Errorf("Verdict(%v, %v) = %q, want %q", tt.a, tt.b, got, tt.want)
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
