package zoo

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// issueTable is the catalog of issue 3: published parameter counts and
// the tolerance of the builder's count.
var issueTable = []struct {
	name   string
	params int64
	tol    float64
}{
	{"vit-huge-14", 632_045_800, 0.005},
	{"vit-large-16", 304_326_632, 0.005},
	{"vit-base-16", 86_567_656, 0.005},
	{"vit-base-32", 88_224_232, 0.005},
	{"vit-base-16-384", 86_859_496, 0.005},
	{"dinov2-large", 303_228_928, 0.005},
	{"dinov2-base", 85_725_696, 0.005},
	{"dino-vitb16", 85_798_656, 0.005},
	{"dino-vits16", 21_665_664, 0.005},
	{"beit-large-16", 304_430_568, 0.005},
	{"beit-base-16", 86_530_984, 0.005},
	{"deit-base-distilled-384", 87_630_032, 0.005},
	{"deit-small-distilled", 22_436_432, 0.005},
	{"deit-tiny", 5_717_416, 0.005},
	{"mobilevit-small", 5_580_000, 0.03},
	{"mobilevit-xxs", 1_270_000, 0.03},
	{"deit-small", 22_050_664, 0.005},
	{"deit-base", 86_567_656, 0.005},
	{"deit-base-distilled", 87_338_192, 0.005},
	{"dinov2-small", 21_629_184, 0.005},
	{"clip-vit-b32", 87_849_216, 0.005},
	{"clip-vit-b16", 86_192_640, 0.005},
	{"resnet-50", 25_557_032, 0.005},
	{"mobilenet-v2", 3_504_872, 0.005},
}

func TestCatalogParamsMatchIssueTable(t *testing.T) {
	if got, want := len(Catalog()), len(issueTable); got != want {
		t.Fatalf("catalog has %d models, the issue lists %d", got, want)
	}
	for i, tt := range issueTable {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := Lookup(tt.name)
			if !ok {
				t.Fatalf("%s not in the catalog", tt.name)
			}
			if Catalog()[i].Name != tt.name {
				t.Errorf("catalog position %d is %s, want %s (issue order)", i, Catalog()[i].Name, tt.name)
			}
			a, err := Analyze(s)
			if err != nil {
				t.Fatal(err)
			}
			if rel := math.Abs(float64(a.Params-tt.params)) / float64(tt.params); rel > tt.tol {
				t.Errorf("builder counts %d parameters, published %d: off by %.3f%% (tolerance %.1f%%)",
					a.Params, tt.params, 100*rel, 100*tt.tol)
			}
			if rel := math.Abs(float64(s.Params-tt.params)) / float64(tt.params); rel > tt.tol || s.Tolerance != tt.tol {
				t.Errorf("spec says %d params ±%g, issue %d ±%g", s.Params, s.Tolerance, tt.params, tt.tol)
			}
		})
	}
}

func TestCatalogSpecsAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Catalog() {
		if seen[s.Name] {
			t.Errorf("%s listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.Family == "" || s.Description == "" || s.Resolution <= 0 || s.Embed <= 0 || s.OutputDim <= 0 || s.GFLOPs <= 0 || s.Arch == nil {
			t.Errorf("%s: incomplete spec %+v", s.Name, s)
		}
		switch s.Output {
		case Logits:
			if s.Classes != 1000 || s.OutputDim != 1000 {
				t.Errorf("%s: logits with %d classes, output width %d", s.Name, s.Classes, s.OutputDim)
			}
		case Embeddings:
			if s.Classes != 0 {
				t.Errorf("%s: backbone with %d classes", s.Name, s.Classes)
			}
		default:
			t.Errorf("%s: output kind %q", s.Name, s.Output)
		}
		if s.Preprocess.Std[0] == 0 {
			t.Errorf("%s: no normalization", s.Name)
		}
	}
	// The normalization follows each family's reference preprocessing.
	want := map[string]string{"clip-vit-b32": "clip", "deit-tiny": "imagenet", "vit-base-16": "inception", "resnet-50": "imagenet", "mobilevit-xxs": "none"}
	for name, pre := range want {
		if s, _ := Lookup(name); s.Preprocess.Name != pre {
			t.Errorf("%s: preprocessing %q, want %q", name, s.Preprocess.Name, pre)
		}
	}
	if s, ok := Lookup("ViT-Base-16"); !ok || s.Name != "vit-base-16" {
		t.Errorf("Lookup is not case-insensitive")
	}
	if _, ok := Lookup("vit-base-17"); ok {
		t.Errorf("Lookup found a model that does not exist")
	}
	// Catalog returns a copy.
	c := Catalog()
	c[0].Name = "changed"
	if Catalog()[0].Name == "changed" {
		t.Errorf("Catalog exposes its backing array")
	}
}

