package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/quantscope/quantscope/profiler/bench"
)

// Advice kinds.
const (
	AdviceRecommend = "recommend" // a configuration chosen by a rule
	AdviceCaution   = "caution"   // a precision failed, fell below the gate or lost speed
	AdviceInfo      = "info"      // context that qualifies the numbers
)

// Advice is one statement of the recommendations, derived by a stated rule
// and carrying the numbers that justify it.
type Advice struct {
	Kind string
	Rule string // the rule, e.g. "Fastest passing the gate at batch 8"
	Text string // the finding, in the report's inline markup
}

// ModelAdvice is the recommendations for one model.
type ModelAdvice struct {
	Model string
	Items []Advice
}

// passes reports whether an entry may be recommended: it measured and
// passed the gate (or fidelity was measured nowhere, and no gate applies).
func (g *Group) passes(e *Entry) bool {
	return e.OK() && (e.Gate.Pass || !g.FidelityMeasured)
}

// cfg names an entry for text: precision in bold, with EP and threads when
// the group has several.
func (g *Group) cfg(e *Entry) string {
	s := bold(e.Experiment.Precision)
	var q []string
	if len(g.EPs) > 1 {
		q = append(q, "on "+esc(e.Experiment.EP))
	}
	if len(g.Threads) > 1 {
		q = append(q, fmt.Sprintf("%d threads", e.Experiment.Threads))
	}
	if len(q) > 0 {
		s += " (" + strings.Join(q, ", ") + ")"
	}
	return s
}

func advise(g *Group) []ModelAdvice {
	byModel := map[string][]*Entry{}
	for _, e := range g.Entries {
		byModel[e.Experiment.Model] = append(byModel[e.Experiment.Model], e)
	}
	out := make([]ModelAdvice, 0, len(g.Models))
	for _, m := range g.Models {
		out = append(out, ModelAdvice{Model: m, Items: g.adviseModel(byModel[m])})
	}
	return out
}

func (g *Group) gateName() string {
	if !g.FidelityMeasured {
		return "measured (fidelity not measured: no gate applied)"
	}
	return "passing the gate"
}

func (g *Group) adviseModel(es []*Entry) []Advice {
	batches := map[int][]*Entry{}
	for _, e := range es {
		batches[e.Experiment.Batch] = append(batches[e.Experiment.Batch], e)
	}
	var out []Advice
	for _, part := range [][]Advice{
		g.adviseFastest(batches),
		g.adviseMemory(es),
		g.adviseLatency(batches),
		g.cautions(es),
		g.missingBaselines(batches),
		g.overheadFloors(es),
	} {
		out = append(out, part...)
	}
	return out
}

// adviceList collects a rule's advice.
type adviceList []Advice

func (l *adviceList) add(kind, rule, text string) {
	*l = append(*l, Advice{Kind: kind, Rule: rule, Text: text})
}

