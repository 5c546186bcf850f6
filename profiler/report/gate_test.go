package report

import (
	"math"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/profiler/study"
)

func TestParseGate(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"top1>=0.99,cos>=0.999", "top1>=0.99,cos>=0.999"},
		{" Top-1 >= 99% , cosine>=0.999 ", "top1>=0.99,cos>=0.999"},
		{"top5>0.995,cos_min>=0.99,sqnr_db>=30,max_abs_error<0.5", "top5>0.995,cosmin>=0.99,sqnr>=30,maxabs<0.5"},
		{"sqnr>=-3", "sqnr>=-3"},
		{"", ""},
	} {
		g, err := ParseGate(tc.in)
		if err != nil {
			t.Errorf("ParseGate(%q): %v", tc.in, err)
			continue
		}
		if g.String() != tc.want {
			t.Errorf("ParseGate(%q) = %q, want %q", tc.in, g, tc.want)
		}
		again, err := ParseGate(g.String())
		if err != nil || again.String() != g.String() {
			t.Errorf("round trip of %q: %q, %v", g, again, err)
		}
	}
}

func TestParseGateErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"top1", "want metric, operator and number"},
		{">=0.9", "want metric, operator and number"},
		{"acc>=0.9", `unknown metric "acc"`},
		{"acc-drop=0.5", "unknown operator"},
		{"top1=0.9", "unknown operator"},
		{"top1!=0.9", "unknown operator"},
		{"top1>=abc", `"abc" is not a number`},
		{"top1>=NaN", "finite"},
		{"top1>=1.5", "outside [0, 1]"},
		{"cos>=-2", "outside [-1, 1]"},
		{"cos>=99%", "only top1 and top5 take a percentage"},
		{"top1>=0.9,,cos>=0.9", "clause 2 is empty"},
		{"top1>=0.9,top1>=0.95", "appears twice"},
	} {
		_, err := ParseGate(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseGate(%q) error %v, want it to mention %q", tc.in, err, tc.want)
		}
	}
}

func TestGateCheck(t *testing.T) {
	g, err := ParseGate("top1>=0.99,cos>=0.999")
	if err != nil {
		t.Fatal(err)
	}
	pass := g.Check(&fidelity.Result{Top1: 0.99, CosineMean: 0.9995})
	if !pass.Pass || !pass.Measured || len(pass.Failed) != 0 {
		t.Errorf("passing fidelity: %+v", pass)
	}
	fail := g.Check(&fidelity.Result{Top1: 0.962, CosineMean: 0.9981})
	if fail.Pass || len(fail.Failed) != 2 || fail.Failed[0] != "top-1 0.962 < 0.990" || fail.Failed[1] != "cosine 0.9981 < 0.9990" {
		t.Errorf("failing fidelity: %+v", fail)
	}
	none := g.Check(nil)
	if none.Pass || none.Measured || len(none.Failed) != 1 {
		t.Errorf("no fidelity: %+v", none)
	}
	if r := (Gate{}).Check(&fidelity.Result{}); !r.Pass {
		t.Errorf("zero gate should pass a measured configuration: %+v", r)
	}
	mx, _ := ParseGate("maxabs<0.5")
	if r := mx.Check(&fidelity.Result{MaxAbsError: 0.7}); r.Pass || r.Failed[0] != "max abs error 0.7 ≥ 0.5" {
		t.Errorf("maxabs: %+v", r)
	}
}

func TestFormatCos(t *testing.T) {
	for v, want := range map[float64]string{1: "1.0000", 0.95: "0.9500", 0.9981: "0.9981", 0.99934: "0.99934", 0.999991: "0.999991", 0.99999999: "0.99999999"} {
		if got := formatCos(v); got != want {
			t.Errorf("formatCos(%v) = %q, want %q", v, got, want)
		}
	}
}

// FuzzParseGate: no input panics, and whatever parses renders to a gate
// that parses back to itself.
func FuzzParseGate(f *testing.F) {
	for _, s := range []string{DefaultGate, "top1>=99%", "sqnr>=30,maxabs<1e-3", "cos>", ",", "top5<=0.5,cosmin>-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGate(s)
		if err != nil {
			return
		}
		again, err := ParseGate(g.String())
		if err != nil {
			t.Fatalf("%q parsed to %q, which does not parse: %v", s, g, err)
		}
		if again.String() != g.String() {
			t.Fatalf("%q → %q → %q", s, g, again)
		}
		_ = g.Check(&fidelity.Result{})
	})
}

