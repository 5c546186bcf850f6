package quanttest

import (
	"math"
	"math/rand/v2"

	"github.com/quantscope/quantscope/models/onnx"
)

// CNN builds a small MobileNet-like convolutional classifier on 32×32
// images: a 3×3 stride-2 stem, a depthwise 3×3 and a pointwise 1×1
// convolution with Relu and a residual Add, global average pooling and a
// Gemm head. Its convolutions are not patch embeddings.
func CNN(seed uint64, classes int) (*onnx.Model, error) {
	rng := rand.New(rand.NewPCG(seed, 0xc0))
	normal := func(n int, std float64) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(rng.NormFloat64() * std)
		}
		return out
	}
	const c = 16
	b := onnx.NewBuilder("cnn", 17)
	x := b.AddInput(InputName, onnx.Float, onnx.Dims("batch", 3, 32, 32))
	conv := func(name, in string, cin, cout, k, stride, group int) string {
		fan := cin / group * k * k
		w := b.AddInitializerFloat32(name+".weight", []int64{int64(cout), int64(cin / group), int64(k), int64(k)}, normal(cout*fan, math.Sqrt(2/float64(fan))))
		bias := b.AddInitializerFloat32(name+".bias", []int64{int64(cout)}, normal(cout, 0.05))
		p := int64(k / 2)
		y := b.AddNode("Conv", []string{in, w, bias}, nil,
			onnx.AttrInts("kernel_shape", int64(k), int64(k)), onnx.AttrInts("strides", int64(stride), int64(stride)),
			onnx.AttrInts("pads", p, p, p, p), onnx.AttrInt("group", int64(group))).Named(name).Out()
		return b.AddNode("Relu", []string{y}, nil).Out()
	}
	h := conv("stem", x, 3, c, 3, 2, 1)
	d := conv("block.dw", h, c, c, 3, 1, c)
	pw := conv("block.pw", d, c, c, 1, 1, 1)
	h = b.AddNode("Add", []string{h, pw}, nil).Out()
	h = b.AddNode("GlobalAveragePool", []string{h}, nil).Out()
	h = b.AddNode("Flatten", []string{h}, nil, onnx.AttrInt("axis", 1)).Out()
	hw := b.AddInitializerFloat32("head.weight", []int64{int64(classes), c}, normal(classes*c, 1/math.Sqrt(c)))
	hb := b.AddInitializerFloat32("head.bias", []int64{int64(classes)}, normal(classes, 0.02))
	b.AddNode("Gemm", []string{h, hw, hb}, []string{OutputName}, onnx.AttrInt("transB", 1)).Named("head")
	b.AddOutput(OutputName, onnx.Float, onnx.Dims("batch", classes))
	return b.Build()
}

// ResidualCNN builds a small classifier with the structures of ResNet and
// MobileNetV2 on 32×32 images: a 3×3 stride-2 stem with Relu, a 3×3
// stride-2 MaxPool, an inverted bottleneck (1×1 expansion with Relu6,
// depthwise 3×3 with Relu6, linear 1×1 projection) added to its input, a
// basic block (3×3 with SiLU, x·σ(x), as in MobileViT; 1×1) added to its
// input and followed by Relu, global average pooling and a Gemm head: six
// convolutions, two residual Adds. Relu6 is Clip(0, 6) with constant bounds, as exporters
// write it.
func ResidualCNN(seed uint64, classes int) (*onnx.Model, error) {
	rng := rand.New(rand.NewPCG(seed, 0xc1))
	normal := func(n int, std float64) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(rng.NormFloat64() * std)
		}
		return out
	}
	const c = 16
	b := onnx.NewBuilder("residual-cnn", 17)
	x := b.AddInput(InputName, onnx.Float, onnx.Dims("batch", 3, 32, 32))
	lo := b.AddInitializerFloat32("relu6.min", nil, []float32{0})
	hi := b.AddInitializerFloat32("relu6.max", nil, []float32{6})
	conv := func(name, in string, cin, cout, k, stride, group int) string {
		fan := cin / group * k * k
		w := b.AddInitializerFloat32(name+".weight", []int64{int64(cout), int64(cin / group), int64(k), int64(k)}, normal(cout*fan, math.Sqrt(2/float64(fan))))
		bias := b.AddInitializerFloat32(name+".bias", []int64{int64(cout)}, normal(cout, 0.05))
		p := int64(k / 2)
		return b.AddNode("Conv", []string{in, w, bias}, nil,
			onnx.AttrInts("kernel_shape", int64(k), int64(k)), onnx.AttrInts("strides", int64(stride), int64(stride)),
			onnx.AttrInts("pads", p, p, p, p), onnx.AttrInt("group", int64(group))).Named(name).Out()
	}
	relu := func(v string) string { return b.AddNode("Relu", []string{v}, nil).Out() }
	relu6 := func(v string) string { return b.AddNode("Clip", []string{v, lo, hi}, nil).Out() }
	h := relu(conv("stem", x, 3, c, 3, 2, 1))
	h = b.AddNode("MaxPool", []string{h}, nil, onnx.AttrInts("kernel_shape", 3, 3), onnx.AttrInts("strides", 2, 2),
		onnx.AttrInts("pads", 1, 1, 1, 1)).Out()
	e := relu6(conv("inverted.expand", h, c, 2*c, 1, 1, 1))
	e = relu6(conv("inverted.dw", e, 2*c, 2*c, 3, 1, 2*c))
	h = b.AddNode("Add", []string{h, conv("inverted.project", e, 2*c, c, 1, 1, 1)}, nil).Out()
	r := conv("basic.conv1", h, c, c, 3, 1, 1)
	r = b.AddNode("Mul", []string{r, b.AddNode("Sigmoid", []string{r}, nil).Out()}, nil).Out() // SiLU
	h = relu(b.AddNode("Add", []string{conv("basic.conv2", r, c, c, 1, 1, 1), h}, nil).Out())
	h = b.AddNode("GlobalAveragePool", []string{h}, nil).Out()
	h = b.AddNode("Flatten", []string{h}, nil, onnx.AttrInt("axis", 1)).Out()
	hw := b.AddInitializerFloat32("head.weight", []int64{int64(classes), c}, normal(classes*c, 1/math.Sqrt(c)))
	hb := b.AddInitializerFloat32("head.bias", []int64{int64(classes)}, normal(classes, 0.02))
	b.AddNode("Gemm", []string{h, hw, hb}, []string{OutputName}, onnx.AttrInt("transB", 1)).Named("head")
	b.AddOutput(OutputName, onnx.Float, onnx.Dims("batch", classes))
	return b.Build()
}
