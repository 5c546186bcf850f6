package report

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
)

// NoiseThreshold is the relative throughput difference below which two
// single runs are called "within noise" (study.SingleRunMargin: the rule
// is study's, shared with the TUI and bench's summary).
const NoiseThreshold = study.SingleRunMargin

// SmallerThreshold is the memory (or, without a memory figure, file size)
// reduction from which a configuration counts as smaller than FP32.
const SmallerThreshold = 1.25

// DefaultTopN is how many configurations the ranking shows by default.
const DefaultTopN = 10

// ModelInfo is what a report knows about a model beyond the results: its
// parameter count and compute per image, for the throughput-vs-parameters
// chart.
type ModelInfo struct {
	Params int64   // parameters; 0 when unknown
	GFLOPs float64 // per image at the default resolution; 0 when unknown
	Family string
}

// Options configure Build.
type Options struct {
	// Title heads the report (default "quantscope report").
	Title string
	// Gate decides which configurations are fit to recommend. The zero
	// Gate passes every configuration whose fidelity was measured.
	Gate Gate
	// PricePerHour is what the machine costs per hour; PricePerKWh what a
	// kWh costs. With either, the report has a cost section.
	PricePerHour, PricePerKWh float64
	// ModelInfo looks up parameters and GFLOPs by model name; nil means
	// none known (models then stay out of the parameter chart).
	ModelInfo func(model string) (ModelInfo, bool)
	// TopN bounds the ranking (default DefaultTopN).
	TopN int
}

// Report is everything derived from one or more results files: one group per
// host environment, and with a comparison file the A/B comparison.
type Report struct {
	Title   string
	Options Options
	Sources []Source
	// Groups holds one group per host environment (hostname, CPU, GPU,
	// driver, CUDA, ONNX Runtime version), in first-seen order.
	Groups []*Group
	// Compare is the A/B comparison against the comparison file, if any.
	Compare *Comparison
	// Hosts sets the host environments side by side (nil with one).
	Hosts *HostTable
}

// Group is the results of one host environment.
type Group struct {
	Label string // how the report names the host
	Slug  string // file-name-safe label, unique within the report
	Host  study.Host
	// Hostnames are the machines of the group, first-seen order: one,
	// or the pods or nodes of a sharded study's host group.
	Hostnames []string

	Entries    []*Entry // display order: model, EP, threads, batch, precision
	Models     []string // first-seen order
	Precisions []string // canonical order (fp32, fp16, bf16, int8…, int4…)
	EPs        []string
	Batches    []int
	Threads    []int
	MaxRuns    int

	Records, OKRecords, FailedRecords int
	Started, Finished                 time.Time

	// FidelityMeasured is false when no record of the group carries
	// fidelity: rankings then go without the gate.
	FidelityMeasured bool
	Top              []*Entry
	// TopOmitted counts ranked candidates beyond TopN; BelowGate counts
	// those left out of the ranking because they failed the gate.
	TopOmitted, BelowGate int
	Advice                []ModelAdvice
	Notes                 []string
	Heatmap               Heatmap
	HasCost               bool
	// CUDATF32 and CUDAGraph describe the CUDA provider settings of the
	// group's records (escaped text; "" without CUDA records that say).
	CUDATF32, CUDAGraph string
	// Fusions says whether the group's models ran as models/optimize fused
	// them, and which patterns matched (escaped text).
	Fusions string

	opts Options
}

