package sensitivity

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/ort"
)

func requireORT(t *testing.T) {
	t.Helper()
	if _, err := ort.Init(""); err != nil {
		if os.Getenv("QUANTSCOPE_REQUIRE_ORT") != "" {
			t.Fatalf("ONNX Runtime required but not loaded: %v", err)
		}
		t.Skipf("ONNX Runtime not installed (run `make setup`): %v", err)
	}
}

// fragileModel is a three-layer network whose middle layer is known to be
// fragile under 4-bit quantization: every column of its weight has one
// huge value in a row whose input is always zero. The outlier carries no
// signal but sets the scale of its 32-row block, so 4-bit rounding wipes
// out the small weights that carry everything. fc1 and fc3 are ordinary.
func fragileModel(t *testing.T) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	normal := func(n int, sd float64) []float32 {
		w := make([]float32, n)
		for i := range w {
			w[i] = float32(rng.NormFloat64() * sd)
		}
		return w
	}
	w1 := normal(48*64, 0.15)
	for r := 0; r < 48; r++ {
		w1[r*64] = 0 // hidden unit 0 is always 0
	}
	w2 := normal(64*64, 0.12)
	for c := 0; c < 64; c++ {
		w2[c] = 40 // row 0: the outlier, multiplied by the zero unit
	}
	w3 := normal(64*10, 0.15)
	b := onnx.NewBuilder("fragile", 17)
	b.AddInput("pixel_values", onnx.Float, onnx.Dims("batch", 3, 4, 4))
	b.AddInitializerFloat32("fc1.weight", []int64{48, 64}, w1)
	b.AddInitializerFloat32("fragile.weight", []int64{64, 64}, w2)
	b.AddInitializerFloat32("fc3.weight", []int64{64, 10}, w3)
	b.AddNode("Flatten", []string{"pixel_values"}, []string{"x"}).Named("/Flatten")
	b.AddNode("MatMul", []string{"x", "fc1.weight"}, []string{"h1"}).Named("/fc1/MatMul")
	b.AddNode("Relu", []string{"h1"}, []string{"a1"}).Named("/act1/Relu")
	b.AddNode("MatMul", []string{"a1", "fragile.weight"}, []string{"h2"}).Named("/fragile/MatMul")
	b.AddNode("Relu", []string{"h2"}, []string{"a2"}).Named("/act2/Relu")
	b.AddNode("MatMul", []string{"a2", "fc3.weight"}, []string{"logits"}).Named("/fc3/MatMul")
	b.AddOutput("logits", onnx.Float, onnx.Dims("batch", 10))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fragile.onnx")
	if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

func inputs(n int) Inputs {
	rng := rand.New(rand.NewPCG(9, 9))
	var in Inputs
	for i := 0; i < n; i++ {
		x := make([]float32, 48)
		for j := range x {
			x[j] = float32(rng.NormFloat64())
		}
		in.Samples = append(in.Samples, x)
	}
	in.Source = "test inputs"
	return in
}

// The layer built to be fragile ranks first, far ahead of the others, by
// layer and by block.
func TestFragileLayerRanksFirst(t *testing.T) {
	requireORT(t)
	path := fragileModel(t)
	for _, by := range []Granularity{ByLayer, ByBlock} {
		var calls int
		r, err := Run(context.Background(), Config{Model: path, Precision: quant.MustParseSpec("int4"), By: by, Inputs: inputs(12), Batch: 4,
			Session: ort.SessionConfig{IntraOpThreads: 1}, Progress: func(int, int, string) { calls++ }})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Candidates) != 3 || calls != 4 {
			t.Fatalf("%s: %d candidates, %d progress calls", by, len(r.Candidates), calls)
		}
		first, second := r.Candidates[0], r.Candidates[1]
		if first.Name != "fragile" || first.Loss < 10*second.Loss {
			t.Errorf("%s: ranking %s (loss %.2g), %s (%.2g), %s: want fragile first by 10×", by, first.Name, first.Loss, second.Name, second.Loss, r.Candidates[2].Name)
		}
		if first.Layers[0] != "fragile" || first.Params != 64*64 {
			t.Errorf("%s: candidate %+v", by, first)
		}
	}
}

// cloneFor shares the tensors the quantizer does not touch and leaves the
// model as it was.
func TestCloneForLeavesModel(t *testing.T) {
	m, err := onnx.Load(fragileModel(t))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m.Proto)
	layers := quant.Layers(m)
	for _, l := range layers {
		var ex []string
		for _, o := range layers {
			if o.Output != l.Output {
				ex = append(ex, o.Output)
			}
		}
		v := cloneFor(m, map[string]bool{l.Output: true})
		if _, err := quant.Apply(context.Background(), v, quant.MustParseSpec("int4"), quant.Options{Exclude: ex}); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m.Proto)
	if !bytes.Equal(before, after) {
		t.Fatal("quantizing clones changed the source model")
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"fp16":     {Precision: quant.MustParseSpec("fp16"), By: ByLayer, Inputs: inputs(1)},
		"by":       {Precision: quant.MustParseSpec("int4"), By: "row", Inputs: inputs(1)},
		"no input": {Precision: quant.MustParseSpec("int4"), By: ByLayer},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
