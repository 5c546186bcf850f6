package study

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// TimedUpdate is an update as Run sent it, At after its record started.
type TimedUpdate struct {
	At     time.Duration
	Update Update
}

// Timeline is what Run sent while rec was measured, from its record: the
// experiment preparing at its start, the worker starting, every kept
// sample at its time, and the record when it finished. Index is the
// plan position the updates carry.
func Timeline(rec Record, index int) []TimedUpdate {
	e := rec.Experiment
	at := func(d time.Duration, u Update) TimedUpdate {
		u.Index, u.Experiment = index, e
		return TimedUpdate{At: d, Update: u}
	}
	out := []TimedUpdate{at(0, Update{Stage: StagePreparing})}
	tel := rec.Telemetry
	if tel.Len() > 0 {
		out = append(out, at(seconds(tel.WorkerS), Update{Stage: StageRunning}))
		for i := range tel.Len() {
			d, s := tel.At(i)
			out = append(out, at(d, Update{Stage: StageRunning, Sample: &s}))
		}
	} else {
		out = append(out, at(0, Update{Stage: StageRunning}))
	}
	end := max(0, rec.Finished.Sub(rec.Started))
	if last := out[len(out)-1].At; end < last {
		end = last
	}
	stage := StageDone
	if !rec.OK() {
		stage = StageFailed
	}
	r := rec
	return append(out, at(end, Update{Stage: stage, Record: &r}))
}

// DefaultMaxGap is the longest stretch of a recording without an update
// that a replay plays as it was (building a model, time between studies).
const DefaultMaxGap = 2 * time.Second

// Replayer plays recorded records back as the updates Run sent when they
// were measured, on a clock of recorded time: Run has Run's signature, so
// whatever shows a live study shows a replay. Each call of Run plays the
// next len(plan) records, in order.
type Replayer struct {
	// Records are played in this order (sort them by Started).
	Records []Record
	// Speed is how much faster than recorded time the replay runs
	// (default 1).
	Speed float64
	// MaxGap shortens longer stretches without an update to it
	// (default DefaultMaxGap).
	MaxGap time.Duration
	// Sleep and Wall are the real timer and clock (defaults); tests
	// step them.
	Sleep func(ctx context.Context, d time.Duration) error
	Wall  func() time.Time

	mu    sync.Mutex
	next  int       // records played
	vbase time.Time // recorded time at wbase
	wbase time.Time
}

func (r *Replayer) speed() float64 {
	if r.Speed <= 0 {
		return 1
	}
	return r.Speed
}

func (r *Replayer) wall() time.Time {
	if r.Wall != nil {
		return r.Wall()
	}
	return time.Now()
}

// Rewind starts the replay over: the next Run plays the first record, and
// the clock stands at its start.
func (r *Replayer) Rewind() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next = 0
	r.vbase, r.wbase = time.Time{}, r.wall()
	if len(r.Records) > 0 {
		r.vbase = r.Records[0].Started
	}
}

// Now is the replay's clock: the recorded time being shown.
func (r *Replayer) Now() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nowLocked()
}

func (r *Replayer) nowLocked() time.Time {
	if r.wbase.IsZero() {
		r.wbase = r.wall()
		if len(r.Records) > 0 {
			r.vbase = r.Records[0].Started
		}
	}
	return r.vbase.Add(time.Duration(float64(r.wall().Sub(r.wbase)) * r.speed()))
}

// jump moves the clock to t (recorded time) at once.
func (r *Replayer) jump(t time.Time) {
	r.vbase, r.wbase = t, r.wall()
}

// waitUntil sleeps until the clock reads t, first skipping what is
// longer than MaxGap.
func (r *Replayer) waitUntil(ctx context.Context, t time.Time) error {
	gap := r.MaxGap
	if gap <= 0 {
		gap = DefaultMaxGap
	}
	r.mu.Lock()
	now := r.nowLocked()
	if t.Sub(now) > gap {
		r.jump(t.Add(-gap))
		now = t.Add(-gap)
	}
	d := time.Duration(float64(t.Sub(now)) / r.speed())
	r.mu.Unlock()
	if d <= 0 {
		return ctx.Err()
	}
	if r.Sleep != nil {
		return r.Sleep(ctx, d)
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// Run plays the next len(plan) records as plan's experiments, through
// cfg.OnUpdate, each update stamped with its recorded time. It writes
// nothing; canceled, it stops where it is.
func (r *Replayer) Run(ctx context.Context, plan []Experiment, cfg RunConfig) ([]Record, error) {
	var out []Record
	for i, e := range plan {
		r.mu.Lock()
		if r.next >= len(r.Records) {
			r.mu.Unlock()
			return out, fmt.Errorf("replay: no record left for %s", e.Key())
		}
		rec := r.Records[r.next]
		r.next++
		start := rec.Started
		if now := r.nowLocked(); start.Before(now) {
			start = now // records that overlap (shards of one study) play one after another
		}
		r.mu.Unlock()
		for _, tu := range Timeline(rec, i) {
			at := start.Add(tu.At)
			if err := r.waitUntil(ctx, at); err != nil {
				return out, err
			}
			u := tu.Update
			u.Experiment, u.Time = e, at
			if cfg.OnUpdate != nil {
				cfg.OnUpdate(u)
			}
		}
		out = append(out, rec)
	}
	return out, nil
}
