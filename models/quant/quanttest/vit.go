// Package quanttest builds small ViT-like ONNX models for the tests and
// benchmarks of the quantization transforms: the same operator patterns as
// a torch.onnx.export of a timm ViT (Conv patch embedding, class token
// concatenated through Shape/Gather/Expand, LayerNormalization, MatMul+Add
// linear layers, Reshape/Transpose/Gather attention with activation ×
// activation MatMuls and Softmax, Erf GELU, a Gemm head), at a size that
// runs in milliseconds.
package quanttest

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/quantscope/quantscope/models/onnx"
)

// ViTConfig sizes a ViT-like model.
type ViTConfig struct {
	Image    int // input height and width
	Patch    int // patch size (the Conv's kernel and stride)
	Dim      int // embedding width
	Heads    int
	Depth    int // transformer blocks
	MLP      int // hidden width of each block's MLP
	Classes  int
	Seed     uint64
	Batch    int  // fixed batch size; 0 makes it symbolic ("batch")
	MatMulIn bool // patch embedding as Reshape/Transpose/MatMul instead of Conv
}

// Tiny is a configuration that builds in well under a millisecond and runs
// in about one: 32×32 images, 8×8 patches (16 tokens plus the class
// token), width 32, 2 heads, 2 blocks.
var Tiny = ViTConfig{Image: 32, Patch: 8, Dim: 32, Heads: 2, Depth: 2, MLP: 64, Classes: 10, Seed: 1}

// Small is closer to a real ViT's proportions (width 64, 4 blocks, 64
// tokens), for fidelity tests.
var Small = ViTConfig{Image: 64, Patch: 8, Dim: 64, Heads: 4, Depth: 4, MLP: 256, Classes: 100, Seed: 2}

// DeiTTiny has DeiT-Ti/16's shapes (224 px, width 192, 12 blocks of 3
// heads, 1000 classes: 5.7 M parameters), for benchmarks.
var DeiTTiny = ViTConfig{Image: 224, Patch: 16, Dim: 192, Heads: 3, Depth: 12, MLP: 768, Classes: 1000, Seed: 3}

// ViTBase has ViT-B/16's shapes (86.6 M parameters), for benchmarks.
var ViTBase = ViTConfig{Image: 224, Patch: 16, Dim: 768, Heads: 12, Depth: 12, MLP: 3072, Classes: 1000, Seed: 4}

// Names of the model's input and output.
const (
	InputName  = "pixel_values"
	OutputName = "logits"
)

