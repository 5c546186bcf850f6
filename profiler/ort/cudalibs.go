package ort

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// CUDAPluginFile is the file name of ONNX Runtime's CUDA plugin execution
// provider library, installed by `make setup-cuda` into .ort/cuda/.
const CUDAPluginFile = "libonnxruntime_providers_cuda.so"

// BridgeFile is ONNX Runtime's provider bridge library. The CUDA plugin is
// ONNX Runtime's shared-library CUDA provider (it exports GetProvider beside
// CreateEpFactories and imports Provider_GetHost), so ONNX Runtime loads
// this library from its own directory before the plugin: it must sit
// beside libonnxruntime.so.
const BridgeFile = "libonnxruntime_providers_shared.so"

// Environment variables FindCUDA reads.
const (
	// EnvCUDAPlugin names the CUDA plugin library (or the directory holding it).
	EnvCUDAPlugin = "QUANTSCOPE_CUDA_PLUGIN"
	// EnvCUDALibs is a colon-separated list of directories searched first for
	// the CUDA libraries.
	EnvCUDALibs = "QUANTSCOPE_CUDA_LIBS"
)

// CUDALibrary is one shared library the CUDA plugin needs, and where it was
// found.
type CUDALibrary struct {
	Name    string `json:"name"`             // the soname, e.g. "libcublasLt.so.13"
	Purpose string `json:"purpose"`          // e.g. "cuBLASLt"
	Path    string `json:"path"`             // "" when not found
	Source  string `json:"source,omitempty"` // the search step that found it, e.g. "LD_LIBRARY_PATH"
	// Install is the command that installs it: NVIDIA's apt package, or the
	// pip wheel for the Python on PATH.
	Install []string `json:"install,omitempty"`
}

// CUDASearchStep is one step of the library search and the directories it
// contributed, in the order they were searched.
type CUDASearchStep struct {
	Source string   `json:"source"` // e.g. "$QUANTSCOPE_CUDA_LIBS", "ld.so.cache", "/usr/local/cuda*/lib64"
	Dirs   []string `json:"dirs"`
}

// CUDAInfo is what FindCUDA found: the plugin, the bridge library, each
// library, and the directories a worker process must put on
// LD_LIBRARY_PATH before it starts.
type CUDAInfo struct {
	PluginPath  string   `json:"plugin_path"`  // "" when not found
	PluginTried []string `json:"plugin_tried"` // every plugin path looked at, in order
	// BridgePath is libonnxruntime_providers_shared.so beside the ONNX
	// Runtime library ("" when it is not there); BridgeWant is where it must
	// be ("" when no ONNX Runtime library is known).
	BridgePath string `json:"bridge_path"`
	BridgeWant string `json:"bridge_want,omitempty"`
	// Libraries lists what the plugin loads, in a fixed order:
	// libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10,
	// libcudnn.so.9 and the driver's libcuda.so.1. All are required: ONNX
	// Runtime's CUDA stream creates a cuDNN handle whatever the model.
	Libraries []CUDALibrary `json:"libraries"`
	// LibraryDirs are the directories holding found libraries that the
	// dynamic loader would not search by itself: prepend them to a worker's
	// LD_LIBRARY_PATH.
	LibraryDirs []string         `json:"library_dirs"`
	Searched    []CUDASearchStep `json:"searched"`
	// Warnings notes search problems worth showing, e.g. an environment
	// variable naming a directory that does not exist.
	Warnings []string `json:"warnings,omitempty"`
}

// Missing returns the names of the libraries that were not found.
func (c CUDAInfo) Missing() []string {
	var out []string
	for _, l := range c.Libraries {
		if l.Path == "" {
			out = append(out, l.Name)
		}
	}
	return out
}

