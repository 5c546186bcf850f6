package bench_test

import (
	"math"
	"testing"

	"github.com/quantscope/quantscope/profiler/bench"
)

// FuzzParseOpProfile: any bytes parse or fail with an error, never
// panic; a parsed profile's shares are finite, sum to at most 1 and it
// keeps at most TopNodes nodes.
func FuzzParseOpProfile(f *testing.F) {
	f.Add([]byte(`[{"cat":"Session","name":"model_run","ts":0,"dur":100},{"cat":"Node","name":"a_kernel_time","ts":10,"dur":40,"args":{"op_name":"MatMul","provider":"CPUExecutionProvider","input_type_shape":[{"float":[1,2]}]}}]`), 0)
	f.Add([]byte(`[]`), 1)
	f.Add([]byte(`{`), 0)
	f.Fuzz(func(t *testing.T, data []byte, skip int) {
		p, err := bench.ParseOpProfile(data, skip%4)
		if err != nil {
			return
		}
		sum := 0.0
		for _, o := range p.Ops {
			if math.IsNaN(o.Share) || math.IsInf(o.Share, 0) {
				t.Fatalf("share %v", o.Share)
			}
			sum += o.Share
		}
		if sum > 1+1e-9 || len(p.Top) > bench.TopNodes {
			t.Fatalf("shares sum to %v, %d top nodes", sum, len(p.Top))
		}
		_ = p.Findings()
		_ = p.Summary(3)
	})
}
