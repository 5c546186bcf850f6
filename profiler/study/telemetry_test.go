package study

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/worker"
)

func TestTelemetryRecorderDownsamples(t *testing.T) {
	start := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	r := NewTelemetryRecorder(start)
	r.WorkerStarted(start.Add(1500 * time.Millisecond))
	const n = 5000 // a 20-minute run at 4 samples/s
	for i := range n {
		phase := bench.PhaseMeasuring
		if i < 40 {
			phase = bench.PhaseWarmup
		}
		r.Add(start.Add(2*time.Second+time.Duration(i)*250*time.Millisecond), worker.Sample{
			Phase: phase, Throughput: 100 + float64(i%2)*20, LatencyMs: 10, RSS: 200 << 20, CPUPct: 180, CPUTempC: 61.25,
		})
		if len(r.pts) > 2*MaxTelemetryPoints {
			t.Fatalf("recorder holds %d points", len(r.pts))
		}
	}
	tel := r.Telemetry(20 * time.Minute)
	if tel.Len() > MaxTelemetryPoints || tel.Len() < MaxTelemetryPoints/2 {
		t.Fatalf("%d points kept", tel.Len())
	}
	if err := tel.validate(); err != nil {
		t.Fatal(err)
	}
	if tel.WorkerS != 1.5 || tel.DurationS != 1200 || tel.T[0] < 2 || tel.T[tel.Len()-1] != 2+float64(n-1)/4 {
		t.Fatalf("times: worker %v duration %v first %v last %v", tel.WorkerS, tel.DurationS, tel.T[0], tel.T[tel.Len()-1])
	}
	if tel.Phase[0] != 'w' || tel.Phase[tel.Len()-1] != 'm' {
		t.Fatalf("phases %q…", tel.Phase[:10])
	}
	// Averaging keeps the level: throughput alternates 100/120.
	var sum float64
	for _, v := range tel.Throughput {
		sum += v
	}
	if mean := sum / float64(tel.Len()); math.Abs(mean-110) > 0.5 {
		t.Fatalf("mean throughput %v, want 110", mean)
	}
	// Columns never measured are left out.
	if tel.GPUBytes != nil || tel.TempC != nil || tel.PowerW != nil {
		t.Fatal("GPU columns kept on a CPU run")
	}
	at, s := tel.At(tel.Len() - 1)
	if at != time.Duration(tel.T[tel.Len()-1]*float64(time.Second)) || s.Phase != "measuring" || s.RSS != 200<<20 || s.CPUTempC != 61.25 {
		t.Fatalf("At: %v %+v", at, s)
	}
	if NewTelemetryRecorder(start).Telemetry(time.Second) != nil {
		t.Fatal("telemetry without samples")
	}
}

func TestTelemetryRoundTripsAndBadTelemetryIsDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.jsonl")
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	r := NewTelemetryRecorder(time.Now())
	for i := range 10 {
		r.Add(time.Now().Add(time.Duration(i)*time.Second), worker.Sample{Phase: "measuring", Throughput: 12.3456789, GPUBytes: 1 << 30, TempC: 55, PowerW: 300})
	}
	good := Record{Experiment: Experiment{Model: "m", Precision: "fp32", EP: "cuda", Batch: 1}, Status: StatusOK, Telemetry: r.Telemetry(10 * time.Second)}
	bad := good
	bad.Experiment.Precision = "int8"
	bt := *good.Telemetry
	bt.TempC = bt.TempC[:3]
	bad.Telemetry = &bt
	for _, rec := range []Record{good, bad} {
		if err := w.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	recs, warns, err := ReadResults(path)
	if err != nil || len(recs) != 2 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	if recs[0].Telemetry.Len() != 10 || recs[0].Telemetry.Throughput[0] != 12.35 || recs[0].Telemetry.GPUBytes[0] != 1<<30 {
		t.Fatalf("telemetry read back: %+v", recs[0].Telemetry)
	}
	if recs[1].Telemetry != nil || len(warns) != 1 || !strings.Contains(warns[0].String(), "line 2: telemetry ignored (3 temp_c values for 10 samples)") {
		t.Fatalf("bad telemetry: %+v, warnings %v", recs[1].Telemetry, warns)
	}
}

// TestStudyKeepsTelemetry: a real worker's samples end up in its record.
func TestStudyKeepsTelemetry(t *testing.T) {
	dir := t.TempDir()
	cfg := studyConfig(t, dir, "crash-on-int4")
	cfg.Duration = 700 * time.Millisecond
	plan, _ := Plan(PlanConfig{Models: []string{"tiny"}, Precisions: []string{"fp32"}, Batches: []int{2}, Threads: 1})
	recs, err := Run(context.Background(), plan, cfg)
	if err != nil || len(recs) != 1 || !recs[0].OK() {
		t.Fatalf("%v %+v", err, recs)
	}
	tel := recs[0].Telemetry
	if tel.Len() == 0 || tel.WorkerS <= 0 || tel.DurationS != 0.7 || !strings.Contains(tel.Phase, "m") || tel.RSS == nil {
		t.Fatalf("telemetry %+v", tel)
	}
	if err := tel.validate(); err != nil {
		t.Fatal(err)
	}
	if end := recs[0].Finished.Sub(recs[0].Started).Seconds(); tel.T[tel.Len()-1] > end {
		t.Fatalf("last sample at %vs, after the record finished (%vs)", tel.T[tel.Len()-1], end)
	}
	back, _, _ := ReadResults(cfg.Out)
	if back[0].Telemetry.Len() != tel.Len() {
		t.Fatal("telemetry not in the results file")
	}
}

func TestTelemetryNote(t *testing.T) {
	tel := &Telemetry{T: []float64{1}, Phase: "m"}
	cases := []struct {
		rec  Record
		want string
	}{
		{Record{Schema: SchemaVersion, Status: StatusOK, Telemetry: tel}, ""},
		{Record{Schema: 1, Status: StatusOK}, "from before telemetry was kept (schema 1)"},
		{Record{Schema: 2, Status: StatusOK}, "from before telemetry was kept (schema 2)"},
		{Record{Schema: SchemaVersion, Status: StatusFailed}, "failed before its first sample"},
		{Record{Schema: SchemaVersion, Status: StatusOK}, "no samples were taken"},
	}
	for _, c := range cases {
		if got := c.rec.TelemetryNote(); got != c.want {
			t.Errorf("schema %d %s: %q, want %q", c.rec.Schema, c.rec.Status, got, c.want)
		}
	}
}
