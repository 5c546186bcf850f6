package worker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Bounds of what is kept of a worker's stderr.
const (
	stderrHeadBytes = 4 << 10 // the first bytes: where a Go runtime fatal error or an early exception is
	stderrTailBytes = 4 << 10 // the last bytes: what happened just before it ended
	maxFatalLines   = 3
	maxLineBytes    = 1 << 10
)

// fatalMarkers pick out the lines that say why a process died, wherever in
// its stderr they are: the Go runtime, ONNX Runtime and C++ exceptions,
// CUDA and its libraries, allocation failures.
var fatalMarkers = []string{
	"fatal error:",           // Go runtime (out of memory, concurrent map writes, …)
	"runtime: out of memory", // Go runtime, before its fatal error
	"panic:",                 // Go panic
	"[E:onnxruntime:",        // ONNX Runtime's error log
	"OnnxRuntimeException",   // ORT_THROW
	"Non-zero status code returned while running",
	"terminate called after throwing", // uncaught C++ exception
	"what():",                         // …its message
	"std::bad_alloc",
	"CUDA error", "CUDA failure", "cudaError", "CUDA out of memory",
	"CUBLAS_STATUS_", "CUDNN_STATUS_", "CUFFT_", "NCCL error",
	"out of memory",
	"Segmentation fault", "SIGSEGV", "SIGBUS",
}

// stderrCapture keeps the head and the tail of a worker's stderr and every
// line that looks fatal, however much it printed in between.
type stderrCapture struct {
	mu    sync.Mutex
	head  []byte
	tail  []byte
	total int64
	line  []byte // the line being written, up to maxLineBytes
	fatal []string
}

func newStderrCapture() *stderrCapture { return &stderrCapture{} }

// Write implements io.Writer.
func (c *stderrCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	c.total += int64(n)
	if n := min(len(p), stderrHeadBytes-len(c.head)); n > 0 {
		c.head = append(c.head, p[:n]...)
	}
	c.tail = append(c.tail, p...)
	if over := len(c.tail) - stderrTailBytes; over > 0 {
		c.tail = append(c.tail[:0], c.tail[over:]...)
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := maxLineBytes - len(c.line); room > 0 {
			c.line = append(c.line, chunk[:min(room, len(chunk))]...)
		}
		if i < 0 {
			break
		}
		c.endLine()
		p = p[i+1:]
	}
	return n, nil
}

// endLine checks the finished line for a fatal marker.
func (c *stderrCapture) endLine() {
	line := strings.TrimSpace(string(c.line))
	c.line = c.line[:0]
	if line == "" || len(c.fatal) >= maxFatalLines {
		return
	}
	for _, m := range fatalMarkers {
		if strings.Contains(line, m) {
			for _, f := range c.fatal {
				if f == line {
					return
				}
			}
			c.fatal = append(c.fatal, clip(line, 300))
			return
		}
	}
}

// String returns the head and the tail, with how much was left out
// between them.
func (c *stderrCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total <= stderrHeadBytes+stderrTailBytes {
		// Nothing was left out: the head, then the tail's bytes after it.
		rest := c.total - int64(len(c.head))
		return strings.TrimSpace(string(c.head) + string(c.tail[int64(len(c.tail))-rest:]))
	}
	omitted := c.total - int64(len(c.head)) - int64(len(c.tail))
	return strings.TrimSpace(string(c.head)) + fmt.Sprintf("\n[… %d bytes of stderr omitted …]\n", omitted) + strings.TrimSpace(string(c.tail))
}

// Fatal returns the lines that looked fatal, in order (at most three).
func (c *stderrCapture) Fatal() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.line) > 0 { // a last line without a newline
		c.endLine()
	}
	return append([]string(nil), c.fatal...)
}

// withFatal adds the fatal lines a worker printed to the error that
// describes its end: "worker exited with status 2: fatal error: out of
// memory: cannot allocate 60213428224-byte block".
func withFatal(err error, fatal []string) error {
	if err == nil || len(fatal) == 0 || errors.Is(err, ErrTimeout) || errors.Is(err, ErrCanceled) {
		return err
	}
	msg := err.Error()
	var add []string
	for _, f := range fatal {
		if !strings.Contains(msg, f) {
			add = append(add, f)
		}
	}
	if len(add) == 0 {
		return err
	}
	return fmt.Errorf("%w: %s", err, strings.Join(add, " | "))
}

// oomKills reads how many processes the kernel's out-of-memory killer has
// ended: in this process's cgroup (v2 memory.events) when readable, else
// system-wide (/proc/vmstat). -1 when neither can be read.
func oomKills() int64 {
	if cg, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, l := range strings.Split(string(cg), "\n") {
			if path, ok := strings.CutPrefix(l, "0::"); ok {
				if n, ok := counter("/sys/fs/cgroup"+strings.TrimSpace(path)+"/memory.events", "oom_kill"); ok {
					return n
				}
			}
		}
	}
	if n, ok := counter("/proc/vmstat", "oom_kill"); ok {
		return n
	}
	return -1
}

// counter reads "key value" from a kernel statistics file.
func counter(path, key string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// describeDeath is describeExit, made definite when the kernel's
// out-of-memory killer ended the worker (its kill count rose while the
// worker ran and the worker died of SIGKILL).
func describeDeath(waitErr error, oomBefore int64) error {
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) && oomBefore >= 0 {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL && oomKills() > oomBefore {
			return errors.New("worker was killed by the kernel's out-of-memory killer (the machine ran out of memory): try a smaller batch or model")
		}
	}
	return describeExit(waitErr)
}