// Blockers says what keeps the CUDA plugin from running, each with its
// fix; empty when the plugin, the bridge library and every library were
// found.
func (c CUDAInfo) Blockers() []string {
	var out []string
	if c.PluginPath == "" {
		out = append(out, "CUDA plugin not found: run `make setup-cuda` (or set "+EnvCUDAPlugin+")")
	}
	switch {
	case c.BridgeWant == "":
		out = append(out, BridgeFile+" not checked: no ONNX Runtime library loaded")
	case c.BridgePath == "":
		out = append(out, BridgeFile+" missing beside the ONNX Runtime library ("+c.BridgeWant+"): run `make setup`, or copy it from the same ONNX Runtime release")
	}
	if missing := c.Missing(); len(missing) > 0 {
		out = append(out, "missing "+strings.Join(missing, ", "))
	}
	return out
}

// Ready reports whether the plugin, the bridge library and every library
// were found.
func (c CUDAInfo) Ready() bool { return len(c.Blockers()) == 0 }

// LDLibraryPath returns the LD_LIBRARY_PATH value for a worker process:
// LibraryDirs followed by existing (the parent's value, may be "").
func (c CUDAInfo) LDLibraryPath(existing string) string {
	parts := append([]string(nil), c.LibraryDirs...)
	if existing != "" {
		parts = append(parts, existing)
	}
	return strings.Join(parts, ":")
}

// CUDASearch says where FindCUDA looks. All paths are absolute paths inside
// FS. A zero field switches its part of the search off, except FS and Arch;
// SystemCUDASearch fills every field for the running process.
type CUDASearch struct {
	// FS is the file system searched, rooted at "/"; nil means the real one.
	// Tests pass os.DirFS(tempDir) and name paths as if tempDir were "/".
	FS fs.FS
	// Getenv reads QUANTSCOPE_CUDA_PLUGIN, QUANTSCOPE_CUDA_LIBS,
	// LD_LIBRARY_PATH, PATH, VIRTUAL_ENV and CONDA_PREFIX; nil reads nothing.
	Getenv func(string) string
	// LDCache returns the output of `ldconfig -p`; nil skips the cache.
	LDCache func() ([]byte, error)
	// ExeDir is the directory of the running binary (for its .ort/cuda/).
	ExeDir string
	// WorkDir is the working directory (for its .ort/cuda/ and relative
	// entries in the environment's path lists).
	WorkDir string
	// HomeDir is the user's home (for ~/.venv and the user site-packages).
	HomeDir string
	// ORTLibDir is the directory of the ONNX Runtime library that loaded;
	// its cuda/ subdirectory is searched for the plugin.
	ORTLibDir string
	// Arch is the GOARCH whose libraries count ("" means this process's):
	// it picks the ld.so.cache entries and the multiarch directory.
	Arch string
}

// SystemCUDASearch returns the search for the running process: the real file
// system and environment, `ldconfig -p`, the binary's and working
// directories and the home directory. Set ORTLibDir on the result when the
// ONNX Runtime library is known.
func SystemCUDASearch() CUDASearch {
	s := CUDASearch{Getenv: os.Getenv, LDCache: runLDConfig}
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		s.ExeDir = filepath.Dir(exe)
	}
	s.WorkDir, _ = os.Getwd()
	s.HomeDir, _ = os.UserHomeDir()
	return s
}

// PluginCUDAMajor is the CUDA major version the CUDA plugin (and the
// libraries below) are built for: a driver that supports less cannot run it.
const PluginCUDAMajor = 13

// cudaLibrarySpecs lists the libraries the CUDA 13 plugin loads, in report
// order, with the commands that install each: NVIDIA's apt packages (from
// its CUDA repository) or the pip wheels (CUDA 13 wheels drop the -cu13
// suffix, except cuDNN's).
func cudaLibrarySpecs() []CUDALibrary {
	pip := func(pkg string) string { return "python3 -m pip install '" + pkg + "'" }
	return []CUDALibrary{
		{Name: "libcudart.so.13", Purpose: "CUDA runtime",
			Install: []string{"apt-get install cuda-cudart-13-0", pip("nvidia-cuda-runtime==13.*")}},
		{Name: "libcublas.so.13", Purpose: "cuBLAS",
			Install: []string{"apt-get install libcublas-13-0", pip("nvidia-cublas==13.*")}},
		{Name: "libcublasLt.so.13", Purpose: "cuBLASLt",
			Install: []string{"apt-get install libcublas-13-0", pip("nvidia-cublas==13.*")}},
		{Name: "libcurand.so.10", Purpose: "cuRAND",
			Install: []string{"apt-get install libcurand-13-0", pip("nvidia-curand==10.*")}},
		{Name: "libcudnn.so.9", Purpose: "cuDNN 9",
			Install: []string{"apt-get install libcudnn9-cuda-13", pip("nvidia-cudnn-cu13==9.*")}},
		{Name: "libcuda.so.1", Purpose: "CUDA driver",
			Install: []string{"install the NVIDIA driver (580 or newer; in a container, run it with the NVIDIA container runtime)"}},
	}
}

