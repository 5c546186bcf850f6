package ort

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
)

// Profile is what ONNX Runtime's profiler recorded about a session's runs
// (SessionConfig.ProfilePrefix, then EndProfile): where the nodes ran, and
// what each run executed.
type Profile struct {
	// Placement counts distinct nodes per execution provider after graph
	// optimization and partitioning: the answer to "did my model silently
	// fall back to the CPU?".
	Placement map[string]int
	// Runs lists ONNX Runtime's model_run events in time order, each with
	// the node events inside it. One Run call is one event, except that a
	// session with CUDA graphs makes its warm-up and capture runs inside
	// the first call, each an event of its own.
	Runs []ProfileRun
	// Raw is the trace itself, for readers of more than placement (the
	// per-operator time, bench.ParseOpProfile).
	Raw []byte
}

// ProfileRun is one model_run event.
type ProfileRun struct {
	StartUs int64 `json:"start_us"` // from the profiler's start
	DurUs   int64 `json:"dur_us"`
	Nodes   int   `json:"nodes"` // node (kernel) events inside the run
}

// GraphReplayed reports whether the profile shows a captured CUDA graph
// being replayed: a run executed node by node, then a last run with no node
// events at all (ONNX Runtime replays a captured graph without its
// executor, so the replay records the run and nothing inside it).
func (p Profile) GraphReplayed() bool {
	n := len(p.Runs)
	if n < 2 || p.Runs[n-1].Nodes != 0 {
		return false
	}
	for _, r := range p.Runs[:n-1] {
		if r.Nodes > 0 {
			return true
		}
	}
	return false
}

// profileEvent is the part of an ONNX Runtime profile event read here.
type profileEvent struct {
	Cat  string `json:"cat"`
	Name string `json:"name"`
	Ts   int64  `json:"ts"`
	Dur  int64  `json:"dur"`
	Args struct {
		OpName   string `json:"op_name"`
		Provider string `json:"provider"`
	} `json:"args"`
}

// ParseProfile reads an ONNX Runtime profile: a JSON array of trace events,
// node events with cat "Node" and name "<node>_kernel_time" (args op_name
// and provider), runs with cat "Session" and name "model_run". A profile
// with no node event is an error: nothing ran.
func ParseProfile(data []byte) (Profile, error) {
	var events []profileEvent
	if err := json.Unmarshal(data, &events); err != nil {
		return Profile{}, fmt.Errorf("parse ONNX Runtime profile: %w", err)
	}
	p := Profile{Placement: map[string]int{}, Raw: data}
	seen := map[string]bool{}
	var nodes []profileEvent
	for _, e := range events {
		switch {
		case e.Cat == "Session" && e.Name == "model_run":
			p.Runs = append(p.Runs, ProfileRun{StartUs: e.Ts, DurUs: e.Dur})
		case e.Cat == "Node" && e.Args.Provider != "":
			nodes = append(nodes, e)
			if !seen[e.Name] {
				seen[e.Name] = true
				p.Placement[e.Args.Provider]++
			}
		}
	}
	if len(p.Placement) == 0 {
		return Profile{}, fmt.Errorf("parse ONNX Runtime profile: no node events")
	}
	sort.SliceStable(p.Runs, func(i, j int) bool { return p.Runs[i].StartUs < p.Runs[j].StartUs })
	for _, n := range nodes {
		for i := range p.Runs {
			r := &p.Runs[i]
			if n.Ts >= r.StartUs && n.Ts <= r.StartUs+r.DurUs {
				r.Nodes++
				break
			}
		}
	}
	return p, nil
}

// endProfile ends s's profiling, parses the file ONNX Runtime wrote and
// removes it.
func endProfile(s *cSession) (Profile, error) {
	if s == nil {
		return Profile{}, fmt.Errorf("end profiling: session is closed")
	}
	path, err := s.endProfiling()
	if err != nil {
		return Profile{}, err
	}
	defer os.Remove(path)
	data, err := os.ReadFile(path)
	if err != nil {
		return Profile{}, fmt.Errorf("read ONNX Runtime profile: %w", err)
	}
	return ParseProfile(data)
}
