package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Placement runs the model once with ONNX Runtime's profiler on and counts,
// per execution provider, the nodes that ran there after graph
// optimization and partitioning: the answer to "did my model silently fall
// back to the CPU?". It opens a session of its own, so it costs one more
// model load.
func Placement(path string, cfg SessionConfig, batch int) (map[string]int, error) {
	dir, err := os.MkdirTemp("", "quantscope-profile-")
	if err != nil {
		return nil, fmt.Errorf("placement of %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	cfg.ProfilePrefix = filepath.Join(dir, "placement")
	bd, err := NewBound(path, cfg, batch, 1)
	if err != nil {
		return nil, fmt.Errorf("placement: %w", err)
	}
	runErr := bd.Run()
	if err := bd.Close(); err != nil { // closing the session writes the profile
		return nil, fmt.Errorf("placement: %w", err)
	}
	if runErr != nil {
		return nil, fmt.Errorf("placement run of %s: %w", path, runErr)
	}
	// Reading the model's inputs opens a short-lived session with the same
	// options, so there may be a profile without runs: take the one with nodes.
	files, _ := filepath.Glob(filepath.Join(dir, "placement*.json"))
	lastErr := fmt.Errorf("placement of %s: ONNX Runtime wrote no profile", path)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("placement: %w", err)
		}
		p, err := parsePlacement(data)
		if err == nil {
			return p, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// profileEvent is the part of an ONNX Runtime profile event Placement reads.
type profileEvent struct {
	Cat  string `json:"cat"`
	Name string `json:"name"`
	Args struct {
		OpName   string `json:"op_name"`
		Provider string `json:"provider"`
	} `json:"args"`
}

// parsePlacement counts distinct nodes per provider in an ONNX Runtime
// profile (a JSON array of trace events; node events have cat "Node" and
// name "<node>_kernel_time").
func parsePlacement(data []byte) (map[string]int, error) {
	var events []profileEvent
	if err := json.Unmarshal(data, &events); err != nil {
		return nil, fmt.Errorf("parse ONNX Runtime profile: %w", err)
	}
	seen := map[string]bool{}
	out := map[string]int{}
	for _, e := range events {
		if e.Cat != "Node" || e.Args.Provider == "" || seen[e.Name] {
			continue
		}
		seen[e.Name] = true
		out[e.Args.Provider]++
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("parse ONNX Runtime profile: no node events")
	}
	return out, nil
}
