package tui

import (
	"strings"
	"testing"

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