// Published multiply-add counts (timm / torchvision model cards, GMACs per
// image); the spec's GFLOPs are twice these, within 3%.
func TestCatalogGFLOPs(t *testing.T) {
	for _, tt := range []struct {
		name  string
		gmacs float64
	}{
		{"vit-huge-14", 167.4},
		{"vit-large-16", 61.6},
		{"vit-base-16", 17.6},
		{"vit-base-32", 4.4},
		{"vit-base-16-384", 55.5},
		{"deit-tiny", 1.26},
		{"deit-small", 4.6},
		{"resnet-50", 4.09},
		{"mobilenet-v2", 0.30},
		{"mobilevit-small", 2.03},
	} {
		s, _ := Lookup(tt.name)
		if rel := math.Abs(s.GFLOPs-2*tt.gmacs) / (2 * tt.gmacs); rel > 0.03 {
			t.Errorf("%s: %.2f GFLOPs, published %.2f GMACs ×2 = %.2f", tt.name, s.GFLOPs, tt.gmacs, 2*tt.gmacs)
		}
	}
}

// DINOv2 builds at any multiple of 14; its position embedding follows.
func TestDINOv2Resolutions(t *testing.T) {
	s, _ := Lookup("dinov2-large")
	for _, tt := range []struct {
		res    int
		params int64
	}{{224, 303_228_928}, {518, 304_368_640}} {
		a, err := Analyze(s, WithResolution(tt.res))
		if err != nil {
			t.Fatal(err)
		}
		if a.Params != tt.params {
			t.Errorf("dinov2-large at %d px: %d params, want %d", tt.res, a.Params, tt.params)
		}
	}
	if _, err := Analyze(s, WithResolution(500)); err == nil || !strings.Contains(err.Error(), "multiple of the patch size 14") {
		t.Errorf("500 px: err %v, want a multiple-of-14 error", err)
	}
}

func TestAnalyzeRejectsBadOptions(t *testing.T) {
	vit, _ := Lookup("deit-tiny")
	cnn, _ := Lookup("resnet-50")
	tests := []struct {
		name string
		spec Spec
		opts []Option
		want string
	}{
		{"opset too old", vit, []Option{WithOpset(13)}, "opset 13 not supported"},
		{"opset too new", vit, []Option{WithOpset(99)}, "opset 99 not supported"},
		{"patch does not divide", vit, []Option{WithResolution(230)}, "not a multiple of the patch size 16"},
		{"cnn resolution", cnn, []Option{WithResolution(100)}, "not a multiple of 32"},
		{"huge resolution", vit, []Option{WithResolution(1 << 20)}, "beyond 4096"},
		{"heads", Spec{Name: "x", Resolution: 32, Arch: ViTConfig{Dim: 30, Depth: 1, Heads: 4, MLPDim: 8, Patch: 8}}, nil, "does not divide into 4 heads"},
		{"no arch", Spec{Name: "x", Resolution: 32}, nil, "no architecture"},
		{"distilled without head", Spec{Name: "x", Resolution: 32, Arch: ViTConfig{Flavor: FlavorDeiTDistilled, Dim: 8, Depth: 1, Heads: 2, MLPDim: 8, Patch: 8}}, nil, "needs a classifier head"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Analyze(tt.spec, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
			if _, err := Build(context.Background(), tt.spec, tt.opts...); err == nil {
				t.Errorf("Build accepted it")
			}
		})
	}
}