// Entry is one configuration of a group (repeats folded) with every figure
// the report shows.
type Entry struct {
	study.Row

	Index    int // position in Group.Entries
	Failures int // failed records of this configuration
	Baseline *Entry

	MeanMs, MinMs, P90Ms, P95Ms, MaxMs, CV float64
	Outliers, LatencyRuns                  int

	PeakRSS, GPUBytes int64
	GPUReduction      float64
	// GPUDeviceWide is true when a run's GPU memory is the whole device's
	// (bench.GPUScopeDevice: NVML gave no figure for the process).
	GPUDeviceWide bool
	// GPUContext is the CUDA context's own device memory (shown apart
	// from the working set); 0 when not measured.
	GPUContext int64
	// ContentionShare is the largest share of the run's cores other
	// processes took in any of its runs (NaN when not measured).
	ContentionShare float64

	Fidelity *fidelity.Result // mean over runs; nil when not measured
	// Accuracy is the configuration's accuracy on a labelled image set
	// (the last run's: the answers do not change between repeats); nil
	// when not measured.
	Accuracy *accuracy.Result
	Gate     GateResult

	JoulesPerSample, MeanPowerW float64 // NaN when not measured
	TFLOPS                      float64 // NaN when not measured
	OverheadFloor               bool
	LoadMs, FirstInferenceMs    float64

	// NodesConverted/NodesTotal come from the precision report (−1: none).
	NodesConverted, NodesTotal int

	Params int64
	GFLOPs float64

	Cost Cost

	ParetoFidelity, ParetoMemory bool
	Category, UseCase            string

	throughputs []float64 // per ok run
}

// Name is "model precision" for text.
func (e *Entry) Name() string { return e.Experiment.Model + " " + e.Experiment.Precision }

// OK reports whether the configuration measured.
func (e *Entry) OK() bool { return e.Status == study.StatusOK }

// Faster and Slower are study.Row's: the one verdict rule (the 95%
// interval of paired rounds; with one run, NoiseThreshold; a contended
// ratio is neither).

// Smaller reports whether the entry holds at least SmallerThreshold less
// memory than its baseline (file size when memory is unknown).
func (e *Entry) Smaller() bool {
	if !e.HasBaseline || e.Experiment.IsBaseline() {
		return false
	}
	if known(e.MemReduction) {
		return e.MemReduction >= SmallerThreshold
	}
	return known(e.SizeReduction) && e.SizeReduction >= SmallerThreshold
}

// noiseBasis says how Faster/Slower decided, for text.
func (e *Entry) noiseBasis() string {
	switch {
	case e.Uncertain():
		return "uncertain: " + e.VerdictBasis()
	case e.HasInterval():
		return fmt.Sprintf("%s: [%.2f, %.2f], %s", e.Verdict, e.SpeedupLo, e.SpeedupHi, e.VerdictBasis())
	}
	return e.VerdictBasis()
}

// Build derives a report from read results. It never fails on content: what
// cannot be derived (missing baselines, failed runs, unmeasured figures) is
// noted in the report.
func Build(srcs []Source, opts Options) *Report {
	if opts.Title == "" {
		opts.Title = "quantscope report"
	}
	if opts.TopN <= 0 {
		opts.TopN = DefaultTopN
	}
	r := &Report{Title: opts.Title, Options: opts, Sources: srcs}
	r.Groups = buildGroups(allRecords(srcs), opts)
	r.Hosts = buildHostTable(r.Groups)
	return r
}

// BuildCompare is Build plus an A/B comparison of srcs (A) against other (B).
func BuildCompare(srcs, other []Source, opts Options) *Report {
	r := Build(srcs, opts)
	b := buildGroups(allRecords(other), opts)
	r.Compare = compareGroups(r.Groups, b, other)
	return r
}

// hostKey is study's identity of a host environment: records of one key
// are one group.
func hostKey(h study.Host) string { return h.Key() }

func buildGroups(recs []study.Record, opts Options) []*Group {
	var order []string
	byHost := map[string][]study.Record{}
	for _, rec := range recs {
		k := hostKey(rec.Host)
		if _, ok := byHost[k]; !ok {
			order = append(order, k)
		}
		byHost[k] = append(byHost[k], rec)
	}
	groups := make([]*Group, 0, len(order))
	for _, k := range order {
		groups = append(groups, buildGroup(byHost[k], opts))
	}
	labelGroups(groups)
	return groups
}

