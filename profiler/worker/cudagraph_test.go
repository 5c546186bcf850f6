package worker

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/quantscope/quantscope/profiler/ort"
)

// fakeModel is a boundModel whose Run fails on the runs listed in failRun
// (1-based), as a CUDA graph capture does for a model that cannot be
// captured. Its profile shows every run executing its nodes, except that a
// model that replays shows ONNX Runtime's warm-up and capture runs inside
// the first call and no node in the runs after it.
type fakeModel struct {
	failRun       map[int]error
	replays       bool
	profileErr    error
	runs, copies  int
	closed        bool
	closeErr      error
	deviceBinding bool
	profileEnded  bool
}

func (f *fakeModel) Run() error {
	f.runs++
	if err := f.failRun[f.runs]; err != nil {
		return err
	}
	time.Sleep(time.Microsecond)
	return nil
}
func (f *fakeModel) Input(int) []float32                 { return make([]float32, 4) }
func (f *fakeModel) Output(int) []float32                { return make([]float32, 2) }
func (f *fakeModel) CopyInputs() (time.Duration, error)  { f.copies++; return 0, nil }
func (f *fakeModel) CopyOutputs() (time.Duration, error) { return 0, nil }
func (f *fakeModel) BatchSize() int                      { return 1 }
func (f *fakeModel) DeviceResident() bool                { return f.deviceBinding }
func (f *fakeModel) Close() error                        { f.closed = true; return f.closeErr }

func (f *fakeModel) EndProfile() (ort.Profile, error) {
	f.profileEnded = true
	if f.profileErr != nil {
		return ort.Profile{}, f.profileErr
	}
	p := ort.Profile{Placement: map[string]int{ort.CUDAProvider: 5}}
	for i := 1; i <= f.runs; i++ {
		switch {
		case f.replays && i == 1:
			p.Runs = append(p.Runs, ort.ProfileRun{Nodes: 5}, ort.ProfileRun{Nodes: 5})
		case f.replays:
			p.Runs = append(p.Runs, ort.ProfileRun{Nodes: 0})
		default:
			p.Runs = append(p.Runs, ort.ProfileRun{Nodes: 5})
		}
	}
	return p, nil
}

// fakeOpener records the configurations it was asked to open and answers
// from a script: one entry per call, an error or a model.
type fakeOpener struct {
	script []func() (*fakeModel, error)
	cfgs   []ort.SessionConfig
	models []*fakeModel
}

func (o *fakeOpener) open(cfg ort.SessionConfig) (boundModel, error) {
	o.cfgs = append(o.cfgs, cfg)
	m, err := o.script[len(o.cfgs)-1]()
	if err != nil {
		return nil, err
	}
	o.models = append(o.models, m)
	return m, nil
}

func ok() (*fakeModel, error)      { return &fakeModel{deviceBinding: true}, nil }
func replays() (*fakeModel, error) { return &fakeModel{deviceBinding: true, replays: true}, nil }

func graphConfig(opts map[string]string) ort.SessionConfig {
	return ort.SessionConfig{EP: "cuda", EPRoute: "plugin", EPOptions: opts}
}

const partitionErr = "This session cannot use the graph capture feature as requested by the user as all compute graph nodes have not been partitioned to the CUDAExecutionProvider"

