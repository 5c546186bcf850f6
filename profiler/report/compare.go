package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
)

// Verdicts of a comparison row beyond bench.CompareRuns' faster / slower /
// within noise.
const (
	VerdictAFailed    bench.Verdict = "failed in A"
	VerdictBFailed    bench.Verdict = "failed in B"
	VerdictBothFailed bench.Verdict = "failed in both"
)

// Comparison is the A/B comparison of the report's results (A) with a
// comparison file (B): two machines, two ONNX Runtime versions or two runs.
type Comparison struct {
	Sources []Source // the B files
	Pairs   []*ComparePair
}

// ComparePair compares one host environment of A with one of B.
type ComparePair struct {
	A, B *Group
	// EnvDiff lists the host fields that differ, e.g. "ONNX Runtime: 1.22.0 → 1.24.1".
	EnvDiff []string
	Rows    []CompareRow
	// OnlyA and OnlyB name experiments measured on one side only.
	OnlyA, OnlyB []string
	// Faster, Slower and Noise count the verdicts of rows both sides measured.
	Faster, Slower, Noise int
	// GeoMean is the geometric mean of B÷A throughput over rows both sides
	// measured (NaN without any).
	GeoMean float64
}

// CompareRow is one experiment measured on both sides.
type CompareRow struct {
	A, B *Entry
	// Throughput, P50 and P99 are relative changes from A to B
	// (B÷A − 1; NaN when either side lacks the figure).
	Throughput, P50, P99 float64
	// Verdict is faster / slower / within noise (B against A) or which side failed.
	Verdict bench.Verdict
	// Basis says how the verdict was reached.
	Basis string
}

// CompareVerdict judges B's throughput against A's. With at least two runs
// on each side it is bench.CompareRuns on the runs (95% intervals that must not
// overlap: runs of two files are not paired); otherwise it is
// study.SingleRunVerdict, the rule a single-run speedup is judged by.
func CompareVerdict(a, b []float64) (verdict bench.Verdict, basis string) {
	if len(a) > 1 && len(b) > 1 {
		return bench.CompareRuns(a, b), fmt.Sprintf("95%% intervals, %d vs %d runs", len(a), len(b))
	}
	basis = fmt.Sprintf("single run: ±%.0f%%", 100*NoiseThreshold)
	if len(a) == 0 || len(b) == 0 {
		return "", basis
	}
	ma, _ := bench.MeanStd(a)
	mb, _ := bench.MeanStd(b)
	if ratio := mb / ma; ma > 0 && !math.IsNaN(ratio) {
		return study.SingleRunVerdict(ratio), basis
	}
	return "", basis
}

func compareGroups(a, b []*Group, bSrcs []Source) *Comparison {
	c := &Comparison{Sources: bSrcs}
	for _, ga := range a {
		for _, gb := range b {
			c.Pairs = append(c.Pairs, comparePair(ga, gb))
		}
	}
	return c
}

func comparePair(ga, gb *Group) *ComparePair {
	p := &ComparePair{A: ga, B: gb, EnvDiff: envDiff(ga.Host, gb.Host), GeoMean: math.NaN()}
	bByKey := map[string]*Entry{}
	for _, e := range gb.Entries {
		bByKey[rowKey(e.Experiment)] = e
	}
	matched := map[*Entry]bool{}
	var logSum float64
	var logN int
	for _, ea := range ga.Entries {
		eb, ok := bByKey[rowKey(ea.Experiment)]
		if !ok {
			p.OnlyA = append(p.OnlyA, expLabel(ea.Experiment))
			continue
		}
		matched[eb] = true
		row := CompareRow{A: ea, B: eb, Throughput: math.NaN(), P50: math.NaN(), P99: math.NaN()}
		switch {
		case !ea.OK() && !eb.OK():
			row.Verdict = VerdictBothFailed
		case !ea.OK():
			row.Verdict = VerdictAFailed
		case !eb.OK():
			row.Verdict = VerdictBFailed
		default:
			row.Throughput = change(ea.Throughput, eb.Throughput)
			row.P50 = change(ea.P50Ms, eb.P50Ms)
			row.P99 = change(ea.P99Ms, eb.P99Ms)
			row.Verdict, row.Basis = CompareVerdict(ea.throughputs, eb.throughputs)
			switch row.Verdict {
			case bench.VerdictFaster:
				p.Faster++
			case bench.VerdictSlower:
				p.Slower++
			case bench.VerdictNoise:
				p.Noise++
			}
			if !math.IsNaN(row.Throughput) {
				logSum += math.Log1p(row.Throughput)
				logN++
			}
		}
		p.Rows = append(p.Rows, row)
	}
	for _, eb := range gb.Entries {
		if !matched[eb] {
			p.OnlyB = append(p.OnlyB, expLabel(eb.Experiment))
		}
	}
	if logN > 0 {
		p.GeoMean = math.Exp(logSum / float64(logN))
	}
	return p
}

func change(a, b float64) float64 {
	if a <= 0 || b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return b/a - 1
}

func expLabel(e study.Experiment) string {
	s := fmt.Sprintf("%s %s b%d %s", e.Model, e.Precision, e.Batch, e.EP)
	if e.Threads > 0 {
		s += fmt.Sprintf(" t%d", e.Threads)
	}
	return s
}

func envDiff(a, b study.Host) []string {
	var out []string
	diff := func(name, x, y string) {
		if x != y {
			out = append(out, fmt.Sprintf("%s: %s → %s", name, cmpOr(x), cmpOr(y)))
		}
	}
	diff("Hostname", a.Hostname, b.Hostname)
	diff("CPU", a.CPU, b.CPU)
	diff("Cores", intStr(a.Cores), intStr(b.Cores))
	diff("ISA", strings.Join(a.ISA, " "), strings.Join(b.ISA, " "))
	diff("GPU", a.GPU, b.GPU)
	diff("Driver", a.Driver, b.Driver)
	diff("CUDA", a.CUDA, b.CUDA)
	diff("ONNX Runtime", a.ORTVersion, b.ORTVersion)
	diff("Power limit", wattStr(a.PowerLimit), wattStr(b.PowerLimit))
	return out
}

func cmpOr(s string) string {
	if s == "" {
		return dash
	}
	return s
}

func intStr(v int) string {
	if v == 0 {
		return ""
	}
	return strconv.Itoa(v)
}

func wattStr(v float64) string {
	if v <= 0 {
		return ""
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + " W"
}

// sortedCopy returns a sorted copy.
func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