// labelGroups names each group by hostname, adding the ONNX Runtime version,
// then the GPU, then a number until the names are unique.
func labelGroups(groups []*Group) {
	label := func(g *Group, level int) string {
		h := g.Host
		name := h.Name()
		if name == "" {
			name = "unknown host"
		}
		if level >= 1 && h.ORTVersion != "" {
			name += " · ORT " + h.ORTVersion
		}
		if level >= 2 && h.GPU != "" {
			name += " · " + h.GPU
		}
		return name
	}
	for level := 0; level <= 3; level++ {
		seen := map[string]int{}
		for _, g := range groups {
			g.Label = label(g, min(level, 2))
			seen[g.Label]++
		}
		dup := false
		for _, n := range seen {
			dup = dup || n > 1
		}
		if !dup {
			break
		}
		if level == 3 {
			for i, g := range groups {
				g.Label = fmt.Sprintf("%s #%d", g.Label, i+1)
			}
		}
	}
	used := map[string]bool{}
	for i, g := range groups {
		s := slug(g.Label)
		if s == "" || used[s] {
			s = fmt.Sprintf("%s-%d", cmp.Or(s, "host"), i+1)
		}
		used[s] = true
		g.Slug = s
	}
}

// slug keeps letters, digits, dots and dashes, lower case.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.':
			b.WriteRune(r)
			dash = false
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	return strings.TrimRight(b.String(), "-")
}

func rowKey(e study.Experiment) string {
	e.Repeat = 0
	return e.Key()
}

// fusionsSummary describes the optimizer's part in a group's records: off,
// on with the patterns that matched (summed over the group's models, each
// counted once), or mixed.
func fusionsSummary(recs []study.Record) string {
	var on, off int
	matched := map[string]int{}
	seen := map[string]bool{}
	for _, r := range recs {
		if !r.Experiment.Optimize {
			off++
			continue
		}
		on++
		if o := r.Optimized; o != nil && !seen[r.Experiment.Model] {
			seen[r.Experiment.Model] = true
			for p, n := range o.Matched {
				matched[p] += n
			}
		}
	}
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(matched)) {
		if matched[p] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p, matched[p]))
		}
	}
	what := "on"
	if len(parts) > 0 {
		what += " (" + strings.Join(parts, ", ") + ")"
	} else {
		what += " (nothing matched)"
	}
	switch {
	case on > 0 && off > 0:
		return esc(fmt.Sprintf("mixed: %s in %d records, off in %d", what, on, off))
	case on > 0:
		return esc(what)
	}
	return "off (graphs as built)"
}

