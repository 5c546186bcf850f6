package zoo

import (
	"math"
	"strconv"

	"github.com/quantscope/quantscope/models/onnx"
)

// blockSpec is one pre-norm transformer block: x + attn(norm1(x)), then
// x + mlp(norm2(x)), with optional LayerScale on both branches.
type blockSpec struct {
	dim, heads, mlp int64
	seqs, tokens    int64 // sequences per image and tokens per sequence (MACs)
	eps             float32
	act             func(n *net, x string) string
	qvBias          bool    // BEiT: q and v biases, no k bias
	relBias         string  // BEiT: [heads, tokens, tokens] bias added to the scores
	layerScale      float32 // 0: none
	lsNames         [2]string
}

// block emits a transformer block named prefix ("blocks.3") on x, a
// [seqs·batch, tokens, dim] tensor.
func (n *net) block(x, prefix string, s blockSpec) string {
	n.push(prefix)
	defer n.pop()

	h := n.layerNorm(x, prefix+".norm1", s.dim, s.eps)
	h = n.attention(h, prefix+".attn", s)
	if s.layerScale != 0 {
		g := n.param(prefix+s.lsNames[0], []int64{s.dim}, constant(s.layerScale))
		h = n.node("Mul", []string{h, g})
	}
	x = n.node("Add", []string{x, h})

	h = n.layerNorm(x, prefix+".norm2", s.dim, s.eps)
	n.push("mlp")
	h = n.linear(h, prefix+".mlp.fc1", s.dim, s.mlp, s.seqs*s.tokens, true)
	h = s.act(n, h)
	h = n.linear(h, prefix+".mlp.fc2", s.mlp, s.dim, s.seqs*s.tokens, true)
	n.pop()
	if s.layerScale != 0 {
		g := n.param(prefix+s.lsNames[1], []int64{s.dim}, constant(s.layerScale))
		h = n.node("Mul", []string{h, g})
	}
	return n.node("Add", []string{x, h})
}

// attention emits multi-head self-attention as timm writes it and
// torch.onnx.export exports it: one qkv projection, reshape to
// [B, N, 3, heads, head_dim], permute to [3, B, heads, N, head_dim], take q,
// k and v, scale q by 1/√head_dim, softmax(q·kᵀ [+ bias])·v, merge the
// heads, project.
func (n *net) attention(x, name string, s blockSpec) string {
	n.push("attn")
	defer n.pop()
	hd := s.dim / s.heads
	tok := s.seqs * s.tokens

	w := n.param(name+".qkv.weight", []int64{s.dim, 3 * s.dim}, normal(weightStd))
	n.macs += tok * s.dim * 3 * s.dim
	qkv := n.node("MatMul", []string{x, w})
	if s.qvBias {
		q := n.param(name+".q_bias", []int64{s.dim}, zeros)
		k := n.b.AddConstantFloat32(n.b.Unique(n.prefix()+"k_bias"), []int64{s.dim}, make([]float32, s.dim))
		v := n.param(name+".v_bias", []int64{s.dim}, zeros)
		bias := n.node("Concat", []string{q, k, v}, onnx.AttrInt("axis", 0))
		qkv = n.node("Add", []string{qkv, bias})
	} else {
		b := n.param(name+".qkv.bias", []int64{3 * s.dim}, zeros)
		qkv = n.node("Add", []string{qkv, b})
	}
	qkv = n.node("Reshape", []string{qkv, n.ints(0, 0, 3, s.heads, hd)})
	qkv = n.node("Transpose", []string{qkv}, onnx.AttrInts("perm", 2, 0, 3, 1, 4))
	q := n.node("Gather", []string{qkv, n.scalarInt(0)}, onnx.AttrInt("axis", 0))
	k := n.node("Gather", []string{qkv, n.scalarInt(1)}, onnx.AttrInt("axis", 0))
	v := n.node("Gather", []string{qkv, n.scalarInt(2)}, onnx.AttrInt("axis", 0))
	q = n.node("Mul", []string{q, n.scalar(float32(1 / math.Sqrt(float64(hd))))})
	kt := n.node("Transpose", []string{k}, onnx.AttrInts("perm", 0, 1, 3, 2))
	attn := n.node("MatMul", []string{q, kt})
	if s.relBias != "" {
		attn = n.node("Add", []string{attn, s.relBias})
	}
	attn = n.node("Softmax", []string{attn}, onnx.AttrInt("axis", -1))
	o := n.node("MatMul", []string{attn, v})
	n.macs += 2 * s.seqs * s.tokens * s.tokens * s.dim
	o = n.node("Transpose", []string{o}, onnx.AttrInts("perm", 0, 2, 1, 3))
	o = n.node("Reshape", []string{o, n.ints(0, 0, s.dim)})
	return n.linear(o, name+".proj", s.dim, s.dim, tok, true)
}

// blockName is "blocks.i".
func blockName(prefix string, i int) string { return prefix + "." + strconv.Itoa(i) }
