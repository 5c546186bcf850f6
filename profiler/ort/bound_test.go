package ort

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
)

func saveModel(t *testing.T, b *onnx.Builder) string {
	t.Helper()
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBoundRunsAtBatch: a [batch, 4] → ReLU model bound at batch 3 reads its
// seeded inputs and writes ReLU of them into the bound output.
func TestBoundRunsAtBatch(t *testing.T) {
	requireORT(t)
	b := onnx.NewBuilder("relu", 17)
	b.AddInput("x", onnx.Float, onnx.Dims("batch", 4))
	b.AddNode("Relu", []string{"x"}, []string{"y"})
	b.AddOutput("y", onnx.Float, onnx.Dims("batch", 4))
	path := saveModel(t, b)

	bd, err := NewBound(path, SessionConfig{IntraOpThreads: 1}, 3, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer bd.Close()
	if got := bd.InShape[0]; len(got) != 2 || got[0] != 3 || got[1] != 4 {
		t.Fatalf("input shape %v", got)
	}
	if err := bd.Run(); err != nil {
		t.Fatal(err)
	}
	in, out := bd.Input(0), bd.Output(0)
	var negatives int
	for i := range in {
		if in[i] < 0 {
			negatives++
		}
		if want := float32(math.Max(0, float64(in[i]))); out[i] != want {
			t.Fatalf("y[%d] = %v, want relu(%v)", i, out[i], in[i])
		}
	}
	if negatives == 0 || negatives == len(in) {
		t.Errorf("seeded inputs are not standard-normal-like: %v", in)
	}
	// Overwrite inputs in place: the next run sees them.
	for i := range in {
		in[i] = -1
	}
	if err := bd.Run(); err != nil || bd.Output(0)[0] != 0 {
		t.Errorf("after overwrite: %v %v", err, bd.Output(0))
	}
	// Same seed, same inputs.
	bd2, err := NewBound(path, SessionConfig{IntraOpThreads: 1}, 3, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer bd2.Close()
	bd3, _ := NewBound(path, SessionConfig{IntraOpThreads: 1}, 3, 7)
	defer bd3.Close()
	if bd2.Input(0)[5] != bd3.Input(0)[5] {
		t.Error("same seed gave different inputs")
	}
}

func TestBoundRejectsNonFloatAndUnknownDims(t *testing.T) {
	requireORT(t)
	ints := onnx.NewBuilder("ids", 17)
	ints.AddInput("ids", onnx.Int64, onnx.Dims("batch", 8))
	ints.AddNode("Identity", []string{"ids"}, []string{"out"})
	ints.AddOutput("out", onnx.Int64, onnx.Dims("batch", 8))

	unk := onnx.NewBuilder("seq", 17)
	unk.AddInput("x", onnx.Float, onnx.Dims("batch", "seq"))
	unk.AddNode("Relu", []string{"x"}, []string{"y"})
	unk.AddOutput("y", onnx.Float, onnx.Dims("batch", "seq"))

	tests := []struct {
		name string
		b    *onnx.Builder
		want string
		is   error
	}{
		{"int64 input", ints, `"ids"`, ErrNotFloatModel},
		{"unknown non-batch dimension", unk, "only the batch dimension may be symbolic", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := saveModel(t, tt.b)
			_, err := NewBound(path, SessionConfig{}, 2, 1)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want one naming %s and %q", err, path, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err %v is not %v", err, tt.is)
			}
		})
	}
}

func reluBytes(t *testing.T) []byte {
	t.Helper()
	b := onnx.NewBuilder("relu", 17)
	b.AddInput("x", onnx.Float, onnx.Dims("batch", 4))
	b.AddNode("Relu", []string{"x"}, []string{"y"})
	b.AddOutput("y", onnx.Float, onnx.Dims("batch", 4))
	data, err := os.ReadFile(saveModel(t, b))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
