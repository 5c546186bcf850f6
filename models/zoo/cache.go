package zoo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/quantscope/quantscope/internal/tempdir"
	"github.com/quantscope/quantscope/models/onnx"
)

// EnvCacheDir names the environment variable that moves quantscope's
// cache (onnx.CacheRoot): built models go to $QUANTSCOPE_CACHE_DIR/models.
const EnvCacheDir = onnx.EnvCacheDir

// Files of one cached model, inside its directory.
const (
	// ModelFile is the ONNX file.
	ModelFile = "model.onnx"
	// DataFile holds the weights when they are stored externally.
	DataFile = ModelFile + ".data"
	// ManifestFile describes the build; a directory without it is not a
	// cached model.
	ManifestFile = "manifest.json"
)

// staleTemp is the age after which an abandoned temporary build directory
// (a build killed before it finished) is removed.
const staleTemp = 24 * time.Hour

// CacheDir returns the directory of built models: $QUANTSCOPE_CACHE_DIR/models
// when the variable is set, else quantscope/models in the user's cache
// directory ($XDG_CACHE_HOME, by default ~/.cache).
func CacheDir() (string, error) {
	root, err := onnx.CacheRoot()
	if err != nil {
		return "", fmt.Errorf("model cache: %w", err)
	}
	return filepath.Join(root, "models"), nil
}

func (o options) dir() (string, error) {
	if o.cacheDir != "" {
		return o.cacheDir, nil
	}
	return CacheDir()
}

// Manifest describes a cached build; it is written beside the model.
type Manifest struct {
	BuilderVersion int       `json:"builder_version"` // BuilderVersion of the build
	Name           string    `json:"name"`            // catalog name
	Family         Family    `json:"family"`          // model family
	Resolution     int       `json:"resolution"`      // input size in pixels
	Opset          int64     `json:"opset"`           // ONNX opset
	Seed           uint64    `json:"seed"`            // weight seed
	Params         int64     `json:"params"`          // Analysis.Params
	GraphParams    int64     `json:"graph_params"`    // float32 initializer elements in the file
	GFLOPs         float64   `json:"gflops"`          // per image at Resolution
	External       bool      `json:"external_data"`   // weights in DataFile
	Files          []File    `json:"files"`           // the files of the model, ModelFile first
	BuiltAt        time.Time `json:"built_at"`        // when the build finished (UTC)
	BuildSeconds   float64   `json:"build_seconds"`   // how long it took
}

// File is one file of a cached model and its size.
type File struct {
	Name string `json:"name"` // base name, inside the model's directory
	Size int64  `json:"size"` // bytes
}

// Bytes is the total size of the files.
func (m Manifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// external reports whether a build of a spec whose weights total
// weightBytes writes an external data file.
func (o options) externalData(weightBytes int64) bool {
	switch o.external {
	case ExternalAlways:
		return true
	case ExternalNever:
		return false
	}
	return weightBytes >= ExternalAutoBytes
}

// cacheKey names the cache directory of s built with o: the model's name,
// resolution and opset for people, and a hash of everything that shapes
// the files (builder version, architecture, seed, layout) for uniqueness.
func cacheKey(s Spec, o options, external bool) string {
	h := sha256.New()
	fmt.Fprintf(h, "builder=%d\nname=%s\nfamily=%s\ndesc=%s\npre=%#v\narch=%T%#v\nres=%d\nopset=%d\nseed=%d\nexternal=%t\n",
		BuilderVersion, s.Name, s.Family, s.Description, s.Preprocess, s.Arch, s.Arch, o.res(s), o.opset, o.seed, external)
	return fmt.Sprintf("%s-%dpx-opset%d-%s", safeName(s.Name), o.res(s), o.opset, hex.EncodeToString(h.Sum(nil))[:12])
}

// safeName keeps a model name usable as a file name.
func safeName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 || strings.HasPrefix(b.String(), ".") {
		return "m" + b.String()
	}
	return b.String()
}

// CachePath returns where s built with opts is (or would be) cached: the
// path of its model file.
func CachePath(s Spec, opts ...Option) (string, error) {
	o := newOptions(opts)
	_, path, _, err := o.locate(s)
	return path, err
}

