package report

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/profiler/study"
)

// GateMetric names a fidelity measurement a gate clause tests.
type GateMetric string

// The metrics a gate can test, with the fidelity.Result field each reads.
const (
	MetricTop1      GateMetric = "top1"   // Fidelity.Top1: arg-max agreement, 0–1
	MetricTop5      GateMetric = "top5"   // Fidelity.Top5, 0–1
	MetricCosine    GateMetric = "cos"    // Fidelity.CosineMean, −1–1
	MetricCosineMin GateMetric = "cosmin" // Fidelity.CosineMin, −1–1
	MetricSQNR      GateMetric = "sqnr"   // Fidelity.SQNRdB, dB
	MetricMaxAbs    GateMetric = "maxabs" // Fidelity.MaxAbsError
	// MetricAccDrop is top-1 accuracy lost against FP32 on a labelled
	// image set, in percentage points (accuracy.Result.Drop): acc-drop<=0.5.
	MetricAccDrop GateMetric = "acc-drop"
)

// metricAliases maps every accepted spelling (lower case) to its metric.
var metricAliases = map[string]GateMetric{
	"top1": MetricTop1, "top-1": MetricTop1, "top_1": MetricTop1,
	"top5": MetricTop5, "top-5": MetricTop5, "top_5": MetricTop5,
	"cos": MetricCosine, "cosine": MetricCosine, "cos_mean": MetricCosine, "cosine_mean": MetricCosine,
	"cosmin": MetricCosineMin, "cos_min": MetricCosineMin, "cosine_min": MetricCosineMin,
	"sqnr": MetricSQNR, "sqnr_db": MetricSQNR, "sqnrdb": MetricSQNR,
	"maxabs": MetricMaxAbs, "max_abs": MetricMaxAbs, "max_abs_error": MetricMaxAbs,
	"acc-drop": MetricAccDrop, "acc_drop": MetricAccDrop, "accdrop": MetricAccDrop,
}

// label is how reports name a metric.
func (m GateMetric) label() string {
	switch m {
	case MetricTop1:
		return "top-1"
	case MetricTop5:
		return "top-5"
	case MetricCosine:
		return "cosine"
	case MetricCosineMin:
		return "min cosine"
	case MetricSQNR:
		return "SQNR"
	case MetricMaxAbs:
		return "max abs error"
	case metricDecisiveTop1:
		return "decisive top-1"
	case MetricAccDrop:
		return "top-1 accuracy drop"
	}
	return string(m)
}

// value reads the metric from f.
func (m GateMetric) value(f *fidelity.Result) float64 {
	switch m {
	case MetricTop1:
		return f.Top1
	case MetricTop5:
		return f.Top5
	case MetricCosine:
		return f.CosineMean
	case MetricCosineMin:
		return f.CosineMin
	case MetricSQNR:
		return f.SQNRdB
	case MetricMaxAbs:
		return f.MaxAbsError
	case metricDecisiveTop1:
		if d, ok := f.Decisive(); ok {
			return d
		}
	}
	return math.NaN()
}

// bounds is the range a threshold of the metric must lie in.
func (m GateMetric) bounds() (lo, hi float64) {
	switch m {
	case MetricTop1, MetricTop5:
		return 0, 1
	case MetricCosine, MetricCosineMin:
		return -1, 1
	case MetricSQNR:
		return -fidelity.MaxSQNRdB, fidelity.MaxSQNRdB
	case MetricAccDrop:
		return -100, 100
	}
	return 0, math.MaxFloat64
}

// GateClause is one comparison of a gate, e.g. top1>=0.99.
type GateClause struct {
	Metric    GateMetric
	Op        string // one of >=, >, <=, <
	Threshold float64
}

// String renders the clause in the syntax ParseGate reads.
func (c GateClause) String() string {
	return string(c.Metric) + c.Op + strconv.FormatFloat(c.Threshold, 'g', -1, 64)
}

// holds reports whether v satisfies the clause.
func (c GateClause) holds(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch c.Op {
	case ">=":
		return v >= c.Threshold
	case ">":
		return v > c.Threshold
	case "<=":
		return v <= c.Threshold
	case "<":
		return v < c.Threshold
	}
	return false
}

// Gate is a fidelity gate: every clause must hold for a configuration to
// pass. The zero Gate has no clauses and passes every configuration whose
// fidelity was measured.
type Gate struct {
	Clauses []GateClause
}

// DefaultGate is the gate reports use when none is given: the top-1 answer
// agrees with FP32 on at least 99% of the samples (the MLPerf closed-division
// bar of 99% of FP32 accuracy, applied to agreement) and the outputs keep a
// mean cosine similarity of at least 0.999.
const DefaultGate = "top1>=0.99,cos>=0.999"

