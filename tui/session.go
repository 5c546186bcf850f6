package tui

import (
	"time"

	"github.com/quantscope/quantscope/models/imageset"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/evaluate"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/worker"
)

// stage is what the UI says about one queued experiment.
type stage int

const (
	stageQueued     stage = iota
	stageBuilding         // preparing the FP32 model file
	stageQuantizing       // preparing a variant
	stageStarting         // worker starting, session loading
	stageScoring          // accuracy on the labelled images
	stageWarmup
	stageMeasuring
	stageDone
	stageFailed
	stageSkipped  // already recorded (resume)
	stageStopped  // stopped by the user with `s`, or by quitting
	stageCanceled // never ran: the study was canceled
)

// String is the stage as the queue shows it.
func (s stage) String() string {
	switch s {
	case stageQueued:
		return "queued"
	case stageBuilding:
		return "building"
	case stageQuantizing:
		return "quantizing"
	case stageStarting:
		return "starting"
	case stageScoring:
		return "scoring"
	case stageWarmup:
		return "warming up"
	case stageMeasuring:
		return "measuring"
	case stageDone:
		return "done"
	case stageFailed:
		return "failed"
	case stageSkipped:
		return "skipped"
	case stageStopped:
		return "stopped"
	case stageCanceled:
		return "canceled"
	}
	return "?"
}

// active reports whether the experiment is being worked on right now.
func (s stage) active() bool { return s >= stageBuilding && s <= stageMeasuring }

// over reports whether nothing more will happen to the experiment.
func (s stage) over() bool { return s >= stageDone }

// agg accumulates min, mean and max of a telemetry value.
type agg struct {
	n             int
	min, max, sum float64
}

func (a *agg) add(v float64) {
	if a.n == 0 || v < a.min {
		a.min = v
	}
	if a.n == 0 || v > a.max {
		a.max = v
	}
	a.n++
	a.sum += v
}

func (a agg) mean() float64 {
	if a.n == 0 {
		return 0
	}
	return a.sum / float64(a.n)
}

// smoothSamples is how many samples (about a second at the worker's
// 250 ms period) the throughput chart averages.
const smoothSamples = 4

// smoothed is the mean of the recent sample throughputs.
func (e *entry) smoothed() float64 {
	if len(e.recent) == 0 {
		return 0
	}
	var sum float64
	for _, v := range e.recent {
		sum += v
	}
	return sum / float64(len(e.recent))
}

// maxLatencySamples bounds the sampled latencies kept per experiment.
const maxLatencySamples = 4096

// entry is one experiment of the queue as the UI tracks it.
type entry struct {
	exp      study.Experiment
	duration time.Duration     // timed phase length it was queued with
	eval     *evaluate.Dataset // labelled images to score it on (nil: none)
	stage    stage
	reason   string // why it failed or stopped

	queued, started, finished time.Time
	measuring                 time.Time // when the timed phase began

	last                        *worker.Sample // the latest live sample
	tput, rss, gpu, temp, power agg            // telemetry over its samples
	cpuTemp, cpuPct             agg            // host CPU temperature, worker CPU %
	lat                         []float64      // latencies sampled while measuring (ms)
	recent                      []float64      // the last few sample throughputs

	rec *study.Record
}

// point is one chart sample.
type point struct {
	t time.Time
	v float64
}

// series is a bounded history of one chart value.
type series struct {
	pts []point
	max int
}

func (s *series) push(t time.Time, v float64) {
	s.pts = append(s.pts, point{t, v})
	if s.max > 0 && len(s.pts) > 2*s.max {
		s.pts = append([]point(nil), s.pts[len(s.pts)-s.max:]...)
	}
}

// last returns the last n points (all when fewer).
func (s *series) last(n int) []point {
	if n >= len(s.pts) {
		return s.pts
	}
	return s.pts[len(s.pts)-n:]
}

func (s *series) reset() { s.pts = nil }

// seriesCap is how many chart points a series keeps (enough for a 200-cell
// wide chart).
const seriesCap = 512