// ViT builds the model. Weights are seeded normal values scaled like a
// trained network's (unit-variance activations), with a few outlier input
// channels in the MLP weights as real ViTs have.
func ViT(cfg ViTConfig) (*onnx.Model, error) {
	if cfg.Image <= 0 || cfg.Patch <= 0 || cfg.Image%cfg.Patch != 0 || cfg.Dim <= 0 ||
		cfg.Heads <= 0 || cfg.Dim%cfg.Heads != 0 || cfg.Depth < 0 || cfg.MLP <= 0 || cfg.Classes <= 0 {
		return nil, fmt.Errorf("quanttest: bad ViT config %+v", cfg)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	normal := func(n int, std float64) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(rng.NormFloat64() * std)
		}
		return out
	}
	d, grid := cfg.Dim, cfg.Image/cfg.Patch
	tokens := grid*grid + 1
	dh := d / cfg.Heads
	b := onnx.NewBuilder("vit", 17)
	b.SetMetadata("quanttest.config", fmt.Sprintf("%+v", cfg))
	var batch any = "batch"
	if cfg.Batch > 0 {
		batch = cfg.Batch
	}
	x := b.AddInput(InputName, onnx.Float, onnx.Dims(batch, 3, cfg.Image, cfg.Image))

	// Patch embedding: [B,3,H,W] → [B,D,g,g] → [B,D,g²] → [B,g²,D].
	k := 3 * cfg.Patch * cfg.Patch
	var tok string
	if !cfg.MatMulIn {
		w := b.AddInitializerFloat32("patch_embed.proj.weight", []int64{int64(d), 3, int64(cfg.Patch), int64(cfg.Patch)}, normal(d*k, 1/math.Sqrt(float64(k))))
		bias := b.AddInitializerFloat32("patch_embed.proj.bias", []int64{int64(d)}, normal(d, 0.02))
		conv := b.AddNode("Conv", []string{x, w, bias}, nil,
			onnx.AttrInts("kernel_shape", int64(cfg.Patch), int64(cfg.Patch)),
			onnx.AttrInts("strides", int64(cfg.Patch), int64(cfg.Patch)),
			onnx.AttrInts("pads", 0, 0, 0, 0),
			onnx.AttrInts("dilations", 1, 1), onnx.AttrInt("group", 1)).Named("patch_embed.proj").Out()
		shape := b.AddConstantInt64(b.Unique("flatten_shape"), []int64{3}, []int64{0, int64(d), -1})
		flat := b.AddNode("Reshape", []string{conv, shape}, nil).Out()
		tok = b.AddNode("Transpose", []string{flat}, nil, onnx.AttrInts("perm", 0, 2, 1)).Out()
	} else {
		s1 := b.AddConstantInt64(b.Unique("patch_shape"), []int64{6}, []int64{-1, 3, int64(grid), int64(cfg.Patch), int64(grid), int64(cfg.Patch)})
		r1 := b.AddNode("Reshape", []string{x, s1}, nil).Out()
		t1 := b.AddNode("Transpose", []string{r1}, nil, onnx.AttrInts("perm", 0, 2, 4, 1, 3, 5)).Out()
		s2 := b.AddConstantInt64(b.Unique("patch_flat"), []int64{3}, []int64{-1, int64(grid * grid), int64(k)})
		r2 := b.AddNode("Reshape", []string{t1, s2}, nil).Out()
		tok = linear(b, r2, "patch_embed", k, d, normal).Out()
	}

	// Class token through Shape → Gather → Unsqueeze → Concat → Expand, as
	// torch exports torch.cat((cls.expand(B, -1, -1), x), dim=1).
	cls := b.AddInitializerFloat32("cls_token", []int64{1, 1, int64(d)}, normal(d, 0.02))
	shp := b.AddNode("Shape", []string{tok}, nil).Out()
	zero := b.AddConstantInt64(b.Unique("idx0"), nil, []int64{0})
	bdim := b.AddNode("Gather", []string{shp, zero}, nil, onnx.AttrInt("axis", 0)).Out()
	axes := b.AddConstantInt64(b.Unique("axes0"), []int64{1}, []int64{0})
	bvec := b.AddNode("Unsqueeze", []string{bdim, axes}, nil).Out()
	rest := b.AddConstantInt64(b.Unique("cls_rest"), []int64{2}, []int64{1, int64(d)})
	eshape := b.AddNode("Concat", []string{bvec, rest}, nil, onnx.AttrInt("axis", 0)).Out()
	clsB := b.AddNode("Expand", []string{cls, eshape}, nil).Out()
	h := b.AddNode("Concat", []string{clsB, tok}, nil, onnx.AttrInt("axis", 1)).Out()
	pos := b.AddInitializerFloat32("pos_embed", []int64{1, int64(tokens), int64(d)}, normal(tokens*d, 0.02))
	h = b.AddNode("Add", []string{h, pos}, nil).Out()

	scale := b.AddConstantFloat32(b.Unique("attn_scale"), nil, []float32{float32(1 / math.Sqrt(float64(dh)))})
	for i := 0; i < cfg.Depth; i++ {
		p := fmt.Sprintf("blocks.%d.", i)
		// Attention.
		n1 := layerNorm(b, h, p+"norm1", d, normal)
		qkv := linear(b, n1, p+"attn.qkv", d, 3*d, normal).Out()
		s5 := b.AddConstantInt64(b.Unique(p+"qkv_shape"), []int64{5}, []int64{0, 0, 3, int64(cfg.Heads), int64(dh)})
		r := b.AddNode("Reshape", []string{qkv, s5}, nil).Out()
		t := b.AddNode("Transpose", []string{r}, nil, onnx.AttrInts("perm", 2, 0, 3, 1, 4)).Out()
		var qkvs [3]string
		for j := range qkvs {
			idx := b.AddConstantInt64(b.Unique(fmt.Sprintf("%sidx%d", p, j)), nil, []int64{int64(j)})
			qkvs[j] = b.AddNode("Gather", []string{t, idx}, nil, onnx.AttrInt("axis", 0)).Out()
		}
		kt := b.AddNode("Transpose", []string{qkvs[1]}, nil, onnx.AttrInts("perm", 0, 1, 3, 2)).Out()
		att := b.AddNode("MatMul", []string{qkvs[0], kt}, nil).Named(p + "attn.qk").Out()
		att = b.AddNode("Mul", []string{att, scale}, nil).Out()
		att = b.AddNode("Softmax", []string{att}, nil, onnx.AttrInt("axis", -1)).Out()
		ctx := b.AddNode("MatMul", []string{att, qkvs[2]}, nil).Named(p + "attn.av").Out()
		ctx = b.AddNode("Transpose", []string{ctx}, nil, onnx.AttrInts("perm", 0, 2, 1, 3)).Out()
		s3 := b.AddConstantInt64(b.Unique(p+"ctx_shape"), []int64{3}, []int64{0, 0, int64(d)})
		ctx = b.AddNode("Reshape", []string{ctx, s3}, nil).Out()
		proj := linear(b, ctx, p+"attn.proj", d, d, normal).Out()
		h = b.AddNode("Add", []string{h, proj}, nil).Out()
		// MLP with exact (Erf) GELU: x * 0.5 * (1 + erf(x / sqrt 2)).
		n2 := layerNorm(b, h, p+"norm2", d, normal)
		f1 := linear(b, n2, p+"mlp.fc1", d, cfg.MLP, normal).Out()
		sq2 := b.AddConstantFloat32(b.Unique("sqrt2"), nil, []float32{float32(math.Sqrt2)})
		one := b.AddConstantFloat32(b.Unique("one"), nil, []float32{1})
		half := b.AddConstantFloat32(b.Unique("half"), nil, []float32{0.5})
		e := b.AddNode("Div", []string{f1, sq2}, nil).Out()
		e = b.AddNode("Erf", []string{e}, nil).Out()
		e = b.AddNode("Add", []string{e, one}, nil).Out()
		g := b.AddNode("Mul", []string{f1, e}, nil).Out()
		g = b.AddNode("Mul", []string{g, half}, nil).Out()
		f2 := linear(b, g, p+"mlp.fc2", cfg.MLP, d, normal).Out()
		h = b.AddNode("Add", []string{h, f2}, nil).Out()
	}
	h = layerNorm(b, h, "norm", d, normal)
	zero2 := b.AddConstantInt64(b.Unique("cls_idx"), nil, []int64{0})
	clsOut := b.AddNode("Gather", []string{h, zero2}, nil, onnx.AttrInt("axis", 1)).Out()
	hw := b.AddInitializerFloat32("head.weight", []int64{int64(cfg.Classes), int64(d)}, normal(cfg.Classes*d, 1/math.Sqrt(float64(d))))
	hb := b.AddInitializerFloat32("head.bias", []int64{int64(cfg.Classes)}, normal(cfg.Classes, 0.02))
	b.AddNode("Gemm", []string{clsOut, hw, hb}, []string{OutputName},
		onnx.AttrFloat("alpha", 1), onnx.AttrFloat("beta", 1), onnx.AttrInt("transB", 1)).Named("head")
	b.AddOutput(OutputName, onnx.Float, onnx.Dims(batch, cfg.Classes))
	return b.Build()
}

