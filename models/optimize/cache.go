package optimize

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/quantscope/quantscope/models/onnx"
)

// Optimized models are cached under the cache root (onnx.DerivedPath),
// in a directory named by the source model's content hash, never beside
// the source:
//
//	optimized/<hash>/<model>.opt.<key>.onnx   (+ .data with external data)
//	optimized/<hash>/<model>.opt.<key>.onnx.report.json
//
// where key hashes the source model's bytes, Version and the options. When
// nothing matched only the report is written, and the source itself is the
// result: an unchanged model is not copied.

// Result is an optimized model on disk.
type Result struct {
	// Path is the optimized model, or the source when nothing matched.
	Path string
	// Report says which patterns matched and how often.
	Report *Report
	// Cached is true when the result was already on disk.
	Cached bool
}

// Ensure returns the model at src optimized with opts, from the cache when
// a current copy exists, else optimizing it (File) and caching the result
// first: like zoo.Ensure, it builds what is missing (zoo.Cached only looks),
// and Result.Cached says whether the copy was already there.
func Ensure(ctx context.Context, src string, opts Options) (Result, error) {
	path, err := CachePath(src, opts)
	if err != nil {
		return Result{}, fmt.Errorf("optimize %s: %w", src, err)
	}
	if r, ok := readReport(path); ok {
		if !r.Changed() {
			return Result{Path: src, Report: r, Cached: true}, nil
		}
		if _, err := os.Stat(path); err == nil {
			return Result{Path: path, Report: r, Cached: true}, nil
		}
	}
	r, err := File(ctx, src, path, opts)
	if err != nil {
		return Result{}, err
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return Result{}, fmt.Errorf("optimize %s: report: %w", src, err)
	}
	if err := onnx.WriteFileAtomic(path+".report.json", append(raw, '\n')); err != nil {
		os.Remove(path)
		os.Remove(path + ".data")
		return Result{}, fmt.Errorf("optimize %s: cache report: %w", src, err)
	}
	out := path
	if !r.Changed() {
		out = src
	}
	return Result{Path: out, Report: r}, nil
}

// CachePath returns the file the model at src optimized with opts is
// cached in (whether or not it exists yet).
func CachePath(src string, opts Options) (string, error) {
	sum, err := onnx.ModelHash(src)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	disabled := slices.Clone(opts.Disable)
	slices.Sort(disabled)
	att := opts.AttentionOp
	if att == "" {
		att = AttentionMHA
	}
	fmt.Fprintf(h, "source %s\noptimizer %s\nattention %s\ndisable %q\n", sum, Version, att, disabled)
	key := hex.EncodeToString(h.Sum(nil))
	return onnx.DerivedPath(src, sum, "opt."+key[:16], "optimized")
}

// readReport reads a cached report written by this optimizer version.
func readReport(path string) (*Report, bool) {
	raw, err := os.ReadFile(path + ".report.json")
	if err != nil {
		return nil, false
	}
	var r Report
	if json.Unmarshal(raw, &r) != nil || r.Version != Version {
		return nil, false
	}
	return &r, true
}
