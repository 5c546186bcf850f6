package report

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"image/png"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/quantscope/quantscope/profiler/bench"
)

// ChartDPI is the resolution of the PNG charts.
const ChartDPI = 120

// Bounds that keep charts readable (and quick to draw) for large studies.
const (
	maxLatencyRows  = 40   // configurations in the latency chart
	maxHeatmapRows  = 60   // rows of the speedup heatmap
	maxChartWidth   = 14.0 // inches
	maxParetoModels = 6    // models in a Pareto chart
	maxLabelModels  = 12   // models named in the parameter chart
)

// Chart is one picture of the report, rendered as PNG and SVG.
type Chart struct {
	// Name is the file stem, e.g. "speedup-heatmap" (prefixed with the
	// host's slug when the report has several hosts).
	Name    string
	Title   string
	Caption string // what the chart shows, in the report's inline markup
	// Width and Height are the chart's size; WidthPx and HeightPx the PNG's.
	Width, Height     vg.Length
	WidthPx, HeightPx int
	PNG, SVG          []byte
}

// PNGName is the PNG file's name.
func (c *Chart) PNGName() string { return c.Name + ".png" }

// SVGName is the SVG file's name.
func (c *Chart) SVGName() string { return c.Name + ".svg" }

// ChartSet is the charts of one host group and what could not be drawn.
type ChartSet struct {
	Group  *Group
	Charts []*Chart
	// Notes say what a chart leaves out (models without a parameter count,
	// rows beyond the limit) and which charts could not be drawn.
	Notes []string
}

// pixels is the PNG size vgimg gives a length at ChartDPI.
func pixels(l vg.Length) int { return int(l/vg.Inch*vg.Length(ChartDPI) + 0.5) }

// builtPlot is a built chart: the plot, its size, and notes to print under it
// (a nil plot means there is nothing to draw, the notes say why).
type builtPlot struct {
	plot  *plot.Plot
	w, h  vg.Length
	notes []string
}

// chartJob builds one chart's plot.
type chartJob struct {
	name, title, caption string
	build                func() (builtPlot, error)
}

// Charts renders the charts of every group of the report, in parallel; the
// output does not depend on scheduling.
func Charts(r *Report) []ChartSet {
	sets := make([]ChartSet, len(r.Groups))
	type result struct {
		chart *Chart
		notes []string
	}
	type slot struct {
		set int
		job chartJob
		res result
	}
	var slots []*slot
	for i, g := range r.Groups {
		sets[i].Group = g
		prefix := ""
		if len(r.Groups) > 1 {
			prefix = g.Slug + "-"
		}
		for _, j := range groupChartJobs(g) {
			j.name = prefix + j.name
			slots = append(slots, &slot{set: i, job: j})
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	for _, s := range slots {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, notes, err := renderJob(s.job)
			if err != nil {
				notes = append(notes, fmt.Sprintf("The chart %q could not be drawn: %v.", s.job.title, err))
			}
			s.res = result{c, notes}
		}()
	}
	wg.Wait()
	for _, s := range slots {
		if s.res.chart != nil {
			sets[s.set].Charts = append(sets[s.set].Charts, s.res.chart)
		}
		sets[s.set].Notes = append(sets[s.set].Notes, s.res.notes...)
	}
	return sets
}

// renderJob builds and renders a chart, turning a panic inside the plotting
// library into an error: a chart must never take the report down.
func renderJob(j chartJob) (c *Chart, notes []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("plotting failed: %v", r)
		}
	}()
	f, err := j.build()
	notes, w, h := f.notes, f.w, f.h
	if err != nil || f.plot == nil {
		return nil, notes, err
	}
	png, svg, err := render(f.plot, w, h)
	if err != nil {
		return nil, notes, err
	}
	return &Chart{Name: j.name, Title: j.title, Caption: j.caption, Width: w, Height: h,
		WidthPx: pixels(w), HeightPx: pixels(h), PNG: png, SVG: svg}, notes, nil
}

// pngEncoder favours speed: charts are mostly flat color, which even the
// fastest deflate level compresses well.
var pngEncoder = png.Encoder{CompressionLevel: png.BestSpeed}

func render(p *plot.Plot, w, h vg.Length) (pngData, svgData []byte, err error) {
	// The canvases start white (vgimg) or are painted white by margin
	// (SVG): the plot need not paint its background again.
	p.BackgroundColor = nil
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(ChartDPI))
	p.Draw(margin(draw.New(img), keepBackground))
	var pb bytes.Buffer
	if err := pngEncoder.Encode(&pb, img.Image()); err != nil {
		return nil, nil, fmt.Errorf("encode PNG: %w", err)
	}
	sv := vgsvg.New(w, h)
	p.Draw(margin(draw.New(sv), paintBackground))
	var sb bytes.Buffer
	if _, err := sv.WriteTo(&sb); err != nil {
		return nil, nil, fmt.Errorf("encode SVG: %w", err)
	}
	return pb.Bytes(), sb.Bytes(), nil
}

