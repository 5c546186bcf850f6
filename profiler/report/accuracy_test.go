package report

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/profiler/study"
)

// Records with accuracy get the report's accuracy section, the CSV's
// accuracy columns and the acc-drop gate.
func TestReportAccuracy(t *testing.T) {
	set := "abc123def456"
	acc := func(top1 int, paired *accuracy.Paired) *accuracy.Result {
		return &accuracy.Result{Dataset: "/data/val", Set: set, Preprocess: "224×224: shorter side to 248 bicubic", Classes: 1000,
			Skipped: 2, Counts: accuracy.Counts{Images: 50000, Top1: top1, Top5: 47000}, VsFP32: paired}
	}
	var recs []study.Record
	for i, f := range []struct {
		prec string
		a    *accuracy.Result
	}{
		{"fp32", acc(40500, nil)},
		// int8: 5 images lost, 3 won: no difference to speak of.
		{"int8", acc(40498, &accuracy.Paired{Top1: accuracy.Table{Both: 40495, VariantOnly: 3, RefOnly: 5, Neither: 9497}})},
		// int4: 400 lost, 100 won: −0.6 points.
		{"int4", acc(40200, &accuracy.Paired{Top1: accuracy.Table{Both: 40100, VariantOnly: 100, RefOnly: 400, Neither: 9400}})},
	} {
		x := fx{model: "vit-base-16", prec: f.prec, ep: "cpu", batch: 8, p50: 100 - 20*float64(i), file: 1e8, rss: 5e8, fid: selfFid}
		r := x.record(cpuHost124, i)
		r.Metrics.Accuracy = f.a
		recs = append(recs, r)
	}
	g, err := ParseGate("acc-drop<=0.5")
	if err != nil {
		t.Fatal(err)
	}
	rep := Build([]Source{{Path: "acc.jsonl", Records: recs}}, Options{Gate: g, ModelInfo: testModelInfo})
	var md bytes.Buffer
	if err := rep.Render(&md, "md", nil); err != nil {
		t.Fatal(err)
	}
	text := md.String()
	for _, want := range []string{
		"## Accuracy on labelled images",
		"`/data/val`: 50,000 images of 1000 classes, 224×224: shorter side to 248 bicubic (2 unreadable files skipped)",
		"| vit-base-16 | int8 | 8 | 50,000 | 81.0% [80.6, 81.3] | 94.0% [93.8, 94.2] | 0.0 [0.0, 0.0] | 0.73 | not significant |",
		"| vit-base-16 | int4 | 8 | 50,000 | 80.4% [80.0, 80.7] | 94.0% [93.8, 94.2] | −0.6 [−0.7, −0.5] | 1.7e-43 | significant |",
		"| reference |",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, e := range rep.Groups[0].Entries {
		want := e.Experiment.Precision != "int4"
		if e.Gate.Pass != want {
			t.Errorf("%s: gate pass %v, want %v (%v)", e.Experiment.Precision, e.Gate.Pass, want, e.Gate.Failed)
		}
	}
	var b bytes.Buffer
	if err := rep.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	if len(rows[0]) != len(csvHeader())+len(AccuracyColumns) || rows[3][col["acc_top1_delta_pt"]] != "-0.6" || rows[1][col["acc_top1_delta_pt"]] != "" ||
		rows[2][col["acc_images"]] != "50000" {
		t.Errorf("csv accuracy columns: %v / %v", rows[0], rows[3])
	}
}