func buildGroup(recs []study.Record, opts Options) *Group {
	recs = study.Current(recs) // a measurement taken again replaces the old one
	g := &Group{Host: recs[0].Host, Records: len(recs), opts: opts}
	g.CUDATF32, g.CUDAGraph = cudaSettings(recs)
	g.Fusions = fusionsSummary(recs)
	okRecs := map[string][]*study.Record{}
	failed := map[string]int{}
	eps, threads := map[string]bool{}, map[int]bool{}
	batches, precs, models := map[int]bool{}, map[string]bool{}, map[string]bool{}
	for i := range recs {
		rec := &recs[i]
		e := rec.Experiment
		k := rowKey(e)
		if rec.OK() {
			okRecs[k] = append(okRecs[k], rec)
			g.OKRecords++
			g.FidelityMeasured = g.FidelityMeasured || rec.Metrics.Fidelity != nil
		} else {
			failed[k]++
			g.FailedRecords++
		}
		if !slices.Contains(g.Hostnames, rec.Host.Hostname) && rec.Host.Hostname != "" {
			g.Hostnames = append(g.Hostnames, rec.Host.Hostname)
		}
		if !models[e.Model] {
			models[e.Model] = true
			g.Models = append(g.Models, e.Model)
		}
		if !eps[e.EP] {
			eps[e.EP] = true
			g.EPs = append(g.EPs, e.EP)
		}
		if !precs[e.Precision] {
			precs[e.Precision] = true
			g.Precisions = append(g.Precisions, e.Precision)
		}
		if !batches[e.Batch] {
			batches[e.Batch] = true
			g.Batches = append(g.Batches, e.Batch)
		}
		if !threads[e.Threads] {
			threads[e.Threads] = true
			g.Threads = append(g.Threads, e.Threads)
		}
		for _, t := range []time.Time{rec.Started, rec.Finished} {
			if t.IsZero() {
				continue
			}
			if g.Started.IsZero() || t.Before(g.Started) {
				g.Started = t
			}
			if t.After(g.Finished) {
				g.Finished = t
			}
		}
	}
	slices.SortFunc(g.Precisions, comparePrecision)
	slices.Sort(g.Batches)
	slices.Sort(g.Threads)

	modelOrder := indexOf(g.Models)
	epOrder := indexOf(g.EPs)
	rows := study.Summarize(recs)
	g.Entries = make([]*Entry, 0, len(rows))
	byKey := map[string]*Entry{}
	for _, row := range rows {
		k := rowKey(row.Experiment)
		e := newEntry(row, okRecs[k], failed[k])
		if opts.ModelInfo != nil {
			if mi, ok := opts.ModelInfo(row.Experiment.Model); ok {
				e.Params, e.GFLOPs = mi.Params, mi.GFLOPs
			}
		}
		g.MaxRuns = max(g.MaxRuns, e.Runs)
		g.Entries = append(g.Entries, e)
		byKey[k] = e
	}
	slices.SortStableFunc(g.Entries, func(a, b *Entry) int {
		x, y := a.Experiment, b.Experiment
		return cmp.Or(
			cmp.Compare(modelOrder[x.Model], modelOrder[y.Model]),
			cmp.Compare(epOrder[x.EP], epOrder[y.EP]),
			cmp.Compare(x.Threads, y.Threads),
			cmp.Compare(x.Batch, y.Batch),
			comparePrecision(x.Precision, y.Precision),
		)
	})
	for i, e := range g.Entries {
		e.Index = i
		if b, ok := byKey[e.Experiment.BaselineKey()]; ok && b != e {
			e.Baseline = b
		}
		e.Gate = checkGate(opts.Gate, e)
	}
	for _, e := range g.Entries {
		switch {
		case e.OK() && e.Experiment.IsBaseline() && e.GPUBytes > 0:
			e.GPUReduction = 1
		case e.HasBaseline && e.Baseline != nil:
			e.GPUReduction = ratioOf(float64(e.Baseline.GPUBytes), float64(e.GPUBytes))
		}
		if e.OK() && (opts.PricePerHour > 0 || opts.PricePerKWh > 0) {
			e.Cost = CostPerMillion(e.Throughput, e.JoulesPerSample, opts.PricePerHour, opts.PricePerKWh)
			g.HasCost = true
		}
		e.Category, e.UseCase = categorize(e)
	}
	markPareto(g)
	rank(g, opts.TopN)
	g.Advice = advise(g)
	g.Notes = groupNotes(g)
	g.Heatmap = buildHeatmap(g)
	return g
}

func checkGate(gate Gate, e *Entry) GateResult {
	if !e.OK() {
		return GateResult{}
	}
	if e.Experiment.IsBaseline() {
		// The reference passes by definition; its self-comparison, when
		// recorded, is only a check of the harness.
		return GateResult{Pass: true, Measured: e.Fidelity != nil}
	}
	return gate.CheckFor(e.Fidelity, e.Accuracy, e.Traits)
}

func indexOf[T comparable](s []T) map[T]int {
	m := make(map[T]int, len(s))
	for i, v := range s {
		m[v] = i
	}
	return m
}

// precisionRank orders precision specs from widest to narrowest.
func precisionRank(p string) int {
	base, _, _ := strings.Cut(p, ":")
	switch strings.ToLower(base) {
	case "fp32":
		return 0
	case "fp16":
		return 1
	case "bf16":
		return 2
	case "int8":
		return 3
	case "int8-static":
		return 4
	case "int4":
		return 5
	}
	return 6
}

