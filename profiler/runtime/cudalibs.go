package runtime

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
	goruntime "runtime"
	"strings"
	"time"
)

// CUDAPluginFile is the file name of ONNX Runtime's CUDA plugin execution
// provider library, installed by `make setup-cuda` into .ort/cuda/.
const CUDAPluginFile = "libonnxruntime_providers_cuda.so"

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
	Name     string `json:"name"`             // the soname, e.g. "libcublasLt.so.13"
	Purpose  string `json:"purpose"`          // e.g. "cuBLASLt"
	Optional bool   `json:"optional"`         // the plugin runs without it (cuDNN: fewer fused kernels)
	Path     string `json:"path"`             // "" when not found
	Source   string `json:"source,omitempty"` // the search step that found it, e.g. "LD_LIBRARY_PATH"
}

// CUDASearchStep is one step of the library search and the directories it
// contributed, in the order they were searched.
type CUDASearchStep struct {
	Source string   `json:"source"` // e.g. "$QUANTSCOPE_CUDA_LIBS", "ld.so.cache", "/usr/local/cuda*/lib64"
	Dirs   []string `json:"dirs"`
}

// CUDAInfo is what FindCUDA found: the plugin, each library, and the
// directories a worker process must put on LD_LIBRARY_PATH before it starts.
type CUDAInfo struct {
	PluginPath  string   `json:"plugin_path"`  // "" when not found
	PluginTried []string `json:"plugin_tried"` // every plugin path looked at, in order
	// Libraries lists the CUDA 13 libraries in a fixed order: libcudart.so.13,
	// libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libcudnn.so.9.
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

// Missing returns the names of the required libraries that were not found.
func (c CUDAInfo) Missing() []string {
	var out []string
	for _, l := range c.Libraries {
		if !l.Optional && l.Path == "" {
			out = append(out, l.Name)
		}
	}
	return out
}

// Ready reports whether the plugin and every required library were found.
func (c CUDAInfo) Ready() bool {
	return c.PluginPath != "" && len(c.Missing()) == 0
}

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
	// LD_LIBRARY_PATH, VIRTUAL_ENV and CONDA_PREFIX; nil reads nothing.
	Getenv func(string) string
	// LDCache returns the output of `ldconfig -p`; nil skips the cache.
	LDCache func() ([]byte, error)
	// ExeDir is the directory of the running binary (for its .ort/cuda/).
	ExeDir string
	// WorkDir is the working directory (for its .ort/cuda/ and relative
	// entries in the environment's path lists).
	WorkDir string
	// HomeDir is the user's home (for ~/.local/lib/python3*/site-packages).
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

// cudaLibrarySpecs lists the libraries the CUDA 13 plugin needs, in report
// order.
func cudaLibrarySpecs() []CUDALibrary {
	return []CUDALibrary{
		{Name: "libcudart.so.13", Purpose: "CUDA runtime"},
		{Name: "libcublas.so.13", Purpose: "cuBLAS"},
		{Name: "libcublasLt.so.13", Purpose: "cuBLASLt"},
		{Name: "libcurand.so.10", Purpose: "cuRAND"},
		{Name: "libcudnn.so.9", Purpose: "cuDNN", Optional: true},
	}
}

// cudaSourceLDCache is the search step of the dynamic loader's cache.
const cudaSourceLDCache = "ld.so.cache"

// FindCUDA looks for the CUDA plugin and the CUDA 13 libraries it needs.
//
// The plugin is looked for at $QUANTSCOPE_CUDA_PLUGIN, then cuda/ beside the
// ONNX Runtime library, then .ort/cuda/ beside the binary, in the binary's
// parent directory (bin/quantscope in a checkout) and in the working
// directory. Each library is looked for, first match wins, in:
// $QUANTSCOPE_CUDA_LIBS, LD_LIBRARY_PATH, the ld.so.cache (`ldconfig -p`),
// /usr/local/cuda*/lib64, /usr/lib/<multiarch>, and the lib directories of
// pip-installed NVIDIA wheels and PyTorch (site-packages/nvidia/*/lib and
// site-packages/torch/lib of the active virtualenv or conda env, the system
// and /usr/local Pythons, ~/.local and /opt/conda).
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
		f.opts.Arch = goruntime.GOARCH
	}
	info := CUDAInfo{Libraries: cudaLibrarySpecs(), LibraryDirs: []string{}, PluginTried: []string{}}
	info.PluginPath, info.PluginTried = f.findPlugin(&info.Warnings)

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
	add(cudaSourceLDCache, f.ldCacheDirs(libs, warnings))
	add("/usr/local/cuda*/lib64", f.glob("/usr/local/cuda*/lib64"))
	if dir := cudaMultiarchDir(f.opts.Arch); dir != "" {
		var dirs []string
		if f.isDir(dir) {
			dirs = []string{dir}
		}
		f.loaderDefault[dir] = true
		add(dir, dirs)
	}
	add("python site-packages (nvidia/*/lib, torch/lib)", f.pythonDirs())
	return steps
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

// pythonDirs lists the lib directories of NVIDIA wheels and PyTorch in every
// Python site-packages the search knows of.
func (f *cudaFinder) pythonDirs() []string {
	var roots []string
	for _, key := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if p := f.absolute(f.getenv(key)); p != "" {
			roots = append(roots, cudaGlobEscape(p)+"/lib/python3*/site-packages")
		}
	}
	roots = append(roots,
		"/usr/lib/python3*/site-packages",
		"/usr/lib/python3*/dist-packages",
		"/usr/local/lib/python3*/site-packages",
		"/usr/local/lib/python3*/dist-packages",
	)
	if h := f.absolute(f.opts.HomeDir); h != "" {
		roots = append(roots, cudaGlobEscape(h)+"/.local/lib/python3*/site-packages")
	}
	roots = append(roots,
		"/opt/conda/lib/python3*/site-packages",
		"/opt/conda/envs/*/lib/python3*/site-packages",
	)
	var out []string
	for _, root := range roots {
		for _, site := range f.glob(root) {
			out = append(out, f.glob(cudaGlobEscape(site)+"/nvidia/*/lib")...)
			out = append(out, f.glob(cudaGlobEscape(site)+"/torch/lib")...)
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
