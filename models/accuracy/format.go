package accuracy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// FormatPoints writes a fraction as signed percentage points with one
// decimal and a true minus sign: −0.2, +0.4, 0.0.
func FormatPoints(v float64) string {
	pts := math.Round(v*1000) / 10
	switch {
	case math.IsNaN(v):
		return "NaN"
	case pts == 0:
		return "0.0"
	case pts < 0:
		return "−" + strconv.FormatFloat(-pts, 'f', 1, 64)
	}
	return "+" + strconv.FormatFloat(pts, 'f', 1, 64)
}

// String describes a paired difference the way a reader wants it:
// "−0.2 pt [−0.6, +0.2], not significant (McNemar p 0.41), 50,000 images".
func (d Difference) String() string {
	sig := "not significant"
	if d.Significant {
		sig = "significant"
	}
	return fmt.Sprintf("%s pt [%s, %s], %s (McNemar p %s), %s images",
		FormatPoints(d.Diff), FormatPoints(d.CI.Lo), FormatPoints(d.CI.Hi), sig, formatP(d.P), Thousands(d.Images))
}

// formatP writes a p-value with two significant digits, "<0.0001" below.
func formatP(p float64) string {
	if p < 1e-4 {
		return "<0.0001"
	}
	return strconv.FormatFloat(p, 'g', 2, 64)
}

// Thousands writes n with comma thousands separators: 50,000.
func Thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// FormatRate writes an accuracy with its interval: "95.7% [93.1, 97.3]".
func FormatRate(k, n int) string {
	if n <= 0 {
		return "—"
	}
	iv := Wilson(k, n, Z95)
	return fmt.Sprintf("%.1f%% [%.1f, %.1f]", 100*float64(k)/float64(n), 100*iv.Lo, 100*iv.Hi)
}