func comparePrecision(a, b string) int {
	return cmp.Or(cmp.Compare(precisionRank(a), precisionRank(b)), cmp.Compare(a, b))
}

func newEntry(row study.Row, recs []*study.Record, failures int) *Entry {
	e := &Entry{
		Row: row, Failures: failures, NodesConverted: -1, NodesTotal: -1,
		JoulesPerSample: math.NaN(), MeanPowerW: math.NaN(), TFLOPS: math.NaN(),
		MeanMs: math.NaN(), MinMs: math.NaN(), P90Ms: math.NaN(), P95Ms: math.NaN(), MaxMs: math.NaN(), CV: math.NaN(),
		GPUReduction: math.NaN(), LoadMs: math.NaN(), FirstInferenceMs: math.NaN(), ContentionShare: math.NaN(),
	}
	if !row.HasBaseline {
		e.Speedup, e.LatencyRatio, e.MemReduction, e.SizeReduction = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	}
	if len(recs) == 0 {
		return e
	}
	var mean, minMs, p90, p95, maxMs, cv, peak, gpu, gpuCtx, load, first meanAcc
	var joules, power, tflops meanAcc
	var fid []*fidelity.Result
	for _, r := range recs {
		m := r.Metrics
		e.throughputs = append(e.throughputs, m.Throughput)
		l := m.Latency
		mean.add(l.MeanMs)
		minMs.add(l.MinMs)
		p90.add(l.P90Ms)
		p95.add(l.P95Ms)
		maxMs.add(l.MaxMs)
		if l.MeanMs > 0 {
			cv.add(l.CV)
		}
		e.Outliers += l.Outliers
		e.LatencyRuns += l.Runs
		peak.add(float64(m.Memory.PeakRSS))
		gpu.add(float64(m.Memory.GPUBytes))
		e.GPUDeviceWide = e.GPUDeviceWide || (m.Memory.GPUBytes > 0 && m.Memory.GPUSource == bench.GPUScopeDevice)
		gpuCtx.add(float64(m.Memory.GPUContext))
		if c := m.Contention; c != nil {
			e.ContentionShare = math.Max(c.Share, cmpNaN0(e.ContentionShare))
		}
		load.add(m.ColdStart.LoadMs)
		first.add(m.ColdStart.FirstInferenceMs)
		if m.Energy != nil && m.Energy.JoulesPerSample > 0 {
			joules.add(m.Energy.JoulesPerSample)
			power.add(m.Energy.MeanPowerW)
		}
		tflops.add(m.TFLOPS)
		e.OverheadFloor = e.OverheadFloor || m.OverheadFloor
		if m.Fidelity != nil {
			fid = append(fid, m.Fidelity)
		}
		if m.Accuracy != nil {
			e.Accuracy = m.Accuracy
		}
		if c, t, ok := precisionNodes(m.Precision); ok {
			e.NodesConverted, e.NodesTotal = c, t
		}
	}
	e.MeanMs, e.MinMs, e.P90Ms, e.P95Ms, e.MaxMs = mean.get(), minMs.get(), p90.get(), p95.get(), maxMs.get()
	e.CV = cv.get()
	e.PeakRSS, e.GPUBytes, e.GPUContext = int64(peak.get0()), int64(gpu.get0()), int64(gpuCtx.get0())
	e.LoadMs, e.FirstInferenceMs = load.get(), first.get()
	e.JoulesPerSample, e.MeanPowerW, e.TFLOPS = joules.get(), power.get(), tflops.get()
	e.Fidelity = meanFidelity(fid)
	return e
}

// meanAcc averages positive, finite values; get is NaN without any.
type meanAcc struct {
	sum float64
	n   int
}

func (a *meanAcc) add(v float64) {
	if v > 0 && !math.IsInf(v, 0) {
		a.sum += v
		a.n++
	}
}

func (a *meanAcc) get() float64 {
	if a.n == 0 {
		return math.NaN()
	}
	return a.sum / float64(a.n)
}

