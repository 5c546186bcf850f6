package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/quantscope/quantscope/serve"
	"github.com/quantscope/quantscope/tui"
)

// TestServeStopsCleanlyOnSIGTERM runs `quantscope serve` as a process:
// it creates its host key and lock file in the user data dir, and a
// SIGTERM ends it with status 0, the lock file gone.
func TestServeStopsCleanlyOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := gossh.NewSignerFromKey(priv)
	keys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(keys, gossh.MarshalAuthorizedKey(signer.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "serve", "--listen", "127.0.0.1:0", "--authorized-keys", keys, "--out", filepath.Join(dir, "results.jsonl"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "QUANTSCOPE_AS_CLI=1", "XDG_DATA_HOME="+filepath.Join(dir, "data"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var log bytes.Buffer
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "listening on") {
			break
		}
	}
	lock := filepath.Join(dir, "data", "quantscope", "serve.lock")
	if info, held, err := serve.ReadLock(lock); err != nil || !held || info.PID != cmd.Process.Pid {
		t.Fatalf("lock while serving: %+v held %v %v\n%s", info, held, err, log.String())
	}
	hostKey := filepath.Join(dir, "data", "quantscope", "ssh_host_ed25519_key")
	if st, err := os.Stat(hostKey); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("host key: %v %v", st, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM\n%s", log.String())
	}
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Fatalf("lock file left: %v", err)
	}
	if !strings.Contains(log.String(), "created host key") || !strings.Contains(log.String(), "stopped; results in") {
		t.Fatalf("log:\n%s", log.String())
	}
}

// TestBenchRefusesWhileServeRunsAStudy holds serve's lock as a running
// server with a study would: bench refuses (75) unless --force.
func TestBenchRefusesWhileServeRunsAStudy(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	path, err := serve.LockPath()
	if err != nil {
		t.Fatal(err)
	}
	l, err := serve.AcquireLock(path, serve.LockInfo{PID: 4242, Listen: ":2222"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	// Serving, no study: bench goes ahead (and fails later on the bogus model).
	_, stderr, code := cli(t, dir, "bench", "--models", "nope.onnx", "--duration", "1s")
	if code == exitBusy || strings.Contains(stderr, "is running a study") {
		t.Fatalf("bench refused while serve was idle: %d %s", code, stderr)
	}
	l.Update(tui.Status{Running: true, Controller: "alice", Pending: 3, Current: "deit-tiny int8"})
	_, stderr, code = cli(t, dir, "bench", "--models", "nope.onnx", "--duration", "1s")
	if code != exitBusy || !strings.Contains(stderr, "quantscope serve (pid 4242, :2222) is running a study on this machine: measuring deit-tiny int8, 3 runs left, alice has control") || !strings.Contains(stderr, "--force") {
		t.Fatalf("bench while serve runs a study: exit %d\n%s", code, stderr)
	}
	_, stderr, code = cli(t, dir, "bench", "--models", "nope.onnx", "--duration", "1s", "--force")
	if code == exitBusy || !strings.Contains(stderr, "--force: running anyway") {
		t.Fatalf("bench --force: exit %d\n%s", code, stderr)
	}
}
