package optimize

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Version is the optimizer's version. It is part of every optimized
// variant's cache key: bump it whenever a pass's output changes.
const Version = "optimize/1"

// MetaOptimize is the metadata key Apply stamps on an optimized model:
// the version and the patterns that matched, e.g.
// "optimize/1 attention=12 skip-layernorm=25 bias-gelu=12".
const MetaOptimize = "quantscope.optimize"

// Pattern names a rewrite Apply knows.
type Pattern string

// The rewrites, in the order Apply runs them.
const (
	// FoldConstants replaces nodes computed from constants only (shape
	// arithmetic over static dimensions, attention scales computed from
	// shapes, biases concatenated from pieces) by initializers.
	FoldConstants Pattern = "fold-constants"
	// FoldReshapes gives a Reshape whose target is computed from shapes at
	// run time (Shape → Gather → Unsqueeze → Concat) a constant target,
	// with 0 for the dimensions it copies from its input.
	FoldReshapes Pattern = "fold-reshape-targets"
	// Attention fuses multi-head self-attention (one QKV projection,
	// Reshape, Transpose, q/k/v taken by Gather, Split or Slice, scale,
	// optional constant bias such as BEiT's relative position bias,
	// Softmax, the product with v, Transpose, Reshape) into
	// com.microsoft MultiHeadAttention (or Attention, see Options).
	Attention Pattern = "attention"
	// LinearScale folds a constant per-channel scale after a linear
	// layer (LayerScale) into the layer's weight and bias.
	LinearScale Pattern = "fold-linear-scale"
	// SkipLayerNorm fuses a residual Add and the LayerNormalization
	// reading it (and a bias Add before it) into com.microsoft
	// SkipLayerNormalization, whose fourth output carries the sum on.
	SkipLayerNorm Pattern = "skip-layernorm"
	// BiasGelu fuses a bias Add and the exact (Erf) GELU after it, written
	// out or as the opset-20 Gelu operator, into com.microsoft BiasGelu.
	BiasGelu Pattern = "bias-gelu"
	// Gelu fuses an Erf GELU written out without a bias to fuse into
	// com.microsoft Gelu.
	Gelu Pattern = "gelu"
	// FastGelu fuses a bias Add and the tanh-approximated Gelu
	// (approximate="tanh") into com.microsoft FastGelu. The exact GELU is
	// never turned into FastGelu: the approximation is not equivalent.
	FastGelu Pattern = "bias-fastgelu"
	// QuickGelu fuses x·sigmoid(α·x) (CLIP's QuickGELU, SiLU with α = 1)
	// after a linear layer into com.microsoft QuickGelu.
	QuickGelu Pattern = "quick-gelu"
	// PruneTokens computes only the token rows the output reads (the class
	// token a head takes) in the layers after the last attention.
	PruneTokens Pattern = "prune-unused-tokens"
	// Gemm fuses a MatMul of a 2-D input and a constant weight with the
	// bias Add after it into one Gemm.
	Gemm Pattern = "matmul-add-gemm"
)

// Patterns lists every rewrite in the order Apply runs them.
var Patterns = []Pattern{FoldConstants, FoldReshapes, Attention, LinearScale, SkipLayerNorm, BiasGelu, Gelu, FastGelu, QuickGelu, Gemm, PruneTokens}

// AttentionOp selects the operator attention is fused into.
type AttentionOp string

const (
	// AttentionMHA is com.microsoft MultiHeadAttention fed by three
	// projections, one MatMul each: the QKV weight split by columns, the
	// bias passed to the attention node. The MatMuls stay ordinary
	// MatMuls with constant weights, so the int8 and int4 transforms
	// quantize them. The default.
	AttentionMHA AttentionOp = "MultiHeadAttention"
	// AttentionMHAPacked is MultiHeadAttention fed by the original QKV
	// MatMul, its output split in three.
	AttentionMHAPacked AttentionOp = "MultiHeadAttention-split"
	// AttentionPacked is com.microsoft Attention with the packed QKV weight
	// as its input: the projection happens inside the attention node, so
	// quantizers that look for MatMuls do not see it.
	AttentionPacked AttentionOp = "Attention"
)

// Options chooses the rewrites.
type Options struct {
	// Disable lists patterns not to apply.
	Disable []Pattern
	// AttentionOp is what attention is fused into; "" means AttentionMHA.
	AttentionOp AttentionOp
}

// Default returns the options quantscope uses when it optimizes a model
// (--optimize): every pattern, attention as MultiHeadAttention.
func Default() Options { return Options{AttentionOp: AttentionMHA} }

// DefaultEnabled is the default of the --optimize flag of quantscope bench
// and quantscope quantize: optimize FP32 models before quantizing them.
const DefaultEnabled = true

func (o Options) enabled(p Pattern) bool { return !slices.Contains(o.Disable, p) }

// Miss is a place where a pattern nearly matched, and why it was left
// alone.
type Miss struct {
	Pattern Pattern `json:"pattern"`
	Node    string  `json:"node"`
	Reason  string  `json:"reason"`
}

