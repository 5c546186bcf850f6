package imageset

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// EnvCacheDir is the environment variable that moves quantscope's caches
// (the same one models/zoo reads); preprocessed sets go under its
// "evalsets" folder.
const EnvCacheDir = "QUANTSCOPE_CACHE_DIR"

// formatVersion is part of every set key: bump it when Apply's output or
// the cache files change.
const formatVersion = 1

// CacheDir is where preprocessed sets are kept: $QUANTSCOPE_CACHE_DIR/evalsets,
// else the user cache directory's quantscope/evalsets.
func CacheDir() (string, error) {
	if d := os.Getenv(EnvCacheDir); d != "" {
		return filepath.Join(d, "evalsets"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("image set cache: %w (set %s)", err, EnvCacheDir)
	}
	return filepath.Join(d, "quantscope", "evalsets"), nil
}

// Options configure Load.
type Options struct {
	// CacheDir overrides CacheDir().
	CacheDir string
	// Workers is the number of decoding goroutines (0: one per CPU).
	Workers int
	// Progress, when set, is called as images are decoded (from one
	// goroutine, in order; keep it quick).
	Progress func(Progress)
}

// Progress reports a set being prepared.
type Progress struct {
	Done, Total int  // images processed, of all
	Skipped     int  // of Done, files that did not decode
	Cached      bool // the set was read from the cache (Done = Total at once)
	Elapsed     time.Duration
}

// Skip is a file left out of a set, and why.
type Skip struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Set is a labelled image folder decoded and preprocessed into the cache:
// Len images of Preprocess.Pixels() bytes each, with their labels, read
// back a batch at a time by a Reader.
type Set struct {
	// Key identifies the set: the folder's files (paths, sizes, times,
	// labels), its classes and the preprocessing geometry.
	Key string `json:"key"`
	// Folder is the image folder as given; Classes its class names.
	Folder  string   `json:"folder"`
	Classes []string `json:"classes"`
	// Geometry is Preprocess.GeometryKey of the pixels.
	Geometry string `json:"geometry"`
	// Labels and Names are per image, in the order the Reader returns them.
	Labels []int32  `json:"labels"`
	Names  []string `json:"names"`
	// Skipped lists the files that did not decode.
	Skipped []Skip `json:"skipped,omitempty"`
	// Rotated counts images turned upright by their EXIF orientation;
	// Converted those read from another colour model (grayscale, CMYK,
	// 16-bit, paletted).
	Rotated   int `json:"rotated,omitempty"`
	Converted int `json:"converted,omitempty"`
	// Notes are the folder scan's notes (class folders without images…).
	Notes []string `json:"notes,omitempty"`

	// Preprocess is the full preprocessing; its Mean and Std normalize
	// what the Reader returns.
	Preprocess Preprocess `json:"-"`
	// Cached is true when Load found the set in the cache.
	Cached bool `json:"-"`

	pixels string
}

// Len is the number of images in the set.
func (s *Set) Len() int { return len(s.Labels) }

// Summary says what the set is, in one line: "1,000 images of 10 classes
// (2 unreadable files skipped, 3 rotated by EXIF, 1 converted to RGB)".
func (s *Set) Summary() string {
	var extra []string
	if n := len(s.Skipped); n > 0 {
		extra = append(extra, fmt.Sprintf("%d unreadable %s skipped", n, plural(n, "file", "files")))
	}
	if s.Rotated > 0 {
		extra = append(extra, fmt.Sprintf("%d rotated by EXIF", s.Rotated))
	}
	if s.Converted > 0 {
		extra = append(extra, fmt.Sprintf("%d converted to RGB", s.Converted))
	}
	out := fmt.Sprintf("%d images of %d classes", s.Len(), len(s.Classes))
	if len(extra) > 0 {
		out += " (" + strings.Join(extra, ", ") + ")"
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// key computes the set key of f under p.
func key(f *Folder, p Preprocess) string {
	h := sha256.New()
	fmt.Fprintf(h, "imageset/%d\n%s\n%d classes\n", formatVersion, p.GeometryKey(), len(f.Classes))
	for _, c := range f.Classes {
		fmt.Fprintf(h, "%q\n", c)
	}
	var buf [24]byte
	for _, it := range f.Items {
		fmt.Fprintf(h, "%q ", it.Rel)
		binary.LittleEndian.PutUint32(buf[0:], uint32(it.Label))
		binary.LittleEndian.PutUint64(buf[4:], uint64(it.Size))
		binary.LittleEndian.PutUint64(buf[12:], uint64(it.ModNanos))
		h.Write(buf[:20])
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// Load returns f's images preprocessed by p: from the cache when a set of
// the same files and geometry is there, else decoded (in parallel),
// written to the cache and returned. Files that do not decode are skipped
// and listed in Set.Skipped; a folder none of whose files decode is an
// error. Earlier sets of the same folder and geometry (the folder has
// changed since) are removed from the cache.
func Load(ctx context.Context, f *Folder, p Preprocess, opts Options) (*Set, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("preprocess: %w", err)
	}
	dir := opts.CacheDir
	if dir == "" {
		d, err := CacheDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("image set cache %s: %w (set %s to a writable folder)", dir, err, EnvCacheDir)
	}
	k := key(f, p)
	meta, pix := filepath.Join(dir, k+".json"), filepath.Join(dir, k+".pixels")
	if s, err := open(meta, pix, p); err == nil {
		s.Cached = true
		if opts.Progress != nil {
			opts.Progress(Progress{Done: s.Len() + len(s.Skipped), Total: s.Len() + len(s.Skipped), Skipped: len(s.Skipped), Cached: true})
		}
		return s, nil
	}
	s, err := build(ctx, f, p, k, dir, pix, opts)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(s)
	if err == nil {
		err = writeAtomic(meta, raw)
	}
	if err != nil {
		os.Remove(pix)
		return nil, fmt.Errorf("image set cache: %w", err)
	}
	prune(dir, s)
	return s, nil
}

// open reads a cached set, checking that its pixels are all there.
func open(meta, pix string, p Preprocess) (*Set, error) {
	raw, err := os.ReadFile(meta)
	if err != nil {
		return nil, err
	}
	var s Set
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	st, err := os.Stat(pix)
	if err != nil {
		return nil, err
	}
	if len(s.Names) != len(s.Labels) || st.Size() != int64(len(s.Labels))*int64(p.Pixels()) || s.Geometry != p.GeometryKey() {
		return nil, errors.New("cached set is incomplete")
	}
	s.Preprocess, s.pixels = p, pix
	return &s, nil
}

// decoded is one image's outcome.
type decoded struct {
	pix        []uint8
	skip       string // why it was skipped, or ""
	orientated bool
	converted  bool
}

// build decodes f's images with a pool of workers and writes the pixels in
// folder order; at most a few images per worker wait in memory.
func build(ctx context.Context, f *Folder, p Preprocess, k, dir, pixPath string, opts Options) (*Set, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	tmp, err := os.CreateTemp(dir, ".pixels-*")
	if err != nil {
		return nil, fmt.Errorf("image set cache %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	type job struct {
		i   int
		out chan decoded
	}
	jobs := make(chan job)
	order := make(chan chan decoded, 4*workers) // bounds what waits in memory
	for w := 0; w < workers; w++ {
		go func() {
			for j := range jobs {
				j.out <- decodeItem(filepath.Join(f.Dir, filepath.FromSlash(f.Items[j.i].Rel)), p)
			}
		}()
	}
	go func() {
		defer close(jobs)
		defer close(order)
		for i := range f.Items {
			out := make(chan decoded, 1)
			select {
			case order <- out:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- job{i, out}:
			case <-ctx.Done():
				return
			}
		}
	}()

	s := &Set{Key: k, Folder: f.Dir, Classes: f.Classes, Geometry: p.GeometryKey(), Notes: f.Notes, Preprocess: p}
	w := bufio.NewWriterSize(tmp, 1<<20)
	start := time.Now()
	last := time.Time{}
	i := 0
	for out := range order {
		var d decoded
		select {
		case d = <-out:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		it := f.Items[i]
		i++
		if d.skip != "" {
			s.Skipped = append(s.Skipped, Skip{Name: it.Rel, Reason: d.skip})
		} else {
			if _, err := w.Write(d.pix); err != nil {
				return nil, fmt.Errorf("image set cache: write %s: %w", tmp.Name(), err)
			}
			s.Labels = append(s.Labels, it.Label)
			s.Names = append(s.Names, it.Rel)
			if d.orientated {
				s.Rotated++
			}
			if d.converted {
				s.Converted++
			}
		}
		if opts.Progress != nil && (time.Since(last) > 100*time.Millisecond || i == len(f.Items)) {
			last = time.Now()
			opts.Progress(Progress{Done: i, Total: len(f.Items), Skipped: len(s.Skipped), Elapsed: time.Since(start)})
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if i != len(f.Items) {
		return nil, fmt.Errorf("image set: stopped after %d of %d images", i, len(f.Items))
	}
	if s.Len() == 0 {
		return nil, fmt.Errorf("image folder %s: %w: none of its %d image files could be read (first: %s: %s)", f.Dir, ErrLayout, len(f.Items), s.Skipped[0].Name, s.Skipped[0].Reason)
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("image set cache: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("image set cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), pixPath); err != nil {
		return nil, fmt.Errorf("image set cache: %w", err)
	}
	s.pixels = pixPath
	return s, nil
}

// decodeItem reads and preprocesses one file; any failure (or panic in a
// decoder) becomes a skip reason.
func decodeItem(path string, p Preprocess) (d decoded) {
	defer func() {
		if r := recover(); r != nil {
			d = decoded{skip: fmt.Sprintf("decoder failed: %v", r)}
		}
	}()
	img, err := DecodeFile(path)
	if err != nil {
		return decoded{skip: err.Error()}
	}
	return decoded{pix: p.Apply(img.RGB), orientated: img.Orientation > 1, converted: img.Converted != ""}
}

// writeAtomic writes data to path through a temporary file and a rename.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".meta-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// prune removes older sets of the same folder and geometry: they belong to
// a version of the folder that no longer exists.
func prune(dir string, s *Set) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			return p
		}
		return a
	}
	folder := abs(s.Folder)
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || name == s.Key+".json" {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		var other struct {
			Folder, Geometry string
		}
		if json.Unmarshal(raw, &other) != nil || abs(other.Folder) != folder || other.Geometry != s.Geometry {
			continue
		}
		k := strings.TrimSuffix(name, ".json")
		os.Remove(filepath.Join(dir, k+".json"))
		os.Remove(filepath.Join(dir, k+".pixels"))
	}
}

// Reader streams a set's images in order, a batch at a time.
type Reader struct {
	s    *Set
	f    *os.File
	r    *bufio.Reader
	next int
	buf  []uint8
}

// Reader opens the set's pixels for streaming.
func (s *Set) Reader() (*Reader, error) {
	f, err := os.Open(s.pixels)
	if err != nil {
		return nil, fmt.Errorf("image set %s: %w", s.Key, err)
	}
	return &Reader{s: s, f: f, r: bufio.NewReaderSize(f, 1<<20), buf: make([]uint8, s.Preprocess.Pixels())}, nil
}

// Next fills dst with up to len(labels) images as model input (normalized,
// CHW, one after another) and labels with their classes, and returns how
// many it filled: fewer at the end of the set, 0 and io.EOF after it.
func (r *Reader) Next(dst []float32, labels []int32) (int, error) {
	per := r.s.Preprocess.Pixels()
	n := 0
	for n < len(labels) && r.next < r.s.Len() {
		if len(dst) < (n+1)*per {
			return n, fmt.Errorf("image set: batch buffer of %d values holds %d images, not %d", len(dst), n, len(labels))
		}
		if _, err := io.ReadFull(r.r, r.buf); err != nil {
			return n, fmt.Errorf("image set %s: image %d: %w (cache file damaged: delete it to rebuild)", r.s.Key, r.next, err)
		}
		r.s.Preprocess.Normalize(dst[n*per:(n+1)*per], r.buf)
		labels[n] = r.s.Labels[r.next]
		r.next++
		n++
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Close releases the reader's file.
func (r *Reader) Close() error { return r.f.Close() }

// Open returns the set with the given key from the cache folder dir
// (CacheDir() when ""), as Load wrote it, streamed with preprocessing p
// (whose geometry must be the set's).
func Open(dir, key string, p Preprocess) (*Set, error) {
	if dir == "" {
		d, err := CacheDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	if key == "" || strings.ContainsAny(key, `/\.`) {
		return nil, fmt.Errorf("image set %q: not a set key", key)
	}
	s, err := open(filepath.Join(dir, key+".json"), filepath.Join(dir, key+".pixels"), p)
	if err != nil {
		return nil, fmt.Errorf("image set %s in %s: %w", key, dir, err)
	}
	return s, nil
}
