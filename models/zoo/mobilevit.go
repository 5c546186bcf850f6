package zoo

import (
	"fmt"
	"math"
	"strconv"

	"github.com/quantscope/quantscope/models/onnx"
)

// MobileViTConfig is MobileViT (v1, Mehta & Rastegari 2022): a
// MobileNetV2 trunk whose last three stages each end in a MobileViT block
// (local 3×3 convolution, 1×1 projection to the transformer width,
// transformer blocks over unfolded patches, fold, 1×1 projection back,
// fusion 3×3 convolution with the block's input). SiLU everywhere,
// BatchNorm folded into the convolutions.
type MobileViTConfig struct {
	// Stem is the stem convolution's width (16 in every reference model).
	Stem int
	// Channels are the output widths of the five stages.
	Channels [5]int
	// Dims are the transformer widths and Depths the transformer blocks of
	// the MobileViT blocks of stages 3, 4 and 5.
	Dims, Depths [3]int
	// Expansion is the MobileNetV2 blocks' expansion ratio.
	Expansion float64
	// Heads is the number of attention heads (4), MLPRatio the transformer
	// MLP width over its input width (2), Patch the patch size (2).
	Heads, Patch int
	MLPRatio     float64 // transformer MLP width / transformer width
	// ExpChannels is the width of the final 1×1 convolution.
	ExpChannels int
	// Classes is the number of classes of the head (must be > 0).
	Classes int
}

func (c MobileViTConfig) family() string { return "mobilevit" }

func (c MobileViTConfig) validate(res int) error {
	if c.Stem <= 0 || c.ExpChannels <= 0 || c.Heads <= 0 || c.Patch <= 0 || c.Expansion <= 0 || c.MLPRatio <= 0 {
		return fmt.Errorf("mobilevit: stem, final width, heads, patch, expansion and MLP ratio must be positive")
	}
	for i, ch := range c.Channels {
		if ch <= 0 {
			return fmt.Errorf("mobilevit: stage %d has width %d", i+1, ch)
		}
	}
	for i, d := range c.Dims {
		if d <= 0 || c.Depths[i] <= 0 || d%c.Heads != 0 {
			return fmt.Errorf("mobilevit: transformer %d (width %d, depth %d) does not split into %d heads", i+1, d, c.Depths[i], c.Heads)
		}
	}
	if c.Classes <= 0 {
		return fmt.Errorf("mobilevit needs a classifier head (Classes > 0)")
	}
	if q := 32 * c.Patch; res < q || res%q != 0 {
		return fmt.Errorf("resolution %d px is not a multiple of %d (32 × patch size)", res, q)
	}
	return nil
}

func (c MobileViTConfig) output() (OutputKind, int) { return Logits, c.Classes }
func (c MobileViTConfig) width() int                { return c.ExpChannels }

func (c MobileViTConfig) build(n *net, res int, x string) string {
	h, w := int64(res), int64(res)
	y, h, w := n.convBN(x, "stem.conv", convShape{cin: 3, cout: int64(c.Stem), k: 3, stride: 2}, actSiLU, 1, h, w)
	inC := int64(c.Stem)
	// Stages 1 and 2: MobileNetV2 blocks only (1 and 3 of them).
	for s, blocks := range []int{1, 3} {
		outC := int64(c.Channels[s])
		for b := range blocks {
			stride := int64(1)
			if b == 0 && s == 1 {
				stride = 2
			}
			y, h, w = n.mv2(y, "stages."+strconv.Itoa(s)+"."+strconv.Itoa(b), inC, outC, stride, c.Expansion, h, w)
			inC = outC
		}
	}
	// Stages 3 to 5: a strided MobileNetV2 block, then a MobileViT block.
	for t := range 3 {
		s := t + 2
		outC := int64(c.Channels[s])
		name := "stages." + strconv.Itoa(s)
		y, h, w = n.mv2(y, name+".0", inC, outC, 2, c.Expansion, h, w)
		inC = outC
		y = n.mobileViTBlock(y, name+".1", c, t, outC, h, w)
	}
	y, _, _ = n.convBN(y, "final_conv", convShape{cin: inC, cout: int64(c.ExpChannels), k: 1, stride: 1}, actSiLU, 1, h, w)
	return n.classifier(y, "head.fc", int64(c.ExpChannels), int64(c.Classes))
}