// adviseFastest is rule 1: per batch, the highest throughput among
// passing configurations.
func (g *Group) adviseFastest(batches map[int][]*Entry) []Advice {
	var out adviceList
	for _, b := range g.Batches {
		set := batches[b]
		if len(set) == 0 {
			continue
		}
		rule := fmt.Sprintf("Fastest %s at batch %d", g.gateName(), b)
		fastest := best(set, g.passes, func(e *Entry) float64 { return e.Throughput }, true)
		overall := best(set, (*Entry).OK, func(e *Entry) float64 { return e.Throughput }, true)
		if fastest == nil {
			if overall != nil {
				out.add(AdviceCaution, rule, "No configuration passes the gate at this batch size.")
			}
			continue
		}
		var t string
		switch {
		case fastest.Experiment.IsBaseline():
			t = fmt.Sprintf("%s: %s samples/s; no lower precision that passes the gate is faster.", g.cfg(fastest), fmtTput(fastest.Throughput))
			alt := best(set, func(e *Entry) bool { return g.passes(e) && !e.Experiment.IsBaseline() && e.HasBaseline }, func(e *Entry) float64 { return e.Throughput }, true)
			if alt != nil {
				t += fmt.Sprintf(" The closest, %s, reaches %s (%s).", g.cfg(alt), fmtRatio(alt.Speedup), alt.noiseBasis())
			}
		case !fastest.HasBaseline:
			t = fmt.Sprintf("%s: %s samples/s, %s. No FP32 baseline at this batch, so the speedup is unknown.", g.cfg(fastest), fmtTput(fastest.Throughput), fidText(fastest))
		default:
			t = fmt.Sprintf("%s: %s samples/s, %s FP32 (%s samples/s; %s); %s.", g.cfg(fastest), fmtTputCI(fastest), fmtRatio(fastest.Speedup),
				fmtTputCI(fastest.Baseline), fastest.noiseBasis(), fidText(fastest))
			switch {
			case fastest.Uncertain():
				t += " A run this ratio rests on was contended: the gain is not established."
			case !fastest.Faster():
				t += " The difference from FP32 is within run-to-run noise: the gain is not established."
			}
		}
		if overall != nil && overall != fastest && !g.passes(overall) {
			t += fmt.Sprintf(" The fastest measured, %s (%s), is left out: %s.", g.cfg(overall), ratioOrTput(overall), strings.Join(overall.Gate.Failed, ", "))
		}
		out.add(AdviceRecommend, rule, t)
	}
	return out
}

// adviseMemory is rule 2: the smallest peak working set among passing
// configurations.
func (g *Group) adviseMemory(es []*Entry) []Advice {
	var out adviceList
	// Device memory when every candidate ran on a GPU, else host memory
	// (configurations on a GPU left out).
	memCands := func(e *Entry) bool { return g.passes(e) && e.WorkingSet > 0 }
	gpuMem := slices.ContainsFunc(es, memCands) && !slices.ContainsFunc(es, func(e *Entry) bool { return memCands(e) && e.WorkingSetWhere != "GPU" })
	if !gpuMem {
		memCands = func(e *Entry) bool { return g.passes(e) && e.WorkingSet > 0 && e.WorkingSetWhere == "host" }
	}
	memOf := func(e *Entry) int64 { return e.WorkingSet }
	memRed := func(e *Entry) float64 { return e.MemReduction }
	memName := "peak working set"
	if gpuMem {
		memName = "GPU peak working set"
	}
	if small := best(es, memCands, func(e *Entry) float64 { return float64(memOf(e)) }, false); small != nil {
		rule := "Smallest memory " + g.gateName()
		var t string
		if small.Experiment.IsBaseline() {
			t = fmt.Sprintf("%s at batch %d: %s %s MiB; no passing lower precision uses less.", g.cfg(small), small.Experiment.Batch, memName, fmtMiB(memOf(small)))
		} else {
			t = fmt.Sprintf("%s at batch %d: %s %s MiB", g.cfg(small), small.Experiment.Batch, memName, fmtMiB(memOf(small)))
			if small.HasBaseline && known(memRed(small)) {
				t += fmt.Sprintf(", %s less than FP32 (%s MiB)", fmtRatio(memRed(small)), fmtMiB(memOf(small.Baseline)))
			}
			if small.FileBytes > 0 {
				t += fmt.Sprintf("; file %s MiB", fmtMiB(small.FileBytes))
				if small.HasBaseline && known(small.SizeReduction) {
					t += fmt.Sprintf(", %s smaller", fmtRatio(small.SizeReduction))
				}
			}
			t += "; " + fidText(small) + "."
		}
		out.add(AdviceRecommend, rule, t)
	}
	return out
}

