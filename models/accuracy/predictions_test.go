package accuracy

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestAddRanks(t *testing.T) {
	nan := float32(math.NaN())
	cases := []struct {
		name   string
		scores []float32
		want   []int32
	}{
		{"sorted", []float32{0.1, 0.9, 0.3, 0.7, 0.5, 0.2, 0.8}, []int32{1, 6, 3, 4, 2}},
		{"ties to lower index", []float32{1, 2, 2, 1, 2, 0}, []int32{1, 2, 4, 0, 3}},
		{"fewer than K", []float32{3, 1, 2}, []int32{0, 2, 1, -1, -1}},
		{"NaN is no answer", []float32{1, nan, 3}, []int32{-1, -1, -1, -1, -1}},
		{"negative logits", []float32{-5, -1, -3, -2, -4, -6}, []int32{1, 3, 2, 4, 0}},
	}
	for _, c := range cases {
		var p Predictions
		p.Add(c.scores)
		if got := p.Row(0); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// The ranking agrees with a plain sort on random vectors.
func TestAddMatchesSort(t *testing.T) {
	var p Predictions
	var rows [][]float32
	seed := uint32(7)
	for i := 0; i < 200; i++ {
		v := make([]float32, 1+i%40)
		for j := range v {
			seed = seed*1664525 + 1013904223
			v[j] = float32(seed>>24) / 8 // many ties
		}
		rows = append(rows, v)
		p.Add(v)
	}
	for i, v := range rows {
		idx := make([]int32, len(v))
		for j := range idx {
			idx[j] = int32(j)
		}
		slices.SortStableFunc(idx, func(a, b int32) int {
			switch {
			case v[a] > v[b]:
				return -1
			case v[a] < v[b]:
				return 1
			}
			return 0
		})
		want := []int32{-1, -1, -1, -1, -1}
		copy(want, idx)
		if got := p.Row(i); !slices.Equal(got, want) {
			t.Fatalf("row %d (%v): %v, want %v", i, v, got, want)
		}
	}
}

func TestScoreAndPair(t *testing.T) {
	ref := &Predictions{Set: "s"}
	got := &Predictions{Set: "s"}
	// Four images, labels 0..3. ref: right, right, top-5 only, wrong.
	// got: right, wrong (top-5), right, wrong.
	onehot := func(order ...int) []float32 {
		v := make([]float32, 10)
		for r, c := range order {
			v[c] = float32(10 - r)
		}
		return v
	}
	ref.Add(onehot(0))
	ref.Add(onehot(1))
	ref.Add(onehot(9, 2))
	ref.Add(onehot(9, 8, 7, 6, 5))
	got.Add(onehot(0))
	got.Add(onehot(9, 1))
	got.Add(onehot(2))
	got.Add(onehot(9, 8, 7, 6, 5))
	labels := []int32{0, 1, 2, 3}
	c, err := Score(ref, labels)
	if err != nil || c != (Counts{Images: 4, Top1: 2, Top5: 3}) {
		t.Fatalf("Score(ref) = %+v, %v", c, err)
	}
	pr, err := Pair(ref, got, labels)
	if err != nil {
		t.Fatal(err)
	}
	want := Paired{Top1: Table{Both: 1, VariantOnly: 1, RefOnly: 1, Neither: 1}, Top5: Table{Both: 3, Neither: 1}}
	if pr != want {
		t.Errorf("Pair = %+v, want %+v", pr, want)
	}
	if _, err := Pair(ref, &Predictions{Set: "other"}, labels); err == nil {
		t.Error("pairing different sets succeeded")
	}
	if _, err := Score(ref, labels[:3]); err == nil {
		t.Error("scoring against too few labels succeeded")
	}
}

func TestPredictionsFile(t *testing.T) {
	p := &Predictions{Set: "abc123"}
	for i := 0; i < 100; i++ {
		p.Add([]float32{float32(i % 7), 3, float32(i % 5), 1, 0, 2})
	}
	path := filepath.Join(t.TempDir(), "p.qspred")
	if err := WritePredictions(path, p); err != nil {
		t.Fatal(err)
	}
	back, err := ReadPredictions(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Set != p.Set || !slices.Equal(back.top, p.top) {
		t.Fatalf("round trip changed the predictions")
	}
	raw, _ := os.ReadFile(path)
	for _, n := range []int{0, 7, 20, len(raw) - 1} {
		if _, err := decodePredictions(bytes.NewReader(raw[:n])); err == nil {
			t.Errorf("%d of %d bytes decoded without error", n, len(raw))
		}
	}
}

func FuzzReadPredictions(f *testing.F) {
	p := &Predictions{Set: "k"}
	p.Add([]float32{1, 2, 3, 4, 5, 6})
	path := filepath.Join(f.TempDir(), "p")
	if err := WritePredictions(path, p); err != nil {
		f.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	f.Add(raw)
	f.Add([]byte("QSPRED01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePredictions(bytes.NewReader(b))
		if err == nil && p.Len()*K != len(p.top) {
			t.Fatalf("inconsistent predictions")
		}
	})
}

func TestResultDerived(t *testing.T) {
	r := &Result{Counts: Counts{Images: 1000, Top1: 800, Top5: 950},
		VsFP32: &Paired{Top1: Table{Both: 790, VariantOnly: 10, RefOnly: 15, Neither: 185}}}
	if r.Top1Rate() != 0.8 || !r.Top1CI().Contains(0.8) {
		t.Errorf("top-1 %v %v", r.Top1Rate(), r.Top1CI())
	}
	drop, ok := r.Drop()
	if !ok || math.Abs(drop-0.5) > 1e-9 {
		t.Errorf("Drop = %v, %v; want 0.5 points", drop, ok)
	}
	if _, ok := (&Result{}).Drop(); ok {
		t.Error("Drop without a pairing is ok")
	}
	d, _ := r.Top1Diff()
	if s := d.String(); s != "−0.5 pt [−1.5, +0.5], not significant (McNemar p 0.42), 1,000 images" {
		t.Errorf("String = %q", s)
	}
}

func TestFormat(t *testing.T) {
	for v, want := range map[float64]string{-0.002: "−0.2", 0.004: "+0.4", 0: "0.0", -0.00001: "0.0"} {
		if got := FormatPoints(v); got != want {
			t.Errorf("FormatPoints(%v) = %q, want %q", v, got, want)
		}
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 50000: "50,000", 1234567: "1,234,567", -1200: "-1,200"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
	if got := FormatRate(957, 1000); got != "95.7% [94.3, 96.8]" {
		t.Errorf("FormatRate = %q", got)
	}
}
