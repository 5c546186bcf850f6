package quant_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/quant/quanttest"
	"github.com/quantscope/quantscope/profiler/ort"
)

// opProbe builds a one-operator float32 model: input x of shape, the
// operator applied to it (and to constants it needs).
type opProbe struct {
	op     string
	domain string
	shape  []int64
	build  func(b *onnx.Builder, x string) []string // the node's inputs
	attrs  []*onnxpb.AttributeProto
}

func opProbes() []opProbe {
	vec := func(b *onnx.Builder, name string, n int64, v float32) string {
		d := make([]float32, n)
		for i := range d {
			d[i] = v + 0.01*float32(i%7)
		}
		return b.AddInitializerFloat32(b.Unique(name), []int64{n}, d)
	}
	mat := func(b *onnx.Builder, name string, dims ...int64) string {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		r := rand.New(rand.NewPCG(uint64(n), 3))
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(r.NormFloat64() * 0.1)
		}
		return b.AddInitializerFloat32(b.Unique(name), dims, d)
	}
	unary := func(op string) opProbe {
		return opProbe{op: op, shape: []int64{2, 16, 64}, build: func(b *onnx.Builder, x string) []string { return []string{x} }}
	}
	binary := func(op string) opProbe {
		return opProbe{op: op, shape: []int64{2, 16, 64}, build: func(b *onnx.Builder, x string) []string { return []string{x, vec(b, "c", 64, 1.5)} }}
	}
	nchw := []int64{1, 8, 16, 16}
	ps := []opProbe{
		binary("Add"), binary("Sub"), binary("Mul"), binary("Div"), binary("Pow"),
		unary("Relu"), unary("Sigmoid"), unary("Tanh"), unary("Erf"), unary("Exp"), unary("Abs"), unary("Neg"), unary("Sqrt"),
		unary("HardSigmoid"), unary("HardSwish"), unary("Identity"),
		{op: "Softmax", shape: []int64{2, 16, 64}, build: func(b *onnx.Builder, x string) []string { return []string{x} }, attrs: []*onnxpb.AttributeProto{onnx.AttrInt("axis", -1)}},
		{op: "MatMul", shape: []int64{2, 16, 64}, build: func(b *onnx.Builder, x string) []string { return []string{x, mat(b, "w", 64, 32)} }},
		{op: "Gemm", shape: []int64{16, 64}, build: func(b *onnx.Builder, x string) []string { return []string{x, mat(b, "w", 64, 32), vec(b, "b", 32, 0)} }},
		{op: "LayerNormalization", shape: []int64{2, 16, 64}, build: func(b *onnx.Builder, x string) []string { return []string{x, vec(b, "g", 64, 1), vec(b, "b", 64, 0)} }},
		{op: "Conv", shape: nchw, build: func(b *onnx.Builder, x string) []string {
			return []string{x, mat(b, "w", 8, 8, 3, 3), vec(b, "b", 8, 0)}
		},
			attrs: []*onnxpb.AttributeProto{onnx.AttrInts("pads", 1, 1, 1, 1)}},
		{op: "MaxPool", shape: nchw, build: func(b *onnx.Builder, x string) []string { return []string{x} }, attrs: []*onnxpb.AttributeProto{onnx.AttrInts("kernel_shape", 2, 2)}},
		{op: "AveragePool", shape: nchw, build: func(b *onnx.Builder, x string) []string { return []string{x} }, attrs: []*onnxpb.AttributeProto{onnx.AttrInts("kernel_shape", 2, 2)}},
		{op: "GlobalAveragePool", shape: nchw, build: func(b *onnx.Builder, x string) []string { return []string{x} }},
		{op: "BatchNormalization", shape: nchw, build: func(b *onnx.Builder, x string) []string {
			return []string{x, vec(b, "s", 8, 1), vec(b, "b", 8, 0), vec(b, "m", 8, 0), vec(b, "v", 8, 1)}
		}},
		{op: "Clip", shape: nchw, build: func(b *onnx.Builder, x string) []string {
			return []string{x, b.AddInitializerFloat32(b.Unique("lo"), nil, []float32{0}), b.AddInitializerFloat32(b.Unique("hi"), nil, []float32{6})}
		}},
		{op: "ReduceMean", shape: []int64{2, 16, 64}, build: func(b *onnx.Builder, x string) []string { return []string{x} },
			attrs: []*onnxpb.AttributeProto{onnx.AttrInts("axes", -1)}},
		{op: "Transpose", shape: []int64{2, 16, 64}, build: func(b *onnx.Builder, x string) []string { return []string{x} }, attrs: []*onnxpb.AttributeProto{onnx.AttrInts("perm", 0, 2, 1)}},
		{op: "SkipLayerNormalization", domain: onnx.MicrosoftDomain, shape: []int64{2, 16, 64}, build: func(b *onnx.Builder, x string) []string {
			return []string{x, mat(b, "skip", 2, 16, 64), vec(b, "g", 64, 1), vec(b, "b", 64, 0)}
		}},
		{op: "BiasGelu", domain: onnx.MicrosoftDomain, shape: []int64{2, 16, 64}, build: func(b *onnx.Builder, x string) []string { return []string{x, vec(b, "b", 64, 0)} }},
		{op: "Gelu", domain: onnx.MicrosoftDomain, shape: []int64{2, 16, 64}, build: func(b *onnx.Builder, x string) []string { return []string{x} }},
		{op: "QuickGelu", domain: onnx.MicrosoftDomain, shape: []int64{2, 16, 64}, build: func(b *onnx.Builder, x string) []string { return []string{x} }},
		{op: "FastGelu", domain: onnx.MicrosoftDomain, shape: []int64{2, 16, 64}, build: func(b *onnx.Builder, x string) []string { return []string{x, vec(b, "b", 64, 0)} }},
		{op: "MultiHeadAttention", domain: onnx.MicrosoftDomain, shape: []int64{2, 16, 64}, build: func(b *onnx.Builder, x string) []string {
			return []string{x, mat(b, "k", 2, 16, 64), mat(b, "v", 2, 16, 64)}
		}, attrs: []*onnxpb.AttributeProto{onnx.AttrInt("num_heads", 4)}},
	}
	return ps
}

