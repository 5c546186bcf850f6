package study

import (
	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/quantscope/quantscope/profiler/ort"
	"github.com/quantscope/quantscope/profiler/telemetry"
)

// ReadHost fingerprints this machine for the records of a study: CPU and ISA
// features, the first GPU and its driver (through lib; nil means the real
// NVML), and the ONNX Runtime version.
func ReadHost(ort ort.Info, lib nvml.Interface) Host {
	hi := telemetry.ReadHostInfo()
	h := Host{
		Hostname:   hi.Hostname,
		CPU:        hi.CPU.Model,
		Cores:      hi.CPU.PhysicalCores,
		ORTVersion: ort.Version,
	}
	for _, f := range hi.CPU.Features {
		if f.Present {
			h.ISA = append(h.ISA, f.Name)
		}
	}
	if lib == nil {
		lib = nvml.New()
	}
	gpus, st := telemetry.ReadGPUs(lib)
	if st.Available() && len(gpus) > 0 {
		h.GPU = gpus[0].Name
		h.Driver = st.DriverVersion
		h.CUDA = st.CUDADriverVersion
		if p := gpus[0].PowerLimitW; p != nil {
			h.PowerLimit = *p
		}
	}
	return h
}