// ParseGate reads a gate such as "top1>=0.99,cos>=0.999": comma-separated
// clauses of a metric (top1, top5, cos, cosmin, sqnr, maxabs, acc-drop, with
// the spellings top-1, cosine, cos_min, sqnr_db, max_abs_error, acc_drop also
// accepted; acc-drop is in percentage points of top-1 accuracy on a
// labelled set, which needs --eval-dir), an
// operator (>=, >, <=, <) and a number. Top-1/top-5 thresholds may be written
// as percentages ("99%"). An empty string is the zero Gate.
func ParseGate(s string) (Gate, error) {
	var g Gate
	if strings.TrimSpace(s) == "" {
		return g, nil
	}
	seen := map[string]bool{}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return Gate{}, fmt.Errorf("gate %q: clause %d is empty", s, i+1)
		}
		c, err := parseClause(part)
		if err != nil {
			return Gate{}, fmt.Errorf("gate %q: %w", s, err)
		}
		key := string(c.Metric) + c.Op
		if seen[key] {
			return Gate{}, fmt.Errorf("gate %q: %s%s appears twice", s, c.Metric, c.Op)
		}
		seen[key] = true
		g.Clauses = append(g.Clauses, c)
	}
	return g, nil
}

func parseClause(s string) (GateClause, error) {
	i := strings.IndexAny(s, "<>=!")
	if i <= 0 {
		return GateClause{}, fmt.Errorf("clause %q: want metric, operator and number, e.g. top1>=0.99", s)
	}
	name := strings.ToLower(strings.TrimSpace(s[:i]))
	m, ok := metricAliases[name]
	if !ok {
		return GateClause{}, fmt.Errorf("clause %q: unknown metric %q (known: top1, top5, cos, cosmin, sqnr, maxabs, acc-drop)", s, name)
	}
	rest := s[i:]
	var op string
	for _, cand := range []string{">=", "<=", ">", "<"} {
		if strings.HasPrefix(rest, cand) {
			op = cand
			break
		}
	}
	if op == "" {
		return GateClause{}, fmt.Errorf("clause %q: unknown operator (use >=, >, <=, <)", s)
	}
	num := strings.TrimSpace(rest[len(op):])
	pct := strings.HasSuffix(num, "%")
	if pct {
		if m != MetricTop1 && m != MetricTop5 {
			return GateClause{}, fmt.Errorf("clause %q: only top1 and top5 take a percentage", s)
		}
		num = strings.TrimSpace(strings.TrimSuffix(num, "%"))
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) {
			err = ne.Err
		}
		return GateClause{}, fmt.Errorf("clause %q: %q is not a number (%v)", s, num, err)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return GateClause{}, fmt.Errorf("clause %q: threshold must be a finite number", s)
	}
	if pct {
		v /= 100
	}
	if lo, hi := m.bounds(); v < lo || v > hi {
		return GateClause{}, fmt.Errorf("clause %q: %s threshold %g is outside [%g, %g]", s, m, v, lo, hi)
	}
	return GateClause{Metric: m, Op: op, Threshold: v}, nil
}

// String renders the gate in the syntax ParseGate reads ("" for the zero Gate).
func (g Gate) String() string {
	parts := make([]string, len(g.Clauses))
	for i, c := range g.Clauses {
		parts[i] = c.String()
	}
	return strings.Join(parts, ",")
}

// IsZero reports whether the gate has no clauses.
func (g Gate) IsZero() bool { return len(g.Clauses) == 0 }

// GateResult is the outcome of checking one configuration against a gate.
type GateResult struct {
	// Pass is true when fidelity was measured (or the configuration is the
	// FP32 reference itself) and every clause holds.
	Pass bool
	// Measured is false when the record carries no fidelity.
	Measured bool
	// Failed describes each clause that did not hold, e.g. "top-1 0.962 < 0.99".
	Failed []string
	// Notes say how the model's traits changed the clauses, e.g. "top-1
	// judged as decisive top-1 (synthetic weights)".
	Notes []string
}

// BackboneCosine is the cosine bar a backbone is gated on when top-1 was
// the gate's only test of agreement: DefaultGate's.
const BackboneCosine = 0.999

