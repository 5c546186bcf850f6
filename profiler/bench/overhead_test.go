package bench_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/ort"
)

// BenchmarkHarnessOverhead compares quantscope's measured throughput on
// deit-tiny FP32 (CPU, batch 8, one thread per physical core) with a bare loop
// calling ONNX Runtime's Run on the same file, batch and threads. The two
// samples/s figures it reports should agree within 2%.
//
//	go test -run '^$' -bench HarnessOverhead -benchtime 20x ./profiler/bench
func BenchmarkHarnessOverhead(b *testing.B) {
	if _, err := ort.Init(""); err != nil {
		b.Skip(err)
	}
	res, err := zoo.Resolve(context.Background(), "deit-tiny")
	if err != nil {
		b.Fatal(err)
	}
	const batch = 8
	threads := ort.PhysicalCores()
	cfg := ort.SessionConfig{IntraOpThreads: threads}
	const runsPerRound = 20

	// One session alive at a time: an idle session's spinning thread pool
	// would steal cores from the one being timed.
	measure := func(harness bool) (time.Duration, float64) {
		bd, err := ort.NewBound(res.Path, cfg, batch, 1)
		if err != nil {
			b.Fatal(err)
		}
		defer bd.Close()
		for range 5 { // warm-up outside the measurement
			if err := bd.Run(); err != nil {
				b.Fatal(err)
			}
		}
		if harness {
			lr, err := bench.Loop(context.Background(), bd, bench.LoopConfig{Iterations: runsPerRound, MinWarmup: 1, MaxWarmup: 1}, nil)
			if err != nil {
				b.Fatal(err)
			}
			return lr.Wall, lr.Throughput(batch)
		}
		t := time.Now()
		for range runsPerRound {
			if err := bd.Run(); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(t), 0
	}

	var bareRuns int
	var bareWall time.Duration
	var harnessTput float64
	for b.Loop() {
		w, _ := measure(false)
		bareWall += w
		bareRuns += runsPerRound
		_, tput := measure(true)
		harnessTput += tput
	}
	bareTput := float64(bareRuns*batch) / bareWall.Seconds()
	q := harnessTput / float64(b.N)
	b.ReportMetric(bareTput, "bare-samples/s")
	b.ReportMetric(q, "quantscope-samples/s")
	b.ReportMetric(100*(bareTput-q)/bareTput, "overhead-%")
	if os.Getenv("QUANTSCOPE_VERBOSE") != "" {
		b.Logf("bare %.2f samples/s, quantscope %.2f samples/s", bareTput, q)
	}
}