// cudaSourceLDCache is the search step of the dynamic loader's cache.
const cudaSourceLDCache = "ld.so.cache"

// FindCUDA looks for the CUDA plugin, the bridge library beside ONNX
// Runtime, and the CUDA 13 and cuDNN 9 libraries the plugin loads.
//
// The plugin is looked for at $QUANTSCOPE_CUDA_PLUGIN, then cuda/ beside the
// ONNX Runtime library, then .ort/cuda/ beside the binary, in the binary's
// parent directory (bin/quantscope in a checkout) and in the working
// directory. Each library is looked for, first match wins, in this order:
//
//  1. $QUANTSCOPE_CUDA_LIBS (colon-separated directories)
//  2. LD_LIBRARY_PATH
//  3. the site-packages of every python3 on PATH, in PATH order, whether or
//     not its virtualenv is activated (<prefix>/lib/python3*/site-packages
//     of <prefix>/bin/python3, and dist-packages), of $VIRTUAL_ENV and
//     $CONDA_PREFIX (with $CONDA_PREFIX/lib), and the user's
//     ~/.local/lib/python3*/site-packages
//  4. ~/.venv and /opt/*/.venv
//  5. /opt/conda* (lib/, and the site-packages of the base and envs/*)
//  6. /usr/local/cuda*/lib64
//  7. the dynamic loader's cache (`ldconfig -p`)
//  8. the distribution's multiarch directory (/usr/lib/x86_64-linux-gnu)
//
// In a site-packages, the directories searched are those of NVIDIA's wheels
// and PyTorch: nvidia/*/lib (nvidia/cu13/lib, nvidia/cudnn/lib, ...) and
// torch/lib.
func FindCUDA(opts CUDASearch) CUDAInfo {
	f := cudaFinder{
		opts:          opts,
		fsys:          opts.FS,
		seen:          map[string]bool{},
		loaderDefault: map[string]bool{cudaSourceLDCache: true},
	}
	if f.fsys == nil {
		f.fsys = os.DirFS("/")
	}
	if f.opts.Arch == "" {
		f.opts.Arch = runtime.GOARCH
	}
	info := CUDAInfo{Libraries: cudaLibrarySpecs(), LibraryDirs: []string{}, PluginTried: []string{}}
	info.PluginPath, info.PluginTried = f.findPlugin(&info.Warnings)
	if dir := f.absolute(opts.ORTLibDir); dir != "" {
		info.BridgeWant = path.Join(dir, BridgeFile)
		if f.isFile(info.BridgeWant) {
			info.BridgePath = info.BridgeWant
		}
	}

	steps := f.searchSteps(info.Libraries, &info.Warnings)
	info.Searched = steps
	extra := map[string]bool{}
	for i := range info.Libraries {
		lib := &info.Libraries[i]
	search:
		for _, step := range steps {
			for _, dir := range step.Dirs {
				p := path.Join(dir, lib.Name)
				if f.isFile(p) {
					lib.Path, lib.Source = p, step.Source
					if !f.loaderDefault[step.Source] && !extra[dir] {
						extra[dir] = true
						info.LibraryDirs = append(info.LibraryDirs, dir)
					}
					break search
				}
			}
		}
	}
	return info
}

