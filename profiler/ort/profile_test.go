package ort

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
)

// TestEndProfileFromTheRealSession runs a model with the profiler on and
// ends it after two runs: placement and runs come from the session that ran,
// the profile file is removed, and later runs are not profiled.
func TestEndProfileFromTheRealSession(t *testing.T) {
	requireORT(t)
	b := onnx.NewBuilder("two", 17)
	b.AddInput("x", onnx.Float, onnx.Dims("batch", 4))
	b.AddNode("Relu", []string{"x"}, []string{"r"})
	b.AddNode("Sigmoid", []string{"r"}, []string{"y"})
	b.AddOutput("y", onnx.Float, onnx.Dims("batch", 4))
	path := saveModel(t, b)
	dir := t.TempDir()
	bd, err := NewBound(path, SessionConfig{IntraOpThreads: 1, ProfilePrefix: filepath.Join(dir, "p"),
		DisableOptimizations: true}, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer bd.Close()
	for range 2 {
		if err := bd.Run(); err != nil {
			t.Fatal(err)
		}
	}
	p, err := bd.EndProfile()
	if err != nil {
		t.Fatal(err)
	}
	if p.Placement[CPUProvider] != 2 || len(p.Placement) != 1 {
		t.Errorf("placement %v, want 2 nodes on the CPU EP", p.Placement)
	}
	if len(p.Runs) != 2 || p.Runs[0].Nodes != 2 || p.Runs[1].Nodes != 2 {
		t.Errorf("runs %+v, want two runs of two nodes", p.Runs)
	}
	if p.GraphReplayed() {
		t.Error("a CPU session replayed a graph")
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Errorf("profile files left behind: %v", files)
	}
	if err := bd.Run(); err != nil {
		t.Fatalf("run after the profile ended: %v", err)
	}
	if _, err := bd.EndProfile(); err == nil {
		t.Error("a second EndProfile succeeded")
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Errorf("a run after EndProfile wrote %v", files)
	}
	os.RemoveAll(dir)
}

func TestEndProfileWithoutProfiling(t *testing.T) {
	requireORT(t)
	bd, err := NewBound(reluModel(t), SessionConfig{IntraOpThreads: 1}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer bd.Close()
	if _, err := bd.EndProfile(); err == nil {
		t.Error("EndProfile on a session opened without profiling succeeded")
	}
}

func TestParseProfile(t *testing.T) {
	profile := `[
	 {"cat":"Session","name":"model_loading_uri","ts":1,"dur":5,"args":{}},
	 {"cat":"Session","name":"model_run","ts":100,"dur":50,"args":{}},
	 {"cat":"Node","name":"mm_fence_before","ts":101,"dur":0,"args":{"op_name":"MatMul"}},
	 {"cat":"Node","name":"mm_kernel_time","ts":102,"dur":9,"args":{"op_name":"MatMul","provider":"CUDAExecutionProvider","thread_scheduling_stats":{"main_thread":{}}}},
	 {"cat":"Node","name":"erf_kernel_time","ts":120,"dur":9,"args":{"op_name":"Erf","provider":"CPUExecutionProvider"}},
	 {"cat":"Node","name":"memcpy_kernel_time","ts":140,"dur":2,"args":{"op_name":"MemcpyToHost","provider":"CUDAExecutionProvider"}},
	 {"cat":"Session","name":"model_run","ts":200,"dur":40,"args":{}},
	 {"cat":"Node","name":"mm_kernel_time","ts":205,"dur":9,"args":{"op_name":"MatMul","provider":"CUDAExecutionProvider"}},
	 {"cat":"Session","name":"model_run","ts":300,"dur":3,"args":{}}
	]`
	p, err := ParseProfile([]byte(profile))
	if err != nil {
		t.Fatal(err)
	}
	if p.Placement["CUDAExecutionProvider"] != 2 || p.Placement["CPUExecutionProvider"] != 1 {
		t.Errorf("placement %v", p.Placement)
	}
	want := []ProfileRun{{100, 50, 3}, {200, 40, 1}, {300, 3, 0}}
	if len(p.Runs) != 3 || p.Runs[0] != want[0] || p.Runs[1] != want[1] || p.Runs[2] != want[2] {
		t.Errorf("runs %+v, want %+v", p.Runs, want)
	}
	if !p.GraphReplayed() {
		t.Error("a last run without nodes after runs with nodes is a replay")
	}
	for _, bad := range []string{"", "{}", "[]", `[{"cat":"Session"}]`} {
		if _, err := ParseProfile([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestGraphReplayed(t *testing.T) {
	tests := []struct {
		runs []ProfileRun
		want bool
	}{
		{nil, false},
		{[]ProfileRun{{Nodes: 0}}, false},
		{[]ProfileRun{{Nodes: 5}, {Nodes: 5}}, false},            // executed node by node both times
		{[]ProfileRun{{Nodes: 5}, {Nodes: 5}, {Nodes: 0}}, true}, // warm-up, capture, replay
		{[]ProfileRun{{Nodes: 0}, {Nodes: 0}}, false},            // nothing ever executed
		{[]ProfileRun{{Nodes: 5}, {Nodes: 0}, {Nodes: 5}}, false},
	}
	for _, tt := range tests {
		if got := (Profile{Runs: tt.runs}).GraphReplayed(); got != tt.want {
			t.Errorf("%+v: GraphReplayed = %v, want %v", tt.runs, got, tt.want)
		}
	}
}

// FuzzParseProfile: any bytes parse or fail cleanly; an accepted profile
// has a placement, and its runs never hold more node events than it has.
func FuzzParseProfile(f *testing.F) {
	f.Add([]byte(`[{"cat":"Session","name":"model_run","ts":1,"dur":9},{"cat":"Node","name":"a_kernel_time","ts":2,"dur":1,"args":{"provider":"CPUExecutionProvider"}}]`))
	f.Add([]byte(`[{"cat":"Node","name":"x","ts":-5,"dur":-1,"args":{"provider":"P","op_name":{"a":1}}}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile(data)
		if err != nil {
			return
		}
		if len(p.Placement) == 0 {
			t.Fatal("accepted a profile without placement")
		}
		var events []profileEvent
		_ = json.Unmarshal(data, &events)
		nodes, inRuns := 0, 0
		for _, e := range events {
			if e.Cat == "Node" && e.Args.Provider != "" {
				nodes++
			}
		}
		for _, r := range p.Runs {
			inRuns += r.Nodes
		}
		if inRuns > nodes {
			t.Fatalf("runs hold %d node events of %d", inRuns, nodes)
		}
		_ = p.GraphReplayed()
	})
}
