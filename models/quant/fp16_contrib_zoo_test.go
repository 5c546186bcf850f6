package quant_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/zoo"
)

// TestFP16FusedDeiTTiny optimizes the zoo's deit-tiny (its biases and
// LayerNorm parameters perturbed, so that the fused operators' bias,
// gamma and beta inputs matter) with every fusion
// (optimize.Default, what optimize.For("fp16") returns) and converts it to
// fp16: the fused operators (12 MultiHeadAttention, 25
// SkipLayerNormalization, 12 BiasGelu) are float16 and counted so, the
// only Casts are at the graph's input and output (no Cast between two
// fused operators, nor next to any converted node), and ONNX Runtime's
// CPU execution provider runs it within cosine 0.9999 of the unfused
// FP32 model on seeded images.
func TestFP16FusedDeiTTiny(t *testing.T) {
	spec, ok := zoo.Lookup("deit-tiny")
	if !ok {
		t.Fatal("deit-tiny is not in the zoo")
	}
	src, err := zoo.Build(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	perturbVectors(t, src, 5)
	opts, ok := optimize.For("fp16")
	if !ok {
		t.Fatal("optimize.For(fp16) does not optimize")
	}
	fused := src.Clone()
	or, err := optimize.Apply(context.Background(), fused, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("optimize: %s", or)
	m := fused.Clone()
	r, err := quant.Apply(context.Background(), m, quant.MustParseSpec("fp16"), quant.Options{})
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]int{"MultiHeadAttention": 12, "SkipLayerNormalization": 25, "BiasGelu": 12}
	for op, n := range want {
		key := onnx.OpKey(onnx.MicrosoftDomain, op)
		if got := r.Count(key, quant.PrecFP16); got != n || r.Count(key, quant.PrecFP32) != 0 {
			t.Errorf("report: %s in fp16 %d (want %d), in fp32 %d", key, got, n, r.Count(key, quant.PrecFP32))
		}
	}
	if r.NodesKept != 0 || len(r.Kept) != 0 {
		t.Errorf("%d nodes kept in fp32: %v", r.NodesKept, r.Kept)
	}

	types := quant.InferTypesForTest(m)
	g := m.Graph()
	graphIn, graphOut := map[string]bool{}, map[string]bool{}
	for _, vi := range g.GetInput() {
		graphIn[vi.GetName()] = true
	}
	for _, vi := range g.GetOutput() {
		graphOut[vi.GetName()] = true
	}
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
	}
	contrib := map[string]int{}
	for _, n := range g.GetNode() {
		switch {
		case n.GetDomain() == onnx.MicrosoftDomain:
			contrib[n.GetOpType()]++
			// Every float value in and out of a fused operator is
			// float16; none comes from a Cast.
			for _, list := range [][]string{n.GetInput(), n.GetOutput()} {
				for _, v := range list {
					if v == "" {
						continue
					}
					if dt := types[v]; dt != onnx.Float16 {
						t.Errorf("%s %s: %s is %v", n.GetOpType(), n.GetName(), v, dt)
					}
				}
			}
			for _, in := range n.GetInput() {
				if p := producer[in]; p != nil && p.GetOpType() == "Cast" {
					t.Errorf("%s %s reads %s from a Cast", n.GetOpType(), n.GetName(), in)
				}
			}
		case n.GetOpType() == "Cast":
			// Nothing is kept in float32, so Casts are only at the
			// boundaries.
			if !graphIn[n.GetInput()[0]] && !graphOut[n.GetOutput()[0]] {
				p := producer[n.GetInput()[0]]
				t.Errorf("Cast %s inside the graph (after %s)", n.GetName(), nodeOp(p))
			}
		}
	}
	for op, n := range want {
		if contrib[op] != n {
			t.Errorf("%d %s nodes in the fp16 graph, want %d", contrib[op], op, n)
		}
	}
	if c := countNodes(m, "Cast"); c != 2 {
		t.Errorf("%d Casts, want 2 (graph input and output)", c)
	}

	requireORT(t)
	in, err := quant.ImageInputOf(src)
	if err != nil {
		t.Fatal(err)
	}
	var images [][]float32
	for i := range 4 {
		images = append(images, quant.SyntheticImage(in, quant.ImageNetPreprocess, 77, i))
	}
	shape := in.Shape(1)[1:]
	start := time.Now()
	ref := runModel(t, saveModel(t, src, "deit-tiny.onnx"), images, shape, 2)
	t.Logf("fp32 unfused: %v", time.Since(start))
	start = time.Now()
	got := runModel(t, saveModel(t, m, "deit-tiny-fused-fp16.onnx"), images, shape, 2)
	t.Logf("fp16 fused: %v", time.Since(start))
	f, err := fidelity.Compare(ref, got)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fused fp16 vs unfused fp32 on ORT CPU: %s", f)
	// For reference: the unfused model's fp16 variant, what fp16 got
	// before the fused operators converted.
	plain := src.Clone()
	if _, err := quant.Apply(context.Background(), plain, quant.MustParseSpec("fp16"), quant.Options{}); err != nil {
		t.Fatal(err)
	}
	if fu, err := fidelity.Compare(ref, runModel(t, saveModel(t, plain, "deit-tiny-fp16.onnx"), images, shape, 2)); err == nil {
		t.Logf("unfused fp16 vs unfused fp32 on ORT CPU: %s", fu)
	}
	// Top-1 is not asserted: the zoo's random-weight logits are nearly
	// tied.
	if f.CosineMin < 0.9999 {
		t.Errorf("fused fp16 vs fp32: %s, want cosine ≥ 0.9999", f)
	}
}

func nodeOp(n *onnxpb.NodeProto) string {
	if n == nil {
		return "a graph input or initializer"
	}
	return n.GetOpType() + " " + n.GetName()
}

// perturbVectors adds seeded noise (σ 0.2) to m's 1-D float initializers:
// biases and LayerNorm scales and shifts, zeros and ones in the zoo's
// synthetic weights.
func perturbVectors(t testing.TB, m *onnx.Model, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	for i, init := range m.Graph().GetInitializer() {
		if onnx.DataTypeOf(init) != onnx.Float || len(init.GetDims()) != 1 {
			continue
		}
		v, err := onnx.TensorFloat32(init)
		if err != nil {
			t.Fatal(err)
		}
		for j := range v {
			v[j] += float32(r.NormFloat64() * 0.2)
		}
		nt, err := onnx.NewTensorFloat32(init.GetName(), init.GetDims(), v)
		if err != nil {
			t.Fatal(err)
		}
		m.Graph().Initializer[i] = nt
	}
}
