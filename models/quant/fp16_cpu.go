package quant

// cpuFP16Kernels lists the float-computing operators ONNX Runtime's CPU
// execution provider (1.29, x86-64) has float16 kernels for; on every other
// operator it inserts a Cast to float32 before the node and one back after
// (InsertedPrecisionFreeCast), which is where FP16 on a CPU loses its time.
// Measured by TestFP16CPUKernelTable, one single-operator model per
// operator; operators that only move data (Reshape, Transpose, Gather,
// Concat, Slice, ...) have type-generic kernels and are not listed.
var cpuFP16Kernels = map[string]bool{
	"MatMul": true, "Gemm": true, "LayerNormalization": true, "SkipLayerNormalization": true, "Clip": true,
}

// cpuDataOps are the data-movement operators whose CPU kernels take any
// element type.
var cpuDataOps = map[string]bool{
	"Reshape": true, "Transpose": true, "Gather": true, "Concat": true, "Slice": true, "Split": true,
	"Squeeze": true, "Unsqueeze": true, "Flatten": true, "Expand": true, "Identity": true, "Shape": true,
	"Cast": true, "Tile": true, "Pad": true,
}

// CPUHasFP16Kernel reports whether ONNX Runtime's CPU execution provider
// runs op on float16 tensors without converting them (data-movement
// operators included).
func CPUHasFP16Kernel(op string) bool { return cpuFP16Kernels[op] || cpuDataOps[op] }
