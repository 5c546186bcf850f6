package quant

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
)

func TestLayerNames(t *testing.T) {
	cases := []struct{ node, weight, name, block string }{
		{"/blocks.0/attn/MatMul_q", "blocks.0.attn.qkv.weight.q", "blocks.0.attn.qkv.q", "blocks.0"},
		{"/blocks/blocks.0/attn/qkv/MatMul_q", "onnx::MatMul_381.q", "blocks.0.attn.qkv.q", "blocks.0"},
		{"/blocks/blocks.11/mlp/fc2/MatMul", "onnx::MatMul_401", "blocks.11.mlp.fc2", "blocks.11"},
		{"/head/Gemm", "head.weight", "head", "head"},
		{"/patch_embed/Conv", "patch_embed.weight", "patch_embed", "patch_embed"},
		{"/layer1.0/Conv_1", "layer1.0.conv2.weight", "layer1.0.conv2", "layer1.0"},
		{"/vit/encoder/layer.3/attention/attention/query/MatMul", "onnx::MatMul_9", "vit.encoder.layer.3.attention.attention.query", "vit.encoder.layer.3"},
		{"fc", "W", "fc", "fc"},
	}
	for _, c := range cases {
		name := layerName(c.node, c.weight)
		if name != c.name || blockOf(name) != c.block {
			t.Errorf("layerName(%q, %q) = %q (block %q), want %q (%q)", c.node, c.weight, name, blockOf(name), c.name, c.block)
		}
	}
	for g, in := range map[string]bool{"blocks.0": true, "blocks.0.attn": true, "blocks.01": false, "blocks": true, "head": false} {
		if InGroup("blocks.0.attn.qkv", g) != in {
			t.Errorf("InGroup(blocks.0.attn.qkv, %s) = %v", g, !in)
		}
	}
}

func TestLayerSpecs(t *testing.T) {
	for in, want := range map[string]string{
		"int4,keep=blocks.0+head":            "int4:keep=blocks.0+head",
		"int4:keep=head+blocks.0,block=64":   "int4:block=64,keep=blocks.0+head",
		"int4:int8=blocks.1,keep=head":       "int4:keep=head,int8=blocks.1",
		"int8:int4=blocks.1+blocks.2":        "int8:int4=blocks.1+blocks.2",
		"int8-static:keep=head,calib=minmax": "int8-static:calib=minmax,keep=head",
		"fp16:keep=Softmax":                  "fp16:keep=Softmax",
	} {
		sp, err := ParseSpec(in)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", in, err)
			continue
		}
		if sp.String() != want {
			t.Errorf("ParseSpec(%q) = %q, want %q", in, sp, want)
		}
		again, err := ParseSpec(sp.String())
		if err != nil || again.String() != sp.String() {
			t.Errorf("round trip of %q: %q, %v", sp, again, err)
		}
	}
	for in, want := range map[string]string{
		"int8:int8=head":       "int8= (layers in int8) applies to int4",
		"int4:int4=head":       "int4= (layers in int4) applies to int8",
		"fp16:int8=head":       "applies to int4, not fp16",
		"int4:keep=":           "needs layer names",
		"int4:keep=a b":        "not a layer name",
		"fp32:keep=head":       "does not apply to fp32",
		"int4:keep=a,keep=b":   "given twice",
		"int4:keep=blocks.0+$": "not a layer name",
	} {
		if _, err := ParseSpec(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSpec(%q) = %v, want %q", in, err, want)
		}
	}
	long := MustParseSpec("int4:keep=" + strings.Repeat("blocks.10.mlp.fc1+", 1) + "blocks.11.attn.qkv.q+blocks.11.attn.qkv.k+blocks.11.attn.qkv.v+head")
	if s := long.Slug(); len(s) > 64 || !strings.HasPrefix(s, "int4-keep") {
		t.Errorf("long slug %q (%d)", s, len(s))
	}
}