// CheckFor tests a configuration's fidelity (and, for acc-drop clauses,
// its accuracy on labelled images, as CheckWith) against the gate the way
// the model's traits call for:
//   - embeddings (a backbone): top-1 and top-5 do not apply and are not
//     checked; without a cosine clause in the gate, cos >= BackboneCosine
//     stands in for them.
//   - synthetic weights: logits are nearly tied, so a top-1 clause is
//     judged on decisive top-1 (agreement where FP32's margin exceeds the
//     variant's max abs error) and a top-5 clause is not checked.
//   - trained weights: the gate as written (CheckWith).
//
// acc-drop clauses are checked as written whatever the traits: labelled
// images measure accuracy itself, not agreement with FP32.
func (g Gate) CheckFor(f *fidelity.Result, acc *accuracy.Result, t study.ModelTraits) GateResult {
	if f == nil || (!t.Backbone() && !t.Synthetic()) {
		return g.CheckWith(f, acc)
	}
	var eff Gate
	var notes []string
	// A record older than decisive top-1 is judged on the top-1 it has.
	legacy := math.IsNaN(f.RefMedianMargin) && f.DecisiveSamples == 0
	hasCos := false
	for _, c := range g.Clauses {
		hasCos = hasCos || c.Metric == MetricCosine || c.Metric == MetricCosineMin
	}
	for _, c := range g.Clauses {
		switch {
		case t.Backbone() && (c.Metric == MetricTop1 || c.Metric == MetricTop5):
			if !hasCos {
				eff.Clauses = append(eff.Clauses, GateClause{Metric: MetricCosine, Op: ">=", Threshold: BackboneCosine})
				hasCos = true
				notes = append(notes, fmt.Sprintf("%s does not apply to embeddings: gated on cosine >= %g instead", c.Metric.label(), BackboneCosine))
			} else {
				notes = append(notes, c.Metric.label()+" does not apply to embeddings: not checked")
			}
		case t.Synthetic() && legacy && (c.Metric == MetricTop1 || c.Metric == MetricTop5):
			eff.Clauses = append(eff.Clauses, c)
			notes = append(notes, c.Metric.label()+" judged as recorded: the record predates decisive top-1")
		case t.Synthetic() && c.Metric == MetricTop5:
			notes = append(notes, "top-5 not checked: synthetic weights' logits are nearly tied")
		case t.Synthetic() && c.Metric == MetricTop1:
			eff.Clauses = append(eff.Clauses, GateClause{Metric: metricDecisiveTop1, Op: c.Op, Threshold: c.Threshold})
			notes = append(notes, "top-1 judged as decisive top-1 (synthetic weights)")
		default:
			eff.Clauses = append(eff.Clauses, c)
		}
	}
	r := eff.CheckWith(f, acc)
	r.Notes = notes
	return r
}

// metricDecisiveTop1 is the stand-in for top-1 on synthetic weights; it
// is not a metric users write in a gate.
const metricDecisiveTop1 GateMetric = "decisive-top1"

// Check tests a fidelity measurement against the gate. A nil f (fidelity not
// measured) does not pass; an acc-drop clause fails (accuracy is not a
// fidelity figure: use CheckWith).
func (g Gate) Check(f *fidelity.Result) GateResult { return g.CheckWith(f, nil) }

// CheckWith tests a configuration's fidelity and, for acc-drop clauses, its
// accuracy on a labelled set (paired with FP32's). A gate of only acc-drop
// clauses needs no fidelity; a clause whose measurement is missing fails,
// saying so.
func (g Gate) CheckWith(f *fidelity.Result, acc *accuracy.Result) GateResult {
	needFidelity := false
	for _, c := range g.Clauses {
		needFidelity = needFidelity || c.Metric != MetricAccDrop
	}
	if f == nil && (needFidelity || len(g.Clauses) == 0) {
		return GateResult{Failed: []string{"fidelity not measured"}}
	}
	r := GateResult{Pass: true, Measured: true}
	for _, c := range g.Clauses {
		if c.Metric == MetricAccDrop {
			drop, ok := acc.Drop()
			if !ok {
				r.Pass = false
				r.Failed = append(r.Failed, "top-1 accuracy drop not measured (bench --eval-dir DIR with the FP32 baseline)")
				continue
			}
			if !c.holds(drop) {
				r.Pass = false
				r.Failed = append(r.Failed, fmt.Sprintf("%s %s %s %s", c.Metric.label(), formatMetric(c.Metric, drop), negate(c.Op), formatMetric(c.Metric, c.Threshold)))
			}
			continue
		}
		v := c.Metric.value(f)
		if !c.holds(v) {
			r.Pass = false
			if c.Metric == metricDecisiveTop1 && math.IsNaN(v) {
				r.Failed = append(r.Failed, "decisive top-1 not measurable (no sample's FP32 margin exceeds the max abs error)")
				continue
			}
			r.Failed = append(r.Failed, fmt.Sprintf("%s %s %s %s", c.Metric.label(), formatMetric(c.Metric, v), negate(c.Op), formatMetric(c.Metric, c.Threshold)))
		}
	}
	return r
}

// negate is the operator that holds when op does not.
func negate(op string) string {
	switch op {
	case ">=":
		return "<"
	case ">":
		return "≤"
	case "<=":
		return ">"
	case "<":
		return "≥"
	}
	return "!" + op
}

// formatMetric renders a metric value with the precision it needs.
func formatMetric(m GateMetric, v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case m == MetricSQNR:
		return strconv.FormatFloat(v, 'f', 1, 64) + " dB"
	case m == MetricCosine || m == MetricCosineMin:
		return formatCos(v)
	case m == MetricMaxAbs:
		return strconv.FormatFloat(v, 'g', 3, 64)
	case m == MetricAccDrop:
		return strconv.FormatFloat(v, 'f', 2, 64) + " pt"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// formatCos shows at least four decimals and enough more for the first
// digit that is not a nine: 0.99987 → "0.99987", 0.95 → "0.9500".
func formatCos(v float64) string {
	if v >= 1 {
		return "1.0000"
	}
	digits := 4
	if d := 1 - v; d > 0 && d < 1e-3 {
		digits = min(8, int(math.Floor(-math.Log10(d)))+2)
	}
	s := strconv.FormatFloat(v, 'f', digits, 64)
	for len(s) > 6 && strings.HasSuffix(s, "0") {
		s = s[:len(s)-1]
	}
	return s
}
