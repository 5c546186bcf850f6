package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Runner runs the model once on its prepared inputs.
type Runner interface {
	Run() error
}

// LoopConfig bounds the warm-up and the timed phase.
type LoopConfig struct {
	// MinWarmup runs always happen first (default 5).
	MinWarmup int
	// MaxWarmup bounds warm-up when timings never settle (default 200);
	// MaxWarmupTime bounds it in time (default 10 s).
	MaxWarmup     int
	MaxWarmupTime time.Duration
	// SettleWindow runs whose CV is at most SettleCV end the warm-up
	// (defaults 5 and 0.05).
	SettleWindow int
	SettleCV     float64
	// Duration of the timed phase (default 5 s), or exactly Iterations runs
	// when Iterations > 0. MinIterations runs are made even past Duration
	// (default 10), so slow models still get a distribution.
	Duration      time.Duration
	Iterations    int
	MinIterations int
	// BeforeTimed, when set, is called once between the warm-up and the
	// timed phase (a caller starts its per-phase measurements there).
	BeforeTimed func()
}

func (c LoopConfig) withDefaults() LoopConfig {
	if c.MinWarmup <= 0 {
		c.MinWarmup = 5
	}
	if c.MaxWarmup <= 0 {
		c.MaxWarmup = 200
	}
	if c.MaxWarmupTime <= 0 {
		c.MaxWarmupTime = 10 * time.Second
	}
	if c.SettleWindow <= 1 {
		c.SettleWindow = 5
	}
	if c.SettleCV <= 0 {
		c.SettleCV = 0.05
	}
	if c.Duration <= 0 && c.Iterations <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.MinIterations <= 0 {
		c.MinIterations = 10
	}
	return c
}

// Phase is the part of a measurement a reading belongs to: the worker's
// samples carry it, the TUI shows it, a record's telemetry keeps it.
type Phase string

// Phases of a measurement. Progress reports warm-up and measuring, and ""
// before the loop starts; PhaseLoading names that time (the session
// opening) where a phase must be spelled out, as in a replayed record.
// PhaseAccuracy is the worker's pass over a labelled image set.
const (
	PhaseLoading   Phase = "loading"
	PhaseWarmup    Phase = "warmup"
	PhaseMeasuring Phase = "measuring"
	PhaseAccuracy  Phase = "accuracy"
)

// phaseCodes numbers the phases for Progress's packed state (0: not started).
var phaseCodes = []Phase{"", PhaseWarmup, PhaseMeasuring}

// Progress is read by a sampler while the loop runs. The phase and the run
// count of that phase are one atomic word, so a reader never sees a phase
// with the other phase's count (which once charted a spike and then a
// negative throughput at the start of the timed phase).
type Progress struct {
	state     atomic.Uint64 // phase code << 56 | runs completed in that phase
	LastNanos atomic.Int64  // duration of the last run
}

const phaseShift = 56

// begin enters phase with no runs completed.
func (p *Progress) begin(phase Phase) {
	code := uint64(0)
	for i, n := range phaseCodes {
		if n == phase {
			code = uint64(i)
		}
	}
	p.state.Store(code << phaseShift)
}

// addRun counts one completed run of the current phase.
func (p *Progress) addRun() { p.state.Add(1) }

// Snapshot returns the current phase ("" before the loop starts) and the
// runs completed in it, read together.
func (p *Progress) Snapshot() (phase Phase, runs int64) {
	s := p.state.Load()
	code := int(s >> phaseShift)
	if code < len(phaseCodes) {
		phase = phaseCodes[code]
	}
	return phase, int64(s & (1<<phaseShift - 1))
}

// PhaseName returns the current phase ("" before the loop starts).
func (p *Progress) PhaseName() Phase {
	phase, _ := p.Snapshot()
	return phase
}

// Runs returns the runs completed in the current phase.
func (p *Progress) Runs() int64 {
	_, runs := p.Snapshot()
	return runs
}

// Rate is the throughput, in samples per second, between two snapshots of
// a Progress taken dt seconds apart: a phase change starts the count from
// zero, and a count that went backwards (it cannot, but a rate must never
// be negative) gives 0.
func Rate(prevPhase Phase, prevRuns int64, phase Phase, runs int64, batch int, dt float64) float64 {
	if phase != prevPhase {
		prevRuns = 0
	}
	if dt <= 0 || runs < prevRuns {
		return 0
	}
	return float64(runs-prevRuns) * float64(batch) / dt
}

// LoopResult is what the loop measured.
type LoopResult struct {
	WarmupRuns int
	Settled    bool // warm-up ended because timings settled (not a bound)
	Durations  []time.Duration
	Wall       time.Duration // wall time of the timed phase
}

// Loop warms the runner up until its timings settle, then times it. The
// timed phase's wall clock, not the sum of run times, gives throughput, so
// any per-call overhead is counted honestly.
func Loop(ctx context.Context, r Runner, cfg LoopConfig, p *Progress) (LoopResult, error) {
	cfg = cfg.withDefaults()
	if p == nil {
		p = &Progress{}
	}
	var res LoopResult
	p.begin(PhaseWarmup)
	warm := make([]time.Duration, 0, cfg.MaxWarmup)
	warmStart := time.Now()
	for len(warm) < cfg.MaxWarmup {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		d, err := timeRun(r)
		if err != nil {
			return res, fmt.Errorf("warm-up run %d: %w", len(warm)+1, err)
		}
		warm = append(warm, d)
		p.LastNanos.Store(int64(d))
		p.addRun()
		if len(warm) >= cfg.MinWarmup && Settled(warm, cfg.SettleWindow, cfg.SettleCV) {
			res.Settled = true
			break
		}
		if len(warm) >= cfg.MinWarmup && time.Since(warmStart) > cfg.MaxWarmupTime {
			break
		}
	}
	res.WarmupRuns = len(warm)

	if cfg.BeforeTimed != nil {
		cfg.BeforeTimed()
	}
	p.begin(PhaseMeasuring)
	capHint := cfg.Iterations
	if capHint <= 0 {
		capHint = 1024
	}
	res.Durations = make([]time.Duration, 0, capHint)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		n := len(res.Durations)
		if cfg.Iterations > 0 {
			if n >= cfg.Iterations {
				break
			}
		} else if n >= cfg.MinIterations && !time.Now().Before(deadline) {
			break
		}
		d, err := timeRun(r)
		if err != nil {
			return res, fmt.Errorf("timed run %d: %w", n+1, err)
		}
		res.Durations = append(res.Durations, d)
		p.LastNanos.Store(int64(d))
		p.addRun()
	}
	res.Wall = time.Since(start)
	return res, nil
}

func timeRun(r Runner) (time.Duration, error) {
	t := time.Now()
	err := r.Run()
	return time.Since(t), err
}

// Throughput is samples per second over the timed phase: batch × runs / wall.
func (r LoopResult) Throughput(batch int) float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(batch*len(r.Durations)) / r.Wall.Seconds()
}