// background says whether margin paints the picture white first.
type background bool

const (
	keepBackground  background = false // the canvas starts white (vgimg)
	paintBackground background = true  // the canvas starts empty (SVG)
)

// margin insets the chart from the picture's edges, first painting the
// whole picture white when bg says so.
func margin(c draw.Canvas, bg background) draw.Canvas {
	if bg == paintBackground {
		c.FillPolygon(color.White, []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}})
	}
	return draw.Crop(c, vg.Points(8), -vg.Points(8), vg.Points(3), -vg.Points(3))
}

// plain makes user text safe for a chart label: valid UTF-8 without
// control characters (SVG is XML, which allows neither).
func plain(s string) string {
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfffe || r == 0xffff {
			return -1
		}
		return r
	}, s)
}

func plainAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = plain(x)
	}
	return out
}

func groupChartJobs(g *Group) []chartJob {
	jobs := []chartJob{
		{name: "speedup-heatmap", title: "Speedup over FP32",
			caption: "Throughput ÷ FP32 throughput of the same model, batch and EP; green is faster, red slower. Cells show the same figures as the per-model tables.",
			build:   func() (builtPlot, error) { return heatmapPlot(g) }},
		{name: "memory-reduction", title: "Memory reduction vs FP32",
			caption: "FP32 peak working set ÷ this precision's (" + bench.MemoryHeader + ": peak RSS over warm-up and the timed loop − RSS before load; on a GPU, peak process VRAM − CUDA context), at each model's smallest batch with a baseline; the dashed line is FP32.",
			build: func() (builtPlot, error) {
				return reductionPlot(g, "Memory reduction vs FP32 (peak working set)", "× less memory than FP32", func(e *Entry) float64 { return e.MemReduction })
			}},
		{name: "gpu-memory-reduction", title: "GPU memory reduction vs FP32" + deviceWideSuffix(g),
			caption: "FP32 GPU memory ÷ this precision's GPU memory, at each model's smallest batch with a baseline." + deviceWideCaption(g),
			build: func() (builtPlot, error) {
				return reductionPlot(g, "GPU memory reduction vs FP32"+deviceWideSuffix(g), "× less GPU memory than FP32", func(e *Entry) float64 { return e.GPUReduction })
			}},
		{name: "size-reduction", title: "Model file size reduction vs FP32",
			caption: "FP32 file bytes ÷ this precision's file bytes (with external data).",
			build: func() (builtPlot, error) {
				return reductionPlot(g, "Model file size reduction vs FP32", "× smaller file than FP32", func(e *Entry) float64 { return e.SizeReduction })
			}},
		{name: "throughput-vs-params", title: "Throughput vs parameters",
			caption: "Each model's parameter count against measured throughput, one point per precision, at each model's most complete batch (the one with FP32 and the most precisions measured) (both axes logarithmic).",
			build:   func() (builtPlot, error) { return paramsPlot(g) }},
		{name: "pareto-fidelity", title: "Throughput vs fidelity (Pareto)",
			caption: "SQNR against FP32 outputs vs throughput at each model's most complete batch (the one with FP32 and the most precisions measured). Filled points lie on the model's Pareto frontier (no other precision is both faster and closer to FP32), joined by a line; rings are dominated.",
			build:   func() (builtPlot, error) { return paretoPlot(g, paretoFidelity) }},
		{name: "pareto-memory", title: "Throughput vs memory (Pareto)",
			caption: "Peak working set vs throughput at each model's most complete batch (the one with FP32 and the most precisions measured). Filled points lie on the model's Pareto frontier (no other precision is both faster and smaller), joined by a line; rings are dominated.",
			build:   func() (builtPlot, error) { return paretoPlot(g, paretoMemory) }},
		{name: "latency-percentiles", title: "Latency percentiles",
			caption: "Per configuration, at each model's smallest batch: the bar spans p50 to p99, ticks mark p90 and p95, the dot p50, the whisker min to max (logarithmic axis).",
			build:   func() (builtPlot, error) { return latencyPlot(g) }},
	}
	return jobs
}

var sans = font.Font{Typeface: "Liberation", Variant: "Sans"}

