package hwbench

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"time"
)

// ErrNoClockMeasure is returned where the core clock cannot be measured (an
// architecture without the dependent-add kernel).
var ErrNoClockMeasure = errors.New("core clock measurement needs amd64")

// ClockReading is the core clock as measured: cycles counted by a chain of
// dependent adds, over wall time.
type ClockReading struct {
	// GHz is the mean over the loaded cores of each core's best burst: the
	// all-core clock while every measured core is busy.
	GHz float64 `json:"ghz"`
	// PerCore is each measured core's best burst, GHz.
	PerCore []float64 `json:"per_core"`
	// Bursts is how many bursts were timed in all.
	Bursts int `json:"bursts"`
}

// burstCycles is the length of one timed burst, in core cycles: about 1 ms
// at 4 GHz, short enough for some bursts to run undisturbed on a busy
// machine (the best burst per core is kept), long enough for the timer's
// resolution not to matter.
const burstCycles = 4_000_000

// MeasureClock runs the dependent-add kernel on cores goroutines at once,
// each locked to its own OS thread, for about dur, and returns the clock it
// implies. The best burst per core is kept: a burst the scheduler
// interrupted only looks slower, never faster, so the maximum is the clock.
func MeasureClock(ctx context.Context, cores int, dur time.Duration) (ClockReading, error) {
	if !haveAddChain {
		return ClockReading{}, ErrNoClockMeasure
	}
	cores = max(1, cores)
	iters := uint64(burstCycles / chainAdds)
	best := make([]float64, cores)
	counts := make([]int, cores)
	var wg sync.WaitGroup
	deadline := time.Now().Add(dur)
	for c := 0; c < cores; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for n := 0; n < 3 || time.Now().Before(deadline); n++ {
				if ctx.Err() != nil {
					return
				}
				start := time.Now()
				addChain(iters)
				el := time.Since(start).Seconds()
				if el > 0 {
					best[c] = max(best[c], float64(iters*chainAdds)/el/1e9)
				}
				counts[c]++
			}
		}(c)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return ClockReading{}, err
	}
	r := ClockReading{PerCore: best}
	for c := range best {
		r.GHz += best[c] / float64(cores)
		r.Bursts += counts[c]
	}
	slices.Sort(r.PerCore)
	return r, nil
}
