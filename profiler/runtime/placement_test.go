package runtime

import (
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
)

func TestPlacementCountsNodesPerProvider(t *testing.T) {
	requireORT(t)
	b := onnx.NewBuilder("two", 17)
	b.AddInput("x", onnx.Float, onnx.Dims("batch", 4))
	b.AddNode("Relu", []string{"x"}, []string{"r"})
	b.AddNode("Sigmoid", []string{"r"}, []string{"y"})
	b.AddOutput("y", onnx.Float, onnx.Dims("batch", 4))
	p, err := Placement(saveModel(t, b), SessionConfig{IntraOpThreads: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if p[CPUProvider] != 2 || len(p) != 1 {
		t.Errorf("placement %v, want 2 nodes on the CPU EP", p)
	}
}

func TestParsePlacement(t *testing.T) {
	profile := `[
	 {"cat":"Session","name":"model_run","args":{}},
	 {"cat":"Node","name":"mm_fence_before","args":{"op_name":"MatMul"}},
	 {"cat":"Node","name":"mm_kernel_time","args":{"op_name":"MatMul","provider":"CUDAExecutionProvider"}},
	 {"cat":"Node","name":"mm_kernel_time","args":{"op_name":"MatMul","provider":"CUDAExecutionProvider"}},
	 {"cat":"Node","name":"erf_kernel_time","args":{"op_name":"Erf","provider":"CPUExecutionProvider"}},
	 {"cat":"Node","name":"memcpy_kernel_time","args":{"op_name":"MemcpyToHost","provider":"CUDAExecutionProvider"}}
	]`
	p, err := parsePlacement([]byte(profile))
	if err != nil {
		t.Fatal(err)
	}
	if p["CUDAExecutionProvider"] != 2 || p["CPUExecutionProvider"] != 1 {
		t.Errorf("placement %v", p)
	}
	for _, bad := range []string{"", "{}", "[]", `[{"cat":"Session"}]`} {
		if _, err := parsePlacement([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
