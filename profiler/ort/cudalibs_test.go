package ort

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
	// The target GPU host: PyTorch in a venv whose bin/ is on PATH, not
	// activated.
	venvSite  = "/opt/torch/.venv/lib/python3.12/site-packages"
	venvCu13  = venvSite + "/nvidia/cu13/lib"
	venvCudnn = venvSite + "/nvidia/cudnn/lib"
	ortDir    = "/home/u/quantscope/.ort"
)

// cudaLibs are the files of the CUDA 13 libraries the plugin needs (not the
// driver's libcuda.so.1, nor cuDNN) in dir.
func cudaLibs(dir string) []string {
	return []string{dir + "/libcudart.so.13", dir + "/libcublas.so.13", dir + "/libcublasLt.so.13", dir + "/libcurand.so.10"}
}

// readyFiles are what a ready machine has besides the CUDA libraries: the
// plugin, ONNX Runtime with its bridge library, and the driver.
var readyFiles = []string{
	ortDir + "/libonnxruntime.so", ortDir + "/" + BridgeFile, ortDir + "/cuda/" + CUDAPluginFile,
	"/usr/lib/x86_64-linux-gnu/libcuda.so.1",
}

// readySearch is the search on such a machine, env as given.
func readySearch(env map[string]string) CUDASearch {
	return CUDASearch{Arch: "amd64", WorkDir: "/home/u/quantscope", HomeDir: "/home/u", ORTLibDir: ortDir, Getenv: envMap(env)}
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// TestFindCUDALayouts finds the libraries in each layout a GPU machine
// comes in, on a fake file system, and says where each came from.
func TestFindCUDALayouts(t *testing.T) {
	tests := []struct {
		name       string
		files      []string
		search     CUDASearch
		wantPaths  map[string]string // soname → path ("" = not found)
		wantSource map[string]string // soname → search step
		wantDirs   []string
		wantReady  bool
	}{
		{
			name: "venv on PATH only: PyTorch in /opt/torch/.venv, not activated",
			files: concat(readyFiles, cudaLibs(venvCu13), []string{venvCudnn + "/libcudnn.so.9",
				"/opt/torch/.venv/bin/python3", "/usr/bin/python3", venvSite + "/torch/lib/libtorch_cuda.so"}),
			search: readySearch(map[string]string{"PATH": "/usr/local/bin:/opt/torch/.venv/bin:/usr/bin"}),
			wantPaths: map[string]string{
				"libcudart.so.13":   venvCu13 + "/libcudart.so.13",
				"libcublasLt.so.13": venvCu13 + "/libcublasLt.so.13",
				"libcudnn.so.9":     venvCudnn + "/libcudnn.so.9",
				"libcuda.so.1":      "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
			},
			wantSource: map[string]string{
				"libcudart.so.13": "python3 on PATH: /opt/torch/.venv/bin/python3",
				"libcudnn.so.9":   "python3 on PATH: /opt/torch/.venv/bin/python3",
				"libcuda.so.1":    "/usr/lib/x86_64-linux-gnu",
			},
			wantDirs:  []string{venvCu13, venvCudnn},
			wantReady: true,
		},
		{
			name:       "the same venv off PATH: found under /opt/*/.venv",
			files:      concat(readyFiles, cudaLibs(venvCu13), []string{venvCudnn + "/libcudnn.so.9", "/opt/torch/.venv/bin/python3"}),
			search:     readySearch(map[string]string{"PATH": "/usr/bin"}),
			wantPaths:  map[string]string{"libcudart.so.13": venvCu13 + "/libcudart.so.13", "libcudnn.so.9": venvCudnn + "/libcudnn.so.9"},
			wantSource: map[string]string{"libcurand.so.10": "~/.venv, /opt/*/.venv"},
			wantDirs:   []string{venvCu13, venvCudnn},
			wantReady:  true,
		},
		{
			name: "system Python on PATH: Debian dist-packages under /usr/local",
			files: concat(readyFiles, cudaLibs(cu13Lib), []string{cudnnLib + "/libcudnn.so.9", "/usr/bin/python3",
				torchSite + "/torch/lib/libtorch_cuda.so"}),
			search:     readySearch(map[string]string{"PATH": "/usr/bin"}),
			wantPaths:  map[string]string{"libcublas.so.13": cu13Lib + "/libcublas.so.13", "libcudnn.so.9": cudnnLib + "/libcudnn.so.9"},
			wantSource: map[string]string{"libcublas.so.13": "python3 on PATH: /usr/bin/python3"},
			wantDirs:   []string{cu13Lib, cudnnLib},
			wantReady:  true,
		},
		{
			name: "conda: CUDA packages in /opt/conda/lib, cuDNN wheel in an env",
			files: concat(readyFiles, cudaLibs("/opt/conda/lib"),
				[]string{"/opt/conda/envs/gpu/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn.so.9"}),
			search: readySearch(nil),
			wantPaths: map[string]string{
				"libcudart.so.13": "/opt/conda/lib/libcudart.so.13",
				"libcudnn.so.9":   "/opt/conda/envs/gpu/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn.so.9",
			},
			wantSource: map[string]string{"libcudart.so.13": "/opt/conda*", "libcudnn.so.9": "/opt/conda*"},
			wantDirs:   []string{"/opt/conda/lib", "/opt/conda/envs/gpu/lib/python3.11/site-packages/nvidia/cudnn/lib"},
			wantReady:  true,
		},
		{
			name:  "activated conda env: $CONDA_PREFIX/lib",
			files: concat(readyFiles, cudaLibs("/home/u/miniforge3/envs/ml/lib"), []string{"/home/u/miniforge3/envs/ml/lib/libcudnn.so.9"}),
			search: readySearch(map[string]string{"CONDA_PREFIX": "/home/u/miniforge3/envs/ml",
				"PATH": "/home/u/miniforge3/envs/ml/bin"}),
			wantPaths:  map[string]string{"libcurand.so.10": "/home/u/miniforge3/envs/ml/lib/libcurand.so.10"},
			wantSource: map[string]string{"libcurand.so.10": "$VIRTUAL_ENV, $CONDA_PREFIX, ~/.local"},
			wantDirs:   []string{"/home/u/miniforge3/envs/ml/lib"},
			wantReady:  true,
		},
		{
			name:       "/usr/local/cuda: the CUDA toolkit, cuDNN from NVIDIA's apt package",
			files:      concat(readyFiles, cudaLibs("/usr/local/cuda-13.0/lib64"), []string{"/usr/lib/x86_64-linux-gnu/libcudnn.so.9"}),
			search:     readySearch(nil),
			wantPaths:  map[string]string{"libcublasLt.so.13": "/usr/local/cuda-13.0/lib64/libcublasLt.so.13", "libcudnn.so.9": "/usr/lib/x86_64-linux-gnu/libcudnn.so.9"},
			wantSource: map[string]string{"libcublasLt.so.13": "/usr/local/cuda*/lib64", "libcudnn.so.9": "/usr/lib/x86_64-linux-gnu"},
			wantDirs:   []string{"/usr/local/cuda-13.0/lib64"},
			wantReady:  true,
		},
		{
			name:  "ldconfig: libraries registered in the loader's cache",
			files: concat(readyFiles, cudaLibs("/usr/lib64/cuda13"), []string{"/usr/lib64/cudnn/libcudnn.so.9"}),
			search: func() CUDASearch {
				s := readySearch(nil)
				s.LDCache = ldcache("\tlibcudart.so.13 (libc6,x86-64) => /usr/lib64/cuda13/libcudart.so.13\n" +
					"\tlibcublas.so.13 (libc6,x86-64) => /usr/lib64/cuda13/libcublas.so.13\n" +
					"\tlibcublasLt.so.13 (libc6,x86-64) => /usr/lib64/cuda13/libcublasLt.so.13\n" +
					"\tlibcurand.so.10 (libc6,x86-64) => /usr/lib64/cuda13/libcurand.so.10\n" +
					"\tlibcudnn.so.9 (libc6,x86-64) => /usr/lib64/cudnn/libcudnn.so.9\n" +
					"\tlibcudnn.so.9 (libc6) => /usr/lib/i386-linux-gnu/libcudnn.so.9\n")
				return s
			}(),
			wantPaths:  map[string]string{"libcudart.so.13": "/usr/lib64/cuda13/libcudart.so.13", "libcudnn.so.9": "/usr/lib64/cudnn/libcudnn.so.9"},
			wantSource: map[string]string{"libcudart.so.13": "ld.so.cache", "libcudnn.so.9": "ld.so.cache"},
			// The loader searches its cache by itself: nothing to add.
			wantDirs:  []string{},
			wantReady: true,
		},
		{
			name:       "cuDNN missing: not ready, whatever else is there",
			files:      concat(readyFiles, cudaLibs(venvCu13), []string{"/opt/torch/.venv/bin/python3"}),
			search:     readySearch(map[string]string{"PATH": "/opt/torch/.venv/bin"}),
			wantPaths:  map[string]string{"libcudart.so.13": venvCu13 + "/libcudart.so.13", "libcudnn.so.9": ""},
			wantDirs:   []string{venvCu13},
			wantReady:  false,
			wantSource: map[string]string{"libcudnn.so.9": ""},
		},
		{
			name: "search order: QUANTSCOPE_CUDA_LIBS, LD_LIBRARY_PATH, python3 on PATH, /usr/local/cuda*, ld.so.cache",
			files: concat(readyFiles, cudaLibs(venvCu13), []string{"/opt/torch/.venv/bin/python3", venvCudnn + "/libcudnn.so.9",
				"/opt/pinned/libcudart.so.13",
				"/opt/ld/libcudart.so.13", "/opt/ld/libcublas.so.13",
				"/usr/local/cuda-13.0/lib64/libcublasLt.so.13", "/usr/local/cuda-13.0/lib64/libcurand.so.10",
			}),
			search: func() CUDASearch {
				s := readySearch(map[string]string{
					EnvCUDALibs:       "/opt/pinned:/opt/missing",
					"LD_LIBRARY_PATH": "/opt/ld::relative",
					"PATH":            "/opt/torch/.venv/bin",
				})
				s.LDCache = ldcache("\tlibcurand.so.10 (libc6,x86-64) => /usr/local/cuda-13.0/lib64/libcurand.so.10\n")
				return s
			}(),
			wantPaths: map[string]string{
				"libcudart.so.13":   "/opt/pinned/libcudart.so.13",
				"libcublas.so.13":   "/opt/ld/libcublas.so.13",
				"libcublasLt.so.13": venvCu13 + "/libcublasLt.so.13",
				"libcurand.so.10":   venvCu13 + "/libcurand.so.10",
			},
			wantSource: map[string]string{
				"libcudart.so.13":   "$QUANTSCOPE_CUDA_LIBS",
				"libcublas.so.13":   "LD_LIBRARY_PATH",
				"libcublasLt.so.13": "python3 on PATH: /opt/torch/.venv/bin/python3",
			},
			wantDirs:  []string{"/opt/pinned", "/opt/ld", venvCu13, venvCudnn},
			wantReady: true,
		},
		{
			name: "user installs: virtualenv, ~/.local, ~/.venv; relative env entries resolve against WorkDir",
			files: []string{
				"/work/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.13",
				"/home/u/.local/lib/python3.10/site-packages/nvidia/cublas/lib/libcublas.so.13",
				"/home/u/.local/lib/python3.10/site-packages/nvidia/cublas/lib/libcublasLt.so.13",
				"/home/u/.venv/lib/python3.12/site-packages/torch/lib/libcurand.so.10",
				"/work/plugins/" + CUDAPluginFile,
			},
			search: CUDASearch{
				WorkDir: "/work", HomeDir: "/home/u",
				Getenv: envMap(map[string]string{"VIRTUAL_ENV": "venv", EnvCUDAPlugin: "plugins"}),
			},
			wantPaths: map[string]string{
				"libcudart.so.13":   "/work/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.13",
				"libcublas.so.13":   "/home/u/.local/lib/python3.10/site-packages/nvidia/cublas/lib/libcublas.so.13",
				"libcublasLt.so.13": "/home/u/.local/lib/python3.10/site-packages/nvidia/cublas/lib/libcublasLt.so.13",
				"libcurand.so.10":   "/home/u/.venv/lib/python3.12/site-packages/torch/lib/libcurand.so.10",
				"libcudnn.so.9":     "",
			},
			wantDirs: []string{
				"/work/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib",
				"/home/u/.local/lib/python3.10/site-packages/nvidia/cublas/lib",
				"/home/u/.venv/lib/python3.12/site-packages/torch/lib",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := cudaTree(t, tt.files...)
			s := tt.search
			s.FS = os.DirFS(root)
			info := FindCUDA(s)
			got := map[string]CUDALibrary{}
			for _, l := range info.Libraries {
				got[l.Name] = l
			}
			if len(info.Libraries) != 6 {
				t.Errorf("libraries = %v, want the six the plugin loads", info.Libraries)
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
			if info.Ready() != tt.wantReady {
				t.Errorf("Ready() = %v, want %v (blockers %q)", info.Ready(), tt.wantReady, info.Blockers())
			}
			for _, l := range info.Libraries {
				if len(l.Install) == 0 {
					t.Errorf("%s has no install command", l.Name)
				}
			}
		})
	}
}

// TestCUDAReadiness: each missing piece alone keeps the plugin from being
// ready, and says what to do.
func TestCUDAReadiness(t *testing.T) {
	libs := concat(cudaLibs(venvCu13), []string{venvCudnn + "/libcudnn.so.9", "/opt/torch/.venv/bin/python3"})
	env := map[string]string{"PATH": "/opt/torch/.venv/bin"}
	without := func(drop string) []string {
		var out []string
		for _, f := range concat(readyFiles, libs) {
			if f != drop {
				out = append(out, f)
			}
		}
		return out
	}
	tests := []struct {
		name    string
		files   []string
		search  CUDASearch
		blocker string // "" = ready
	}{
		{"everything there", without(""), readySearch(env), ""},
		{"cuDNN missing", without(venvCudnn + "/libcudnn.so.9"), readySearch(env), "missing libcudnn.so.9"},
		{"bridge library missing", without(ortDir + "/" + BridgeFile), readySearch(env),
			BridgeFile + " missing beside the ONNX Runtime library (" + ortDir + "/" + BridgeFile + "): run `make setup`"},
		{"no ONNX Runtime loaded: the bridge cannot be checked", without(""),
			func() CUDASearch { s := readySearch(env); s.ORTLibDir = ""; return s }(), BridgeFile + " not checked"},
		{"plugin missing", without(ortDir + "/cuda/" + CUDAPluginFile), readySearch(env), "run `make setup-cuda`"},
		{"driver library missing", without("/usr/lib/x86_64-linux-gnu/libcuda.so.1"), readySearch(env), "missing libcuda.so.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.search
			s.FS = os.DirFS(cudaTree(t, tt.files...))
			info := FindCUDA(s)
			b := info.Blockers()
			if tt.blocker == "" {
				if len(b) != 0 || !info.Ready() {
					t.Errorf("blockers %q, want ready", b)
				}
				return
			}
			if info.Ready() || len(b) != 1 || !strings.Contains(b[0], tt.blocker) {
				t.Errorf("ready %v, blockers %q, want one saying %q", info.Ready(), b, tt.blocker)
			}
			if tt.name == "bridge library missing" || tt.name == "cuDNN missing" {
				// ResolveEP refuses --ep cuda for the same reason.
				if _, err := ResolveEP("cuda", Info{Providers: []string{CPUProvider}}, info); err == nil || !strings.Contains(err.Error(), tt.blocker) {
					t.Errorf("ResolveEP: %v", err)
				}
				if c, _ := ResolveEP("auto", Info{Providers: []string{CPUProvider}}, info); c.EP != "cpu" || !strings.Contains(c.Reason, tt.blocker) {
					t.Errorf("auto: %+v", c)
				}
			}
		})
	}
}

func TestFindCUDAPluginSearch(t *testing.T) {
	root := cudaTree(t, "/srv/ort/cuda/"+CUDAPluginFile, "/opt/qs/bin/.ort/cuda/"+CUDAPluginFile, "/work/plugins/"+CUDAPluginFile)
	info := FindCUDA(CUDASearch{FS: os.DirFS(root), ORTLibDir: "/srv/ort", ExeDir: "/opt/qs/bin", WorkDir: "/home/u",
		Getenv: envMap(map[string]string{EnvCUDAPlugin: "/nowhere/" + CUDAPluginFile})})
	if info.PluginPath != "/srv/ort/cuda/"+CUDAPluginFile {
		t.Errorf("plugin = %q (tried %v)", info.PluginPath, info.PluginTried)
	}
	if want := []string{"QUANTSCOPE_CUDA_PLUGIN=/nowhere/" + CUDAPluginFile + ": no such file"}; !reflect.DeepEqual(info.Warnings, want) {
		t.Errorf("warnings = %q, want %q", info.Warnings, want)
	}
	info = FindCUDA(CUDASearch{FS: os.DirFS(root), WorkDir: "/work", Getenv: envMap(map[string]string{EnvCUDAPlugin: "plugins"})})
	if info.PluginPath != "/work/plugins/"+CUDAPluginFile {
		t.Errorf("relative plugin directory: %q", info.PluginPath)
	}
}

func TestFindCUDANothingInstalled(t *testing.T) {
	root := cudaTree(t, "/usr/lib/x86_64-linux-gnu/")
	info := FindCUDA(CUDASearch{FS: os.DirFS(root), Arch: "amd64", LDCache: func() ([]byte, error) { return nil, errors.New("no ldconfig") }})
	if len(info.Missing()) != 6 || len(info.LibraryDirs) != 0 || info.PluginPath != "" || info.Ready() {
		t.Errorf("info %+v", info)
	}
	if want := []string{"ld.so.cache not read: no ldconfig"}; !reflect.DeepEqual(info.Warnings, want) {
		t.Errorf("warnings = %q", info.Warnings)
	}
}

func TestFindCUDASearchedSteps(t *testing.T) {
	root := cudaTree(t, "/usr/local/cuda-13.0/lib64/", "/usr/local/cuda/lib64/", cu13Lib+"/", cudnnLib+"/", "/usr/bin/python3",
		"/opt/torch/.venv/bin/python3")
	info := FindCUDA(CUDASearch{FS: os.DirFS(root), Arch: "arm64", LDCache: ldcache(""),
		Getenv: envMap(map[string]string{"PATH": "/opt/torch/.venv/bin:/usr/bin:/usr/bin"})})
	var sources []string
	for _, s := range info.Searched {
		sources = append(sources, s.Source)
	}
	want := []string{"$QUANTSCOPE_CUDA_LIBS", "LD_LIBRARY_PATH",
		"python3 on PATH: /opt/torch/.venv/bin/python3", "python3 on PATH: /usr/bin/python3",
		"$VIRTUAL_ENV, $CONDA_PREFIX, ~/.local", "~/.venv, /opt/*/.venv", "/opt/conda*",
		"/usr/local/cuda*/lib64", "ld.so.cache", "/usr/lib/aarch64-linux-gnu"}
	if !reflect.DeepEqual(sources, want) {
		t.Errorf("sources = %q, want %q", sources, want)
	}
	if d := info.Searched[3].Dirs; !reflect.DeepEqual(d, []string{cu13Lib, cudnnLib}) {
		t.Errorf("/usr/bin/python3 dirs = %q", d)
	}
	if d := info.Searched[7].Dirs; !reflect.DeepEqual(d, []string{"/usr/local/cuda/lib64", "/usr/local/cuda-13.0/lib64"}) {
		t.Errorf("/usr/local/cuda* dirs = %q", d)
	}
	if got := info.Missing(); len(got) != 6 {
		t.Errorf("missing = %v, want all six libraries", got)
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
	if len(info.Libraries) != 6 || len(info.Searched) == 0 || len(info.PluginTried) == 0 {
		t.Errorf("info = %+v", info)
	}
	t.Logf("plugin %q, missing %v, dirs %v, warnings %v", info.PluginPath, info.Missing(), info.LibraryDirs, info.Warnings)
}
