package report

import (
	"fmt"
	"strings"

	"github.com/quantscope/quantscope/models/accuracy"
)

// accuracy writes the section on labelled-image accuracy when any entry of
// the group measured it: each configuration's top-1 and top-5 with 95%
// Wilson intervals, and for variants the paired top-1 difference from FP32
// with its Newcombe interval and McNemar's exact test.
func (r *Report) accuracy(d *document, g *Group, level int) {
	var with []*Entry
	for _, e := range g.Entries {
		if e.OK() && e.Accuracy != nil && e.Accuracy.Images > 0 {
			with = append(with, e)
		}
	}
	if len(with) == 0 {
		return
	}
	d.h(level, "Accuracy on labelled images")
	sets := map[string]bool{}
	var descr []string
	for _, e := range with {
		a := e.Accuracy
		if !sets[a.Set] {
			sets[a.Set] = true
			line := fmt.Sprintf("%s: %s images of %d classes, %s", codeLit(a.Dataset), accuracy.Thousands(a.Images), a.Classes, esc(a.Preprocess))
			if a.Skipped > 0 {
				line += fmt.Sprintf(" (%d unreadable files skipped)", a.Skipped)
			}
			descr = append(descr, line)
		}
	}
	d.p("Top-1 and top-5 accuracy against the folder's labels, with 95%% Wilson intervals. Δ is the variant's top-1 minus FP32's on the same images, in points, with Newcombe's paired interval; p is McNemar's exact test on the images where the two disagree (significant below %.2g).", accuracy.Significance)
	d.list(descr)
	t := table{head: []string{"Model", "Precision", "EP", "Batch", "Images", "Top-1", "Top-5", "Δ top-1 (pt)", "p", "Difference"},
		right: []bool{false, false, false, true, true, true, true, true, true, false}}
	for _, e := range with {
		a := e.Accuracy
		x := e.Experiment
		delta, p, verdict := "—", "—", "reference"
		if diff, ok := a.Top1Diff(); ok {
			delta = fmt.Sprintf("%s [%s, %s]", accuracy.FormatPoints(diff.Diff), accuracy.FormatPoints(diff.CI.Lo), accuracy.FormatPoints(diff.CI.Hi))
			p = fmt.Sprintf("%.2g", diff.P)
			verdict = "not significant"
			if diff.Significant {
				verdict = "significant"
			}
		} else if !x.IsBaseline() {
			verdict = "not paired (no FP32 run on the set)"
		}
		t.rows = append(t.rows, []string{esc(x.Model), esc(x.Precision), esc(x.EP), fmt.Sprint(x.Batch), accuracy.Thousands(a.Images),
			accuracy.FormatRate(a.Top1, a.Images), accuracy.FormatRate(a.Top5, a.Images), delta, p, verdict})
	}
	if len(g.EPs) == 1 {
		t = t.dropColumn("EP")
	}
	d.table(t)
	if len(sets) > 1 {
		d.p("Configurations were scored on %d different image sets (%s): compare accuracy within one set only.", len(sets), strings.Join(shortKeys(sets), ", "))
	}
}

func shortKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		if len(k) > 8 {
			k = k[:8]
		}
		out = append(out, k)
	}
	return out
}