// session is everything the application knows about the study: the queue,
// the records (loaded from the results file and measured now), the rows
// derived from them, and the chart histories. It belongs to the UI
// goroutine; the runner only reaches it through the feed.
type session struct {
	// decode is the latest progress of decoding a labelled image folder.
	decode imageset.Progress

	entries []*entry
	records []study.Record
	rows    []study.Row

	loaded       int      // records read from the results files at start
	opened       int      // results files opened besides Out (--open)
	loadWarnings []string // problems reading them
	// localHost is this machine's study.Host.Key: the host of the
	// experiments queued here (the rows may hold other hosts' too).
	localHost string

	started time.Time // when the first experiment of this session started
	active  int       // index of the entry being worked on, -1 when none
	charted int       // entry whose throughput the chart shows, -1 when none

	// Chart histories: throughput (and the baseline's level) of the active
	// experiment; memory, temperature, power and CPU load across the whole
	// session.
	tput, base, rss, gpu, temp, power series
	cpuTemp, cpuLoad                  series
	cores                             int // usable cores: CPU load is % of all of them
	// gpuScope is what the GPU memory series measures: "process" (the
	// worker's own, from NVML's process list) or "device-wide".
	gpuScope string

	// version counts changes, so views can cache what they drew.
	version int
}

func newSession() *session {
	s := &session{active: -1, charted: -1, localHost: study.Host{}.Key()}
	for _, sr := range []*series{&s.tput, &s.base, &s.rss, &s.gpu, &s.temp, &s.power, &s.cpuTemp, &s.cpuLoad} {
		sr.max = seriesCap
	}
	return s
}

// groupKey identifies an experiment regardless of its repeat index: the
// rows of study.Summarize are keyed the same way.
func groupKey(e study.Experiment) string {
	e.Repeat = 0
	return e.Key()
}

// loadRecords installs the records of an existing results file.
func (s *session) loadRecords(recs []study.Record, warnings []string) {
	s.records = append(recs, s.records...)
	s.loaded = len(recs)
	s.loadWarnings = warnings
	s.rows = summarizeByHost(s.records)
	s.version++
}

// enqueue appends experiments to the queue. An experiment already recorded
// or queued is shifted to the next free repeat index, so running it again
// adds a repetition (folded into its row with a confidence interval)
// instead of a duplicate key.
func (s *session) enqueue(exps []study.Experiment, d time.Duration, now time.Time) []int {
	next := map[string]int{}
	bump := func(e study.Experiment) {
		k := groupKey(e)
		if e.Repeat+1 > next[k] {
			next[k] = e.Repeat + 1
		}
	}
	for _, r := range s.records {
		bump(r.Experiment)
	}
	for _, e := range s.entries {
		if e.stage != stageCanceled {
			bump(e.exp)
		}
	}
	var idx []int
	for _, e := range exps {
		e.Repeat += next[groupKey(e)]
		s.entries = append(s.entries, &entry{exp: e, duration: d, queued: now})
		idx = append(idx, len(s.entries)-1)
	}
	s.version++
	return idx
}

// setEval makes the entries at idx measure accuracy on ds.
func (s *session) setEval(idx []int, ds *evaluate.Dataset) {
	for _, i := range idx {
		s.entries[i].eval = ds
	}
}

// queued returns the indices of entries waiting to run, in order.
func (s *session) queued() []int {
	var out []int
	for i, e := range s.entries {
		if e.stage == stageQueued {
			out = append(out, i)
		}
	}
	return out
}