// locate returns the cache directory of s, its model file's path and
// whether it has external data.
func (o options) locate(s Spec) (dir, path string, external bool, err error) {
	n, err := emit(s, o, true)
	if err != nil {
		return "", "", false, err
	}
	root, err := o.dir()
	if err != nil {
		return "", "", false, err
	}
	external = o.externalData(n.weightBytes)
	dir = filepath.Join(root, cacheKey(s, o, external))
	return dir, filepath.Join(dir, ModelFile), external, nil
}

// readManifest returns the manifest of the cached model in dir when the
// model is complete: the manifest parses, was written by this builder, and
// every file it lists is there with its size.
func readManifest(dir string) (Manifest, bool) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil || json.Unmarshal(b, &m) != nil || m.BuilderVersion != BuilderVersion || len(m.Files) == 0 {
		return Manifest{}, false
	}
	for _, f := range m.Files {
		if filepath.Base(f.Name) != f.Name {
			return Manifest{}, false
		}
		st, err := os.Stat(filepath.Join(dir, f.Name))
		if err != nil || !st.Mode().IsRegular() || st.Size() != f.Size {
			return Manifest{}, false
		}
	}
	return m, true
}

// Cached reports whether s built with opts is in the cache, and its
// manifest when it is.
func Cached(s Spec, opts ...Option) (Manifest, bool) {
	o := newOptions(opts)
	dir, _, _, err := o.locate(s)
	if err != nil {
		return Manifest{}, false
	}
	return readManifest(dir)
}

// Ensure returns the path of s's model file, building it into the cache
// first unless a complete copy is there (or WithRebuild asks for a fresh
// one). The build goes to a temporary directory that is renamed into
// place once model, weights and manifest are written and synced, so a
// build that fails, is cancelled or killed never counts as cached. Calls in
// one process build a model once: concurrent callers wait for the first.
// When two processes build the same model at once, the first rename wins
// and the other uses its result (builds are deterministic, the files
// identical).
func Ensure(ctx context.Context, s Spec, opts ...Option) (Resolved, error) {
	o := newOptions(opts)
	dir, path, external, err := o.locate(s)
	if err != nil {
		return Resolved{}, err
	}
	// One build of a model at a time in this process: a second caller
	// waits and then finds it cached.
	mu := buildLock(dir)
	mu.Lock()
	defer mu.Unlock()
	if !o.rebuild {
		if m, ok := readManifest(dir); ok {
			return catalogResolved(s, o, path, m, true), nil
		}
	}
	root := filepath.Dir(dir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return Resolved{}, fmt.Errorf("model cache: %w", err)
	}
	removeStale(root)
	td, err := tempdir.New(root, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return Resolved{}, fmt.Errorf("model cache: %w", err)
	}
	defer td.Remove() // a no-op once renamed
	tmp := td.Path
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Resolved{}, fmt.Errorf("model cache: %w", err)
	}

	start := time.Now()
	m, err := build(ctx, s, o)
	if err != nil {
		return Resolved{}, err
	}
	report := func(st Stage, done, total int64) {
		if o.progress != nil {
			o.progress(Progress{Model: s.Name, Stage: st, Done: done, Total: total})
		}
	}
	a := analysisOf(s, o)
	report(StageWrite, 0, a.WeightBytes)
	if err := onnx.Save(m, filepath.Join(tmp, ModelFile), onnx.SaveOptions{ExternalData: external}); err != nil {
		return Resolved{}, fmt.Errorf("model %q: %w", s.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return Resolved{}, err
	}
	man := Manifest{
		BuilderVersion: BuilderVersion, Name: s.Name, Family: s.Family, Resolution: o.res(s),
		Opset: o.opset, Seed: o.seed, Params: a.Params, GraphParams: a.GraphParams, GFLOPs: a.GFLOPs,
		BuiltAt: time.Now().UTC().Truncate(time.Second), BuildSeconds: time.Since(start).Seconds(),
	}
	for _, name := range []string{ModelFile, DataFile} {
		st, err := os.Stat(filepath.Join(tmp, name))
		if errors.Is(err, fs.ErrNotExist) && name == DataFile {
			continue
		}
		if err != nil {
			return Resolved{}, fmt.Errorf("model %q: %w", s.Name, err)
		}
		man.Files = append(man.Files, File{Name: name, Size: st.Size()})
	}
	man.External = len(man.Files) > 1
	if err := writeFileSync(filepath.Join(tmp, ManifestFile), man); err != nil {
		return Resolved{}, fmt.Errorf("model %q: %w", s.Name, err)
	}
	if err := td.Disown(); err != nil {
		return Resolved{}, fmt.Errorf("model %q: %w", s.Name, err)
	}
	if err := install(tmp, dir, o.rebuild); err != nil {
		// Another process may have installed the same build first.
		if got, ok := readManifest(dir); ok && !o.rebuild {
			return catalogResolved(s, o, path, got, true), nil
		}
		return Resolved{}, fmt.Errorf("model %q: %w", s.Name, err)
	}
	report(StageDone, man.Bytes(), man.Bytes())
	return catalogResolved(s, o, path, man, false), nil
}