// newPlot is a plot with the report's fonts.
func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sans, 13)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 10.5)
		a.Tick.Label.Font = font.From(sans, 9)
	}
	p.Legend.TextStyle.Font = font.From(sans, 9)
	return p
}

var (
	gray     = color.RGBA{110, 119, 129, 255}
	lightBg  = color.RGBA{234, 236, 239, 255}
	tableau  = []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255}, {188, 189, 34, 255}, {23, 190, 207, 255}}
	precBase = map[string]color.RGBA{
		"fp32": gray, "fp16": {31, 119, 180, 255}, "bf16": {23, 190, 207, 255},
		"int8": {255, 127, 14, 255}, "int8-static": {214, 39, 40, 255}, "int4": {148, 103, 189, 255},
	}
)

// precisionColors gives each precision of the group a color: fixed ones for
// the usual specs (first use), the palette for the rest.
func precisionColors(g *Group) map[string]color.RGBA {
	out := map[string]color.RGBA{}
	used := map[color.RGBA]bool{}
	for _, p := range g.Precisions {
		base, _, _ := strings.Cut(p, ":")
		if c, ok := precBase[strings.ToLower(base)]; ok && !used[c] {
			out[p] = c
			used[c] = true
		}
	}
	i := 0
	for _, p := range g.Precisions {
		if _, ok := out[p]; ok {
			continue
		}
		for j := 0; j < len(tableau); j++ {
			c := tableau[(i+j)%len(tableau)]
			if !used[c] || j == len(tableau)-1 {
				out[p] = c
				used[c] = true
				i += j + 1
				break
			}
		}
	}
	return out
}

func precisionGlyph(p string) draw.GlyphDrawer {
	switch precisionRank(p) {
	case 0:
		return draw.CircleGlyph{}
	case 1, 2:
		return draw.SquareGlyph{}
	case 3, 4:
		return draw.TriangleGlyph{}
	case 5:
		return draw.PyramidGlyph{}
	}
	return draw.CrossGlyph{}
}

func modelColor(i int) color.RGBA { return tableau[i%len(tableau)] }

// swatch is a legend thumbnail: a filled square.
type swatch struct{ c color.Color }

// Thumbnail implements plot.Thumbnailer.
func (s swatch) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}}
	c.FillPolygon(s.c, pts)
}

// ticks125 labels a logarithmic axis at 1, 2 and 5 times powers of ten
// (every integer multiple when the range is narrow).
type ticks125 struct{}

// Ticks implements plot.Ticker.
func (ticks125) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= 0 || math.IsNaN(lo) || math.IsNaN(hi) || lo > hi {
		return nil
	}
	gen := func(mults []float64) []plot.Tick {
		var t []plot.Tick
		for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
			p := math.Pow(10, e)
			for _, m := range mults {
				v := m * p
				if v >= lo*(1-1e-9) && v <= hi*(1+1e-9) {
					t = append(t, plot.Tick{Value: v, Label: fmtTick(v)})
				}
			}
		}
		return t
	}
	t := gen([]float64{1, 2, 5})
	if len(t) < 3 {
		t = gen([]float64{1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9})
	}
	if len(t) < 2 {
		return []plot.Tick{{Value: lo, Label: fmtTick(lo)}, {Value: hi, Label: fmtTick(hi)}}
	}
	return t
}

func fmtTick(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func logAxis(a *plot.Axis) {
	a.Scale = plot.LogScale{}
	a.Tick.Marker = ticks125{}
}

// --- speedup heatmap ---

type heatGrid struct {
	h   Heatmap
	sty draw.TextStyle
}

// DataRange implements plot.DataRanger: one unit per cell.
func (hg heatGrid) DataRange() (xmin, xmax, ymin, ymax float64) {
	return -0.5, float64(len(hg.h.Cols)) - 0.5, -0.5, float64(len(hg.h.Rows)) - 0.5
}

// speedupColor maps log2(speedup) in [−2, 2] from red through white to green.
func speedupColor(v float64) color.RGBA {
	if math.IsNaN(v) || v <= 0 {
		return lightBg
	}
	t := math.Max(-1, math.Min(1, math.Log2(v)/2))
	white := color.RGBA{247, 247, 247, 255}
	to := color.RGBA{26, 152, 80, 255}
	if t < 0 {
		to, t = color.RGBA{215, 48, 39, 255}, -t
	}
	t = math.Sqrt(t) // small differences still show
	mix := func(a, b uint8) uint8 { return uint8(float64(a) + (float64(b)-float64(a))*t + 0.5) }
	return color.RGBA{mix(white.R, to.R), mix(white.G, to.G), mix(white.B, to.B), 255}
}

// Plot draws the cells, first row at the top.
func (hg heatGrid) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	n := len(hg.h.Rows)
	border := draw.LineStyle{Color: color.White, Width: vg.Points(1.5)}
	for r := range hg.h.Rows {
		y := float64(n - 1 - r)
		for col := range hg.h.Cols {
			x := float64(col)
			x0, x1 := trX(x-0.5), trX(x+0.5)
			y0, y1 := trY(y-0.5), trY(y+0.5)
			pts := []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
			c.FillPolygon(speedupColor(hg.h.Values[r][col]), pts)
			c.StrokeLines(border, append(pts, pts[0]))
			if t := hg.h.Text[r][col]; t != "" {
				c.FillText(hg.sty, vg.Point{X: (x0 + x1) / 2, Y: (y0 + y1) / 2}, t)
			}
		}
	}
}

