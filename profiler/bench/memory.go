package bench

import "fmt"

// The memory a configuration needs has one definition, here; the TUI, the
// bench summary, the CSV exports and the report all show WorkingSet and
// say what it is with these texts.
const (
	// MemoryHeader names the figure in column headers.
	MemoryHeader = "peak working set"
	// MemoryDefinition is the full definition, for footnotes and the
	// report's definitions.
	MemoryDefinition = "peak working set: on the CPU, the worker's peak RSS over warm-up and the timed loop " +
		"(the kernel's high-water mark, reset before warm-up) minus its RSS before the model was loaded; " +
		"on a GPU, the process's peak device memory over the timed loop minus its CUDA context, which is shown apart. " +
		"The resident memory right after loading (resident after load) misses what the session allocates while it runs."
	// MemoryFootnote is the one-line form for narrow views.
	MemoryFootnote = "mem = peak working set: peak RSS over warm-up + timed loop − RSS before load (GPU: peak process VRAM − CUDA context)"
)

// WorkingSet is the memory the configuration needs, by the one
// definition: on the CPU, PeakWorkingSet; on a GPU (Device "gpu"),
// GPUWorkingSet. where is "host" or "GPU"; ok is false when it was not
// measured (records before schema 4, or a GPU without a per-process figure).
func (m Memory) WorkingSet() (bytes int64, where string, ok bool) {
	if m.Device == "gpu" {
		return m.GPUWorkingSet, "GPU", m.GPUWorkingSet > 0
	}
	return m.PeakWorkingSet, "host", m.PeakWorkingSet > 0
}

// WorkingSetNote says why WorkingSet is unknown ("" when it is known).
func (m Memory) WorkingSetNote() string {
	if _, _, ok := m.WorkingSet(); ok {
		return ""
	}
	switch {
	case m.Device == "gpu" && m.GPUSource != GPUScopeProcess:
		return "no per-process GPU memory figure from NVML: peak working set unknown"
	case m.Device == "gpu" && m.GPUContext <= 0:
		return "the CUDA context's own memory was not measured: peak working set unknown"
	case m.Device == "gpu":
		return "GPU peak working set not measured"
	case m.PeakRSS > 0 && m.PeakSource == "":
		return "recorded before the peak working set was measured (results schema 1 to 3): memory unknown; rerun to measure it"
	}
	return "peak working set not measured"
}

// SetHostPeak records the phase's peak RSS and derives PeakWorkingSet.
func (m *Memory) SetHostPeak(peak int64, source, note string) {
	m.PeakRSS, m.PeakSource, m.PeakNote = peak, source, note
	m.PeakWorkingSet = max(0, peak-m.RSSBeforeLoad)
}

// SetGPUWorkingSet derives GPUWorkingSet from the process's peak device
// memory over the loop (GPUBytes, when NVML's process list gave it) and
// the CUDA context's share.
func (m *Memory) SetGPUWorkingSet() {
	m.GPUWorkingSet = 0
	if m.GPUSource == GPUScopeProcess && m.GPUBytes > 0 && m.GPUContext > 0 {
		m.GPUWorkingSet = max(0, m.GPUBytes-m.GPUContext)
	}
}

// String describes the memory figures on one line.
func (m Memory) String() string {
	ws, where, ok := m.WorkingSet()
	if !ok {
		return m.WorkingSetNote()
	}
	return fmt.Sprintf("%s peak working set %d MiB (resident after load %d MiB)", where, ws>>20, m.ResidentAfterLoad>>20)
}
