package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/quantscope/quantscope/tui"
)

// DataDir is quantscope's user data dir: $XDG_DATA_HOME/quantscope, or
// ~/.local/share/quantscope (the host key and the lock file live there).
func DataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "quantscope"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("user data dir: %w (set XDG_DATA_HOME)", err)
	}
	return filepath.Join(h, ".local", "share", "quantscope"), nil
}

// LockPath is where serve's lock file lives: serve.lock in DataDir.
func LockPath() (string, error) {
	d, err := DataDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "serve.lock"), nil
}

// LockInfo is what the lock file says about the server holding it.
type LockInfo struct {
	PID    int       `json:"pid"`
	Listen string    `json:"listen"`
	Out    string    `json:"out"` // the study's results file
	Since  time.Time `json:"since"`
	// The study: whether one is queued or running, who has control, how
	// many experiments are left, which one is being measured, how many
	// users are connected.
	Running    bool   `json:"running"`
	Controller string `json:"controller,omitempty"`
	Pending    int    `json:"pending,omitempty"`
	Current    string `json:"current,omitempty"`
	Clients    int    `json:"clients"`
}

// Lock is a running server's claim on the machine: a file it holds an
// exclusive flock on for its lifetime (so a crashed server leaves nothing
// that counts) and rewrites as its study changes.
type Lock struct {
	mu   sync.Mutex
	f    *os.File
	path string
	info LockInfo
}

// AcquireLock takes the lock file at path for this process, failing when
// another live server holds it.
func AcquireLock(path string, info LockInfo) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		other, _ := decodeLock(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another quantscope serve (pid %d, listening on %s) runs on this machine: one study at a time per machine; stop it first (lock %s)", other.PID, other.Listen, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	l := &Lock{f: f, path: path, info: info}
	if err := l.writeLocked(); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}

// Update records the study's status in the lock file.
func (l *Lock) Update(st tui.Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	l.info.Running, l.info.Controller, l.info.Pending, l.info.Current, l.info.Clients = st.Running, st.Controller, st.Pending, st.Current, st.Clients
	_ = l.writeLocked()
}

func (l *Lock) writeLocked() error {
	b, err := json.Marshal(l.info)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	b = append(b, '\n')
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("write lock %s: %w", l.path, err)
	}
	if _, err := l.f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("write lock %s: %w", l.path, err)
	}
	return nil
}

// Release removes the lock file and lets it go.
func (l *Lock) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	os.Remove(l.path)
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}

// ReadLock reports whether a live server holds the lock file at path and
// what it says. A file left by a server that died holds nothing.
func ReadLock(path string) (LockInfo, bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return LockInfo{}, false, nil
	}
	if err != nil {
		return LockInfo{}, false, fmt.Errorf("read lock %s: %w", path, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return LockInfo{}, false, nil
	} else if !errors.Is(err, syscall.EWOULDBLOCK) {
		return LockInfo{}, false, fmt.Errorf("read lock %s: %w", path, err)
	}
	info, err := decodeLock(f)
	if err != nil {
		// Held, but caught mid-rewrite: a server is there all the same.
		return LockInfo{Running: true}, true, nil
	}
	return info, true, nil
}

func decodeLock(r io.ReaderAt) (LockInfo, error) {
	b, err := io.ReadAll(io.NewSectionReader(r, 0, 1<<16))
	if err != nil {
		return LockInfo{}, err
	}
	var info LockInfo
	err = json.Unmarshal(b, &info)
	return info, err
}

// Busy says what study a quantscope serve runs on this machine, "" when
// none does (no server, or a server with nothing queued): the sentence a
// local quantscope shows and `bench` refuses with.
func Busy(path string) string {
	info, held, err := ReadLock(path)
	if err != nil || !held || !info.Running {
		return ""
	}
	var parts []string
	if info.Current != "" {
		parts = append(parts, "measuring "+info.Current)
	}
	if info.Pending > 0 {
		left := fmt.Sprintf("%d runs left", info.Pending)
		if info.Pending == 1 {
			left = "1 run left"
		}
		parts = append(parts, left)
	}
	if info.Controller != "" {
		parts = append(parts, info.Controller+" has control")
	}
	s := "quantscope serve"
	if info.PID > 0 {
		s += fmt.Sprintf(" (pid %d", info.PID)
		if info.Listen != "" {
			s += ", " + info.Listen
		}
		s += ")"
	}
	s += " is running a study on this machine"
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	return s
}
