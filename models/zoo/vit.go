package zoo

import (
	"fmt"
	"math"

	"github.com/quantscope/quantscope/models/onnx"
)

// ViTFlavor selects the variant of the Vision Transformer a ViTConfig
// builds. Each follows its reference implementation (timm, or OpenAI's for
// CLIP) in parameters and in graph.
type ViTFlavor int

const (
	// FlavorViT is the original ViT (also DeiT without distillation and
	// DINO): patch embedding Conv with bias, class token, learned absolute
	// position embedding, pre-norm blocks with exact GELU, final
	// LayerNorm, class token to the head (or out as the embedding).
	FlavorViT ViTFlavor = iota
	// FlavorDeiTDistilled adds DeiT's distillation token and its second
	// head; the output is the mean of both heads, as at inference.
	FlavorDeiTDistilled
	// FlavorDINOv2 is ViT with LayerScale on both branches of every block
	// and a mask token (a parameter the inference graph does not use).
	FlavorDINOv2
	// FlavorBEiT has no absolute position embedding but a relative
	// position bias table in every block, LayerScale, q and v biases only
	// (k has none), and mean pooling of the patch tokens followed by a
	// LayerNorm (fc_norm) before the head.
	FlavorBEiT
	// FlavorCLIP is CLIP's image encoder: patch Conv without bias, class
	// embedding, position embedding, ln_pre, QuickGELU blocks, ln_post on
	// the class token and a linear projection without bias.
	FlavorCLIP
)

// String names the flavor.
func (f ViTFlavor) String() string {
	switch f {
	case FlavorViT:
		return "vit"
	case FlavorDeiTDistilled:
		return "deit-distilled"
	case FlavorDINOv2:
		return "dinov2"
	case FlavorBEiT:
		return "beit"
	case FlavorCLIP:
		return "clip"
	}
	return fmt.Sprintf("ViTFlavor(%d)", int(f))
}

// ViTConfig is a Vision Transformer architecture.
type ViTConfig struct {
	// Flavor is the variant.
	Flavor ViTFlavor
	// Dim is the embedding width D, Depth the number of blocks, Heads the
	// attention heads (Dim must divide by it), MLPDim the hidden width of
	// the MLP, Patch the patch size in pixels.
	Dim, Depth, Heads, MLPDim, Patch int
	// Classes is the number of classes of the head; 0 builds a backbone
	// whose output is the embedding. FlavorDeiTDistilled and FlavorBEiT
	// need a head; FlavorCLIP has none (see Proj).
	Classes int
	// Proj is the output width of CLIP's projection (FlavorCLIP only).
	Proj int
	// LayerScale is the initial value of the LayerScale factors
	// (FlavorDINOv2, FlavorBEiT).
	LayerScale float32
	// Eps is the LayerNorm epsilon; 0 means 1e-6 (1e-5 for CLIP).
	Eps float32
}

// family implements Arch.
func (c ViTConfig) family() string { return c.Flavor.String() }

func (c ViTConfig) eps() float32 {
	if c.Eps != 0 {
		return c.Eps
	}
	if c.Flavor == FlavorCLIP {
		return 1e-5
	}
	return 1e-6
}

// validate checks the configuration for an input of res pixels.
func (c ViTConfig) validate(res int) error {
	switch {
	case c.Flavor < FlavorViT || c.Flavor > FlavorCLIP:
		return fmt.Errorf("unknown ViT flavor %d", int(c.Flavor))
	case c.Dim <= 0 || c.Depth <= 0 || c.Heads <= 0 || c.MLPDim <= 0 || c.Patch <= 0:
		return fmt.Errorf("dim, depth, heads, MLP width and patch must be positive (got %d, %d, %d, %d, %d)", c.Dim, c.Depth, c.Heads, c.MLPDim, c.Patch)
	case c.Dim%c.Heads != 0:
		return fmt.Errorf("dim %d does not divide into %d heads", c.Dim, c.Heads)
	case res < c.Patch || res%c.Patch != 0:
		return fmt.Errorf("resolution %d px is not a multiple of the patch size %d", res, c.Patch)
	case c.Classes < 0:
		return fmt.Errorf("negative class count %d", c.Classes)
	case (c.Flavor == FlavorDeiTDistilled || c.Flavor == FlavorBEiT) && c.Classes == 0:
		return fmt.Errorf("%s needs a classifier head (Classes > 0)", c.Flavor)
	case c.Flavor == FlavorCLIP && (c.Proj <= 0 || c.Classes != 0):
		return fmt.Errorf("clip needs a projection width (Proj > 0) and no classes")
	case c.Flavor != FlavorCLIP && c.Proj != 0:
		return fmt.Errorf("only clip has a projection")
	}
	return nil
}

