// Package optimize rewrites transformer graphs into the fused operators
// ONNX Runtime runs fastest, before quantization: the Go counterpart of the
// fusions of ONNX Runtime's Python transformer optimizer, on quantscope's
// own ONNX IR.
//
// Apply runs, in order:
//
//   - constant folding: nodes computed from constants only (Shape of
//     static dimensions, Gather, Unsqueeze, Concat, Slice, Cast and
//     scalar arithmetic: the shape subgraphs torch.onnx.export writes, the
//     1/√d scale of scaled_dot_product_attention, biases concatenated from
//     pieces) become initializers, and Reshape targets computed at run
//     time become constants with 0 for the symbolic dimensions they copy;
//   - attention: one QKV projection, Reshape to [B, S, 3, H, d],
//     Transpose, q/k/v by Gather, Split + Squeeze or Slice + Squeeze,
//     scale (Mul or Div by scalars on q, kᵀ or the scores), an optional
//     constant bias (BEiT's relative position bias), Softmax, the product
//     with v, Transpose and Reshape back → com.microsoft
//     MultiHeadAttention, fed by three MatMuls (the QKV weight split by
//     columns) so that quantizers still find the projections;
//   - a constant per-channel scale after a linear layer (LayerScale)
//     folds into the layer's weight and bias;
//   - residual Add + LayerNormalization (+ the linear bias before it) →
//     com.microsoft SkipLayerNormalization, whose fourth output carries
//     the residual stream on;
//   - bias Add + exact GELU (the Erf form, or the opset-20 Gelu) →
//     com.microsoft BiasGelu; never FastGelu, whose tanh approximation is
//     not the same function (only Gelu with approximate="tanh" becomes
//     FastGelu); QuickGELU and SiLU after a linear layer → QuickGelu;
//   - MatMul + bias Add on 2-D inputs → Gemm;
//   - token pruning: when the output reads only some token rows (a
//     classifier or embedding head taking the class token, DeiT's class
//     and distillation tokens), the token-wise layers after the last
//     attention (its q projection, the attention itself, the output
//     projection, norms, MLP, residual Adds) compute those rows only; keys
//     and values still cover every token. In ViT-B/16 that is most of the
//     last block's matrix products.
//
// Each rewrite happens only where its whole pattern matches, every value
// it removes has no reader outside the pattern, and the fused operator
// computes the same function (differences are float rounding: the tests
// check cosine ≥ 0.99999 against the unfused graph on ONNX Runtime for
// every zoo family). Where an anchor (Softmax, LayerNormalization, GELU)
// was considered and left alone, the Report says why. Optimizing twice
// changes nothing the second time; CNNs come out unchanged.
//
// For says which options suit a target precision, File optimizes a model
// file; Version and MetaOptimize identify optimized variants. EstimateFLOPs
// counts a graph's compute per sample with the same shape inference (what
// bench --shard balances imported models by).
package optimize
