package bench

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestWorkingSetDefinition(t *testing.T) {
	var m Memory
	m.RSSBeforeLoad, m.RSSAfterLoad, m.ResidentAfterLoad = 100<<20, 121<<20, 21<<20
	if _, _, ok := m.WorkingSet(); ok {
		t.Error("a working set before the peak was measured")
	}
	m.SetHostPeak(178<<20, "high-water mark", "")
	if ws, where, ok := m.WorkingSet(); !ok || where != "host" || ws != 78<<20 {
		t.Errorf("host working set %d %s %v, want 78 MiB: peak RSS − RSS before load", ws, where, ok)
	}
	// On a GPU the working set is device memory less the CUDA context.
	g := Memory{Device: "gpu", GPUBytes: 1724 << 20, GPUSource: "process", GPUContext: 312 << 20}
	g.SetGPUWorkingSet()
	if ws, where, ok := g.WorkingSet(); !ok || where != "GPU" || ws != 1412<<20 {
		t.Errorf("GPU working set %d %s %v", ws, where, ok)
	}
	// No per-process figure, or no context measured: unknown, and said why.
	for _, bad := range []Memory{
		{Device: "gpu", GPUBytes: 2 << 30, GPUSource: "device", GPUContext: 312 << 20},
		{Device: "gpu", GPUBytes: 2 << 30, GPUSource: "process"},
	} {
		bad.SetGPUWorkingSet()
		if _, _, ok := bad.WorkingSet(); ok || bad.WorkingSetNote() == "" {
			t.Errorf("%+v has a working set", bad)
		}
	}
}

func TestMemoryReadsSchema1(t *testing.T) {
	var m Memory
	if err := json.Unmarshal([]byte(`{"rss_before_load":1,"rss_after_load":5,"peak_rss":9,"model_rss":4}`), &m); err != nil {
		t.Fatal(err)
	}
	if m.ResidentAfterLoad != 4 || m.PeakRSS != 9 {
		t.Errorf("schema 1 memory read as %+v", m)
	}
	if _, _, ok := m.WorkingSet(); ok || !strings.Contains(m.WorkingSetNote(), "schema 1") {
		t.Errorf("schema 1 working set: %s", m.WorkingSetNote())
	}
	b, _ := json.Marshal(Memory{ResidentAfterLoad: 4})
	if strings.Contains(string(b), "model_rss") || !strings.Contains(string(b), `"resident_after_load":4`) {
		t.Errorf("written as %s", b)
	}
}
