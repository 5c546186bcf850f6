package main

import (
	"strings"
	"testing"
)

// TestBenchCUDAFlagsValidated: the CUDA option flags are checked before
// anything runs (no ONNX Runtime needed) and exit 2 with a message naming
// the flag.
func TestBenchCUDAFlagsValidated(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cuda-graph", "--ep", "cpu"}, "--cuda-graph needs --ep cuda"},
		{[]string{"--tf32", "off"}, "--tf32 needs --ep cuda"}, // --ep defaults to cpu
		{[]string{"--nhwc", "--conv-algo", "heuristic", "--ep", "tensorrt"}, "--conv-algo, --nhwc need --ep cuda"},
		{[]string{"--tf32", "off", "--ep", "cuda", "--ep-option", "use_tf32=1"}, "--tf32 sets use_tf32=0, but --ep-option use_tf32=1 says otherwise"},
		{[]string{"--conv-algo", "fastest", "--ep", "cuda"}, `--conv-algo "fastest": want exhaustive, heuristic or default`},
		{[]string{"--tf32", "maybe", "--ep", "auto"}, `--tf32 "maybe": want on or off`},
	} {
		args := append([]string{"bench", "--models", "m.onnx", "--out", "r.jsonl"}, tc.args...)
		_, stderr, code := cli(t, dir, args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
