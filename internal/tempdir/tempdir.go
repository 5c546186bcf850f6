// Package tempdir makes temporary directories that say whether the process
// that made them is still at work, so that the ones a killed process left
// behind can be removed at once rather than after a day: each holds an
// owner file under an exclusive flock(2) for as long as its maker runs.
package tempdir

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// OwnerFile is the file inside a directory made by New that its owner
// holds locked.
const OwnerFile = ".quantscope-owner"

// Dir is a temporary directory owned by this process.
type Dir struct {
	Path  string
	owner *os.File
}

// New makes a directory in parent named by pattern (as os.MkdirTemp) and
// locks its owner file. Call Disown before renaming it into place, and
// remove it (or let Sweep) otherwise.
func New(parent, pattern string) (*Dir, error) {
	p, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(p, OwnerFile), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		os.RemoveAll(p)
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.RemoveAll(p)
		return nil, err
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(map[string]any{"pid": os.Getpid(), "host": host, "since": time.Now().UTC()})
	_, _ = f.Write(append(b, '\n'))
	return &Dir{Path: p, owner: f}, nil
}

// Disown removes the owner file and its lock: the directory's contents are
// then only what its maker put there, ready to be renamed into place.
func (d *Dir) Disown() error {
	if d == nil || d.owner == nil {
		return nil
	}
	rerr := os.Remove(filepath.Join(d.Path, OwnerFile))
	cerr := d.owner.Close()
	d.owner = nil
	return errors.Join(rerr, cerr)
}

// Remove disowns the directory and deletes it with its contents (a no-op
// once it has been renamed away).
func (d *Dir) Remove() error {
	if d == nil {
		return nil
	}
	if d.owner != nil {
		d.owner.Close()
		d.owner = nil
	}
	return os.RemoveAll(d.Path)
}

// Sweep removes the directories in parent whose names match and whose
// owner is gone: their owner file is no longer locked (its process ended,
// however it ended). A matching directory without an owner file (made
// before owners were recorded, or just disowned for a rename) is removed
// only once it is older than maxAge. It returns what it removed; errors
// are ignored (another sweeper may be at the same directory).
func Sweep(parent string, match func(name string) bool, maxAge time.Duration) []string {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() || !match(e.Name()) {
			continue
		}
		p := filepath.Join(parent, e.Name())
		if ownerGone(p, maxAge) {
			if os.RemoveAll(p) == nil {
				removed = append(removed, p)
			}
		}
	}
	return removed
}

// ownerGone reports whether nobody holds the directory any more.
func ownerGone(dir string, maxAge time.Duration) bool {
	f, err := os.Open(filepath.Join(dir, OwnerFile))
	if err != nil {
		st, serr := os.Stat(dir)
		return errors.Is(err, os.ErrNotExist) && serr == nil && time.Since(st.ModTime()) > maxAge
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err != nil {
		return false // held: its owner is at work
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return true
}

// Prefixed matches names that start with "." + base and contain one of
// the markers (".tmp-", ".old-"): the temporary siblings of base.
func Prefixed(base string, markers ...string) func(string) bool {
	return func(name string) bool {
		if !strings.HasPrefix(name, "."+base) {
			return false
		}
		for _, m := range markers {
			if strings.Contains(name, m) {
				return true
			}
		}
		return false
	}
}
