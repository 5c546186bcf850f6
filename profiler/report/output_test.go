package report

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
)

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadBadInput(t *testing.T) {
	good, err := json.Marshal(rec("m", "fp32", 1, 100, 10, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, content string
		want          []string
	}{
		{"empty", "", []string{"no usable records", "the file is empty"}},
		{"blank lines", "\n\n  \n", []string{"the file is empty"}},
		{"not JSON", "model,precision\nvit,fp32\n", []string{"no usable records", "line 1: not a JSON record", "line 2: not a JSON record"}},
		{"unknown schema", `{"schema":99,"experiment":{"model":"m","precision":"fp32","ep":"cpu","batch":1},"status":"ok"}` + "\n",
			[]string{"schema 99 is newer than this quantscope understands", "upgrade quantscope"}},
		{"no schema", `{"experiment":{"model":"m"}}` + "\n", []string{"record has no schema version"}},
		{"only a torn line", string(good[:len(good)/2]), []string{"incomplete last line"}},
	} {
		_, err := Load(writeTemp(t, "r.jsonl", tc.content))
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
		if !errors.Is(err, ErrNoRecords) {
			t.Errorf("%s: error does not wrap ErrNoRecords", tc.name)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.jsonl")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load(); err == nil {
		t.Error("no files: no error")
	}
}

// A torn last line, a newer schema and garbage among good records are
// skipped, and the report says so.
func TestPartialFilesAreReportedWithWarnings(t *testing.T) {
	good, _ := json.Marshal(rec("m", "fp32", 1, 100, 10, nil))
	newer := fmt.Sprintf(`{"schema":%d,"experiment":{"model":"m"}}`, study.SchemaVersion+1)
	content := string(good) + "\nnot json\n" + newer + "\n" + string(good[:30])
	srcs, err := Load(writeTemp(t, "r.jsonl", content))
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs[0].Records) != 1 || len(srcs[0].Warnings) != 3 {
		t.Fatalf("records %d warnings %v", len(srcs[0].Records), srcs[0].Warnings)
	}
	var b bytes.Buffer
	if err := Build(srcs, testOptions(t)).Render(&b, FormatMarkdown, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"line 2: not a JSON record", fmt.Sprintf("line 3: schema %d is newer", study.SchemaVersion+1), "line 4: incomplete last line"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks warning %q", want)
		}
	}
}

func TestWriteChartsDecodeAndParse(t *testing.T) {
	opts := testOptions(t)
	opts.PricePerHour, opts.PricePerKWh = 4.5, 0.25
	r := Build(mustLoad(t, "cpu-ort124.jsonl", "gpu-h100.jsonl"), opts)
	dir := t.TempDir()
	w, err := r.Write(dir, FormatMarkdown)
	if err != nil {
		t.Fatal(err)
	}
	charts := Charts(r)
	n := 0
	for _, cs := range charts {
		for _, c := range cs.Charts {
			n++
			f, err := os.Open(filepath.Join(dir, c.PNGName()))
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(f)
			f.Close()
			if err != nil {
				t.Errorf("%s: %v", c.PNGName(), err)
				continue
			}
			if b := img.Bounds(); b.Dx() != c.WidthPx || b.Dy() != c.HeightPx || c.WidthPx < 400 || c.HeightPx < 150 {
				t.Errorf("%s: %dx%d, want %dx%d", c.PNGName(), b.Dx(), b.Dy(), c.WidthPx, c.HeightPx)
			}
			svg, err := os.ReadFile(filepath.Join(dir, c.SVGName()))
			if err != nil {
				t.Fatal(err)
			}
			if err := parseXML(svg); err != nil {
				t.Errorf("%s does not parse as XML: %v", c.SVGName(), err)
			}
		}
	}
	// 8 charts for each host (the CPU host has no GPU memory chart).
	if n != 15 || len(w.Charts) != 2*n {
		t.Errorf("%d charts, %d files: %v", n, len(w.Charts), w.Charts)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range w.Charts {
		if strings.HasSuffix(f, ".png") && !bytes.Contains(md, []byte("]("+f+")")) {
			t.Errorf("report.md does not show %s", f)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "results.csv")); err != nil {
		t.Error(err)
	}
}

// parseXML reads a document to its end.
func parseXML(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		if _, err := d.Token(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// svgTexts returns the text of every <text> element.
func svgTexts(t *testing.T, b []byte) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var out []string
	in := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			in = x.Name.Local == "text"
		case xml.CharData:
			if in {
				out = append(out, string(x))
			}
		case xml.EndElement:
			in = false
		}
	}
}

