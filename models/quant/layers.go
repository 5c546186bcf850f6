package quant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/quantscope/quantscope/models/onnx"
)

// Layer is a weight layer of a model: a MatMul, Gemm or Conv with a
// constant weight, the unit per-layer precision choices name.
type Layer struct {
	// Name is the layer's module path, from its weight's name or, when the
	// exporter renamed the weight (onnx::MatMul_381), from its node's
	// scope: "blocks.0.attn.qkv" ("blocks.0.attn.qkv.q" once the fusions
	// split q, k and v), "head", "patch_embed".
	Name string `json:"name"`
	// Block is the layer's block: its path up to the first numeric part
	// ("blocks.0", "layer1.0", "encoder.layer.3"), or its first part
	// ("head", "patch_embed").
	Block string `json:"block"`
	// Node and Output are the graph node and the value it produces.
	Node   string `json:"node"`
	Output string `json:"output"`
	Op     string `json:"op"`
	// Params is the weight's number of values.
	Params int64 `json:"params"`
}

// Layers lists m's weight layers in graph order. Names are unique (a
// repeated one gets "#2", "#3").
func Layers(m *onnx.Model) []Layer {
	g := m.Graph()
	if g == nil {
		return nil
	}
	ix := newGraphIndex(g)
	var out []Layer
	seen := map[string]int{}
	for _, n := range g.GetNode() {
		switch n.GetOpType() {
		case "MatMul", "Gemm", "Conv":
		default:
			continue
		}
		if !onnx.IsDefaultDomain(n) || len(n.GetInput()) < 2 || len(n.GetOutput()) < 1 {
			continue
		}
		w := ix.ConstTensor(n.GetInput()[1])
		if w == nil || onnx.DataTypeOf(w) != onnx.Float {
			continue
		}
		params, _ := onnx.Numel(w.GetDims())
		name := layerName(n.GetName(), n.GetInput()[1])
		seen[name]++
		if k := seen[name]; k > 1 {
			name = fmt.Sprintf("%s#%d", name, k)
		}
		out = append(out, Layer{Name: name, Block: blockOf(name), Node: n.GetName(), Output: n.GetOutput()[0], Op: n.GetOpType(), Params: params})
	}
	return out
}

// layerName derives a layer's module path from its weight's name
// ("blocks.0.attn.qkv.weight.q" → "blocks.0.attn.qkv.q") or, for weights
// an exporter renamed, from its node's scope
// ("/blocks/blocks.0/attn/qkv/MatMul_q" → "blocks.0.attn.qkv.q").
func layerName(node, weight string) string {
	if weight != "" && !strings.HasPrefix(weight, "onnx::") && !strings.HasPrefix(weight, "/") && strings.Contains(weight, ".") {
		var parts []string
		for _, p := range strings.Split(weight, ".") {
			if p != "weight" && p != "kernel" && p != "" {
				parts = append(parts, p)
			}
		}
		if len(parts) > 0 {
			return strings.Join(parts, ".")
		}
	}
	segs := strings.Split(strings.Trim(node, "/"), "/")
	if len(segs) >= 2 {
		last := segs[len(segs)-1]
		segs = segs[:len(segs)-1]
		if i := strings.LastIndexByte(last, '_'); i > 0 {
			switch suf := last[i+1:]; suf {
			case "q", "k", "v":
				segs = append(segs, suf)
			}
		}
		var parts []string
		for i, sg := range segs {
			// torch.onnx.export scopes a container's child as
			// "blocks/blocks.0": keep the child.
			if i+1 < len(segs) && strings.HasPrefix(segs[i+1], sg+".") {
				continue
			}
			parts = append(parts, sg)
		}
		return strings.Join(parts, ".")
	}
	if node != "" {
		return strings.Trim(node, "/")
	}
	return weight
}

// blockOf is a layer's block: its path through the first all-digit part,
// else its first part.
func blockOf(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			return strings.Join(parts[:i+1], ".")
		}
	}
	return parts[0]
}

// Blocks lists the distinct blocks of layers in first-seen order.
func Blocks(layers []Layer) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range layers {
		if !seen[l.Block] {
			seen[l.Block] = true
			out = append(out, l.Block)
		}
	}
	return out
}

// InGroup reports whether layer name belongs to group: the group is the
// name itself or a prefix of it ending at a dot ("blocks.0" holds
// "blocks.0.attn.qkv.q", not "blocks.01.mlp").
func InGroup(name, group string) bool {
	return name == group || strings.HasPrefix(name, group+".")
}

// LayerChoice is the per-layer part of a spec: layers that depart from the
// spec's kind. Each entry is a layer name or a group of them (see
// InGroup); keep= wins over int8= and int4=.
type LayerChoice struct {
	Keep []string // left in float32 (keep=A+B)
	Int8 []string // dynamic int8 where the spec's kind is int4 (int8=A+B)
	Int4 []string // int4 where the spec's kind is int8 (int4=A+B)
}