func heatmapPlot(g *Group) (builtPlot, error) {
	h := g.Heatmap
	if len(h.Rows) == 0 || len(h.Cols) == 0 {
		return builtPlot{notes: []string{"No precision other than FP32 was measured: there is no speedup heatmap."}}, nil
	}
	h, notes := g.heatmapForChart(h)
	p := newPlot("Speedup over FP32 (throughput ratio)")
	p.X.Label.Text = "precision"
	p.Add(heatGrid{h: h, sty: draw.TextStyle{Color: color.Black, Font: font.From(sans, 10), XAlign: draw.XCenter, YAlign: draw.YCenter, Handler: plot.DefaultTextHandler}})
	p.NominalX(plainAll(h.Cols)...)
	rev := make([]string, len(h.Rows))
	for i, r := range h.Rows {
		rev[len(rev)-1-i] = plain(r)
	}
	p.NominalY(rev...)
	p.X.Padding, p.Y.Padding = 0, 0
	longest := 0
	for _, r := range h.Rows {
		longest = max(longest, len([]rune(r)))
	}
	rowH := 0.36
	if len(h.Rows) > 16 {
		rowH = 0.28
	}
	w := vg.Length(math.Max(6, 0.8+0.065*float64(longest)+1.15*float64(len(h.Cols)))) * vg.Inch
	ht := vg.Length(1.1+rowH*float64(len(h.Rows))) * vg.Inch
	return builtPlot{plot: p, w: w, h: ht, notes: notes}, nil
}

// --- reduction bars ---

// reductionValues picks, per model and non-FP32 precision, the value at the
// model's smallest batch where it is known.
func reductionValues(g *Group, val func(*Entry) float64) (models, precs []string, v [][]float64) {
	for _, p := range g.Precisions {
		if !isBaselineSpec(p) {
			precs = append(precs, p)
		}
	}
	pi := indexOf(precs)
	for _, m := range g.Models {
		row := make([]float64, len(precs))
		for i := range row {
			row[i] = math.NaN()
		}
		any := false
		for _, e := range g.Entries { // batch ascending within a model
			i, ok := pi[e.Experiment.Precision]
			if e.Experiment.Model != m || !ok || !e.OK() || !e.HasBaseline || !math.IsNaN(row[i]) {
				continue
			}
			if x := val(e); known(x) {
				row[i] = x
				any = true
			}
		}
		if any {
			models = append(models, m)
			v = append(v, row)
		}
	}
	return models, precs, v
}

// deviceWideSuffix marks the GPU memory chart's title when any of its
// figures is the whole device's memory rather than the process's.
func deviceWideSuffix(g *Group) string {
	for _, e := range g.Entries {
		if e.GPUDeviceWide {
			return " (device-wide)"
		}
	}
	return ""
}

// deviceWideCaption says in the caption what device-wide means.
func deviceWideCaption(g *Group) string {
	if deviceWideSuffix(g) == "" {
		return ""
	}
	return " Device-wide: NVML gave no per-process builtPlot (the worker's pid was not in its process list, as in a container), so the figures are the whole GPU's memory in use, other processes included."
}

