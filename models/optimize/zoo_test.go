package optimize_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/zoo"
)

// familyCase is one zoo family at a tiny size, with the fusions it must
// get.
type familyCase struct {
	name string
	spec zoo.Spec
	want map[optimize.Pattern]int
	// gone lists operators that must not survive the optimization.
	gone []string
}

// tinyViT is a 32-pixel ViT-family configuration: 8-pixel patches (17
// tokens with the class token), width 32, 2 heads, depth 2.
func tinyViT(f zoo.ViTFlavor) zoo.ViTConfig {
	c := zoo.ViTConfig{Flavor: f, Dim: 32, Depth: 2, Heads: 2, MLPDim: 64, Patch: 8, Classes: 10}
	switch f {
	case zoo.FlavorDINOv2, zoo.FlavorBEiT:
		c.LayerScale = 0.1
	case zoo.FlavorCLIP:
		c.Classes, c.Proj = 0, 16
	}
	return c
}

func vitCase(name string, fam zoo.Family, c zoo.ViTConfig, want map[optimize.Pattern]int) familyCase {
	return familyCase{
		name: name,
		spec: zoo.Spec{Name: name, Family: fam, Resolution: 32, Preprocess: zoo.ImageNetNorm, Arch: c},
		want: want,
		gone: []string{"Softmax", "Erf", "Sigmoid", "Gelu"},
	}
}

// familyCases covers every family of the catalog. Depth 2: attention ×2,
// one BiasGelu (or QuickGelu) per block, a SkipLayerNormalization for
// every LayerNorm whose input is an Add (BEiT's first block and pooled
// fc_norm, CLIP's first block and final norm read something else), and
// the last block's token-wise nodes after attention computing the class
// token only where the head reads just that (q projection, attention,
// projection, two norms, MLP: 8; CLIP's last residual Add and final norm
// are separate nodes: 10). BEiT pools every token: nothing to prune.
func familyCases() []familyCase {
	dino := tinyViT(zoo.FlavorViT)
	dino.Classes = 0
	return []familyCase{
		vitCase("tiny-vit", zoo.FamilyViT, tinyViT(zoo.FlavorViT),
			map[optimize.Pattern]int{optimize.Attention: 2, optimize.SkipLayerNorm: 5, optimize.BiasGelu: 2, optimize.PruneTokens: 8}),
		vitCase("tiny-deit-distilled", zoo.FamilyDeiT, tinyViT(zoo.FlavorDeiTDistilled),
			map[optimize.Pattern]int{optimize.Attention: 2, optimize.SkipLayerNorm: 5, optimize.BiasGelu: 2, optimize.PruneTokens: 8}),
		vitCase("tiny-dino", zoo.FamilyDINO, dino,
			map[optimize.Pattern]int{optimize.Attention: 2, optimize.SkipLayerNorm: 5, optimize.BiasGelu: 2, optimize.PruneTokens: 8}),
		vitCase("tiny-dinov2", zoo.FamilyDINOv2, tinyViT(zoo.FlavorDINOv2),
			map[optimize.Pattern]int{optimize.Attention: 2, optimize.LinearScale: 4, optimize.SkipLayerNorm: 5, optimize.BiasGelu: 2, optimize.PruneTokens: 8}),
		vitCase("tiny-beit", zoo.FamilyBEiT, tinyViT(zoo.FlavorBEiT),
			map[optimize.Pattern]int{optimize.Attention: 2, optimize.LinearScale: 4, optimize.SkipLayerNorm: 3, optimize.BiasGelu: 2}),
		vitCase("tiny-clip", zoo.FamilyCLIP, tinyViT(zoo.FlavorCLIP),
			map[optimize.Pattern]int{optimize.Attention: 2, optimize.SkipLayerNorm: 4, optimize.QuickGelu: 2, optimize.PruneTokens: 10}),
		{
			name: "tiny-mobilevit",
			spec: zoo.Spec{Name: "tiny-mobilevit", Family: zoo.FamilyMobileViT, Resolution: 64, Preprocess: zoo.UnitNorm,
				Arch: zoo.MobileViTConfig{Stem: 8, Channels: [5]int{8, 8, 16, 16, 16}, Dims: [3]int{16, 16, 16}, Depths: [3]int{1, 1, 1},
					Expansion: 2, Heads: 4, Patch: 2, MLPRatio: 2, ExpChannels: 32, Classes: 10}},
			// Per MobileViT block: the second LayerNorm of its transformer
			// block and the norm after it; SiLU after the MLP's first layer.
			want: map[optimize.Pattern]int{optimize.Attention: 3, optimize.SkipLayerNorm: 6, optimize.QuickGelu: 3},
			gone: []string{"Softmax"},
		},
		{
			name: "tiny-resnet",
			spec: zoo.Spec{Name: "tiny-resnet", Family: zoo.FamilyCNN, Resolution: 32, Preprocess: zoo.ImageNetNorm,
				Arch: zoo.ResNetConfig{Layers: [4]int{1, 1, 1, 1}, Classes: 10}},
		},
		{
			name: "tiny-mobilenet-v2",
			spec: zoo.Spec{Name: "tiny-mobilenet-v2", Family: zoo.FamilyCNN, Resolution: 32, Preprocess: zoo.ImageNetNorm,
				Arch: zoo.MobileNetV2Config{Width: 0.25, Classes: 10}},
		},
	}
}

