package ort

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// requireORT returns the loaded runtime or skips; under `make test`
// (QUANTSCOPE_REQUIRE_ORT=1) a missing library fails the test instead.
func requireORT(t *testing.T) Info {
	t.Helper()
	info := Probe("")
	if !info.OK() {
		if os.Getenv("QUANTSCOPE_REQUIRE_ORT") != "" {
			t.Fatalf("ONNX Runtime required but not loaded: %v", info.Err)
		}
		t.Skipf("ONNX Runtime not installed (run `make setup`): %v", info.Err)
	}
	return info
}

func TestCandidatesOrder(t *testing.T) {
	tests := []struct {
		name string
		env  searchEnv
		want []string
	}{
		{
			name: "explicit flag wins and ends the search",
			env:  searchEnv{explicit: "/x/lib.so", envLib: "/y/lib.so", exe: "/opt/qs/bin/quantscope", cwd: "/w"},
			want: []string{"/x/lib.so"},
		},
		{
			name: "environment variable next",
			env:  searchEnv{envLib: "/y/lib.so", cwd: "/w"},
			want: []string{"/y/lib.so"},
		},
		{
			name: "binary, working dir upwards, data dir, system",
			env:  searchEnv{exe: "/opt/qs/bin/quantscope", cwd: "/w/sub", dataDir: "/home/u/.local/share"},
			want: []string{
				"/opt/qs/bin/.ort/libonnxruntime.so",
				"/opt/qs/.ort/libonnxruntime.so",
				"/w/sub/.ort/libonnxruntime.so",
				"/w/.ort/libonnxruntime.so",
				"/.ort/libonnxruntime.so",
				"/home/u/.local/share/quantscope/ort/libonnxruntime.so",
				"/usr/local/lib/libonnxruntime.so",
				"/usr/lib/libonnxruntime.so",
				"/usr/lib/x86_64-linux-gnu/libonnxruntime.so",
				"/usr/lib/aarch64-linux-gnu/libonnxruntime.so",
				"libonnxruntime.so",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range candidates(tt.env) {
				got = append(got, c.path)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("candidates:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLoadFailuresNameThePathAndTheFix(t *testing.T) {
	dir := t.TempDir()
	notORT := filepath.Join(dir, "libnotort.so")
	// A real shared library that is not ONNX Runtime: the providers_shared helper
	// ships with ORT but has no OrtGetApiBase. Fall back to libm when absent.
	cands := []string{"/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib64/libm.so.6"}
	for _, c := range cands {
		if b, err := os.ReadFile(c); err == nil {
			if err := os.WriteFile(notORT, b, 0o644); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	garbage := filepath.Join(dir, "garbage.so")
	if err := os.WriteFile(garbage, []byte("not a shared object"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"missing file", filepath.Join(dir, "nope.so"), "not found"},
		{"directory", dir, "is a directory"},
		{"not an ELF file", garbage, "dlopen"},
		{"a library that is not ONNX Runtime", notORT, "not an ONNX Runtime library"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.path == notORT {
				if _, err := os.Stat(notORT); err != nil {
					t.Skip("no libm to copy on this system")
				}
			}
			info, _ := load(searchEnv{explicit: tt.path})
			if info.OK() {
				t.Fatalf("load(%q) succeeded", tt.path)
			}
			if !errors.Is(info.Err, ErrNoLibrary) {
				t.Errorf("error %v is not ErrNoLibrary", info.Err)
			}
			msg := info.Err.Error()
			for _, w := range []string{tt.path, tt.want, "make setup", "--ort-lib", EnvLibrary} {
				if !strings.Contains(msg, w) {
					t.Errorf("error message lacks %q:\n%s", w, msg)
				}
			}
			if len(info.Tried) != 1 {
				t.Errorf("explicit path must end the search, tried %q", info.Tried)
			}
			if maps, err := os.ReadFile("/proc/self/maps"); err == nil && strings.Contains(string(maps), tt.path) {
				t.Errorf("the rejected library %s is still mapped: its dlopen handle was not closed", tt.path)
			}
		})
	}
}

func TestEnvironmentVariableIsNamedInError(t *testing.T) {
	info, _ := load(searchEnv{envLib: "/nonexistent/libonnxruntime.so"})
	if info.OK() || !strings.Contains(info.Err.Error(), "$"+EnvLibrary) {
		t.Fatalf("want an error naming $%s, got %v", EnvLibrary, info.Err)
	}
}

func TestProbeLoadsTheRuntime(t *testing.T) {
	info := requireORT(t)
	if !strings.HasPrefix(info.Version, "1.") {
		t.Errorf("version %q does not look like an ONNX Runtime version", info.Version)
	}
	if !info.HasProvider("CPUExecutionProvider") {
		t.Errorf("providers %q lack CPUExecutionProvider", info.Providers)
	}
	if again := Probe("/somewhere/else.so"); again.LibraryPath != info.LibraryPath {
		t.Errorf("second Probe returned %q, want the already-loaded %q", again.LibraryPath, info.LibraryPath)
	}
}

// TestCAPITableLayout fails loudly when the OrtApi indices in capi.go stop
// matching the library: each wrapped entry must answer as its name says.
func TestCAPITableLayout(t *testing.T) {
	info := requireORT(t)
	env.mu.Lock()
	api := env.api
	env.mu.Unlock()
	if api == nil {
		t.Fatal("runtime loaded but no C API handle kept")
	}
	if api.version != info.Version {
		t.Errorf("OrtApiBase version %q != onnxruntime_go version %q", api.version, info.Version)
	}
	if bi := api.buildInfo(); !strings.HasPrefix(bi, "ORT Build Info") {
		t.Errorf("OrtApi[%d] (GetBuildInfoString) returned %q: the table layout does not match", idxGetBuildInfoString, bi)
	}
	provs, err := api.availableProviders()
	if err != nil {
		t.Fatalf("OrtApi[%d] (GetAvailableProviders): %v", idxGetAvailableProviders, err)
	}
	if len(provs) == 0 || provs[len(provs)-1] != "CPUExecutionProvider" {
		t.Errorf("GetAvailableProviders = %q: want a list ending in CPUExecutionProvider", provs)
	}
}