// IsZero reports whether no layer departs from the spec's kind.
func (c LayerChoice) IsZero() bool { return len(c.Keep)+len(c.Int8)+len(c.Int4) == 0 }

// options writes the choice in spec syntax, in canonical order.
func (c LayerChoice) options() []string {
	var out []string
	for _, o := range []struct {
		key string
		v   []string
	}{{"keep", c.Keep}, {"int8", c.Int8}, {"int4", c.Int4}} {
		if len(o.v) > 0 {
			out = append(out, o.key+"="+strings.Join(o.v, "+"))
		}
	}
	return out
}

// setLayerOption parses keep=, int8= and int4= for the int kinds; handled
// is false for any other option (and for fp16's keep=, which names op
// types).
func (sp *Spec) setLayerOption(key, val string, hasVal bool) (handled bool, err error) {
	var dst *[]string
	switch key {
	case "keep":
		if sp.Kind != Int8 && sp.Kind != Int8Static && sp.Kind != Int4 {
			return false, nil
		}
		dst = &sp.Layers.Keep
	case "int8":
		if sp.Kind != Int4 {
			return true, fmt.Errorf("option int8= (layers in int8) applies to int4, not %s", sp.Kind)
		}
		dst = &sp.Layers.Int8
	case "int4":
		if sp.Kind != Int8 {
			return true, fmt.Errorf("option int4= (layers in int4) applies to int8, not %s", sp.Kind)
		}
		dst = &sp.Layers.Int4
	default:
		return false, nil
	}
	if !hasVal || val == "" {
		return true, fmt.Errorf("option %q needs layer names (%s=blocks.0+head)", key, key)
	}
	for _, g := range strings.Split(val, "+") {
		g = strings.TrimSpace(g)
		if !validLayerGroup(g) {
			return true, fmt.Errorf("%s: %q is not a layer name (letters, digits, . _ - / # and no spaces)", key, g)
		}
		if !slices.Contains(*dst, g) {
			*dst = append(*dst, g)
		}
	}
	slices.Sort(*dst)
	return true, nil
}

// validLayerGroup accepts the characters layer names are made of.
func validLayerGroup(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case strings.ContainsRune("._-/#:", r):
		default:
			return false
		}
	}
	return true
}

// ErrNoSuchLayer is matched by errors naming a layer group no layer of
// the model belongs to.
var ErrNoSuchLayer = errors.New("no such layer")

// layerPlan is a spec's per-layer choice resolved on a model: the kind of
// every weight layer, by its output value.
type layerPlan struct {
	kind   map[string]Kind   // output → kind
	group  map[string]string // output → the keep= group that kept it
	layers []Layer
}

// resolveLayers assigns each layer of g its kind under spec; nil when the
// spec has no per-layer choice. A group matching no layer is an error.
func resolveLayers(m *onnx.Model, spec Spec) (*layerPlan, error) {
	c := spec.Layers
	if c.IsZero() {
		return nil, nil
	}
	layers := Layers(m)
	lp := &layerPlan{kind: map[string]Kind{}, group: map[string]string{}, layers: layers}
	used := map[string]bool{}
	for _, l := range layers {
		k := spec.Kind
		for _, o := range []struct {
			groups []string
			kind   Kind
		}{{c.Int8, Int8}, {c.Int4, Int4}, {c.Keep, FP32}} {
			for _, g := range o.groups {
				if InGroup(l.Name, g) {
					k = o.kind
					used[g] = true
					if o.kind == FP32 {
						lp.group[l.Output] = g
					}
				}
			}
		}
		lp.kind[l.Output] = k
	}
	var missing []string
	for _, g := range slices.Concat(c.Keep, c.Int8, c.Int4) {
		if !used[g] {
			missing = append(missing, g)
		}
	}
	if len(missing) > 0 {
		blocks := Blocks(layers)
		if len(blocks) > 12 {
			blocks = append(blocks[:12], "…")
		}
		return nil, fmt.Errorf("%w: %s (this model's blocks: %s; `quantscope sensitivity --json` lists every layer)", ErrNoSuchLayer, strings.Join(missing, ", "), strings.Join(blocks, ", "))
	}
	return lp, nil
}

