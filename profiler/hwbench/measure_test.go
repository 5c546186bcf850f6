package hwbench

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestMeasureClock: the dependent-add chain gives a plausible clock, and
// never more than the fastest x86 parts run at (a kernel the CPU could
// shortcut would read faster).
func TestMeasureClock(t *testing.T) {
	r, err := MeasureClock(context.Background(), 1, 50*time.Millisecond)
	if errors.Is(err, ErrNoClockMeasure) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if r.GHz < 0.3 || r.GHz > 7 || len(r.PerCore) != 1 || r.Bursts < 3 {
		t.Errorf("clock %+v", r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := MeasureClock(ctx, 1, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

func TestMeasureHostMemory(t *testing.T) {
	r, err := MeasureHostMemory(context.Background(), 2, 8<<20, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.GBs <= 0 || r.Rounds < 3 || r.Bytes != 8<<20 || r.Threads != 2 {
		t.Errorf("reading %+v", r)
	}
	if _, err := MeasureHostMemory(context.Background(), 4, 1000, time.Millisecond); err == nil {
		t.Error("1000 bytes over 4 threads measured")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := MeasureHostMemory(ctx, 1, 1<<20, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}
