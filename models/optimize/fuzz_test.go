package optimize_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"github.com/quantscope/quantscope/models/optimize"
)

// FuzzApply optimizes arbitrary models (mutations of small attention,
// and timm-export graphs): Apply must return a report or an error,
// never panic, and what it returns must pass the checker.
//
//	go test ./models/optimize -run '^$' -fuzz FuzzApply -fuzztime 60s
func FuzzApply(f *testing.F) {
	for _, m := range []*onnx.Model{
		attnBlock{}.build(f), attnBlock{bias: "const", extract: "split", head: true}.build(f),
		attnBlock{scale: "sdpa", extract: "slice"}.build(f),
		timmExport(f, true),
	} {
		b, err := proto.Marshal(m.Proto)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mp := &onnxpb.ModelProto{}
		if proto.Unmarshal(data, mp) != nil || mp.GetGraph() == nil {
			return
		}
		m := &onnx.Model{Proto: mp}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		r, err := optimize.Apply(ctx, m, optimize.Default())
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Apply took %v", d) // a loop bounded by a tensor's dims, not its data
		}
		if err != nil || !r.Changed() {
			return
		}
		if err := onnx.Check(m); err != nil {
			t.Fatalf("Apply returned a model that fails the check: %v", err)
		}
	})
}
