package zoo

import (
	"fmt"
	"strconv"

	"github.com/quantscope/quantscope/models/onnx"
)

// ResNetConfig is a torchvision ResNet with bottleneck blocks (ResNet-50,
// -101, -152; v1.5: the stride is on the 3×3 convolution). Every
// BatchNorm is folded into the convolution before it.
type ResNetConfig struct {
	// Layers is the number of bottleneck blocks of each of the four stages
	// ([3, 4, 6, 3] for ResNet-50).
	Layers [4]int
	// Classes is the number of classes of the fc head (must be > 0).
	Classes int
}

func (c ResNetConfig) family() string { return "resnet" }

func (c ResNetConfig) validate(res int) error {
	for i, l := range c.Layers {
		if l <= 0 {
			return fmt.Errorf("resnet stage %d has %d blocks", i+1, l)
		}
	}
	if c.Classes <= 0 {
		return fmt.Errorf("resnet needs a classifier head (Classes > 0)")
	}
	if res < 32 || res%32 != 0 {
		return fmt.Errorf("resolution %d px is not a multiple of 32", res)
	}
	return nil
}

func (c ResNetConfig) output() (OutputKind, int) { return Logits, c.Classes }
func (c ResNetConfig) width() int                { return 2048 }

// residualGamma scales the last BatchNorm of every residual branch: with
// the BatchNorm's running statistics at their initial values (mean 0,
// variance 1) each block would add as much as its input, and activations
// would grow by orders of magnitude through the network. Trained
// networks keep them in range; this keeps them in range too (the idea of
// torchvision's zero_init_residual, without switching branches off).
const residualGamma = 0.3

func (c ResNetConfig) build(n *net, res int, x string) string {
	h, w := int64(res), int64(res)
	y, h, w := n.convBN(x, "conv1", convShape{cin: 3, cout: 64, k: 7, stride: 2}, actReLU, 1, h, w)
	// convBN pads (k-1)/2 = 3, as torchvision's conv1.
	y = n.node("MaxPool", []string{y},
		onnx.AttrInts("kernel_shape", 3, 3), onnx.AttrInts("pads", 1, 1, 1, 1), onnx.AttrInts("strides", 2, 2))
	h, w = outSize(h, 3, 2, 1), outSize(w, 3, 2, 1)
	inC := int64(64)
	for s, blocks := range c.Layers {
		planes := int64(64) << s
		for b := range blocks {
			stride := int64(1)
			if b == 0 && s > 0 {
				stride = 2
			}
			name := "layer" + strconv.Itoa(s+1) + "." + strconv.Itoa(b)
			n.push(name)
			r, rh, rw := n.convBN(y, name+".conv1", convShape{cin: inC, cout: planes, k: 1, stride: 1}, actReLU, 1, h, w)
			r, rh, rw = n.convBN(r, name+".conv2", convShape{cin: planes, cout: planes, k: 3, stride: stride}, actReLU, 1, rh, rw)
			r, rh, rw = n.convBN(r, name+".conv3", convShape{cin: planes, cout: planes * 4, k: 1, stride: 1}, actNone, residualGamma, rh, rw)
			short := y
			if stride != 1 || inC != planes*4 {
				short, _, _ = n.convBN(y, name+".downsample.0", convShape{cin: inC, cout: planes * 4, k: 1, stride: stride}, actNone, 1, h, w)
			}
			y = n.node("Add", []string{r, short})
			y = n.node("Relu", []string{y})
			n.pop()
			h, w, inC = rh, rw, planes*4
		}
	}
	return n.classifier(y, "fc", inC, int64(c.Classes))
}

// classifier is global average pooling, Flatten and the Gemm head, as
// torchvision models export.
func (n *net) classifier(x, name string, in, classes int64) string {
	p := n.node("GlobalAveragePool", []string{x})
	p = n.node("Flatten", []string{p}, onnx.AttrInt("axis", 1))
	return n.gemm(p, name, in, classes, Logits.outputName())
}

