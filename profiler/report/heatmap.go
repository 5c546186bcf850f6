package report

import (
	"fmt"
	"math"

	"github.com/quantscope/quantscope/profiler/study"
)

// Heatmap is the speedup grid of a group: one row per model (and batch,
// EP, threads), one column per precision other than FP32.
type Heatmap struct {
	Rows, Cols []string
	// Values holds speedups over FP32; NaN where there is none.
	Values [][]float64
	// Text is what each cell shows: the speedup as the tables print it,
	// "failed", "no FP32" (no baseline) or a dash (no record).
	Text [][]string
	// Entries holds each cell's configuration (nil where not run).
	Entries [][]*Entry
}

// Cell texts for cells without a speedup.
const (
	CellFailed     = "failed"
	CellNoBaseline = "no FP32"
)

// cellText is the heatmap's and the per-model table's speedup text.
func cellText(e *Entry) string {
	switch {
	case e == nil:
		return dash
	case !e.OK():
		return CellFailed
	case !e.HasBaseline:
		return CellNoBaseline
	}
	return fmtRatio(e.Speedup)
}

func (g *Group) rowLabel(e *Entry) string {
	x := e.Experiment
	s := fmt.Sprintf("%s b%d", x.Model, x.Batch)
	if len(g.EPs) > 1 {
		s += " " + x.EP
	}
	if len(g.Threads) > 1 {
		s += fmt.Sprintf(" t%d", x.Threads)
	}
	return s
}

func buildHeatmap(g *Group) Heatmap {
	var h Heatmap
	col := map[string]int{}
	for _, p := range g.Precisions {
		if isBaselineSpec(p) {
			continue
		}
		col[p] = len(h.Cols)
		h.Cols = append(h.Cols, p)
	}
	if len(h.Cols) == 0 {
		return h
	}
	row := map[string]int{}
	for _, e := range g.Entries {
		c, ok := col[e.Experiment.Precision]
		if !ok {
			continue
		}
		k := configKey(e.Experiment)
		r, ok := row[k]
		if !ok {
			r = len(h.Rows)
			row[k] = r
			h.Rows = append(h.Rows, g.rowLabel(e))
			vals := make([]float64, len(h.Cols))
			for i := range vals {
				vals[i] = math.NaN()
			}
			h.Values = append(h.Values, vals)
			text := make([]string, len(h.Cols))
			for i := range text {
				text[i] = dash
			}
			h.Text = append(h.Text, text)
			h.Entries = append(h.Entries, make([]*Entry, len(h.Cols)))
		}
		h.Entries[r][c] = e
		h.Text[r][c] = cellText(e)
		if e.OK() && e.HasBaseline {
			h.Values[r][c] = e.Speedup
		}
	}
	return h
}

// isBaselineSpec matches study.Experiment.IsBaseline.
func isBaselineSpec(p string) bool {
	return study.Experiment{Precision: p}.IsBaseline()
}

// heatmapForChart bounds the heatmap a picture shows: past maxHeatmapRows
// rows, only each model's chart batch stays, then only the first rows. The
// notes say what was left out.
func (g *Group) heatmapForChart(h Heatmap) (Heatmap, []string) {
	if len(h.Rows) <= maxHeatmapRows {
		return h, nil
	}
	total := len(h.Rows)
	var notes []string
	if len(g.Batches) > 1 {
		cb := chartBatch(g)
		var keep []int
		for r := range h.Rows {
			for _, e := range h.Entries[r] {
				if e != nil {
					if e.Experiment.Batch == cb[e.Experiment.Model] {
						keep = append(keep, r)
					}
					break
				}
			}
		}
		h = h.subset(keep)
		notes = append(notes, fmt.Sprintf("The heatmap picture shows each model at its most complete batch (%d of %d rows); the per-model tables have every batch.", len(h.Rows), total))
	}
	if len(h.Rows) > maxHeatmapRows {
		shown := len(h.Rows)
		keep := make([]int, maxHeatmapRows)
		for i := range keep {
			keep[i] = i
		}
		h = h.subset(keep)
		notes = append(notes, fmt.Sprintf("The heatmap picture shows the first %d of %d rows; the per-model tables have them all.", maxHeatmapRows, shown))
	}
	return h, notes
}

func (h Heatmap) subset(rows []int) Heatmap {
	out := Heatmap{Cols: h.Cols}
	for _, r := range rows {
		out.Rows = append(out.Rows, h.Rows[r])
		out.Values = append(out.Values, h.Values[r])
		out.Text = append(out.Text, h.Text[r])
		out.Entries = append(out.Entries, h.Entries[r])
	}
	return out
}
