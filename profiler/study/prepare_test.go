package study

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/ort"
)

func TestModelPreparer(t *testing.T) {
	t.Setenv("QUANTSCOPE_CACHE_DIR", t.TempDir())
	requireORTForStudy(t)
	p := NewPreparer()
	ctx := context.Background()

	base, err := p.Prepare(ctx, Experiment{Model: "deit-tiny", Precision: "fp32"})
	if err != nil {
		t.Fatal(err)
	}
	if base.GFLOPs < 1 || base.GFLOPs > 3 || base.Report != nil {
		t.Errorf("deit-tiny fp32: %+v", base)
	}
	v, err := p.Prepare(ctx, Experiment{Model: "deit-tiny", Precision: "int8"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Path == base.Path || v.Report == nil || v.Report.NodesConverted < 10 {
		t.Errorf("int8 variant %s, report %v", v.Path, v.Report)
	}
	if vb, bb := filesBytes(t, v.Path), filesBytes(t, base.Path); vb*3 > bb {
		t.Errorf("int8 files %d bytes vs fp32 %d: want under a third", vb, bb)
	}
	st, err := p.Prepare(ctx, Experiment{Model: "deit-tiny", Precision: "int8-static:samples=4"})
	if err != nil || st.Report.Calibration == nil {
		t.Errorf("int8-static: %v, report %v", err, st.Report)
	}
	again, _ := p.Prepare(ctx, Experiment{Model: "deit-tiny", Precision: "int8"})
	if again.Path != v.Path {
		t.Error("second request re-quantized")
	}

	// With Optimize the fused graph is the baseline and what is quantized.
	fused, err := p.Prepare(ctx, Experiment{Model: "deit-tiny", Precision: "fp32", Optimize: true})
	if err != nil {
		t.Fatal(err)
	}
	if fused.Path == base.Path || fused.Optimized == nil || fused.Optimized.Matched["attention"] != 12 || fused.Optimized.NodesAfter >= fused.Optimized.NodesBefore {
		t.Errorf("optimized fp32: %s %+v", fused.Path, fused.Optimized)
	}
	fusedInt8, err := p.Prepare(ctx, Experiment{Model: "deit-tiny", Precision: "int8", Optimize: true})
	if err != nil {
		t.Fatal(err)
	}
	if fusedInt8.Path == v.Path || fusedInt8.Optimized == nil || fusedInt8.Report == nil {
		t.Errorf("optimized int8: %s %+v", fusedInt8.Path, fusedInt8.Optimized)
	}
	if fb := filesBytes(t, fusedInt8.Path); fb*3 > filesBytes(t, base.Path) {
		t.Errorf("optimized int8 files %d bytes: the fused graph's MatMuls were not quantized", fb)
	}

	// A model with nothing to quantize: the precision did not apply.
	b := onnx.NewBuilder("noweights", 17)
	b.AddInput("pixel_values", onnx.Float, onnx.Dims("batch", 3, 8, 8))
	b.AddNode("Relu", []string{"pixel_values"}, []string{"logits"})
	b.AddOutput("logits", onnx.Float, onnx.Dims("batch", 3, 8, 8))
	m, _ := b.Build()
	plain := filepath.Join(t.TempDir(), "plain.onnx")
	onnx.Save(m, plain, onnx.SaveOptions{})
	tests := []struct {
		model, precision, want string
	}{
		{plain, "int8", "did not apply"},
		{"deit-tiny", "int3", "int3"},
		{"no-such-model", "fp32", "no-such-model"},
	}
	for _, tt := range tests {
		if _, err := p.Prepare(ctx, Experiment{Model: tt.model, Precision: tt.precision}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Prepare(%s, %s) = %v, want an error mentioning %q", filepath.Base(tt.model), tt.precision, err, tt.want)
		}
	}
}

// filesBytes is the size of a model file and its external data beside it.
func filesBytes(t *testing.T, path string) int64 {
	t.Helper()
	files, _ := filepath.Glob(path + "*")
	var n int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

func requireORTForStudy(t *testing.T) {
	t.Helper()
	if _, err := ort.Init(""); err != nil {
		if os.Getenv("QUANTSCOPE_REQUIRE_ORT") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// fp16 on the CPU EP runs as fp16:ep=cpu (no float16 node on a kernel the
// CPU EP lacks); on other EPs, with fp16:storage or an explicit choice, the
// spec is left as it is.
func TestForEP(t *testing.T) {
	for _, c := range []struct{ spec, ep, want string }{
		{"fp16", "cpu", "fp16:ep=cpu"},
		{"fp16:mixed", "cpu", "fp16:mixed,ep=cpu"},
		{"fp16", "cuda", "fp16"},
		{"fp16", "auto", "fp16"},
		{"fp16:storage", "cpu", "fp16:storage"},
		{"int8", "cpu", "int8"},
	} {
		if got := ForEP(quant.MustParseSpec(c.spec), c.ep).String(); got != c.want {
			t.Errorf("ForEP(%s, %s) = %s, want %s", c.spec, c.ep, got, c.want)
		}
	}
}
