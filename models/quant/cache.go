package quant

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/quantscope/quantscope/models/onnx"
)

// Variants are cached under the cache root (onnx.DerivedPath), in a
// directory named by the source model's content hash, never beside the
// source:
//
//	variants/<hash>/<model>.<spec slug>.<key>.onnx   (+ .data with external data)
//	variants/<hash>/<model>.<spec slug>.<key>.onnx.report.json
//
// where key is a hash of the source model's bytes (the .onnx file and its
// external data), the canonical spec, the quantizer Version and the
// options that change the result (exclusions; for int8-static, the
// calibration source, seed and preprocessing). A changed model, spec,
// option or quantizer gets a new file; an old file is never mistaken for
// a current one.

// VariantResult is a variant on disk.
type VariantResult struct {
	// Path is the variant's .onnx file (the source itself for fp32).
	Path string
	// Report is the transform's report (read back from the cache when
	// Cached).
	Report *Report
	// Cached is true when the variant was already on disk.
	Cached bool
}

// Variant returns the variant of the model at src for spec, quantizing it
// when no current cached copy exists. For fp32 it returns src with a
// report of the model as it is. ErrNothingConverted and every other
// failure are errors; nothing is cached for them.
func Variant(ctx context.Context, src string, spec Spec, opts Options) (VariantResult, error) {
	if !spec.Quantizes() {
		m, err := onnx.LoadWith(src, onnx.LoadOptions{SkipExternalData: true})
		if err != nil {
			return VariantResult{}, err
		}
		r, err := Apply(ctx, m, spec, opts)
		if err != nil {
			return VariantResult{}, err
		}
		if r.FileBytesBefore, err = onnx.FilesSize(src); err != nil {
			return VariantResult{}, err
		}
		r.FileBytesAfter = r.FileBytesBefore
		return VariantResult{Path: src, Report: r, Cached: true}, nil
	}
	path, err := VariantPath(src, spec, opts)
	if err != nil {
		return VariantResult{}, err
	}
	if r, ok := readCachedReport(path); ok {
		return VariantResult{Path: path, Report: r, Cached: true}, nil
	}
	r, err := QuantizeFile(ctx, src, path, spec, opts)
	if err != nil {
		return VariantResult{}, err
	}
	if err := writeReport(path+".report.json", r); err != nil {
		os.Remove(path)
		os.Remove(path + ".data")
		return VariantResult{}, fmt.Errorf("cache variant %s: %w", path, err)
	}
	return VariantResult{Path: path, Report: r}, nil
}

// VariantPath returns the file the variant of src for spec is cached in
// (whether or not it exists yet).
func VariantPath(src string, spec Spec, opts Options) (string, error) {
	srcHash, err := onnx.ModelHash(src)
	if err != nil {
		return "", err
	}
	key, err := variantKey(srcHash, spec, opts)
	if err != nil {
		return "", err
	}
	path, err := onnx.DerivedPath(src, srcHash, spec.Slug()+"."+key[:16], "variants")
	if err != nil {
		return "", fmt.Errorf("variant cache: %w", err)
	}
	return path, nil
}

// variantKey hashes everything a variant's bytes depend on.
func variantKey(srcHash string, spec Spec, opts Options) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "source %s\nspec %s\nquantizer %s\n", srcHash, spec, Version)
	ex := slices.Clone(opts.Exclude)
	slices.Sort(ex)
	ex = slices.Compact(ex)
	fmt.Fprintf(h, "exclude %q\n", ex)
	if spec.Kind == Int8Static {
		c := opts.Calibration
		seed := c.Seed
		if seed == 0 {
			seed = 1
		}
		pre := c.Preprocess.orDefault()
		fmt.Fprintf(h, "calib seed %d mean %v std %v crop %v\n", seed, pre.Mean, pre.Std, pre.CropRatio)
		if c.Dir != "" {
			files, err := ImageFiles(c.Dir)
			if err != nil {
				return "", err
			}
			// The folder's files by name, size and modification time:
			// adding, removing or replacing an image recalibrates.
			for _, f := range files {
				st, err := os.Stat(f)
				if err != nil {
					return "", fmt.Errorf("calibration folder: %w", err)
				}
				fmt.Fprintf(h, "image %s %d %d\n", filepath.Base(f), st.Size(), st.ModTime().UnixNano())
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readCachedReport returns the report of a cached variant when both the
// variant and its report exist and the report is this quantizer's.
func readCachedReport(path string) (*Report, bool) {
	if _, err := os.Stat(path); err != nil {
		return nil, false
	}
	raw, err := os.ReadFile(path + ".report.json")
	if err != nil {
		return nil, false
	}
	var r Report
	if json.Unmarshal(raw, &r) != nil || r.QuantizerVersion != Version {
		return nil, false
	}
	return &r, true
}

// writeReport writes r as JSON atomically.
func writeReport(path string, r *Report) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return onnx.WriteFileAtomic(path, append(raw, '\n'))
}
