package quant

import (
	"context"
	"fmt"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"google.golang.org/protobuf/proto"
)

// storageMinElems is the smallest weight fp16:storage stores in float16:
// smaller tensors (scales, shapes) are not worth a Cast.
const storageMinElems = 16

// toFP16Storage stores every float32 weight of at least storageMinElems
// values in float16 and reads it through a Cast to float32 under its old
// name, so the graph computes in float32 as before: ONNX Runtime folds
// each Cast of a constant when the session starts, so inference runs at
// FP32 speed from a file half the size. Initializers that are graph inputs
// or outputs stay as they are.
func toFP16Storage(ctx context.Context, st *state) error {
	ix, g := st.ix, st.ix.g
	var casts []*onnxpb.NodeProto
	var bytes int64
	stored := 0
	for i, t := range g.GetInitializer() {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		name := t.GetName()
		if onnx.DataTypeOf(t) != onnx.Float || onnx.IsExternal(t) || ix.Declared[name] || ix.Outputs[name] || len(ix.Consumers[name]) == 0 {
			continue
		}
		n, err := onnx.Numel(t.GetDims())
		if err != nil || n < storageMinElems {
			continue
		}
		half := ix.Unique(name + "_fp16")
		t.Name = proto.String(half)
		if err := tensorToFP16(t); err != nil {
			return err
		}
		casts = append(casts, &onnxpb.NodeProto{
			OpType: proto.String("Cast"), Name: proto.String(ix.Unique(name + "_to_fp32")),
			Input: []string{half}, Output: []string{name},
			Attribute: []*onnxpb.AttributeProto{onnx.AttrInt("to", int64(onnx.Float))},
		})
		for _, c := range ix.Consumers[name] {
			st.t.stored[c.GetName()] = true
		}
		bytes += 2 * n
		stored++
	}
	if stored == 0 {
		return nil
	}
	g.Node = append(casts, g.Node...)
	st.t.note("%s", fmt.Sprintf("fp16:storage: %d weights (%.1f MiB) stored as float16, each read through a Cast to float32 that ONNX Runtime folds when the session starts; every node computes in float32", stored, float64(bytes)/(1<<20)))
	ix.Rebuild()
	return nil
}