func (a *meanAcc) get0() float64 {
	if a.n == 0 {
		return 0
	}
	return a.sum / float64(a.n)
}

// meanFidelity folds the fidelity of repeated runs: means, the worst
// minimum cosine and the largest error.
func meanFidelity(fs []*fidelity.Result) *fidelity.Result {
	if len(fs) == 0 {
		return nil
	}
	out := *fs[0]
	if len(fs) == 1 {
		return &out
	}
	n := float64(len(fs))
	out.CosineMean, out.Top1, out.Top5, out.MeanAbsError, out.SQNRdB = 0, 0, 0, 0, 0
	var decisive, agree float64
	withDecisive := 0
	for _, f := range fs {
		out.CosineMean += f.CosineMean / n
		out.Top1 += f.Top1 / n
		out.Top5 += f.Top5 / n
		out.MeanAbsError += f.MeanAbsError / n
		out.SQNRdB += f.SQNRdB / n
		out.CosineMin = math.Min(out.CosineMin, f.CosineMin)
		out.MaxAbsError = math.Max(out.MaxAbsError, f.MaxAbsError)
		if d, ok := f.Decisive(); ok {
			decisive += float64(f.DecisiveSamples)
			agree += d * float64(f.DecisiveSamples)
			withDecisive++
		}
	}
	// Decisive agreement pooled over the runs' decisive samples, and the
	// decisive samples per run (the reference is the same in every run).
	out.DecisiveSamples, out.DecisiveTop1 = 0, math.NaN()
	if decisive > 0 {
		out.DecisiveTop1 = agree / decisive
		out.DecisiveSamples = int(math.Round(decisive / float64(withDecisive)))
	}
	return &out
}

// precisionNodes reads nodes converted and kept from a precision report
// (nil for FP32); counts no graph could have are not believed.
func precisionNodes(p *quant.Report) (converted, total int, ok bool) {
	if p == nil {
		return 0, 0, false
	}
	c, k := p.NodesConverted, p.NodesKept
	if c < 0 || k < 0 || c+k > 1e9 {
		return 0, 0, false
	}
	return c, c + k, true
}

func known(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v != 0 }

func ratioOf(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return math.NaN()
	}
	return a / b
}

// categorize applies the stated rules: category from speed and memory
// against FP32; use case from the category and the batch size.
func categorize(e *Entry) (category, useCase string) {
	switch {
	case !e.OK():
		return "failed", ""
	case e.Experiment.IsBaseline():
		return "baseline", "reference"
	case !e.HasBaseline:
		return "no baseline", ""
	}
	faster, smaller := e.Faster(), e.Smaller()
	slower := e.Slower()
	switch {
	case faster && smaller:
		category = "faster & smaller"
	case faster:
		category = "faster"
	case smaller && slower:
		category = "smaller, slower"
	case smaller:
		category = "smaller"
	case slower:
		category = "slower"
	default:
		category = "no gain"
	}
	var uses []string
	if faster {
		if e.Experiment.Batch == 1 {
			uses = append(uses, "low-latency serving (batch 1)")
		} else {
			uses = append(uses, fmt.Sprintf("throughput serving (batch %d)", e.Experiment.Batch))
		}
	}
	switch {
	case smaller && slower:
		uses = append(uses, fmt.Sprintf("memory-constrained hosts that can give up speed (%s)", fmtRatio(e.Speedup)))
	case smaller && (!faster || e.MemReduction >= 2):
		uses = append(uses, "memory-constrained hosts")
	}
	return category, strings.Join(uses, "; ")
}

