package tui

import (
	"context"
	"fmt"
	"math"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/sensitivity"
	"github.com/quantscope/quantscope/profiler/study"
)

// SensitivityFunc ranks the layers of an experiment's model at its
// precision (profiler/sensitivity). It runs inside a tea.Cmd.
type SensitivityFunc func(ctx context.Context, exp study.Experiment) (*sensitivity.Result, error)

// sensState is one experiment's layer ranking: running, done or failed.
type sensState struct {
	running bool
	res     *sensitivity.Result
	err     string
}

// sensDoneMsg delivers a finished ranking.
type sensDoneMsg struct {
	key string
	res *sensitivity.Result
	err error
}

// sensKey identifies the ranking of an experiment: model, precision and
// fusions (batch and EP do not change it).
func sensKey(e study.Experiment) string {
	return fmt.Sprintf("%s|%s|%t", e.Model, e.Precision, e.Optimize)
}

// sensitivityFor says whether a layer ranking makes sense for exp:
// variants with per-layer weight quantization.
func sensitivityFor(e study.Experiment) bool {
	sp, err := quant.ParseSpec(e.Precision)
	return err == nil && (sp.Kind == quant.Int8 || sp.Kind == quant.Int4 || sp.Kind == quant.Int8Static)
}

// rankLayers starts the ranking of exp in a tea.Cmd.
func rankLayers(ctx context.Context, fn SensitivityFunc, exp study.Experiment) tea.Cmd {
	k := sensKey(exp)
	return func() tea.Msg {
		res, err := fn(ctx, exp)
		return sensDoneMsg{key: k, res: res, err: err}
	}
}

// sensitivitySection draws the most sensitive layers as bars.
func sensitivitySection(c viewCtx, exp study.Experiment, w int) (section, bool) {
	s := c.st
	if c.opts == nil || c.opts.Sensitivity == nil || !sensitivityFor(exp) {
		return section{}, false
	}
	sec := section{title: "Sensitive layers"}
	st := c.sens[sensKey(exp)]
	switch {
	case st == nil:
		sec.lines = append(sec.lines, s.dim.Render("press L to rank this model's layers by what quantizing each alone to "+exp.Precision+" costs"),
			s.dim.Render("(one ONNX Runtime session per layer on a small fixed batch; quantscope sensitivity)"))
		return sec, true
	case st.running:
		sec.lines = append(sec.lines, s.accent.Render("ranking layers…"))
		return sec, true
	case st.err != "":
		sec.lines = append(sec.lines, s.bad.Render("✗ "+oneLine(st.err)))
		return sec, true
	}
	r := st.res
	sec.title = fmt.Sprintf("Sensitive layers · %s, 1 − cosine on %s", r.Precision, r.Inputs)
	maxLoss := 0.0
	for _, cd := range r.Candidates {
		if cd.Skipped == "" && !math.IsInf(cd.Loss, 0) {
			maxLoss = math.Max(maxLoss, cd.Loss)
		}
	}
	nameW := 0
	top := r.Candidates[:min(8, len(r.Candidates))]
	for _, cd := range top {
		nameW = max(nameW, width(cd.Name))
	}
	// The detail may set this section in half its width: keep it narrow.
	nameW = min(nameW, 24)
	barW := min(20, max(4, w-nameW-12))
	for _, cd := range top {
		if cd.Skipped != "" {
			continue
		}
		n := 0
		if maxLoss > 0 {
			n = int(math.Round(float64(barW) * cd.Loss / maxLoss))
		}
		bar := s.warn.Render(strings.Repeat("█", n)) + strings.Repeat(" ", barW-n)
		sec.lines = append(sec.lines, padRight(truncate(cd.Name, nameW), nameW)+" "+bar+" "+fmt.Sprintf("%.1e", cd.Loss))
	}
	if len(r.Candidates) > len(top) {
		sec.lines = append(sec.lines, s.dim.Render(fmt.Sprintf("… %d more; quantscope sensitivity lists them all", len(r.Candidates)-len(top))))
	}
	return sec, true
}