func TestGraphFallbackSessionCreationFails(t *testing.T) {
	o := &fakeOpener{script: []func() (*fakeModel, error){
		func() (*fakeModel, error) { return nil, errors.New("open m.onnx: " + partitionErr) },
		ok,
	}}
	cfg := graphConfig(map[string]string{"enable_cuda_graph": "1", "use_tf32": "0"})
	op, err := openFirstRuns(cfg, o.open)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.cfgs) != 2 {
		t.Fatalf("opened %d times, want 2 (with graphs, then without)", len(o.cfgs))
	}
	if o.cfgs[0].EPOptions["enable_cuda_graph"] != "1" || o.cfgs[1].EPOptions["enable_cuda_graph"] != "0" {
		t.Errorf("configurations opened: %v then %v", o.cfgs[0].EPOptions, o.cfgs[1].EPOptions)
	}
	if o.cfgs[1].EPOptions["use_tf32"] != "0" || o.cfgs[1].EP != "cuda" || o.cfgs[1].EPRoute != "plugin" {
		t.Errorf("the fallback lost other settings: %+v", o.cfgs[1])
	}
	if cfg.EPOptions["enable_cuda_graph"] != "1" {
		t.Error("the caller's options were changed")
	}
	g := op.graph
	if g == nil || !g.Requested || g.Active || !strings.Contains(g.Reason, partitionErr) {
		t.Errorf("status = %+v, want requested, not active, ORT's reason", g)
	}
	fallback := o.models[0]
	if op.bd != fallback || op.cfg.EPOptions["enable_cuda_graph"] != "0" {
		t.Errorf("opened = %+v, want the fallback session and its configuration", op)
	}
	if fallback.runs != 1 || fallback.copies != 1 || op.first <= 0 || !fallback.profileEnded || op.placement[ort.CUDAProvider] != 5 {
		t.Errorf("fallback: %d runs, %d copies, first %v, placement %v: want the one first inference, profiled",
			fallback.runs, fallback.copies, op.first, op.placement)
	}
}

func TestGraphFallbackReplayRunFails(t *testing.T) {
	replayErr := errors.New("run: CUDA failure 900: operation not permitted when stream is capturing")
	o := &fakeOpener{script: []func() (*fakeModel, error){
		func() (*fakeModel, error) {
			return &fakeModel{replays: true, failRun: map[int]error{2: replayErr}}, nil
		},
		ok,
	}}
	op, err := openFirstRuns(graphConfig(map[string]string{"enable_cuda_graph": "1"}), o.open)
	if err != nil {
		t.Fatal(err)
	}
	first, second := o.models[0], o.models[1]
	if !first.closed || first.runs != 2 {
		t.Errorf("failed session: closed %v after %d runs, want closed after the replay run (2)", first.closed, first.runs)
	}
	if second.closed || op.bd != second {
		t.Error("the fallback session is not the one returned, open")
	}
	g := op.graph
	if g == nil || !g.Requested || g.Active || !strings.Contains(g.Reason, "operation not permitted when stream is capturing") ||
		!strings.Contains(g.Reason, "replay (second run)") {
		t.Errorf("status = %+v", g)
	}
}

func TestGraphFallbackCloseErrorKept(t *testing.T) {
	o := &fakeOpener{script: []func() (*fakeModel, error){
		func() (*fakeModel, error) {
			return &fakeModel{failRun: map[int]error{1: errors.New("capture failed")}, closeErr: errors.New("release failed")}, nil
		},
		ok,
	}}
	op, err := openFirstRuns(graphConfig(map[string]string{"enable_cuda_graph": "1"}), o.open)
	if err != nil {
		t.Fatal(err)
	}
	if r := op.graph.Reason; !strings.Contains(r, "capture failed") || !strings.Contains(r, "release failed") ||
		!strings.Contains(r, "warm-up and capture (first run)") {
		t.Errorf("reason %q", r)
	}
}

func TestGraphFallbackFailsToo(t *testing.T) {
	o := &fakeOpener{script: []func() (*fakeModel, error){
		func() (*fakeModel, error) { return nil, errors.New(partitionErr) },
		func() (*fakeModel, error) { return nil, errors.New("out of memory") },
	}}
	_, err := openFirstRuns(graphConfig(map[string]string{"enable_cuda_graph": "1"}), o.open)
	if err == nil || !strings.Contains(err.Error(), "out of memory") || !strings.Contains(err.Error(), partitionErr) ||
		!strings.Contains(err.Error(), "without CUDA graphs") {
		t.Errorf("err = %v, want both reasons", err)
	}
}

