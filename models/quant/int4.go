package quant

import (
	"context"

	"github.com/quantscope/quantscope/models/onnx"
)

// toInt4 replaces every linear layer by com.microsoft MatMulNBits: the
// weight quantized blockwise to 4 bits along K (quantizeNBits4, bit for
// bit what ONNX Runtime's MatMulNBitsQuantizer writes), B as uint8
// [N, k_blocks, block/2], scales as float32 [N·k_blocks], packed uint8
// zero points when asymmetric, the bias as MatMulNBits' bias input.
// Activations stay float32; accuracy_level 4 lets the CPU kernel quantize
// them to int8 per block.
func toInt4(ctx context.Context, st *state) error {
	layers := findLinears(st.ix, st.types, st.t, candidateOptions{
		exclude: st.exclude, foldBias: true, convs: true,
		keepFirst: st.spec.KeepFirst, keepLast: st.spec.KeepLast,
	})
	block := st.spec.blockSize()
	level := st.spec.accuracyLevel()
	e := &emitter{ix: st.ix}
	for i, l := range layers {
		if i%8 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		base := l.node.GetName()
		a := l.input
		if l.patch != nil {
			a = e.patchIn(l, base)
			st.t.note("%s", patchNote(base, l.patch.kh, l.patch.kw))
		}
		if l.node.GetOpType() == "Gemm" {
			st.t.note("Gemm %s rewritten as a MatMul (+ bias)", base)
		}
		w, err := l.weight(st.ix)
		if err != nil {
			return err
		}
		q := quantizeNBits4(w, l.k, l.n, block, st.spec.Asym)
		bq := e.init(base+"_Q4", func(n string) (*onnxTensor, error) {
			return onnx.NewTensorRaw(n, onnx.Uint8, []int64{int64(l.n), int64(q.kBlocks), int64(q.blob)}, q.packed)
		})
		scales := e.floats(base+"_scales", []int64{int64(l.n * q.kBlocks)}, q.scales)
		inputs := []string{a, bq, scales}
		if q.zps != nil {
			zp := e.init(base+"_zero_points", func(n string) (*onnxTensor, error) {
				return onnx.NewTensorRaw(n, onnx.Uint8, []int64{int64(len(q.zps))}, q.zps)
			})
			inputs = append(inputs, zp)
		}
		if l.bias != nil {
			for len(inputs) < 5 {
				inputs = append(inputs, "")
			}
			inputs = append(inputs, e.floats(base+"_bias", []int64{int64(l.n)}, l.bias))
		}
		y := l.output
		if l.patch != nil || l.gemmC != "" {
			y = e.value(base + "_int4_out")
		}
		attrs := []*onnxAttr{
			onnx.AttrInt("K", int64(l.k)), onnx.AttrInt("N", int64(l.n)),
			onnx.AttrInt("bits", 4), onnx.AttrInt("block_size", int64(block)),
		}
		if level != 0 {
			attrs = append(attrs, onnx.AttrInt("accuracy_level", int64(level)))
		}
		e.node(onnx.MicrosoftDomain, "MatMulNBits", base+"_Q4", inputs, []string{y}, attrs...)
		y = e.gemmTail(l, y, base)
		if l.patch != nil {
			e.patchOut(y, l.output, base)
		}
		st.t.set(base, PrecInt4)
		st.t.form(base, FormNBits)
	}
	return splice(st.ix, layers, e)
}
