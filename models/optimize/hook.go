package optimize

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/quantscope/quantscope/models/onnx"
)

// For returns the options to optimize a model with before it is converted
// to the precision kind ("fp32", "fp16", "int8", "int8-static", "int4";
// a spec's kind, before any ':'), and whether to optimize at all. It is
// the hook `quantscope bench` and `quantscope quantize` call when
// --optimize is on (DefaultEnabled). Every kind gets every fusion:
//
//   - int8, int8-static, int4: the quantizers convert the MatMuls the
//     fused graph keeps (the q, k, v projections feeding
//     MultiHeadAttention, the MLP's feeding BiasGelu); the fused operators
//     stay float32, as attention, norms and GELU do in the unfused
//     variants.
//   - fp16: the fp16 transform converts the fused com.microsoft operators
//     (MultiHeadAttention, Attention, SkipLayerNormalization and the GELU
//     family) to float16 like default-domain operators, so the fused graph
//     stays float16 end to end and the CUDA execution provider runs its
//     float16 fused and flash attention kernels; fp16:mixed keeps the
//     fused norms and attention in float32, as it keeps LayerNormalization
//     and Softmax.
func For(kind string) (Options, bool) {
	switch kind {
	case "fp32", "fp16", "int8", "int8-static", "int4":
		return Default(), true
	}
	return Options{}, false
}

// File optimizes the model at src with opts and writes the result to dst
// atomically, with external data when the source had any or the model is
// large. Nothing is written when nothing matched: the report says so, and
// the caller uses src as it is.
func File(ctx context.Context, src, dst string, opts Options) (*Report, error) {
	m, err := onnx.Load(src)
	if err != nil {
		return nil, fmt.Errorf("optimize %s: %w", src, err)
	}
	external, err := onnx.HasExternalData(src)
	if err != nil {
		return nil, fmt.Errorf("optimize %s: %w", src, err)
	}
	r, err := Apply(ctx, m, opts)
	if err != nil {
		return nil, fmt.Errorf("optimize %s: %w", src, err)
	}
	if !r.Changed() {
		return r, nil
	}
	err = onnx.Save(m, dst, onnx.SaveOptions{ExternalData: external})
	// The model and its weights are garbage from here. Return them to the
	// OS now: the caller's next step is usually to load the result, and
	// Go's collector would otherwise wait until the heap had doubled, so a
	// 2.5 GB model would peak at twice its size.
	m = nil
	debug.FreeOSMemory()
	if err != nil {
		return nil, fmt.Errorf("optimize %s: write %s: %w", src, dst, err)
	}
	return r, nil
}
