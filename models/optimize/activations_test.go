package optimize

import (
	"testing"

	"github.com/quantscope/quantscope/models/quant/quanttest"
)

// The tiny ViT's largest per-sample value is an MLP hidden state of 17
// tokens × 64 (4352 bytes) or the input image (32×32×3 floats, 12288
// bytes); the estimate is three times the largest intermediate, and at
// least the inputs and outputs.
func TestPeakActivationBytes(t *testing.T) {
	for _, batch := range []int{0, 4} { // symbolic, then fixed
		cfg := quanttest.Tiny
		cfg.Batch = batch
		m, err := quanttest.ViT(cfg)
		if err != nil {
			t.Fatal(err)
		}
		got := PeakActivationBytes(m)
		input := int64(3 * 32 * 32 * 4)
		if got < 3*input || got > 3*input+4*4096 {
			t.Errorf("batch %d: %d bytes per sample, want about 3 × the %d-byte input", batch, got, input)
		}
	}
	if PeakActivationBytes(nil) != 0 {
		t.Error("nil model")
	}
}
