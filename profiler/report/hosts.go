package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// HostColumn is one column of the side-by-side tables: a host environment
// and the provider settings its configurations ran with.
type HostColumn struct {
	Group   *Group
	EP      string
	Threads int
	Options string
	// Label names the column: the host, its EP, and threads or provider
	// options where the host ran several.
	Label string
}

// HostRow is one configuration across the columns.
type HostRow struct {
	Model, Precision string
	Batch            int
	Optimize         bool
	// Cells holds the configuration's entry in each column (nil where
	// that host did not measure it).
	Cells []*Entry
}

// HostTable sets the report's host environments side by side: "H100 vs
// H200 vs CPU" on one page. Speedups stay each host's own (against its FP32
// baseline); throughputs compare the hosts.
type HostTable struct {
	Columns []HostColumn
	Rows    []HostRow
}

func settingKey(ep string, threads int, options string) string {
	return fmt.Sprintf("%s|t%d|%s", ep, threads, options)
}

func hostRowKey(model, precision string, batch int, optimize bool) string {
	return fmt.Sprintf("%s|%s|b%d|%t", model, precision, batch, optimize)
}

// buildHostTable lines the groups' entries up by model, precision, batch
// and fusions; nil with fewer than two groups.
func buildHostTable(groups []*Group) *HostTable {
	if len(groups) < 2 {
		return nil
	}
	t := &HostTable{}
	col := map[*Group]map[string]int{}
	threads := map[*Group]map[int]bool{}
	options := map[*Group]map[string]bool{}
	eps := map[string]bool{}
	for _, g := range groups {
		col[g], threads[g], options[g] = map[string]int{}, map[int]bool{}, map[string]bool{}
		for _, e := range g.Entries {
			x := e.Experiment
			k := settingKey(x.EP, x.Threads, x.Options)
			if _, ok := col[g][k]; ok {
				continue
			}
			col[g][k] = len(t.Columns)
			t.Columns = append(t.Columns, HostColumn{Group: g, EP: x.EP, Threads: x.Threads, Options: x.Options})
			threads[g][x.Threads], options[g][x.Options], eps[x.EP] = true, true, true
		}
	}
	// A column is its host, then what tells it from the host's other
	// columns: the EP (when the table has several), threads, options.
	for i := range t.Columns {
		c := &t.Columns[i]
		c.Label = c.Group.Label
		if len(eps) > 1 {
			c.Label += " · " + c.EP
		}
		if len(threads[c.Group]) > 1 {
			c.Label += fmt.Sprintf(" t%d", c.Threads)
		}
		if len(options[c.Group]) > 1 && c.Options != "" {
			c.Label += " " + c.Options
		}
	}
	modelOrder := map[string]int{}
	rows := map[string]*HostRow{}
	for _, g := range groups {
		for _, e := range g.Entries {
			x := e.Experiment
			if _, ok := modelOrder[x.Model]; !ok {
				modelOrder[x.Model] = len(modelOrder)
			}
			k := hostRowKey(x.Model, x.Precision, x.Batch, x.Optimize)
			r, ok := rows[k]
			if !ok {
				r = &HostRow{Model: x.Model, Precision: x.Precision, Batch: x.Batch, Optimize: x.Optimize, Cells: make([]*Entry, len(t.Columns))}
				rows[k] = r
			}
			r.Cells[col[g][settingKey(x.EP, x.Threads, x.Options)]] = e
		}
	}
	for _, r := range rows {
		t.Rows = append(t.Rows, *r)
	}
	slices.SortFunc(t.Rows, func(a, b HostRow) int {
		return cmp.Or(
			cmp.Compare(modelOrder[a.Model], modelOrder[b.Model]),
			cmp.Compare(a.Batch, b.Batch),
			comparePrecision(a.Precision, b.Precision),
			cmp.Compare(a.Precision, b.Precision),
			-cmpBool(a.Optimize, b.Optimize),
		)
	})
	return t
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// fastest names the column with the highest throughput in a row when it
// beats every other measured column by NoiseThreshold, "≈ A, B" for the
// columns within NoiseThreshold of the best, and "" with fewer than two
// measured columns.
func (t *HostTable) fastest(r HostRow) (best int, text string) {
	best = -1
	var ok []int
	for i, e := range r.Cells {
		if e == nil || !e.OK() || !(e.Throughput > 0) || math.IsInf(e.Throughput, 0) {
			continue
		}
		ok = append(ok, i)
		if best < 0 || e.Throughput > r.Cells[best].Throughput {
			best = i
		}
	}
	if len(ok) < 2 {
		return -1, ""
	}
	var close []string
	for _, i := range ok {
		if i != best && r.Cells[i].Throughput*(1+NoiseThreshold) > r.Cells[best].Throughput {
			close = append(close, t.Columns[i].Label)
		}
	}
	if len(close) > 0 {
		return -1, "≈ " + esc(strings.Join(append([]string{t.Columns[best].Label}, close...), ", "))
	}
	return best, esc(t.Columns[best].Label)
}

// hostsSideBySide writes the side-by-side section.
func (r *Report) hostsSideBySide(d *document, charts []ChartSet) {
	t := r.Hosts
	d.h(2, "Hosts side by side")
	d.p("The same configurations on each host environment. Speedups are each host's own, against its FP32 baseline with the same model, batch and EP (a sharded study runs a model's baseline and its variants on one machine); throughputs compare the hosts. A dash: not measured there.")
	fused := false
	for _, row := range t.Rows {
		fused = fused || row.Optimize != t.Rows[0].Optimize
	}
	lead := func(row HostRow) []string {
		p := esc(row.Precision)
		if fused && !row.Optimize {
			p += " (unfused)"
		}
		return []string{esc(row.Model), p, fmt.Sprint(row.Batch)}
	}
	head := []string{"Model", "Precision", "Batch"}
	right := []bool{false, false, true}
	for _, c := range t.Columns {
		head = append(head, esc(c.Label))
		right = append(right, true)
	}

	d.h(3, "Speedup of each configuration on each host")
	sp := table{head: head, right: right}
	for _, row := range t.Rows {
		if isBaselineSpec(row.Precision) {
			continue
		}
		cells := lead(row)
		for _, e := range row.Cells {
			if e == nil {
				cells = append(cells, cellText(e))
				continue
			}
			cells = append(cells, speedupCell(e)) // with its interval, "1 run" or "uncertain"
		}
		sp.rows = append(sp.rows, cells)
	}
	if len(sp.rows) == 0 {
		d.p("No configuration other than FP32 was measured.")
	} else {
		d.table(sp)
	}
	var maps []string
	for _, cs := range charts {
		for _, c := range cs.Charts {
			if strings.HasSuffix(c.Name, "speedup-heatmap") {
				maps = append(maps, fmt.Sprintf("%s: %s", esc(cs.Group.Label), codeLit(c.PNGName())))
			}
		}
	}
	if len(maps) > 0 {
		d.p("Each host's speedup heatmap is under its results: %s.", strings.Join(maps, "; "))
	}

	d.h(3, "Throughput on each host")
	d.p("Samples/s (± 95%% interval with repeats). **Bold** and *Fastest*: the host ahead of every other by at least %.0f%%; ≈ lists the hosts within %.0f%% of the best.", 100*NoiseThreshold, 100*NoiseThreshold)
	tp := table{head: append(slices.Clone(head), "Fastest"), right: append(slices.Clone(right), false)}
	for _, row := range t.Rows {
		cells := lead(row)
		best, text := t.fastest(row)
		for i, e := range row.Cells {
			c := dash
			if e != nil {
				c = tputOrFailed(e)
			}
			if i == best {
				c = "**" + c + "**"
			}
			cells = append(cells, c)
		}
		tp.rows = append(tp.rows, append(cells, cmpOr(text)))
	}
	d.table(tp)
}

// hostnames lists a group's machines: its hostname, or for a host group
// how many and which.
func hostnames(g *Group) string {
	switch n := len(g.Hostnames); {
	case n == 0:
		return ""
	case n == 1:
		return g.Hostnames[0]
	case n <= 4:
		return fmt.Sprintf("%d: %s", n, strings.Join(g.Hostnames, ", "))
	default:
		return fmt.Sprintf("%d: %s, …", n, strings.Join(g.Hostnames[:3], ", "))
	}
}
