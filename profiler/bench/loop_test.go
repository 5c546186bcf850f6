package bench

import (
	"context"
	"errors"
	"testing"
	"time"
)

// sleepRunner takes the listed durations in turn, then the last one forever.
type sleepRunner struct {
	d     []time.Duration
	calls int
	fail  int // fail on this call (1-based), 0 = never
}

func (s *sleepRunner) Run() error {
	s.calls++
	if s.fail == s.calls {
		return errors.New("kernel failed")
	}
	i := min(s.calls-1, len(s.d)-1)
	time.Sleep(s.d[i])
	return nil
}

func TestLoopWarmsUpUntilSettled(t *testing.T) {
	ms := time.Millisecond
	// Five noisy runs, then steady 1 ms runs: warm-up must end once a window
	// of steady runs is seen, not before.
	r := &sleepRunner{d: []time.Duration{8 * ms, 1 * ms, 6 * ms, 1 * ms, 7 * ms, 1 * ms}}
	var p Progress
	res, err := Loop(context.Background(), r, LoopConfig{Iterations: 20, SettleCV: 0.5}, &p)
	if err != nil {
		t.Fatal(err)
	}
	// Never before the noisy runs have left the window (10); a little later
	// when the scheduler makes a "steady" sleep jitter.
	if !res.Settled || res.WarmupRuns < 10 || res.WarmupRuns > 30 {
		t.Errorf("warm-up %d runs settled=%v, want from 10 (5 noisy + a window of 5 steady) to 30", res.WarmupRuns, res.Settled)
	}
	if len(res.Durations) != 20 || p.Runs() != 20 || p.PhaseName() != "measuring" {
		t.Errorf("timed %d runs, progress %d %q", len(res.Durations), p.Runs(), p.PhaseName())
	}
	if tp := res.Throughput(8); tp <= 0 || tp > 8*1000 {
		t.Errorf("throughput %v samples/s for ≥1 ms runs of batch 8", tp)
	}
}

func TestLoopBoundsWarmupAndHonoursDuration(t *testing.T) {
	ms := time.Millisecond
	r := &sleepRunner{d: []time.Duration{1 * ms, 5 * ms}}
	for i := 0; i < 6; i++ {
		r.d = append(r.d, 1*ms, 5*ms) // never settles
	}
	res, err := Loop(context.Background(), r, LoopConfig{MaxWarmup: 12, Duration: 50 * ms, SettleCV: 0.01}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Settled || res.WarmupRuns != 12 {
		t.Errorf("warm-up %d settled=%v, want the 12-run bound", res.WarmupRuns, res.Settled)
	}
	if res.Wall < 50*ms || len(res.Durations) < 10 {
		t.Errorf("timed phase %s with %d runs: want ≥ 50 ms and ≥ 10 runs", res.Wall, len(res.Durations))
	}
}

func TestLoopStopsOnErrorAndCancel(t *testing.T) {
	r := &sleepRunner{d: []time.Duration{0}, fail: 3}
	if _, err := Loop(context.Background(), r, LoopConfig{Iterations: 5}, nil); err == nil || r.calls != 3 {
		t.Errorf("err %v after %d calls", err, r.calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Loop(ctx, &sleepRunner{d: []time.Duration{0}}, LoopConfig{}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled loop returned %v", err)
	}
}

// countingRunner records the progress a sampler would read at each call.
type countingRunner struct {
	p     *Progress
	seen  []Phase
	calls int
}

func (c *countingRunner) Run() error {
	phase, runs := c.p.Snapshot()
	c.seen = append(c.seen, phase)
	if phase == PhaseMeasuring && runs != int64(c.calls-c.warm()) {
		return errors.New("measuring phase read with another phase's run count")
	}
	c.calls++
	return nil
}

func (c *countingRunner) warm() int {
	n := 0
	for _, s := range c.seen {
		if s == PhaseWarmup {
			n++
		}
	}
	return n
}

// TestProgressPhaseAndCountAreOneReading checks the timed phase starts at
// zero runs in the same reading that says "measuring": a sampler hammering
// Snapshot concurrently never sees the warm-up's count under the timed
// phase, and the count only grows within a phase.
func TestProgressPhaseAndCountAreOneReading(t *testing.T) {
	var p Progress
	if ph, n := p.Snapshot(); ph != "" || n != 0 {
		t.Fatalf("fresh progress %q %d", ph, n)
	}
	const warm, timed = 300, 5
	stop := make(chan struct{})
	bad := make(chan string, 1)
	go func() {
		lastPhase, last := Phase(""), int64(0)
		for {
			select {
			case <-stop:
				close(bad)
				return
			default:
			}
			ph, n := p.Snapshot()
			switch {
			case ph == PhaseMeasuring && n > timed:
				bad <- "measuring with a count above the timed runs"
				return
			case ph == lastPhase && n < last:
				bad <- "count went backwards within a phase"
				return
			}
			lastPhase, last = ph, n
		}
	}()
	r := &countingRunner{p: &p}
	_, err := Loop(context.Background(), r, LoopConfig{MinWarmup: warm, MaxWarmup: warm, SettleCV: 1e-12, Iterations: timed}, &p)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	if msg, ok := <-bad; ok {
		t.Fatal(msg)
	}
	if ph, n := p.Snapshot(); ph != PhaseMeasuring || n != timed {
		t.Errorf("after the loop: %q %d, want measuring %d", ph, n, timed)
	}
}

func TestRateNeverNegative(t *testing.T) {
	for _, c := range []struct {
		name             string
		prevPhase, phase Phase
		prev, runs       int64
		want             float64
	}{
		{"steady", PhaseMeasuring, PhaseMeasuring, 10, 20, 40},      // 10 runs × batch 2 / 0.5 s
		{"phase change", PhaseWarmup, PhaseMeasuring, 250, 3, 12},   // counts from 0, not −247
		{"went backwards", PhaseMeasuring, PhaseMeasuring, 9, 3, 0}, // never negative
		{"start", "", PhaseWarmup, 0, 1, 4},
	} {
		if got := Rate(c.prevPhase, c.prev, c.phase, c.runs, 2, 0.5); got != c.want {
			t.Errorf("%s: rate %v, want %v", c.name, got, c.want)
		}
	}
	if got := Rate(PhaseMeasuring, 1, PhaseMeasuring, 5, 1, 0); got != 0 {
		t.Errorf("zero interval: %v", got)
	}
}

func TestBeforeTimedRunsBetweenPhases(t *testing.T) {
	var p Progress
	var phaseAtCall Phase
	calls := 0
	cfg := LoopConfig{MinWarmup: 5, MaxWarmup: 5, Iterations: 3, BeforeTimed: func() {
		calls++
		phaseAtCall = p.PhaseName()
	}}
	if _, err := Loop(context.Background(), &sleepRunner{d: []time.Duration{0}}, cfg, &p); err != nil {
		t.Fatal(err)
	}
	if calls != 1 || phaseAtCall != PhaseWarmup {
		t.Errorf("BeforeTimed called %d times, in phase %q; want once, after warm-up", calls, phaseAtCall)
	}
}
