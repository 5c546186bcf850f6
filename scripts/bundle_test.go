package scripts_test

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bundleFiles writes the synthetic files of a bundle: incompressible bytes
// large enough to need several parts, a small text, an executable.
func bundleFiles(t *testing.T) (dir string, files map[string][]byte) {
	t.Helper()
	dir = t.TempDir()
	rng := rand.New(rand.NewPCG(7, 11))
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	files = map[string][]byte{
		".ort/cuda/libonnxruntime_providers_cuda.so": big,
		".ort/libonnxruntime_providers_shared.so":    []byte("bridge\n"),
		"bin/quantscope": []byte("#!/bin/sh\necho quantscope\n"),
	}
	for name, data := range files {
		mode := os.FileMode(0o644)
		if name == "bin/quantscope" {
			mode = 0o755
		}
		p := filepath.Join(dir, "src", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files
}

func requireTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"bash", "xz", "split", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to test the GPU bundle (Debian: xz-utils, coreutils): %v", tool, err)
		}
	}
}

// runScript runs a script with extra environment and returns its output.
func runScript(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// makeBundle bundles the files of dir/src into dir/bundle with 64 KiB parts.
func makeBundle(t *testing.T, dir string, files map[string][]byte) string {
	t.Helper()
	out := filepath.Join(dir, "bundle")
	args := []string{"gpu-bundle.sh", out}
	for name := range files {
		args = append(args, name+"="+filepath.Join(dir, "src", filepath.FromSlash(name)))
	}
	if msg, err := runScript(t, []string{"PART_SIZE=64K", "XZ_LEVEL=0"}, args...); err != nil {
		t.Fatalf("gpu-bundle.sh: %v\n%s", err, msg)
	}
	return out
}

// TestBundleRoundTrip splits files into parts, moves the bundle elsewhere
// (as it travels to a GPU host), reassembles it and compares SHA-256s.
func TestBundleRoundTrip(t *testing.T) {
	requireTools(t)
	dir, files := bundleFiles(t)
	bundle := makeBundle(t, dir, files)

	parts, _ := filepath.Glob(filepath.Join(bundle, "parts", "*"))
	var cudaParts int
	for _, p := range parts {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 64<<10 {
			t.Errorf("%s is %d bytes, over the 64 KiB part size", filepath.Base(p), st.Size())
		}
		if strings.HasPrefix(filepath.Base(p), "ort__cuda__libonnxruntime_providers_cuda.so.xz.") {
			cudaParts++
		}
	}
	if cudaParts < 5 {
		t.Errorf("the 300 KiB incompressible file is in %d parts, want at least 5", cudaParts)
	}
	manifest, err := os.ReadFile(filepath.Join(bundle, "parts.sha256"))
	if err != nil || strings.Count(string(manifest), "\n") != len(parts) {
		t.Errorf("parts.sha256 lists %d lines for %d parts (%v)", strings.Count(string(manifest), "\n"), len(parts), err)
	}

	moved := filepath.Join(t.TempDir(), "travelled")
	if err := os.Rename(bundle, moved); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(t.TempDir(), "checkout")
	msg, err := runScript(t, nil, filepath.Join(moved, "reassemble.sh"), host)
	if err != nil {
		t.Fatalf("reassemble.sh: %v\n%s", err, msg)
	}
	for name, want := range files {
		p := filepath.Join(host, filepath.FromSlash(name))
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, msg)
		}
		if sha256.Sum256(got) != sha256.Sum256(want) {
			t.Errorf("%s: SHA-256 differs after the round trip", name)
		}
		st, _ := os.Stat(p)
		if exe := st.Mode()&0o111 != 0; exe != (name == "bin/quantscope") {
			t.Errorf("%s: mode %v", name, st.Mode())
		}
		if !strings.Contains(msg, name+" (sha256 ok)") {
			t.Errorf("reassemble did not report %s:\n%s", name, msg)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(host, "*", "*.partial.*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestBundleDamagedOrMissingPart: a part that changed or did not arrive is
// named, and nothing is written.
func TestBundleDamagedOrMissingPart(t *testing.T) {
	requireTools(t)
	dir, files := bundleFiles(t)
	bundle := makeBundle(t, dir, files)
	part := filepath.Join(bundle, "parts", "ort__cuda__libonnxruntime_providers_cuda.so.xz.02")
	data, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(data)
	damaged[100] ^= 0xff
	if err := os.WriteFile(part, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(t.TempDir(), "checkout")
	msg, err := runScript(t, nil, filepath.Join(bundle, "reassemble.sh"), host)
	if err == nil || !strings.Contains(msg, "damaged") || !strings.Contains(msg, "parts/ort__cuda__libonnxruntime_providers_cuda.so.xz.02") {
		t.Errorf("damaged part: err %v\n%s", err, msg)
	}
	if _, err := os.Stat(filepath.Join(host, ".ort")); err == nil {
		t.Error("files written from a damaged bundle")
	}

	if err := os.Remove(part); err != nil {
		t.Fatal(err)
	}
	msg, err = runScript(t, nil, filepath.Join(bundle, "reassemble.sh"), host)
	if err == nil || !strings.Contains(msg, "missing: parts/ort__cuda__libonnxruntime_providers_cuda.so.xz.02") {
		t.Errorf("missing part: err %v\n%s", err, msg)
	}
}

// TestBundleRefusesBadInput: destinations that could escape the checkout
// and sources that do not exist are refused before anything is written.
func TestBundleRefusesBadInput(t *testing.T) {
	requireTools(t)
	dir, _ := bundleFiles(t)
	src := filepath.Join(dir, "src", "bin", "quantscope")
	for _, tt := range []struct{ spec, want string }{
		{"/etc/passwd=" + src, "plain relative path"},
		{"../x=" + src, "plain relative path"},
		{"a/../../x=" + src, "plain relative path"},
		{"bin/q s=" + src, "only letters"},
		{"bin/quantscope=" + filepath.Join(dir, "nope"), "no such file"},
		{"bin/quantscope", "want DEST=SRC"},
	} {
		out := filepath.Join(dir, "bad")
		msg, err := runScript(t, nil, "gpu-bundle.sh", out, tt.spec)
		if err == nil || !strings.Contains(msg, tt.want) {
			t.Errorf("%s: err %v, output %q, want %q", tt.spec, err, msg, tt.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: bundle directory written", tt.spec)
		}
	}
}
