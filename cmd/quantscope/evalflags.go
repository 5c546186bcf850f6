package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/quantscope/quantscope/models/imageset"
	"github.com/quantscope/quantscope/profiler/evaluate"
)

// evalFlags are the flags of accuracy on a labelled image folder, shared by
// bench, quantize --check, sensitivity and tune.
type evalFlags struct {
	dir, labels  string
	cropPct      float64
	interp       string
	mean, std    string
	limit        int
	decodeWorker int
}

func (e *evalFlags) register(f *pflag.FlagSet) {
	f.StringVar(&e.dir, "eval-dir", "", "labelled images for top-1/top-5 accuracy: DIR/<class>/*.jpg (ImageFolder layout)")
	f.StringVar(&e.labels, "labels", "", "with --eval-dir: class names one per line in the model's output order (default: sorted folder names)")
	f.Float64Var(&e.cropPct, "crop-pct", 0, "with --eval-dir: centre-crop share of the resized image (default: the model's, e.g. 0.9 for ViT)")
	f.StringVar(&e.interp, "interpolation", "", "with --eval-dir: resize filter, bilinear or bicubic (default: the model's)")
	f.StringVar(&e.mean, "mean", "", "with --eval-dir: normalization mean R,G,B (default: the model's)")
	f.StringVar(&e.std, "std", "", "with --eval-dir: normalization std R,G,B (default: the model's)")
	f.IntVar(&e.limit, "eval-images", 0, "with --eval-dir: evaluate the first N images only (0: all)")
	f.IntVar(&e.decodeWorker, "decode-workers", 0, "with --eval-dir: image decoding goroutines (0: one per CPU)")
}

// set reports whether --eval-dir was given.
func (e evalFlags) set() bool { return e.dir != "" }

// validate checks the flags without touching the folder.
func (e evalFlags) validate() error {
	if e.dir == "" {
		for name, v := range map[string]bool{"--labels": e.labels != "", "--crop-pct": e.cropPct != 0, "--interpolation": e.interp != "",
			"--mean": e.mean != "", "--std": e.std != "", "--eval-images": e.limit != 0} {
			if v {
				return fmt.Errorf("%s applies with --eval-dir only", name)
			}
		}
		return nil
	}
	if e.limit < 0 {
		return fmt.Errorf("--eval-images %d: want 0 (all) or more", e.limit)
	}
	_, err := e.overrides()
	return err
}

func (e evalFlags) overrides() (evaluate.Overrides, error) {
	o := evaluate.Overrides{CropPct: e.cropPct, Interpolation: e.interp}
	for _, t := range []struct {
		flag, v string
		dst     **[3]float32
	}{{"--mean", e.mean, &o.Mean}, {"--std", e.std, &o.Std}} {
		if t.v == "" {
			continue
		}
		v, err := imageset.ParseTriple(t.v)
		if err != nil {
			return o, fmt.Errorf("%s: %w", t.flag, err)
		}
		*t.dst = &v
	}
	return o, o.Validate()
}

// dataset scans --eval-dir (nil, nil without it) and reports decoding
// progress to w; the folder's notes are printed once.
func (e evalFlags) dataset(w io.Writer) (*evaluate.Dataset, error) {
	if e.dir == "" {
		return nil, nil
	}
	o, err := e.overrides()
	if err != nil {
		return nil, err
	}
	d := &evaluate.Dataset{Dir: e.dir, Labels: e.labels, Overrides: o, Limit: e.limit, Workers: e.decodeWorker}
	f, err := d.Scan()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "images: %s: %d files in %d classes\n", e.dir, len(f.Items), len(f.Classes))
	for _, n := range f.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	d.Progress = decodeProgress(w)
	return d, nil
}

// decodeProgress prints decoding progress: an updating line on a terminal,
// a line at the end otherwise.
func decodeProgress(w io.Writer) func(model string, p imageset.Progress) {
	tty := isTerminal(w)
	var mu sync.Mutex
	return func(model string, p imageset.Progress) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case p.Cached:
			fmt.Fprintf(w, "images for %s: %d preprocessed, read from the cache\n", model, p.Total-p.Skipped)
		case p.Done == p.Total:
			rate := float64(p.Done) / max(p.Elapsed.Seconds(), 1e-9)
			if tty {
				fmt.Fprint(w, "\r\033[K")
			}
			fmt.Fprintf(w, "images for %s: %d decoded and preprocessed in %s (%.0f/s), %d unreadable skipped\n",
				model, p.Done-p.Skipped, p.Elapsed.Round(time.Millisecond), rate, p.Skipped)
		case tty:
			fmt.Fprintf(w, "\r\033[Kdecoding images for %s: %d/%d (%d unreadable)", model, p.Done, p.Total, p.Skipped)
		}
	}
}