// output implements Arch.
func (c ViTConfig) output() (OutputKind, int) {
	switch {
	case c.Flavor == FlavorCLIP:
		return Embeddings, c.Proj
	case c.Classes == 0:
		return Embeddings, c.Dim
	}
	return Logits, c.Classes
}

func (c ViTConfig) width() int { return c.Dim }

// build implements Arch.
func (c ViTConfig) build(n *net, res int, x string) string {
	D, P := int64(c.Dim), int64(c.Patch)
	grid := int64(res) / P
	patches := grid * grid
	eps := c.eps()
	fl := c.Flavor

	// Patch embedding: Conv k=s=patch, flatten, [B, N, D].
	n.push("patch_embed")
	h, _, _ := n.conv(x, "patch_embed.proj", convShape{cin: 3, cout: D, k: P, stride: P}, 0, fl != FlavorCLIP, weightStd, int64(res), int64(res))
	h = n.node("Reshape", []string{h, n.ints(0, D, -1)})
	h = n.node("Transpose", []string{h}, onnx.AttrInts("perm", 0, 2, 1))
	n.pop()

	// Tokens prepended: class (and distillation) token, expanded to the batch.
	batch := n.node("Shape", []string{x}, onnx.AttrInt("start", 0), onnx.AttrInt("end", 1))
	tokShape := n.node("Concat", []string{batch, n.ints(1, D)}, onnx.AttrInt("axis", 0))
	cls := n.param("cls_token", []int64{1, 1, D}, normal(weightStd))
	parts := []string{n.node("Expand", []string{cls, tokShape})}
	if fl == FlavorDeiTDistilled {
		dist := n.param("dist_token", []int64{1, 1, D}, normal(weightStd))
		parts = append(parts, n.node("Expand", []string{dist, tokShape}))
	}
	if fl == FlavorDINOv2 {
		n.hiddenParam(1, D) // mask_token: only used for masked pre-training
	}
	prefix := int64(len(parts))
	tokens := patches + prefix
	h = n.node("Concat", append(parts, h), onnx.AttrInt("axis", 1))
	if fl != FlavorBEiT {
		pos := n.param("pos_embed", []int64{1, tokens, D}, normal(weightStd))
		h = n.node("Add", []string{h, pos})
	}
	if fl == FlavorCLIP {
		h = n.layerNorm(h, "norm_pre", D, eps)
	}

	var relIndex string
	if fl == FlavorBEiT {
		idx := relativePositionIndex(int(grid), int(grid))
		relIndex = n.b.AddInitializerInt64("relative_position_index", []int64{int64(len(idx))}, idx)
	}
	spec := blockSpec{
		dim: D, heads: int64(c.Heads), mlp: int64(c.MLPDim), seqs: 1, tokens: tokens, eps: eps,
		act: (*net).gelu,
	}
	switch fl {
	case FlavorCLIP:
		spec.act = (*net).quickGelu
	case FlavorDINOv2:
		spec.layerScale, spec.lsNames = c.LayerScale, [2]string{".ls1.gamma", ".ls2.gamma"}
	case FlavorBEiT:
		spec.layerScale, spec.lsNames = c.LayerScale, [2]string{".gamma_1", ".gamma_2"}
		spec.qvBias = true
	}
	for i := range c.Depth {
		name := blockName("blocks", i)
		if fl == FlavorBEiT {
			n.push(name)
			spec.relBias = n.relativeBias(name+".attn.relative_position_bias_table", relIndex, int(grid), int(grid), int64(c.Heads), tokens)
			n.pop()
		}
		h = n.block(h, name, spec)
	}

	kind, _ := c.output()
	outName := kind.outputName()
	switch fl {
	case FlavorBEiT:
		// Mean of the patch tokens, fc_norm, head.
		pt := n.node("Slice", []string{h, n.ints(prefix), n.ints(math.MaxInt64), n.ints(1)})
		pooled := n.reduceMean(pt, 1)
		pooled = n.layerNorm(pooled, "fc_norm", D, eps)
		return n.gemm(pooled, "head", D, int64(c.Classes), outName)
	case FlavorCLIP:
		t := n.node("Gather", []string{h, n.scalarInt(0)}, onnx.AttrInt("axis", 1))
		t = n.layerNorm(t, "norm", D, eps)
		w := n.param("proj", []int64{D, int64(c.Proj)}, normal(weightStd))
		n.macs += D * int64(c.Proj)
		return n.nodeTo(outName, "MatMul", []string{t, w})
	}
	h = n.layerNorm(h, "norm", D, eps)
	if c.Classes == 0 {
		return n.nodeTo(outName, "Gather", []string{h, n.scalarInt(0)}, onnx.AttrInt("axis", 1))
	}
	t := n.node("Gather", []string{h, n.scalarInt(0)}, onnx.AttrInt("axis", 1))
	if fl == FlavorDeiTDistilled {
		d := n.node("Gather", []string{h, n.scalarInt(1)}, onnx.AttrInt("axis", 1))
		a := n.gemm(t, "head", D, int64(c.Classes), "")
		b := n.gemm(d, "head_dist", D, int64(c.Classes), "")
		s := n.node("Add", []string{a, b})
		return n.nodeTo(outName, "Div", []string{s, n.scalar(2)})
	}
	return n.gemm(t, "head", D, int64(c.Classes), outName)
}

