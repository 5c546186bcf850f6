package study

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/worker"
)

// MaxTelemetryPoints bounds the samples kept with one record: longer runs
// are downsampled by averaging neighbours.
const MaxTelemetryPoints = 600

// Telemetry is a run's live samples, the ones the dashboard charts while
// it measures, kept with its record so the run can be shown again as it
// ran (`quantscope replay`). The columns are parallel: value i of each
// belongs to the sample taken T[i] seconds after the record's Started. A
// column that was never measured (all zero: no GPU, no CPU sensor) is
// left out.
type Telemetry struct {
	// DurationS is the timed phase the run was asked for, in seconds (0
	// with --iters).
	DurationS float64 `json:"duration_s,omitempty"`
	// WorkerS is when the worker process started, after the model was
	// prepared: seconds after Started.
	WorkerS float64 `json:"worker_s"`
	// T is each sample's time, seconds after Started, ascending.
	T []float64 `json:"t"`
	// Phase has one letter per sample: l loading, w warm-up, m measuring.
	Phase string `json:"phase"`

	Throughput []float64 `json:"throughput,omitempty"` // samples/s over the sample's period
	LatencyMs  []float64 `json:"latency_ms,omitempty"`
	RSS        []int64   `json:"rss,omitempty"`     // the worker's resident memory, bytes
	CPUPct     []float64 `json:"cpu_pct,omitempty"` // the worker's CPU, % of one core
	CPUTempC   []float64 `json:"cpu_temp_c,omitempty"`
	GPUBytes   []int64   `json:"gpu_bytes,omitempty"` // the worker's GPU memory
	TempC      []float64 `json:"temp_c,omitempty"`    // GPU temperature
	PowerW     []float64 `json:"power_w,omitempty"`   // GPU power
}

// phase letters of Telemetry.Phase and the worker's phase names.
var phaseLetters = map[bench.Phase]byte{bench.PhaseLoading: 'l', bench.PhaseWarmup: 'w', bench.PhaseMeasuring: 'm'}

func phaseName(b byte) bench.Phase {
	switch b {
	case 'w':
		return bench.PhaseWarmup
	case 'm':
		return bench.PhaseMeasuring
	}
	return bench.PhaseLoading
}

// Len is the number of samples.
func (t *Telemetry) Len() int {
	if t == nil {
		return 0
	}
	return len(t.T)
}

