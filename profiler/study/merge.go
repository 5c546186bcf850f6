package study

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MergeWarning is a line of an input that a merge skipped.
type MergeWarning struct {
	Path string
	Warning
}

func (w MergeWarning) String() string { return w.Path + " " + w.Warning.String() }

// MergeReport says what MergeFiles did.
type MergeReport struct {
	// Read counts the records read from all inputs; Written those in the
	// output; Superseded the older records of a re-run that were dropped.
	Read, Written, Superseded int
	// Warnings are the lines skipped (torn or not records).
	Warnings []MergeWarning
}

// SchemaError is MergeFiles's refusal of records whose schema version this
// build does not know; nothing is written.
type SchemaError struct {
	// Lines name each refused line: "path line N: schema V".
	Lines []string
}

func (e *SchemaError) Error() string {
	const show = 5
	lines := e.Lines
	more := ""
	if len(lines) > show {
		more = fmt.Sprintf(" and %d more", len(lines)-show)
		lines = lines[:show]
	}
	known := "1"
	if SchemaVersion > 1 {
		known = fmt.Sprintf("1 to %d", SchemaVersion)
	}
	return fmt.Sprintf("refusing to merge records of a schema this quantscope does not know (it reads schema %s): %s%s; nothing was written. Upgrade quantscope to the version that wrote them, or leave those files out",
		known, strings.Join(lines, "; "), more)
}

// mergeIdentity is what makes two records the same measurement: the
// experiment (repeat index and provider options included) on the same host
// environment.
func mergeIdentity(r Record) string { return r.Host.Key() + "\x00" + r.Experiment.Key() }

// mergeLine is one record of an input, with its bytes as written.
type mergeLine struct {
	rec Record
	raw []byte
}

// MergeFiles combines results files into out. Records are de-duplicated by
// experiment and host environment (Host.Key): of a measurement recorded
// more than once — a shard re-run after a failure, a resumed study, the same
// file given twice — the newest record (latest finish, then latest start,
// then the later input) is kept, whatever its status. Each record is copied
// byte for byte, so fields a newer build of the same schema added are kept,
// in the order its measurement first appears. Torn or corrupt lines are
// skipped and reported; a record of a schema newer than this build (or of
// none) makes the whole merge fail with a *SchemaError before anything is
// written. out is written to a temporary file and renamed into place; it
// may be one of the inputs (merging into it), but an existing out that is
// not among them is refused rather than overwritten, and so is an out a
// study is writing (its lock is held; see OpenWriter).
func MergeFiles(out string, inputs []string) (MergeReport, error) {
	var rep MergeReport
	if len(inputs) == 0 {
		return rep, errors.New("merge: no input files")
	}
	// A study appending to out would lose its records to the rename: wait
	// for none, say who holds it.
	lock, err := lockResults(out)
	if err != nil {
		return rep, fmt.Errorf("merge: %w", err)
	}
	defer lock.release()
	if st, err := os.Stat(out); err == nil {
		listed := false
		for _, in := range inputs {
			if ist, err := os.Stat(in); err == nil && os.SameFile(st, ist) {
				listed = true
			}
		}
		if !listed {
			return rep, fmt.Errorf("merge: %s already exists: name it among the inputs to merge into it, or write to a new file", out)
		}
	}
	var all []mergeLine
	var schema SchemaError
	for _, in := range inputs {
		lines, warns, bad, err := readMergeInput(in)
		if err != nil {
			return rep, err
		}
		all = append(all, lines...)
		rep.Warnings = append(rep.Warnings, warns...)
		schema.Lines = append(schema.Lines, bad...)
	}
	if len(schema.Lines) > 0 {
		return rep, &schema
	}
	rep.Read = len(all)
	var order []string
	newest := map[string]int{}
	for i, l := range all {
		id := mergeIdentity(l.rec)
		j, ok := newest[id]
		if !ok {
			order = append(order, id)
			newest[id] = i
			continue
		}
		rep.Superseded++
		if !newer(all[j].rec, l.rec) {
			newest[id] = i
		}
	}
	var buf bytes.Buffer
	for _, id := range order {
		buf.Write(all[newest[id]].raw)
		buf.WriteByte('\n')
	}
	rep.Written = len(order)
	if err := writeAtomic(out, buf.Bytes()); err != nil {
		return rep, err
	}
	return rep, nil
}

// newer reports whether a finished strictly after b (then started after
// it): b, read later, wins ties.
func newer(a, b Record) bool {
	if !a.Finished.Equal(b.Finished) {
		return a.Finished.After(b.Finished)
	}
	return a.Started.After(b.Started)
}

// readMergeInput reads one input: its records with their bytes, the lines
// skipped, and the lines refused for their schema.
func readMergeInput(path string) (lines []mergeLine, warns []MergeWarning, badSchema []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("merge: read %s: %w", path, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	for n := 1; ; n++ {
		b, rerr := readLine(br)
		if len(bytes.TrimSpace(b)) > 0 {
			rec, perr := parseRecord(b)
			switch {
			case perr == nil:
				lines = append(lines, mergeLine{rec: rec, raw: bytes.Clone(bytes.TrimSpace(b))})
			case rec.Schema > SchemaVersion || (rec.Schema < 1 && looksLikeRecord(rec)):
				badSchema = append(badSchema, fmt.Sprintf("%s line %d: schema %d", path, n, rec.Schema))
			case errors.Is(rerr, io.EOF):
				warns = append(warns, MergeWarning{path, Warning{Line: n, Reason: "incomplete last line (a run was interrupted while writing); skipped"}})
			default:
				warns = append(warns, MergeWarning{path, Warning{Line: n, Reason: perr.Error() + "; skipped"}})
			}
		}
		if rerr != nil {
			switch {
			case errors.Is(rerr, io.EOF):
				return lines, warns, badSchema, nil
			case errors.Is(rerr, errLineTooLong):
				warns = append(warns, MergeWarning{path, Warning{Line: n, Reason: "line longer than 16 MiB; skipped"}})
				continue
			}
			return nil, nil, nil, fmt.Errorf("merge: read %s: %w", path, rerr)
		}
	}
}

// looksLikeRecord tells a record without a schema version (of an unknown
// layout) from a line that is some other JSON.
func looksLikeRecord(r Record) bool { return r.Experiment.Model != "" || r.Status != "" }

// writeAtomic writes data to path through a temporary file in the same
// directory, synced and renamed into place.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".merge-*")
	if err != nil {
		return fmt.Errorf("merge: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("merge: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("merge: sync %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("merge: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("merge: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("merge: write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename itself, where the file system allows
		d.Close()
	}
	return nil
}
