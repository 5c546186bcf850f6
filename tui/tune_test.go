package tui

import (
	"context"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/profiler/evaluate"
	"github.com/quantscope/quantscope/profiler/sensitivity"
	"github.com/quantscope/quantscope/profiler/study"
	"github.com/quantscope/quantscope/profiler/tune"
)

// fakeTune replays a short search: two uniform precisions, one restore.
func fakeTune(got *TuneRequest) TuneFunc {
	m := func(spec string, tput, cos float64) tune.Measurement {
		return tune.Measurement{Spec: spec, Throughput: tput, P50Ms: 1000 / tput, FileBytes: int64(1e6 / cos),
			Fidelity: &fidelity.Result{CosineMean: cos}}
	}
	steps := []tune.Step{
		{N: 1, Spec: "int8", Why: "uniform int8: what the precision buys", M: m("int8", 300, 0.9995), Pass: true},
		{N: 2, Spec: "int4", Why: "uniform int4: what the precision buys", M: m("int4", 120, 0.97), Failed: []string{"cosine 0.97 < 0.999"}},
		{N: 3, Spec: "int4:int8=blocks.0", Why: "bisect over the 12 blocks ranked by sensitivity", M: m("int4:int8=blocks.0", 150, 0.9992), Pass: true},
	}
	return func(ctx context.Context, req TuneRequest, onStep func(tune.Step)) (*tune.Result, error) {
		*got = req
		best := -1
		for i, s := range steps {
			onStep(tune.Step{N: s.N, Spec: s.Spec, Why: s.Why})
			s.Measured = true
			if s.Pass && (best < 0 || s.M.Throughput > steps[best].M.Throughput) {
				best = i
				s.Best = true
			}
			steps[i] = s
			onStep(s)
		}
		return &tune.Result{Budget: req.Budget, Objective: tune.Objective(req.Objective), Baseline: m("fp32", 100, 1),
			Steps: steps, Winner: steps[best], Frontier: []tune.Step{steps[0], steps[2]}}, nil
	}
}

// drain runs the screen's command chain until the search is done.
func (f *fixture) drain(cmd tea.Cmd) {
	f.t.Helper()
	for i := 0; cmd != nil && i < 100; i++ {
		msg := cmd()
		if msg == nil {
			return
		}
		cmd = f.send(msg)
	}
}

// The Tune screen takes the setup screen's model, runs the search in a
// tea.Cmd and shows each candidate, why it was tried, and the best.
func TestTuneScreen(t *testing.T) {
	var req TuneRequest
	f := newFixture(t, 120, 40, func(o *Options) { o.Tune = fakeTune(&req) })
	if !strings.Contains(f.view(), "5 Tune") {
		t.Fatalf("no Tune tab:\n%s", f.view())
	}
	f.keys("5")
	if f.m.screen != screenTune {
		t.Fatal("5 did not open the Tune screen")
	}
	// No model selected yet.
	f.keys("enter")
	if !strings.Contains(f.m.tune().err, "pick a model") {
		t.Fatalf("started without a model: %q", f.m.tune().err)
	}
	f.keys("1", "space", "5")
	if f.m.tune().model != "deit-tiny" {
		t.Fatalf("tune model %q", f.m.tune().model)
	}
	// Objective cycles with →; the budget is typed after o.
	f.keys("tab", "right")
	if f.m.tune().objectiveName() != "latency" {
		t.Fatalf("objective %s", f.m.tune().objectiveName())
	}
	f.keys("left", "tab", "o")
	for range 12 {
		f.keys("backspace")
	}
	f.typeText("cos>=0.999")
	f.keys("enter")
	f.drain(f.send(keyMsg("enter")))
	if req.Model != "deit-tiny" || req.Budget != "cos>=0.999" || req.Objective != "throughput" || req.EP != "cpu" {
		t.Fatalf("request %+v", req)
	}
	if f.m.tune().running || f.m.tune().res == nil || len(f.m.tune().steps) != 3 {
		t.Fatalf("search state: running %v, %d steps, result %v", f.m.tune().running, len(f.m.tune().steps), f.m.tune().res != nil)
	}
	v := f.view()
	for _, want := range []string{"★", "int4:int8=blocks.0", "bisect over the 12 blocks", "Best so far", "int8", "300.0 samples/s", "3.00× fp32 throughput",
		"samples/s (→ better) × cosine (↑ better)", "120/s", "300/s"} {
		if !strings.Contains(v, want) {
			t.Errorf("tune screen lacks %q:\n%s", want, v)
		}
	}
	// An acc-drop budget needs labelled images.
	f.keys("o")
	for range 12 {
		f.keys("backspace")
	}
	f.typeText("acc-drop<=0.5")
	f.keys("enter", "enter")
	if !strings.Contains(f.m.tune().err, "needs labelled images") {
		t.Errorf("acc-drop without images: %q", f.m.tune().err)
	}
}