// cudaFinder holds one FindCUDA call's state.
type cudaFinder struct {
	opts CUDASearch
	fsys fs.FS
	seen map[string]bool // directories already in a search step
	// loaderDefault holds the sources whose directories the dynamic loader
	// searches by itself: they never go into CUDAInfo.LibraryDirs.
	loaderDefault map[string]bool
}

func (f *cudaFinder) getenv(key string) string {
	if f.opts.Getenv == nil {
		return ""
	}
	return f.opts.Getenv(key)
}

// cudaFSPath turns an absolute path into an fs.FS path ("/usr/lib" → "usr/lib").
func cudaFSPath(abs string) (string, bool) {
	if !strings.HasPrefix(abs, "/") {
		return "", false
	}
	p := strings.TrimPrefix(path.Clean(abs), "/")
	if p == "" {
		p = "."
	}
	return p, fs.ValidPath(p)
}

func (f *cudaFinder) stat(abs string) (fs.FileInfo, bool) {
	p, ok := cudaFSPath(abs)
	if !ok {
		return nil, false
	}
	st, err := fs.Stat(f.fsys, p)
	return st, err == nil
}

func (f *cudaFinder) isFile(abs string) bool {
	st, ok := f.stat(abs)
	return ok && !st.IsDir()
}

func (f *cudaFinder) isDir(abs string) bool {
	st, ok := f.stat(abs)
	return ok && st.IsDir()
}

// absolute resolves a path from the environment against the working
// directory; "" when it cannot be made absolute.
func (f *cudaFinder) absolute(p string) string {
	if p == "" {
		return ""
	}
	if strings.HasPrefix(p, "/") {
		return path.Clean(p)
	}
	if !strings.HasPrefix(f.opts.WorkDir, "/") {
		return ""
	}
	return path.Join(f.opts.WorkDir, p)
}

func (f *cudaFinder) findPlugin(warnings *[]string) (string, []string) {
	tried := []string{}
	seen := map[string]bool{}
	var found string
	try := func(p string) {
		if p == "" || seen[p] {
			return
		}
		seen[p] = true
		tried = append(tried, p)
		if found == "" && f.isFile(p) {
			found = p
		}
	}
	if env := f.getenv(EnvCUDAPlugin); env != "" {
		p := f.absolute(env)
		if p != "" && f.isDir(p) {
			p = path.Join(p, CUDAPluginFile)
		}
		if p == "" || !f.isFile(p) {
			*warnings = append(*warnings, fmt.Sprintf("%s=%s: no such file", EnvCUDAPlugin, env))
		}
		try(p)
	}
	exeParent := ""
	if exe := f.absolute(f.opts.ExeDir); exe != "" {
		exeParent = path.Dir(exe) // bin/quantscope in a checkout
	}
	for _, d := range []struct{ dir, sub string }{
		{f.opts.ORTLibDir, "cuda"},
		{f.opts.ExeDir, ".ort/cuda"},
		{exeParent, ".ort/cuda"},
		{f.opts.WorkDir, ".ort/cuda"},
	} {
		if dir := f.absolute(d.dir); dir != "" {
			try(path.Join(dir, d.sub, CUDAPluginFile))
		}
	}
	return found, tried
}

