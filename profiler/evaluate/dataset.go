package evaluate

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/quantscope/quantscope/models/imageset"
	"github.com/quantscope/quantscope/models/zoo"
)

// Overrides replace parts of a model's data config (flags --crop-pct,
// --interpolation, --mean, --std); zero values keep the model's.
type Overrides struct {
	CropPct       float64
	Interpolation string
	Mean, Std     *[3]float32
}

// Validate checks the overrides that are set.
func (o Overrides) Validate() error {
	if o.CropPct != 0 && !(o.CropPct > 0 && o.CropPct <= 1) {
		return fmt.Errorf("--crop-pct %v: want a number in (0, 1]", o.CropPct)
	}
	if o.Interpolation != "" {
		if _, err := imageset.ParseInterpolation(o.Interpolation); err != nil {
			return fmt.Errorf("--interpolation: %w", err)
		}
	}
	if o.Std != nil {
		for _, s := range o.Std {
			if !(s > 0) {
				return fmt.Errorf("--std %v: every standard deviation must be positive", *o.Std)
			}
		}
	}
	return nil
}

// Preprocessing is the evaluation preprocessing of a resolved model: its
// input size (the catalog resolution where the input is symbolic), its data
// config (zoo.Spec.DataConfig: family defaults or the model's metadata),
// then the overrides.
func Preprocessing(r zoo.Resolved, o Overrides) (imageset.Preprocess, error) {
	d := r.Spec.DataConfig()
	h, w := int(r.Input.Height), int(r.Input.Width)
	if h <= 0 {
		h = r.Spec.Resolution
	}
	if w <= 0 {
		w = r.Spec.Resolution
	}
	p := imageset.Preprocess{Height: h, Width: w, CropPct: d.CropPct, Interpolation: imageset.Interpolation(d.Interpolation), Mean: d.Mean, Std: d.Std}
	if o.CropPct != 0 {
		p.CropPct = o.CropPct
	}
	if o.Interpolation != "" {
		f, err := imageset.ParseInterpolation(o.Interpolation)
		if err != nil {
			return p, err
		}
		p.Interpolation = f
	}
	if o.Mean != nil {
		p.Mean = *o.Mean
	}
	if o.Std != nil {
		p.Std = *o.Std
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("%s: preprocessing: %w", r.Spec.Name, err)
	}
	return p, nil
}

// Dataset is a labelled image folder that models are evaluated on: scanned
// once, decoded once per preprocessing geometry, shared by every
// experiment of a study. Safe for concurrent use.
type Dataset struct {
	Dir, Labels string
	Overrides   Overrides
	// Cache options of imageset.Load.
	CacheDir string
	Workers  int
	// Limit evaluates the first Limit images only (0: all).
	Limit int
	// Progress reports decoding for a model (may be nil).
	Progress func(model string, p imageset.Progress)

	mu     sync.Mutex
	folder *imageset.Folder
	sets   map[string]*imageset.Set // by preprocess (full, with mean/std)
}

// Scan reads the folder's layout (once) and returns it; its errors say
// what is wrong with the folder or labels.
func (d *Dataset) Scan() (*imageset.Folder, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.scanLocked()
}

func (d *Dataset) scanLocked() (*imageset.Folder, error) {
	if d.folder != nil {
		return d.folder, nil
	}
	if err := d.Overrides.Validate(); err != nil {
		return nil, err
	}
	f, err := imageset.Scan(d.Dir, d.Labels)
	if err != nil {
		return nil, err
	}
	d.folder = f
	return f, nil
}

// SetFor returns the folder preprocessed for model (a catalog name or
// .onnx path), decoding it the first time a geometry is asked for.
func (d *Dataset) SetFor(ctx context.Context, model string) (*imageset.Set, error) {
	r, err := zoo.Resolve(ctx, model)
	if err != nil {
		return nil, err
	}
	return d.SetForResolved(ctx, r)
}

// SetForResolved is SetFor for a model already resolved.
func (d *Dataset) SetForResolved(ctx context.Context, r zoo.Resolved) (*imageset.Set, error) {
	p, err := Preprocessing(r, d.Overrides)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.scanLocked()
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s mean=%v std=%v", p.GeometryKey(), p.Mean, p.Std)
	if s, ok := d.sets[key]; ok {
		return s, nil
	}
	opts := imageset.Options{CacheDir: d.CacheDir, Workers: d.Workers}
	if d.Progress != nil {
		name := r.Spec.Name
		opts.Progress = func(p imageset.Progress) { d.Progress(name, p) }
	}
	s, err := imageset.Load(ctx, f, p, opts)
	if err != nil {
		return nil, err
	}
	if d.sets == nil {
		d.sets = map[string]*imageset.Set{}
	}
	d.sets[key] = s
	return s, nil
}

// Describe is one line about the folder for logs: its images and classes,
// and the scan's notes.
func (d *Dataset) Describe() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.folder == nil {
		return d.Dir
	}
	s := fmt.Sprintf("%s: %d images, %d classes", d.Dir, len(d.folder.Items), len(d.folder.Classes))
	if len(d.folder.Notes) > 0 {
		s += "; " + strings.Join(d.folder.Notes, "; ")
	}
	return s
}

// Skipped lists the files that did not decode (from the first set
// prepared; every geometry reads the same files).
func (d *Dataset) Skipped() []imageset.Skip {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.sets {
		return s.Skipped
	}
	return nil
}
