package report

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func mustLoad(t testing.TB, paths ...string) []Source {
	t.Helper()
	for i, p := range paths {
		paths[i] = filepath.Join("testdata", p)
	}
	srcs, err := Load(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return srcs
}

func testOptions(t testing.TB) Options {
	t.Helper()
	g, err := ParseGate(DefaultGate)
	if err != nil {
		t.Fatal(err)
	}
	return Options{Gate: g, ModelInfo: testModelInfo}
}

// checkGolden compares got with testdata/golden/name, or rewrites it with
// QUANTSCOPE_UPDATE_GOLDEN=1.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with QUANTSCOPE_UPDATE_GOLDEN=1 to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (QUANTSCOPE_UPDATE_GOLDEN=1 rewrites it); got:\n%s", path, firstDiff(want, got))
	}
}

// firstDiff shows the first differing line.
func firstDiff(want, got []byte) string {
	wl := bytes.Split(want, []byte("\n"))
	gl := bytes.Split(got, []byte("\n"))
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g []byte
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if !bytes.Equal(w, g) {
			return "line " + itoa(i+1) + "\n want: " + string(w) + "\n  got: " + string(g)
		}
	}
	return "(no line differs)"
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

func renderMD(t *testing.T, r *Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := r.Render(&b, FormatMarkdown, Charts(r)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestGoldenSingleHost(t *testing.T) {
	opts := testOptions(t)
	opts.PricePerHour = 1.20
	r := Build(mustLoad(t, "cpu-ort124.jsonl"), opts)
	checkGolden(t, "cpu-ort124.md", renderMD(t, r))
	var csv bytes.Buffer
	if err := r.WriteCSV(&csv); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "cpu-ort124.csv", csv.Bytes())
}

func TestGoldenMixedHosts(t *testing.T) {
	opts := testOptions(t)
	opts.PricePerHour, opts.PricePerKWh = 4.50, 0.25
	r := Build(mustLoad(t, "cpu-ort124.jsonl", "gpu-h100.jsonl"), opts)
	checkGolden(t, "mixed.md", renderMD(t, r))
}

func TestGoldenCompare(t *testing.T) {
	opts := testOptions(t)
	r := BuildCompare(mustLoad(t, "cpu-ort124.jsonl"), mustLoad(t, "cpu-ort122.jsonl"), opts)
	checkGolden(t, "compare.md", renderMD(t, r))
}
