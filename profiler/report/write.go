package report

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// Write renders the report into dir, creating it if needed: report.md (or
// the self-contained report.html), every chart as PNG and SVG, and
// results.csv.
func (r *Report) Write(dir, format string) (Written, error) {
	var out Written
	if format == "" {
		format = FormatMarkdown
	}
	if format != FormatMarkdown && format != FormatHTML {
		return out, fmt.Errorf("write report: unknown format %q (use md or html)", format)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
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
				if err := writeFile(filepath.Join(dir, f.name), f.data); err != nil {
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
	if err := writeFile(filepath.Join(dir, out.Report), doc.Bytes()); err != nil {
		return out, err
	}
	var csvBuf bytes.Buffer
	if err := r.WriteCSV(&csvBuf); err != nil {
		return out, err
	}
	out.CSV = "results.csv"
	if err := writeFile(filepath.Join(dir, out.CSV), csvBuf.Bytes()); err != nil {
		return out, err
	}
	return out, nil
}

func writeFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