// buildTiny builds a family case with perturbed weights.
func buildTiny(t testing.TB, fc familyCase, opts ...zoo.Option) *onnx.Model {
	t.Helper()
	m, err := zoo.Build(context.Background(), fc.spec, opts...)
	if err != nil {
		t.Fatal(err)
	}
	perturb(t, m, 5)
	return m
}

// Every zoo family: the expected fusions, nothing of the unfused patterns
// left, a graph that passes the checker, outputs equal to the unfused
// graph's on ONNX Runtime (cosine ≥ 0.99999), and CNNs left exactly as
// they were.
func TestZooFamilies(t *testing.T) {
	for _, fc := range familyCases() {
		t.Run(fc.name, func(t *testing.T) {
			m := buildTiny(t, fc)
			fused, r := apply(t, m, optimize.Default())
			t.Logf("%s: %s (%d → %d nodes)", fc.name, r, r.NodesBefore, r.NodesAfter)
			if err := onnx.Check(fused); err != nil {
				t.Fatalf("check: %v", err)
			}
			for _, p := range optimize.Patterns {
				if p == optimize.FoldConstants || p == optimize.FoldReshapes {
					continue
				}
				if got := r.Count(p); got != fc.want[p] {
					t.Errorf("%s matched %d times, want %d (misses: %v)", p, got, fc.want[p], r.Misses)
				}
			}
			got := ops(fused)
			for _, op := range fc.gone {
				if got[op] != 0 {
					t.Errorf("%d %s nodes left", got[op], op)
				}
			}
			if fc.want == nil {
				if r.Changed() || !proto.Equal(m.Proto, fused.Proto) {
					t.Fatalf("a CNN was changed: %s", r)
				}
				return
			}
			if fused.Opset(onnx.MicrosoftDomain) != 1 {
				t.Errorf("com.microsoft imported at %d, want 1", fused.Opset(onnx.MicrosoftDomain))
			}
			equivalent(t, m, fused, randomInput([]int64{2, 3, int64(fc.spec.Resolution), int64(fc.spec.Resolution)}, 1), 0.99999)
		})
	}
}

// The other attention operators and the newer opsets (the Gelu operator
// from 20, IR version 11 at 23) give the same results.
func TestAttentionOpsAndOpsets(t *testing.T) {
	base := familyCases()[0]
	beit := familyCases()[4]
	for _, tc := range []struct {
		name  string
		fc    familyCase
		op    optimize.AttentionOp
		opset int64
	}{
		{"mha-split", base, optimize.AttentionMHAPacked, 17},
		{"attention", base, optimize.AttentionPacked, 17},
		{"beit-attention", beit, optimize.AttentionPacked, 17},
		{"beit-mha-split", beit, optimize.AttentionMHAPacked, 17},
		{"opset18", beit, optimize.AttentionMHA, 18},
		{"opset20-gelu", base, optimize.AttentionMHA, 20},
		{"opset23", base, optimize.AttentionMHA, 23},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := buildTiny(t, tc.fc, zoo.WithOpset(tc.opset))
			fused, r := apply(t, m, optimize.Options{AttentionOp: tc.op})
			t.Logf("%s", r)
			if r.Count(optimize.Attention) != 2 || r.Count(optimize.BiasGelu) != 2 {
				t.Fatalf("got %s, want attention=2 bias-gelu=2 (misses %v)", r, r.Misses)
			}
			key := "com.microsoft.MultiHeadAttention"
			if tc.op == optimize.AttentionPacked {
				key = "com.microsoft.Attention"
			}
			if ops(fused)[key] != 2 {
				t.Fatalf("ops %v, want 2 %s", ops(fused), key)
			}
			equivalent(t, m, fused, randomInput([]int64{2, 3, 32, 32}, 2), 0.99999)
		})
	}
}

// Optimizing an optimized model changes nothing.
func TestIdempotent(t *testing.T) {
	for _, fc := range familyCases() {
		t.Run(fc.name, func(t *testing.T) {
			once, _ := apply(t, buildTiny(t, fc), optimize.Default())
			twice, r := apply(t, once, optimize.Default())
			if r.Changed() {
				t.Errorf("second run matched: %s", r)
			}
			if !proto.Equal(once.Proto, twice.Proto) {
				t.Error("second run changed the model")
			}
		})
	}
}

// The model's symbolic batch survives: the fused model runs at batch 1
// and 3 and agrees with itself.
func TestBatchSizes(t *testing.T) {
	requireORT(t)
	fc := familyCases()[4] // BEiT: attention bias broadcast over the batch
	m := buildTiny(t, fc)
	fused, _ := apply(t, m, optimize.Default())
	for _, b := range []int64{1, 3} {
		in := randomInput([]int64{b, 3, 32, 32}, uint64(b))
		equivalent(t, m, fused, in, 0.99999)
	}
}

// Disabled patterns are left alone.
func TestDisable(t *testing.T) {
	m := buildTiny(t, familyCases()[0])
	_, r := apply(t, m, optimize.Options{Disable: []optimize.Pattern{optimize.Attention, optimize.SkipLayerNorm}})
	if r.Count(optimize.Attention) != 0 || r.Count(optimize.SkipLayerNorm) != 0 || r.Count(optimize.BiasGelu) != 2 {
		t.Fatalf("got %s", r)
	}
}