// buildSmall builds a catalog model in memory, failing the test on error.
func buildSmall(t testing.TB, name string, opts ...Option) *onnx.Model {
	t.Helper()
	s, ok := Lookup(name)
	if !ok {
		t.Fatalf("no model %s", name)
	}
	m, err := Build(context.Background(), s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The built graph holds exactly the parameters Analyze counts, and
// declares the input and output the profiler expects.
func TestBuiltGraphMatchesAnalysis(t *testing.T) {
	for _, name := range []string{"deit-tiny", "mobilenet-v2", "mobilevit-xxs", "dinov2-small", "clip-vit-b32", "beit-base-16"} {
		t.Run(name, func(t *testing.T) {
			s, _ := Lookup(name)
			a, _ := Analyze(s)
			m := buildSmall(t, name)
			st := m.Stats()
			if st.ParamsByType[onnx.Float] != a.GraphParams {
				t.Errorf("graph has %d float parameters, analysis says %d", st.ParamsByType[onnx.Float], a.GraphParams)
			}
			if st.BytesByType[onnx.Float] != a.WeightBytes {
				t.Errorf("graph has %d weight bytes, analysis says %d", st.BytesByType[onnx.Float], a.WeightBytes)
			}
			g := m.Graph()
			if len(g.GetInput()) != 1 || describeValue(g.GetInput()[0]) != `"pixel_values" FLOAT [batch, 3, `+itoa(s.Resolution)+`, `+itoa(s.Resolution)+`]` {
				t.Errorf("inputs: %v", g.GetInput())
			}
			wantOut := `"` + string(s.Output) + `" FLOAT [batch, ` + itoa(s.OutputDim) + `]`
			if len(g.GetOutput()) != 1 || describeValue(g.GetOutput()[0]) != wantOut {
				t.Errorf("output %s, want %s", describeValue(g.GetOutput()[0]), wantOut)
			}
			if got := m.Opset(""); got != DefaultOpset {
				t.Errorf("opset %d", got)
			}
			meta := map[string]string{}
			for _, e := range m.Proto.GetMetadataProps() {
				meta[e.GetKey()] = e.GetValue()
			}
			if meta["quantscope.model"] != name || meta["quantscope.resolution"] != itoa(s.Resolution) {
				t.Errorf("metadata %v", meta)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// The graphs use the operators torch.onnx.export writes for these models.
func TestGraphOperators(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		want    map[string]int // op → count (-1: at least one)
		without []string
	}{
		{"deit-tiny", nil, map[string]int{"Conv": 1, "LayerNormalization": 25, "Softmax": 12, "Erf": 12, "MatMul": 12*4 + 2*12, "Gemm": 1, "Expand": 1, "Concat": 2}, []string{"Gelu", "Sigmoid"}},
		{"deit-tiny", []Option{WithOpset(20)}, map[string]int{"Gelu": 12}, []string{"Erf"}},
		{"deit-small-distilled", nil, map[string]int{"Gemm": 2, "Expand": 2, "Div": -1}, nil},
		{"clip-vit-b32", nil, map[string]int{"Sigmoid": 12, "LayerNormalization": 2*12 + 2}, []string{"Erf", "Gemm"}},
		{"beit-base-16", nil, map[string]int{"ReduceMean": 1, "Gather": 12 + 12*3}, nil},
		{"resnet-50", nil, map[string]int{"Conv": 53, "MaxPool": 1, "GlobalAveragePool": 1, "Gemm": 1, "Relu": 49}, []string{"BatchNormalization"}},
		{"mobilenet-v2", nil, map[string]int{"Conv": 52, "Clip": 35, "Add": 10}, []string{"BatchNormalization"}},
		{"mobilevit-xxs", nil, map[string]int{"Softmax": 9, "LayerNormalization": 2*9 + 3}, []string{"BatchNormalization", "Erf"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := Lookup(tt.name)
			o := newOptions(tt.opts)
			n, err := emit(s, o, true)
			if err != nil {
				t.Fatal(err)
			}
			ops := map[string]int{}
			for _, nd := range n.b.Graph().GetNode() {
				ops[nd.GetOpType()]++
			}
			for op, c := range tt.want {
				if (c < 0 && ops[op] == 0) || (c >= 0 && ops[op] != c) {
					t.Errorf("%s: %d nodes, want %d", op, ops[op], c)
				}
			}
			for _, op := range tt.without {
				if ops[op] != 0 {
					t.Errorf("%s: %d nodes, want none", op, ops[op])
				}
			}
		})
	}
	// From opset 18 ReduceMean takes axes as an input.
	s, _ := Lookup("beit-base-16")
	n, _ := emit(s, newOptions([]Option{WithOpset(18)}), true)
	for _, nd := range n.b.Graph().GetNode() {
		if nd.GetOpType() == "ReduceMean" && (len(nd.GetInput()) != 2 || len(nd.GetAttribute()) != 1) {
			t.Errorf("opset 18 ReduceMean: inputs %v attributes %v", nd.GetInput(), nd.GetAttribute())
		}
	}
}

// Weights follow the reference initialization: truncated normal σ=0.02
// for linear weights, zero biases, LayerNorm γ=1 and β=0.
func TestWeightInitialization(t *testing.T) {
	m := buildSmall(t, "deit-tiny")
	inits := map[string]*onnxpb.TensorProto{}
	for _, tp := range m.Graph().GetInitializer() {
		inits[tp.GetName()] = tp
	}
	get := func(name string) []float32 {
		tp, ok := inits[name]
		if !ok {
			t.Fatalf("no initializer %s", name)
		}
		v, err := onnx.TensorFloat32(tp)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	w := get("blocks.3.mlp.fc1.weight")
	var sum, sq float64
	for _, v := range w {
		if math.Abs(float64(v)) > 0.04+1e-7 {
			t.Fatalf("value %g beyond the ±2σ truncation", v)
		}
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	mean := sum / float64(len(w))
	std := math.Sqrt(sq/float64(len(w)) - mean*mean)
	// A normal truncated at ±2σ has σ·0.8796.
	if math.Abs(mean) > 2e-4 || math.Abs(std-0.02*0.8796) > 3e-4 {
		t.Errorf("fc1 weights: mean %g std %g, want 0 and %g", mean, std, 0.02*0.8796)
	}
	for name, want := range map[string]float32{"blocks.3.mlp.fc1.bias": 0, "blocks.0.norm1.weight": 1, "blocks.0.norm1.bias": 0, "head.bias": 0} {
		for _, v := range get(name) {
			if v != want {
				t.Fatalf("%s holds %g, want %g", name, v, want)
			}
		}
	}
	// Distinct tensors get distinct streams.
	a, b := get("blocks.0.attn.qkv.weight"), get("blocks.1.attn.qkv.weight")
	if slices.Equal(a, b) {
		t.Errorf("two blocks have the same weights")
	}
}

// Building twice gives the same bytes, inline or with external data; a
// different seed gives different weights.
func TestBuildIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	save := func(name string, ext bool, opts ...Option) []byte {
		m := buildSmall(t, "deit-tiny", opts...)
		p := filepath.Join(dir, name, ModelFile)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := onnx.Save(m, p, onnx.SaveOptions{ExternalData: ext}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if ext {
			d, err := os.ReadFile(p + ".data")
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, d...)
		}
		return b
	}
	a, b := save("a", false), save("b", false)
	if !bytes.Equal(a, b) {
		t.Errorf("two inline builds differ")
	}
	ea, eb := save("ea", true), save("eb", true)
	if !bytes.Equal(ea, eb) {
		t.Errorf("two external-data builds differ")
	}
	if c := save("c", false, WithSeed(7)); bytes.Equal(a, c) || len(a) != len(c) {
		t.Errorf("seed 7 gives the same bytes as seed 0 (or a different size: %d vs %d)", len(c), len(a))
	}
}

func TestBuildHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, _ := Lookup("deit-tiny")
	if _, err := Build(ctx, s); err != context.Canceled {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	// Cancelled while the weights are generated.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	var stages []Stage
	_, err := Build(ctx, s, WithProgress(func(p Progress) {
		stages = append(stages, p.Stage)
		if p.Stage == StageWeights {
			cancel()
		}
	}))
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("err = %v, want cancellation", err)
	}
	if len(stages) < 2 || stages[0] != StageGraph || stages[1] != StageWeights {
		t.Errorf("progress stages %v", stages)
	}
}