// TestGraphActive: graphs are reported active only when the profile shows
// the replay: one session, the capturing run and a replay, both timed.
func TestGraphActive(t *testing.T) {
	o := &fakeOpener{script: []func() (*fakeModel, error){replays}}
	op, err := openFirstRuns(graphConfig(map[string]string{"enable_cuda_graph": "true"}), o.open)
	if err != nil {
		t.Fatal(err)
	}
	m := o.models[0]
	if len(o.cfgs) != 1 || m.closed || op.bd != m {
		t.Fatalf("opened %d times, closed %v", len(o.cfgs), m.closed)
	}
	if m.runs != 2 || m.copies != 1 || !m.profileEnded {
		t.Errorf("graph check: %d runs, %d input copies, profile ended %v; want the capturing run and one replay", m.runs, m.copies, m.profileEnded)
	}
	g := op.graph
	if g == nil || !g.Requested || !g.Active || g.Reason != "" || g.CaptureMs <= 0 || g.ReplayMs <= 0 {
		t.Errorf("status = %+v, want active with both runs timed", g)
	}
	if op.first <= 0 || op.session < 0 || op.placement[ort.CUDAProvider] != 5 {
		t.Errorf("timings: first %v session %v, placement %v", op.first, op.session, op.placement)
	}
}

// TestGraphAcceptedButNotReplayed: no error is not proof. A session that
// accepted enable_cuda_graph but still runs node by node is kept (its
// numbers are those of a run without graphs) and reported not active.
func TestGraphAcceptedButNotReplayed(t *testing.T) {
	o := &fakeOpener{script: []func() (*fakeModel, error){ok}}
	op, err := openFirstRuns(graphConfig(map[string]string{"enable_cuda_graph": "1"}), o.open)
	if err != nil {
		t.Fatal(err)
	}
	g := op.graph
	if len(o.cfgs) != 1 || o.models[0].closed || g == nil || g.Active || !strings.Contains(g.Reason, "did not replay") ||
		!strings.Contains(g.Reason, "executing 5 nodes") {
		t.Errorf("opened %d times, status %+v", len(o.cfgs), g)
	}

	o = &fakeOpener{script: []func() (*fakeModel, error){func() (*fakeModel, error) {
		return &fakeModel{replays: true, profileErr: errors.New("end profiling: ONNX Runtime wrote no profile")}, nil
	}}}
	op, err = openFirstRuns(graphConfig(map[string]string{"enable_cuda_graph": "1"}), o.open)
	if err != nil {
		t.Fatal(err)
	}
	if g := op.graph; g == nil || g.Active || !strings.Contains(g.Reason, "could not be confirmed") || !strings.Contains(g.Reason, "wrote no profile") {
		t.Errorf("unreadable profile: status %+v", g)
	}
	if op.placement != nil || op.placementErr == nil {
		t.Errorf("placement %v, error %v", op.placement, op.placementErr)
	}
}

