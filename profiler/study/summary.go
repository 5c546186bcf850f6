package study

import (
	"fmt"
	"math"

	"github.com/quantscope/quantscope/profiler/bench"
)

// SingleRunMargin is how far from 1.0 a single-run ratio must be before it
// counts as faster or slower: without repeats the run-to-run spread is not
// measured, and 5% is what repeated CPU and GPU runs of the same
// configuration commonly differ by.
const SingleRunMargin = 0.05

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
	// WorkingSet is the memory the configuration needs (the largest
	// bench.Memory.WorkingSet of its runs), on WorkingSetWhere ("host" or
	// "GPU"); 0 when no run measured it (records before schema 4).
	WorkingSet      int64
	WorkingSetWhere string
	// ResidentAfterLoad is the mean memory left resident by loading the
	// model (what records before schema 4 called model RSS); kept for reference.
	ResidentAfterLoad int64
	FileBytes         int64
	// Contended is true when any run of this row was contended.
	Contended bool
	// Traits is what the model declares (from its latest record).
	Traits ModelTraits

	HasBaseline  bool
	Speedup      float64 // throughput ÷ baseline throughput (see SpeedupLo)
	LatencyRatio float64 // p50 ÷ baseline p50
	// SpeedupLo and SpeedupHi are the speedup's 95% interval (NaN without
	// one); SpeedupRounds the paired rounds (or runs) it rests on, and
	// SpeedupPaired whether they were paired; SpeedupExcluded counts
	// paired rounds left out because a run of them was contended.
	SpeedupLo, SpeedupHi float64
	SpeedupRounds        int
	SpeedupPaired        bool
	SpeedupExcluded      int
	MemReduction         float64 // baseline working set ÷ this working set (×)
	SizeReduction        float64 // baseline file bytes ÷ these file bytes (×)
	// Verdict is the verdict on Speedup for a row with a baseline ("" for
	// baselines and rows without one): the one rule the TUI, bench's
	// summary and the report share.
	Verdict bench.Verdict
	Note    string
	// Coverage is the fraction of the variant's weight bytes stored below
	// 32 bits, when HasCoverage (its precision report gave the bytes). See
	// LowCoverage.
	Coverage    float64
	HasCoverage bool
}

// SingleRunVerdict judges a throughput ratio (variant ÷ baseline) that has
// no interval: bench.VerdictFaster from 1 + SingleRunMargin, bench.VerdictSlower from
// 1 − SingleRunMargin, bench.VerdictNoise between (and for an unknown ratio).
func SingleRunVerdict(ratio float64) bench.Verdict {
	switch {
	case ratio >= 1+SingleRunMargin:
		return bench.VerdictFaster
	case ratio <= 1-SingleRunMargin:
		return bench.VerdictSlower
	}
	return bench.VerdictNoise
}

// Faster reports whether the row is faster than its baseline beyond
// noise: its interval lies above 1, or, with a single run, the ratio is at
// least 1 + SingleRunMargin (SingleRunVerdict). A contended ratio is
// neither faster nor slower.
func (r Row) Faster() bool {
	switch r.Verdict {
	case bench.VerdictFaster:
		return true
	case bench.VerdictOneRun:
		return SingleRunVerdict(r.Speedup) == bench.VerdictFaster
	}
	return false
}

// Slower reports whether the row is slower than its baseline beyond noise
// (the mirror of Faster).
func (r Row) Slower() bool {
	switch r.Verdict {
	case bench.VerdictSlower:
		return true
	case bench.VerdictOneRun:
		return SingleRunVerdict(r.Speedup) == bench.VerdictSlower
	}
	return false
}

// Uncertain reports whether the speedup rests on a contended run.
func (r Row) Uncertain() bool { return r.Verdict == bench.VerdictContended }

// HasInterval reports whether the speedup has a 95% interval.
func (r Row) HasInterval() bool {
	return r.SpeedupRounds >= 2 && !math.IsNaN(r.SpeedupLo) && !math.IsNaN(r.SpeedupHi)
}

// SpeedupText renders the speedup the way every view does: "1.74× [1.70,
// 1.78]" with an interval, "1.74× (1 run)" without, with " uncertain:
// contended" when it rests on a contended run; "—" when unknown.
func (r Row) SpeedupText() string {
	if !r.HasBaseline || math.IsNaN(r.Speedup) || r.Speedup <= 0 {
		return "—"
	}
	s := FormatRatio(r.Speedup)
	if r.HasInterval() {
		s += fmt.Sprintf(" [%.2f, %.2f]", r.SpeedupLo, r.SpeedupHi)
	} else if r.Verdict == bench.VerdictOneRun {
		s += " (1 run)"
	}
	if r.Uncertain() {
		s += " uncertain: contended"
	}
	return s
}

