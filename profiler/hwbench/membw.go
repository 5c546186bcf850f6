package hwbench

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// MemReading is a host memory bandwidth measurement.
type MemReading struct {
	// GBs is the best round's copy bandwidth, bytes read plus bytes written
	// per second (STREAM's convention for Copy), GB/s.
	GBs     float64 `json:"gbs"`
	Bytes   int64   `json:"bytes"`   // copied per round (the source array)
	Threads int     `json:"threads"` // goroutines copying at once
	Rounds  int     `json:"rounds"`
}

// MeasureHostMemory copies a bytes-long array into another with threads
// goroutines at once, each its own slice, for about dur (at least three
// rounds), and returns the best round. Go's copy is memmove, which streams
// large blocks with non-temporal stores, so a round moves 2 × bytes through
// DRAM when bytes is well beyond the last-level cache.
func MeasureHostMemory(ctx context.Context, threads int, bytes int64, dur time.Duration) (MemReading, error) {
	threads = max(1, threads)
	if bytes < int64(threads)*4096 {
		return MemReading{}, fmt.Errorf("host memory: %d bytes is too little for %d threads", bytes, threads)
	}
	src := make([]byte, bytes)
	dst := make([]byte, bytes)
	defer func() {
		src, dst = nil, nil
		debug.FreeOSMemory()
	}()
	chunk := bytes / int64(threads)
	// Touch every page once so the first round does not time page faults.
	fill := func(b []byte, v byte) {
		for i := 0; i < len(b); i += 4096 {
			b[i] = v
		}
	}
	copyAll := func() time.Duration {
		var wg sync.WaitGroup
		start := time.Now()
		for t := 0; t < threads; t++ {
			lo, hi := int64(t)*chunk, int64(t+1)*chunk
			if t == threads-1 {
				hi = bytes
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				copy(dst[lo:hi], src[lo:hi])
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	fill(src, 1)
	fill(dst, 2)
	r := MemReading{Bytes: bytes, Threads: threads}
	var best time.Duration
	deadline := time.Now().Add(dur)
	for r.Rounds < 3 || time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return MemReading{}, err
		}
		el := copyAll()
		r.Rounds++
		if best == 0 || el < best {
			best = el
		}
	}
	if dst[bytes-1] != src[bytes-1] {
		return MemReading{}, fmt.Errorf("host memory: the copy did not arrive")
	}
	r.GBs = 2 * float64(bytes) / best.Seconds() / 1e9
	return r, nil
}