func TestGraphNotRequested(t *testing.T) {
	for _, cfg := range []ort.SessionConfig{
		graphConfig(nil),
		graphConfig(map[string]string{"enable_cuda_graph": "0"}),
		// Not the CUDA EP: enable_cuda_graph means nothing there.
		{EP: "cpu", EPOptions: map[string]string{"enable_cuda_graph": "1"}},
	} {
		o := &fakeOpener{script: []func() (*fakeModel, error){ok}}
		op, err := openFirstRuns(cfg, o.open)
		if err != nil {
			t.Fatal(err)
		}
		m := o.models[0]
		if op.graph != nil || m.runs != 1 || m.copies != 1 || op.first <= 0 || !m.profileEnded || !maps.Equal(op.cfg.EPOptions, cfg.EPOptions) {
			t.Errorf("%+v: graph %+v, %d runs, profile ended %v", cfg, op.graph, m.runs, m.profileEnded)
		}
	}
	o := &fakeOpener{script: []func() (*fakeModel, error){func() (*fakeModel, error) { return nil, errors.New("no such file") }}}
	if _, err := openFirstRuns(graphConfig(nil), o.open); err == nil || len(o.cfgs) != 1 {
		t.Errorf("a failed open without graphs: err %v after %d opens, want the error after one", err, len(o.cfgs))
	}
	o = &fakeOpener{script: []func() (*fakeModel, error){func() (*fakeModel, error) {
		return &fakeModel{failRun: map[int]error{1: errors.New("bad input")}}, nil
	}}}
	if _, err := openFirstRuns(graphConfig(nil), o.open); err == nil || !strings.Contains(err.Error(), "first inference: bad input") || !o.models[0].closed {
		t.Errorf("a failed first inference: err %v, closed %v", err, o.models[0].closed)
	}
}

func TestProviderOptions(t *testing.T) {
	spec := Spec{Extra: map[string]string{"device_id": "1", "use_tf32": "true"}, CUDA: map[string]string{"enable_cuda_graph": "1", "prefer_nhwc": "1"}}
	got, note := providerOptions("cuda", spec)
	want := map[string]string{"device_id": "1", "use_tf32": "1", "enable_cuda_graph": "1", "prefer_nhwc": "1"}
	if !maps.Equal(got, want) || note != "" {
		t.Errorf("cuda: %v %q, want %v", got, note, want)
	}
	if spec.Extra["use_tf32"] != "true" || len(spec.Extra) != 2 {
		t.Error("providerOptions changed the spec")
	}
	got, note = providerOptions("cpu", spec)
	if !maps.Equal(got, spec.Extra) || note != "CUDA options enable_cuda_graph, prefer_nhwc not applied: the run is on cpu" {
		t.Errorf("cpu: %v %q", got, note)
	}
	if got, note = providerOptions("cuda", Spec{}); got != nil || note != "" {
		t.Errorf("nothing set: %v %q", got, note)
	}

	rec := recordedOptions("cuda", map[string]string{"enable_cuda_graph": "0", "device_id": "1"})
	wantRec := map[string]string{"use_tf32": "1", "cudnn_conv_algo_search": "EXHAUSTIVE", "prefer_nhwc": "0", "enable_cuda_graph": "0", "device_id": "1"}
	if !maps.Equal(rec, wantRec) {
		t.Errorf("recorded cuda options %v, want %v", rec, wantRec)
	}
	if rec := recordedOptions("cpu", map[string]string{"x": "y"}); !maps.Equal(rec, map[string]string{"x": "y"}) {
		t.Errorf("recorded cpu options %v", rec)
	}

}

// TestServeCUDAOptionsOnCPU runs a real CPU experiment with CUDA flag
// options: they are not applied, not recorded as in force, and the result
// says so.
func TestServeCUDAOptionsOnCPU(t *testing.T) {
	requireORT(t)
	model := mlpModel(t, t.TempDir(), "m.onnx", 0)
	spec := Spec{ModelPath: model, EP: "cpu", Batch: 1, Threads: 1, MaxRuns: 20,
		CUDA: map[string]string{"enable_cuda_graph": "1", "use_tf32": "0"}}
	res := serveResult(t, spec)
	if res.EP != "cpu" || res.CUDAGraph != nil || len(res.EPOptions) != 0 ||
		!strings.Contains(res.EPReason, "CUDA options enable_cuda_graph, use_tf32 not applied: the run is on cpu") {
		t.Errorf("result: ep %s, graph %+v, options %v, reason %q", res.EP, res.CUDAGraph, res.EPOptions, res.EPReason)
	}
	if raw, _ := json.Marshal(res); strings.Contains(string(raw), `"cuda_graph":`) {
		t.Errorf("cuda_graph written for a run that did not request it: %s", raw)
	}
}