// VerdictBasis says what the verdict rests on, e.g. "95% interval over 3
// paired rounds" or "1 run each, no interval".
func (r Row) VerdictBasis() string {
	switch {
	case r.HasInterval() && r.SpeedupPaired:
		s := fmt.Sprintf("95%% interval over %d paired rounds", r.SpeedupRounds)
		if r.SpeedupExcluded > 0 {
			s += fmt.Sprintf(", %d contended left out", r.SpeedupExcluded)
		}
		return s
	case r.HasInterval():
		return fmt.Sprintf("95%% interval over %d runs (not paired)", r.SpeedupRounds)
	case r.Uncertain():
		return "a run was contended: other processes took its CPU"
	}
	return "1 run each, no interval"
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

// run is one ok record's part in a row's speedup.
type run struct {
	repeat    int
	tput      float64
	contended bool
}

// Summarize folds records into rows in first-seen order and relates each to
// its baseline. A later ok record of an experiment supersedes an earlier
// failure of it (a resumed study retried it) and an earlier ok record of
// the same repeat (see Current); the runs of --repeat are folded.
func Summarize(recs []Record) []Row {
	recs = Current(recs)
	type acc struct {
		row      Row
		tput     []float64
		runs     []run
		resident float64
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
		contended := m.Contention != nil && m.Contention.Contended
		a.row.Contended = a.row.Contended || contended
		rn := run{repeat: r.Experiment.Repeat, tput: m.Throughput, contended: contended}
		replaced := false
		for j := range a.runs {
			if a.runs[j].repeat == rn.repeat {
				a.runs[j], replaced = rn, true
			}
		}
		if !replaced {
			a.runs = append(a.runs, rn)
		}
		a.row.P50Ms = (a.row.P50Ms*n + m.Latency.P50Ms) / (n + 1)
		a.row.P99Ms = (a.row.P99Ms*n + m.Latency.P99Ms) / (n + 1)
		a.resident = (a.resident*n + float64(m.Memory.ResidentAfterLoad)) / (n + 1)
		if ws, where, ok := m.Memory.WorkingSet(); ok && (a.row.WorkingSetWhere == "" || a.row.WorkingSetWhere == where) {
			a.row.WorkingSet, a.row.WorkingSetWhere = max(a.row.WorkingSet, ws), where
		}
		a.row.FileBytes = r.File.Bytes
		a.row.Coverage, a.row.HasCoverage = m.Precision.Coverage()
		a.row.Traits = r.Traits()
		a.row.Runs++
	}
	rows := make([]Row, 0, len(order))
	for _, k := range order {
		a := groups[k]
		if a.row.Runs > 0 {
			a.row.Throughput, a.row.ThroughputCI = bench.ConfidenceInterval95(a.tput)
			a.row.ResidentAfterLoad = int64(a.resident)
		}
		rows = append(rows, a.row)
	}
	index := map[string]int{}
	for i, r := range rows {
		index[groupKey(r.Experiment)] = i
	}
	for i := range rows {
		r := &rows[i]
		r.SpeedupLo, r.SpeedupHi = math.NaN(), math.NaN()
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
		r.LatencyRatio = ratio(r.P50Ms, b.P50Ms)
		r.MemReduction = math.NaN()
		if r.WorkingSetWhere == b.WorkingSetWhere {
			r.MemReduction = ratio(float64(b.WorkingSet), float64(r.WorkingSet))
		}
		r.SizeReduction = ratio(float64(b.FileBytes), float64(r.FileBytes))
		if r.Experiment.IsBaseline() {
			r.Speedup = 1
			continue
		}
		estimateSpeedup(r, groups[groupKey(b.Experiment)].runs, groups[groupKey(r.Experiment)].runs)
	}
	return rows
}

// estimateSpeedup sets r's speedup, interval and verdict from the
// baseline's runs and the variant's: paired by repeat (the rounds of an
// interleaved study) when at least two rounds pair up, the ratio of means
// otherwise. Rounds with a contended run are left out when two clean ones
// remain; otherwise a contended run makes the ratio uncertain.
func estimateSpeedup(r *Row, base, variant []run) {
	byRepeat := map[int]run{}
	for _, b := range base {
		byRepeat[b.repeat] = b
	}
	var pb, pv, cb, cv []float64 // all pairs, clean pairs
	contendedPair := false
	for _, v := range variant {
		b, ok := byRepeat[v.repeat]
		if !ok {
			continue
		}
		pb, pv = append(pb, b.tput), append(pv, v.tput)
		if b.contended || v.contended {
			contendedPair = true
			continue
		}
		cb, cv = append(cb, b.tput), append(cv, v.tput)
	}
	anyContended := contendedPair
	if len(pb) == 0 {
		for _, x := range append(append([]run(nil), base...), variant...) {
			anyContended = anyContended || x.contended
		}
	}
	switch {
	case len(cb) >= 2:
		r.Speedup, r.SpeedupLo, r.SpeedupHi = bench.PairedRatio95(cb, cv)
		r.SpeedupRounds, r.SpeedupPaired, r.SpeedupExcluded = len(cb), true, len(pb)-len(cb)
		r.Verdict = bench.IntervalVerdict(r.SpeedupLo, r.SpeedupHi)
	case len(pb) >= 2:
		r.Speedup, r.SpeedupLo, r.SpeedupHi = bench.PairedRatio95(pb, pv)
		r.SpeedupRounds, r.SpeedupPaired = len(pb), true
		r.Verdict = bench.IntervalVerdict(r.SpeedupLo, r.SpeedupHi)
	case len(base) >= 2 && len(variant) >= 2:
		tb, tv := throughputs(base), throughputs(variant)
		r.Speedup, r.SpeedupLo, r.SpeedupHi = bench.RatioOfMeans95(tb, tv)
		r.SpeedupRounds = min(len(tb), len(tv))
		r.Verdict = bench.IntervalVerdict(r.SpeedupLo, r.SpeedupHi)
	default:
		r.Speedup, _, _ = bench.RatioOfMeans95(throughputs(base), throughputs(variant))
		r.SpeedupRounds = 1
		r.Verdict = bench.VerdictOneRun
	}
	if anyContended && r.SpeedupExcluded == 0 {
		r.Verdict = bench.VerdictContended
	}
}

func throughputs(rs []run) []float64 {
	out := make([]float64, len(rs))
	for i, x := range rs {
		out[i] = x.tput
	}
	return out
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
