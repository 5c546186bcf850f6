package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/profiler/study"
)

// csvHeader is the column list of results.csv. peak_working_set_bytes
// is bench.Memory.WorkingSet (on working_set_on: host or GPU), the memory
// figure every view shows; speedup is this run against the baseline's
// mean, speedup_lo/hi and verdict the configuration's (folded, paired).
func csvHeader() []string {
	return []string{
		"host", "hostname", "cpu", "gpu", "ort_version",
		"model", "precision", "ep", "batch", "threads", "repeat", "status", "reason", "started", "finished",
		"weights", "output",
		"throughput", "latency_mean_ms", "latency_std_ms", "latency_min_ms", "latency_p50_ms", "latency_p90_ms",
		"latency_p95_ms", "latency_p99_ms", "latency_max_ms", "latency_cv", "latency_runs", "latency_outliers", "warmup_runs",
		"contended", "contention_share",
		"peak_working_set_bytes", "working_set_on", "resident_after_load_bytes", "peak_rss_bytes", "gpu_bytes", "gpu_context_bytes", "file_bytes",
		"top1", "top5", "decisive_top1", "decisive_samples", "ref_median_margin", "cosine_mean", "cosine_min", "sqnr_db", "max_abs_error", "fidelity_inputs",
		"joules_per_sample", "mean_power_w", "tflops", "overhead_floor", "load_ms", "session_ms", "first_inference_ms",
		"speedup", "speedup_lo", "speedup_hi", "verdict", "latency_ratio", "mem_reduction", "size_reduction", "gate", "cost_per_million",
	}
}

// csvAccuracy is a record's accuracy columns (AccuracyColumns; blank
// when not measured).
func csvAccuracy(rec *study.Record) []string {
	var a *accuracy.Result
	if rec.OK() && rec.Metrics != nil {
		a = rec.Metrics.Accuracy
	}
	cells := accuracyCells(a)
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = csvCell(c)
	}
	return out
}

