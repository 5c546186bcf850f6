package optimize_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"github.com/quantscope/quantscope/models/optimize"
	"github.com/quantscope/quantscope/models/quant"
)

func TestFor(t *testing.T) {
	for _, tc := range []struct {
		kind    string
		ok      bool
		fusions bool
	}{
		{"fp32", true, true}, {"int8", true, true}, {"int4", true, true},
		{"int8-static", true, true}, {"fp16", true, true}, {"bf16", false, false},
	} {
		opts, ok := optimize.For(tc.kind)
		if ok != tc.ok {
			t.Errorf("%s: ok %v", tc.kind, ok)
			continue
		}
		if !ok {
			continue
		}
		m := buildTiny(t, familyCases()[0])
		opt, r := apply(t, m, opts)
		if (r.Fusions() > 0) != tc.fusions {
			t.Errorf("%s: %s", tc.kind, r)
		}
		if tc.kind != "fp16" {
			continue
		}
		// fp16 gets every fusion, and the fp16 transform converts the
		// fused com.microsoft operators with the rest: nothing is left in
		// float32.
		if r.Count(optimize.Attention) != 2 || r.Count(optimize.SkipLayerNorm) != 5 || r.Count(optimize.BiasGelu) != 2 ||
			r.Count(optimize.PruneTokens) == 0 || opt.Opset(onnx.MicrosoftDomain) != 1 {
			t.Errorf("fp16: %s, com.microsoft imported %d", r, opt.Opset(onnx.MicrosoftDomain))
		}
		q, qr := quantize(t, opt, "fp16")
		for op, n := range map[string]int{"MultiHeadAttention": 2, "SkipLayerNormalization": 5, "BiasGelu": 2} {
			key := onnx.OpKey(onnx.MicrosoftDomain, op)
			if qr.Count(key, quant.PrecFP16) != n || qr.Count(key, quant.PrecFP32) != 0 {
				t.Errorf("fp16 report: %s fp16 %d (want %d), fp32 %d", key, qr.Count(key, quant.PrecFP16), n, qr.Count(key, quant.PrecFP32))
			}
		}
		if qr.NodesKept != 0 || ops(q)["Cast"] != 2 {
			t.Errorf("fp16: %d nodes kept in float32 %v, %d Casts (want the input's and the output's)", qr.NodesKept, qr.Kept, ops(q)["Cast"])
		}
		requireORT(t)
		in := randomInput([]int64{2, 3, 32, 32}, 6)
		cos, maxAbs := compare(run(t, save(t, m, "fp32.onnx"), in, false), run(t, save(t, q, "fp16.onnx"), in, false))
		t.Logf("fp16 of the optimized model vs fp32: cosine %.6f, max abs %.3g", cos, maxAbs)
		if cos < 0.999 {
			t.Errorf("fp16: cosine %.6f", cos)
		}
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "vit.onnx")
	if err := onnx.Save(buildTiny(t, familyCases()[0]), src, onnx.SaveOptions{ExternalData: true}); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "vit-opt.onnx")
	r, err := optimize.File(context.Background(), src, dst, optimize.Default())
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Load(dst)
	if err != nil {
		t.Fatal(err)
	}
	if r.Count(optimize.Attention) != 2 || ops(m)["com.microsoft.MultiHeadAttention"] != 2 {
		t.Fatalf("%s, ops %v", r, ops(m))
	}
	if _, err := os.Stat(dst + ".data"); err != nil {
		t.Errorf("external data not kept: %v", err)
	}
	var meta string
	for _, p := range m.Proto.GetMetadataProps() {
		if p.GetKey() == optimize.MetaOptimize {
			meta = p.GetValue()
		}
	}
	if !strings.HasPrefix(meta, optimize.Version+" ") || !strings.Contains(meta, "attention=2") {
		t.Errorf("metadata %q", meta)
	}
	// A CNN: nothing to do, nothing written.
	cnn := filepath.Join(dir, "cnn.onnx")
	if err := onnx.Save(buildTiny(t, familyCases()[7]), cnn, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "cnn-opt.onnx")
	if r, err := optimize.File(context.Background(), cnn, out, optimize.Default()); err != nil || r.Changed() {
		t.Fatalf("%v %v", r, err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was written for an unchanged model: %v", err)
	}
	if _, err := optimize.File(context.Background(), filepath.Join(dir, "missing.onnx"), out, optimize.Default()); err == nil {
		t.Error("no error for a missing file")
	}
}

