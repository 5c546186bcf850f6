package study

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
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
// are skipped too, and so are exact copies of an earlier line (one warning
// for all of them). A missing file is an error wrapping os.ErrNotExist.
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
	seen := map[[sha256.Size]byte]int{} // line of each record's first copy
	var dups, firstDup, firstOf int
	flushDups := func() {
		if dups > 0 {
			warns = append(warns, Warning{firstDup, fmt.Sprintf("repeats line %d exactly, as do %d later lines (a record written twice, or a file appended to itself); the copies are ignored", firstOf, dups-1)})
		}
	}
	for line := 1; ; line++ {
		b, err := readLine(br)
		if len(bytes.TrimSpace(b)) > 0 {
			torn := errors.Is(err, io.EOF) // no trailing newline: the writer never finished
			rec, perr := parseRecord(b)
			sum := sha256.Sum256(bytes.TrimSpace(b))
			switch {
			case perr != nil && torn:
				warns = append(warns, Warning{line, "incomplete last line (a run was interrupted while writing); ignored"})
			case perr != nil:
				warns = append(warns, Warning{line, perr.Error() + "; ignored"})
			case seen[sum] > 0:
				if dups == 0 {
					firstDup, firstOf = line, seen[sum]
				}
				dups++
			default:
				if err := dropBadTelemetry(&rec); err != nil {
					warns = append(warns, Warning{line, "telemetry ignored (" + err.Error() + "); the record is kept"})
				}
				seen[sum] = line
				recs = append(recs, rec)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				flushDups()
				return recs, warns, nil
			}
			if errors.Is(err, errLineTooLong) {
				warns = append(warns, Warning{line, "line longer than 16 MiB; ignored"})
				continue
			}
			flushDups()
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

// dropBadTelemetry removes telemetry a reader cannot trust (columns of
// different lengths, unknown phases, times out of order) and says why.
func dropBadTelemetry(rec *Record) error {
	if rec.Telemetry == nil {
		return nil
	}
	if err := rec.Telemetry.validate(); err != nil {
		rec.Telemetry = nil
		return err
	}
	return nil
}

// appendFile is what Writer needs of its file (an *os.File; a failing
// fake in tests).
type appendFile interface {
	Write([]byte) (int, error)
	Truncate(int64) error
	Sync() error
	Close() error
}

// Writer appends records to a results file, one fsync'd line each, while
// holding the file's lock (see OpenWriter).
type Writer struct {
	mu   sync.Mutex
	f    appendFile
	path string
	lock *resultsLock
	size int64 // bytes of whole lines: where a failed write is cut back to
	// RetryPause is how long Append waits before writing a record again
	// after a failed write (default 2 s).
	RetryPause time.Duration
	// FallbackName names the file a record goes to when the results file
	// cannot take it ("" gives "<results>.unsaved.jsonl").
	FallbackName string
	fallback     string // the fallback file in use, once one was needed
}

// OpenWriter locks the results file at path for this process (a second
// writer gets a *LockedError naming the first: pid, host, command) and
// opens it, creating it if needed, for appending. If the file ends in a
// torn line from an interrupted run, a newline is written first so the
// next record starts on a line of its own. Close releases the lock.
func OpenWriter(path string) (*Writer, error) {
	if err := CheckResultsFile(path); err != nil {
		return nil, err
	}
	lock, err := lockResults(path)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("open results %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		lock.release()
		return nil, fmt.Errorf("open results %s: %w", path, err)
	}
	size := st.Size()
	if size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, size-1); err == nil && last[0] != '\n' {
			if _, err := f.Write([]byte("\n")); err != nil {
				f.Close()
				lock.release()
				return nil, fmt.Errorf("repair torn line in %s: %w", path, err)
			}
			size++
		}
	}
	return &Writer{f: f, path: path, lock: lock, size: size, RetryPause: 2 * time.Second}, nil
}

// SavedElsewhereError says a record could not be appended to the results
// file and went to a fallback file instead: nothing is lost, but the
// results file lacks it until the fallback is appended to it.
type SavedElsewhereError struct {
	Results, Fallback string
	Err               error // why the results file refused it
}

func (e *SavedElsewhereError) Error() string {
	return fmt.Sprintf("could not append to %s (%v); the record was written to %s instead — once there is room, run: cat %s >> %s",
		e.Results, e.Err, e.Fallback, e.Fallback, e.Results)
}

func (e *SavedElsewhereError) Unwrap() error { return e.Err }

// Append writes one record as a single line and syncs it to disk before
// returning, so a record that Append returned nil for survives a crash.
// A failed write (a full disk, an I/O error) never leaves a partial line:
// the file is cut back to its last whole line, the write is tried once
// more after RetryPause, and then the record goes to a fallback file
// beside the results (or in the temporary directory), returned as a
// *SavedElsewhereError naming it. Only when no file at all takes it is
// the record lost to disk; the error then says so and carries it.
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
	werr := w.appendLine(b)
	if werr == nil {
		return nil
	}
	if w.RetryPause > 0 {
		time.Sleep(w.RetryPause)
	}
	if err := w.appendLine(b); err == nil {
		return nil
	}
	fb, ferr := w.writeFallback(b)
	if ferr != nil {
		return fmt.Errorf("append to %s: %w; and no fallback file could take the record either (%v): it is only in memory: %s", w.path, werr, ferr, bytes.TrimSpace(b))
	}
	return &SavedElsewhereError{Results: w.path, Fallback: fb, Err: werr}
}

// appendLine writes b at the end of the results file and syncs it; on
// failure it truncates the file back to its last whole line.
func (w *Writer) appendLine(b []byte) error {
	_, err := w.f.Write(b)
	if err == nil {
		err = w.f.Sync()
	}
	if err != nil {
		if terr := w.f.Truncate(w.size); terr != nil {
			return fmt.Errorf("%w (and cutting back the partial line failed: %v)", err, terr)
		}
		return err
	}
	w.size += int64(len(b))
	return nil
}

// writeFallback appends b to the fallback file: beside the results file,
// else in the temporary directory.
func (w *Writer) writeFallback(b []byte) (string, error) {
	var candidates []string
	if w.fallback != "" {
		candidates = append(candidates, w.fallback)
	}
	name := w.FallbackName
	if name == "" {
		name = filepath.Base(w.path) + ".unsaved.jsonl"
	}
	candidates = append(candidates, filepath.Join(filepath.Dir(w.path), name), filepath.Join(os.TempDir(), "quantscope-"+name))
	var errs []error
	for _, c := range candidates {
		if err := appendSynced(c, b); err != nil {
			errs = append(errs, err)
			continue
		}
		w.fallback = c
		return c, nil
	}
	return "", errors.Join(errs...)
}

// appendSynced appends b to path as one write and syncs it, cutting a
// partial write back off.
func appendSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		_ = f.Truncate(st.Size())
		f.Close()
		if st.Size() == 0 {
			os.Remove(path) // made for this record: leave nothing behind
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// Fallback is the file records went to when the results file could not
// take them ("" when none did).
func (w *Writer) Fallback() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fallback
}

// Close closes the file and releases its lock.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.f.Close()
	return errors.Join(err, w.lock.release())
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
