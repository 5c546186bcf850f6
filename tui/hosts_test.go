package tui

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/quantscope/quantscope/profiler/study"
)

var (
	h100Host = study.Host{Hostname: "gpu-node-3", CPU: "AMD EPYC 9354", GPU: "NVIDIA H100 80GB HBM3", Driver: "580.65.06", CUDA: "13.0", ORTVersion: "1.29.0"}
	h200Pod  = study.Host{Hostname: "bench-h200-0-x4k2p", Group: "bench-h200", CPU: "Intel Xeon 8480+", GPU: "NVIDIA H200", Driver: "580.65.06", CUDA: "13.0", ORTVersion: "1.29.0"}
)

// onHost is r measured on h with the CUDA EP.
func onHost(r study.Record, h study.Host) study.Record {
	r.Host = h
	r.Experiment.EP = "cuda"
	return r
}

func writeRecords(t *testing.T, path string, recs ...study.Record) {
	t.Helper()
	var b strings.Builder
	for _, r := range recs {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// twoHostFiles writes an H100 study and the merged shards of an H200 Job:
// the same deit-tiny configurations at different speeds.
func twoHostFiles(t *testing.T) (h100, h200 string) {
	dir := t.TempDir()
	h100, h200 = filepath.Join(dir, "h100.jsonl"), filepath.Join(dir, "h200.jsonl")
	writeRecords(t, h100,
		onHost(rec("deit-tiny", "fp32", 1000, 0.9, 120<<20, 23<<20, 1, 1), h100Host),
		onHost(rec("deit-tiny", "fp16", 2000, 0.45, 70<<20, 12<<20, 0.99999, 1), h100Host),
		onHost(rec("vit-base-16", "fp32", 400, 2.5, 600<<20, 330<<20, 1, 1), h100Host))
	pod1 := h200Pod
	pod1.Hostname = "bench-h200-1-9fj3d"
	writeRecords(t, h200,
		onHost(rec("deit-tiny", "fp32", 1500, 0.6, 120<<20, 23<<20, 1, 1), h200Pod),
		onHost(rec("deit-tiny", "fp16", 2250, 0.4, 70<<20, 12<<20, 0.99999, 1), h200Pod),
		onHost(rec("vit-base-16", "fp32", 700, 1.4, 600<<20, 330<<20, 1, 1), pod1),
		onHost(failedRec("vit-base-16", "fp16", "worker: exit status 137 (killed: out of memory)"), pod1))
	return h100, h200
}

// openHosts opens the two files beside an absent results file, as
// `quantscope --open h100.jsonl --open h200.jsonl` does.
func openHosts(t *testing.T, f *fixture) {
	h100, h200 := twoHostFiles(t)
	msg := loadResults(filepath.Join(t.TempDir(), "results.jsonl"), []string{h100, h200})
	if msg.err != nil || msg.opened != 2 || len(msg.recs) != 7 {
		t.Fatalf("loadResults: %d records from %d files, %v", len(msg.recs), msg.opened, msg.err)
	}
	f.loaded(msg)
	f.keys("2")
	f.advance(5 * time.Second)
	f.send(toastExpiredMsg{id: f.m.toastID})
}

func TestSummarizeByHostKeepsBaselinesApart(t *testing.T) {
	h100, h200 := twoHostFiles(t)
	a, _, _ := study.ReadResults(h100)
	b, _, _ := study.ReadResults(h200)
	rows := summarizeByHost(append(a, b...))
	if len(rows) != 7 {
		t.Fatalf("%d rows, want 7 (3 on the H100, 4 on the H200)", len(rows))
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s %s %s %s", r.Last.Host.Name(), r.Experiment.Model, r.Experiment.Precision, fmtRatio(nan(r.HasBaseline, r.Speedup))))
	}
	want := []string{
		"gpu-node-3 deit-tiny fp32 1.00×", "gpu-node-3 deit-tiny fp16 2.00×", "gpu-node-3 vit-base-16 fp32 1.00×",
		"bench-h200 deit-tiny fp32 1.00×", "bench-h200 deit-tiny fp16 1.50×", "bench-h200 vit-base-16 fp32 1.00×", "bench-h200 vit-base-16 fp16 —",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	labels := hostLabels(rows)
	if labels[h100Host.Key()] != "gpu-node-3" || labels[h200Pod.Key()] != "bench-h200" {
		t.Errorf("labels %v", labels)
	}
	// Two hosts that share a name are told apart by their GPU.
	twin := h100Host
	twin.GPU = "NVIDIA A100"
	rows = summarizeByHost(append(a, onHost(rec("deit-tiny", "fp32", 1, 1, 1, 1, 1, 1), twin)))
	if l := hostLabels(rows); l[twin.Key()] != "gpu-node-3 · NVIDIA A100" || l[h100Host.Key()] != "gpu-node-3 · NVIDIA H100 80GB HBM3" {
		t.Errorf("labels of two hosts named alike: %v", l)
	}
}

// Several files open together, grouped by host: a host column, each
// host's rows together whatever the sort, Enter opens the row of its own
// host, the heatmap has a page per host.
func TestOpenSeveralFilesGroupedByHost(t *testing.T) {
	f := newFixture(t, 120, 40, nil)
	openHosts(t, f)
	if f.m.sess.opened != 2 || len(f.m.sess.rows) != 7 {
		t.Fatalf("session: %d files opened, %d rows", f.m.sess.opened, len(f.m.sess.rows))
	}
	v := f.view()
	for _, want := range []string{"host", "gpu-node-3", "bench-h200", "2 hosts"} {
		if !strings.Contains(v, want) {
			t.Errorf("dashboard lacks %q:\n%s", want, v)
		}
	}
	grouped := func() bool {
		seen := map[string]bool{}
		last := ""
		for _, r := range f.m.dash().table.sorted(f.m.sess.rows) {
			h := hostOf(r)
			if h != last && seen[h] {
				return false
			}
			seen[h], last = true, h
		}
		return true
	}
	for f.m.dash().table.sortCol != colThroughput {
		f.keys("o")
	}
	if !grouped() {
		t.Error("sorting by throughput mixed the hosts' rows")
	}
	first := f.m.dash().table.sorted(f.m.sess.rows)[0]
	if first.Last.Host.Name() != "gpu-node-3" || first.Throughput != 2000 {
		t.Errorf("first row by throughput: %s %v, want the H100's fastest (its host first)", first.Last.Host.Name(), first.Throughput)
	}
	// The H200's deit-tiny fp16: sorted rows are H100 ×3, then H200 by
	// throughput: fp16 2250 first.
	f.keys("down", "down", "down", "enter")
	if f.m.screen != screenDetail || f.m.detail().host != h200Pod.Key() {
		t.Fatalf("detail of %v on %q", f.m.detail().exp, f.m.detail().host)
	}
	d := f.view()
	for _, want := range []string{"host: bench-h200 · bench-h200-0-x4k2p · NVIDIA H200", "2250 img/s · speedup 1.50× (1 run) vs fp32 1500 img/s"} {
		if !strings.Contains(d, want) {
			t.Errorf("detail lacks %q:\n%s", want, d)
		}
	}
	f.keys("esc", "3")
	groups := heatGroups(f.m.sess)
	if len(groups) != 2 || groups[0].host != h100Host.Key() || groups[1].host != h200Pod.Key() {
		t.Fatalf("heatmap groups %+v, want one per host", groups)
	}
	if v := f.view(); !strings.Contains(v, "gpu-node-3 · speedup") {
		t.Errorf("heatmap title does not name the host:\n%s", v)
	}
	f.keys("]")
	if v := f.view(); !strings.Contains(v, "bench-h200 · speedup") || !strings.Contains(v, "next host/EP/batch (2/2)") {
		t.Errorf("second heatmap page is not the H200's:\n%s", v)
	}
}

// An --open file that cannot be read is named; the others still show.
func TestOpenMissingFile(t *testing.T) {
	h100, _ := twoHostFiles(t)
	missing := filepath.Join(t.TempDir(), "nope.jsonl")
	msg := loadResults(filepath.Join(t.TempDir(), "results.jsonl"), []string{h100, missing})
	if msg.opened != 1 || len(msg.recs) != 3 || msg.err == nil || !strings.Contains(msg.err.Error(), "nope.jsonl") {
		t.Fatalf("%d records from %d files, err %v", len(msg.recs), msg.opened, msg.err)
	}
	f := newFixture(t, 120, 40, nil)
	f.loaded(msg)
	if len(f.m.sess.rows) != 3 || !f.m.toastErr || !strings.Contains(f.m.toast, "nope.jsonl") {
		t.Errorf("rows %d, toast %q (error %v)", len(f.m.sess.rows), f.m.toast, f.m.toastErr)
	}
}

func TestGoldenHosts(t *testing.T) {
	for _, sc := range []struct {
		name string
		keys []string
	}{
		{"hosts-table", nil},
		{"hosts-heatmap", []string{"3", "]"}},
	} {
		for _, sz := range goldenSizes {
			t.Run(fmt.Sprintf("%s/%dx%d", sc.name, sz[0], sz[1]), func(t *testing.T) {
				f := newFixture(t, sz[0], sz[1], nil)
				openHosts(t, f)
				f.keys(sc.keys...)
				golden.RequireEqual(t, []byte(f.view()))
			})
		}
	}
}
