package study

import (
	"context"
	"testing"
	"time"

	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/worker"
)

// recorded is a record of a run with four samples, as runOne writes it.
func recorded(model string, start time.Time) Record {
	r := NewTelemetryRecorder(start)
	r.WorkerStarted(start.Add(10 * time.Second)) // building the model took 10 s
	for i := range 4 {
		r.Add(start.Add(11*time.Second+time.Duration(i)*250*time.Millisecond), worker.Sample{Phase: "measuring", Throughput: float64(100 + i)})
	}
	return Record{Schema: SchemaVersion, Experiment: Experiment{Model: model, Precision: "fp32", EP: "cpu", Batch: 1}, Status: StatusOK,
		Started: start, Finished: start.Add(12 * time.Second), Metrics: &bench.Metrics{Throughput: 101}, Telemetry: r.Telemetry(time.Second)}
}

func TestTimeline(t *testing.T) {
	start := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	tl := Timeline(recorded("a", start), 3)
	if len(tl) != 7 {
		t.Fatalf("%d updates", len(tl))
	}
	if tl[0].Update.Stage != StagePreparing || tl[1].At != 10*time.Second || tl[1].Update.Sample != nil ||
		tl[2].At != 11*time.Second || tl[2].Update.Sample.Throughput != 100 || tl[6].At != 12*time.Second || tl[6].Update.Record == nil || tl[6].Update.Index != 3 {
		t.Fatalf("timeline %+v", tl)
	}
	old := recorded("b", start)
	old.Telemetry, old.Schema, old.Status = nil, 1, StatusFailed
	tl = Timeline(old, 0)
	if len(tl) != 3 || tl[2].Update.Stage != StageFailed || tl[2].At != 12*time.Second {
		t.Fatalf("timeline without telemetry %+v", tl)
	}
}

func TestReplayerPlaysRecordedTime(t *testing.T) {
	start := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	// Two records an hour apart: the gap is played as MaxGap.
	recs := []Record{recorded("a", start), recorded("b", start.Add(time.Hour))}
	wall := time.Unix(0, 0)
	var slept time.Duration
	r := &Replayer{Records: recs, Speed: 4, MaxGap: time.Second,
		Wall:  func() time.Time { return wall },
		Sleep: func(_ context.Context, d time.Duration) error { wall = wall.Add(d); slept += d; return nil }}
	r.Rewind()
	if !r.Now().Equal(start) {
		t.Fatalf("clock at %v, want the first record's start", r.Now())
	}
	var got []Update
	cfg := RunConfig{OnUpdate: func(u Update) { got = append(got, u) }}
	plan := []Experiment{{Model: "a", Precision: "fp32", EP: "cpu", Batch: 1, Repeat: 0}}
	out, err := r.Run(context.Background(), plan, cfg)
	if err != nil || len(out) != 1 || len(got) != 7 {
		t.Fatalf("first segment: %d records, %d updates, %v", len(out), len(got), err)
	}
	// 12 s recorded: the 10 s of building is cut to 1 s, so 3 s at 4× = 0.75 s.
	if slept != 750*time.Millisecond {
		t.Fatalf("slept %v", slept)
	}
	if !got[2].Time.Equal(start.Add(11*time.Second)) || got[2].Experiment != plan[0] {
		t.Fatalf("sample update %+v", got[2])
	}
	out, err = r.Run(context.Background(), []Experiment{recs[1].Experiment}, cfg)
	if err != nil || len(out) != 1 || !got[7].Time.Equal(start.Add(time.Hour)) {
		t.Fatalf("second segment at %v, %v", got[7].Time, err)
	}
	if slept > 2*time.Second {
		t.Fatalf("an hour's gap was played: slept %v", slept)
	}
	if _, err := r.Run(context.Background(), []Experiment{{Model: "c"}}, cfg); err == nil {
		t.Fatal("played past the last record")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.Rewind()
	r.Sleep = nil // the real timer, canceled
	if _, err := r.Run(ctx, plan, cfg); err == nil {
		t.Fatal("a canceled replay went on")
	}
}
