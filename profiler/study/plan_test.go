package study

import (
	"reflect"
	"testing"
)

func TestPlanAddsBaselinesFirstAndInterleavesRepeats(t *testing.T) {
	got, err := Plan(PlanConfig{
		Models: []string{"a", "b"}, Precisions: []string{"int8", "fp32", "int8", "fp16"},
		Batches: []int{1, 8}, Repeat: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range got[:6] {
		keys = append(keys, e.Model+"/"+e.Precision+"/"+itoa(e.Batch))
	}
	want := []string{"a/fp32/1", "a/int8/1", "a/fp16/1", "a/fp32/8", "a/int8/8", "a/fp16/8"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("first group %v, want %v", keys, want)
	}
	if len(got) != 2*2*3*2 {
		t.Fatalf("%d experiments, want 24", len(got))
	}
	if got[11].Repeat != 0 || got[12].Repeat != 1 || got[12].Model != "a" {
		t.Errorf("repeats not interleaved round by round: %+v %+v", got[11], got[12])
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.Key()] {
			t.Errorf("duplicate experiment %s", e.Key())
		}
		seen[e.Key()] = true
	}
}

func TestPlanRejectsNonsense(t *testing.T) {
	if _, err := Plan(PlanConfig{}); err == nil {
		t.Error("empty plan accepted")
	}
	if _, err := Plan(PlanConfig{Models: []string{"a"}, Batches: []int{0}}); err == nil {
		t.Error("batch 0 accepted")
	}
}

func itoa(i int) string { return string(rune('0' + i)) }

// Optimized and unoptimized runs of the same cell are different
// experiments: --resume does not take one for the other, and an
// unoptimized record keeps the key it had before the flag existed.
func TestPlanOptimizeIsPartOfTheKey(t *testing.T) {
	opt, err := Plan(PlanConfig{Models: []string{"m"}, Precisions: []string{"int8"}, Optimize: true})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Plan(PlanConfig{Models: []string{"m"}, Precisions: []string{"int8"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range opt {
		if !opt[i].Optimize || plain[i].Optimize {
			t.Fatalf("Optimize not carried: %+v %+v", opt[i], plain[i])
		}
		if opt[i].Key() == plain[i].Key() {
			t.Errorf("same key %s", opt[i].Key())
		}
		if opt[i].BaselineKey() != opt[0].Key() {
			t.Errorf("optimized variant's baseline %s, want %s", opt[i].BaselineKey(), opt[0].Key())
		}
	}
	if got := plain[1].Key(); got != "m|int8|cpu|b1|t0|r0" {
		t.Errorf("unoptimized key changed: %s", got)
	}
}

// Provider options are part of an experiment's identity: a study with TF32
// off is not resumed from one with TF32 on. CUDA options go only to CUDA
// (and auto) experiments, and restating ONNX Runtime's default changes
// nothing.
func TestPlanOptionsArePartOfTheKey(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ep        []string
		cuda      map[string]string
		passthru  map[string]string
		wantOpts  []string // per EP, in order
		wantFirst string
	}{
		{"none", []string{"cpu", "cuda"}, nil, nil, []string{"", ""}, "m|fp32|cpu|b1|t0|r0"},
		{"tf32 off", []string{"cpu", "cuda"}, map[string]string{"use_tf32": "0"}, nil, []string{"", "use_tf32=0"}, "m|fp32|cpu|b1|t0|r0"},
		{"tf32 on is the default", []string{"cuda"}, map[string]string{"use_tf32": "1"}, nil, []string{""}, "m|fp32|cuda|b1|t0|r0"},
		{"graphs, spelled differently", []string{"auto"}, map[string]string{"enable_cuda_graph": "true"}, nil, []string{"enable_cuda_graph=1"}, "m|fp32|auto|b1|t0|r0|enable_cuda_graph=1"},
		{"passthrough everywhere, sorted", []string{"cpu", "cuda"}, map[string]string{"prefer_nhwc": "1"}, map[string]string{"device_id": "1"},
			[]string{"device_id=1", "device_id=1,prefer_nhwc=1"}, "m|fp32|cpu|b1|t0|r0|device_id=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Plan(PlanConfig{Models: []string{"m"}, EPs: tc.ep, CUDAOptions: tc.cuda, EPOptions: tc.passthru})
			if err != nil {
				t.Fatal(err)
			}
			if len(plan) != len(tc.ep) {
				t.Fatalf("%d experiments", len(plan))
			}
			for i, e := range plan {
				if e.Options != tc.wantOpts[i] {
					t.Errorf("%s: options %q, want %q", e.EP, e.Options, tc.wantOpts[i])
				}
			}
			if got := plan[0].Key(); got != tc.wantFirst {
				t.Errorf("key %s, want %s", got, tc.wantFirst)
			}
		})
	}
}

// TestPlanRejectsBadSpecsUpFront: every precision spec is parsed when the
// plan is made, not when its experiment comes up after the baselines.
func TestPlanRejectsBadSpecsUpFront(t *testing.T) {
	for _, precs := range [][]string{{"int8", "int4:block=7"}, {"int3"}, {"fp16:bogus"}} {
		if _, err := Plan(PlanConfig{Models: []string{"m"}, Precisions: precs}); err == nil {
			t.Errorf("precisions %v accepted", precs)
		}
	}
	if _, err := Plan(PlanConfig{Models: []string{"m"}, Threads: -1}); err == nil {
		t.Error("-1 threads accepted")
	}
	if _, err := Plan(PlanConfig{Models: []string{"m", " "}}); err == nil {
		t.Error("an empty model name accepted")
	}
}
