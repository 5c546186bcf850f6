package ort

// MemoryName is ONNX Runtime's name for a kind of memory (the name of an
// OrtMemoryInfo): where a DeviceBound's tensors live. Plugin EPs name
// their own (the CUDA plugin's device memory reads "CUDA").
type MemoryName string

// Memory names quantscope creates or tests for.
const (
	MemoryCPU        MemoryName = "Cpu"        // host memory (OrtCreateCpuMemoryInfo)
	MemoryCUDA       MemoryName = "Cuda"       // the builtin CUDA EP's device memory
	MemoryCUDAPinned MemoryName = "CudaPinned" // the builtin CUDA EP's pinned host memory
)