// reduceMean averages over axis without keeping it: ReduceMean with the
// axes attribute before opset 18 and the axes input from 18 on.
func (n *net) reduceMean(x string, axis int64) string {
	if n.opset >= 18 {
		return n.node("ReduceMean", []string{x, n.ints(axis)}, onnx.AttrInt("keepdims", 0))
	}
	return n.node("ReduceMean", []string{x}, onnx.AttrInts("axes", axis), onnx.AttrInt("keepdims", 0))
}

// relativeBias emits BEiT's relative position bias of one block:
// table[index] reshaped to [N, N, heads] and permuted to [heads, N, N].
func (n *net) relativeBias(name, index string, wh, ww int, heads, tokens int64) string {
	entries := int64((2*wh-1)*(2*ww-1) + 3)
	table := n.param(name, []int64{entries, heads}, normal(weightStd))
	g := n.node("Gather", []string{table, index}, onnx.AttrInt("axis", 0))
	g = n.node("Reshape", []string{g, n.ints(tokens, tokens, heads)})
	return n.node("Transpose", []string{g}, onnx.AttrInts("perm", 2, 0, 1))
}

// relativePositionIndex is BEiT's relative_position_index for a wh×ww
// patch grid plus the class token, flattened: entry (i, j) indexes the
// bias table for query token i and key token j. The last three table rows
// are class-to-token, token-to-class and class-to-class.
func relativePositionIndex(wh, ww int) []int64 {
	n := wh * ww
	numRel := int64((2*wh-1)*(2*ww-1) + 3)
	idx := make([]int64, (n+1)*(n+1))
	for i := range n {
		yi, xi := i/ww, i%ww
		for j := range n {
			yj, xj := j/ww, j%ww
			dy := int64(yi - yj + wh - 1)
			dx := int64(xi - xj + ww - 1)
			idx[(i+1)*(n+1)+j+1] = dy*int64(2*ww-1) + dx
		}
	}
	for j := 0; j <= n; j++ {
		idx[j] = numRel - 3 // class token to every token
	}
	for i := 0; i <= n; i++ {
		idx[i*(n+1)] = numRel - 2 // every token to the class token
	}
	idx[0] = numRel - 1
	return idx
}
