package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/quantscope/quantscope/internal/tempdir"
	"github.com/quantscope/quantscope/profiler/study"
)

// Output formats of the report document.
const (
	FormatMarkdown = "md"
	FormatHTML     = "html"
)

// Written lists the files Write produced, relative to its directory.
type Written struct {
	Report string   // report.md or report.html
	CSV    string   // results.csv
	Rows   string   // rows.csv
	Charts []string // PNG and SVG files
	// ChartNotes are the notes of every chart set (what charts leave out,
	// which could not be drawn), also in the report.
	ChartNotes []string
}

// Render writes the report document in format (FormatMarkdown or
// FormatHTML) to w. charts come from Charts(r); nil leaves pictures out.
func (r *Report) Render(w io.Writer, format string, charts []ChartSet) error {
	d := r.document(charts)
	switch format {
	case FormatMarkdown, "":
		return d.markdown(w)
	case FormatHTML:
		return d.html(w)
	}
	return fmt.Errorf("render report: unknown format %q (use md or html)", format)
}

// Write renders the report into dir: report.md (or the self-contained
// report.html), every chart as PNG and SVG, results.csv (one line per
// record) and rows.csv (one per configuration and host: WriteRows). Everything is
// written into a fresh directory beside dir that then takes dir's place,
// so a report written again over an earlier one keeps none of its stale
// charts, and a report cut short leaves the earlier one whole. A dir that
// holds files a report does not write (a results file, notes) is refused
// rather than replaced.
func (r *Report) Write(dir, format string) (Written, error) {
	var out Written
	if format == "" {
		format = FormatMarkdown
	}
	if format != FormatMarkdown && format != FormatHTML {
		return out, fmt.Errorf("write report: unknown format %q (use md or html)", format)
	}
	dir = filepath.Clean(dir)
	if err := checkReportDir(dir); err != nil {
		return out, err
	}
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return out, fmt.Errorf("write report: %w", err)
	}
	tempdir.Sweep(parent, tempdir.Prefixed(base, ".tmp-", ".old-"), 24*time.Hour)
	td, err := tempdir.New(parent, "."+base+".tmp-")
	if err != nil {
		return out, fmt.Errorf("write report: %w", err)
	}
	defer td.Remove() // a no-op once renamed
	if err := os.Chmod(td.Path, 0o755); err != nil {
		return out, fmt.Errorf("write report: %w", err)
	}
	charts := Charts(r)
	for _, cs := range charts {
		out.ChartNotes = append(out.ChartNotes, cs.Notes...)
		for _, c := range cs.Charts {
			for _, f := range []struct {
				name string
				data []byte
			}{{c.PNGName(), c.PNG}, {c.SVGName(), c.SVG}} {
				if err := writeFile(filepath.Join(td.Path, f.name), f.data); err != nil {
					return out, err
				}
				out.Charts = append(out.Charts, f.name)
			}
		}
	}
	var doc bytes.Buffer
	if err := r.Render(&doc, format, charts); err != nil {
		return out, err
	}
	out.Report = "report." + format
	if err := writeFile(filepath.Join(td.Path, out.Report), doc.Bytes()); err != nil {
		return out, err
	}
	var csvBuf bytes.Buffer
	if err := r.WriteCSV(&csvBuf); err != nil {
		return out, err
	}
	out.CSV = "results.csv"
	if err := writeFile(filepath.Join(td.Path, out.CSV), csvBuf.Bytes()); err != nil {
		return out, err
	}
	var rowsBuf bytes.Buffer
	if err := WriteRows(&rowsBuf, RowsCSV, r.rows()); err != nil {
		return out, err
	}
	out.Rows = "rows.csv"
	if err := writeFile(filepath.Join(td.Path, out.Rows), rowsBuf.Bytes()); err != nil {
		return out, err
	}
	if err := td.Disown(); err != nil {
		return out, fmt.Errorf("write report: %w", err)
	}
	if err := replaceDir(td.Path, dir); err != nil {
		return out, fmt.Errorf("write report into %s: %w", dir, err)
	}
	return out, nil
}

// isReportFile says whether a report writes files of this name.
func isReportFile(name string) bool {
	switch filepath.Ext(name) {
	case ".png", ".svg":
		return true
	}
	return name == "report.md" || name == "report.html" || name == "results.csv" || name == "rows.csv"
}

// rows are the configurations of every group (host environment), in
// report order: what rows.csv holds.
func (r *Report) rows() []study.Row {
	var out []study.Row
	for _, g := range r.Groups {
		for _, e := range g.Entries {
			out = append(out, e.Row)
		}
	}
	return out
}

// checkReportDir accepts a dir that does not exist, is empty, or holds
// only files a report writes.
func checkReportDir(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("write report: %s is a file, not a directory; --out names the directory the report goes into", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !isReportFile(e.Name()) {
			return fmt.Errorf("write report: %s holds %s, which a report does not write: name a new or empty directory (a report replaces its directory whole)", dir, e.Name())
		}
	}
	return nil
}

// replaceDir renames the finished directory tmp to dir; an earlier dir
// is moved aside first and removed after.
func replaceDir(tmp, dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return os.Rename(tmp, dir)
	}
	parent := filepath.Dir(dir)
	old, err := tempdir.New(parent, "."+filepath.Base(dir)+".old-")
	if err != nil {
		return err
	}
	defer old.Remove()
	if err := os.Rename(dir, filepath.Join(old.Path, "report")); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.Rename(filepath.Join(old.Path, "report"), dir) // put the old one back
		return err
	}
	return nil
}

func writeFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
