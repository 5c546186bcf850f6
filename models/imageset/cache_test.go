package imageset

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var small = Preprocess{Height: 16, Width: 16, CropPct: 0.875, Interpolation: Bicubic,
	Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}}

func TestLoadFolder(t *testing.T) {
	cache := t.TempDir()
	f, err := Scan(folderDir, "")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	var last Progress
	s, err := Load(context.Background(), f, small, Options{CacheDir: cache, Workers: 3, Progress: func(p Progress) { calls.Add(1); last = p }})
	if err != nil {
		t.Fatal(err)
	}
	if s.Cached || s.Len() != 11 || len(s.Skipped) != 1 || !strings.Contains(s.Skipped[0].Name, "s04-truncated.jpg") {
		t.Fatalf("set: cached %v, %d images, skipped %+v", s.Cached, s.Len(), s.Skipped)
	}
	// Converted: gray, 16-bit, paletted, CMYK; rotated: the EXIF one.
	if s.Rotated != 1 || s.Converted != 4 {
		t.Errorf("rotated %d converted %d, want 1 and 4", s.Rotated, s.Converted)
	}
	if last.Done != 12 || last.Total != 12 || last.Skipped != 1 || calls.Load() == 0 {
		t.Errorf("last progress %+v after %d calls", last, calls.Load())
	}
	if got := s.Summary(); got != "11 images of 4 classes (1 unreadable file skipped, 1 rotated by EXIF, 4 converted to RGB)" {
		t.Errorf("Summary = %q", got)
	}
	// Streaming returns, in order, each file's pixels as decoding and
	// preprocessing it alone gives.
	r, err := s.Reader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	per := small.Pixels()
	dst := make([]float32, 4*per)
	labels := make([]int32, 4)
	seen := 0
	for {
		n, err := r.Next(dst, labels)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < n; j++ {
			name := s.Names[seen+j]
			img, err := DecodeFile(filepath.Join(folderDir, name))
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, per)
			small.Normalize(want, small.Apply(img.RGB))
			for k := range want {
				if dst[j*per+k] != want[k] {
					t.Fatalf("%s value %d = %v, want %v", name, k, dst[j*per+k], want[k])
				}
			}
			if labels[j] != s.Labels[seen+j] {
				t.Fatalf("label of %s", name)
			}
		}
		seen += n
	}
	if seen != 11 {
		t.Fatalf("streamed %d images", seen)
	}

	// A second Load reads the cache; another normalization applies to the
	// same cached pixels.
	other := small
	other.Mean = [3]float32{0, 0, 0}
	other.Std = [3]float32{1, 1, 1}
	s2, err := Load(context.Background(), f, other, Options{CacheDir: cache})
	if err != nil || !s2.Cached || s2.Key != s.Key {
		t.Fatalf("second load: cached %v key %s vs %s, %v", s2.Cached, s2.Key, s.Key, err)
	}
	r2, _ := s2.Reader()
	defer r2.Close()
	if _, err := r2.Next(dst[:per], labels[:1]); err != nil {
		t.Fatal(err)
	}
	for _, v := range dst[:per] {
		if v < 0 || v > 1 {
			t.Fatalf("unit normalization gave %v", v)
		}
	}
	// Other geometry: another key.
	bigger := small
	bigger.Height, bigger.Width = 24, 24
	s3, err := Load(context.Background(), f, bigger, Options{CacheDir: cache})
	if err != nil || s3.Cached || s3.Key == s.Key {
		t.Fatalf("other geometry: cached %v, same key %v, %v", s3.Cached, s3.Key == s.Key, err)
	}
}

// Changing a file changes the key, and the stale set of the same folder is
// removed from the cache.
func TestLoadInvalidatesAndPrunes(t *testing.T) {
	cache, dir := t.TempDir(), t.TempDir()
	for _, cls := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(dir, cls), 0o755)
		for i := 0; i < 3; i++ {
			os.WriteFile(filepath.Join(dir, cls, string(rune('0'+i))+".png"), encodePNG(t, shape(20+i, 17, i%3, i)), 0o644)
		}
	}
	f, _ := Scan(dir, "")
	s1, err := Load(context.Background(), f, small, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	p := filepath.Join(dir, "a", "0.png")
	os.WriteFile(p, encodePNG(t, shape(30, 30, 2, 2)), 0o644)
	os.Chtimes(p, later, later)
	f2, _ := Scan(dir, "")
	s2, err := Load(context.Background(), f2, small, Options{CacheDir: cache})
	if err != nil || s2.Cached || s2.Key == s1.Key {
		t.Fatalf("changed folder: cached %v same key %v, %v", s2.Cached, s2.Key == s1.Key, err)
	}
	if _, err := os.Stat(filepath.Join(cache, s1.Key+".pixels")); !os.IsNotExist(err) {
		t.Errorf("stale set not pruned: %v", err)
	}
	// A damaged cache file is rebuilt, not trusted.
	os.Truncate(filepath.Join(cache, s2.Key+".pixels"), 10)
	s3, err := Load(context.Background(), f2, small, Options{CacheDir: cache})
	if err != nil || s3.Cached {
		t.Fatalf("damaged cache: cached %v, %v", s3.Cached, err)
	}
}

func TestLoadNothingReadable(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "x"), 0o755)
	os.WriteFile(filepath.Join(dir, "x", "bad.jpg"), []byte("not a jpeg"), 0o644)
	f, err := Scan(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Load(context.Background(), f, small, Options{CacheDir: t.TempDir()})
	if !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), "none of its 1 image files could be read") {
		t.Errorf("Load = %v", err)
	}
}

func TestLoadCanceled(t *testing.T) {
	f, _ := Scan(folderDir, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cache := t.TempDir()
	if _, err := Load(ctx, f, small, Options{CacheDir: cache}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Load = %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "*")); len(left) != 0 {
		t.Errorf("canceled Load left %v", left)
	}
}

func TestOpen(t *testing.T) {
	cache := t.TempDir()
	f, _ := Scan(folderDir, "")
	s, err := Load(context.Background(), f, small, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	o, err := Open(cache, s.Key, small)
	if err != nil || o.Len() != s.Len() || o.Key != s.Key {
		t.Fatalf("Open = %+v, %v", o, err)
	}
	other := small
	other.Height = 20
	for name, try := range map[string]func() error{
		"wrong geometry": func() error { _, err := Open(cache, s.Key, other); return err },
		"unknown key":    func() error { _, err := Open(cache, "0123456789ab", small); return err },
		"path as key":    func() error { _, err := Open(cache, "../x", small); return err },
	} {
		if try() == nil {
			t.Errorf("%s opened", name)
		}
	}
}
