package study

import (
	"testing"

	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/telemetry/telemetrytest"
)

func TestReadHost(t *testing.T) {
	ort := ort.Info{Version: "1.29.0"}
	h := ReadHost(ort, telemetrytest.DGXH100(2).NVML())
	if h.CPU == "" || h.ORTVersion != "1.29.0" || h.Cores <= 0 {
		t.Errorf("host %+v", h)
	}
	if h.GPU == "" || h.Driver == "" || h.CUDA == "" || h.PowerLimit <= 0 {
		t.Errorf("GPU fingerprint from the mock H100s: %+v", h)
	}
	none := ReadHost(ort, telemetrytest.NoLibrary().NVML())
	if none.GPU != "" || none.Driver != "" {
		t.Errorf("no NVML but GPU fields set: %+v", none)
	}
}