// adviseLatency is rule 3: the best p99 latency at batch 1 among passing
// configurations.
func (g *Group) adviseLatency(batches map[int][]*Entry) []Advice {
	var out adviceList
	if len(batches[1]) > 0 {
		rule := "Best p99 latency at batch 1 " + strings.TrimPrefix(g.gateName(), "measured ")
		if !g.FidelityMeasured {
			rule = "Best p99 latency at batch 1"
		}
		lat := best(batches[1], func(e *Entry) bool { return g.passes(e) && e.P99Ms > 0 }, func(e *Entry) float64 { return e.P99Ms }, false)
		switch {
		case lat == nil:
		case lat.Experiment.IsBaseline():
			out.add(AdviceRecommend, rule, fmt.Sprintf("%s: p99 %s ms (p50 %s ms); no passing lower precision has a lower p99.", g.cfg(lat), fmtMs(lat.P99Ms), fmtMs(lat.P50Ms)))
		default:
			t := fmt.Sprintf("%s: p99 %s ms (p50 %s ms)", g.cfg(lat), fmtMs(lat.P99Ms), fmtMs(lat.P50Ms))
			if lat.HasBaseline {
				t += fmt.Sprintf(" against FP32's p99 %s ms (%s of it)", fmtMs(lat.Baseline.P99Ms), fmtRatio(lat.P99Ms/lat.Baseline.P99Ms))
			}
			out.add(AdviceRecommend, rule, t+"; "+fidText(lat)+".")
		}
	} else if len(g.Batches) > 0 {
		out.add(AdviceInfo, "Best p99 latency at batch 1", "No batch-1 experiment was run for this model; rerun with batch 1 for a latency recommendation.")
	}
	return out
}

// cautions are failures, gate failures, missing fidelity and slowdowns.
func (g *Group) cautions(es []*Entry) []Advice {
	var out adviceList
	for _, t := range g.mergeByConfig(es, func(e *Entry) bool { return !e.OK() }, func(e *Entry) string {
		return "failed to run: " + esc(clip(cmp.Or(e.Reason, "no reason recorded"), 200)) + "."
	}) {
		out.add(AdviceCaution, "Failed", t)
	}
	for _, t := range g.mergeByConfig(es, func(e *Entry) bool {
		return e.OK() && e.Failures > 0
	}, func(e *Entry) string {
		return fmt.Sprintf("failed in %s of %d runs; the figures are from the runs that completed.", plural(e.Failures, "run", "runs"), e.Failures+e.Runs)
	}) {
		out.add(AdviceCaution, "Failed runs", t)
	}
	if g.FidelityMeasured {
		for _, t := range g.mergeByConfig(es, func(e *Entry) bool {
			return e.OK() && !e.Experiment.IsBaseline() && e.Gate.Measured && !e.Gate.Pass
		}, func(e *Entry) string {
			s := "falls below the gate: " + strings.Join(e.Gate.Failed, ", ")
			if e.HasBaseline && e.Faster() {
				s += fmt.Sprintf(" (although %s faster)", fmtRatio(e.Speedup))
			}
			return s + "."
		}) {
			out.add(AdviceCaution, "Below the gate", t)
		}
		for _, t := range g.mergeByConfig(es, func(e *Entry) bool {
			return e.OK() && !e.Experiment.IsBaseline() && !e.Gate.Measured
		}, func(e *Entry) string {
			return "has no fidelity measurement and is not recommended."
		}) {
			out.add(AdviceCaution, "Fidelity not measured", t)
		}
	}
	for _, e := range es {
		if g.passes(e) && e.Slower() {
			out.add(AdviceCaution, "Slower than FP32", fmt.Sprintf("%s at batch %d is slower than FP32: %s (%s vs %s samples/s; %s).",
				g.cfg(e), e.Experiment.Batch, fmtRatio(e.Speedup), fmtTput(e.Throughput), fmtTput(e.Baseline.Throughput), e.noiseBasis()))
		}
	}
	return out
}

