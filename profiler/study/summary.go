package study

import (
	"fmt"
	"math"

	"github.com/quantscope/quantscope/profiler/bench"
)

// Row is one experiment's measurements next to its FP32 baseline, with the
// derived figures every view shows. Repeated runs of an experiment are
// folded into one row (means, with a 95% interval on throughput).
type Row struct {
	Experiment Experiment // Repeat is 0
	Status     string
	Reason     string
	Runs       int // ok records folded in
	Last       *Record

	Throughput   float64 // mean samples/s
	ThroughputCI float64 // 95% half-width (Inf with one run)
	P50Ms, P99Ms float64
	ModelRSS     int64
	FileBytes    int64

	HasBaseline   bool
	Speedup       float64 // throughput ÷ baseline throughput
	LatencyRatio  float64 // p50 ÷ baseline p50
	MemReduction  float64 // baseline model RSS ÷ this model RSS (×)
	SizeReduction float64 // baseline file bytes ÷ these file bytes (×)
	Verdict       string  // with repeats: faster / slower / within noise
	Note          string
	// Coverage is the fraction of the variant's weight bytes stored below
	// 32 bits, when HasCoverage (its precision report gave the bytes). See
	// LowCoverage.
	Coverage    float64
	HasCoverage bool
}

// LowCoverageBar is the coverage below which a precision counts as having
// left most weight bytes untouched.
const LowCoverageBar = 0.5

// LowCoverage reports whether a variant left most of its weight bytes in
// float32: a precision that is FP32 in all but name (int8 on a CNN
// without calibration, int4 on convolutions). Table, heatmap, detail and
// report all flag it.
func (r Row) LowCoverage() bool {
	return !r.Experiment.IsBaseline() && r.HasCoverage && r.Coverage < LowCoverageBar
}

// WeightCoverage reads the fraction of weight bytes stored below 32 bits
// from a precision report (its weight_bytes_by_bits), and whether the
// report had them.
func WeightCoverage(rep map[string]any) (float64, bool) {
	by, ok := rep["weight_bytes_by_bits"].(map[string]any)
	if !ok {
		return 0, false
	}
	var low, all float64
	for bits, v := range by {
		var n float64
		switch x := v.(type) {
		case float64:
			n = x
		case int:
			n = float64(x)
		case int64:
			n = float64(x)
		default:
			continue
		}
		switch bits {
		case "4", "8", "16":
			low += n
			all += n
		case "32":
			all += n
		}
	}
	if all <= 0 {
		return 0, false
	}
	return low / all, true
}

func groupKey(e Experiment) string {
	e.Repeat = 0
	return e.Key()
}

// Current drops the ok records that a later ok record of the same
// experiment (same Key, repeat index included, on the same machine)
// supersedes: a resumed study measured it again, or another run of the
// same plan did. What is left is one measurement per experiment and
// machine, plus the failures; --repeat's runs are distinct experiments
// and all stay.
func Current(recs []Record) []Record {
	last := map[string]int{}
	key := mergeIdentity // the same measurement, as merge sees it
	for i, r := range recs {
		if r.OK() {
			last[key(r)] = i
		}
	}
	out := make([]Record, 0, len(recs))
	for i, r := range recs {
		if r.OK() && last[key(r)] != i {
			continue
		}
		out = append(out, r)
	}
	return out
}

// Summarize folds records into rows in first-seen order and relates each to
// its baseline. A later ok record of an experiment supersedes an earlier
// failure of it (a resumed study retried it) and an earlier ok record of
// the same repeat (see Current); the runs of --repeat are folded.
func Summarize(recs []Record) []Row {
	recs = Current(recs)
	type acc struct {
		row  Row
		tput []float64
	}
	var order []string
	groups := map[string]*acc{}
	for i := range recs {
		r := &recs[i]
		k := groupKey(r.Experiment)
		a, ok := groups[k]
		if !ok {
			e := r.Experiment
			e.Repeat = 0
			a = &acc{row: Row{Experiment: e}}
			groups[k] = a
			order = append(order, k)
		}
		if !r.OK() {
			if a.row.Runs == 0 {
				a.row.Status, a.row.Reason, a.row.Last = StatusFailed, r.Reason, r
			}
			continue
		}
		m := r.Metrics
		n := float64(a.row.Runs)
		a.row.Status, a.row.Reason, a.row.Last = StatusOK, "", r
		a.tput = append(a.tput, m.Throughput)
		a.row.P50Ms = (a.row.P50Ms*n + m.Latency.P50Ms) / (n + 1)
		a.row.P99Ms = (a.row.P99Ms*n + m.Latency.P99Ms) / (n + 1)
		a.row.ModelRSS = int64((float64(a.row.ModelRSS)*n + float64(m.Memory.ModelRSS)) / (n + 1))
		a.row.FileBytes = r.File.Bytes
		a.row.Coverage, a.row.HasCoverage = WeightCoverage(m.Precision)
		a.row.Runs++
	}
	rows := make([]Row, 0, len(order))
	for _, k := range order {
		a := groups[k]
		if a.row.Runs > 0 {
			a.row.Throughput, a.row.ThroughputCI = bench.ConfidenceInterval95(a.tput)
		}
		rows = append(rows, a.row)
	}
	index := map[string]int{}
	for i, r := range rows {
		index[groupKey(r.Experiment)] = i
	}
	for i := range rows {
		r := &rows[i]
		if r.Status != StatusOK {
			continue
		}
		bi, ok := index[r.Experiment.BaselineKey()]
		if !ok || rows[bi].Status != StatusOK {
			if !r.Experiment.IsBaseline() {
				r.Note = "no FP32 baseline measured: ratios unavailable"
			}
			continue
		}
		b := rows[bi]
		r.HasBaseline = true
		r.Speedup = ratio(r.Throughput, b.Throughput)
		r.LatencyRatio = ratio(r.P50Ms, b.P50Ms)
		r.MemReduction = ratio(float64(b.ModelRSS), float64(r.ModelRSS))
		r.SizeReduction = ratio(float64(b.FileBytes), float64(r.FileBytes))
		if r.Runs > 1 && b.Runs > 1 && !r.Experiment.IsBaseline() {
			r.Verdict = bench.Verdict(groups[groupKey(b.Experiment)].tput, groups[groupKey(r.Experiment)].tput)
		}
	}
	return rows
}

func ratio(a, b float64) float64 {
	if b <= 0 || a <= 0 {
		return math.NaN()
	}
	return a / b
}

// FormatRatio renders a ratio as "1.52×", or "—" when unknown.
func FormatRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) || v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", v)
}