// linear adds MatMul(x, W[in,out]) + bias, named like a torch export.
func linear(b *onnx.Builder, x, name string, in, out int, normal func(int, float64) []float32) *onnx.Node {
	wv := normal(in*out, 1/math.Sqrt(float64(in)))
	// A few input channels with large weights, as trained ViTs have
	// (outlier features); they make per-channel and per-tensor differ.
	for _, c := range []int{1, in / 2} {
		for j := 0; j < out; j++ {
			wv[c*out+j] *= 2
		}
	}
	w := b.AddInitializerFloat32(name+".weight", []int64{int64(in), int64(out)}, wv)
	bias := b.AddInitializerFloat32(name+".bias", []int64{int64(out)}, normal(out, 0.02))
	mm := b.AddNode("MatMul", []string{x, w}, nil).Named(name + ".MatMul").Out()
	return b.AddNode("Add", []string{mm, bias}, nil).Named(name + ".Add")
}

// layerNorm adds LayerNormalization over the last axis.
func layerNorm(b *onnx.Builder, x, name string, d int, normal func(int, float64) []float32) string {
	g := normal(d, 0.1)
	for i := range g {
		g[i] += 1
	}
	gamma := b.AddInitializerFloat32(name+".weight", []int64{int64(d)}, g)
	beta := b.AddInitializerFloat32(name+".bias", []int64{int64(d)}, normal(d, 0.02))
	return b.AddNode("LayerNormalization", []string{x, gamma, beta}, nil,
		onnx.AttrInt("axis", -1), onnx.AttrFloat("epsilon", 1e-6)).Named(name).Out()
}

// Inputs returns n seeded inputs for the model, each [1, 3, image, image],
// roughly normalized images: smooth structure plus noise.
func Inputs(cfg ViTConfig, n int, seed uint64) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 0x1a9e))
	out := make([][]float32, n)
	hw := cfg.Image * cfg.Image
	for s := range out {
		v := make([]float32, 3*hw)
		for c := 0; c < 3; c++ {
			fx, fy, ph := rng.Float64()*0.5, rng.Float64()*0.5, rng.Float64()*6
			amp := 0.5 + rng.Float64()
			for y := 0; y < cfg.Image; y++ {
				for x := 0; x < cfg.Image; x++ {
					v[c*hw+y*cfg.Image+x] = float32(amp*math.Sin(fx*float64(x)+fy*float64(y)+ph) + 0.3*rng.NormFloat64())
				}
			}
		}
		out[s] = v
	}
	return out
}
