package onnx

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ModelFiles returns the model file at path followed by the external data
// files its initializers reference, in name order. A referenced file that
// does not exist is an error naming it.
func ModelFiles(path string) ([]string, error) {
	m, err := LoadWith(path, LoadOptions{SkipExternalData: true})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var extra []string
	for _, t := range m.Graph().GetInitializer() {
		for _, e := range t.GetExternalData() {
			if e.GetKey() == "location" && !seen[e.GetValue()] {
				seen[e.GetValue()] = true
				extra = append(extra, filepath.Join(filepath.Dir(path), e.GetValue()))
			}
		}
	}
	slices.Sort(extra)
	for _, f := range extra {
		if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("model %s: external data file %s is missing", path, filepath.Base(f))
		}
	}
	return append([]string{path}, extra...), nil
}

// FilesSize returns the bytes of a model file and the external data files
// it references.
func FilesSize(path string) (int64, error) {
	files, err := ModelFiles(path)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return 0, err
		}
		total += st.Size()
	}
	return total, nil
}

// ModelHash returns the SHA-256 of a model: its .onnx file and the
// external data files it references, in name order. The result is
// remembered under the cache root (HashCachePath), keyed by the model's
// absolute path and the files' sizes and modification times, so a large
// model is hashed once; nothing is written beside the model.
func ModelHash(path string) (string, error) {
	files, err := ModelFiles(path)
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	var stamp strings.Builder
	fmt.Fprintf(&stamp, "%s\n", abs)
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", path, err)
		}
		fmt.Fprintf(&stamp, "%s %d %d\n", filepath.Base(f), st.Size(), st.ModTime().UnixNano())
	}
	side, sideErr := HashCachePath(abs)
	if sideErr == nil {
		if raw, err := os.ReadFile(side); err == nil {
			if sum, rest, ok := strings.Cut(string(raw), "\n"); ok && rest == stamp.String() && len(sum) == 64 {
				return sum, nil
			}
		}
	}
	h := sha256.New()
	for _, f := range files {
		if err := hashFile(h, f); err != nil {
			return "", fmt.Errorf("hash %s: %w", path, err)
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if sideErr == nil && os.MkdirAll(filepath.Dir(side), 0o755) == nil {
		_ = WriteFileAtomic(side, []byte(sum+"\n"+stamp.String())) // a cache: failing to write it is fine
	}
	return sum, nil
}

// HashCachePath is the file under the cache root that remembers the hash
// of the model at the absolute path abs: hashes/<SHA-256 of abs>.sha256.
func HashCachePath(abs string) (string, error) {
	root, err := CacheRoot()
	if err != nil {
		return "", err
	}
	key := sha256.Sum256([]byte(abs))
	return filepath.Join(root, "hashes", hex.EncodeToString(key[:16])+".sha256"), nil
}

func hashFile(h io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(h, bufio.NewReaderSize(f, 1<<20))
	return err
}

// WriteFileAtomic writes data to a temporary file beside path, syncs it and
// renames it into place: readers see the old file or the whole new one.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// EnvCacheDir names the environment variable that moves quantscope's
// cache (CacheRoot): catalog builds, derived models, remembered hashes.
const EnvCacheDir = "QUANTSCOPE_CACHE_DIR"

// CacheRoot is quantscope's cache directory: $QUANTSCOPE_CACHE_DIR when
// set, else quantscope in the user's cache directory ($XDG_CACHE_HOME, by
// default ~/.cache). It is not created here.
func CacheRoot() (string, error) {
	if d := os.Getenv(EnvCacheDir); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: %w (set %s)", err, EnvCacheDir)
	}
	return filepath.Join(d, "quantscope"), nil
}

// DerivedPath names a file derived from the model at src whose content
// hash is srcHash (ModelHash): a variant, an optimized copy. It is
// "<model>.<tag>.onnx" in the cache, under CacheRoot/<kind>/<the first 16
// hex digits of srcHash>/, which is created. Derived files never go beside
// the user's model: its folder may be read-only, shared or somebody
// else's; only what the user names with --out is written outside the
// cache.
func DerivedPath(src, srcHash, tag, kind string) (string, error) {
	if len(srcHash) < 16 {
		return "", fmt.Errorf("derived file of %s: source hash %q is too short", src, srcHash)
	}
	root, err := CacheRoot()
	if err != nil {
		return "", fmt.Errorf("derived file of %s: %w", src, err)
	}
	dir := filepath.Join(root, kind, srcHash[:16])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("derived file of %s: cache directory: %w", src, err)
	}
	base := strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))
	return filepath.Join(dir, base+"."+tag+".onnx"), nil
}

// HasExternalData reports whether the model file at path keeps tensors in
// external data files (only its graph is read).
func HasExternalData(path string) (bool, error) {
	m, err := LoadWith(path, LoadOptions{SkipExternalData: true})
	if err != nil {
		return false, err
	}
	for _, t := range m.Graph().GetInitializer() {
		if IsExternal(t) {
			return true, nil
		}
	}
	return false, nil
}