// mv2 is a MobileNetV2 block with SiLU, with the residual Add when the
// shape allows it.
func (n *net) mv2(x, name string, in, out, stride int64, expand float64, h, w int64) (string, int64, int64) {
	n.push(name)
	defer n.pop()
	residual := stride == 1 && in == out
	gamma := 1.0
	if residual {
		gamma = residualGamma
	}
	hidden := makeDivisible(float64(in)*expand, 8)
	y, _, _ := n.convBN(x, name+".conv1_1x1", convShape{cin: in, cout: hidden, k: 1, stride: 1}, actSiLU, 1, h, w)
	y, h, w = n.convBN(y, name+".conv2_kxk", convShape{cin: hidden, cout: hidden, k: 3, stride: stride, groups: hidden}, actSiLU, 1, h, w)
	y, h, w = n.convBN(y, name+".conv3_1x1", convShape{cin: hidden, cout: out, k: 1, stride: 1}, actNone, gamma, h, w)
	if residual {
		y = n.node("Add", []string{x, y})
	}
	return y, h, w
}

// mobileViTBlock is the MobileViT block of transformer t on x, a
// [B, C, h, w] map: conv 3×3, conv 1×1 to the transformer width d, unfold
// into [B·P, N, d] (P pixels per patch, N patches), transformer blocks,
// LayerNorm, fold, conv 1×1 back to C, concatenation with x, fusion conv
// 3×3.
func (n *net) mobileViTBlock(x, name string, c MobileViTConfig, t int, C, h, w int64) string {
	n.push(name)
	defer n.pop()
	d := int64(c.Dims[t])
	ph := int64(c.Patch)
	nh, nw := h/ph, w/ph
	N, P := nh*nw, ph*ph

	y, _, _ := n.convBN(x, name+".conv_kxk", convShape{cin: C, cout: C, k: 3, stride: 1}, actSiLU, 1, h, w)
	y, _, _ = n.conv(y, name+".conv_1x1", convShape{cin: C, cout: d, k: 1, stride: 1}, 0, false, 1/math.Sqrt(float64(C)), h, w)

	// Unfold: [B, C, H, W] → [B·C·nh, ph, nw, pw] → [B·C·nh, nw, ph, pw]
	// → [B, C, N, P] → [B, P, N, C] → [B·P, N, C].
	y = n.node("Reshape", []string{y, n.ints(-1, ph, nw, ph)})
	y = n.node("Transpose", []string{y}, onnx.AttrInts("perm", 0, 2, 1, 3))
	y = n.node("Reshape", []string{y, n.ints(-1, d, N, P)})
	y = n.node("Transpose", []string{y}, onnx.AttrInts("perm", 0, 3, 2, 1))
	y = n.node("Reshape", []string{y, n.ints(-1, N, d)})

	spec := blockSpec{
		dim: d, heads: int64(c.Heads), mlp: int64(float64(d)*c.MLPRatio + 0.5), seqs: P, tokens: N, eps: 1e-5,
		act: (*net).silu,
	}
	for i := range c.Depths[t] {
		y = n.block(y, blockName(name+".transformer", i), spec)
	}
	y = n.layerNorm(y, name+".norm", d, 1e-5)

	// Fold: the inverse.
	y = n.node("Reshape", []string{y, n.ints(-1, P, N, d)})
	y = n.node("Transpose", []string{y}, onnx.AttrInts("perm", 0, 3, 2, 1))
	y = n.node("Reshape", []string{y, n.ints(-1, nw, ph, ph)})
	y = n.node("Transpose", []string{y}, onnx.AttrInts("perm", 0, 2, 1, 3))
	y = n.node("Reshape", []string{y, n.ints(-1, d, h, w)})

	y, _, _ = n.convBN(y, name+".conv_proj", convShape{cin: d, cout: C, k: 1, stride: 1}, actSiLU, 1, h, w)
	y = n.node("Concat", []string{x, y}, onnx.AttrInt("axis", 1))
	y, _, _ = n.convBN(y, name+".conv_fusion", convShape{cin: 2 * C, cout: C, k: 3, stride: 1}, actSiLU, 1, h, w)
	return y
}
