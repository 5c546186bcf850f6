package report

import (
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/fidelity"
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
