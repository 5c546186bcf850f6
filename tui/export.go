package tui

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/report"
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

func writeCSV(path string, rows []study.Row) error {
	var b bytes.Buffer
	if err := report.WriteRows(&b, report.RowsCSV, rows); err != nil {
		return fmt.Errorf("export CSV: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("export CSV: %w", err)
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