// Report says what Apply did.
type Report struct {
	Version string `json:"version"`
	// Matched counts the rewrites done, per pattern.
	Matched map[Pattern]int `json:"matched"`
	// Misses lists the near misses: the anchors (Softmax,
	// LayerNormalization, GELU) where a fusion was considered and not
	// done, and why, so a user sees why a graph did not fuse.
	Misses []Miss `json:"near_misses,omitempty"`
	// NodesBefore and NodesAfter count the graph's nodes.
	NodesBefore int `json:"nodes_before"`
	NodesAfter  int `json:"nodes_after"`
	// Elapsed is how long Apply took.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Count returns how many times p matched.
func (r *Report) Count(p Pattern) int {
	if r == nil {
		return 0
	}
	return r.Matched[p]
}

// Fusions is the number of operator fusions done (the folds of constants,
// Reshape targets and linear scales, and pruned nodes, not counted).
func (r *Report) Fusions() int {
	t := 0
	for p, c := range r.Matched {
		if p != FoldConstants && p != FoldReshapes && p != LinearScale && p != PruneTokens {
			t += c
		}
	}
	return t
}

// Changed reports whether Apply changed the model.
func (r *Report) Changed() bool {
	for _, c := range r.Matched {
		if c > 0 {
			return true
		}
	}
	return false
}

// String lists the matched patterns, e.g. "attention=12 skip-layernorm=25".
func (r *Report) String() string {
	var parts []string
	for _, p := range Patterns {
		if c := r.Matched[p]; c > 0 {
			parts = append(parts, string(p)+"="+strconv.Itoa(c))
		}
	}
	if len(parts) == 0 {
		return "nothing matched"
	}
	return strings.Join(parts, " ")
}

func (r *Report) miss(p Pattern, n *onnxpb.NodeProto, format string, args ...any) {
	r.Misses = append(r.Misses, Miss{Pattern: p, Node: label(n), Reason: fmt.Sprintf(format, args...)})
}

// ErrNoGraph is returned for a model without a graph.
var ErrNoGraph = errors.New("model has no graph")

// Apply rewrites m in place with the transformer fusions: constant folding
// of shape subgraphs, attention, LayerScale folding,
// SkipLayerNormalization, BiasGelu (and Gelu, FastGelu, QuickGelu), MatMul
// + Add into Gemm, and the pruning of token rows no output reads (see the
// package documentation). Every rewrite is
// done only where the whole pattern matches and the fused operator
// computes the same function (up to float rounding); the intermediate
// values a fusion removes must have no other reader. The result imports
// com.microsoft at version 1 when a contrib operator was added, and passes
// onnx.Check.
//
// Apply is meant to run before quantization: the linear layers stay
// MatMuls with constant weights (see AttentionMHA), so quant.Apply finds
// them. m must hold its tensors (weights to split are read). On error m may
// be partly rewritten: Clone it first to keep the original.
func Apply(ctx context.Context, m *onnx.Model, opts Options) (*Report, error) {
	start := time.Now()
	if m == nil || m.Proto == nil || m.Graph() == nil {
		return nil, ErrNoGraph
	}
	switch opts.AttentionOp {
	case "":
		opts.AttentionOp = AttentionMHA
	case AttentionMHA, AttentionMHAPacked, AttentionPacked:
	default:
		return nil, fmt.Errorf("optimize: unknown attention operator %q", opts.AttentionOp)
	}
	r := &Report{Version: Version, Matched: map[Pattern]int{}, NodesBefore: len(m.Graph().GetNode())}
	if err := onnx.TopoSort(m.Graph()); err != nil {
		return nil, fmt.Errorf("optimize: %w", err)
	}
	gr := newGraph(m)
	if gr.opset == 0 {
		return nil, fmt.Errorf("optimize: the model does not import the default ONNX domain")
	}
	type pass struct {
		p   Pattern
		run func() (int, error)
	}
	passes := []pass{
		{FoldConstants, func() (int, error) {
			f, rs, err := foldConstants(ctx, gr, opts.enabled(FoldConstants), opts.enabled(FoldReshapes))
			r.Matched[FoldReshapes] += rs
			return f, err
		}},
		{Attention, func() (int, error) { return fuseAttention(ctx, gr, opts.AttentionOp, r) }},
		{LinearScale, func() (int, error) { return foldLinearScale(ctx, gr, r) }},
		{SkipLayerNorm, func() (int, error) { return fuseSkipLayerNorm(ctx, gr, r) }},
		{BiasGelu, func() (int, error) { return fuseGelu(ctx, gr, r, opts) }},
		{QuickGelu, func() (int, error) { return fuseQuickGelu(ctx, gr, r) }},
		{Gemm, func() (int, error) { return fuseGemm(ctx, gr, r) }},
		{PruneTokens, func() (int, error) { return pruneTokens(ctx, gr, r) }},
		{FoldConstants, func() (int, error) { // what the rewrites left to fold
			f, _, err := foldConstants(ctx, gr, opts.enabled(FoldConstants), false)
			return f, err
		}},
	}
	for _, ps := range passes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if ps.p == FoldConstants && !opts.enabled(FoldConstants) && !opts.enabled(FoldReshapes) {
			continue
		}
		if ps.p != FoldConstants && ps.p != BiasGelu && !opts.enabled(ps.p) {
			continue
		}
		n, err := ps.run()
		if err != nil {
			return nil, fmt.Errorf("optimize: %s: %w", ps.p, err)
		}
		if ps.p != BiasGelu { // the GELU pass counts its own patterns
			r.Matched[ps.p] += n
		}
	}
	for p, c := range r.Matched {
		if c == 0 {
			delete(r.Matched, p)
		}
	}
	r.NodesAfter = len(m.Graph().GetNode())
	if r.Changed() {
		setMetadata(m, MetaOptimize, Version+" "+r.String())
		if err := onnx.Check(m); err != nil {
			return nil, fmt.Errorf("optimize: the optimized graph fails the check: %w", err)
		}
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

// setMetadata adds or replaces a metadata_props entry.
func setMetadata(m *onnx.Model, key, value string) {
	for _, p := range m.Proto.GetMetadataProps() {
		if p.GetKey() == key {
			p.Value = proto.String(value)
			return
		}
	}
	m.Proto.MetadataProps = append(m.Proto.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(key), Value: proto.String(value)})
}
