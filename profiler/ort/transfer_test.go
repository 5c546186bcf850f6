package ort

import (
	"errors"
	"testing"
)

// TestMeasureTransferOnCPU runs the transfer measurement through the CPU
// EP's memory: pageable copies take the same path a GPU's do and must move
// the data; pinned memory does not exist there and says so.
func TestMeasureTransferOnCPU(t *testing.T) {
	requireORT(t)
	d, err := NewDeviceBound(reluModel(t), SessionConfig{IntraOpThreads: 1}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := d.Input(0)
	for i := range in {
		in[i] = float32(i) - 3
	}
	r, err := d.MeasureTransfer(false, 3)
	if err != nil {
		t.Fatal(err)
	}
	if r.Host != "pageable" || r.Bytes != int64(4*len(in)) || r.Rounds != 3 || r.H2DGBs <= 0 || r.D2HGBs <= 0 {
		t.Errorf("rate %+v", r)
	}
	if err := d.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CopyOutputs(); err != nil {
		t.Fatal(err)
	}
	for i, v := range d.Output(0) {
		if want := max(float32(i)-3, 0); v != want {
			t.Fatalf("y[%d] = %v, want %v: the measured copies did not carry the input", i, v, want)
		}
	}
	if _, err := d.MeasureTransfer(true, 1); !errors.Is(err, ErrNoPinnedMemory) {
		t.Errorf("pinned on the CPU EP: %v, want ErrNoPinnedMemory", err)
	}
	var none *DeviceBound
	if _, err := none.MeasureTransfer(false, 1); err == nil {
		t.Error("nil binding measured")
	}
}
