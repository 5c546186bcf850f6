package study

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quantscope/quantscope/profiler/worker"
)

// TestDinoFP16NeedsLessMemoryThanFP32 runs dino-vits16 at FP32 and FP16
// (fused, batch 1) through the real preparer and worker. FP16 needs less
// memory than FP32, but by its peak working set (the Casts back to FP32
// and the activations count) far less than the 4× that resident-after-load
// claimed; the records declare a synthetic-weight backbone and say which
// inputs fidelity ran on.
func TestDinoFP16NeedsLessMemoryThanFP32(t *testing.T) {
	t.Setenv("QUANTSCOPE_CACHE_DIR", t.TempDir())
	requireORTForStudy(t)
	dir := t.TempDir()
	exe, _ := os.Executable()
	plan, err := Plan(PlanConfig{Models: []string{"dino-vits16"}, Precisions: []string{"fp16"}, Optimize: true})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := Run(context.Background(), plan, RunConfig{
		Out: filepath.Join(dir, "results.jsonl"), Prepare: NewPreparer(), Iters: 3, MinWarmup: 2, MaxWarmup: 3, FidelitySamples: 6,
		Timeout: 5 * time.Minute,
		Worker:  worker.Options{Exe: exe, Args: []string{"-test.run=^$"}, Env: []string{"QS_STUDY_WORKER=serve"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := Summarize(recs)
	if len(rows) != 2 || rows[0].Status != StatusOK || rows[1].Status != StatusOK {
		t.Fatalf("rows %+v", rows)
	}
	fp32, fp16 := rows[0], rows[1]
	t.Logf("peak working set fp32 %.1f MiB, fp16 %.1f MiB (%.2f×); resident after load %.1f vs %.1f MiB (%.2f×)",
		mib(fp32.WorkingSet), mib(fp16.WorkingSet), fp16.MemReduction,
		mib(fp32.ResidentAfterLoad), mib(fp16.ResidentAfterLoad), float64(fp32.ResidentAfterLoad)/float64(fp16.ResidentAfterLoad))
	if fp32.WorkingSetWhere != "host" || fp16.WorkingSet <= 0 || fp32.WorkingSet <= fp16.WorkingSet {
		t.Errorf("peak working set fp32 %d, fp16 %d (%s): want fp16 below fp32", fp32.WorkingSet, fp16.WorkingSet, fp32.WorkingSetWhere)
	}
	if fp16.WorkingSet <= fp16.ResidentAfterLoad {
		t.Errorf("fp16 peak working set %d not above what loading left resident (%d): the run's allocations are missing", fp16.WorkingSet, fp16.ResidentAfterLoad)
	}
	if fp16.MemReduction >= 2 {
		t.Errorf("fp16 needs %.2f× less memory than fp32: its FP32 activations and Casts are not counted", fp16.MemReduction)
	}
	if tr := fp16.Traits; !tr.Synthetic() || !tr.Backbone() || tr.Source != "catalog" {
		t.Errorf("dino-vits16 traits %+v, want a synthetic-weight backbone from the catalog", tr)
	}
	f := fp16.Last.Metrics.Fidelity
	if f == nil || !strings.Contains(f.Inputs, "6 seeded synthetic images (seed 7, imagenet normalisation)") || f.CosineMean < 0.999 {
		t.Errorf("fp16 fidelity %+v", f)
	}
	if fp16.Last.Metrics.Contention == nil {
		t.Error("contention not measured")
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