// apply folds one update of entry i into the session. It returns whether
// the update carried a record (the table changed).
func (s *session) apply(i int, u study.Update, now time.Time) bool {
	if i < 0 || i >= len(s.entries) {
		return false
	}
	e := s.entries[i]
	s.version++
	switch u.Stage {
	case study.StageQueued:
		e.stage = stageQueued
	case study.StageSkipped:
		e.stage, e.finished = stageSkipped, now
	case study.StagePreparing:
		s.activate(i, now)
		e.stage = stageQuantizing
		if e.exp.IsBaseline() {
			e.stage = stageBuilding
		}
	case study.StageRunning:
		s.activate(i, now)
		if u.Sample == nil {
			e.stage = stageStarting
			break
		}
		s.sample(i, u.Sample, now)
	case study.StageDone, study.StageFailed:
		e.finished = now
		e.stage = stageDone
		if u.Stage == study.StageFailed {
			e.stage = stageFailed
		}
		if u.Record != nil {
			rec := *u.Record
			e.rec = &rec
			if !rec.OK() {
				e.stage, e.reason = stageFailed, rec.Reason
			}
			s.records = append(s.records, rec)
			s.rows = summarizeByHost(s.records)
		}
		if s.active == i {
			s.active = -1
		}
		return u.Record != nil
	}
	return false
}

// activate makes entry i the active one, resetting the per-run charts when
// it changes.
func (s *session) activate(i int, now time.Time) {
	e := s.entries[i]
	if e.started.IsZero() {
		e.started = now
	}
	if s.started.IsZero() {
		s.started = now
	}
	s.active = i
}

// sample records a live reading of the active entry.
func (s *session) sample(i int, smp *worker.Sample, now time.Time) {
	e := s.entries[i]
	c := *smp
	e.last = &c
	switch smp.Phase {
	case bench.PhaseWarmup:
		e.stage = stageWarmup
	case bench.PhaseMeasuring:
		e.stage = stageMeasuring
		if e.measuring.IsZero() {
			e.measuring = now
		}
	case bench.PhaseAccuracy:
		e.stage = stageScoring
	default:
		e.stage = stageStarting
	}
	if smp.Phase == bench.PhaseWarmup || smp.Phase == bench.PhaseMeasuring {
		if s.charted != i {
			// A new run: its throughput chart starts empty (the last
			// run's stays up until then).
			s.charted = i
			s.tput.reset()
			s.base.reset()
		}
		// Slow models finish 0 or 1 runs per sample period: chart the
		// mean over the last second, not the jumpy per-period rate.
		e.recent = append(e.recent, smp.Throughput)
		if len(e.recent) > smoothSamples {
			e.recent = e.recent[len(e.recent)-smoothSamples:]
		}
		s.tput.push(now, e.smoothed())
		if b, ok := s.baselineThroughput(e.exp, s.localHost); ok {
			s.base.push(now, b)
		}
	}
	if smp.Phase == bench.PhaseMeasuring {
		if smp.Throughput > 0 {
			e.tput.add(smp.Throughput)
		}
		if smp.LatencyMs > 0 && len(e.lat) < maxLatencySamples {
			e.lat = append(e.lat, smp.LatencyMs)
		}
	}
	if smp.RSS > 0 {
		s.rss.push(now, float64(smp.RSS)/(1<<20))
		e.rss.add(float64(smp.RSS))
	}
	if smp.GPUBytes > 0 {
		s.gpu.push(now, float64(smp.GPUBytes)/(1<<20))
		e.gpu.add(float64(smp.GPUBytes))
		s.gpuScope = smp.GPUScope
	}
	if smp.TempC > 0 {
		s.temp.push(now, smp.TempC)
		e.temp.add(smp.TempC)
	}
	if smp.PowerW > 0 {
		s.power.push(now, smp.PowerW)
		e.power.add(smp.PowerW)
	}
	if smp.CPUTempC > 0 {
		s.cpuTemp.push(now, smp.CPUTempC)
		e.cpuTemp.add(smp.CPUTempC)
	}
	if smp.CPUPct > 0 {
		s.cpuLoad.push(now, smp.CPUPct/float64(max(1, s.cores)))
		e.cpuPct.add(smp.CPUPct)
	}
}

