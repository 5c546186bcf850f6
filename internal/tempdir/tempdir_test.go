package tempdir

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be a process that makes a directory,
// prints its path and waits to be killed.
func TestMain(m *testing.M) {
	if parent := os.Getenv("QS_TEMPDIR_OWNER"); parent != "" {
		d, err := New(parent, ".build.tmp-")
		if err != nil {
			os.Exit(1)
		}
		os.WriteFile(filepath.Join(d.Path, "model.onnx"), []byte("half a model"), 0o644)
		os.Stdout.WriteString(d.Path + "\n")
		time.Sleep(time.Hour)
	}
	os.Exit(m.Run())
}

// TestSweepRemovesWhatAKilledProcessLeft: kill -9 a process while it
// holds a temporary directory; Sweep removes the directory at once, while
// a directory whose owner runs (this process) stays.
func TestSweepRemovesWhatAKilledProcessLeft(t *testing.T) {
	parent := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "QS_TEMPDIR_OWNER="+parent)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	dead := strings.TrimSpace(line)
	mine, err := New(parent, ".mine.tmp-")
	if err != nil {
		t.Fatal(err)
	}
	match := Prefixed("", ".tmp-")
	if got := Sweep(parent, match, 24*time.Hour); len(got) != 0 {
		t.Fatalf("swept %v while both owners run", got)
	}
	cmd.Process.Kill()
	cmd.Wait()
	got := Sweep(parent, match, 24*time.Hour)
	if len(got) != 1 || got[0] != dead {
		t.Errorf("swept %v, want only %s", got, dead)
	}
	if _, err := os.Stat(mine.Path); err != nil {
		t.Errorf("this process's directory was removed: %v", err)
	}

	// Disowned (about to be renamed into place): kept until it is old.
	if err := mine.Disown(); err != nil {
		t.Fatal(err)
	}
	if got := Sweep(parent, match, time.Hour); len(got) != 0 {
		t.Errorf("swept a fresh disowned directory: %v", got)
	}
	if _, err := os.Stat(filepath.Join(mine.Path, OwnerFile)); !os.IsNotExist(err) {
		t.Errorf("owner file left after Disown: %v", err)
	}
	mine.Remove()
}
