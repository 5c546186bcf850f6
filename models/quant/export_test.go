package quant

// Exported for the external tests (package quant_test) only.

// QuantizeNBits4ForTest exposes quantizeNBits4 and dequantNBits4.
func QuantizeNBits4ForTest(w []float32, k, n, block int, asym bool) (packed []byte, scales []float32, zps []byte, dequant []float32) {
	q := quantizeNBits4(w, k, n, block, asym)
	return q.packed, q.scales, q.zps, dequantNBits4(q, k, n, block)
}