// TestCheckForTraits: the same gate judges trained models on top-1,
// synthetic ones on decisive top-1, and backbones on cosine.
func TestCheckForTraits(t *testing.T) {
	g, err := ParseGate(DefaultGate)
	if err != nil {
		t.Fatal(err)
	}
	trained := study.ModelTraits{Weights: study.WeightsTrained, Output: study.OutputLogits}
	synthetic := study.ModelTraits{Weights: study.WeightsSynthetic, Output: study.OutputLogits}
	backbone := study.ModelTraits{Weights: study.WeightsSynthetic, Output: study.OutputEmbeddings}
	// deit-tiny int8 on synthetic weights: cosine 0.99955, top-1 95.3%
	// (near-ties flipped), decisive top-1 100% on 31 samples.
	int8 := &fidelity.Result{Samples: 64, CosineMean: 0.99955, Top1: 0.953, Top5: 1, MaxAbsError: 0.031,
		RefMedianMargin: 0.05, DecisiveTop1: 1, DecisiveSamples: 31, SQNRdB: 31}
	if r := g.CheckFor(int8, nil, trained); r.Pass || !strings.Contains(strings.Join(r.Failed, ","), "top-1 0.953 < 0.990") {
		t.Errorf("trained: %+v", r)
	}
	r := g.CheckFor(int8, nil, synthetic)
	if !r.Pass || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "decisive top-1") {
		t.Errorf("synthetic: %+v", r)
	}
	// A flip with a clear margin fails the decisive clause.
	flipped := *int8
	flipped.DecisiveTop1 = 0.9
	if r := g.CheckFor(&flipped, nil, synthetic); r.Pass || !strings.Contains(r.Failed[0], "decisive top-1 0.900 < 0.990") {
		t.Errorf("synthetic with a decisive flip: %+v", r)
	}
	// No decisive sample at all: not measurable, so not passed.
	none := *int8
	none.DecisiveTop1, none.DecisiveSamples = math.NaN(), 0
	if r := g.CheckFor(&none, nil, synthetic); r.Pass || !strings.Contains(r.Failed[0], "not measurable") {
		t.Errorf("no decisive samples: %+v", r)
	}
	// A record older than decisive top-1 keeps its recorded top-1.
	legacy := *int8
	legacy.RefMedianMargin, legacy.DecisiveTop1, legacy.DecisiveSamples = math.NaN(), math.NaN(), 0
	if r := g.CheckFor(&legacy, nil, synthetic); r.Pass || !strings.Contains(r.Notes[0], "predates") {
		t.Errorf("legacy record: %+v", r)
	}
	// Backbones: top-1 does not apply; cosine decides.
	emb := &fidelity.Result{Samples: 64, CosineMean: 0.9996, Top1: 0.2, Top5: 0.4, SQNRdB: 31, RefMedianMargin: math.NaN(), DecisiveTop1: math.NaN()}
	if r := g.CheckFor(emb, nil, backbone); !r.Pass || !strings.Contains(strings.Join(r.Notes, ","), "does not apply to embeddings") {
		t.Errorf("backbone: %+v", r)
	}
	emb.CosineMean = 0.998
	if r := g.CheckFor(emb, nil, backbone); r.Pass {
		t.Errorf("backbone below the cosine bar passed: %+v", r)
	}
	// A top-1-only gate gates a backbone on the default cosine bar.
	top1Only, _ := ParseGate("top1>=0.99")
	if r := top1Only.CheckFor(emb, nil, backbone); r.Pass || !strings.Contains(r.Failed[0], "cosine 0.9980 < 0.9990") {
		t.Errorf("top-1-only gate on a backbone: %+v", r)
	}
}

// acc-drop gates top-1 accuracy lost against FP32 (points), from the
// paired tables of the accuracy record.
func TestGateAccDrop(t *testing.T) {
	g, err := ParseGate("ACC-DROP<=0.5,cos>=0.999")
	if err != nil || g.String() != "acc-drop<=0.5,cos>=0.999" {
		t.Fatalf("ParseGate = %q, %v", g, err)
	}
	if _, err := ParseGate("acc-drop<=101"); err == nil || !strings.Contains(err.Error(), "outside [-100, 100]") {
		t.Errorf("acc-drop<=101: %v", err)
	}
	if _, err := ParseGate("acc-drop<=5%"); err == nil {
		t.Error("acc-drop took a percentage sign")
	}
	fid := &fidelity.Result{CosineMean: 0.9995}
	// 1,000 images: FP32 right on 4 the variant missed, the variant right
	// on 1 FP32 missed: drop 0.3 points.
	small := &accuracy.Result{Counts: accuracy.Counts{Images: 1000, Top1: 900},
		VsFP32: &accuracy.Paired{Top1: accuracy.Table{Both: 899, VariantOnly: 1, RefOnly: 4, Neither: 96}}}
	if r := g.CheckWith(fid, small); !r.Pass {
		t.Errorf("0.3 pt drop: %+v", r)
	}
	big := &accuracy.Result{Counts: accuracy.Counts{Images: 1000, Top1: 890},
		VsFP32: &accuracy.Paired{Top1: accuracy.Table{Both: 889, VariantOnly: 1, RefOnly: 14, Neither: 96}}}
	if r := g.CheckWith(fid, big); r.Pass || r.Failed[0] != "top-1 accuracy drop 1.30 pt > 0.50 pt" {
		t.Errorf("1.3 pt drop: %+v", r)
	}
	if r := g.CheckWith(fid, nil); r.Pass || !strings.Contains(r.Failed[0], "not measured (bench --eval-dir") {
		t.Errorf("no accuracy: %+v", r)
	}
	if r := g.Check(fid); r.Pass {
		t.Errorf("Check without accuracy passed an acc-drop gate: %+v", r)
	}
	only, _ := ParseGate("acc-drop<=0.5")
	if r := only.CheckWith(nil, small); !r.Pass {
		t.Errorf("acc-drop alone needs no fidelity: %+v", r)
	}
}
