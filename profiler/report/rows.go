package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
)

// Row formats WriteRows writes.
const (
	RowsCSV  = "csv"
	RowsJSON = "json"
)

// RowColumns is the one schema of exported study rows (one per
// configuration, repeats folded: study.Row), in column order: what bench
// --format csv/json, the TUI's CSV export and the report's rows.csv
// write. An unknown figure (not measured, no FP32 baseline, records from
// before it was kept) is an empty CSV cell and an absent JSON key, never
// 0; a measured figure that is not a number (the cosine of NaN outputs) is
// NaN in CSV and null in JSON. README's "Exported rows" documents each
// column.
var RowColumns = append([]string{
	"model", "precision", "ep", "batch", "threads", "optimized", "options",
	"status", "reason", "note", "runs",
	"throughput", "throughput_ci95", "p50_ms", "p99_ms",
	"speedup", "speedup_lo", "speedup_hi", "verdict", "latency_ratio",
	"peak_working_set_bytes", "working_set_on", "resident_after_load_bytes", "mem_reduction",
	"file_bytes", "size_reduction",
	"cosine_mean", "top1", "decisive_top1", "weights", "output",
	"joules_per_sample", "overhead_floor", "contended", "host",
}, AccuracyColumns...)

// AccuracyColumns are the accuracy columns (labelled images, --eval-dir)
// that end RowColumns and that the report's per-record results.csv
// appends when a record measured accuracy: images scored, top-1 and top-5
// as fractions with their 95% Wilson bounds, and for a variant paired with
// FP32 the top-1 difference in points with Newcombe's bounds and McNemar's
// exact p. Empty when not measured (and the difference when not paired).
var AccuracyColumns = []string{
	"acc_images", "acc_top1", "acc_top1_lo", "acc_top1_hi", "acc_top5", "acc_top5_lo", "acc_top5_hi",
	"acc_top1_delta_pt", "acc_top1_delta_lo_pt", "acc_top1_delta_hi_pt", "acc_mcnemar_p",
}

// accuracyCells is a's values in AccuracyColumns order, nil where unknown
// (all of them when a is nil or scored no image).
func accuracyCells(a *accuracy.Result) []cell {
	out := make([]cell, len(AccuracyColumns))
	if a == nil || a.Images == 0 {
		return out
	}
	t1, t5 := a.Top1CI(), a.Top5CI()
	copy(out, []cell{a.Images, a.Top1Rate(), t1.Lo, t1.Hi, a.Top5Rate(), t5.Lo, t5.Hi})
	if d, ok := a.Top1Diff(); ok {
		out[7], out[8], out[9], out[10] = 100*d.Diff, 100*d.CI.Lo, 100*d.CI.Hi, d.P
	}
	return out
}

// cell is one exported value: nil when unknown; a string, bool, int,
// int64 or float64 (NaN: measured, not a number) otherwise.
type cell = any

// rowCells is a row's values in RowColumns order.
func rowCells(r study.Row) []cell {
	ok := r.Status == study.StatusOK
	pos := func(v float64) cell { // a figure that is 0 only when unknown
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			return nil
		}
		return v
	}
	posInt := func(v int64) cell {
		if !ok || v <= 0 {
			return nil
		}
		return v
	}
	ratio := func(v float64) cell { // against the baseline
		if !r.HasBaseline {
			return nil
		}
		return pos(v)
	}
	str := func(s string) cell {
		if s == "" {
			return nil
		}
		return s
	}
	var m *bench.Metrics
	host := cell(nil)
	if r.Last != nil {
		m, host = r.Last.Metrics, str(r.Last.Host.Name())
	}
	ci := pos(r.ThroughputCI)
	if r.Runs < 2 {
		ci = nil
	}
	lo, hi := cell(nil), cell(nil)
	if r.HasInterval() && !r.Experiment.IsBaseline() {
		lo, hi = ratio(r.SpeedupLo), ratio(r.SpeedupHi)
	}
	var cos, top1, decisive cell
	if ok && m != nil && m.Fidelity != nil {
		f := m.Fidelity
		cos = f.CosineMean
		if !r.Traits.Backbone() { // embeddings have no classes
			top1 = f.Top1
			if d, dok := f.Decisive(); dok {
				decisive = d
			}
		}
	}
	var joules, floor cell
	if ok && m != nil {
		if e := m.Energy; e != nil {
			joules = pos(e.JoulesPerSample)
		}
		floor = m.OverheadFloor
	}
	var contended cell
	if ok {
		contended = r.Contended
	}
	x := r.Experiment
	threads := cell(nil)
	if x.Threads > 0 {
		threads = x.Threads
	}
	var acc *accuracy.Result
	if ok && m != nil {
		acc = m.Accuracy
	}
	return append([]cell{
		x.Model, x.Precision, x.EP, x.Batch, threads, x.Optimize, str(x.Options),
		str(r.Status), str(oneLine(r.Reason)), str(r.Note), r.Runs,
		pos(r.Throughput), ci, pos(r.P50Ms), pos(r.P99Ms),
		ratio(r.Speedup), lo, hi, str(string(r.Verdict)), ratio(r.LatencyRatio),
		posInt(r.WorkingSet), str(r.WorkingSetWhere), posInt(r.ResidentAfterLoad), ratio(r.MemReduction),
		posInt(r.FileBytes), ratio(r.SizeReduction),
		cos, top1, decisive, str(r.Traits.Weights), str(r.Traits.Output),
		joules, floor, contended, host,
	}, accuracyCells(acc)...)
}

// oneLine joins a multi-line reason into one line.
func oneLine(s string) string {
	return string(bytes.Join(bytes.Fields([]byte(s)), []byte(" ")))
}

// csvCell renders a cell for CSV: empty when unknown, numbers in the
// shortest form that reads back exactly.
func csvCell(c cell) string {
	switch v := c.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(c)
}

// WriteRows writes rows in format (RowsCSV: a header of RowColumns and one
// line per row; RowsJSON: an indented array of objects with those keys).
func WriteRows(w io.Writer, format string, rows []study.Row) error {
	switch format {
	case RowsCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(RowColumns); err != nil {
			return fmt.Errorf("write rows: %w", err)
		}
		for _, r := range rows {
			cells := rowCells(r)
			rec := make([]string, len(cells))
			for i, c := range cells {
				rec[i] = csvCell(c)
			}
			if err := cw.Write(rec); err != nil {
				return fmt.Errorf("write rows: %w", err)
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("write rows: %w", err)
		}
		return nil
	case RowsJSON:
		var b bytes.Buffer
		b.WriteString("[")
		for i, r := range rows {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n  {")
			first := true
			for j, c := range rowCells(r) {
				if c == nil {
					continue
				}
				if f, isF := c.(float64); isF && (math.IsNaN(f) || math.IsInf(f, 0)) {
					c = nil // JSON has no NaN: a measured non-number is null
				}
				v, err := json.Marshal(c)
				if err != nil {
					return fmt.Errorf("write rows: %s: %w", RowColumns[j], err)
				}
				if !first {
					b.WriteString(",")
				}
				first = false
				fmt.Fprintf(&b, "\n    %q: %s", RowColumns[j], v)
			}
			b.WriteString("\n  }")
		}
		if len(rows) > 0 {
			b.WriteString("\n")
		}
		b.WriteString("]\n")
		_, err := w.Write(b.Bytes())
		return err
	}
	return fmt.Errorf("write rows: unknown format %q (use %s or %s)", format, RowsCSV, RowsJSON)
}
