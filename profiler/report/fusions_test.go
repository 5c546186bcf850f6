package report

import (
	"testing"

	"github.com/quantscope/quantscope/profiler/study"
)

func TestFusionsSummary(t *testing.T) {
	fused := func(model string, att int) study.Record {
		return study.Record{Experiment: study.Experiment{Model: model, Optimize: true},
			Optimized: &study.Optimization{Matched: map[string]int{"attention": att, "skip-layernorm": 2 * att, "fold-constants": 0}}}
	}
	plain := study.Record{Experiment: study.Experiment{Model: "resnet-50"}}
	cnn := study.Record{Experiment: study.Experiment{Model: "resnet-50", Optimize: true}, Optimized: &study.Optimization{Matched: map[string]int{}}}
	for _, tc := range []struct {
		name string
		recs []study.Record
		want string
	}{
		{"none optimized", []study.Record{plain, plain}, "off (graphs as built)"},
		// Each model counted once, however many precisions it ran at.
		{"two models", []study.Record{fused("a", 12), fused("a", 12), fused("b", 4)}, "on (attention 16, skip-layernorm 32)"},
		{"nothing matched", []study.Record{cnn}, "on (nothing matched)"},
		{"mixed", []study.Record{fused("a", 2), plain}, "mixed: on (attention 2, skip-layernorm 4) in 1 records, off in 1"},
	} {
		if got := fusionsSummary(tc.recs); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
