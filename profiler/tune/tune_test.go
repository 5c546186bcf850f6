package tune

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/report"
	"github.com/quantscope/quantscope/profiler/study"
)

// fakeModel is a model whose every figure follows from its blocks'
// precisions, so the search has a known answer: six blocks; quantizing
// block i to int4 costs penalty4[i] points of accuracy, to int8 0.01;
// per block, time is 1.0 (fp32), 0.5 (int8), 0.9 (int4) and size 4, 1,
// 0.5 units.
type fakeModel struct {
	blocks   []string
	penalty4 []float64
	calls    []string
	fail     map[string]bool
}

func newFake() *fakeModel {
	return &fakeModel{blocks: []string{"b0", "b1", "b2", "b3", "b4", "b5"}, penalty4: []float64{1.2, 0.4, 0.05, 0.05, 0.05, 0.05}}
}

func (f *fakeModel) Baseline(context.Context) (Measurement, error) { return f.measure("fp32") }

func (f *fakeModel) Measure(_ context.Context, spec string) (Measurement, error) {
	f.calls = append(f.calls, spec)
	if f.fail[spec] {
		return Measurement{}, errors.New("worker crashed")
	}
	return f.measure(spec)
}

func (f *fakeModel) measure(spec string) (Measurement, error) {
	sp, err := quant.ParseSpec(spec)
	if err != nil {
		return Measurement{}, err
	}
	var drop, time, size float64
	for i, b := range f.blocks {
		k := sp.Kind
		for _, g := range sp.Layers.Int8 {
			if quant.InGroup(b, g) {
				k = quant.Int8
			}
		}
		for _, g := range sp.Layers.Int4 {
			if quant.InGroup(b, g) {
				k = quant.Int4
			}
		}
		for _, g := range sp.Layers.Keep {
			if quant.InGroup(b, g) {
				k = quant.FP32
			}
		}
		switch k {
		case quant.Int4:
			drop, time, size = drop+f.penalty4[i], time+0.9, size+0.5
		case quant.Int8:
			drop, time, size = drop+0.01, time+0.5, size+1
		default:
			time, size = time+1, size+4
		}
	}
	// 10,000 images: the drop as discordant pairs, all lost.
	lost := int(drop*100 + 0.5)
	acc := &accuracy.Result{Counts: accuracy.Counts{Images: 10000, Top1: 8000 - lost},
		VsFP32: &accuracy.Paired{Top1: accuracy.Table{Both: 8000 - lost, RefOnly: lost, Neither: 2000}}}
	return Measurement{Spec: spec, Throughput: 1 / time, P50Ms: time, FileBytes: int64(size * 1e6), Accuracy: acc,
		Fidelity: &fidelity.Result{CosineMean: 1 - drop/100}}, nil
}

