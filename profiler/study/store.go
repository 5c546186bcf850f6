package study

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// maxLine bounds one record line; a longer line is treated as corrupt.
const maxLine = 16 << 20

// Warning is a problem found while reading a results file that did not stop
// the read: the named line was skipped.
type Warning struct {
	Line   int
	Reason string
}

func (w Warning) String() string { return fmt.Sprintf("line %d: %s", w.Line, w.Reason) }

// ReadResults reads every record of a results file. A torn or corrupt line
// (typically the last one, from a process killed mid-write) is skipped and
// reported as a warning; records from schema versions newer than this build
// are skipped too. A missing file is an error wrapping os.ErrNotExist.
func ReadResults(path string) ([]Record, []Warning, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read results %s: %w", path, err)
	}
	defer f.Close()
	recs, warns, err := DecodeResults(f)
	if err != nil {
		return recs, warns, fmt.Errorf("read results %s: %w", path, err)
	}
	return recs, warns, nil
}

// DecodeResults reads JSON-lines records from r; see ReadResults.
func DecodeResults(r io.Reader) ([]Record, []Warning, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var recs []Record
	var warns []Warning
	for line := 1; ; line++ {
		b, err := readLine(br)
		if len(bytes.TrimSpace(b)) > 0 {
			torn := errors.Is(err, io.EOF) // no trailing newline: the writer never finished
			rec, perr := parseRecord(b)
			switch {
			case perr != nil && torn:
				warns = append(warns, Warning{line, "incomplete last line (a run was interrupted while writing); ignored"})
			case perr != nil:
				warns = append(warns, Warning{line, perr.Error() + "; ignored"})
			default:
				recs = append(recs, rec)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return recs, warns, nil
			}
			if errors.Is(err, errLineTooLong) {
				warns = append(warns, Warning{line, "line longer than 16 MiB; ignored"})
				continue
			}
			return recs, warns, err
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its newline; io.EOF with the last,
// unterminated bytes. Over-long lines are drained and reported.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLine {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			return nil, errLineTooLong
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return bytes.TrimRight(buf, "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return buf, err
		}
	}
}

func parseRecord(b []byte) (Record, error) {
	var rec Record
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&rec); err != nil {
		return rec, fmt.Errorf("not a JSON record (%v)", err)
	}
	if rec.Schema < 1 {
		return rec, errors.New("record has no schema version")
	}
	if rec.Schema > SchemaVersion {
		return rec, fmt.Errorf("schema %d is newer than this quantscope understands (%d): upgrade quantscope", rec.Schema, SchemaVersion)
	}
	if rec.Experiment.Model == "" {
		return rec, errors.New("record names no model")
	}
	return rec, nil
}

// Writer appends records to a results file, one fsync'd line each.
type Writer struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// OpenWriter opens (creating if needed) a results file for appending. If the
// file ends in a torn line from an interrupted run, a newline is written
// first so the next record starts on a line of its own.
func OpenWriter(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open results %s: %w", path, err)
	}
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			if _, err := f.Write([]byte("\n")); err != nil {
				f.Close()
				return nil, fmt.Errorf("repair torn line in %s: %w", path, err)
			}
		}
	}
	return &Writer{f: f, path: path}, nil
}

// Append writes one record as a single line and syncs it to disk before
// returning, so a record that Append returned for survives a crash.
func (w *Writer) Append(rec Record) error {
	if rec.Schema == 0 {
		rec.Schema = SchemaVersion
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode result for %s: %w", rec.Experiment.Key(), err)
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.f.Write(b); err != nil {
		return fmt.Errorf("append to %s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", w.path, err)
	}
	return nil
}

// Close closes the file.
func (w *Writer) Close() error { return w.f.Close() }

// Done returns the keys of experiments recorded with status ok: what a
// resumed study skips.
func Done(recs []Record) map[string]bool {
	done := make(map[string]bool)
	for _, r := range recs {
		if r.OK() {
			done[r.Experiment.Key()] = true
		}
	}
	return done
}

// CheckResultsFile says whether path can take a study's records: it does
// not exist yet, is empty, or its first line is a results record. Any
// other file (notes, a CSV, a directory) is refused, so a typo in --out
// never appends JSON to someone's document.
func CheckResultsFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("results file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("results file %s: %w", path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("results file %s is a directory; name a .jsonl file", path)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("results file %s is not a regular file", path)
	}
	br := bufio.NewReaderSize(f, 1<<16)
	for {
		b, err := readLine(br)
		if len(bytes.TrimSpace(b)) > 0 {
			if _, perr := parseRecord(b); perr != nil {
				if errors.Is(err, io.EOF) && bytes.HasPrefix(bytes.TrimSpace(b), []byte(`{"schema":`)) {
					// A lone torn record is what a killed first write leaves.
					return nil
				}
				return fmt.Errorf("%s is not a quantscope results file (its first line is %s); name a new or existing .jsonl results file", path, perr)
			}
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if errors.Is(err, errLineTooLong) {
				return fmt.Errorf("%s is not a quantscope results file (its first line is longer than 16 MiB)", path)
			}
			return fmt.Errorf("results file %s: %w", path, err)
		}
	}
}
