package quant

import "github.com/quantscope/quantscope/models/onnx"

// Exported for the external tests (package quant_test) only.

// InferTypesForTest exposes inferTypes: the element type of every value
// of m's graph it can type (m's graph must be sorted).
func InferTypesForTest(m *onnx.Model) map[string]onnx.DataType { return inferTypes(m.Graph()) }

// FP16ContribOpsForTest lists the com.microsoft op types the fp16
// transform converts.
func FP16ContribOpsForTest() []string {
	ops := make([]string, 0, len(fp16Contrib))
	for op := range fp16Contrib {
		ops = append(ops, op)
	}
	return ops
}