// baselineThroughput is the measured FP32 throughput that exp, on host
// (a study.Host.Key), is compared with, when there is one and exp is not
// itself the baseline.
func (s *session) baselineThroughput(exp study.Experiment, host string) (float64, bool) {
	if exp.IsBaseline() {
		return 0, false
	}
	exp.Repeat = 0 // rows fold repeats: their keys have repeat 0
	k := exp.BaselineKey()
	for _, r := range s.rows {
		if hostOf(r) == host && groupKey(r.Experiment) == k && r.Status == study.StatusOK && r.Throughput > 0 {
			return r.Throughput, true
		}
	}
	return 0, false
}

// entryFor returns the most recent entry measuring the same thing as row
// on host (nil when the row only comes from a results file, or from
// another host: the queue runs here).
func (s *session) entryFor(exp study.Experiment, host string) *entry {
	if host != s.localHost {
		return nil
	}
	k := groupKey(exp)
	for i := len(s.entries) - 1; i >= 0; i-- {
		if groupKey(s.entries[i].exp) == k {
			return s.entries[i]
		}
	}
	return nil
}

// rowFor returns the table row of exp's group on host.
func (s *session) rowFor(exp study.Experiment, host string) (study.Row, bool) {
	k := groupKey(exp)
	for _, r := range s.rows {
		if hostOf(r) == host && groupKey(r.Experiment) == k {
			return r, true
		}
	}
	return study.Row{}, false
}

// running reports whether any entry is active or queued.
func (s *session) running() bool {
	for _, e := range s.entries {
		if e.stage == stageQueued || e.stage.active() {
			return true
		}
	}
	return false
}

// counts tallies the queue.
func (s *session) counts() (done, failed, pending, total int) {
	for _, e := range s.entries {
		switch {
		case e.stage == stageDone || e.stage == stageSkipped:
			done++
		case e.stage == stageFailed:
			failed++
		case e.stage == stageQueued || e.stage.active():
			pending++
		}
	}
	return done, failed, pending, len(s.entries)
}

// defaultOverhead is the per-experiment time beyond the timed phase
// (building, warm-up, fidelity) assumed before anything has finished.
const defaultOverhead = 8 * time.Second

// eta estimates the time left: the mean wall time of finished experiments
// (or duration + overhead before any finished) for each one waiting.
func (s *session) eta(now time.Time) time.Duration {
	var sum time.Duration
	n := 0
	for _, e := range s.entries {
		if (e.stage == stageDone || e.stage == stageFailed) && !e.started.IsZero() {
			sum += e.finished.Sub(e.started)
			n++
		}
	}
	est := func(e *entry) time.Duration {
		if n > 0 {
			return sum / time.Duration(n)
		}
		return e.duration + defaultOverhead
	}
	var left time.Duration
	for _, e := range s.entries {
		switch {
		case e.stage == stageQueued:
			left += est(e)
		case e.stage.active():
			left += max(0, est(e)-now.Sub(e.started))
		}
	}
	return left
}

// finishedAt is when the last experiment ended (zero when none did).
func (s *session) finishedAt() time.Time {
	var t time.Time
	for _, e := range s.entries {
		if e.finished.After(t) {
			t = e.finished
		}
	}
	return t
}

// snapshot copies the session for programs to draw while the hub goes on
// changing the original. Entries are copied; slices are shared but capped
// at their length: the session only ever appends to them or replaces
// them, so nothing a snapshot can see is written again.
func (s *session) snapshot() *session {
	c := *s
	c.entries = make([]*entry, len(s.entries))
	for i, e := range s.entries {
		ec := *e
		ec.lat = capped(e.lat)
		ec.recent = capped(e.recent)
		c.entries[i] = &ec
	}
	c.records = capped(s.records)
	c.rows = capped(s.rows)
	c.loadWarnings = capped(s.loadWarnings)
	for _, sr := range []*series{&c.tput, &c.base, &c.rss, &c.gpu, &c.temp, &c.power, &c.cpuTemp, &c.cpuLoad} {
		sr.pts = capped(sr.pts)
	}
	return &c
}

// capped is s with its capacity cut to its length, so an append to it
// copies instead of writing into storage another holder reads.
func capped[T any](s []T) []T { return s[:len(s):len(s)] }
