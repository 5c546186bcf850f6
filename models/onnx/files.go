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
	"syscall"
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
// remembered in <model>.sha256 beside the model (when writable), keyed by
// the files' sizes and modification times, so a large model is hashed
// once.
func ModelHash(path string) (string, error) {
	files, err := ModelFiles(path)
	if err != nil {
		return "", err
	}
	var stamp strings.Builder
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", path, err)
		}
		fmt.Fprintf(&stamp, "%s %d %d\n", filepath.Base(f), st.Size(), st.ModTime().UnixNano())
	}
	side := path + ".sha256"
	if raw, err := os.ReadFile(side); err == nil {
		if sum, rest, ok := strings.Cut(string(raw), "\n"); ok && rest == stamp.String() && len(sum) == 64 {
			return sum, nil
		}
	}
	h := sha256.New()
	for _, f := range files {
		if err := hashFile(h, f); err != nil {
			return "", fmt.Errorf("hash %s: %w", path, err)
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	_ = WriteFileAtomic(side, []byte(sum+"\n"+stamp.String())) // a cache: failing to write it is fine
	return sum, nil
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

// WritableDir reports whether files can be created in dir.
func WritableDir(dir string) bool {
	f, err := os.CreateTemp(dir, ".quantscope-probe-")
	if err != nil {
		return false
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return true
}

// DerivedPath names a file derived from the model at src (a variant, an
// optimized copy): "<model>.<tag>.onnx" beside src, or under the user
// cache directory's quantscope/<cacheDir> (created if missing) when that
// directory is not writable or has less free space than src takes (a
// derived copy is at most about its size). A copy already in either place
// is found there.
func DerivedPath(src, tag, cacheDir string) (string, error) {
	base := strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))
	name := base + "." + tag + ".onnx"
	dir := filepath.Dir(src)
	beside := filepath.Join(dir, name)
	if _, err := os.Stat(beside); err == nil {
		return beside, nil
	}
	if cached, err := cachePath(cacheDir, name, false); err == nil {
		if _, err := os.Stat(cached); err == nil {
			return cached, nil
		}
	}
	if WritableDir(dir) && hasRoomFor(dir, src) {
		return beside, nil
	}
	p, err := cachePath(cacheDir, name, true)
	if err != nil {
		return "", fmt.Errorf("%s is not writable or full: %w", dir, err)
	}
	return p, nil
}

// DerivedFallback is where DerivedPath puts a derived file when the
// model's directory cannot take it: the same name under the user cache
// directory's quantscope/<cacheDir>. Writers that ran out of space beside
// the model (ENOSPC, see IsNoSpace) write there instead.
func DerivedFallback(derived, cacheDir string) (string, error) {
	return cachePath(cacheDir, filepath.Base(derived), true)
}

// IsNoSpace reports whether err says a file system is full (or the user's
// quota is spent).
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func cachePath(cacheDir, name string, create bool) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory: %w", err)
	}
	dir := filepath.Join(cache, "quantscope", cacheDir)
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("cache directory: %w", err)
		}
	}
	return filepath.Join(dir, name), nil
}

// hasRoomFor reports whether dir's file system has at least the size of
// the model at src free (true when either cannot be measured).
func hasRoomFor(dir, src string) bool {
	need, err := FilesSize(src)
	if err != nil {
		return true
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return true
	}
	return int64(st.Bavail)*int64(st.Bsize) >= need
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