// exclusions returns the outputs of layers whose kind is not k.
func (lp *layerPlan) exclusions(k Kind) []string {
	var out []string
	for o, kk := range lp.kind {
		if kk != k {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return out
}

// applyOverrides converts the layers the plan gives another kind than the
// spec's, after the spec's own pass: each in a pass of its own over the
// converted graph, recorded in the same tracker, and tidies the report's
// kept list (the first pass saw those layers as excluded).
func (lp *layerPlan) applyOverrides(ctx context.Context, st *state) error {
	for _, k := range []Kind{Int8, Int4} {
		if k == st.spec.Kind || !slices.Contains(slices.Collect(maps.Values(lp.kind)), k) {
			continue
		}
		g := st.m.Graph()
		sub := *st
		sub.spec = Spec{Kind: k}
		if k == Int4 && st.spec.Kind == Int4 {
			sub.spec = st.spec
		}
		sub.ix = newGraphIndex(g)
		sub.types = inferTypes(g)
		sub.exclude = maps.Clone(st.exclude)
		for _, o := range lp.exclusions(k) {
			sub.exclude[o] = true
		}
		for _, l := range lp.layers {
			if lp.kind[l.Output] == k {
				delete(sub.exclude, l.Output)
				delete(sub.exclude, l.Node)
			}
		}
		var err error
		if k == Int8 {
			err = toInt8Dynamic(ctx, &sub)
		} else {
			err = toInt4(ctx, &sub)
		}
		st.warns = sub.warns
		if err != nil {
			return fmt.Errorf("layers in %s: %w", k, err)
		}
		st.ix = sub.ix
	}
	lp.tidyKept(st)
	return nil
}

// tidyKept leaves one kept entry per node, none for converted nodes, and
// names the plan's reason for the layers it kept in float.
func (lp *layerPlan) tidyKept(st *state) {
	byNode := map[string]string{}
	for _, l := range lp.layers {
		if g, ok := lp.group[l.Output]; ok {
			byNode[l.Node] = "keep=" + g
		}
	}
	var out []KeptNode
	seen := map[string]bool{}
	for _, k := range st.t.kept {
		if seen[k.Node] || st.t.prec[k.Node] != PrecFP32 {
			continue
		}
		seen[k.Node] = true
		if why, ok := byNode[k.Node]; ok && k.Reason == "excluded" {
			k.Reason = "kept in float by the layer choice (" + why + ")"
		}
		out = append(out, k)
	}
	st.t.kept = out
}

// Plan is one precision per weight layer: a file `quantscope tune` writes
// and `quantscope quantize --plan` reads, so a searched configuration can
// be reproduced exactly.
type Plan struct {
	// Model is the model the plan was made for (informational).
	Model string `json:"model,omitempty"`
	// Base is the precision spec of every layer not listed, e.g. "int4"
	// or "int8:per-tensor"; its layer options, if any, are replaced.
	Base string `json:"base"`
	// Layers gives the layers (names or groups, see InGroup) that depart
	// from Base: "fp32", "int8" or "int4".
	Layers map[string]string `json:"layers,omitempty"`
}

// Spec turns the plan into the equivalent precision spec.
func (p Plan) Spec() (Spec, error) {
	sp, err := ParseSpec(p.Base)
	if err != nil {
		return Spec{}, fmt.Errorf("plan base: %w", err)
	}
	if sp.Kind != Int8 && sp.Kind != Int4 && sp.Kind != Int8Static {
		if len(p.Layers) > 0 {
			return Spec{}, fmt.Errorf("plan: per-layer choices need an int8, int8-static or int4 base, not %s", sp.Kind)
		}
		return sp, nil
	}
	sp.Layers = LayerChoice{}
	for _, name := range slices.Sorted(maps.Keys(p.Layers)) {
		var key string
		switch k := Kind(strings.ToLower(p.Layers[name])); {
		case k == FP32:
			key = "keep"
		case k == sp.Kind:
			continue
		case k == Int8, k == Int4:
			key = string(k)
		default:
			return Spec{}, fmt.Errorf("plan: layer %s: precision %q (want fp32, int8 or int4)", name, p.Layers[name])
		}
		if _, err := sp.setLayerOption(key, name, true); err != nil {
			return Spec{}, fmt.Errorf("plan: layer %s: %w", name, err)
		}
	}
	return sp, nil
}

// PlanOf is the plan of a spec: its base without layer options, and its
// layer choice as one entry per group.
func PlanOf(model string, sp Spec) Plan {
	base := sp
	base.Layers = LayerChoice{}
	p := Plan{Model: model, Base: base.String()}
	if sp.Layers.IsZero() {
		return p
	}
	p.Layers = map[string]string{}
	for _, g := range sp.Layers.Int8 {
		p.Layers[g] = string(Int8)
	}
	for _, g := range sp.Layers.Int4 {
		p.Layers[g] = string(Int4)
	}
	for _, g := range sp.Layers.Keep {
		p.Layers[g] = string(FP32)
	}
	return p
}

// ReadPlan reads a plan file (JSON).
func ReadPlan(path string) (Plan, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Plan{}, fmt.Errorf("plan: %w", err)
	}
	var p Plan
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Plan{}, fmt.Errorf("plan %s: %w (want {\"base\": \"int4\", \"layers\": {\"blocks.0\": \"fp32\"}})", path, err)
	}
	if p.Base == "" {
		return Plan{}, fmt.Errorf("plan %s: no base precision", path)
	}
	return p, nil
}

// WritePlan writes p as indented JSON.
func WritePlan(path string, p Plan) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