// At returns sample i: when it was taken (after Started) and its values
// as the worker sent them.
func (t *Telemetry) At(i int) (time.Duration, worker.Sample) {
	s := worker.Sample{Phase: phaseName(t.Phase[i])}
	// A column is absent or as long as T (validate); [] counts as absent.
	f := func(col []float64) float64 {
		if len(col) == 0 {
			return 0
		}
		return col[i]
	}
	n := func(col []int64) int64 {
		if len(col) == 0 {
			return 0
		}
		return col[i]
	}
	s.Throughput, s.LatencyMs, s.CPUPct, s.CPUTempC = f(t.Throughput), f(t.LatencyMs), f(t.CPUPct), f(t.CPUTempC)
	s.TempC, s.PowerW = f(t.TempC), f(t.PowerW)
	s.RSS, s.GPUBytes = n(t.RSS), n(t.GPUBytes)
	return seconds(t.T[i]), s
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// validate checks what a reader relies on: parallel columns, known phase
// letters, times finite, non-negative and ascending.
func (t *Telemetry) validate() error {
	n := len(t.T)
	if len(t.Phase) != n {
		return fmt.Errorf("%d phase letters for %d samples", len(t.Phase), n)
	}
	for name, l := range map[string]int{
		"throughput": len(t.Throughput), "latency_ms": len(t.LatencyMs), "rss": len(t.RSS), "cpu_pct": len(t.CPUPct),
		"cpu_temp_c": len(t.CPUTempC), "gpu_bytes": len(t.GPUBytes), "temp_c": len(t.TempC), "power_w": len(t.PowerW),
	} {
		if l != 0 && l != n {
			return fmt.Errorf("%d %s values for %d samples", l, name, n)
		}
	}
	if bad(t.WorkerS) || bad(t.DurationS) {
		return errors.New("worker_s or duration_s is not a time")
	}
	for i, v := range t.T {
		if bad(v) || i > 0 && v < t.T[i-1] {
			return fmt.Errorf("sample %d: time %v out of order", i, v)
		}
		switch t.Phase[i] {
		case 'l', 'w', 'm':
		default:
			return fmt.Errorf("sample %d: unknown phase %q", i, t.Phase[i])
		}
	}
	return nil
}

func bad(v float64) bool { return v < 0 || math.IsNaN(v) || math.IsInf(v, 0) }

// telemetryPoint is one sample being collected; n counts the samples
// averaged into it.
type telemetryPoint struct {
	t float64
	s worker.Sample
	n int
}

// TelemetryRecorder collects a run's samples as they arrive, in bounded
// memory: every point averages k samples; when 2 × MaxTelemetryPoints
// points are held, neighbours are averaged in pairs and k doubles, so the
// resolution stays the same from the run's start to its end.
type TelemetryRecorder struct {
	start  time.Time
	worker time.Time
	pts    []telemetryPoint
	k      int              // samples per point
	acc    []telemetryPoint // samples of the point being filled (< k)
}

// NewTelemetryRecorder starts collecting for a run that started at start.
func NewTelemetryRecorder(start time.Time) *TelemetryRecorder {
	return &TelemetryRecorder{start: start, k: 1}
}

// WorkerStarted notes when the worker process was started.
func (r *TelemetryRecorder) WorkerStarted(at time.Time) { r.worker = at }

// Add records one sample taken at at.
func (r *TelemetryRecorder) Add(at time.Time, s worker.Sample) {
	r.acc = append(r.acc, telemetryPoint{t: max(0, at.Sub(r.start).Seconds()), s: s, n: 1})
	if len(r.acc) < r.k {
		return
	}
	r.pts = append(r.pts, mergePoints(r.acc, r.k)...)
	r.acc = r.acc[:0]
	if len(r.pts) >= 2*MaxTelemetryPoints {
		r.pts = mergePoints(r.pts, 2)
		r.k *= 2
	}
}

// Telemetry returns what was collected, at most MaxTelemetryPoints
// samples; nil when no sample came. duration is the timed phase asked for.
func (r *TelemetryRecorder) Telemetry(duration time.Duration) *Telemetry {
	pts := r.pts
	if len(r.acc) > 0 {
		pts = append(pts[:len(pts):len(pts)], mergePoints(r.acc, len(r.acc))...)
	}
	if len(pts) == 0 {
		return nil
	}
	if len(pts) > MaxTelemetryPoints {
		pts = mergePoints(pts, (len(pts)+MaxTelemetryPoints-1)/MaxTelemetryPoints)
	}
	t := &Telemetry{DurationS: round(duration.Seconds(), 3), T: make([]float64, len(pts))}
	if !r.worker.IsZero() {
		t.WorkerS = round(max(0, r.worker.Sub(r.start).Seconds()), 3)
	}
	phase := make([]byte, len(pts))
	cols := struct{ tput, lat, cpu, ctemp, temp, pow []float64 }{}
	var rss, gpu []int64
	col := func(dst *[]float64, i int, v float64) {
		if v != 0 && *dst == nil {
			*dst = make([]float64, len(pts))
		}
		if *dst != nil {
			(*dst)[i] = sig4(v)
		}
	}
	icol := func(dst *[]int64, i int, v int64) {
		if v != 0 && *dst == nil {
			*dst = make([]int64, len(pts))
		}
		if *dst != nil {
			(*dst)[i] = v
		}
	}
	for i, p := range pts {
		t.T[i] = round(p.t, 3)
		l, ok := phaseLetters[p.s.Phase]
		if !ok {
			l = 'l'
		}
		phase[i] = l
		col(&cols.tput, i, p.s.Throughput)
		col(&cols.lat, i, p.s.LatencyMs)
		col(&cols.cpu, i, p.s.CPUPct)
		col(&cols.ctemp, i, p.s.CPUTempC)
		col(&cols.temp, i, p.s.TempC)
		col(&cols.pow, i, p.s.PowerW)
		icol(&rss, i, p.s.RSS)
		icol(&gpu, i, p.s.GPUBytes)
	}
	t.Phase = string(phase)
	t.Throughput, t.LatencyMs, t.CPUPct, t.CPUTempC, t.TempC, t.PowerW = cols.tput, cols.lat, cols.cpu, cols.ctemp, cols.temp, cols.pow
	t.RSS, t.GPUBytes = rss, gpu
	return t
}

// mergePoints averages every k neighbours into one point, weighted by
// how many samples each holds; a merged point has the time and phase of
// its last sample.
func mergePoints(pts []telemetryPoint, k int) []telemetryPoint {
	out := make([]telemetryPoint, 0, (len(pts)+k-1)/k)
	for i := 0; i < len(pts); i += k {
		grp := pts[i:min(i+k, len(pts))]
		last := grp[len(grp)-1]
		m := telemetryPoint{t: last.t, s: worker.Sample{Phase: last.s.Phase}}
		var fs [6]float64
		var is [2]float64
		for _, p := range grp {
			w := float64(p.n)
			m.n += p.n
			for j, v := range [6]float64{p.s.Throughput, p.s.LatencyMs, p.s.CPUPct, p.s.CPUTempC, p.s.TempC, p.s.PowerW} {
				fs[j] += w * v
			}
			is[0] += w * float64(p.s.RSS)
			is[1] += w * float64(p.s.GPUBytes)
		}
		n := float64(m.n)
		m.s.Throughput, m.s.LatencyMs, m.s.CPUPct, m.s.CPUTempC, m.s.TempC, m.s.PowerW = fs[0]/n, fs[1]/n, fs[2]/n, fs[3]/n, fs[4]/n, fs[5]/n
		m.s.RSS, m.s.GPUBytes = int64(is[0]/n), int64(is[1]/n)
		out = append(out, m)
	}
	return out
}

// round keeps d decimals.
func round(v float64, d int) float64 {
	p := math.Pow10(d)
	return math.Round(v*p) / p
}

// sig4 keeps four significant digits: the samples are noisier than that,
// and the records stay small.
func sig4(v float64) float64 {
	if v == 0 || bad(math.Abs(v)) {
		return v
	}
	e := math.Floor(math.Log10(math.Abs(v)))
	p := math.Pow10(int(3 - e))
	return math.Round(v*p) / p
}

// TelemetryNote says why a record has no telemetry to replay ("" when it
// has): recorded before quantscope kept it, or no sample came.
func (r Record) TelemetryNote() string {
	switch {
	case r.Telemetry.Len() > 0:
		return ""
	case r.Schema < 3:
		return fmt.Sprintf("from before telemetry was kept (schema %d)", r.Schema)
	case r.Status == StatusFailed:
		return "failed before its first sample"
	}
	return "no samples were taken"
}