func gate(t *testing.T, s string) report.Gate {
	t.Helper()
	g, err := report.ParseGate(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// The ranking puts b2 above b1 (sensitivity on a small batch is noisy):
// bisection restores b0, b2, b1; lowering finds b2 unneeded. The smallest
// configuration within 0.5 points is int8 on b0 and b1, int4 elsewhere.
func rankFake(context.Context, quant.Kind) ([]string, error) {
	return []string{"b0", "b2", "b1", "b3", "b4", "b5"}, nil
}

func TestSearchSizeFindsKnownAnswer(t *testing.T) {
	f := newFake()
	var steps []Step
	r, err := Run(context.Background(), Config{Budget: gate(t, "acc-drop<=0.5"), Objective: Size, EP: "cpu",
		OnStep: func(s Step) { steps = append(steps, s) }}, f, rankFake)
	if err != nil {
		t.Fatal(err)
	}
	if r.Winner.Spec != "int4:int8=b0+b1" {
		t.Fatalf("winner %s, want int4:int8=b0+b1; steps:\n%s", r.Winner.Spec, describe(r.Steps))
	}
	if r.Winner.M.FileBytes != 4e6 || !r.Winner.Pass {
		t.Errorf("winner %+v", r.Winner)
	}
	// Uniform int8 and int4, bisection (k = 3, 1, 2), lowering (b1, b2, b0).
	want := []string{"int8", "int4", "int4:int8=b0+b1+b2", "int4:int8=b0", "int4:int8=b0+b2", "int4:int8=b0+b1"}
	for i, w := range want {
		if i >= len(r.Steps) || r.Steps[i].Spec != w {
			t.Fatalf("steps:\n%s\nwant the first %d to be %v", describe(r.Steps), len(want), want)
		}
	}
	if !strings.HasPrefix(r.Steps[2].Why, "bisect") || !strings.HasPrefix(r.Steps[5].Why, "lower: b2") {
		t.Errorf("reasons:\n%s", describe(r.Steps))
	}
	// OnStep saw each candidate before and after it was measured.
	if len(steps) != 2*len(r.Steps) || steps[0].Measured || !steps[1].Measured {
		t.Errorf("%d step reports for %d steps", len(steps), len(r.Steps))
	}
	// Every measured configuration is on the frontier or dominated.
	if len(r.Frontier) == 0 || r.Frontier[0].M.FileBytes > r.Winner.M.FileBytes {
		t.Errorf("frontier %s", describe(r.Frontier))
	}
	// int4:int8=b0+b2 is as large as b0+b1 and loses more: dominated.
	on := map[string]bool{}
	for _, s := range r.Frontier {
		on[s.Spec] = true
	}
	if on["int4:int8=b0+b2"] || !on["int4:int8=b0+b1"] || !on["int4"] {
		t.Errorf("frontier:\n%s", describe(r.Frontier))
	}
}

// For speed on the CPU, uniform int8 is both the fastest and within the
// budget: nothing to restore.
func TestSearchThroughputStopsAtFastestUniform(t *testing.T) {
	f := newFake()
	r, err := Run(context.Background(), Config{Budget: gate(t, "acc-drop<=0.5"), Objective: Throughput, EP: "cpu"}, f, rankFake)
	if err != nil {
		t.Fatal(err)
	}
	if r.Winner.Spec != "int8" || len(r.Steps) != 2 || len(r.Notes) != 1 {
		t.Errorf("winner %s after %d steps, notes %v", r.Winner.Spec, len(r.Steps), r.Notes)
	}
}

// When nothing holds the budget the FP32 model is the answer; a candidate
// that fails to run is recorded and the search goes on.
func TestSearchNothingHolds(t *testing.T) {
	f := newFake()
	f.fail = map[string]bool{"int4:keep=b0+b1+b2": true}
	r, err := Run(context.Background(), Config{Budget: gate(t, "acc-drop<=-1"), Objective: Size, EP: "cpu"}, f, rankFake)
	if err != nil {
		t.Fatal(err)
	}
	if r.Winner.Spec != "fp32" || !strings.Contains(strings.Join(r.Notes, " "), "FP32 model is the answer") {
		t.Errorf("winner %s, notes %v\n%s", r.Winner.Spec, r.Notes, describe(r.Steps))
	}
	var errs int
	for _, s := range r.Steps {
		if s.Err != "" {
			errs++
		}
	}
	if errs != 1 {
		t.Errorf("%d failed steps recorded, want 1:\n%s", errs, describe(r.Steps))
	}
	if _, err := Run(context.Background(), Config{Objective: Size}, f, rankFake); err == nil {
		t.Error("no budget accepted")
	}
}

func describe(steps []Step) string {
	var b strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&b, "%d %-24s pass=%v best=%v %s %s\n", s.N, s.Spec, s.Pass, s.Best, s.Err, s.Why)
	}
	return b.String()
}

// The budget is judged as bench's gate judges it: on synthetic weights a
// top-1 budget reads decisive top-1 (flips on near-tied logits are not
// damage), on trained weights the top-1 recorded.
func TestSearchJudgesByTraits(t *testing.T) {
	for _, tc := range []struct {
		traits study.ModelTraits
		winner string
	}{
		{study.ModelTraits{Weights: study.WeightsSynthetic, Output: study.OutputLogits}, "int8"},
		{study.ModelTraits{Weights: study.WeightsTrained, Output: study.OutputLogits}, "fp32"},
		{study.ModelTraits{}, "fp32"},
	} {
		f := newFake()
		m := traitMeasurer{f, tc.traits}
		r, err := Run(context.Background(), Config{Budget: gate(t, "top1>=0.99"), Objective: Throughput, EP: "cpu", MaxCandidates: 1}, m, rankFake)
		if err != nil {
			t.Fatal(err)
		}
		if r.Winner.Spec != tc.winner {
			t.Errorf("%+v: winner %s, steps %+v", tc.traits, r.Winner.Spec, r.Steps)
		}
	}
}

// traitMeasurer gives every candidate top-1 agreement 0.95 but decisive
// top-1 1.0, and the model's traits.
type traitMeasurer struct {
	*fakeModel
	traits study.ModelTraits
}

func (m traitMeasurer) Measure(ctx context.Context, spec string) (Measurement, error) {
	r, err := m.fakeModel.Measure(ctx, spec)
	r.Traits = m.traits
	if r.Fidelity != nil {
		f := *r.Fidelity
		f.Top1, f.DecisiveTop1, f.DecisiveSamples, f.RefMedianMargin = 0.95, 1, 40, 0.2
		r.Fidelity = &f
	}
	return r, err
}
