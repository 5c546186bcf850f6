package optimize_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/optimize"
)

// BenchmarkVsExport measures what a user gets against the export as ONNX
// Runtime runs it: the file named by QUANTSCOPE_BENCH_EXPORT (e.g. a
// full-size ViT-B/16 from scripts/export-vit-variants.py --preset base) is
// the baseline; fused FP32, fused int8, fused fp16 for the CPU EP
// (fp16:ep=cpu), plain fused fp16 and fused fp16:storage each run
// alternately with it, one batch of 8 each per iteration, and report the
// median speedup, the fastest-run speedup, the file size against the
// export's and the cosine of the outputs. QUANTSCOPE_BENCH_SPECS
// (comma-separated, default all) picks the variants.
//
//	QUANTSCOPE_BENCH_EXPORT=vit-b16-hf.onnx go test ./models/optimize -run '^$' -bench VsExport -benchtime 8x
func BenchmarkVsExport(b *testing.B) {
	src := os.Getenv("QUANTSCOPE_BENCH_EXPORT")
	if src == "" {
		b.Skip("QUANTSCOPE_BENCH_EXPORT names the export to measure")
	}
	requireORT(b)
	ctx := context.Background()
	m, err := onnx.Load(src)
	if err != nil {
		b.Fatal(err)
	}
	exportBytes, err := onnx.FilesSize(src)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	fused := m.Clone()
	r, err := optimize.Apply(ctx, fused, optimize.Default())
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: %s (%d → %d nodes), %d near misses", filepath.Base(src), r, r.NodesBefore, r.NodesAfter, len(r.Misses))
	m = nil
	want := []string{"fp32", "int8", "fp16:ep=cpu", "fp16", "fp16:storage"}
	if s := os.Getenv("QUANTSCOPE_BENCH_SPECS"); s != "" {
		want = strings.Split(s, ",")
	}
	paths := map[string]string{}
	for _, spec := range want {
		v := fused
		if spec != "fp32" {
			if v, _, err = quantizeClone(fused, spec); err != nil {
				b.Fatal(err)
			}
		}
		p := filepath.Join(dir, strings.NewReplacer(":", "-", "=", "").Replace(spec)+".onnx")
		if err := onnx.Save(v, p, onnx.SaveOptions{ExternalData: true}); err != nil {
			b.Fatal(err)
		}
		paths[spec] = p
	}
	fused = nil
	for _, spec := range want {
		b.Run(spec+"_vs_export", func(b *testing.B) {
			base, variant := bound(b, src), bound(b, paths[spec])
			defer base.Close()
			defer variant.Close()
			var tb, tv, ratio []float64
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				first, second := base, variant
				if i%2 == 1 {
					first, second = variant, base
				}
				d1, err := timed(first)
				if err != nil {
					b.Fatal(err)
				}
				d2, err := timed(second)
				if err != nil {
					b.Fatal(err)
				}
				if i%2 == 1 {
					d1, d2 = d2, d1
				}
				tb, tv, ratio = append(tb, d1), append(tv, d2), append(ratio, d1/d2)
			}
			b.StopTimer()
			size, err := onnx.FilesSize(paths[spec])
			if err != nil {
				b.Fatal(err)
			}
			cos, maxAbs := compare(base.Output(0), variant.Output(0))
			b.ReportMetric(median(ratio), "speedup")
			b.ReportMetric(slices.Min(tb)/slices.Min(tv), "speedup-best")
			b.ReportMetric(benchBatch/median(tb), "export-samples/s")
			b.ReportMetric(benchBatch/median(tv), "variant-samples/s")
			b.ReportMetric(float64(size)/float64(exportBytes), "size")
			b.ReportMetric(cos, "cosine")
			b.ReportMetric(maxAbs, "max-abs-err")
		})
	}
}
