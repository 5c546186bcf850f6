package quant_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/models/quant/quanttest"
	"github.com/quantscope/quantscope/models/zoo"
	"github.com/quantscope/quantscope/profiler/ort"
)

// benchModel picks the model of the benchmarks: quanttest's DeiT-Ti
// shapes by default; QUANTSCOPE_BENCH_MODEL names a zoo model (e.g.
// deit-tiny, vit-base-16) or an .onnx file instead.
func benchModel(b *testing.B) (*onnx.Model, quant.ImageInput, quant.Preprocess) {
	b.Helper()
	name := os.Getenv("QUANTSCOPE_BENCH_MODEL")
	if name == "" {
		cfg := quanttest.DeiTTiny
		return buildViT(b, cfg), quant.ImageInput{Name: quanttest.InputName, Channels: 3, Height: cfg.Image, Width: cfg.Image}, quant.Preprocess{}
	}
	res, err := zoo.Resolve(context.Background(), name)
	if err != nil {
		b.Fatal(err)
	}
	m, err := onnx.Load(res.Path)
	if err != nil {
		b.Fatal(err)
	}
	in, err := quant.ImageInputOf(m)
	if err != nil {
		b.Fatal(err)
	}
	return m, in, quant.Preprocess{Mean: res.Spec.Preprocess.Mean, Std: res.Spec.Preprocess.Std}
}

// BenchmarkQuantize measures the quantizer itself (no ONNX Runtime): one
// Apply of each precision to a model already in memory.
func BenchmarkQuantize(b *testing.B) {
	src, _, _ := benchModel(b)
	for _, spec := range []string{"fp16", "int8", "int4"} {
		b.Run(spec, func(b *testing.B) {
			sp := quant.MustParseSpec(spec)
			for b.Loop() {
				b.StopTimer()
				m := src.Clone()
				b.StartTimer()
				if _, err := quant.Apply(context.Background(), m, sp, quant.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInference runs the FP32 model and its variants on ONNX
// Runtime's CPU execution provider, batch 8, one intra-op thread per
// physical core (QUANTSCOPE_BENCH_THREADS overrides). Each iteration runs
// every variant once, in turn, so that a machine shared with other work
// slows them alike; the metrics are each variant's best batch time
// ("<spec>_ms"), its speedup over FP32's best ("<spec>_x") and the median
// of its per-iteration speedups over the FP32 run beside it
// ("<spec>_xmed": on a busy machine the better estimate).
// QUANTSCOPE_BENCH_SPECS (";"-separated) picks the variants.
func BenchmarkInference(b *testing.B) {
	requireORT(b)
	src, in, pre := benchModel(b)
	const batch = 8
	data := make([]float32, 0, batch*in.SampleLen())
	for i := 0; i < batch; i++ {
		data = append(data, quant.SyntheticImage(in, pre, 99, i)...)
	}
	input := ort.Tensor{Shape: in.Shape(batch), Data: data}
	specs := []string{"fp32", "fp16", "int8", "int8:per-tensor", "int8-static", "int8-static:act=u8", "int4", "int4:accuracy_level=0"}
	if s := os.Getenv("QUANTSCOPE_BENCH_SPECS"); s != "" {
		specs = append([]string{"fp32"}, slices.DeleteFunc(strings.Split(s, ";"), func(s string) bool { return s == "fp32" })...)
	}
	threads, _ := strconv.Atoi(os.Getenv("QUANTSCOPE_BENCH_THREADS"))
	opts := calibOptions()
	opts.Calibration.Preprocess = pre
	sessions := make([]*ort.Session, len(specs))
	for i, spec := range specs {
		m := src.Clone()
		if spec != "fp32" {
			if _, err := quant.Apply(context.Background(), m, quant.MustParseSpec(spec), opts); err != nil {
				b.Fatalf("%s: %v", spec, err)
			}
		}
		s, err := ort.NewSession(saveModel(b, m, fmt.Sprintf("v%d.onnx", i)), ort.SessionConfig{IntraOpThreads: threads})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		if _, err := s.RunFloat32(input); err != nil { // warm-up
			b.Fatal(err)
		}
		sessions[i] = s
	}
	best := make([]time.Duration, len(specs))
	ratios := make([][]float64, len(specs))
	for b.Loop() {
		var fp32 time.Duration
		for i, s := range sessions {
			start := time.Now()
			if _, err := s.RunFloat32(input); err != nil {
				b.Fatal(err)
			}
			d := time.Since(start)
			if best[i] == 0 || d < best[i] {
				best[i] = d
			}
			if i == 0 {
				fp32 = d
			} else {
				ratios[i] = append(ratios[i], float64(fp32)/float64(d))
			}
		}
	}
	for i, spec := range specs {
		name := strings.NewReplacer(":", "+", ",", "+", "=", "").Replace(spec)
		b.ReportMetric(float64(best[i].Microseconds())/1000, name+"_ms")
		if i > 0 {
			b.ReportMetric(float64(best[0])/float64(best[i]), name+"_x")
			slices.Sort(ratios[i])
			b.ReportMetric(ratios[i][len(ratios[i])/2], name+"_xmed")
		}
	}
}
