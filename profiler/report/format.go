package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/quantscope/quantscope/internal/bytefmt"
	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/profiler/study"
)

const dash = "—"

// esc escapes user text (model names, reasons) for the report's inline
// markup, which is Markdown's: backslash, emphasis, code, table and HTML
// characters.
func esc(s string) string {
	s = strings.Join(strings.Fields(s), " ") // no newlines or tabs in a cell
	if !strings.ContainsAny(s, "\\*`|<>[]") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\*`|<>[]", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// bold is user text in bold.
func bold(s string) string { return "**" + esc(s) + "**" }

// clip shortens s to n runes with an ellipsis.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func fmtFloat(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return dash
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// tputDecimals is how many decimals a throughput of this size shows.
func tputDecimals(v float64) int {
	switch {
	case v >= 100:
		return 1
	case v >= 10:
		return 2
	}
	return 3
}

// fmtTput renders samples/s with one to three decimals by size.
func fmtTput(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return dash
	}
	return fmtFloat(v, tputDecimals(v))
}

// fmtTputCI adds the 95% half-width, at the mean's precision, when there
// are repeats.
func fmtTputCI(e *Entry) string {
	s := fmtTput(e.Throughput)
	if e.Runs > 1 && !math.IsInf(e.ThroughputCI, 0) && !math.IsNaN(e.ThroughputCI) && s != dash {
		s += " ± " + fmtFloat(e.ThroughputCI, tputDecimals(e.Throughput))
	}
	return s
}

// fmtSig renders a positive value with three significant figures (no
// exponent); a dash when unknown.
func fmtSig(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0) || v <= 0:
		return dash
	case v >= 100:
		return fmtFloat(v, 0)
	case v >= 10:
		return fmtFloat(v, 1)
	case v >= 1:
		return fmtFloat(v, 2)
	}
	return fmtFloat(v, 3)
}

// fmtMs renders milliseconds.
func fmtMs(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0) || v <= 0:
		return dash
	case v >= 100:
		return fmtFloat(v, 1)
	}
	return fmtFloat(v, 2)
}

// fmtMiB renders bytes as a number of MiB, for the report's columns and
// sentences whose unit is MiB: one unit per column keeps rows comparable.
// Byte counts written with their own unit use bytefmt.Format.
func fmtMiB(b int64) string {
	if b <= 0 {
		return dash
	}
	return fmtFloat(float64(b)/bytefmt.MiB, 1)
}

// fmtRatio renders a ratio as "2.10×" (the per-model table, the heatmap and
// the ranking all use it, so their numbers agree).
func fmtRatio(v float64) string { return study.FormatRatio(v) }

// fmtPct renders a 0–1 fraction as a percentage.
func fmtPct(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return dash
	}
	return fmtFloat(100*v, 1) + "%"
}

// fmtSigned renders a relative change as "+12.3%".
func fmtSigned(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return dash
	}
	return fmt.Sprintf("%+.1f%%", 100*v)
}

// fmtTop1 is an entry's top-1 agreement; a dash for backbones, whose
// embeddings have no classes.
func fmtTop1(e *Entry) string {
	if e.Fidelity == nil || e.Traits.Backbone() {
		return dash
	}
	return fmtPct(e.Fidelity.Top1)
}

// fmtDecisive is an entry's decisive top-1 (agreement where FP32's margin
// exceeds the variant's error) and on how many samples; a dash for
// backbones and unknown figures.
func fmtDecisive(e *Entry) string {
	if e.Fidelity == nil || e.Traits.Backbone() || e.Experiment.IsBaseline() {
		return dash
	}
	d, ok := e.Fidelity.Decisive()
	if !ok {
		if math.IsNaN(e.Fidelity.RefMedianMargin) {
			return dash
		}
		return "none decisive"
	}
	return fmt.Sprintf("%s of %d", fmtPct(d), e.Fidelity.DecisiveSamples)
}

// fmtMargin is the FP32 median top-1 margin of an entry's fidelity.
func fmtMargin(e *Entry) string {
	if e.Fidelity == nil || e.Traits.Backbone() || math.IsNaN(e.Fidelity.RefMedianMargin) {
		return dash
	}
	return strconv.FormatFloat(e.Fidelity.RefMedianMargin, 'g', 3, 64)
}

func fmtCos(f *fidelity.Result) string {
	if f == nil {
		return dash
	}
	return formatCos(f.CosineMean)
}

func fmtSQNR(f *fidelity.Result) string {
	if f == nil {
		return dash
	}
	if f.SQNRdB >= fidelity.MaxSQNRdB {
		return "exact"
	}
	if math.IsNaN(f.SQNRdB) {
		return "NaN" // the variant's outputs were not finite
	}
	return fmtFloat(f.SQNRdB, 1)
}

// fidText is the fidelity of an entry in words, judged the way its
// model's traits call for.
func fidText(e *Entry) string {
	f := e.Fidelity
	switch {
	case e.Experiment.IsBaseline():
		return "the FP32 reference"
	case f == nil:
		return "fidelity not measured"
	case e.Traits.Backbone():
		return fmt.Sprintf("cosine %s, SQNR %s dB (embeddings: top-1 does not apply)", formatCos(f.CosineMean), fmtSQNR(f))
	case e.Traits.Synthetic():
		d := "not measurable"
		if v, ok := f.Decisive(); ok {
			d = fmt.Sprintf("%s on %d samples", fmtPct(v), f.DecisiveSamples)
		}
		return fmt.Sprintf("cosine %s, SQNR %s dB, decisive top-1 %s (synthetic weights: accuracy not measurable)", formatCos(f.CosineMean), fmtSQNR(f), d)
	}
	return fmt.Sprintf("top-1 agreement %s, cosine %s", fmtPct(f.Top1), formatCos(f.CosineMean))
}

// fmtMoney renders a price with enough digits for small amounts.
func fmtMoney(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return dash
	case v >= 100:
		return fmtFloat(v, 0)
	case v >= 1:
		return fmtFloat(v, 2)
	case v >= 0.01:
		return fmtFloat(v, 3)
	case v == 0:
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// joinAnd joins with commas and "and".
func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