// searchSteps lists, in search order, every directory a library may be in.
func (f *cudaFinder) searchSteps(libs []CUDALibrary, warnings *[]string) []CUDASearchStep {
	var steps []CUDASearchStep
	add := func(source string, dirs []string) {
		step := CUDASearchStep{Source: source, Dirs: []string{}}
		for _, d := range dirs {
			if d == "" || f.seen[d] {
				continue
			}
			f.seen[d] = true
			step.Dirs = append(step.Dirs, d)
		}
		steps = append(steps, step)
	}

	add("$"+EnvCUDALibs, f.pathList(EnvCUDALibs, warnings))
	add("LD_LIBRARY_PATH", f.pathList("LD_LIBRARY_PATH", nil))
	for _, py := range f.pythonsOnPath() {
		add("python3 on PATH: "+py, f.wheelDirs(pythonSites(path.Dir(path.Dir(py)))))
	}
	var active []string
	for _, key := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if p := f.absolute(f.getenv(key)); p != "" {
			active = append(active, pythonSites(cudaGlobEscape(p))...)
			if key == "CONDA_PREFIX" {
				active = append(active, cudaGlobEscape(p)+"/lib")
			}
		}
	}
	if h := f.absolute(f.opts.HomeDir); h != "" {
		active = append(active, cudaGlobEscape(h)+"/.local/lib/python3*/site-packages")
	}
	add("$VIRTUAL_ENV, $CONDA_PREFIX, ~/.local", f.wheelDirs(active))
	var venvs []string
	if h := f.absolute(f.opts.HomeDir); h != "" {
		venvs = append(venvs, pythonSites(cudaGlobEscape(h)+"/.venv")...)
	}
	venvs = append(venvs, pythonSites("/opt/*/.venv")...)
	add("~/.venv, /opt/*/.venv", f.wheelDirs(venvs))
	conda := []string{"/opt/conda*/lib", "/opt/conda*/envs/*/lib"}
	conda = append(conda, pythonSites("/opt/conda*")...)
	conda = append(conda, pythonSites("/opt/conda*/envs/*")...)
	add("/opt/conda*", f.wheelDirs(conda))
	add("/usr/local/cuda*/lib64", f.glob("/usr/local/cuda*/lib64"))
	add(cudaSourceLDCache, f.ldCacheDirs(libs, warnings))
	if dir := cudaMultiarchDir(f.opts.Arch); dir != "" {
		var dirs []string
		if f.isDir(dir) {
			dirs = []string{dir}
		}
		f.loaderDefault[dir] = true
		add(dir, dirs)
	}
	return steps
}

// pythonsOnPath lists every python3 in a directory of PATH, in PATH order,
// as found (a virtualenv's bin/python3 is a symlink out of the venv: its
// site-packages are found from where it is, not where it points).
func (f *cudaFinder) pythonsOnPath() []string {
	var out []string
	seen := map[string]bool{}
	for _, dir := range strings.Split(f.getenv("PATH"), ":") {
		dir = f.absolute(dir)
		if dir == "" {
			continue
		}
		py := path.Join(dir, "python3")
		if !seen[py] && f.isFile(py) {
			seen[py] = true
			out = append(out, py)
		}
	}
	return out
}

// pythonSites returns the site-packages patterns of a Python installed at
// prefix (a glob-escaped absolute path): lib and lib64, site- and
// dist-packages, and the Debian-style prefix/local/lib.
func pythonSites(prefix string) []string {
	return []string{
		prefix + "/lib/python3*/site-packages",
		prefix + "/lib/python3*/dist-packages",
		prefix + "/lib64/python3*/site-packages",
		prefix + "/local/lib/python3*/site-packages",
		prefix + "/local/lib/python3*/dist-packages",
	}
}

// wheelDirs expands site-packages patterns into the lib directories of
// NVIDIA wheels and PyTorch in them (nvidia/*/lib, torch/lib). A pattern
// that names a lib directory itself (ending in /lib) is kept as it is.
func (f *cudaFinder) wheelDirs(patterns []string) []string {
	var out []string
	for _, pat := range patterns {
		for _, dir := range f.glob(pat) {
			if strings.HasSuffix(pat, "/lib") {
				out = append(out, dir)
				continue
			}
			out = append(out, f.glob(cudaGlobEscape(dir)+"/nvidia/*/lib")...)
			out = append(out, f.glob(cudaGlobEscape(dir)+"/torch/lib")...)
		}
	}
	return out
}

