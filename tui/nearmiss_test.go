package tui

import (
	"strings"
	"testing"

	"github.com/muesli/termenv"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
)

// The run detail names each near miss (pattern, node, why) and says how
// many more the record holds.
func TestNearMissLines(t *testing.T) {
	o := &study.Optimization{}
	if got := nearMissLines(o); len(got) != 0 {
		t.Fatalf("no near misses: %q", got)
	}
	for i := range 5 {
		o.NearMisses = append(o.NearMisses, study.NearMiss{Pattern: "attention", Node: "/layer." + string(rune('0'+i)) + "/Softmax", Reason: "the Add before Softmax is not a constant bias"})
	}
	got := nearMissLines(o)
	if len(got) != 4 {
		t.Fatalf("lines %q, want 3 and a count", got)
	}
	if !strings.Contains(got[0], "attention at /layer.0/Softmax: the Add before Softmax") {
		t.Errorf("first line %q", got[0])
	}
	if !strings.Contains(got[3], "2 more near misses") {
		t.Errorf("last line %q", got[3])
	}
}

// The run detail's per-operator section draws a bar per operator type,
// largest first, scaled to the largest, and names the slowest nodes.
func TestOpProfileSection(t *testing.T) {
	c := viewCtx{st: newStyles(termenv.Ascii, true, nil)}
	p := &bench.OpProfile{Runs: 3, RunMs: 100, KernelMs: 95,
		Ops: []bench.OpTime{{Op: "MatMul", Ms: 60, Share: 0.6, Nodes: 48}, {Op: "Softmax", Ms: 30, Share: 0.3, Nodes: 12}, {Op: "Cast", Ms: 10, Share: 0.1, Nodes: 2}},
		Top: []bench.NodeTime{{Node: "/blocks.0/attn/MatMul", Op: "MatMul", Ms: 5, Share: 0.05}}}
	sec := opProfileSection(c, p)
	text := strings.Join(sec.lines, "\n")
	for _, want := range []string{"mean of 3 runs", "MatMul", "60%", strings.Repeat("█", 14), "Softmax", strings.Repeat("█", 7) + " ", "×48", "/blocks.0/attn/MatMul"} {
		if !strings.Contains(text, want) {
			t.Errorf("section lacks %q:\n%s", want, text)
		}
	}
}

// A variant that left most weight bytes in float32 says so in the table's
// precision column and status; a converted one does not.
func TestTableFlagsLowCoverage(t *testing.T) {
	s := newStyles(termenv.Ascii, true, nil)
	col := tableColumns()[colPrecision]
	low := study.Row{Experiment: study.Experiment{Precision: "int8"}, HasCoverage: true, Coverage: 0.002}
	if txt, _ := col.text(low, s); txt != "int8 ⚑" {
		t.Errorf("low coverage: %q", txt)
	}
	ok := study.Row{Experiment: study.Experiment{Precision: "int8"}, HasCoverage: true, Coverage: 0.9}
	if txt, _ := col.text(ok, s); txt != "int8" {
		t.Errorf("converted: %q", txt)
	}
}