// buildLocks holds a mutex per cache directory being built.
var buildLocks sync.Map

func buildLock(dir string) *sync.Mutex {
	mu, _ := buildLocks.LoadOrStore(dir, new(sync.Mutex))
	return mu.(*sync.Mutex)
}

// analysisOf is Analyze for a spec known to be valid.
func analysisOf(s Spec, o options) Analysis {
	n, err := emit(s, o, true)
	if err != nil {
		return Analysis{}
	}
	return Analysis{Params: n.archParams, GraphParams: n.graphParams, WeightBytes: n.weightBytes,
		MACs: n.macs, GFLOPs: 2 * float64(n.macs) / 1e9, Resolution: o.res(s)}
}

// install renames the finished build directory tmp to dir. With replace,
// an existing dir is moved aside and removed first.
func install(tmp, dir string, replace bool) error {
	root := filepath.Dir(dir)
	if replace {
		if _, err := os.Stat(dir); err == nil {
			old, err := tempdir.New(root, "."+filepath.Base(dir)+".old-")
			if err != nil {
				return err
			}
			if err := os.Rename(dir, filepath.Join(old.Path, "m")); err != nil {
				old.Remove()
				return err
			}
			defer old.Remove()
		}
	} else if _, err := os.Stat(dir); err == nil {
		// An incomplete or foreign directory: move it out of the way.
		if _, ok := readManifest(dir); !ok {
			if old, err := tempdir.New(root, "."+filepath.Base(dir)+".old-"); err == nil {
				defer old.Remove()
				_ = os.Rename(dir, filepath.Join(old.Path, "m"))
			}
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	syncDir(root)
	return nil
}

// removeStale deletes the temporary directories of builds whose process
// is gone (killed, crashed): at once when they record their owner, after
// staleTemp otherwise (directories of older quantscope versions).
func removeStale(root string) {
	tempdir.Sweep(root, func(name string) bool {
		return strings.HasPrefix(name, ".") && (strings.Contains(name, ".tmp-") || strings.Contains(name, ".old-"))
	}, staleTemp)
}

// writeFileSync writes v as indented JSON to path and syncs it.
func writeFileSync(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir flushes a directory's entries; errors are ignored (not every
// file system supports it).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// catalogResolved describes a catalog model in the cache.
func catalogResolved(s Spec, o options, path string, m Manifest, cached bool) Resolved {
	res := o.res(s)
	s.Resolution = res
	if a := analysisOf(s, o); a.GFLOPs > 0 {
		s.GFLOPs = a.GFLOPs
	}
	kind, _ := s.Arch.output()
	return Resolved{
		Path:     path,
		Spec:     s,
		Cached:   cached,
		Manifest: &m,
		Input: ImageInput{
			Name: InputName, Batch: -1, Channels: 3, Height: int64(res), Width: int64(res),
			DimNames: [4]string{"batch"},
		},
		Output: kind.outputName(),
		Bytes:  m.Bytes(),
		Params: m.GraphParams,
	}
}
