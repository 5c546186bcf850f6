package optimize_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
)

// exporterFixture is a real torch.onnx.export graph (PyTorch 1.13.1, opset
// 17, dynamic batch) of a small ViT (32-pixel image, 8-pixel patches,
// width 32, 2 heads, depth 2, 10 classes) in the module structure of one
// library, made by
//
//	scripts/export-vit-variants.py --arch ARCH --seed 0 models/testdata/exports/ARCH.onnx
func exporterFixture(t testing.TB, arch string) *onnx.Model {
	t.Helper()
	m, err := onnx.Load(filepath.Join("..", "testdata", "exports", arch+".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Each exporter structure fuses fully: both attentions become
// MultiHeadAttention, every LayerNormalization that follows a residual Add
// a SkipLayerNormalization, both GELUs BiasGelu; no Softmax, Erf or
// Transpose of the attention is left and no Shape chain computes a
// reshape target (the symbolic batch folds); ONNX Runtime computes the same logits; a second pass
// changes nothing; and the fused graph's linears quantize.
func TestExporterStructuresFuseFully(t *testing.T) {
	cases := []struct {
		arch string
		// skipLN is how many LayerNormalizations read a residual Add:
		// all five in pre-norm blocks (with the position-embedding Add),
		// four in post-norm ones, whose final norm reads the last
		// block's norm.
		skipLN int
		// misses are the near misses expected (the post-norm final
		// LayerNormalization, whose input is a LayerNormalization).
		misses int
	}{
		{"torchvision", 5, 0},
		{"hf", 5, 0},
		{"hf-split", 5, 0},
		{"encoder-pre", 5, 0},
		{"encoder-post", 4, 1},
	}
	for _, c := range cases {
		t.Run(c.arch, func(t *testing.T) {
			m := exporterFixture(t, c.arch)
			before := ops(m)
			if before["Softmax"] != 2 || before["Shape"] == 0 {
				t.Fatalf("fixture is not the exporter's graph: %v", before)
			}
			fused, r := apply(t, m, optimize.Default())
			after := ops(fused)
			t.Logf("%s; %d → %d nodes; after: %v", r, r.NodesBefore, r.NodesAfter, after)
			for op, want := range map[string]int{
				"com.microsoft.MultiHeadAttention":     2,
				"com.microsoft.SkipLayerNormalization": c.skipLN,
				"com.microsoft.BiasGelu":               2,
				"Softmax":                              0,
				"Erf":                                  0,
				"Identity":                             0,
			} {
				if after[op] != want {
					t.Errorf("%s: %d, want %d", op, after[op], want)
				}
			}
			// The attention's head splits and merges are gone: what
			// Transposes are left belong to the patch embedding, and one
			// Shape is left, for the batch size the class token is
			// expanded to.
			if after["Transpose"] > 1 || after["Shape"] > 1 {
				t.Errorf("%d Transposes and %d Shapes left, want at most the patch embedding's and the class token's", after["Transpose"], after["Shape"])
			}
			if len(r.Misses) != c.misses {
				t.Errorf("near misses: %+v, want %d", r.Misses, c.misses)
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
			for _, spec := range []string{"int8", "int4"} {
				q, _ := quantize(t, fused, spec)
				if n := floatLinears(q); n != 0 {
					t.Errorf("%s: %d linears left in float", spec, n)
				}
			}
		})
	}
}

// The unpacked attention options (MultiHeadAttention after one packed
// MatMul, and com.microsoft Attention) are equivalent on the
// sequence-first and separate-projection structures too.
func TestExporterStructuresAttentionOps(t *testing.T) {
	for _, arch := range []string{"torchvision", "hf"} {
		for _, op := range []optimize.AttentionOp{optimize.AttentionMHAPacked, optimize.AttentionPacked} {
			t.Run(arch+"/"+string(op), func(t *testing.T) {
				m := exporterFixture(t, arch)
				fused, r := apply(t, m, optimize.Options{AttentionOp: op})
				if r.Count(optimize.Attention) != 2 {
					t.Fatalf("%s: %s", op, r)
				}
				equivalent(t, m, fused, randomInput([]int64{2, 3, 32, 32}, 5), 0.99999)
			})
		}
	}
}

// Near misses: an attention whose scores get a mask computed from the
// input (in each exporter's structure: Hugging Face's additive mask,
// nn.MultiheadAttention's and nn.TransformerEncoder's key padding mask),
// or a learned per-head scale, is not what the fused operator computes.
// It stays unfused, and the report says which pattern almost matched and
// why; the rest of the block still fuses.
func TestExporterNearMisses(t *testing.T) {
	for _, c := range []struct{ arch, why string }{
		{"hf-masked", "mask computed from inputs"},
		{"hf-headscale", "not a positive scalar constant"},
		{"torchvision-masked", "mask computed from inputs"},
		{"encoder-masked", "mask computed from inputs"},
	} {
		t.Run(c.arch, func(t *testing.T) {
			m := exporterFixture(t, c.arch)
			fused, r := apply(t, m, optimize.Default())
			if r.Count(optimize.Attention) != 0 {
				t.Errorf("attention fused on %s: %s", c.arch, r)
			}
			var attn []optimize.Miss
			for _, ms := range r.Misses {
				if ms.Pattern == optimize.Attention {
					attn = append(attn, ms)
				}
			}
			if len(attn) != 2 {
				t.Fatalf("attention near misses %+v, want one per block", r.Misses)
			}
			for _, ms := range attn {
				if !strings.Contains(ms.Reason, c.why) || !strings.Contains(ms.Node, "Softmax") {
					t.Errorf("miss %+v: want the Softmax named and %q", ms, c.why)
				}
			}
			if r.Count(optimize.SkipLayerNorm) != 5 || r.Count(optimize.BiasGelu) != 2 {
				t.Errorf("the rest of the block did not fuse: %s", r)
			}
			equivalent(t, m, fused, randomInput([]int64{2, 3, 32, 32}, 9), 0.99999)
		})
	}
}