// A mixed spec converts each layer as chosen, reports it, and names the
// layers the choice kept.
func TestApplyLayerChoice(t *testing.T) {
	m := tinyViT(t)
	r := apply(t, m, "int4:keep=head+patch_embed,int8=blocks.1", Options{})
	g := m.Graph()
	// Tiny: 2 blocks × 4 linears; block 0 int4, block 1 int8; patch
	// embedding and head float.
	if n := countOps(g, "MatMulNBits"); n != 4 {
		t.Errorf("%d MatMulNBits, want 4 (blocks.0)", n)
	}
	if n := countOps(g, "DynamicQuantizeMatMul"); n != 4 {
		t.Errorf("%d DynamicQuantizeMatMul, want 4 (blocks.1)", n)
	}
	if r.Count("", PrecInt4) != 4 || r.Count("", PrecInt8) != 4 {
		t.Errorf("report: int4 %d int8 %d", r.Count("", PrecInt4), r.Count("", PrecInt8))
	}
	var kept []string
	for _, k := range r.Kept {
		if strings.Contains(k.Reason, "layer choice") {
			kept = append(kept, k.Node+" "+k.Reason)
		}
	}
	if len(kept) != 2 || !strings.Contains(strings.Join(kept, ";"), "keep=head") || !strings.Contains(strings.Join(kept, ";"), "keep=patch_embed") {
		t.Errorf("kept by the choice: %v (all kept: %+v)", kept, r.Kept)
	}
	for _, k := range r.Kept {
		if k.Reason == "excluded" {
			t.Errorf("a layer the choice converted or kept still says excluded: %+v", k)
		}
	}
	// int8 base with int4 layers.
	m = tinyViT(t)
	apply(t, m, "int8:int4=blocks.0", Options{})
	if countOps(m.Graph(), "MatMulNBits") != 4 || countOps(m.Graph(), "DynamicQuantizeMatMul") < 4 {
		t.Errorf("int8 with int4 blocks.0: %d MatMulNBits, %d DynamicQuantizeMatMul", countOps(m.Graph(), "MatMulNBits"), countOps(m.Graph(), "DynamicQuantizeMatMul"))
	}
	// A group the model does not have.
	m = tinyViT(t)
	_, err := applyErr(m, "int4:keep=blocks.7")
	if !errors.Is(err, ErrNoSuchLayer) || !strings.Contains(err.Error(), "blocks.0, blocks.1") {
		t.Errorf("unknown group: %v", err)
	}
	// Keeping everything converts nothing: an error, as for any spec.
	m = tinyViT(t)
	if _, err := applyErr(m, "int4:keep=blocks+head+patch_embed"); !errors.Is(err, ErrNothingConverted) {
		t.Errorf("all kept: %v", err)
	}
}

func TestPlanFile(t *testing.T) {
	p := Plan{Model: "m", Base: "int4:block=64", Layers: map[string]string{"head": "fp32", "blocks.1": "int8", "blocks.0": "int4"}}
	sp, err := p.Spec()
	if err != nil || sp.String() != "int4:block=64,keep=head,int8=blocks.1" {
		t.Fatalf("Spec = %q, %v", sp, err)
	}
	back := PlanOf("m", sp)
	if back.Base != "int4:block=64" || back.Layers["head"] != "fp32" || back.Layers["blocks.1"] != "int8" || len(back.Layers) != 2 {
		t.Errorf("PlanOf = %+v", back)
	}
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := WritePlan(path, back); err != nil {
		t.Fatal(err)
	}
	read, err := ReadPlan(path)
	if err != nil {
		t.Fatal(err)
	}
	sp2, err := read.Spec()
	if err != nil || sp2.String() != sp.String() {
		t.Errorf("round trip: %q, %v", sp2, err)
	}
	for _, bad := range []Plan{
		{Base: "fp16", Layers: map[string]string{"head": "fp32"}},
		{Base: "int4", Layers: map[string]string{"head": "fp8"}},
		{Base: "nope"},
	} {
		if _, err := bad.Spec(); err == nil {
			t.Errorf("plan %+v accepted", bad)
		}
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range back.Layers {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(got, []string{"blocks.1", "head"}) {
		t.Errorf("plan layers %v", got)
	}
}

func applyErr(m *onnx.Model, spec string) (*Report, error) {
	return Apply(context.Background(), m, MustParseSpec(spec), Options{})
}