// WriteCSV writes one row per record (every repeat, failures included) with
// the measurements and the figures derived from them: ratios against the
// FP32 baseline's folded means, the gate outcome and the cost.
func (r *Report) WriteCSV(w io.Writer) error {
	byHost := map[string]*Group{}
	entries := map[*Group]map[string]*Entry{}
	for _, g := range r.Groups {
		byHost[hostKey(g.Host)] = g
		m := map[string]*Entry{}
		for _, e := range g.Entries {
			m[rowKey(e.Experiment)] = e
		}
		entries[g] = m
	}
	// Accuracy columns join the file only when a record measured it, so
	// files of studies without labelled images keep their columns.
	withAcc := false
	for _, src := range r.Sources {
		for i := range src.Records {
			if m := src.Records[i].Metrics; src.Records[i].OK() && m != nil && m.Accuracy != nil {
				withAcc = true
			}
		}
	}
	cw := csv.NewWriter(w)
	head := csvHeader()
	if withAcc {
		head = append(head, AccuracyColumns...)
	}
	if err := cw.Write(head); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	for _, src := range r.Sources {
		for i := range src.Records {
			rec := &src.Records[i]
			g := byHost[hostKey(rec.Host)]
			if g == nil {
				continue
			}
			row := csvRow(g, entries[g][rowKey(rec.Experiment)], rec)
			if withAcc {
				row = append(row, csvAccuracy(rec)...)
			}
			if err := cw.Write(row); err != nil {
				return fmt.Errorf("write csv: %w", err)
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

func csvRow(g *Group, e *Entry, rec *study.Record) []string {
	x, h := rec.Experiment, rec.Host
	tr := rec.Traits()
	row := []string{g.Label, h.Hostname, h.CPU, h.GPU, h.ORTVersion,
		x.Model, x.Precision, x.EP, strconv.Itoa(x.Batch), strconv.Itoa(x.Threads), strconv.Itoa(x.Repeat),
		rec.Status, rec.Reason, csvTime(rec.Started), csvTime(rec.Finished), tr.Weights, tr.Output}
	width := len(csvHeader())
	blank := func(n int) {
		for range n {
			row = append(row, "")
		}
	}
	if !rec.OK() {
		blank(width - len(row))
		return row
	}
	m := rec.Metrics
	l := m.Latency
	row = append(row, num(m.Throughput), num(l.MeanMs), num(l.StdMs), num(l.MinMs), num(l.P50Ms), num(l.P90Ms),
		num(l.P95Ms), num(l.P99Ms), num(l.MaxMs), num(l.CV), strconv.Itoa(l.Runs), strconv.Itoa(l.Outliers), strconv.Itoa(m.WarmupRuns))
	if c := m.Contention; c != nil {
		row = append(row, strconv.FormatBool(c.Contended), num(c.Share))
	} else {
		blank(2)
	}
	ws, where, wsOK := m.Memory.WorkingSet()
	if !wsOK {
		ws, where = 0, ""
	}
	row = append(row, bytesCol(ws), where, bytesCol(m.Memory.ResidentAfterLoad), bytesCol(m.Memory.PeakRSS), bytesCol(m.Memory.GPUBytes),
		bytesCol(m.Memory.GPUContext), bytesCol(rec.File.Bytes))
	if f := m.Fidelity; f != nil {
		top1, top5 := num(f.Top1), num(f.Top5)
		if tr.Backbone() {
			top1, top5 = "", "" // embeddings have no classes
		}
		decisive, samples := "", ""
		if d, ok := f.Decisive(); ok && !tr.Backbone() {
			decisive, samples = num(d), strconv.Itoa(f.DecisiveSamples)
		}
		row = append(row, top1, top5, decisive, samples, num(f.RefMedianMargin), num(f.CosineMean), num(f.CosineMin), num(f.SQNRdB), num(f.MaxAbsError), f.Inputs)
	} else {
		blank(10)
	}
	if en := m.Energy; en != nil && en.JoulesPerSample > 0 {
		row = append(row, num(en.JoulesPerSample), num(en.MeanPowerW))
	} else {
		blank(2)
	}
	row = append(row, optNum(m.TFLOPS), strconv.FormatBool(m.OverheadFloor), optNum(m.ColdStart.LoadMs), optNum(m.ColdStart.SessionMs), optNum(m.ColdStart.FirstInferenceMs))
	base := e
	if e != nil && !x.IsBaseline() {
		base = e.Baseline
	}
	if base != nil && base.OK() {
		lo, hi, verdict := "", "", ""
		if e != nil && !x.IsBaseline() {
			lo, hi, verdict = num(e.SpeedupLo), num(e.SpeedupHi), string(e.Verdict)
		}
		memRed := ""
		if base.WorkingSetWhere == where {
			memRed = ratioCol(float64(base.WorkingSet), float64(ws))
		}
		row = append(row, ratioCol(m.Throughput, base.Throughput), lo, hi, verdict, ratioCol(l.P50Ms, base.P50Ms),
			memRed, ratioCol(float64(base.FileBytes), float64(rec.File.Bytes)))
	} else {
		blank(7)
	}
	gate := ""
	if e != nil {
		switch {
		case x.IsBaseline():
			gate = "ref"
		case e.Gate.Pass:
			gate = "pass"
		case e.Gate.Measured:
			gate = "fail"
		}
	}
	cost := ""
	if o := g.opts; o.PricePerHour > 0 || o.PricePerKWh > 0 {
		j := math.NaN()
		if m.Energy != nil {
			j = m.Energy.JoulesPerSample
		}
		cost = num(CostPerMillion(m.Throughput, j, o.PricePerHour, o.PricePerKWh).Total)
	}
	return append(row, gate, cost)
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func optNum(v float64) string {
	if v == 0 {
		return ""
	}
	return num(v)
}

func bytesCol(b int64) string {
	if b <= 0 {
		return ""
	}
	return strconv.FormatInt(b, 10)
}

func ratioCol(a, b float64) string {
	if a <= 0 || b <= 0 {
		return ""
	}
	return strconv.FormatFloat(a/b, 'f', 4, 64)
}