func reductionPlot(g *Group, title, ylabel string, val func(*Entry) float64) (builtPlot, error) {
	models, precs, v := reductionValues(g, val)
	if len(models) == 0 {
		return builtPlot{}, nil
	}
	colors := precisionColors(g)
	p := newPlot(title)
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	// Bars are 22 pt wide until the chart would pass maxChartWidth; then
	// they narrow, and below 14 pt lose their value labels.
	perModel := float64(len(precs)) + 1.5
	barPt := math.Min(22, math.Min(160/float64(len(precs)), (maxChartWidth-1.6)*72/float64(len(models))/perModel))
	barW := vg.Points(barPt)
	ymax := 1.0
	var shown []string
	for j, prec := range precs {
		vals := make(plotter.Values, len(models))
		var xys plotter.XYs
		var labels []string
		has := false
		for i := range models {
			x := v[i][j]
			if math.IsNaN(x) {
				continue
			}
			has = true
			vals[i] = x
			ymax = math.Max(ymax, x)
			xys = append(xys, plotter.XY{X: float64(i), Y: x})
			labels = append(labels, strconv.FormatFloat(x, 'f', 1, 64)+"×")
		}
		if !has {
			continue
		}
		shown = append(shown, prec)
		bars, err := plotter.NewBarChart(vals, barW)
		if err != nil {
			return builtPlot{}, fmt.Errorf("bars for %s: %w", prec, err)
		}
		bars.Color = colors[prec]
		bars.LineStyle.Width = 0
		off := barW * vg.Length(float64(j)-float64(len(precs)-1)/2)
		bars.Offset = off
		p.Add(bars)
		p.Legend.Add(plain(prec), bars)
		if barPt < 14 {
			continue
		}
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return builtPlot{}, fmt.Errorf("labels for %s: %w", prec, err)
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i].Font = font.From(sans, 7.5)
			lb.TextStyle[i].XAlign = draw.XCenter
			lb.TextStyle[i].YAlign = draw.YBottom
		}
		lb.Offset = vg.Point{X: off, Y: vg.Points(1.5)}
		p.Add(lb)
	}
	if len(shown) == 0 {
		return builtPlot{}, nil
	}
	ref, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(models)) - 0.5, Y: 1}})
	if err != nil {
		return builtPlot{}, err
	}
	ref.LineStyle = draw.LineStyle{Color: gray, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}
	p.Add(ref)
	p.NominalX(plainAll(models)...)
	if len(models) > 4 {
		p.X.Tick.Label.Rotation = math.Pi / 6
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
	}
	p.Y.Max = ymax * 1.1
	headroom(&p.Y, len(shown), 4.2*vg.Inch, false)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(6)
	w := vg.Length(math.Min(maxChartWidth, math.Max(6.5, 1.6+float64(len(models))*barPt*perModel/72))) * vg.Inch
	return builtPlot{plot: p, w: w, h: 4.2 * vg.Inch}, nil
}

// --- throughput vs parameters ---

// chartBatch returns, per model, the batch the cross-precision charts use:
// the one with the most measured precisions (the larger batch on a tie), so
// every point of a model shares a batch and FP32 is among them when it can be.
func chartBatch(g *Group) map[string]int {
	type key struct {
		model string
		batch int
	}
	count := map[key]int{}
	for _, e := range g.Entries {
		if e.OK() {
			k := key{e.Experiment.Model, e.Experiment.Batch}
			count[k]++
			if e.Experiment.IsBaseline() {
				count[k] += len(g.Precisions) // a baseline outweighs any one precision
			}
		}
	}
	out := map[string]int{}
	for _, m := range g.Models {
		best, bestN := 0, 0
		for _, b := range g.Batches {
			if n := count[key{m, b}]; n > 0 && n >= bestN {
				best, bestN = b, n
			}
		}
		if bestN > 0 {
			out[m] = best
		}
	}
	return out
}

// chartEntries are the ok entries at each model's chart batch, in display
// order; with several EPs or thread counts, only the first of each is used.
func chartEntries(g *Group) []*Entry {
	cb := chartBatch(g)
	var out []*Entry
	for _, e := range g.Entries {
		x := e.Experiment
		if e.OK() && x.Batch == cb[x.Model] && x.EP == g.EPs[0] && x.Threads == g.firstThreads(x.Model) {
			out = append(out, e)
		}
	}
	return out
}

func (g *Group) firstThreads(model string) int {
	for _, e := range g.Entries {
		if e.Experiment.Model == model && e.Experiment.EP == g.EPs[0] {
			return e.Experiment.Threads
		}
	}
	return 0
}

