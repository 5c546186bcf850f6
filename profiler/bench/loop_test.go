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
	if len(res.Durations) != 20 || p.Runs.Load() != 20 || p.PhaseName() != "measuring" {
		t.Errorf("timed %d runs, progress %d %q", len(res.Durations), p.Runs.Load(), p.PhaseName())
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
