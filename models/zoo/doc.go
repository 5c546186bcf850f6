// Package zoo is quantscope's built-in model catalog: the vision models of
// the study as ONNX graphs written from Go, with deterministic synthetic
// weights, so that every timing, memory and size figure is that of the
// real architecture on a machine that cannot download weights.
//
// # Catalog
//
// Catalog lists 24 models: ViT (B/16, B/32, B/16 at 384 px, L/16, H/14),
// DeiT (tiny, small, base, distilled), DINO and DINOv2 backbones, BEiT,
// CLIP image encoders, MobileViT, ResNet-50 and MobileNetV2. Each Spec
// carries the published parameter count, the input resolution, the head
// (classes, or 0 for a backbone that outputs embeddings), the embedding
// width, the GFLOPs of one image (multiply-adds × 2, computed from the
// architecture) and the input normalization. Analyze counts a spec's
// parameters and FLOPs without building it.
//
// # Graphs
//
// Builders write graphs the way torch.onnx.export writes the reference
// implementations (timm, torchvision, OpenAI CLIP): input "pixel_values"
// float32 [batch, 3, H, W] with a symbolic batch, output "logits"
// [batch, classes] or "embeddings" [batch, D]; patch embedding as Conv,
// LayerNormalization, attention as MatMul and Softmax with the 1/√d scale,
// exact GELU through Erf (the Gelu operator from opset 20), QuickGELU as
// x·sigmoid(1.702x), Gather of the class token, Gemm heads, BatchNorm
// folded into Conv. Initializers carry the reference state-dict names and
// nodes the module path ("/blocks.3/attn/MatMul"), so profiles read like
// those of exported models. The default opset is 17 (DefaultOpset);
// WithOpset selects up to MaxOpset.
//
// # Weights
//
// Weights are drawn as the reference implementations initialize them:
// truncated normal (σ = 0.02, cut at ±2σ) for linear and patch weights,
// tokens and position embeddings; zero biases; LayerNorm γ = 1, β = 0.
// Convolutions with folded BatchNorm use He-scaled weights (and a reduced
// scale on the last BatchNorm of each residual branch) and LayerScale
// factors start at 0.1, so activations stay in the range of trained
// networks: finite, and within float16 range. Every tensor has its own
// random stream derived from the seed and its name, split in chunks that
// are filled in parallel straight into the tensor's bytes, so builds are
// fast and byte-identical whatever the number of cores.
//
// # Cache
//
// Ensure builds a model into the cache directory (CacheDir:
// $QUANTSCOPE_CACHE_DIR/models, else $XDG_CACHE_HOME/quantscope/models),
// one directory per model, resolution, opset and builder version, holding
// model.onnx, model.onnx.data when the weights are large (ExternalAutoBytes)
// and manifest.json. Builds go to a temporary directory renamed into place
// when complete, so a half-written model never counts as built.
//
// # Resolving
//
// Resolve accepts what a user typed: a catalog name, built on first use,
// or a path to an .onnx file, which Import checks to be an image model
// (one float32 input [N, 3, H, W], static or symbolic dimensions) without
// reading its weights.
package zoo
