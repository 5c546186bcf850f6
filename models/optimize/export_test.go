package optimize_test

import (
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
)

// exportFixture is a real torch.onnx.export graph (PyTorch 1.13.1, opset
// 17, dynamic batch) of a timm-architecture VisionTransformer: 32-pixel
// image, 8-pixel patches, width 32, 2 heads, depth 2, 10 classes, timm's
// initialisation. It was made by
//
//	scripts/export-timm-vit.py --preset fixture --seed 0 models/testdata/timm-vit-export.onnx
//
// and carries what the exporter writes and the builder-made timmExport
// imitates: Identity nodes, Constant nodes for every shape, Shape → Gather
// → Unsqueeze → Concat reshape targets, Split + Squeeze for unbind, the
// scale multiplied into q, Erf GELU, MatMul + Add linears, a Gemm head.
const exportFixture = "../testdata/timm-vit-export.onnx"

// The exporter's graph fuses fully: both attentions, all five
// LayerNormalizations as SkipLayerNormalization (the first block's norm1
// with the position-embedding Add, the others with the residual), both GELUs; no
// Softmax, Erf or Identity is left; ONNX Runtime computes the same logits;
// a second pass changes nothing; and the fused graph quantizes.
func TestTorchExportFusesFully(t *testing.T) {
	m, err := onnx.Load(exportFixture)
	if err != nil {
		t.Fatal(err)
	}
	before := ops(m)
	if before["Identity"] == 0 || before["Split"] != 2 || before["Erf"] != 2 || before["Softmax"] != 2 {
		t.Fatalf("fixture is not the exporter's graph: %v", before)
	}
	fused, r := apply(t, m, optimize.Default())
	after := ops(fused)
	t.Logf("%s; %d → %d nodes; after: %v", r, r.NodesBefore, r.NodesAfter, after)
	for op, want := range map[string]int{
		"com.microsoft.MultiHeadAttention":     2,
		"com.microsoft.SkipLayerNormalization": 5,
		"com.microsoft.BiasGelu":               2,
		"Softmax":                              0,
		"Erf":                                  0,
		"LayerNormalization":                   0,
		"Identity":                             0,
		"Split":                                0,
	} {
		if after[op] != want {
			t.Errorf("%s: %d, want %d", op, after[op], want)
		}
	}
	if len(r.Misses) > 0 {
		t.Errorf("near misses on an exporter graph: %+v", r.Misses)
	}
	if err := onnx.Check(fused); err != nil {
		t.Errorf("fused graph fails the checker: %v", err)
	}
	_, again := apply(t, fused, optimize.Default())
	if again.Changed() {
		t.Errorf("second pass changed the graph: %s", again)
	}
	for _, batch := range []int64{1, 3} {
		equivalent(t, m, fused, randomInput([]int64{batch, 3, 32, 32}, uint64(batch)), 0.99999)
	}
	// The fused graph's linears are what the quantizers convert.
	for _, spec := range []string{"int8", "int4"} {
		q, qr := quantize(t, fused, spec)
		if n := floatLinears(q); n != 0 {
			t.Errorf("%s: %d linears left in float", spec, n)
		}
		if qr.NodesConverted < 12 {
			t.Errorf("%s: %d nodes converted", spec, qr.NodesConverted)
		}
	}
}
