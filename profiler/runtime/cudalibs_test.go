package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseLDConfig(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want []ldConfigEntry
	}{
		{"typical", "3 libs found in cache `/etc/ld.so.cache'\n" +
			"\tlibcudart.so.13 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.13\n" +
			"\tlibz.so.1 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libz.so.1\n" +
			"\tlibz.so.1 (libc6) => /lib/i386-linux-gnu/libz.so.1\n",
			[]ldConfigEntry{
				{"libcudart.so.13", "libc6,x86-64", "/usr/local/cuda/lib64/libcudart.so.13"},
				{"libz.so.1", "libc6,x86-64, OS ABI: Linux 3.2.0", "/lib/x86_64-linux-gnu/libz.so.1"},
				{"libz.so.1", "libc6", "/lib/i386-linux-gnu/libz.so.1"},
			}},
		{"hwcap and aarch64", "\tlibm.so.6 (libc6,AArch64, hwcap: 0x0000000000000010) => /lib/aarch64-linux-gnu/libm.so.6\n",
			[]ldConfigEntry{{"libm.so.6", "libc6,AArch64, hwcap: 0x0000000000000010", "/lib/aarch64-linux-gnu/libm.so.6"}}},
		{"no flags", "libfoo.so => /opt/foo/libfoo.so", []ldConfigEntry{{"libfoo.so", "", "/opt/foo/libfoo.so"}}},
		{"malformed lines are skipped", "garbage\n\n => /no/name\nlibx.so (libc6) => \n\tlib y.so (libc6) => /y\n", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseLDConfig(tt.out); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseLDConfig =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

// cudaTree creates files (paths relative to a fake root) in a temp dir and
// returns the root.
func cudaTree(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f))
		if strings.HasSuffix(f, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("ELF"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func ldcache(out string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(out), nil }
}

const (
	torchSite = "/usr/local/lib/python3.12/dist-packages"
	cu13Lib   = torchSite + "/nvidia/cu13/lib"
	cudnnLib  = torchSite + "/nvidia/cudnn/lib"
)

func TestFindCUDA(t *testing.T) {
	allIn := func(dir string) []string {
		return []string{dir + "/libcudart.so.13", dir + "/libcublas.so.13", dir + "/libcublasLt.so.13", dir + "/libcurand.so.10"}
	}
	tests := []struct {
		name       string
		files      []string
		search     CUDASearch
		wantPlugin string
		wantPaths  map[string]string // soname → path ("" = not found)
		wantSource map[string]string // soname → search step (optional)
		wantDirs   []string
		wantWarn   []string
	}{
		{
			name: "GPU box: CUDA 13 libraries from a PyTorch install, cuDNN beside",
			files: append(allIn(cu13Lib), cudnnLib+"/libcudnn.so.9", torchSite+"/torch/lib/libtorch_cuda.so",
				"/home/u/quantscope/.ort/cuda/"+CUDAPluginFile),
			search:     CUDASearch{WorkDir: "/home/u/quantscope", Getenv: envMap(nil)},
			wantPlugin: "/home/u/quantscope/.ort/cuda/" + CUDAPluginFile,
			wantPaths: map[string]string{
				"libcudart.so.13":   cu13Lib + "/libcudart.so.13",
				"libcublas.so.13":   cu13Lib + "/libcublas.so.13",
				"libcublasLt.so.13": cu13Lib + "/libcublasLt.so.13",
				"libcurand.so.10":   cu13Lib + "/libcurand.so.10",
				"libcudnn.so.9":     cudnnLib + "/libcudnn.so.9",
			},
			wantSource: map[string]string{"libcudart.so.13": "python site-packages (nvidia/*/lib, torch/lib)"},
			wantDirs:   []string{cu13Lib, cudnnLib},
		},
		{
			name: "search order: QUANTSCOPE_CUDA_LIBS, LD_LIBRARY_PATH, ld.so.cache, /usr/local/cuda*, multiarch, python",
			files: append(allIn(cu13Lib),
				"/opt/pinned/libcudart.so.13",
				"/opt/ld/libcudart.so.13", "/opt/ld/libcublas.so.13",
				"/usr/local/cuda-13.0/lib64/libcublasLt.so.13", "/usr/local/cuda-13.0/lib64/libcublas.so.13",
				"/usr/local/cuda-12.4/lib64/libcurand.so.10",
				"/usr/lib/x86_64-linux-gnu/libcurand.so.10",
				"/usr/lib/x86_64-linux-gnu/libcudnn.so.9",
			),
			search: CUDASearch{
				Arch: "amd64",
				Getenv: envMap(map[string]string{
					EnvCUDALibs:       "/opt/pinned:/opt/missing",
					"LD_LIBRARY_PATH": "/opt/ld::relative",
				}),
				LDCache: ldcache("\tlibcublasLt.so.13 (libc6,x86-64) => /usr/local/cuda-13.0/lib64/libcublasLt.so.13\n" +
					"\tlibcudnn.so.9 (libc6) => /usr/lib/i386-linux-gnu/libcudnn.so.9\n"),
			},
			wantPaths: map[string]string{
				"libcudart.so.13":   "/opt/pinned/libcudart.so.13",
				"libcublas.so.13":   "/opt/ld/libcublas.so.13",
				"libcublasLt.so.13": "/usr/local/cuda-13.0/lib64/libcublasLt.so.13",
				"libcurand.so.10":   "/usr/local/cuda-12.4/lib64/libcurand.so.10",
				"libcudnn.so.9":     "/usr/lib/x86_64-linux-gnu/libcudnn.so.9",
			},
			wantSource: map[string]string{
				"libcudart.so.13":   "$QUANTSCOPE_CUDA_LIBS",
				"libcublas.so.13":   "LD_LIBRARY_PATH",
				"libcublasLt.so.13": "ld.so.cache",
				"libcurand.so.10":   "/usr/local/cuda*/lib64",
				"libcudnn.so.9":     "/usr/lib/x86_64-linux-gnu",
			},
			// Directories the loader searches by itself (cache, multiarch) are left out.
			wantDirs: []string{"/opt/pinned", "/opt/ld", "/usr/local/cuda-12.4/lib64"},
			wantWarn: []string{"QUANTSCOPE_CUDA_LIBS entry /opt/missing: no such directory"},
		},
		{
			name: "user installs: virtualenv, ~/.local, conda env; relative env entries resolve against WorkDir",
			files: []string{
				"/work/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.13",
				"/home/u/.local/lib/python3.10/site-packages/nvidia/cublas/lib/libcublas.so.13",
				"/home/u/.local/lib/python3.10/site-packages/nvidia/cublas/lib/libcublasLt.so.13",
				"/opt/conda/envs/gpu/lib/python3.12/site-packages/torch/lib/libcurand.so.10",
				"/work/plugins/" + CUDAPluginFile,
			},
			search: CUDASearch{
				WorkDir: "/work", HomeDir: "/home/u",
				Getenv: envMap(map[string]string{"VIRTUAL_ENV": "venv", EnvCUDAPlugin: "plugins"}),
			},
			wantPlugin: "/work/plugins/" + CUDAPluginFile,
			wantPaths: map[string]string{
				"libcudart.so.13":   "/work/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.13",
				"libcublas.so.13":   "/home/u/.local/lib/python3.10/site-packages/nvidia/cublas/lib/libcublas.so.13",
				"libcublasLt.so.13": "/home/u/.local/lib/python3.10/site-packages/nvidia/cublas/lib/libcublasLt.so.13",
				"libcurand.so.10":   "/opt/conda/envs/gpu/lib/python3.12/site-packages/torch/lib/libcurand.so.10",
				"libcudnn.so.9":     "",
			},
			wantDirs: []string{
				"/work/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib",
				"/home/u/.local/lib/python3.10/site-packages/nvidia/cublas/lib",
				"/opt/conda/envs/gpu/lib/python3.12/site-packages/torch/lib",
			},
		},
		{
			name:  "plugin: QUANTSCOPE_CUDA_PLUGIN wins, then beside the ORT library, binary, working directory",
			files: []string{"/srv/ort/cuda/" + CUDAPluginFile, "/opt/qs/bin/.ort/cuda/" + CUDAPluginFile},
			search: CUDASearch{
				ORTLibDir: "/srv/ort", ExeDir: "/opt/qs/bin", WorkDir: "/home/u",
				Getenv: envMap(map[string]string{EnvCUDAPlugin: "/nowhere/" + CUDAPluginFile}),
			},
			wantPlugin: "/srv/ort/cuda/" + CUDAPluginFile,
			wantPaths:  map[string]string{"libcudart.so.13": ""},
			wantDirs:   []string{},
			wantWarn:   []string{"QUANTSCOPE_CUDA_PLUGIN=/nowhere/" + CUDAPluginFile + ": no such file"},
		},
		{
			name:      "nothing installed",
			files:     []string{"/usr/lib/x86_64-linux-gnu/"},
			search:    CUDASearch{Arch: "amd64", LDCache: func() ([]byte, error) { return nil, errors.New("no ldconfig") }},
			wantPaths: map[string]string{"libcudart.so.13": "", "libcudnn.so.9": ""},
			wantDirs:  []string{},
			wantWarn:  []string{"ld.so.cache not read: no ldconfig"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := cudaTree(t, tt.files...)
			s := tt.search
			s.FS = os.DirFS(root)
			info := FindCUDA(s)

			if info.PluginPath != tt.wantPlugin {
				t.Errorf("plugin = %q, want %q (tried %v)", info.PluginPath, tt.wantPlugin, info.PluginTried)
			}
			got := map[string]CUDALibrary{}
			for _, l := range info.Libraries {
				got[l.Name] = l
			}
			if len(info.Libraries) != 5 {
				t.Errorf("libraries = %v, want the five CUDA 13 libraries", info.Libraries)
			}
			for name, want := range tt.wantPaths {
				if got[name].Path != want {
					t.Errorf("%s = %q, want %q", name, got[name].Path, want)
				}
			}
			for name, want := range tt.wantSource {
				if got[name].Source != want {
					t.Errorf("%s source = %q, want %q", name, got[name].Source, want)
				}
			}
			if !reflect.DeepEqual(info.LibraryDirs, tt.wantDirs) {
				t.Errorf("library dirs = %q, want %q", info.LibraryDirs, tt.wantDirs)
			}
			if !reflect.DeepEqual(info.Warnings, tt.wantWarn) {
				t.Errorf("warnings = %q, want %q", info.Warnings, tt.wantWarn)
			}
			ready := tt.wantPlugin != "" && tt.wantPaths["libcudart.so.13"] != ""
			if info.Ready() != ready {
				t.Errorf("Ready() = %v, want %v (missing %v)", info.Ready(), ready, info.Missing())
			}
		})
	}
}

func TestFindCUDASearchedSteps(t *testing.T) {
	root := cudaTree(t, "/usr/local/cuda-13.0/lib64/", "/usr/local/cuda/lib64/", cu13Lib+"/", cudnnLib+"/")
	info := FindCUDA(CUDASearch{FS: os.DirFS(root), Arch: "arm64", Getenv: envMap(nil), LDCache: ldcache("")})
	var sources []string
	for _, s := range info.Searched {
		sources = append(sources, s.Source)
	}
	want := []string{"$QUANTSCOPE_CUDA_LIBS", "LD_LIBRARY_PATH", "ld.so.cache", "/usr/local/cuda*/lib64",
		"/usr/lib/aarch64-linux-gnu", "python site-packages (nvidia/*/lib, torch/lib)"}
	if !reflect.DeepEqual(sources, want) {
		t.Errorf("sources = %q, want %q", sources, want)
	}
	if d := info.Searched[3].Dirs; !reflect.DeepEqual(d, []string{"/usr/local/cuda/lib64", "/usr/local/cuda-13.0/lib64"}) {
		t.Errorf("/usr/local/cuda* dirs = %q", d)
	}
	if d := info.Searched[5].Dirs; !reflect.DeepEqual(d, []string{cu13Lib, cudnnLib}) {
		t.Errorf("python dirs = %q", d)
	}
	if got := info.Missing(); len(got) != 4 {
		t.Errorf("missing = %v, want the four required libraries", got)
	}
}

func TestFindCUDAPluginOrder(t *testing.T) {
	root := cudaTree(t, "/opt/qs/.ort/cuda/"+CUDAPluginFile, "/home/u/.ort/cuda/"+CUDAPluginFile)
	info := FindCUDA(CUDASearch{
		FS: os.DirFS(root), ORTLibDir: "/srv/ort", ExeDir: "/opt/qs/bin", WorkDir: "/home/u",
		Getenv: envMap(map[string]string{EnvCUDAPlugin: "/env/" + CUDAPluginFile}),
	})
	wantTried := []string{
		"/env/" + CUDAPluginFile,
		"/srv/ort/cuda/" + CUDAPluginFile,
		"/opt/qs/bin/.ort/cuda/" + CUDAPluginFile,
		"/opt/qs/.ort/cuda/" + CUDAPluginFile,
		"/home/u/.ort/cuda/" + CUDAPluginFile,
	}
	if !reflect.DeepEqual(info.PluginTried, wantTried) {
		t.Errorf("tried = %q, want %q", info.PluginTried, wantTried)
	}
	if info.PluginPath != "/opt/qs/.ort/cuda/"+CUDAPluginFile {
		t.Errorf("plugin = %q, want the one in the binary's parent (bin/quantscope in a checkout)", info.PluginPath)
	}
}

func TestCUDAInfoLDLibraryPath(t *testing.T) {
	tests := []struct {
		dirs     []string
		existing string
		want     string
	}{
		{[]string{"/a", "/b"}, "/c:/d", "/a:/b:/c:/d"},
		{[]string{"/a"}, "", "/a"},
		{nil, "/c", "/c"},
		{nil, "", ""},
	}
	for _, tt := range tests {
		if got := (CUDAInfo{LibraryDirs: tt.dirs}).LDLibraryPath(tt.existing); got != tt.want {
			t.Errorf("LDLibraryPath(%q, %q) = %q, want %q", tt.dirs, tt.existing, got, tt.want)
		}
	}
}

func TestCUDAGlobEscape(t *testing.T) {
	root := cudaTree(t, "/home/we*ird[1]/.local/lib/python3.12/site-packages/nvidia/cu13/lib/libcudart.so.13")
	info := FindCUDA(CUDASearch{FS: os.DirFS(root), HomeDir: "/home/we*ird[1]"})
	if p := info.Libraries[0].Path; p != "/home/we*ird[1]/.local/lib/python3.12/site-packages/nvidia/cu13/lib/libcudart.so.13" {
		t.Errorf("libcudart = %q", p)
	}
}

// TestFindCUDAOnThisMachine runs the real search: it must not fail, whatever
// is installed.
func TestFindCUDAOnThisMachine(t *testing.T) {
	info := FindCUDA(SystemCUDASearch())
	if len(info.Libraries) != 5 || len(info.Searched) == 0 || len(info.PluginTried) == 0 {
		t.Errorf("info = %+v", info)
	}
	t.Logf("plugin %q, missing %v, dirs %v, warnings %v", info.PluginPath, info.Missing(), info.LibraryDirs, info.Warnings)
}