// missingBaselines says, per batch, which precisions have no FP32 baseline
// to compare with.
func (g *Group) missingBaselines(batches map[int][]*Entry) []Advice {
	var out adviceList
	for _, b := range g.Batches {
		var orphans []string
		var base *Entry
		for _, e := range batches[b] {
			if e.Experiment.IsBaseline() {
				base = e
			} else if e.OK() && !e.HasBaseline {
				orphans = append(orphans, esc(e.Experiment.Precision))
			}
		}
		if len(orphans) == 0 {
			continue
		}
		why := "was not run"
		if base != nil && !base.OK() {
			why = "failed (" + esc(clip(base.Reason, 120)) + ")"
		}
		out.add(AdviceInfo, "No FP32 baseline", fmt.Sprintf("The FP32 baseline at batch %d %s: speedup and reductions of %s are unavailable.", b, why, joinAnd(orphans)))
	}
	return out
}

// overheadFloors names, per batch, the configurations whose latency is
// within a few times of an empty ONNX Runtime call.
func (g *Group) overheadFloors(es []*Entry) []Advice {
	var out adviceList
	floor := map[int][]string{}
	for _, e := range es {
		if e.OK() && e.OverheadFloor {
			floor[e.Experiment.Batch] = append(floor[e.Experiment.Batch], esc(e.Experiment.Precision))
		}
	}
	for _, b := range g.Batches {
		if ps := floor[b]; len(ps) > 0 {
			out.add(AdviceInfo, "Overhead floor", fmt.Sprintf("At batch %d, %s ran with a median latency within 3× of an empty ONNX Runtime call: speedups there measure runtime overhead more than arithmetic.", b, joinAnd(ps)))
		}
	}
	return out
}

