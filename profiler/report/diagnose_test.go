package report

import (
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/study"
)

// TestDiagnose checks each cause Diagnose names, and that it names none
// without evidence.
func TestDiagnose(t *testing.T) {
	avx2 := HostCPU(study.Host{ISA: []string{"AVX2", "F16C", "FMA"}})
	vnni := HostCPU(study.Host{ISA: []string{"AVX2", "AVX-512F", "AVX512-VNNI", "F16C"}})
	convInteger := &quant.Report{Ops: []quant.OpPrecision{{Op: "Conv", Nodes: map[quant.Precision]int{quant.PrecInt8: 3}}},
		Layers:      []quant.LayerForm{{Form: quant.FormConvInteger}, {Form: quant.FormConvInteger}, {Form: quant.FormQDQConv}},
		WeightBytes: map[int]int64{8: 900, 32: 100}}
	lowCoverage := &quant.Report{WeightBytes: map[int]int64{8: 100, 32: 900}}
	tests := []struct {
		name      string
		prec, ep  string
		verdict   bench.Verdict
		speedup   float64
		cpu       CPUQuant
		metrics   func(m *bench.Metrics)
		want      []Cause
		wantInAny string
	}{
		{"clean and fast", "int8", "cpu", bench.VerdictFaster, 2, vnni, nil, nil, ""},
		{"baseline", "fp32", "cpu", "", 1, avx2, func(m *bench.Metrics) { m.OverheadFloor = false }, nil, ""},
		{"int8 on AVX2", "int8", "cpu", bench.VerdictNoise, 1.01, avx2, nil, []Cause{CauseCPU}, "AVX2 only"},
		{"unknown CPU is not judged", "int8", "cpu", bench.VerdictNoise, 1.01, CPUQuant{}, nil, nil, ""},
		{"fp16 on F16C", "fp16", "cpu", bench.VerdictSlower, 0.5, avx2, nil, []Cause{CauseCPU}, "F16C converts only"},
		{"fp16 on CUDA ignores the CPU", "fp16", "cuda", bench.VerdictSlower, 0.5, avx2, nil, nil, ""},
		{"ConvInteger", "int8", "cpu", bench.VerdictSlower, 0.3, vnni, func(m *bench.Metrics) { m.Precision = convInteger },
			[]Cause{CauseKernels}, "2 Conv nodes became ConvInteger"},
		{"low coverage", "int8", "cpu", bench.VerdictNoise, 1, vnni, func(m *bench.Metrics) { m.Precision = lowCoverage },
			[]Cause{CauseCoverage}, "only 10% of the weight bytes"},
		{"int4 not faster on CPU", "int4", "cpu", bench.VerdictNoise, 0.98, vnni, nil, []Cause{CauseKernels}, "MatMulNBits"},
		{"int4 faster on CPU", "int4", "cpu", bench.VerdictFaster, 1.3, vnni, nil, nil, ""},
		{"overhead floor and noise", "int8", "cpu", bench.VerdictOneRun, 1.01, vnni, func(m *bench.Metrics) {
			m.OverheadFloor = true
			m.Latency.CV, m.Latency.Runs, m.Latency.SevereOutliers = 0.4, 100, 3
		}, []Cause{CauseOverheadFloor, CauseNoise}, "CV 40%, 3 severe outliers"},
		{"placement fallback", "fp16", "cuda", bench.VerdictFaster, 2, vnni, func(m *bench.Metrics) {
			m.Placement = map[string]int{"CUDAExecutionProvider": 40, "CPUExecutionProvider": 3}
		}, []Cause{CausePlacement}, "3 nodes fell back"},
		{"cpu placement is no fallback", "int8", "cpu", bench.VerdictFaster, 2, vnni, func(m *bench.Metrics) {
			m.Placement = map[string]int{"CPUExecutionProvider": 40}
		}, nil, ""},
		{"time", "fp16", "cuda", bench.VerdictSlower, 0.8, vnni, func(m *bench.Metrics) {
			m.OpProfile = &bench.OpProfile{Ops: []bench.OpTime{{Op: "Cast", Share: 0.3}}}
		}, []Cause{CauseTime}, "Cast nodes take 30%"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &bench.Metrics{Throughput: 10, Latency: bench.LatencyStats{Runs: 100, P50Ms: 5, CV: 0.02}}
			if tc.metrics != nil {
				tc.metrics(m)
			}
			exp := study.Experiment{Model: "m", Precision: tc.prec, EP: tc.ep, Batch: 1}
			row := study.Row{Experiment: exp, Status: study.StatusOK, HasBaseline: true, Speedup: tc.speedup, Verdict: tc.verdict,
				Last: &study.Record{Experiment: exp, Status: study.StatusOK, Metrics: m}}
			got := Diagnose(row, tc.cpu)
			var causes []Cause
			var texts []string
			for _, f := range got {
				causes = append(causes, f.Cause)
				texts = append(texts, f.Text)
				if f.Rerun != (f.Cause == CauseNoise) {
					t.Errorf("%s finding: Rerun %v", f.Cause, f.Rerun)
				}
			}
			if strings.Join(causesText(causes), ",") != strings.Join(causesText(tc.want), ",") {
				t.Errorf("causes %v, want %v (%q)", causes, tc.want, texts)
			}
			if tc.wantInAny != "" && !strings.Contains(strings.Join(texts, "\n"), tc.wantInAny) {
				t.Errorf("findings %q lack %q", texts, tc.wantInAny)
			}
		})
	}
	if got := Diagnose(study.Row{Experiment: study.Experiment{Precision: "int8"}}, vnni); got != nil {
		t.Errorf("a row without a record: %v", got)
	}
}

func causesText(cs []Cause) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}
