package zoo

import (
	"fmt"
	"math"
	"strings"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// net emits one model's graph through an onnx.Builder and keeps the books:
// parameters (in the graph and in the architecture), multiply-adds per
// image, and the weight tensors still to be filled with random values.
//
// In dry mode it allocates no weights: Analyze uses it to count
// parameters and FLOPs without building.
type net struct {
	b     *onnx.Builder
	opset int64
	dry   bool
	seed  uint64
	jobs  []fillJob
	scope []string

	// graphParams is the number of float elements of the initializers.
	graphParams int64
	// archParams counts parameters the way the reference implementations
	// do: BatchNorm scale and shift before folding, parameters that the
	// inference graph does not use (DINOv2's mask token).
	archParams int64
	// weightBytes is the size of the initializers' data.
	weightBytes int64
	// macs is the number of multiply-adds for one image.
	macs int64
	// err is the first problem found while emitting (bad dims).
	err error
}

func newNet(name string, opset int64, seed uint64, dry bool) *net {
	return &net{b: onnx.NewBuilder(name, opset), opset: opset, seed: seed, dry: dry}
}

// failf records the first emitting problem.
func (n *net) failf(format string, args ...any) {
	if n.err == nil {
		n.err = fmt.Errorf(format, args...)
	}
}

// push enters a naming scope (a module path such as "blocks.3.attn");
// pop leaves it.
func (n *net) push(s string) { n.scope = append(n.scope, s) }
func (n *net) pop()          { n.scope = n.scope[:len(n.scope)-1] }

// prefix is "/" + the scope path + "/", as torch.onnx names nodes.
func (n *net) prefix() string {
	if len(n.scope) == 0 {
		return "/"
	}
	return "/" + strings.Join(n.scope, "/") + "/"
}

// fill is how a parameter is initialized.
type fill struct {
	std   float32 // > 0: truncated normal with this σ
	value float32 // std == 0: every element is value
}

func normal(std float64) fill { return fill{std: float32(std)} }
func constant(v float32) fill { return fill{value: v} }

var (
	zeros = constant(0)
	ones  = constant(1)
)

// weightStd is the σ the reference implementations use for linear and
// patch-embedding weights, tokens and position embeddings.
const weightStd = 0.02

// param adds a float32 initializer name of the given dims and returns its
// name.
func (n *net) param(name string, dims []int64, in fill) string {
	numel, err := onnx.Numel(dims)
	if err != nil || numel == 0 {
		n.failf("parameter %s: bad dims %v", name, dims)
		return name
	}
	n.graphParams += numel
	n.archParams += numel
	n.weightBytes += 4 * numel
	if n.dry {
		return name
	}
	raw := make([]byte, 4*numel)
	if in.std > 0 {
		n.jobs = append(n.jobs, fillJob{raw: raw, seed: tensorSeed(n.seed, name), std: in.std})
	} else {
		fillConst(raw, in.value)
	}
	t, err := onnx.NewTensorRaw(name, onnx.Float, dims, raw)
	if err != nil {
		n.failf("parameter %s: %w", name, err)
		return name
	}
	return n.b.AddInitializer(t)
}

// hiddenParam counts a parameter of the architecture that the inference
// graph does not use, as torch.onnx.export drops it.
func (n *net) hiddenParam(dims ...int64) {
	numel, _ := onnx.Numel(dims)
	n.archParams += numel
}

// node adds a node in the current scope and returns its first output.
func (n *net) node(op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	name := n.b.Unique(n.prefix() + op)
	out := n.b.Unique(name + "_output_0")
	n.b.AddNode(op, inputs, []string{out}, attrs...).Named(name)
	return out
}

// nodeTo is node with a given output name (graph outputs).
func (n *net) nodeTo(out, op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	if out == "" {
		return n.node(op, inputs, attrs...)
	}
	name := n.b.Unique(n.prefix() + op)
	n.b.AddNode(op, inputs, []string{out}, attrs...).Named(name)
	return out
}

// ints adds an INT64 Constant of shape [len(v)].
func (n *net) ints(v ...int64) string {
	return n.b.AddConstantInt64(n.b.Unique(n.prefix()+"Constant_output_0"), []int64{int64(len(v))}, v)
}

// scalarInt adds an INT64 scalar Constant.
func (n *net) scalarInt(v int64) string {
	return n.b.AddConstantInt64(n.b.Unique(n.prefix()+"Constant_output_0"), nil, []int64{v})
}

// scalar adds a FLOAT scalar Constant.
func (n *net) scalar(v float32) string {
	return n.b.AddConstantFloat32(n.b.Unique(n.prefix()+"Constant_output_0"), nil, []float32{v})
}

// linear is nn.Linear on a [..., tokens, in] tensor as exporters write it:
// MatMul with the transposed weight [in, out], then Add of the bias.
// Its weight is name+".weight", its bias name+".bias".
func (n *net) linear(x, name string, in, out, tokens int64, bias bool) string {
	w := n.param(name+".weight", []int64{in, out}, normal(weightStd))
	n.macs += tokens * in * out
	y := n.node("MatMul", []string{x, w})
	if bias {
		b := n.param(name+".bias", []int64{out}, zeros)
		y = n.node("Add", []string{y, b})
	}
	return y
}

// gemm is nn.Linear on a [batch, in] matrix as exporters write it: Gemm
// with weight [out, in] and transB=1. outName names its output ("" for a
// generated name).
func (n *net) gemm(x, name string, in, out int64, outName string) string {
	w := n.param(name+".weight", []int64{out, in}, normal(weightStd))
	b := n.param(name+".bias", []int64{out}, zeros)
	n.macs += in * out
	return n.nodeTo(outName, "Gemm", []string{x, w, b},
		onnx.AttrFloat("alpha", 1), onnx.AttrFloat("beta", 1), onnx.AttrInt("transB", 1))
}

// layerNorm is LayerNormalization over the last axis with weight and bias.
func (n *net) layerNorm(x, name string, dim int64, eps float32) string {
	g := n.param(name+".weight", []int64{dim}, ones)
	b := n.param(name+".bias", []int64{dim}, zeros)
	return n.node("LayerNormalization", []string{x, g, b},
		onnx.AttrInt("axis", -1), onnx.AttrFloat("epsilon", eps))
}

// gelu is the exact GELU: the Gelu operator from opset 20, before that
// x·0.5·(1+erf(x/√2)) as torch.onnx.export writes it.
func (n *net) gelu(x string) string {
	if n.opset >= 20 {
		return n.node("Gelu", []string{x})
	}
	d := n.node("Div", []string{x, n.scalar(float32(math.Sqrt2))})
	e := n.node("Erf", []string{d})
	a := n.node("Add", []string{e, n.scalar(1)})
	m := n.node("Mul", []string{x, a})
	return n.node("Mul", []string{m, n.scalar(0.5)})
}

// quickGelu is CLIP's x·sigmoid(1.702x).
func (n *net) quickGelu(x string) string {
	m := n.node("Mul", []string{x, n.scalar(1.702)})
	s := n.node("Sigmoid", []string{m})
	return n.node("Mul", []string{x, s})
}

// silu is x·sigmoid(x), as exporters write SiLU before opset 22's Swish.
func (n *net) silu(x string) string {
	s := n.node("Sigmoid", []string{x})
	return n.node("Mul", []string{x, s})
}

// relu6 is Clip(x, 0, 6).
func (n *net) relu6(x string) string {
	return n.node("Clip", []string{x, n.scalar(0), n.scalar(6)})
}

// activation kinds of convolutional blocks.
type act int

const (
	actNone act = iota
	actReLU
	actReLU6
	actSiLU
)

func (n *net) activate(x string, a act) string {
	switch a {
	case actReLU:
		return n.node("Relu", []string{x})
	case actReLU6:
		return n.relu6(x)
	case actSiLU:
		return n.silu(x)
	}
	return x
}

// convShape is a convolution's geometry.
type convShape struct {
	cin, cout, k, stride, groups int64
}

// outSize is the spatial size after a convolution or pooling with padding
// (k-1)/2·... as given.
func outSize(in, k, stride, pad int64) int64 { return (in+2*pad-k)/stride + 1 }

// conv is a Conv with weight name+".weight" [cout, cin/groups, k, k],
// padding pad on every side, and a bias name+".bias" when bias is set.
// h and w are the input's spatial size; it returns the output and its size.
func (n *net) conv(x, name string, c convShape, pad int64, bias bool, std float64, h, w int64) (string, int64, int64) {
	if c.groups == 0 {
		c.groups = 1
	}
	if c.cin%c.groups != 0 || c.cout%c.groups != 0 {
		n.failf("conv %s: %d→%d channels do not split into %d groups", name, c.cin, c.cout, c.groups)
		return x, h, w
	}
	wt := n.param(name+".weight", []int64{c.cout, c.cin / c.groups, c.k, c.k}, normal(std))
	ins := []string{x, wt}
	if bias {
		ins = append(ins, n.param(name+".bias", []int64{c.cout}, zeros))
	}
	oh, ow := outSize(h, c.k, c.stride, pad), outSize(w, c.k, c.stride, pad)
	n.macs += oh * ow * c.cout * (c.cin / c.groups) * c.k * c.k
	y := n.node("Conv", ins,
		onnx.AttrInts("dilations", 1, 1),
		onnx.AttrInt("group", c.groups),
		onnx.AttrInts("kernel_shape", c.k, c.k),
		onnx.AttrInts("pads", pad, pad, pad, pad),
		onnx.AttrInts("strides", c.stride, c.stride))
	return y, oh, ow
}

// convBN is Conv + BatchNorm (+ activation) with the BatchNorm folded into
// the convolution, as exporters write inference graphs: the graph has the
// convolution's weight and a bias; the architecture's count has the
// convolution's weight (no bias) and the BatchNorm's scale and shift.
//
// The weights are He-initialized for the fan-in (σ = gain·√(1/fan_in))
// times the folded BatchNorm scale gamma/√(1+ε), so activations keep their
// scale through the network as a trained network's BatchNorms keep them.
func (n *net) convBN(x, name string, c convShape, a act, gamma float64, h, w int64) (string, int64, int64) {
	if c.groups == 0 {
		c.groups = 1
	}
	fanIn := float64(c.cin / max(c.groups, 1) * c.k * c.k)
	gain := 1.0
	if a != actNone {
		gain = math.Sqrt2
	}
	std := gain * gamma / math.Sqrt(fanIn) / math.Sqrt(1+1e-5)
	y, oh, ow := n.conv(x, name, c, (c.k-1)/2, true, std, h, w)
	// Folding turned the BatchNorm's 2·cout parameters into a cout bias.
	n.archParams += c.cout
	return n.activate(y, a), oh, ow
}