// mergeByConfig writes one line per configuration and detail among the
// entries filter keeps, listing the batch sizes it happened at.
func (g *Group) mergeByConfig(es []*Entry, filter func(*Entry) bool, detail func(*Entry) string) []string {
	type item struct {
		head, detail string
		batches      []int
	}
	var order []string
	items := map[string]*item{}
	for _, e := range es {
		if !filter(e) {
			continue
		}
		d := detail(e)
		k := g.cfg(e) + "\x00" + d
		it, ok := items[k]
		if !ok {
			it = &item{head: g.cfg(e), detail: d}
			items[k] = it
			order = append(order, k)
		}
		it.batches = append(it.batches, e.Experiment.Batch)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		it := items[k]
		out = append(out, fmt.Sprintf("%s (batch %s) %s", it.head, joinInts(it.batches), it.detail))
	}
	return out
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func ratioOrTput(e *Entry) string {
	if e.HasBaseline {
		return fmtRatio(e.Speedup) + " FP32"
	}
	return fmtTput(e.Throughput) + " samples/s"
}

// best returns the entry maximizing (or minimizing) key among those keep
// accepts, the first in display order on ties; nil when none.
func best(es []*Entry, keep func(*Entry) bool, key func(*Entry) float64, maximize bool) *Entry {
	var out *Entry
	var bk float64
	for _, e := range es {
		if !keep(e) {
			continue
		}
		k := key(e)
		if math.IsNaN(k) {
			continue
		}
		if out == nil || (maximize && k > bk) || (!maximize && k < bk) {
			out, bk = e, k
		}
	}
	return out
}

// groupNotes are the findings about a host's results as a whole.
func groupNotes(g *Group) []string {
	var notes []string
	if !g.FidelityMeasured {
		notes = append(notes, "No record carries a fidelity measurement: the gate is not applied, rankings use speed and memory only, and the report makes no claim about accuracy.")
	}
	var noisy, outl []string
	for _, e := range g.Entries {
		if !e.OK() {
			continue
		}
		if e.CV > 0.10 {
			noisy = append(noisy, fmt.Sprintf("%s b%d (CV %s)", esc(e.Name()), e.Experiment.Batch, fmtPct(e.CV)))
		}
		if e.LatencyRuns > 0 && float64(e.Outliers) > 0.05*float64(e.LatencyRuns) {
			outl = append(outl, fmt.Sprintf("%s b%d (%d of %d runs)", esc(e.Name()), e.Experiment.Batch, e.Outliers, e.LatencyRuns))
		}
	}
	if len(noisy) > 0 {
		notes = append(notes, "Latency varied by more than 10% (coefficient of variation) in "+joinAnd(noisy)+": something else may have been running; those numbers deserve a rerun.")
	}
	if len(outl) > 0 {
		notes = append(notes, "More than 5% of the timed runs were outliers (Tukey fences) in "+joinAnd(outl)+".")
	}
	var synth, backbones, contended []string
	seenModel := map[string]bool{}
	for _, e := range g.Entries {
		if !e.OK() {
			continue
		}
		if e.Contended {
			contended = append(contended, fmt.Sprintf("%s b%d (others took up to %s of its cores)", esc(e.Name()), e.Experiment.Batch, fmtPct(e.ContentionShare)))
		}
		if seenModel[e.Experiment.Model] {
			continue
		}
		seenModel[e.Experiment.Model] = true
		if e.Traits.Synthetic() {
			s := esc(e.Experiment.Model)
			if f := marginOf(g, e.Experiment.Model); !math.IsNaN(f) {
				s += fmt.Sprintf(" (FP32 median top-1 margin %.3g)", f)
			}
			synth = append(synth, s)
		}
		if e.Traits.Backbone() {
			backbones = append(backbones, esc(e.Experiment.Model))
		}
	}
	if len(synth) > 0 {
		notes = append(notes, "Accuracy was not measurable for "+joinAnd(synth)+": synthetic weights (the catalog's), whose logits are nearly tied, so top-1 agreement flips on errors far too small to matter. Gates and recommendations use cosine, SQNR and decisive top-1 there; bring a trained model for accuracy.")
	}
	if len(backbones) > 0 {
		notes = append(notes, joinAnd(backbones)+" output embeddings (backbones): top-1 and top-5 do not apply and are not shown; they are gated on cosine.")
	}
	var ctx []string
	for _, e := range g.Entries {
		if e.OK() && e.GPUContext > 0 && !slices.Contains(ctx, fmtMiB(e.GPUContext)) {
			ctx = append(ctx, fmtMiB(e.GPUContext))
		}
	}
	if len(ctx) > 0 {
		notes = append(notes, fmt.Sprintf("The CUDA context took %s MiB of device memory per worker, measured once before the model loaded: it is left out of Mem (the peak working set) and included in GPU MiB (NVML's figure for the process).", strings.Join(ctx, " / ")))
	}
	if len(contended) > 0 {
		notes = append(notes, fmt.Sprintf("Other processes took more than %.0f%% of the cores in runs of %s: those runs are marked contended, and every ratio that rests on them is uncertain. Rerun on a quiet machine, or with --repeat so contended rounds can be left out.", 100*bench.ContendedShare, joinAnd(contended)))
	}
	if g.MaxRuns <= 1 {
		notes = append(notes, fmt.Sprintf("Each configuration ran once (*1 run*), so run-to-run noise was not measured: speedups have no interval, and differences from FP32 under %.0f%% are called within noise. Repeat the study (--repeat 3) for 95%% intervals from paired rounds.", 100*NoiseThreshold))
	}
	var kept []string
	for _, e := range g.Entries {
		if e.OK() && e.NodesTotal > 0 && !e.Experiment.IsBaseline() && e.NodesConverted == 0 {
			kept = append(kept, esc(e.Name()))
		}
	}
	if len(kept) > 0 {
		slices.Sort(kept)
		kept = slices.Compact(kept)
		notes = append(notes, "The precision report of "+joinAnd(kept)+" says no node was converted: those runs measured the FP32 graph.")
	}
	return notes
}

// marginOf is the FP32 median top-1 margin recorded with a model's
// fidelity results in the group (NaN when none).
func marginOf(g *Group, model string) float64 {
	for _, e := range g.Entries {
		if e.Experiment.Model == model && e.Fidelity != nil && !e.Experiment.IsBaseline() && !math.IsNaN(e.Fidelity.RefMedianMargin) {
			return e.Fidelity.RefMedianMargin
		}
	}
	return math.NaN()
}
