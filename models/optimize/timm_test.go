package optimize_test

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"github.com/quantscope/quantscope/models/optimize"
)

// timmExport builds, with the builder, the graph torch.onnx.export
// (dynamo=False, opset 17, dynamic batch) writes for a small timm
// VisionTransformer: a 32-pixel image, 8-pixel patches, width 32, 2 heads,
// depth 2, 10 classes. Every shape is computed at run time from Shape
// nodes as the tracer records it:
//
//   - patch embedding: Conv, then flatten(2) as Reshape to
//     Concat(Slice(Shape(x), 0, 2), [-1]), Transpose;
//   - class token: cls.expand(B, -1, -1) as Expand to
//     Where(Equal(size, -1), 1, size) with size from Shape → Gather →
//     Unsqueeze → Concat, then Concat and the position embedding Add;
//   - attention: B, N, C = x.shape (Shape → Gather), qkv Linear
//     (MatMul + Add), reshape(B, N, 3, heads, head_dim) with a Concat
//     target, permute(2, 0, 3, 1, 4), unbind(0) as Split + Squeeze; then
//     either F.scaled_dot_product_attention as torch's ONNX symbolic writes
//     it (the scale 1/√head_dim computed from Shape(q) → Slice → Cast →
//     Sqrt → Div → Cast, its square root multiplied into q and into kᵀ),
//     or (sdpa false, timm's fused_attn off) q·scale, q @ kᵀ, softmax;
//     transpose(1, 2).reshape(B, N, C) with a Concat target; proj Linear;
//   - MLP: Linear, GELU as Div/Erf/Add/Mul/Mul, Linear;
//   - final LayerNorm, x[:, 0] as Gather, head Linear as Gemm.
func timmExport(t testing.TB, sdpa bool) *onnx.Model {
	t.Helper()
	const (
		img, patch, dim, heads, depth, mlp, classes = 32, 8, 32, 2, 2, 64, 10
		hd                                          = dim / heads
		tokens                                      = (img/patch)*(img/patch) + 1
	)
	r := rand.New(rand.NewPCG(11, 12))
	rnd := func(n int, mean, std float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(mean + r.NormFloat64()*std)
		}
		return v
	}
	b := onnx.NewBuilder("main_graph", 17)
	uniq := 0
	name := func(s string) string { uniq++; return "/" + s + "_" + strconv.Itoa(uniq) }
	node := func(op string, ins []string, attrs ...*onnxpb.AttributeProto) string {
		n := b.AddNode(op, ins, nil, attrs...)
		n.Named(name(op))
		return n.Out()
	}
	i64 := func(v ...int64) string {
		return b.AddConstantInt64(b.Unique("/Constant_output_0"), []int64{int64(len(v))}, v)
	}
	i64s := func(v int64) string { return b.AddConstantInt64(b.Unique("/Constant_output_0"), nil, []int64{v}) }
	f32 := func(v float32) string { return b.AddConstantFloat32(b.Unique("/Constant_output_0"), nil, []float32{v}) }
	w := func(n string, dims ...int64) string {
		cnt := 1
		for _, d := range dims {
			cnt *= int(d)
		}
		std := 0.3
		if len(dims) == 1 {
			return b.AddInitializerFloat32(n, dims, rnd(cnt, 0, 0.2))
		}
		return b.AddInitializerFloat32(n, dims, rnd(cnt, 0, std/math.Sqrt(float64(dims[0]))))
	}
	dimOf := func(x string, i int64) string { // Shape(x)[i], unsqueezed to [1]
		g := node("Gather", []string{node("Shape", []string{x}), i64s(i)}, onnx.AttrInt("axis", 0))
		return node("Unsqueeze", []string{g, i64(0)})
	}
	ln := func(x, p string) string {
		g := b.AddInitializerFloat32(p+".weight", []int64{dim}, rnd(dim, 1, 0.2))
		be := b.AddInitializerFloat32(p+".bias", []int64{dim}, rnd(dim, 0, 0.2))
		return node("LayerNormalization", []string{x, g, be}, onnx.AttrInt("axis", -1), onnx.AttrFloat("epsilon", 1e-6))
	}
	linear := func(x, p string, in, out int64) string {
		return node("Add", []string{node("MatMul", []string{x, w(p+".weight", in, out)}), w(p+".bias", out)})
	}

	x := b.AddInput("input", onnx.Float, onnx.Dims("batch_size", 3, img, img))
	h := node("Conv", []string{x, w("patch_embed.proj.weight", dim, 3, patch, patch), w("patch_embed.proj.bias", dim)},
		onnx.AttrInts("dilations", 1, 1), onnx.AttrInt("group", 1), onnx.AttrInts("kernel_shape", patch, patch),
		onnx.AttrInts("pads", 0, 0, 0, 0), onnx.AttrInts("strides", patch, patch))
	// flatten(2)
	head2 := node("Slice", []string{node("Shape", []string{h}), i64(0), i64(2), i64(0)})
	h = node("Reshape", []string{h, node("Concat", []string{head2, i64(-1)}, onnx.AttrInt("axis", 0))})
	h = node("Transpose", []string{h}, onnx.AttrInts("perm", 0, 2, 1))
	// cls_token.expand(B, -1, -1)
	size := node("Concat", []string{dimOf(h, 0), i64(-1), i64(-1)}, onnx.AttrInt("axis", 0))
	size = node("Reshape", []string{size, i64(-1)})
	ones := node("ConstantOfShape", []string{node("Shape", []string{size})}, onnx.AttrTensor("value", mustInt64(t, []int64{1}, []int64{1})))
	neg := node("Mul", []string{ones, i64s(-1)})
	size = node("Where", []string{node("Equal", []string{size, neg}), ones, size})
	cls := node("Expand", []string{b.AddInitializerFloat32("cls_token", []int64{1, 1, dim}, rnd(dim, 0, 0.2)), size})
	h = node("Concat", []string{cls, h}, onnx.AttrInt("axis", 1))
	h = node("Add", []string{h, b.AddInitializerFloat32("pos_embed", []int64{1, tokens, dim}, rnd(tokens*dim, 0, 0.2))})

	for i := range depth {
		p := "blocks." + strconv.Itoa(i)
		a := ln(h, p+".norm1")
		B, N, C := dimOf(a, 0), dimOf(a, 1), dimOf(a, 2)
		qkv := linear(a, p+".attn.qkv", dim, 3*dim)
		qkv = node("Reshape", []string{qkv, node("Concat", []string{B, N, i64(3), i64(heads), i64(hd)}, onnx.AttrInt("axis", 0))})
		qkv = node("Transpose", []string{qkv}, onnx.AttrInts("perm", 2, 0, 3, 1, 4))
		sp := b.AddNode("Split", []string{qkv, i64(1, 1, 1)}, []string{b.Unique("q3"), b.Unique("k3"), b.Unique("v3")}, onnx.AttrInt("axis", 0)).Named(name("Split"))
		q := node("Squeeze", []string{sp.Output(0), i64(0)})
		k := node("Squeeze", []string{sp.Output(1), i64(0)})
		v := node("Squeeze", []string{sp.Output(2), i64(0)})
		var s string
		if sdpa {
			last := node("Slice", []string{node("Shape", []string{q}), i64(-1), i64(math.MaxInt64)})
			e := node("Cast", []string{last}, onnx.AttrInt("to", int64(onnx.Float)))
			one := b.AddConstantFloat32(b.Unique("/Constant_output_0"), []int64{1}, []float32{1})
			scale := node("Cast", []string{node("Div", []string{one, node("Sqrt", []string{e})})}, onnx.AttrInt("to", int64(onnx.Float)))
			kt := node("Transpose", []string{k}, onnx.AttrInts("perm", 0, 1, 3, 2))
			qs := node("Mul", []string{q, node("Sqrt", []string{scale})})
			ks := node("Mul", []string{kt, node("Sqrt", []string{scale})})
			s = node("MatMul", []string{qs, ks})
		} else {
			qs := node("Mul", []string{q, f32(float32(1 / math.Sqrt(hd)))})
			s = node("MatMul", []string{qs, node("Transpose", []string{k}, onnx.AttrInts("perm", 0, 1, 3, 2))})
		}
		s = node("Softmax", []string{s}, onnx.AttrInt("axis", -1))
		o := node("MatMul", []string{s, v})
		o = node("Transpose", []string{o}, onnx.AttrInts("perm", 0, 2, 1, 3))
		o = node("Reshape", []string{o, node("Concat", []string{B, N, C}, onnx.AttrInt("axis", 0))})
		h = node("Add", []string{h, linear(o, p+".attn.proj", dim, dim)})
		f := linear(ln(h, p+".norm2"), p+".mlp.fc1", dim, mlp)
		e := node("Erf", []string{node("Div", []string{f, f32(float32(math.Sqrt2))})})
		f = node("Mul", []string{node("Mul", []string{f, node("Add", []string{e, f32(1)})}), f32(0.5)})
		h = node("Add", []string{h, linear(f, p+".mlp.fc2", mlp, dim)})
	}
	h = ln(h, "norm")
	h = node("Gather", []string{h, i64s(0)}, onnx.AttrInt("axis", 1))
	b.AddNode("Gemm", []string{h, w("head.weight", classes, dim), w("head.bias", classes)}, []string{"output"},
		onnx.AttrFloat("alpha", 1), onnx.AttrFloat("beta", 1), onnx.AttrInt("transB", 1)).Named("/head/Gemm")
	b.AddOutput("output", onnx.Float, onnx.Dims("batch_size", classes))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustInt64(t testing.TB, dims, v []int64) *onnxpb.TensorProto {
	t.Helper()
	tt, err := onnx.NewTensorInt64("", dims, v)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

// A torch.onnx.export graph of a timm ViT fuses completely: every
// attention, every LayerNorm into SkipLayerNormalization, every GELU with
// its bias; the run-time shape arithmetic of attention and patch
// flattening is folded away (what is left computes the class token's
// batch-sized Expand); the outputs equal the unfused graph's.
func TestTimmExportFusesFully(t *testing.T) {
	for _, sdpa := range []bool{true, false} {
		t.Run("sdpa="+strconv.FormatBool(sdpa), func(t *testing.T) {
			m := timmExport(t, sdpa)
			fused, r := apply(t, m, optimize.Default())
			t.Logf("%s (%d → %d nodes)", r, r.NodesBefore, r.NodesAfter)
			if r.Count(optimize.Attention) != 2 || r.Count(optimize.SkipLayerNorm) != 5 || r.Count(optimize.BiasGelu) != 2 || r.Count(optimize.PruneTokens) != 8 {
				t.Fatalf("got %s, want attention=2 skip-layernorm=5 bias-gelu=2 prune-unused-tokens=8; misses %v", r, r.Misses)
			}
			got := ops(fused)
			for _, op := range []string{"Softmax", "Erf", "Split", "Squeeze", "Sqrt", "Cast", "Div", "LayerNormalization", "Transpose"} {
				if op == "Transpose" && got[op] == 1 {
					continue // the patch embedding's
				}
				if got[op] != 0 {
					t.Errorf("%d %s left", got[op], op)
				}
			}
			// Left: the patch flatten, and the class token's batch-sized
			// Expand target (Shape → Gather → Unsqueeze → Concat →
			// Reshape → Where), which depends on the batch.
			if got["Reshape"] != 2 || got["Shape"] != 1 {
				t.Errorf("Reshape %d, Shape %d: want 2 and 1 (patch flatten, class token expand)", got["Reshape"], got["Shape"])
			}
			equivalent(t, m, fused, randomInput([]int64{3, 3, 32, 32}, 8), 0.99999)
		})
	}
}