// Without a TuneFunc there is no Tune tab and 5 does nothing.
func TestNoTuneScreen(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	f.keys("5")
	if f.m.screen == screenTune || strings.Contains(f.view(), "5 Tune") {
		t.Error("Tune screen without a TuneFunc")
	}
}

// The run detail ranks a variant's layers on L and draws them as bars.
func TestDetailSensitivity(t *testing.T) {
	var asked study.Experiment
	f := newFixture(t, 140, 50, func(o *Options) {
		o.Sensitivity = func(_ context.Context, e study.Experiment) (*sensitivity.Result, error) {
			asked = e
			return &sensitivity.Result{Precision: "int8", Inputs: "8 synthetic images", Candidates: []sensitivity.Candidate{
				{Name: "blocks.0.attn.qkv.q", Loss: 0.004}, {Name: "head", Loss: 0.002}, {Name: "blocks.11.mlp.fc2", Loss: 0.0001}}}, nil
		}
	})
	f.m.sess.loadRecords([]study.Record{rec("deit-tiny", "fp32", 100, 10, 100<<20, 100<<20, 1, 1), rec("deit-tiny", "int8", 300, 4, 50<<20, 25<<20, 0.99, 0.95)}, nil)
	f.m.intent(openDetailMsg{exp: f.m.sess.records[1].Experiment, host: f.m.sess.localHost, back: screenDashboard})
	if v := f.view(); !strings.Contains(v, "press L to rank") {
		t.Fatalf("no hint:\n%s", v)
	}
	f.drain(f.send(keyMsg("L")))
	if asked.Precision != "int8" {
		t.Fatalf("ranked %+v", asked)
	}
	v := f.view()
	for _, want := range []string{"Sensitive layers · int8", "blocks.0.attn.qkv.q", "████", "4.0e-03"} {
		if !strings.Contains(v, want) {
			t.Errorf("detail lacks %q:\n%s", want, v)
		}
	}
}

// The local UI has both the Doctor (4) and the Tune (5) screen: each key
// opens its own, from the other's screen too, and neither check starts
// while the other measures.
func TestDoctorAndTuneKeys(t *testing.T) {
	var req TuneRequest
	f := newFixture(t, 120, 40, func(o *Options) {
		o.Tune = fakeTune(&req)
		withDoctor(o)
	})
	v := f.view()
	if !strings.Contains(v, "4 Doctor") || !strings.Contains(v, "5 Tune") {
		t.Fatalf("tabs:\n%s", v)
	}
	f.keys("4")
	if f.m.screen != screenDoctor {
		t.Fatal("4 did not open the Doctor screen")
	}
	f.keys("5")
	if f.m.screen != screenTune {
		t.Fatal("5 on the Doctor screen did not open the Tune screen")
	}
	f.keys("4")
	if f.m.screen != screenDoctor {
		t.Fatal("4 on the Tune screen did not open the Doctor screen")
	}
	// The hardware check runs: tune waits for it.
	f.keys("enter")
	if !f.m.doc().running {
		t.Fatal("the hardware check did not start")
	}
	f.keys("1", "space", "5", "enter")
	if f.m.tune().running || req.Model != "" || !strings.Contains(f.m.toast, "hardware check is running") {
		t.Errorf("tune started during the hardware check: running %v, request %+v, toast %q", f.m.tune().running, req, f.m.toast)
	}
	f.m.doc().stop()
}

// The scatter's axes say what they show: the budget's metric up, the
// objective in its own unit across (right is better: 1/latency, 1/size).
func TestTuneAxes(t *testing.T) {
	tm := newTuneModel(nil, defaultKeyMap(), nil, evaluate.Overrides{})
	for _, tc := range []struct {
		objective int
		acc       bool
		x         float64
		title     string
		label     string
	}{
		{0, false, 412.5, "samples/s (→ better) × cosine (↑ better)", "412.5/s"},
		{1, true, 1 / 3.3, "p50 latency (→ better) × accuracy Δ (↑ better)", "3.3 ms"},
		{2, false, 1 / 0.347, "file size (→ better) × cosine (↑ better)", "0.347 MB"},
	} {
		tm.objective, tm.accAxis = tc.objective, tc.acc
		if got := tm.plotTitle(); !strings.HasSuffix(got, tc.title) {
			t.Errorf("objective %s: title %q", tm.objectiveName(), got)
		}
		if got := tm.xLabel(tc.x); got != tc.label {
			t.Errorf("objective %s: x label %q, want %q", tm.objectiveName(), got, tc.label)
		}
	}
	for budget, acc := range map[string]bool{"acc-drop<=0.5": true, "cos>=0.999": false, "top1>=0.99,ACC-drop<=1": true} {
		if budgetNamesAccuracy(budget) != acc {
			t.Errorf("budget %q: accuracy axis %v", budget, !acc)
		}
	}
}