// rank orders the group's candidates by the stated rule: configurations
// that pass the gate (all, when fidelity was not measured anywhere) and have
// a baseline, by speedup, then memory reduction, then display order.
func rank(g *Group, topN int) {
	var cands []*Entry
	for _, e := range g.Entries {
		if !e.OK() || e.Experiment.IsBaseline() || !e.HasBaseline {
			continue
		}
		if g.FidelityMeasured && !e.Gate.Pass {
			g.BelowGate++
			continue
		}
		cands = append(cands, e)
	}
	slices.SortStableFunc(cands, func(a, b *Entry) int {
		return cmp.Or(
			-cmpNaN(a.Speedup, b.Speedup),
			-cmpNaN(a.MemReduction, b.MemReduction),
			cmp.Compare(a.Index, b.Index),
		)
	})
	if len(cands) > topN {
		g.TopOmitted = len(cands) - topN
		cands = cands[:topN]
	}
	g.Top = cands
}

// cmpNaN0 is v, or 0 when v is NaN.
func cmpNaN0(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// cmpNaN compares with NaN below every number.
func cmpNaN(a, b float64) int {
	switch an, bn := math.IsNaN(a), math.IsNaN(b); {
	case an && bn:
		return 0
	case an:
		return -1
	case bn:
		return 1
	}
	return cmp.Compare(a, b)
}

// configKey groups entries that differ only in precision.
func configKey(e study.Experiment) string {
	return fmt.Sprintf("%s|%s|t%d|b%d", e.Model, e.EP, e.Threads, e.Batch)
}

// fidelityScore is what the fidelity frontier maximizes: SQNR, the FP32
// reference at the top; NaN when not measured.
func fidelityScore(e *Entry) float64 {
	switch {
	case e.Experiment.IsBaseline():
		return fidelity.MaxSQNRdB
	case e.Fidelity == nil:
		return math.NaN()
	}
	return e.Fidelity.SQNRdB
}

// markPareto marks, within each model/EP/threads/batch, the precisions on
// the throughput-vs-fidelity and throughput-vs-memory frontiers.
func markPareto(g *Group) {
	sets := map[string][]*Entry{}
	var order []string
	for _, e := range g.Entries {
		if !e.OK() {
			continue
		}
		k := configKey(e.Experiment)
		if _, ok := sets[k]; !ok {
			order = append(order, k)
		}
		sets[k] = append(sets[k], e)
	}
	for _, k := range order {
		set := sets[k]
		fid := make([]Point, len(set))
		mem := make([]Point, len(set))
		for i, e := range set {
			fid[i] = Point{X: fidelityScore(e), Y: e.Throughput}
			m := math.NaN()
			if e.WorkingSet > 0 {
				m = -float64(e.WorkingSet)
			}
			mem[i] = Point{X: m, Y: e.Throughput}
		}
		for _, i := range ParetoFront(fid) {
			set[i].ParetoFidelity = true
		}
		for _, i := range ParetoFront(mem) {
			set[i].ParetoMemory = true
		}
	}
}

// Point is a configuration in a two-objective space where more is better
// on both axes (negate an axis to minimize it).
type Point struct{ X, Y float64 }

// ParetoFront returns the indices of the points no other point dominates
// (at least as good on both axes and better on one), ordered by X
// ascending, then index. Points with a NaN coordinate are never on it;
// identical points are all on it.
func ParetoFront(pts []Point) []int {
	idx := make([]int, 0, len(pts))
	for i, p := range pts {
		if !math.IsNaN(p.X) && !math.IsNaN(p.Y) {
			idx = append(idx, i)
		}
	}
	// X descending, Y descending: a point is on the front when its Y beats
	// every Y seen before it (all of which have X at least as large).
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(pts[b].X, pts[a].X), cmp.Compare(pts[b].Y, pts[a].Y), cmp.Compare(a, b))
	})
	var front []int
	bestY := math.Inf(-1)
	var best Point
	for _, i := range idx {
		p := pts[i]
		switch {
		case p.Y > bestY:
			front = append(front, i)
			bestY, best = p.Y, p
		case p == best:
			front = append(front, i)
		}
	}
	slices.SortFunc(front, func(a, b int) int {
		return cmp.Or(cmp.Compare(pts[a].X, pts[b].X), cmp.Compare(a, b))
	})
	return front
}