// MobileNetV2Config is torchvision's MobileNetV2 with BatchNorm folded
// into the convolutions.
type MobileNetV2Config struct {
	// Width is the width multiplier (1.0 for the reference model).
	Width float64
	// Classes is the number of classes of the head (must be > 0).
	Classes int
}

func (c MobileNetV2Config) family() string { return "mobilenet-v2" }

func (c MobileNetV2Config) validate(res int) error {
	if c.Width <= 0 || c.Width > 4 {
		return fmt.Errorf("mobilenet-v2 width multiplier %g out of range (0, 4]", c.Width)
	}
	if c.Classes <= 0 {
		return fmt.Errorf("mobilenet-v2 needs a classifier head (Classes > 0)")
	}
	if res < 32 || res%32 != 0 {
		return fmt.Errorf("resolution %d px is not a multiple of 32", res)
	}
	return nil
}

func (c MobileNetV2Config) output() (OutputKind, int) { return Logits, c.Classes }
func (c MobileNetV2Config) width() int                { return int(c.lastChannels()) }

func (c MobileNetV2Config) lastChannels() int64 {
	return makeDivisible(1280*max(1, c.Width), 8)
}

// makeDivisible rounds v to the nearest multiple of divisor, never more
// than 10% below v (torchvision's _make_divisible).
func makeDivisible(v float64, divisor int64) int64 {
	d := float64(divisor)
	nv := max(divisor, int64(v+d/2)/divisor*divisor)
	if float64(nv) < 0.9*v {
		nv += divisor
	}
	return nv
}

func (c MobileNetV2Config) build(n *net, res int, x string) string {
	settings := [][4]int64{ // expansion t, channels c, repeats n, stride s
		{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
		{6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
	}
	h, w := int64(res), int64(res)
	inC := makeDivisible(32*c.Width, 8)
	y, h, w := n.convBN(x, "features.0.0", convShape{cin: 3, cout: inC, k: 3, stride: 2}, actReLU6, 1, h, w)
	idx := 1
	for _, st := range settings {
		outC := makeDivisible(float64(st[1])*c.Width, 8)
		for i := range st[2] {
			stride := int64(1)
			if i == 0 {
				stride = st[3]
			}
			name := "features." + strconv.Itoa(idx)
			n.push(name)
			gamma := 1.0
			if stride == 1 && inC == outC {
				gamma = residualGamma
			}
			y2, h2, w2 := n.invertedResidual(y, name, inC, outC, stride, float64(st[0]), actReLU6, gamma, h, w)
			if stride == 1 && inC == outC {
				y2 = n.node("Add", []string{y, y2})
			}
			n.pop()
			y, h, w, inC = y2, h2, w2, outC
			idx++
		}
	}
	last := c.lastChannels()
	y, _, _ = n.convBN(y, "features."+strconv.Itoa(idx)+".0", convShape{cin: inC, cout: last, k: 1, stride: 1}, actReLU6, 1, h, w)
	return n.classifier(y, "classifier.1", last, int64(c.Classes))
}

// invertedResidual is MobileNetV2's block without the residual Add:
// 1×1 expansion (skipped when expand is 1), 3×3 depthwise, 1×1 linear
// projection whose folded BatchNorm has scale gamma.
func (n *net) invertedResidual(x, name string, in, out, stride int64, expand float64, a act, gamma float64, h, w int64) (string, int64, int64) {
	hidden := int64(float64(in)*expand + 0.5)
	j := 0
	y := x
	if expand != 1 {
		y, _, _ = n.convBN(y, name+".conv."+strconv.Itoa(j)+".0", convShape{cin: in, cout: hidden, k: 1, stride: 1}, a, 1, h, w)
		j++
	}
	y, h, w = n.convBN(y, name+".conv."+strconv.Itoa(j)+".0", convShape{cin: hidden, cout: hidden, k: 3, stride: stride, groups: hidden}, a, 1, h, w)
	j++
	y, h, w = n.convBN(y, name+".conv."+strconv.Itoa(j), convShape{cin: hidden, cout: out, k: 1, stride: 1}, actNone, gamma, h, w)
	return y, h, w
}
