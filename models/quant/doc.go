// Package quant turns an FP32 ONNX vision model into its FP16, INT8 and
// INT4 variants, on the ONNX graph, so that ONNX Runtime runs them fast:
//
//   - fp16: float initializers and activations in float16, float32 graph
//     inputs and outputs with one Cast at each boundary, a block list of op
//     types kept in float32 (fp16:mixed keeps LayerNormalization and
//     Softmax in float32). The com.microsoft transformer operators
//     models/optimize fuses (MultiHeadAttention, Attention,
//     SkipLayerNormalization, BiasGelu, FastGelu, Gelu, QuickGelu) convert
//     too, per input and output as their schemas type them (int32 masks
//     and float32 statistics stay as they are); every other operator outside
//     the default domain stays float32 behind Casts.
//   - int8 (dynamic): constant MatMul weights (Gemm rewritten to MatMul,
//     patch-embedding Conv rewritten to a MatMul over patches) quantized to
//     int8 and run as com.microsoft DynamicQuantizeMatMul, the fused kernel
//     ONNX Runtime's CPU execution provider runs on VNNI/AVX2; activations
//     are quantized at run time to uint8. Attention's activation×activation
//     MatMuls stay float.
//   - int8-static: QuantizeLinear/DequantizeLinear pairs around the linear
//     layers, activation ranges from calibration (minmax, percentile,
//     entropy) over seeded synthetic images or a folder of images, run
//     through ONNX Runtime on an augmented copy of the model.
//   - int4 (weight-only): 2-D constant MatMul weights as com.microsoft
//     MatMulNBits, blockwise, laid out, rounded and packed exactly as ONNX
//     Runtime's own 4-bit quantizer does.
//
// A precision is a spec string (ParseSpec): "fp16:mixed", "int8:per-tensor",
// "int8-static:calib=entropy", "int4:block=64,asym,accuracy_level=4".
// Every transform returns a Report: per op type, how many nodes run in
// which precision, what fraction of the weight bytes is at 4/8/16/32 bits,
// and bytes before and after. A variant in which nothing was converted is
// an error (ErrNothingConverted), never a result.
//
// This package does not run models itself: calibration takes a Runner,
// which the profiler side implements on ONNX Runtime.
package quant