// pathList splits a colon-separated environment variable into absolute
// directories; missing ones are noted in warnings when it is non-nil.
func (f *cudaFinder) pathList(key string, warnings *[]string) []string {
	var out []string
	for _, e := range strings.Split(f.getenv(key), ":") {
		if e == "" {
			continue
		}
		p := f.absolute(e)
		if p == "" || !f.isDir(p) {
			if warnings != nil {
				*warnings = append(*warnings, fmt.Sprintf("%s entry %s: no such directory", key, e))
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

// ldCacheDirs returns the directories the ld.so.cache names for any of libs,
// for the search's architecture.
func (f *cudaFinder) ldCacheDirs(libs []CUDALibrary, warnings *[]string) []string {
	if f.opts.LDCache == nil {
		return nil
	}
	out, err := f.opts.LDCache()
	if err != nil {
		*warnings = append(*warnings, fmt.Sprintf("ld.so.cache not read: %v", err))
		return nil
	}
	want := map[string]bool{}
	for _, l := range libs {
		want[l.Name] = true
	}
	flag := cudaLDConfigArchFlag(f.opts.Arch)
	var dirs []string
	for _, e := range parseLDConfig(string(out)) {
		if !want[e.Name] || !strings.HasPrefix(e.Path, "/") {
			continue
		}
		if flag != "" && !hasLDConfigFlag(e.Flags, flag) {
			continue
		}
		dirs = append(dirs, path.Dir(e.Path))
	}
	return dirs
}

// glob expands an absolute pattern inside the file system, keeping
// directories only; it returns absolute paths, sorted.
func (f *cudaFinder) glob(pattern string) []string {
	p, ok := cudaFSPath(pattern)
	if !ok {
		return nil
	}
	matches, err := fs.Glob(f.fsys, p)
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range matches {
		abs := "/" + m
		if f.isDir(abs) {
			out = append(out, abs)
		}
	}
	return out
}

// cudaGlobEscape quotes the pattern characters of a literal path.
func cudaGlobEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// cudaMultiarchDir is the Debian/Ubuntu multiarch library directory.
func cudaMultiarchDir(arch string) string {
	switch arch {
	case "amd64":
		return "/usr/lib/x86_64-linux-gnu"
	case "arm64":
		return "/usr/lib/aarch64-linux-gnu"
	}
	return ""
}

// cudaLDConfigArchFlag is the flag `ldconfig -p` prints for arch's 64-bit
// libraries; "" accepts every entry.
func cudaLDConfigArchFlag(arch string) string {
	switch arch {
	case "amd64":
		return "x86-64"
	case "arm64":
		return "AArch64"
	}
	return ""
}

func hasLDConfigFlag(flags, flag string) bool {
	for _, f := range strings.Split(flags, ",") {
		if strings.TrimSpace(f) == flag {
			return true
		}
	}
	return false
}

// ldConfigEntry is one library line of `ldconfig -p`.
type ldConfigEntry struct {
	Name  string // e.g. "libcudart.so.13"
	Flags string // e.g. "libc6,x86-64"
	Path  string // e.g. "/usr/local/cuda/lib64/libcudart.so.13"
}

// parseLDConfig parses the output of `ldconfig -p`:
//
//	1234 libs found in cache `/etc/ld.so.cache'
//		libcudart.so.13 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.13
//		libz.so.1 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libz.so.1
//
// Lines that are not library entries are skipped.
func parseLDConfig(out string) []ldConfigEntry {
	var entries []ldConfigEntry
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		left, p, ok := strings.Cut(strings.TrimSpace(sc.Text()), " => ")
		if !ok {
			continue
		}
		var e ldConfigEntry
		e.Path = strings.TrimSpace(p)
		name, flags, hasFlags := strings.Cut(left, " (")
		e.Name = strings.TrimSpace(name)
		if hasFlags {
			if i := strings.LastIndex(flags, ")"); i >= 0 {
				flags = flags[:i]
			}
			e.Flags = strings.TrimSpace(flags)
		}
		if e.Name == "" || e.Path == "" || strings.ContainsAny(e.Name, " \t") {
			continue
		}
		entries = append(entries, e)
	}
	return entries
}

// runLDConfig returns the output of `ldconfig -p`.
func runLDConfig() ([]byte, error) {
	bin, err := exec.LookPath("ldconfig")
	if err != nil {
		for _, p := range []string{"/sbin/ldconfig", "/usr/sbin/ldconfig"} {
			if st, serr := os.Stat(p); serr == nil && !st.IsDir() {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("find ldconfig: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-p").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return nil, fmt.Errorf("%s -p: %w: %s", bin, err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("%s -p: %w", bin, err)
	}
	return out, nil
}
