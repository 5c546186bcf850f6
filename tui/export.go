package tui

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
)

// exportFormat is a kind of export.
type exportFormat int

const (
	exportJSONL exportFormat = iota
	exportCSV
	exportMarkdown
)

// exportDoneMsg reports where an export went.
type exportDoneMsg struct {
	text string
	err  error
}

// exportPath is the file an export writes: the results file's name with
// another extension, beside it.
func exportPath(out string, f exportFormat) string {
	base := strings.TrimSuffix(out, filepath.Ext(out))
	switch f {
	case exportCSV:
		return base + ".csv"
	case exportMarkdown:
		return base + ".md"
	}
	return out
}

// exportCmd writes rows in format f off the UI goroutine.
func exportCmd(rows []study.Row, records int, out string, f exportFormat) tea.Cmd {
	return func() tea.Msg {
		abs, err := filepath.Abs(exportPath(out, f))
		if err != nil {
			abs = exportPath(out, f)
		}
		switch f {
		case exportJSONL:
			if _, err := os.Stat(out); err != nil {
				return exportDoneMsg{err: fmt.Errorf("no results file yet: %w", err)}
			}
			return exportDoneMsg{text: fmt.Sprintf("results (%s, JSON lines) are in %s · quantscope report %s", plural(records, "record", "records"), abs, shellQuote(out))}
		case exportCSV:
			if err := writeCSV(abs, rows); err != nil {
				return exportDoneMsg{err: err}
			}
		case exportMarkdown:
			if err := os.WriteFile(abs, []byte(markdownTable(rows)), 0o644); err != nil {
				return exportDoneMsg{err: fmt.Errorf("write %s: %w", abs, err)}
			}
		}
		return exportDoneMsg{text: fmt.Sprintf("exported %s to %s", plural(len(rows), "row", "rows"), abs)}
	}
}

// num renders a float for CSV: empty when unknown.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) || v == 0 {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// csvHeader is the TUI export's columns; peak_working_set_bytes is the
// one memory definition (bench.Memory.WorkingSet), speedup_lo/hi its
// paired 95% interval.
var csvHeader = []string{"model", "precision", "ep", "batch", "threads", "status", "reason", "runs",
	"throughput", "throughput_ci95", "p50_ms", "p99_ms", "speedup", "speedup_lo", "speedup_hi", "latency_ratio",
	"peak_working_set_bytes", "working_set_on", "resident_after_load_bytes", "mem_reduction", "file_bytes", "size_reduction",
	"cosine", "top1", "decisive_top1", "weights", "output", "joules_per_sample", "overhead_floor", "contended", "verdict", "note"}

func csvRecord(r study.Row) []string {
	cos, top1, okF := fidelityOf(r)
	if r.Traits.Backbone() {
		top1 = math.NaN() // embeddings have no classes
	}
	decisive := math.NaN()
	if okF && !r.Traits.Backbone() {
		if d, ok := r.Last.Metrics.Fidelity.Decisive(); ok {
			decisive = d
		}
	}
	j, okE := energyOf(r)
	floor := ""
	if r.Last != nil && r.Last.Metrics != nil && r.Last.Metrics.OverheadFloor {
		floor = "true"
	}
	ratio := func(v float64) string {
		if !r.HasBaseline {
			return ""
		}
		return num(v)
	}
	return []string{
		r.Experiment.Model, r.Experiment.Precision, r.Experiment.EP,
		strconv.Itoa(r.Experiment.Batch), strconv.Itoa(r.Experiment.Threads),
		r.Status, oneLine(r.Reason), strconv.Itoa(r.Runs),
		num(r.Throughput), num(r.ThroughputCI), num(r.P50Ms), num(r.P99Ms),
		ratio(r.Speedup), ratio(r.SpeedupLo), ratio(r.SpeedupHi), ratio(r.LatencyRatio),
		num(float64(r.WorkingSet)), r.WorkingSetWhere, num(float64(r.ResidentAfterLoad)), ratio(r.MemReduction), strconv.FormatInt(r.FileBytes, 10), ratio(r.SizeReduction),
		num(nan(okF, cos)), num(nan(okF, top1)), num(decisive), r.Traits.Weights, r.Traits.Output, num(nan(okE, j)), floor,
		strconv.FormatBool(r.Contended), r.Verdict, r.Note,
	}
}

func writeCSV(path string, rows []study.Row) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("export CSV: %w", err)
	}
	w := csv.NewWriter(f)
	w.Write(csvHeader)
	for _, r := range rows {
		w.Write(csvRecord(r))
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("export CSV %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("export CSV %s: %w", path, err)
	}
	return nil
}

// markdownTable renders the comparison table as GitHub Markdown.
func markdownTable(rows []study.Row) string {
	var b strings.Builder
	b.WriteString("| model | precision | EP | batch | img/s | p50 ms | p99 ms | speedup | mem | mem ↓ | size | size ↓ | cos | top-1 |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		e := r.Experiment
		if r.Status != study.StatusOK {
			fmt.Fprintf(&b, "| %s | %s | %s | %d | failed: %s | | | | | | | | | |\n", e.Model, e.Precision, e.EP, e.Batch, strings.ReplaceAll(oneLine(r.Reason), "|", "\\|"))
			continue
		}
		cos, _, ok := fidelityOf(r)
		cosS, topS := "—", "—"
		if ok {
			cosS = fmtCos(cos)
		}
		if t, decisive, ok := top1Of(r); ok {
			topS = fmtPct(t)
			if decisive {
				topS += " (decisive)"
			}
		}
		sp, mem, size := "—", "—", "—"
		if r.HasBaseline {
			sp, mem, size = r.SpeedupText(), fmtRatio(r.MemReduction), fmtRatio(r.SizeReduction)
		}
		if r.Contended {
			sp += " (contended)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			e.Model, e.Precision, e.EP, e.Batch, fmtRate(r.Throughput), fmtMs(r.P50Ms), fmtMs(r.P99Ms),
			strings.ReplaceAll(sp, "|", "\\|"), fmtBytes(r.WorkingSet), mem, fmtBytes(r.FileBytes), size, cosS, topS)
	}
	b.WriteString("\n" + bench.MemoryFootnote + ". Speedup: with repeats, the 95% interval of paired rounds; (1 run): no interval.\n")
	return b.String()
}