func paramsPlot(g *Group) (builtPlot, error) {
	es := chartEntries(g)
	var unknown []string
	seenUnknown := map[string]bool{}
	byPrec := map[string]plotter.XYs{}
	var labXY plotter.XYs
	var labels []string
	labelled := map[string]bool{}
	for _, e := range es {
		m := e.Experiment.Model
		if e.Params <= 0 {
			if !seenUnknown[m] {
				seenUnknown[m] = true
				unknown = append(unknown, m)
			}
			continue
		}
		if e.Throughput <= 0 {
			continue
		}
		xy := plotter.XY{X: float64(e.Params) / 1e6, Y: e.Throughput}
		byPrec[e.Experiment.Precision] = append(byPrec[e.Experiment.Precision], xy)
		if !labelled[m] {
			labelled[m] = true
			labXY = append(labXY, xy)
			labels = append(labels, plain(fmt.Sprintf("%s b%d", m, e.Experiment.Batch)))
		}
	}
	var notes []string
	if len(unknown) > 0 {
		notes = append(notes, fmt.Sprintf("Throughput vs parameters leaves out %s: parameter count unknown (not in the built-in catalog).", joinAnd(escAll(unknown))))
	}
	if len(byPrec) == 0 {
		return builtPlot{notes: notes}, nil
	}
	colors := precisionColors(g)
	p := newPlot("Throughput vs parameters")
	p.X.Label.Text = "parameters (millions)"
	p.Y.Label.Text = "throughput (samples/s)"
	logAxis(&p.X)
	logAxis(&p.Y)
	p.Add(plotter.NewGrid())
	for _, prec := range g.Precisions {
		xys, ok := byPrec[prec]
		if !ok {
			continue
		}
		s, err := plotter.NewScatter(xys)
		if err != nil {
			return builtPlot{notes: notes}, fmt.Errorf("points for %s: %w", prec, err)
		}
		s.GlyphStyle = draw.GlyphStyle{Color: colors[prec], Radius: vg.Points(4), Shape: precisionGlyph(prec)}
		p.Add(s)
		p.Legend.Add(plain(prec), s)
	}
	if len(labels) > maxLabelModels {
		notes = append(notes, fmt.Sprintf("Throughput vs parameters names no model: %d would overlap.", len(labels)))
	} else if lb, err := plotter.NewLabels(plotter.XYLabels{XYs: labXY, Labels: labels}); err == nil {
		for i := range lb.TextStyle {
			lb.TextStyle[i].Font = font.From(sans, 8)
		}
		lb.Offset = vg.Point{X: vg.Points(6), Y: vg.Points(-3)}
		p.Add(lb)
	}
	padLog(p, &p.X, 1.6)
	padLog(p, &p.Y, 1.4)
	headroom(&p.Y, len(byPrec), 5*vg.Inch, true)
	p.Legend.Top = true
	return builtPlot{plot: p, w: 7.5 * vg.Inch, h: 5 * vg.Inch, notes: notes}, nil
}

// headroom raises an axis maximum so that a legend of n rows at the top of
// a plot of the given height does not cover data.
func headroom(a *plot.Axis, n int, height vg.Length, logScale bool) {
	if n == 0 || a.Max <= a.Min {
		return
	}
	f := math.Min(0.45, (float64(n)*12+8)/math.Max(100, height.Points()-90))
	if logScale && a.Min > 0 {
		a.Max *= math.Pow(a.Max/a.Min, f/(1-f))
		return
	}
	a.Max += (a.Max - a.Min) * f / (1 - f)
}

// padLog widens a logarithmic axis by a factor on both sides so points and
// labels sit inside.
func padLog(_ *plot.Plot, a *plot.Axis, f float64) {
	if a.Min > 0 && a.Max > 0 {
		a.Min /= f
		a.Max *= f
	}
}

func escAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = esc(x)
	}
	return out
}

// --- Pareto charts ---

// paretoAxis is what a Pareto chart sets against throughput.
type paretoAxis int

const (
	paretoFidelity paretoAxis = iota // SQNR against FP32's outputs
	paretoMemory                     // peak working set
)