// build returns the probe's float32 model.
func (p opProbe) model(t testing.TB) *onnx.Model {
	t.Helper()
	b := onnx.NewBuilder("probe", 17)
	if p.domain != "" {
		b.ImportOpset(p.domain, 1)
	}
	dims := make([]any, len(p.shape))
	for i, d := range p.shape {
		dims[i] = d
	}
	x := b.AddInput("x", onnx.Float, onnx.Dims(dims...))
	ins := p.build(b, x)
	var n *onnx.Node
	if p.domain != "" {
		n = b.AddNodeDomain(p.domain, p.op, ins, nil, p.attrs...)
	} else {
		n = b.AddNode(p.op, ins, nil, p.attrs...)
	}
	n.Named("probe_" + p.op)
	b.AddOutput(n.Out(), onnx.Float, nil)
	m, err := b.Build()
	if err != nil {
		t.Fatalf("%s: %v", p.op, err)
	}
	return m
}

// profiledTypes runs the model at path once under ONNX Runtime's profiler
// (graph optimizations off, so its own fusions do not rename nodes) and
// returns, per node that ran, the element types of its inputs.
func profiledTypes(t testing.TB, path string, optimize bool) map[string][]string {
	t.Helper()
	cfg := ort.SessionConfig{IntraOpThreads: 1, DisableOptimizations: !optimize, ProfilePrefix: filepath.Join(t.TempDir(), "p")}
	bd, err := ort.NewBound(path, cfg, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer bd.Close()
	if err := bd.Run(); err != nil {
		t.Fatal(err)
	}
	prof, err := bd.EndProfile()
	if err != nil {
		t.Fatal(err)
	}
	data := prof.Raw
	var events []struct {
		Cat, Name string
		Args      struct {
			Inputs []map[string]json.RawMessage `json:"input_type_shape"`
		} `json:"args"`
	}
	if err := json.Unmarshal(data, &events); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, e := range events {
		if e.Cat != "Node" {
			continue
		}
		name := strings.TrimSuffix(e.Name, "_kernel_time")
		for _, in := range e.Args.Inputs {
			for ty := range in {
				if !slices.Contains(out[name], ty) {
					out[name] = append(out[name], ty)
				}
			}
		}
	}
	return out
}

// FP16 operator coverage: quant's table of the operators ONNX Runtime's
// CPU execution provider has float16 kernels for is exactly what this
// ONNX Runtime does. Each probed operator, converted to float16 by the
// fp16 transform, runs on float16 inputs when the table lists it, and on
// float32 inputs behind the Casts ONNX Runtime inserts when it does not.
// An ONNX Runtime that adds or drops a kernel fails here: update the table.
func TestFP16CPUKernelTable(t *testing.T) {
	requireORT(t)
	for _, p := range opProbes() {
		t.Run(p.op, func(t *testing.T) {
			m := p.model(t)
			// A node without weights counts as not converted; its
			// activations are float16 all the same.
			if _, err := quant.Apply(context.Background(), m, quant.MustParseSpec("fp16"), quant.Options{}); err != nil && !errors.Is(err, quant.ErrNothingConverted) {
				t.Fatal(err)
			}
			types := profiledTypes(t, saveModel(t, m, "probe.onnx"), false)
			// An operator without a kernel of its own may run as its
			// function's decomposition, under other names: no float16 kernel.
			got := types["probe_"+p.op]
			ranFP16 := slices.Contains(got, "float16")
			if want := quant.CPUHasFP16Kernel(p.op); ranFP16 != want {
				t.Errorf("%s ran on %v; the table says float16 kernel %v", p.op, got, want)
			}
		})
	}
}

// With fp16:ep=cpu no float16 node is left on a kernel the CPU
// execution provider lacks: ONNX Runtime inserts no Cast of its own
// (InsertedPrecisionFreeCast) into the fused ViT, the CNNs or the
// MobileViT, and every node the transform converted runs on float16.
func TestFP16ForCPUNeedsNoInsertedCasts(t *testing.T) {
	requireORT(t)
	for _, name := range []string{"vit", "cnn"} {
		t.Run(name, func(t *testing.T) {
			var m *onnx.Model
			if name == "vit" {
				m = fusedTinyViT(t)
			} else {
				m = tinyCNN(t)
			}
			plain := m.Clone()
			if _, err := quant.Apply(context.Background(), plain, quant.MustParseSpec("fp16"), quant.Options{}); err != nil {
				t.Fatal(err)
			}
			r, err := quant.Apply(context.Background(), m, quant.MustParseSpec("fp16:ep=cpu"), quant.Options{})
			if err != nil {
				t.Fatal(err)
			}
			inserted := func(types map[string][]string) []string {
				var out []string
				for n := range types {
					if strings.HasPrefix(n, "InsertedPrecisionFreeCast_") {
						out = append(out, n)
					}
				}
				return out
			}
			if got := inserted(profiledTypes(t, saveModel(t, plain, "plain.onnx"), true)); len(got) == 0 {
				t.Errorf("plain fp16 needed no inserted Casts: the probe model does not exercise the table")
			}
			types := profiledTypes(t, saveModel(t, m, "cpu.onnx"), true)
			if got := inserted(types); len(got) > 0 {
				t.Errorf("fp16:ep=cpu: ONNX Runtime inserted %d Casts: %v", len(got), got)
			}
			if r.NodesConverted == 0 {
				t.Errorf("fp16:ep=cpu converted nothing: %+v", r)
			}
		})
	}
}

// fusedTinyViT is quanttest's tiny ViT through models/optimize.
func fusedTinyViT(t testing.TB) *onnx.Model {
	t.Helper()
	m := buildViT(t, tinyCfg())
	if _, err := optimize.Apply(context.Background(), m, optimize.Default()); err != nil {
		t.Fatal(err)
	}
	return m
}

// tinyCNN is quanttest's small CNN (Conv, BatchNorm folded, ReLU, pools,
// a Gemm head).
func tinyCNN(t testing.TB) *onnx.Model {
	t.Helper()
	m, err := quanttest.CNN(3, 10)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fp16:storage halves the weights and computes in float32: the file's
// tensors shrink to at most 0.51 of FP32's, the outputs match FP32's
// within float16 rounding of the weights, the report says every node
// still computes in float32, and ONNX Runtime folds the weight Casts when
// the session starts: no Cast runs during inference, and the kernels that
// run are FP32's, node for node.
func TestFP16StorageCastsOnceAtLoad(t *testing.T) {
	requireORT(t)
	cfg := tinyCfg()
	src := fusedTinyViT(t)
	m := src.Clone()
	r, err := quant.Apply(context.Background(), m, quant.MustParseSpec("fp16:storage"), quant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.NodesConverted != 0 || r.NodesStoredFP16 == 0 || len(r.Rewrites) == 0 || !strings.Contains(r.Rewrites[len(r.Rewrites)-1], "computes in float32") {
		t.Errorf("report: converted %d, stored %d, rewrites %q", r.NodesConverted, r.NodesStoredFP16, r.Rewrites)
	}
	if f := float64(r.BytesAfter) / float64(r.BytesBefore); f > 0.51 {
		t.Errorf("tensor bytes %.3f of FP32's, want ≤ 0.51", f)
	}
	path := saveModel(t, m, "storage.onnx")
	for node := range profiledTypes(t, path, true) {
		if strings.Contains(node, "Cast") {
			t.Errorf("a Cast ran during inference (%s): the weight casts were not folded at load", node)
		}
	}
	// The session ONNX Runtime builds runs exactly FP32's kernels, so its
	// speed is FP32's: on ViT and on CNN graphs (where the folded weights
	// must still reach the NCHWc convolutions).
	for _, tc := range []struct {
		name     string
		fp32, fp *onnx.Model
	}{{"vit", src, m}, {"cnn", tinyCNN(t), nil}} {
		if tc.fp == nil {
			tc.fp = tc.fp32.Clone()
			if _, err := quant.Apply(context.Background(), tc.fp, quant.MustParseSpec("fp16:storage"), quant.Options{}); err != nil {
				t.Fatal(err)
			}
		}
		want := ranOps(t, saveModel(t, tc.fp32, tc.name+"-fp32.onnx"))
		got := ranOps(t, saveModel(t, tc.fp, tc.name+"-storage.onnx"))
		if len(want) == 0 || !maps.Equal(got, want) {
			t.Errorf("%s: fp16:storage ran %v, FP32 ran %v", tc.name, got, want)
		}
		t.Logf("%s: both ran %v", tc.name, got)
	}
	in := tinyInputs(cfg, 8)
	ref := runModel(t, saveModel(t, src, "fp32.onnx"), in, vitShape(cfg), 4)
	got := runModel(t, path, in, vitShape(cfg), 4)
	res, err := fidelity.Compare(ref, got)
	if err != nil {
		t.Fatal(err)
	}
	if res.CosineMin < 0.9999 {
		t.Errorf("fp16:storage cosine min %.6f < 0.9999", res.CosineMin)
	}
}
