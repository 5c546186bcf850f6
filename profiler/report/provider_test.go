package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/profiler/bench"
	"github.com/quantscope/quantscope/profiler/ort/cudaopt"
	"github.com/quantscope/quantscope/profiler/study"
)

func cudaRecord(opts map[string]string, graph *cudaopt.GraphStatus) study.Record {
	return study.Record{Provider: &study.Provider{Name: "cuda", Options: opts, CUDAGraph: graph}}
}

func TestCUDASettings(t *testing.T) {
	on := cudaopt.Effective(nil)
	off := cudaopt.Effective(map[string]string{"use_tf32": "0"})
	graphOn := cudaopt.Effective(map[string]string{"enable_cuda_graph": "1"})
	active := &cudaopt.GraphStatus{Requested: true, Active: true}
	fell := &cudaopt.GraphStatus{Requested: true, Reason: "nodes not all on the CUDA EP | MemcpyToHost"}
	cpu := study.Record{Provider: &study.Provider{Name: "cpu", Options: map[string]string{"use_tf32": "0"}}}
	for _, tc := range []struct {
		name        string
		recs        []study.Record
		tf32, graph string
	}{
		{"no records", nil, "", ""},
		{"cpu only", []study.Record{cpu, {}}, "", ""},
		{"old cuda records", []study.Record{cudaRecord(nil, nil)}, "", ""},
		{"defaults", []study.Record{cudaRecord(on, nil), cpu}, "on (FP32 baselines use TF32 math)", "off"},
		{"tf32 off", []study.Record{cudaRecord(off, nil)}, "off (strict FP32 baselines)", "off"},
		{"tf32 mixed", []study.Record{cudaRecord(on, nil), cudaRecord(off, nil), cudaRecord(off, nil)}, "mixed: on in 1, off in 2 records", "off"},
		{"graph active", []study.Record{cudaRecord(graphOn, active)}, "on (FP32 baselines use TF32 math)", "on"},
		{"graph fell back", []study.Record{cudaRecord(on, fell)}, "on (FP32 baselines use TF32 math)",
			`requested, fell back: nodes not all on the CUDA EP \| MemcpyToHost`},
		{"graph mixed", []study.Record{cudaRecord(graphOn, active), cudaRecord(graphOn, active), cudaRecord(on, fell), cudaRecord(on, nil)},
			"on (FP32 baselines use TF32 math)", `mixed: on in 2, off in 1, fell back in 1 records (fell back: nodes not all on the CUDA EP \| MemcpyToHost)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf32, graph := cudaSettings(tc.recs)
			if tf32 != tc.tf32 || graph != tc.graph {
				t.Errorf("got TF32 %q, graph %q; want %q, %q", tf32, graph, tc.tf32, tc.graph)
			}
		})
	}
}

// TestReportShowsCUDASettings reads CUDA records as the worker writes them
// (with effective options and the CUDA graph status) next to an older one
// without them: the Environment table says TF32 and CUDA graph state.
func TestReportShowsCUDASettings(t *testing.T) {
	var lines bytes.Buffer
	host := `"host":{"hostname":"gpu","cpu":"c","gpu":"NVIDIA H100","ort_version":"1.29.0"}`
	lines.WriteString(`{"schema":1,"experiment":{"model":"m","precision":"fp32","ep":"cuda","batch":1},` + host +
		`,"status":"ok","metrics":{"throughput":10,"latency":{"p50_ms":100,"p99_ms":120}}}` + "\n")
	for _, prec := range []string{"fp32", "fp16"} {
		rec := study.Record{
			Schema:     study.SchemaVersion,
			Experiment: study.Experiment{Model: "m", Precision: prec, EP: "cuda", Batch: 1, Repeat: 1},
			Host:       study.Host{Hostname: "gpu", CPU: "c", GPU: "NVIDIA H100", ORTVersion: "1.29.0"},
			Provider: &study.Provider{Name: "cuda", Route: "plugin",
				Options:   cudaopt.Effective(map[string]string{"use_tf32": "0", "enable_cuda_graph": "0"}),
				CUDAGraph: &cudaopt.GraphStatus{Requested: true, Reason: "graph capture: not all nodes on CUDAExecutionProvider"}},
			Status:  study.StatusOK,
			Metrics: &bench.Metrics{Throughput: 20, Latency: bench.LatencyStats{P50Ms: 50, P99Ms: 60}},
		}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`"cuda_graph":{"requested":true,"active":false,"reason":`)) {
			t.Errorf("record JSON: %s", b)
		}
		lines.Write(append(b, '\n'))
	}
	srcs, err := Load(writeTemp(t, "gpu.jsonl", lines.String()))
	if err != nil {
		t.Fatal(err)
	}
	if g := srcs[0].Records[0].Provider; g != nil {
		t.Errorf("old record decoded with a provider: %+v", g)
	}
	if g := srcs[0].Records[1].Provider.CUDAGraph; g == nil || g.Active || !g.Requested {
		t.Errorf("CUDA graph status did not round-trip: %+v", g)
	}
	md := string(renderMD(t, Build(srcs, testOptions(t))))
	for _, want := range []string{
		"| TF32 (CUDA) | off (strict FP32 baselines) |",
		"| CUDA graphs | requested, fell back: graph capture: not all nodes on CUDAExecutionProvider |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}

	// A record with CUDA graphs not requested keeps the field out of the JSON.
	b, _ := json.Marshal(study.Provider{Name: "cuda"})
	if strings.Contains(string(b), "cuda_graph") {
		t.Errorf("provider JSON without a CUDA graph request: %s", b)
	}
}