func TestApplyErrors(t *testing.T) {
	if _, err := optimize.Apply(context.Background(), nil, optimize.Default()); !errors.Is(err, optimize.ErrNoGraph) {
		t.Errorf("nil model: %v", err)
	}
	if _, err := optimize.Apply(context.Background(), &onnx.Model{}, optimize.Default()); !errors.Is(err, optimize.ErrNoGraph) {
		t.Errorf("empty model: %v", err)
	}
	m := buildTiny(t, familyCases()[0])
	if _, err := optimize.Apply(context.Background(), m.Clone(), optimize.Options{AttentionOp: "Flash"}); err == nil {
		t.Error("unknown attention operator accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := optimize.Apply(ctx, m.Clone(), optimize.Default()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// Malformed graphs are errors or left alone, never panics: nodes without
// inputs, attributes of the wrong kind, dangling values.
func TestMalformedGraphs(t *testing.T) {
	base := attnBlock{}.build(t)
	mutations := map[string]func(m *onnx.Model){
		"nodes-lose-inputs": func(m *onnx.Model) {
			for _, n := range m.Graph().GetNode() {
				if len(n.Input) > 1 {
					n.Input = n.Input[:1]
				}
			}
		},
		"nodes-lose-outputs": func(m *onnx.Model) {
			for _, n := range m.Graph().GetNode() {
				if n.GetOpType() == "Transpose" || n.GetOpType() == "Gather" {
					n.Output = nil
				}
			}
		},
		"attributes-dropped": func(m *onnx.Model) {
			for _, n := range m.Graph().GetNode() {
				n.Attribute = nil
			}
		},
		"constants-emptied": func(m *onnx.Model) {
			for _, tt := range m.Graph().GetInitializer() {
				tt.RawData = tt.RawData[:len(tt.RawData)/2]
			}
		},
		"no-opset": func(m *onnx.Model) { m.Proto.OpsetImport = nil },
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			m := base.Clone()
			mutate(m)
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("panic: %v", p)
				}
			}()
			_, _ = optimize.Apply(context.Background(), m, optimize.Default())
		})
	}
}

// Huge or negative sizes in attributes, initializer dims and declared
// shapes (a corrupt or hostile file) give an error or a report quickly:
// no loop runs over a size the data does not back.
func TestHugeSizesDoNotHang(t *testing.T) {
	seeds := []*onnx.Model{attnBlock{}.build(t), attnBlock{extract: "slice", head: true}.build(t), timmExport(t, true)}
	r := rand.New(rand.NewPCG(8, 9))
	sizes := []int64{1 << 40, -1 << 40, 1<<62 + 3, 0, -1}
	for i := range 300 {
		m := seeds[i%len(seeds)].Clone()
		g := m.Graph()
		for range 3 {
			switch r.IntN(3) {
			case 0:
				n := g.Node[r.IntN(len(g.Node))]
				for _, a := range n.GetAttribute() {
					if a.I != nil {
						v := sizes[r.IntN(len(sizes))]
						a.I = &v
					}
					for j := range a.Ints {
						a.Ints[j] = sizes[r.IntN(len(sizes))]
					}
					if a.GetT() != nil && len(a.GetT().Dims) > 0 {
						a.GetT().Dims[0] = sizes[r.IntN(len(sizes))]
					}
				}
			case 1:
				if len(g.Initializer) > 0 {
					init := g.Initializer[r.IntN(len(g.Initializer))]
					init.Dims = []int64{0, sizes[r.IntN(len(sizes))]}
				}
			case 2:
				if dims := g.Input[0].GetType().GetTensorType().GetShape().GetDim(); len(dims) > 0 {
					dims[r.IntN(len(dims))].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: sizes[r.IntN(len(sizes))]}
				}
			}
		}
		start := time.Now()
		_, _ = optimize.Apply(context.Background(), m, optimize.Default())
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("mutation %d: Apply took %v", i, d)
		}
	}
}
