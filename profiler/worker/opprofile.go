package worker

import (
	"fmt"
	"os"

	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/ort"
)

// opProfileRuns is how many warm runs after the first inference the
// session makes under ONNX Runtime's profiler, before the timed loop and
// with the profiler ended before it starts: the per-operator profile
// averages them (the first, cold run is dropped).
const opProfileRuns = 3

// opProfile reads where the profiled runs' time went per operator and
// node; nil (with a note on stderr) when the profile does not say.
func opProfile(p ort.Profile) *bench.OpProfile {
	if len(p.Raw) == 0 {
		fmt.Fprintln(os.Stderr, "quantscope worker: per-operator time unknown: no profile of plain runs (CUDA graphs replay without node events)")
		return nil
	}
	op, err := bench.ParseOpProfile(p.Raw, 1)
	if err != nil {
		fmt.Fprintf(os.Stderr, "quantscope worker: per-operator time unknown: %v\n", err)
		return nil
	}
	return op
}