// The heatmap's cells hold the per-model tables' speedups, and the picture
// shows exactly those texts.
func TestHeatmapMatchesTables(t *testing.T) {
	r := Build(mustLoad(t, "cpu-ort124.jsonl"), testOptions(t))
	g := r.Groups[0]
	var md bytes.Buffer
	if err := r.Render(&md, FormatMarkdown, nil); err != nil {
		t.Fatal(err)
	}
	// Speedup cells of the per-model tables, by "model bN" and precision.
	table := map[string]string{}
	model := ""
	var head []string
	sc := bufio.NewScanner(&md)
	for sc.Scan() {
		line := sc.Text()
		if m, ok := strings.CutPrefix(line, "### "); ok {
			model, _, _ = strings.Cut(m, " (")
			head = nil
			continue
		}
		if !strings.HasPrefix(line, "| ") || model == "" {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if head == nil {
			head = cells
			continue
		}
		col := map[string]string{}
		for i, h := range head {
			if i < len(cells) {
				col[h] = cells[i]
			}
		}
		if col["Speedup"] != "" && col["Batch"] != "" {
			// The table adds the interval or "(1 run)"; the ratio is what
			// the heatmap shows.
			sp := col["Speedup"]
			if strings.Contains(sp, "×") {
				sp, _, _ = strings.Cut(sp, " ")
			}
			table[model+" b"+col["Batch"]+"|"+col["Precision"]] = sp
		}
	}
	h := g.Heatmap
	if len(h.Rows) != 4 || len(h.Cols) != 3 {
		t.Fatalf("heatmap %dx%d: %v × %v", len(h.Rows), len(h.Cols), h.Rows, h.Cols)
	}
	cells := 0
	for r, row := range h.Rows {
		for c, col := range h.Cols {
			want, ok := table[row+"|"+col]
			if !ok {
				if h.Text[r][c] != dash {
					t.Errorf("%s %s: heatmap %q but no table row", row, col, h.Text[r][c])
				}
				continue
			}
			cells++
			if h.Text[r][c] != want {
				t.Errorf("%s %s: heatmap %q, table %q", row, col, h.Text[r][c], want)
			}
			if e := h.Entries[r][c]; e.OK() && e.HasBaseline && fmtRatio(h.Values[r][c]) != want {
				t.Errorf("%s %s: heatmap value %v, table %q", row, col, h.Values[r][c], want)
			}
		}
	}
	if cells != 11 {
		t.Errorf("%d heatmap cells matched the tables, want 11", cells)
	}
	var svg []byte
	for _, c := range Charts(r)[0].Charts {
		if c.Name == "speedup-heatmap" {
			svg = c.SVG
		}
	}
	texts := strings.Join(svgTexts(t, svg), "\n") + "\n"
	for r := range h.Rows {
		for c := range h.Cols {
			if !strings.Contains(texts, h.Text[r][c]+"\n") {
				t.Errorf("heatmap picture lacks cell %q", h.Text[r][c])
			}
		}
	}
}

func TestHTMLIsSelfContained(t *testing.T) {
	opts := testOptions(t)
	r := BuildCompare(mustLoad(t, "cpu-ort124.jsonl"), mustLoad(t, "cpu-ort122.jsonl"), opts)
	dir := t.TempDir()
	w, err := r.Write(dir, FormatHTML)
	if err != nil {
		t.Fatal(err)
	}
	if w.Report != "report.html" {
		t.Fatalf("report %q", w.Report)
	}
	b, err := os.ReadFile(filepath.Join(dir, w.Report))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	svgs := regexp.MustCompile(`(?s)<svg .*?</svg>`).FindAllString(s, -1)
	if len(svgs) != len(w.Charts)/2 || len(svgs) < 7 {
		t.Errorf("%d inline SVGs for %d charts", len(svgs), len(w.Charts)/2)
	}
	for i, sv := range svgs {
		if err := parseXML([]byte(sv)); err != nil {
			t.Errorf("inline SVG %d: %v", i, err)
		}
	}
	for _, bad := range []string{"<img", "src=", "<?xml", "href=\"http", ".png", "<link"} {
		if strings.Contains(s, bad) {
			t.Errorf("HTML refers outside itself: contains %q", bad)
		}
	}
	for _, want := range []string{"<h2 id=\"environment\">Environment</h2>", "<h2 id=\"comparison\">Comparison</h2>",
		"<strong>slower</strong>", "<td class=\"r\">1.82× (1 run)</td>", "\\[ONNXRuntimeError\\]"} {
		if want == "\\[ONNXRuntimeError\\]" {
			if strings.Contains(s, want) || !strings.Contains(s, "[ONNXRuntimeError]") {
				t.Error("markup escapes leak into the HTML")
			}
			continue
		}
		if !strings.Contains(s, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Count(s, "<table>") != strings.Count(s, "</table>") || strings.Count(s, "<strong>") != strings.Count(s, "</strong>") {
		t.Error("unbalanced tags")
	}
}

func TestOutputIsDeterministic(t *testing.T) {
	render := func() (md, html, csvOut []byte, charts [][]byte) {
		opts := testOptions(t)
		opts.PricePerHour, opts.PricePerKWh = 2, 0.3
		r := BuildCompare(mustLoad(t, "cpu-ort124.jsonl", "gpu-h100.jsonl"), mustLoad(t, "cpu-ort122.jsonl"), opts)
		cs := Charts(r)
		var a, b, c bytes.Buffer
		if err := r.Render(&a, FormatMarkdown, cs); err != nil {
			t.Fatal(err)
		}
		if err := r.Render(&b, FormatHTML, cs); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteCSV(&c); err != nil {
			t.Fatal(err)
		}
		for _, set := range cs {
			for _, ch := range set.Charts {
				charts = append(charts, ch.PNG, ch.SVG)
			}
		}
		return a.Bytes(), b.Bytes(), c.Bytes(), charts
	}
	md1, html1, csv1, ch1 := render()
	md2, html2, csv2, ch2 := render()
	if !bytes.Equal(md1, md2) || !bytes.Equal(html1, html2) || !bytes.Equal(csv1, csv2) {
		t.Error("the same input gave different documents")
	}
	if len(ch1) != len(ch2) {
		t.Fatalf("%d vs %d chart files", len(ch1), len(ch2))
	}
	for i := range ch1 {
		if !bytes.Equal(ch1[i], ch2[i]) {
			t.Errorf("chart file %d differs between runs", i)
		}
	}
}

func TestCSVRows(t *testing.T) {
	r := Build(mustLoad(t, "cpu-ort124.jsonl"), testOptions(t))
	var b bytes.Buffer
	if err := r.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+14 {
		t.Fatalf("%d rows, want a header and 14 records", len(rows))
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, row := range rows[1:] {
		if len(row) != len(csvHeader()) {
			t.Fatalf("row of %d cells", len(row))
		}
		if row[col["model"]] == "vit-base-16" && row[col["precision"]] == "int8" && row[col["batch"]] == "1" {
			if row[col["speedup"]] != "1.8230" || row[col["gate"]] != "pass" || row[col["status"]] != study.StatusOK {
				t.Errorf("vit-base-16 int8 b1: speedup %q gate %q", row[col["speedup"]], row[col["gate"]])
			}
		}
		if row[col["status"]] == study.StatusFailed && (row[col["reason"]] == "" || row[col["throughput"]] != "") {
			t.Errorf("failed row %v", row)
		}
	}
}

func TestOddNamesStaySafe(t *testing.T) {
	name := "my|model*<b>`x`\x01"
	recs := []study.Record{rec(name, "fp32", 1, 100, 10, nil), rec(name, "int8", 1, 150, 5, ok2)}
	r := Build([]Source{{Path: "odd.jsonl", Records: recs}}, testOptions(t))
	var md, html bytes.Buffer
	cs := Charts(r)
	if err := r.Render(&md, FormatMarkdown, cs); err != nil {
		t.Fatal(err)
	}
	if err := r.Render(&html, FormatHTML, cs); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html.String(), "<b>") || !strings.Contains(html.String(), "my|model*&lt;b&gt;`x`") {
		t.Error("HTML does not escape a model name")
	}
	for _, line := range strings.Split(md.String(), "\n") {
		if strings.Contains(line, "my") && strings.HasPrefix(line, "| ") && strings.Contains(line, "my|model") {
			t.Errorf("unescaped | in a Markdown table: %s", line)
		}
	}
	for _, set := range cs {
		for _, c := range set.Charts {
			if err := parseXML(c.SVG); err != nil {
				t.Errorf("%s: %v", c.Name, err)
			}
		}
	}
}

// A record written by an early version 1 writer carries only the core
// measurements: everything else shows as unknown, nothing breaks.
func TestMinimalSchema1Records(t *testing.T) {
	lines := `{"schema":1,"experiment":{"model":"m","precision":"fp32","ep":"cpu","batch":1},"host":{"hostname":"old","cpu":"c","ort_version":"1.20.0"},"status":"ok","metrics":{"throughput":10,"latency":{"p50_ms":100,"p99_ms":120}}}
{"schema":1,"experiment":{"model":"m","precision":"int8","ep":"cpu","batch":1},"host":{"hostname":"old","cpu":"c","ort_version":"1.20.0"},"status":"ok","metrics":{"throughput":15,"latency":{"p50_ms":66,"p99_ms":90}}}
{"schema":1,"experiment":{"model":"m","precision":"int4","ep":"cpu","batch":1},"host":{"hostname":"old","cpu":"c","ort_version":"1.20.0"},"status":"failed"}
{"schema":1,"experiment":{"model":"z","precision":"int8","ep":"cpu","batch":2},"host":{"hostname":"old","cpu":"c","ort_version":"1.20.0"},"status":"failed","reason":"boom"}
`
	srcs, err := Load(writeTemp(t, "old.jsonl", lines))
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t)
	opts.PricePerHour = 1
	r := Build(srcs, opts)
	dir := t.TempDir()
	if _, err := r.Write(dir, FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| int8 | 1 | 15.00 | 66.00 | 90.00 | 1.50× (1 run) |", "No record carries a fidelity measurement",
		"**int4** (batch 1) failed to run: no reason recorded.", "**int8** (batch 2) failed to run: boom."} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if _, err := r.Write(t.TempDir(), FormatHTML); err != nil {
		t.Fatal(err)
	}
}

// TestWriteReplacesAReusedDirectory: writing a smaller report over a
// bigger one leaves none of the old charts; a directory with files a
// report does not write is refused and left alone; a killed writer's
// temporary directory is cleaned up by the next one.
func TestWriteReplacesAReusedDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "report")
	big := Build(mustLoad(t, "cpu-ort124.jsonl", "gpu-h100.jsonl"), testOptions(t))
	if _, err := big.Write(dir, FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(dir)
	small := Build(mustLoad(t, "cpu-ort124.jsonl"), testOptions(t))
	w, err := small.Write(dir, FormatHTML)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadDir(dir)
	want := map[string]bool{w.Report: true, w.CSV: true, w.Rows: true}
	for _, c := range w.Charts {
		want[c] = true
	}
	if len(after) != len(want) || len(after) >= len(before) {
		t.Errorf("%d files after rewriting (%d before), want exactly the %d the new report wrote", len(after), len(before), len(want))
	}
	for _, e := range after {
		if !want[e.Name()] {
			t.Errorf("stale file %s kept", e.Name())
		}
	}
	siblings, _ := os.ReadDir(filepath.Dir(dir))
	if len(siblings) != 1 {
		t.Errorf("temporary directories left beside the report: %v", siblings)
	}

	mine := filepath.Join(t.TempDir(), "mine")
	os.Mkdir(mine, 0o755)
	os.WriteFile(filepath.Join(mine, "results.jsonl"), []byte("{}\n"), 0o644)
	if _, err := small.Write(mine, FormatMarkdown); err == nil || !strings.Contains(err.Error(), "results.jsonl") {
		t.Errorf("a directory with the user's files: %v", err)
	}
	if entries, _ := os.ReadDir(mine); len(entries) != 1 {
		t.Errorf("the user's directory changed: %v", entries)
	}

	// A writer killed mid-write left its fresh directory with an owner
	// file nobody holds.
	stale := filepath.Join(filepath.Dir(dir), ".report.tmp-123")
	os.Mkdir(stale, 0o755)
	os.WriteFile(filepath.Join(stale, ".quantscope-owner"), []byte(`{"pid":999999}`), 0o644)
	if _, err := small.Write(dir, FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary directory kept: %v", err)
	}
}

// TestGPUMemoryDeviceWide: a GPU memory figure that is the whole device's
// (NVML listed no figure for the worker) says device-wide in the table and
// in the GPU memory chart's title; process figures say nothing more.
func TestGPUMemoryDeviceWide(t *testing.T) {
	withGPU := func(r study.Record, mib int64, scope string) study.Record {
		r.Experiment.EP = "cuda"
		r.Metrics.Memory.GPUBytes, r.Metrics.Memory.GPUSource = mib<<20, scope
		return r
	}
	for _, scope := range []string{bench.GPUScopeProcess, bench.GPUScopeDevice} {
		recs := []study.Record{
			withGPU(rec("m", "fp32", 1, 100, 400, nil), 812, scope),
			withGPU(rec("m", "fp16", 1, 180, 200, good), 430, scope),
		}
		r := Build([]Source{{Path: "x.jsonl", Records: recs}}, testOptions(t))
		var md bytes.Buffer
		cs := Charts(r)
		if err := r.Render(&md, FormatMarkdown, cs); err != nil {
			t.Fatal(err)
		}
		device := scope == bench.GPUScopeDevice
		if got := strings.Contains(md.String(), "812.0 device-wide"); got != device {
			t.Errorf("%s: table says device-wide %v:\n%s", scope, got, md.String())
		}
		var title string
		for _, set := range cs {
			for _, c := range set.Charts {
				if strings.HasPrefix(c.Name, "gpu-memory-reduction") || strings.HasSuffix(c.Name, "gpu-memory-reduction") {
					title = c.Title
				}
			}
		}
		if title == "" || strings.Contains(title, "(device-wide)") != device {
			t.Errorf("%s: GPU memory chart title %q", scope, title)
		}
	}
}
