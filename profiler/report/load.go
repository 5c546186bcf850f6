package report

import (
	"errors"
	"fmt"
	"strings"

	"github.com/quantscope/quantscope/profiler/study"
)

// Source is one results file as read.
type Source struct {
	Path     string
	Records  []study.Record
	Warnings []study.Warning // lines skipped while reading
}

// ErrNoRecords is wrapped by Load when a file holds no usable record.
var ErrNoRecords = errors.New("no usable records")

// Load reads results files with study.ReadResults. Torn or unreadable lines
// are kept as warnings for the report; a file that cannot be opened, or that
// holds no usable record at all (empty, not JSON lines, only records of a
// newer schema), is an error that says why.
func Load(paths ...string) ([]Source, error) {
	if len(paths) == 0 {
		return nil, errors.New("load results: no files given")
	}
	out := make([]Source, 0, len(paths))
	for _, p := range paths {
		recs, warns, err := study.ReadResults(p)
		if err != nil {
			return nil, err // already names the file
		}
		if len(recs) == 0 {
			return nil, noRecordsError(p, warns)
		}
		out = append(out, Source{Path: p, Records: recs, Warnings: warns})
	}
	return out, nil
}

func noRecordsError(path string, warns []study.Warning) error {
	if len(warns) == 0 {
		return fmt.Errorf("read results %s: %w: the file is empty", path, ErrNoRecords)
	}
	const show = 3
	var parts []string
	for i, w := range warns {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(warns)-show))
			break
		}
		parts = append(parts, w.String())
	}
	return fmt.Errorf("read results %s: %w: %s", path, ErrNoRecords, strings.Join(parts, "; "))
}

// allRecords concatenates the sources' records in order.
func allRecords(srcs []Source) []study.Record {
	n := 0
	for _, s := range srcs {
		n += len(s.Records)
	}
	out := make([]study.Record, 0, n)
	for _, s := range srcs {
		out = append(out, s.Records...)
	}
	return out
}
