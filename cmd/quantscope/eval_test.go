package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/profiler/study"
)

// trainedFixture is a copy of the trained ViT of models/testdata/trained
// and its held-out images laid out as an ImageFolder (DIR/classK/NNNN.png).
func trainedFixture(t *testing.T) (model, evalDir string) {
	t.Helper()
	root, err := filepath.Abs("../../models/testdata/trained")
	if err != nil {
		t.Fatal(err)
	}
	evalDir = filepath.Join(t.TempDir(), "eval")
	files, err := filepath.Glob(filepath.Join(root, "images", "*.png"))
	if err != nil || len(files) != 64 {
		t.Fatalf("%d fixture images, %v", len(files), err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".png")
		_, cls, _ := strings.Cut(name, "-")
		if err := os.MkdirAll(filepath.Join(evalDir, cls), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(f, filepath.Join(evalDir, cls, name+".png")); err != nil {
			t.Fatal(err)
		}
	}
	// A copy of the model: variants and fused graphs are cached beside it,
	// which must not be the checkout.
	model = filepath.Join(t.TempDir(), "vit-synthetic.onnx")
	raw, err := os.ReadFile(filepath.Join(root, "vit-synthetic.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(model, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return model, evalDir
}

// bench --eval-dir on the trained fixture: FP32 gets the accuracy its
// training script measured in PyTorch on the same images (62 of 64), each
// variant is paired with it, and --gate acc-drop decides the exit status.
func TestBenchAccuracy(t *testing.T) {
	requireORT(t)
	model, evalDir := trainedFixture(t)
	dir := t.TempDir()
	t.Setenv("QUANTSCOPE_CACHE_DIR", filepath.Join(dir, "cache"))
	out := filepath.Join(dir, "r.jsonl")
	args := []string{"bench", "--models", model, "--precisions", "int8", "--batch", "8", "--iters", "3", "--threads", "1",
		"--eval-dir", evalDir, "--crop-pct", "1", "--out", out, "--format", "json"}
	stdout, stderr, code := cli(t, dir, append(args, "--gate", "acc-drop<=0.5")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	// The exported-row schema (report.RowColumns): accuracy as flat acc_*
	// keys, absent where unknown.
	var rows []map[string]any
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0]["acc_images"] == nil || rows[1]["acc_images"] == nil {
		t.Fatalf("rows %+v", rows)
	}
	fp32, int8 := rows[0], rows[1]
	// train.json: accuracy 0.96875 on these 64 images.
	if fp32["acc_images"] != 64.0 || fp32["acc_top1"] != 62.0/64 || fp32["acc_top1_delta_pt"] != nil {
		t.Errorf("fp32 accuracy %+v, want 62/64 and no pairing", fp32)
	}
	if d, ok := int8["acc_top1_delta_pt"].(float64); !ok || d > 0.5 || int8["acc_mcnemar_p"] == nil {
		t.Errorf("int8 accuracy %+v, want a paired difference", int8)
	}
	if !strings.Contains(stderr, "images for vit-synthetic: 64 decoded") {
		t.Errorf("no decoding report in stderr:\n%s", stderr)
	}
	recs, _, err := study.ReadResults(out)
	if err != nil || len(recs) != 2 || recs[1].Metrics.Accuracy == nil || recs[1].Metrics.Accuracy.VsFP32 == nil {
		t.Fatalf("records: %v", err)
	}
	if a := recs[1].Metrics.Accuracy; a.Set == "" || !strings.Contains(a.Preprocess, "32×32") || a.Classes != 10 {
		t.Errorf("record accuracy %+v", a)
	}

	// A gate no variant can pass (accuracy must rise by a point): exit 3;
	// the second run reads the preprocessed images from the cache.
	_, stderr, code = cli(t, dir, append(args, "--resume", "--gate", "acc-drop<=-1")...)
	if code != exitGateFailed || !strings.Contains(stderr, "top-1 accuracy drop") {
		t.Errorf("impossible gate: exit %d\n%s", code, stderr)
	}
}

// Every bad input of --eval-dir stops bench before it measures anything,
// with a message that names the problem.
func TestBenchAccuracyBadInput(t *testing.T) {
	dir := t.TempDir()
	model := tinyImageModel(t, dir)
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)
	flat := filepath.Join(dir, "flat")
	os.MkdirAll(flat, 0o755)
	os.WriteFile(filepath.Join(flat, "a.png"), []byte("x"), 0o644)
	labels := filepath.Join(dir, "labels.txt")
	os.WriteFile(labels, []byte("cat\n"), 0o644)
	good := filepath.Join(dir, "good")
	os.MkdirAll(filepath.Join(good, "dog"), 0o755)
	os.WriteFile(filepath.Join(good, "dog", "1.png"), []byte("x"), 0o644)
	base := []string{"bench", "--models", model, "--precisions", "int8", "--out", filepath.Join(dir, "r.jsonl")}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--eval-dir", empty}, "it is empty"},
		{[]string{"--eval-dir", flat}, "no class folders"},
		{[]string{"--eval-dir", good, "--labels", labels}, "have no line in the labels file"},
		{[]string{"--labels", labels}, "--labels applies with --eval-dir only"},
		{[]string{"--eval-dir", good, "--crop-pct", "1.5"}, "--crop-pct 1.5"},
		{[]string{"--eval-dir", good, "--mean", "1,2"}, "--mean"},
		{[]string{"--gate", "acc-drop<=0.5"}, "give the labelled images with --eval-dir"},
	} {
		_, stderr, code := cli(t, dir, append(base, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, stderr, c.want)
		}
	}
}

// quantize --eval-dir scores FP32 and the variant on the same images and
// pairs them.
func TestQuantizeAccuracy(t *testing.T) {
	requireORT(t)
	model, evalDir := trainedFixture(t)
	dir := t.TempDir()
	t.Setenv("QUANTSCOPE_CACHE_DIR", filepath.Join(dir, "cache"))
	stdout, stderr, code := cli(t, dir, "quantize", "--model", model, "--precision", "int8", "--out", filepath.Join(dir, "v.onnx"),
		"--eval-dir", evalDir, "--crop-pct", "1", "--threads", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var res quantizeResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	a, b := res.AccuracyFP32, res.Accuracy
	if a == nil || b == nil || a.Images != 64 || a.Top1 != 62 || b.VsFP32 == nil || b.VsFP32.Top1.N() != 64 {
		t.Fatalf("accuracy fp32 %+v variant %+v", a, b)
	}
	if res.Fidelity == nil {
		t.Error("--eval-dir did not imply --check")
	}
}

// quantize --plan reproduces a per-layer choice; a plan and a precision
// together are refused.
func TestQuantizePlan(t *testing.T) {
	model, _ := trainedFixture(t)
	dir := t.TempDir()
	plan := filepath.Join(dir, "plan.json")
	os.WriteFile(plan, []byte(`{"base": "int4", "layers": {"head": "fp32", "blocks.0": "int8"}}`), 0o644)
	stdout, stderr, code := cli(t, dir, "quantize", "--model", model, "--plan", plan, "--out", filepath.Join(dir, "v.onnx"), "--json", "--optimize=false")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var res quantizeResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.Precision != "int4:keep=head,int8=blocks.0" || res.Report.Count("", "int8") != 4 || res.Report.Count("Gemm", "fp32") != 1 {
		t.Errorf("precision %q, int8 nodes %d, fp32 Gemm %d", res.Precision, res.Report.Count("", "int8"), res.Report.Count("Gemm", "fp32"))
	}
	_, stderr, code = cli(t, dir, "quantize", "--model", model, "--plan", plan, "--precision", "int8")
	if code == 0 || !strings.Contains(stderr, "--precision and --plan both given") {
		t.Errorf("both flags: exit %d %s", code, stderr)
	}
	_, stderr, code = cli(t, dir, "quantize", "--model", model, "--precision", "int4:keep=blocks.9")
	if code == 0 || !strings.Contains(stderr, "no such layer: blocks.9") {
		t.Errorf("unknown layer: exit %d %s", code, stderr)
	}
}

// quantscope sensitivity --json ranks the trained fixture's blocks on its
// labelled images.
func TestSensitivityCommand(t *testing.T) {
	requireORT(t)
	model, evalDir := trainedFixture(t)
	dir := t.TempDir()
	t.Setenv("QUANTSCOPE_CACHE_DIR", filepath.Join(dir, "cache"))
	stdout, stderr, code := cli(t, dir, "sensitivity", "--model", model, "--precision", "int4", "--by", "block",
		"--eval-dir", evalDir, "--crop-pct", "1", "--samples", "16", "--threads", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var r struct {
		By          string `json:"by"`
		Samples     int    `json:"samples"`
		FP32Correct int    `json:"fp32_correct"`
		Candidates  []struct {
			Name    string  `json:"name"`
			Loss    float64 `json:"loss"`
			Correct int     `json:"correct"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	// patch_embed, blocks.0–3, head.
	if r.By != "block" || r.Samples != 16 || r.FP32Correct < 14 || len(r.Candidates) != 6 {
		t.Fatalf("result %+v", r)
	}
	for i := 1; i < len(r.Candidates); i++ {
		if r.Candidates[i].Loss > r.Candidates[i-1].Loss {
			t.Errorf("not ranked: %+v", r.Candidates)
		}
	}
	_, stderr, code = cli(t, dir, "sensitivity", "--model", model, "--precision", "fp16")
	if code == 0 || !strings.Contains(stderr, "want int8, int8-static or int4") {
		t.Errorf("fp16: exit %d %s", code, stderr)
	}
}

// tune on the trained fixture: every candidate a bench record, the winner
// written with its plan, and the search's JSON.
func TestTuneCommand(t *testing.T) {
	requireORT(t)
	model, evalDir := trainedFixture(t)
	dir := t.TempDir()
	t.Setenv("QUANTSCOPE_CACHE_DIR", filepath.Join(dir, "cache"))
	out := filepath.Join(dir, "tune.jsonl")
	winner := filepath.Join(dir, "best.onnx")
	stdout, stderr, code := cli(t, dir, "tune", "--model", model, "--budget", "acc-drop<=0.5", "--objective", "size",
		"--eval-dir", evalDir, "--crop-pct", "1", "--duration", "200ms", "--threads", "1", "--out", out, "--write", winner, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var r struct {
		Winner struct {
			Spec string `json:"spec"`
			Pass bool   `json:"pass"`
		} `json:"winner"`
		Steps []struct {
			Spec string `json:"spec"`
			Why  string `json:"why"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Winner.Pass || len(r.Steps) < 2 || r.Steps[0].Spec != "int8" || r.Steps[1].Spec != "int4" {
		t.Fatalf("result %+v", r)
	}
	recs, _, err := study.ReadResults(out)
	if err != nil || len(recs) != len(r.Steps)+1 || recs[0].Experiment.Precision != "fp32" {
		t.Fatalf("%d records for %d steps: %v", len(recs), len(r.Steps), err)
	}
	for _, f := range []string{winner, filepath.Join(dir, "best.plan.json"), filepath.Join(dir, "tune.tune.json")} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	// The plan reproduces the winner's spec.
	stdout, stderr, code = cli(t, dir, "quantize", "--model", model, "--plan", filepath.Join(dir, "best.plan.json"), "--json", "--out", filepath.Join(dir, "again.onnx"))
	var q quantizeResult
	if code != 0 || json.Unmarshal([]byte(stdout), &q) != nil || q.Precision != r.Winner.Spec {
		t.Errorf("quantize --plan: exit %d, precision %q, want %q\n%s", code, q.Precision, r.Winner.Spec, stderr)
	}
	// Bad input.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--budget", "acc-drop<=0.5"}, "give the labelled images with --eval-dir"},
		{[]string{"--budget", "cos>=0.999", "--objective", "speed"}, "want throughput, latency or size"},
		{[]string{"--budget", "bogus"}, "--budget"},
	} {
		_, stderr, code := cli(t, dir, append([]string{"tune", "--model", model}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d %q", c.args, code, stderr)
		}
	}
}
