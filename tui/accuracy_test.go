package tui

import (
	"strings"
	"testing"

	"github.com/muesli/termenv"

	"github.com/quantscope/quantscope/models/accuracy"
	"github.com/quantscope/quantscope/profiler/study"
)

// withAccuracy adds accuracy on labelled images to a record.
func withAccuracy(r study.Record, top1 int, paired *accuracy.Paired) study.Record {
	r.Metrics.Accuracy = &accuracy.Result{Dataset: "/data/val", Set: "k", Classes: 1000, Counts: accuracy.Counts{Images: 10000, Top1: top1, Top5: 9500}, VsFP32: paired}
	return r
}

// The table shows acc and acc Δ only when a row has accuracy; a significant
// loss is marked.
func TestTableAccuracyColumns(t *testing.T) {
	st := newStyles(termenv.Ascii, true, nil)
	plain := study.Summarize([]study.Record{rec("a", "fp32", 100, 10, 100<<20, 100<<20, 1, 1), rec("a", "int8", 300, 4, 50<<20, 25<<20, 0.99, 0.95)})
	tb := newTable()
	if v := tb.view(plain, st, 160, 5, true); strings.Contains(v, "acc") {
		t.Errorf("accuracy columns without accuracy:\n%s", v)
	}
	rows := study.Summarize([]study.Record{
		withAccuracy(rec("a", "fp32", 100, 10, 100<<20, 100<<20, 1, 1), 8100, nil),
		withAccuracy(rec("a", "int8", 300, 4, 50<<20, 25<<20, 0.99, 0.95), 8095, &accuracy.Paired{Top1: accuracy.Table{Both: 8090, VariantOnly: 5, RefOnly: 10, Neither: 1895}}),
		withAccuracy(rec("a", "int4", 200, 6, 40<<20, 15<<20, 0.98, 0.9), 8000, &accuracy.Paired{Top1: accuracy.Table{Both: 7990, VariantOnly: 10, RefOnly: 110, Neither: 1890}}),
	})
	v := tb.view(rows, st, 160, 5, true)
	lines := strings.Split(v, "\n")
	if !strings.Contains(lines[0], "acc Δ") {
		t.Fatalf("no acc Δ column:\n%s", v)
	}
	for _, want := range []string{"81.0%", "ref", "−0.1", "−1.0*"} {
		if !strings.Contains(v, want) {
			t.Errorf("table lacks %q:\n%s", want, v)
		}
	}
	// Sorting by acc Δ puts the worst loss last when descending.
	for tb.sortCol != colAccDelta {
		tb.cycleSort()
	}
	got := tb.sorted(rows)
	if got[0].Experiment.Precision != "int8" || got[1].Experiment.Precision != "int4" {
		t.Errorf("sorted by acc Δ: %s %s %s", got[0].Experiment.Precision, got[1].Experiment.Precision, got[2].Experiment.Precision)
	}
}

// The setup screen takes a labelled image folder, checks it in the
// background, refuses to start on a bad one and queues the study with it.
func TestSetupEvalDir(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	m := *f.m.setup()
	m.setCur = setEvalDir
	m.pane = paneSettings
	m.beginInput(inputSetting, "", "")
	m.input.SetValue("../models/imageset/testdata/folder/does-not-exist")
	m, cmd, _ := m.updateInput(keyMsg("enter"))
	if cmd == nil || m.evalNote != "checking…" {
		t.Fatalf("no check started: %q", m.evalNote)
	}
	m.evalChecked(cmd().(evalCheckedMsg))
	if !m.evalErr || !strings.Contains(m.evalNote, "no such file") {
		t.Fatalf("missing folder: %q", m.evalNote)
	}
	m.items = []modelItem{{info: ModelInfo{Name: "deit-tiny"}, selected: true}}
	if m2, _, req := m.update(keyMsg("enter"), defaultKeyMap()); req != nil || !strings.Contains(m2.err, "images: ") {
		t.Fatalf("started with a bad folder: %q", m2.err)
	}
	m.beginInput(inputSetting, "", "")
	m.input.SetValue("../models/imageset/testdata/folder")
	m, cmd, _ = m.updateInput(keyMsg("enter"))
	m.evalChecked(cmd().(evalCheckedMsg))
	if m.evalErr || !strings.HasPrefix(m.evalNote, "12 images · 4 classes") {
		t.Fatalf("good folder: %q", m.evalNote)
	}
	_, _, req := m.update(keyMsg("enter"), defaultKeyMap())
	if req == nil || req.evalDir != "../models/imageset/testdata/folder" {
		t.Fatalf("start request %+v", req)
	}
	// Space on the Images row clears it.
	m.cycleSetting(1)
	if m.evalDir != "" || m.evalNote != "" {
		t.Errorf("not cleared: %q %q", m.evalDir, m.evalNote)
	}
}

// The run detail shows a variant's accuracy and its paired difference.
func TestDetailAccuracy(t *testing.T) {
	f := newFixture(t, 140, 50, nil)
	f.m.sess.loadRecords([]study.Record{
		withAccuracy(rec("deit-tiny", "fp32", 100, 10, 100<<20, 100<<20, 1, 1), 8100, nil),
		withAccuracy(rec("deit-tiny", "int8", 300, 4, 50<<20, 25<<20, 0.99, 0.95), 8000, &accuracy.Paired{Top1: accuracy.Table{Both: 7990, VariantOnly: 10, RefOnly: 110, Neither: 1890}}),
	}, nil)
	sec := accuracySection(f.m.viewCtx(), f.m.sess.records[1].Metrics.Accuracy)
	text := strings.Join(sec.lines, "\n")
	for _, want := range []string{"10,000 images", "top-1 80.0% [79.2, 80.8]", "−1.0 pt [−1.2, −0.8], significant"} {
		if !strings.Contains(text, want) {
			t.Errorf("detail lacks %q:\n%s", want, text)
		}
	}
}
