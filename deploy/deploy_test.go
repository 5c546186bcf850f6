package deploy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/profiler/study"
)

func TestExitStatusMapsTheCodesItNames(t *testing.T) {
	if want := fmt.Sprintf("\n%d|%d) ", ExitGateFailed, ExitFailures); !strings.Contains(ExitStatus, want) {
		t.Errorf("ExitStatus does not map %q:\n%s", want, ExitStatus)
	}
}

func TestBenchArgs(t *testing.T) {
	s := Study{Name: "h100", Models: []string{"a", "b"}, Precisions: []string{"int8"}, EPs: []string{"cuda"}, Batches: []int{1, 8}, Shards: 4, Extra: []string{"--repeat", "2"}}
	got := strings.Join(s.BenchArgs("/r/results-0.jsonl"), " ")
	want := "bench --models a,b --precisions int8 --ep cuda --batch 1,8 --shard auto --shards 4 --host-group h100 --resume --out /r/results-0.jsonl --repeat 2"
	if got != want {
		t.Errorf("BenchArgs:\n got %s\nwant %s", got, want)
	}
	s.Extra = []string{"--shard=1/4", "--resume"}
	err := s.Validate()
	if err == nil || !strings.Contains(err.Error(), "--shard is set") || !strings.Contains(err.Error(), "--resume is set") {
		t.Errorf("reserved flags in Extra: %v", err)
	}
}

func TestPreview(t *testing.T) {
	plan, _ := study.Plan(study.PlanConfig{Models: []string{"big", "small"}})
	p, err := study.PartitionPlan(plan, 3, func(e study.Experiment) float64 {
		if e.Model == "big" {
			return 3
		}
		return 1
	})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Preview(p), "\n")
	want := "shard 0: big (75% of the expected cost)\nshard 1: small (25% of the expected cost)\nshard 2: nothing (more shards than models) (0% of the expected cost)"
	if got != want {
		t.Errorf("Preview:\n%s\nwant:\n%s", got, want)
	}
}