func paretoPlot(g *Group, axis paretoAxis) (builtPlot, error) {
	fidelity := axis == paretoFidelity
	es := chartEntries(g)
	type pt struct {
		e    *Entry
		x, y float64
	}
	byModel := map[string][]pt{}
	var models, nonFinite []string
	xcap := 0.0
	for _, e := range es {
		if e.Throughput <= 0 {
			continue
		}
		var x float64
		switch {
		case fidelity && e.Experiment.IsBaseline():
			x = math.Inf(1) // placed at the right edge below
		case fidelity:
			if e.Fidelity == nil {
				continue
			}
			x = e.Fidelity.SQNRdB
			if math.IsNaN(x) || math.IsInf(x, 0) {
				// NaN or infinite outputs have no SQNR to place.
				nonFinite = append(nonFinite, e.Experiment.Model+" "+e.Experiment.Precision)
				continue
			}
			xcap = math.Max(xcap, x)
		default:
			if e.WorkingSet <= 0 {
				continue
			}
			x = float64(e.WorkingSet) / (1 << 20)
		}
		m := e.Experiment.Model
		if _, ok := byModel[m]; !ok {
			models = append(models, m)
		}
		byModel[m] = append(byModel[m], pt{e, x, e.Throughput})
	}
	if fidelity {
		xcap = math.Min(fp32SQNRPosition(xcap), 300)
	}
	if len(models) == 0 {
		return builtPlot{}, nil
	}
	var notes []string
	if len(nonFinite) > 0 {
		notes = append(notes, fmt.Sprintf("The throughput-vs-fidelity chart leaves out %s: its outputs were not finite (NaN or ±Inf), so it has no SQNR.", strings.Join(nonFinite, ", ")))
	}
	if len(models) > maxParetoModels {
		what := "memory"
		if fidelity {
			what = "fidelity"
		}
		notes = append(notes, fmt.Sprintf("The throughput-vs-%s chart shows the first %d of %d models; the Pareto column of the per-model tables covers all.", what, maxParetoModels, len(models)))
		models = models[:maxParetoModels]
	}
	title := "Throughput vs memory: Pareto frontier per model"
	if fidelity {
		title = "Throughput vs fidelity: Pareto frontier per model"
	}
	p := newPlot(title)
	p.Y.Label.Text = "throughput (samples/s)"
	logAxis(&p.Y)
	if fidelity {
		p.X.Label.Text = fmt.Sprintf("SQNR vs FP32 outputs (dB, higher is closer; FP32 drawn at %.0f)", xcap)
	} else {
		p.X.Label.Text = "peak working set (MiB)"
		logAxis(&p.X)
	}
	p.Add(plotter.NewGrid())
	mi := indexOf(g.Models)
	for _, m := range models {
		pts := byModel[m]
		col := modelColor(mi[m])
		var front, dominated, all plotter.XYs
		var labels []string
		for _, q := range pts {
			x := q.x
			if math.IsInf(x, 1) {
				x = xcap
			}
			xy := plotter.XY{X: x, Y: q.y}
			all = append(all, xy)
			labels = append(labels, plain(q.e.Experiment.Precision))
			on := q.e.ParetoFidelity
			if !fidelity {
				on = q.e.ParetoMemory
			}
			if on {
				front = append(front, xy)
			} else {
				dominated = append(dominated, xy)
			}
		}
		slices.SortFunc(front, func(a, b plotter.XY) int { return cmp.Or(cmp.Compare(a.X, b.X), cmp.Compare(a.Y, b.Y)) })
		if len(front) > 1 {
			l, err := plotter.NewLine(front)
			if err != nil {
				return builtPlot{}, err
			}
			l.LineStyle = draw.LineStyle{Color: col, Width: vg.Points(1.5)}
			p.Add(l)
		}
		if len(front) > 0 {
			s, err := plotter.NewScatter(front)
			if err != nil {
				return builtPlot{}, err
			}
			s.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(4), Shape: draw.CircleGlyph{}}
			p.Add(s)
			p.Legend.Add(legendName(m, pts[0].e.Experiment.Batch), s)
		}
		if len(dominated) > 0 {
			s, err := plotter.NewScatter(dominated)
			if err != nil {
				return builtPlot{}, err
			}
			s.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(4), Shape: draw.RingGlyph{}}
			p.Add(s)
			if len(front) == 0 {
				p.Legend.Add(legendName(m, pts[0].e.Experiment.Batch), s)
			}
		}
		if lb, err := plotter.NewLabels(plotter.XYLabels{XYs: all, Labels: labels}); err == nil {
			for i := range lb.TextStyle {
				lb.TextStyle[i].Font = font.From(sans, 7.5)
				lb.TextStyle[i].Color = col
			}
			lb.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(3)}
			p.Add(lb)
		}
	}
	if fidelity {
		span := math.Max(p.X.Max-p.X.Min, 10)
		p.X.Min -= 0.05 * span
		p.X.Max += 0.12 * span
	} else {
		padLog(p, &p.X, 1.3)
	}
	padLog(p, &p.Y, 1.3)
	headroom(&p.Y, len(models), 5*vg.Inch, true)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(6)
	return builtPlot{plot: p, w: 7.5 * vg.Inch, h: 5 * vg.Inch, notes: notes}, nil
}

func legendName(model string, batch int) string {
	return plain(fmt.Sprintf("%s (batch %d)", model, batch))
}

// fp32SQNRPosition is where the FP32 reference sits on the SQNR axis: 15 dB past
// the best measured variant, at least 60 dB.
func fp32SQNRPosition(best float64) float64 { return math.Max(60, best+15) }

// --- latency percentiles ---

type latRow struct {
	min, p50, p90, p95, p99, max float64
	col                          color.Color
}

type latRows []latRow

