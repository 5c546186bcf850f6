package onnx

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// FuzzLoad writes arbitrary bytes as model.onnx and loads them: Load must
// return a model or an error, never panic or allocate beyond the files'
// sizes. A model that loads is also checked, summarized, sorted and decoded.
// (Save is left out: its fsyncs would slow fuzzing a hundredfold; the unit
// tests cover it.)
func FuzzLoad(f *testing.F) {
	valid, err := proto.Marshal(buildBlock(f, 4).Proto)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(valid[:len(valid)-1])
	f.Add([]byte{})
	f.Add([]byte("not an onnx model\n"))
	f.Add([]byte{0x08, 0x0a}) // ir_version only
	// External data: in the model file itself, missing, escaping.
	f.Add(externalModel(f, "model.onnx", "0", "64"))
	f.Add(externalModel(f, "model.onnx", "", ""))
	f.Add(externalModel(f, "gone.bin", "0", "64"))
	f.Add(externalModel(f, "../model.onnx", "0", "64"))
	f.Add(externalModel(f, "model.onnx", "9223372036854775807", "9223372036854775807"))
	// Huge dims with no data.
	huge := buildBlock(f, 4)
	initializer(f, huge.Proto.Graph, "fc.weight").Dims = []int64{1 << 40, 1 << 40}
	hb, _ := proto.Marshal(huge.Proto)
	f.Add(hb)
	// A subgraph and a Constant node.
	sub := buildBlock(f, 4)
	c, _ := NewTensorInt4("c", []int64{3}, []int8{1, -2, 3})
	sub.Proto.Graph.Node = append(sub.Proto.Graph.Node,
		&onnxpb.NodeProto{OpType: ptr("Constant"), Output: []string{"c"}, Attribute: []*onnxpb.AttributeProto{AttrTensor("value", c)}},
		&onnxpb.NodeProto{OpType: ptr("If"), Input: []string{"c"}, Output: []string{"z"},
			Attribute: []*onnxpb.AttributeProto{AttrGraph("then_branch", proto.Clone(sub.Proto.Graph).(*onnxpb.GraphProto))}})
	sb, _ := proto.Marshal(sub.Proto)
	f.Add(sb)

	// One file per fuzzing process (inputs run one at a time), rewritten in
	// place: truncating and refilling a file costs far more on some file
	// systems, and fuzzing throughput is what finds bugs.
	path := filepath.Join(f.TempDir(), "model.onnx")
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { file.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := file.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		if err := file.Truncate(int64(len(data))); err != nil {
			t.Fatal(err)
		}
		m, err := Load(path)
		if err != nil {
			if m != nil {
				t.Fatal("model and error")
			}
			return
		}
		_ = Check(m)
		_ = m.Stats()
		for _, init := range m.Proto.Graph.GetInitializer() {
			_, _ = TensorFloat32(init)
			_, _ = TensorFloat16(init)
			_, _ = TensorInt64(init)
			_, _ = TensorInt8(init)
			_, _ = TensorInt4(init)
		}
		g := m.Clone().Proto.Graph
		if TopoSort(g) == nil && len(g.GetNode()) != len(m.Proto.Graph.GetNode()) {
			t.Fatal("TopoSort lost nodes")
		}
	})
}
