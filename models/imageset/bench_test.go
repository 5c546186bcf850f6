package imageset

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// photoFolder writes n photo-sized (500×375, ImageNet's typical) noisy
// JPEGs into 10 class folders.
func photoFolder(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		m := image.NewRGBA(image.Rect(0, 0, 500, 375))
		base := color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
		for y := 0; y < 375; y++ {
			for x := 0; x < 500; x++ {
				m.SetRGBA(x, y, color.RGBA{base.R + uint8(x/4), base.G + uint8(y/3), base.B + uint8(rng.IntN(32)), 255})
			}
		}
		cls := filepath.Join(dir, fmt.Sprintf("c%d", i%10))
		os.MkdirAll(cls, 0o755)
		if err := os.WriteFile(filepath.Join(cls, fmt.Sprintf("%04d.jpg", i)), encodeJPEG(b, m, 90), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// BenchmarkLoad decodes and preprocesses a folder of photo-sized JPEGs
// into the cache (224 px, bicubic), reporting images/s and the peak Go
// heap while it runs: the heap stays near a few images per worker,
// whatever the folder's size.
func BenchmarkLoad(b *testing.B) {
	const n = 200
	dir := photoFolder(b, n)
	f, err := Scan(dir, "")
	if err != nil {
		b.Fatal(err)
	}
	p := Preprocess{Height: 224, Width: 224, CropPct: 0.875, Interpolation: Bicubic, Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}}
	var peak uint64
	var mu sync.Mutex
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				mu.Lock()
				peak = max(peak, ms.HeapInuse)
				mu.Unlock()
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := Load(context.Background(), f, p, Options{CacheDir: b.TempDir()}); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	close(stop)
	b.ReportMetric(float64(n*b.N)/el.Seconds(), "images/s")
	mu.Lock()
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	mu.Unlock()
}
