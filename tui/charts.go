package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/NimbleMarkets/ntcharts/canvas"
	"github.com/NimbleMarkets/ntcharts/canvas/runes"
	"github.com/NimbleMarkets/ntcharts/linechart"
	"github.com/NimbleMarkets/ntcharts/linechart/streamlinechart"
	"github.com/charmbracelet/lipgloss"
)

// chartSet is one line of a chart.
type chartSet struct {
	name  string
	pts   []point
	style lipgloss.Style
}

// lineChart draws sets as streaming lines (newest on the right, one
// sample per column) in w×h cells with a Y axis from 0 to a round maximum
// and a time caption under it. The chart is rebuilt from the session's own
// bounded histories on every draw, so its range always fits the data on
// screen and nothing grows without bound; callers draw on the tick only.
func lineChart(s *styles, w, h int, sets ...chartSet) string {
	if w < 8 || h < 3 {
		return ""
	}
	chartH := h - 1 // the last line is the time caption
	var top float64
	var span time.Duration
	n := 0
	for i := range sets {
		// Keep only what fits: about w−5 columns right of the Y labels.
		sets[i].pts = lastPoints(sets[i].pts, w-5)
		for _, p := range sets[i].pts {
			top = max(top, p.v)
		}
		if k := len(sets[i].pts); k > 1 && k >= n {
			n = k
			span = sets[i].pts[k-1].t.Sub(sets[i].pts[0].t)
		}
	}
	top = niceCeil(top * 1.1)
	yStep := 2
	if chartH >= 9 {
		yStep = 3
	}
	lc := linechart.New(w, chartH, 0, 1, 0, top,
		linechart.WithXYSteps(0, yStep),
		linechart.WithStyles(s.chartAxis, s.chartLabel, lipgloss.Style{}),
		linechart.WithYLabelFormatter(func(_ int, v float64) string { return compact(v) }),
	)
	ch := streamlinechart.New(w, chartH, streamlinechart.WithLineChart(&lc))
	for _, set := range sets {
		ch.SetDataSetStyles(set.name, runes.ThinLineStyle, set.style)
		for _, p := range set.pts {
			ch.PushDataSet(set.name, p.v)
		}
	}
	ch.DrawAll()
	if n == 0 {
		ch.DrawXYAxisAndLabel()
	}
	caption := "now"
	if span > 0 {
		caption = spread(s.dim.Render(fmt.Sprintf("  −%s", fmtSpan(span))), s.dim.Render("now"), w)
	} else {
		caption = padLeft(s.dim.Render(caption), w)
	}
	return strings.Join(fitLines(canvasView(&ch.Canvas), w, chartH), "\n") + "\n" + padRight(caption, w)
}

// styleKey tells chart cell styles apart: they differ only in colour and
// weight.
type styleKey struct {
	fg          lipgloss.TerminalColor
	faint, bold bool
}

// canvasView renders a canvas like canvas.Model.View, but styles each run
// of equally styled cells once instead of every cell: a chart frame costs a
// few dozen Render calls, not thousands.
func canvasView(c *canvas.Model) string {
	var b strings.Builder
	w, h := c.Width(), c.Height()
	var run strings.Builder
	for y := 0; y < h; y++ {
		if y > 0 {
			b.WriteByte('\n')
		}
		var cur styleKey
		var curStyle lipgloss.Style
		flush := func() {
			if run.Len() > 0 {
				b.WriteString(curStyle.Render(run.String()))
				run.Reset()
			}
		}
		for x := 0; x < w; x++ {
			cell := c.Cell(canvas.Point{X: x, Y: y})
			k := styleKey{cell.Style.GetForeground(), cell.Style.GetFaint(), cell.Style.GetBold()}
			if x == 0 || k != cur {
				flush()
				cur, curStyle = k, cell.Style
			}
			r := cell.Rune
			if r == 0 {
				r = ' '
			}
			run.WriteRune(r)
		}
		flush()
	}
	return b.String()
}

func lastPoints(pts []point, n int) []point {
	if n <= 0 {
		return nil
	}
	if len(pts) > n {
		return pts[len(pts)-n:]
	}
	return pts
}

// fmtSpan renders a chart's time span: "45s", "3m".
func fmtSpan(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
	}
	return fmt.Sprintf("%.0fm", d.Minutes())
}

// legend renders "▬ name value" items in their series' styles.
func legend(items ...legendItem) string {
	parts := make([]string, 0, len(items))
	for _, it := range items {
		parts = append(parts, it.style.Render("━")+" "+it.text)
	}
	return strings.Join(parts, "  ")
}

type legendItem struct {
	style lipgloss.Style
	text  string
}

// panel frames body in a w×h rounded box with title in the top border.
// The focused panel's border is accented.
func panel(s *styles, title, body string, w, h int, focused bool) string {
	if w < 4 || h < 2 {
		return ""
	}
	bs, ts := s.border, s.paneTitle
	if focused {
		bs, ts = s.borderFocus, s.paneTitleFoc
	}
	inner := w - 2
	top := bs.Render("╭─")
	if title != "" {
		top += " " + ts.Render(truncate(title, max(1, inner-3))) + " "
	}
	if fill := w - 1 - width(top); fill > 0 {
		top += bs.Render(strings.Repeat("─", fill))
	}
	top += bs.Render("╮")
	side := bs.Render("│") // rendered once: a panel is drawn every frame
	var b strings.Builder
	b.WriteString(top)
	for _, ln := range fitLines(body, inner, h-2) {
		b.WriteString("\n" + side + ln + side)
	}
	b.WriteString("\n" + bs.Render("╰"+strings.Repeat("─", inner)+"╯"))
	return b.String()
}

// progressBar renders a w-cell bar at fraction f.
func progressBar(s *styles, f float64, w int) string {
	if w <= 0 {
		return ""
	}
	f = max(0, min(1, f))
	full := int(f*float64(w) + 0.5)
	return s.progressFull.Render(strings.Repeat("█", full)) + s.progressBg.Render(strings.Repeat("░", w-full))
}

// centered places text in the middle of a w×h area.
func centered(text string, w, h int) string {
	if h <= 0 || w <= 0 {
		return ""
	}
	lines := strings.Split(text, "\n")
	top := max(0, (h-len(lines))/2)
	out := make([]string, 0, h)
	for i := 0; i < top; i++ {
		out = append(out, "")
	}
	for _, l := range lines {
		out = append(out, padCenter(l, w))
	}
	return strings.Join(fitLines(strings.Join(out, "\n"), w, h), "\n")
}