// DataRange implements plot.DataRanger.
func (r latRows) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = math.Inf(1), math.Inf(-1)
	for _, x := range r {
		for _, v := range []float64{x.min, x.p50, x.p99, x.max} {
			if v > 0 && !math.IsNaN(v) {
				xmin, xmax = math.Min(xmin, v), math.Max(xmax, v)
			}
		}
	}
	return xmin / 1.15, xmax * 1.15, -0.6, float64(len(r)) - 0.4
}

// Plot draws one row per configuration, first at the top.
func (r latRows) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	n := len(r)
	for i, x := range r {
		y := float64(n - 1 - i)
		yc := trY(y)
		if x.min > 0 && x.max > 0 {
			c.StrokeLine2(draw.LineStyle{Color: x.col, Width: vg.Points(1)}, trX(x.min), yc, trX(x.max), yc)
		}
		y0, y1 := trY(y-0.28), trY(y+0.28)
		x0, x1 := trX(x.p50), trX(x.p99)
		fill := color.NRGBA{}
		if rgba, ok := x.col.(color.RGBA); ok {
			fill = color.NRGBA{rgba.R, rgba.G, rgba.B, 150}
		}
		c.FillPolygon(fill, []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
		tick := draw.LineStyle{Color: color.Black, Width: vg.Points(1.2)}
		for _, v := range []float64{x.p90, x.p95} {
			if v > 0 && !math.IsNaN(v) {
				c.StrokeLine2(tick, trX(v), y0, trX(v), y1)
			}
		}
		c.DrawGlyph(draw.GlyphStyle{Color: color.Black, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}, vg.Point{X: x0, Y: yc})
	}
}

func latencyPlot(g *Group) (builtPlot, error) {
	// Each model at its smallest measured batch: latency matters most there.
	smallest := map[string]int{}
	for _, e := range g.Entries {
		if b, ok := smallest[e.Experiment.Model]; e.OK() && (!ok || e.Experiment.Batch < b) {
			smallest[e.Experiment.Model] = e.Experiment.Batch
		}
	}
	batches := map[int]bool{}
	for _, b := range smallest {
		batches[b] = true
	}
	colors := precisionColors(g)
	var rows latRows
	var labels []string
	total := 0
	for _, e := range g.Entries {
		if !e.OK() || e.Experiment.Batch != smallest[e.Experiment.Model] || e.P50Ms <= 0 || e.P99Ms <= 0 {
			continue
		}
		total++
		if len(rows) == maxLatencyRows {
			continue
		}
		rows = append(rows, latRow{min: e.MinMs, p50: e.P50Ms, p90: e.P90Ms, p95: e.P95Ms, p99: e.P99Ms, max: e.MaxMs, col: colors[e.Experiment.Precision]})
		l := e.Experiment.Model + " " + e.Experiment.Precision
		if len(batches) > 1 {
			l += fmt.Sprintf(" b%d", e.Experiment.Batch)
		}
		if len(g.EPs) > 1 {
			l += " " + e.Experiment.EP
		}
		if len(g.Threads) > 1 {
			l += fmt.Sprintf(" t%d", e.Experiment.Threads)
		}
		labels = append(labels, plain(l))
	}
	if len(rows) == 0 {
		return builtPlot{}, nil
	}
	var notes []string
	if total > len(rows) {
		notes = append(notes, fmt.Sprintf("The latency chart shows the first %d of %d configurations; the per-model tables have them all.", len(rows), total))
	}
	title := "Latency percentiles at each model's smallest batch"
	if len(batches) == 1 {
		for b := range batches {
			title = fmt.Sprintf("Latency percentiles at batch %d", b)
		}
	}
	p := newPlot(title)
	p.X.Label.Text = "latency per batch (ms)"
	logAxis(&p.X)
	p.Add(plotter.NewGrid())
	p.Add(rows)
	rev := make([]string, len(labels))
	for i, l := range labels {
		rev[len(rev)-1-i] = l
	}
	p.NominalY(rev...)
	nLegend := 0
	for _, prec := range g.Precisions {
		if _, ok := colors[prec]; ok && slices.ContainsFunc(rows, func(r latRow) bool { return r.col == colors[prec] }) {
			p.Legend.Add(plain(prec), swatch{colors[prec]})
			nLegend++
		}
	}
	p.Legend.Top = true
	p.Y.Max += 0.45 * float64(nLegend)
	ht := vg.Length(1.3+0.3*(float64(len(rows))+0.45*float64(nLegend))) * vg.Inch
	return builtPlot{plot: p, w: 8 * vg.Inch, h: ht, notes: notes}, nil
}
