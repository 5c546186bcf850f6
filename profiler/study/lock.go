package study

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
)

// Holder says who holds a results file: the process writing a study to it.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

// String describes the holder for a person.
func (h Holder) String() string {
	if h.PID == 0 {
		return "another process (it has not said who yet)"
	}
	cmd := h.Command
	if len(cmd) > 160 {
		cmd = cmd[:160] + "…"
	}
	return fmt.Sprintf("pid %d on %s, since %s: %s", h.PID, h.Host, h.Since.Local().Format("2006-01-02 15:04:05"), cmd)
}

// LockedError is returned when another study is writing the results file.
type LockedError struct {
	Path   string
	Holder Holder
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is being written by another quantscope study (%s); wait for it to finish, or write to another file (two studies at once would also spoil each other's timings)", e.Path, e.Holder)
}

// ErrLocked is matched by a *LockedError with errors.Is.
var ErrLocked = errors.New("results file in use")

// Is makes a LockedError match ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// resultsLock is an exclusive flock(2) on "<results>.lock", held for a
// whole study. The lock file says who holds it; it is removed (while still
// locked) on release.
type resultsLock struct {
	f    *os.File
	path string
}

// lockResults takes the lock of the results file at path without waiting:
// a second study on the same file gets a *LockedError naming the first.
func lockResults(path string) (*resultsLock, error) {
	lp := path + ".lock"
	for range 10 {
		f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lock results %s: %w", path, err)
		}
		if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			defer f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, &LockedError{Path: path, Holder: readHolder(f)}
			}
			return nil, fmt.Errorf("lock results %s: %w", path, err)
		}
		// The holder before us may have removed the file between our open
		// and our flock: then we locked an orphan, and try again.
		fst, ferr := f.Stat()
		pst, perr := os.Stat(lp)
		if ferr != nil || perr != nil || !os.SameFile(fst, pst) {
			f.Close()
			continue
		}
		host, _ := os.Hostname()
		h := Holder{PID: os.Getpid(), Host: host, Command: strings.Join(os.Args, " "), Since: time.Now().UTC()}
		b, _ := json.Marshal(h)
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt(append(b, '\n'), 0)
			_ = f.Sync()
		}
		return &resultsLock{f: f, path: lp}, nil
	}
	return nil, fmt.Errorf("lock results %s: the lock file kept changing under us", path)
}

// flock is flock(2), retried when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

func readHolder(f *os.File) Holder {
	var h Holder
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 4096))
	if err == nil {
		_ = json.Unmarshal(b, &h)
	}
	return h
}

// release removes the lock file, then unlocks it.
func (l *resultsLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	rerr := os.Remove(l.path)
	cerr := l.f.Close()
	l.f = nil
	if errors.Is(rerr, os.ErrNotExist) {
		rerr = nil
	}
	return errors.Join(rerr, cerr)
}
