package fidelity

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

var nan = float32(math.NaN())

// ramp is the reference most cases compare against: Σref² = 91 + 91.
var ramp = [][]float32{{1, 2, 3, 4, 5, 6}, {6, 5, 4, 3, 2, 1}}

func TestCompare(t *testing.T) {
	tests := []struct {
		name     string
		ref, got [][]float32
		want     Result // NaN fields want NaN
	}{
		{"identical", ramp, ramp,
			Result{Samples: 2, CosineMean: 1, CosineMin: 1, Top1: 1, Top5: 1, SQNRdB: MaxSQNRdB}},
		{"identical with rounding in the norms", [][]float32{{0.1, 0.2, 0.3}}, [][]float32{{0.1, 0.2, 0.3}},
			Result{Samples: 1, CosineMean: 1, CosineMin: 1, Top1: 1, Top5: 1, SQNRdB: MaxSQNRdB}},
		// ×2 keeps direction and arg-max; the error is ref itself, as loud as the signal.
		{"scaled", ramp, [][]float32{{2, 4, 6, 8, 10, 12}, {12, 10, 8, 6, 4, 2}},
			Result{Samples: 2, CosineMean: 1, CosineMin: 1, Top1: 1, Top5: 1, MaxAbsError: 6, MeanAbsError: 42.0 / 12, SQNRdB: 0}},
		// −ref: cosine −1, the reference arg-max is the variant's smallest
		// (rank 5 of 6, outside the top 5), noise (2·ref)² is 4× the signal.
		{"sign flip", ramp, [][]float32{{-1, -2, -3, -4, -5, -6}, {-6, -5, -4, -3, -2, -1}},
			Result{Samples: 2, CosineMean: -1, CosineMin: -1, Top1: 0, Top5: 0, MaxAbsError: 12, MeanAbsError: 7, SQNRdB: 10 * math.Log10(0.25)}},
		// Cosine of {5,6,4,3,2,1} with {6,5,4,3,2,1}: (30+30+16+9+4+1)/91.
		{"second sample's top-1 moves to rank 2", ramp, [][]float32{{1, 2, 3, 4, 5, 6}, {5, 6, 4, 3, 2, 1}},
			Result{Samples: 2, CosineMean: (1 + 90.0/91) / 2, CosineMin: 90.0 / 91, Top1: 0.5, Top5: 1, MaxAbsError: 1, MeanAbsError: 2.0 / 12,
				SQNRdB: 10 * math.Log10(182.0/2)}},
		// A NaN output would otherwise still win its arg-max (6 > 4): it
		// must not count as agreeing.
		{"NaN in the variant", ramp, [][]float32{{1, 2, 3, 4, 5, 6}, {6, nan, 4, 3, 2, 1}},
			Result{Samples: 2, CosineMean: math.NaN(), CosineMin: math.NaN(), Top1: 0.5, Top5: 0.5,
				MaxAbsError: math.NaN(), MeanAbsError: math.NaN(), SQNRdB: math.NaN()}},
		{"all-NaN variant", [][]float32{{3, 1, 2}}, [][]float32{{nan, nan, nan}},
			Result{Samples: 1, CosineMean: math.NaN(), CosineMin: math.NaN(), Top1: 0, Top5: 0,
				MaxAbsError: math.NaN(), MeanAbsError: math.NaN(), SQNRdB: math.NaN()}},
		{"NaN in the reference", [][]float32{{nan, 1, 2}}, [][]float32{{0, 1, 2}},
			Result{Samples: 1, CosineMean: math.NaN(), CosineMin: math.NaN(), Top1: 0, Top5: 0,
				MaxAbsError: math.NaN(), MeanAbsError: math.NaN(), SQNRdB: math.NaN()}},
		{"zero vectors", [][]float32{{0, 0, 0}}, [][]float32{{0, 0, 0}},
			Result{Samples: 1, CosineMean: 1, CosineMin: 1, Top1: 1, Top5: 1, SQNRdB: MaxSQNRdB}},
		// No signal, only noise: the floor, not −Inf (JSON has none).
		{"zero reference", [][]float32{{0, 0, 0}}, [][]float32{{0, 1, 0}},
			Result{Samples: 1, CosineMean: 0, CosineMin: 0, Top1: 0, Top5: 1, MaxAbsError: 1, MeanAbsError: 1.0 / 3, SQNRdB: -MaxSQNRdB}},
		// A zero variant is orthogonal to everything; its arg-max ties to index 0.
		{"zero variant", [][]float32{{1, 0, 0}}, [][]float32{{0, 0, 0}},
			Result{Samples: 1, CosineMean: 0, CosineMin: 0, Top1: 1, Top5: 1, MaxAbsError: 1, MeanAbsError: 1.0 / 3, SQNRdB: 0}},
		// All seven variant values tie: ranks follow the index, so index 4
		// is fifth (in the top 5) and index 5 sixth (out); the arg-max is
		// index 0 for both. Cosine 18/√(81·28) = 1/√7; noise 6·2²+7² per sample.
		{"top-5 ties", [][]float32{{0, 0, 0, 0, 9, 0, 0}, {0, 0, 0, 0, 0, 9, 0}}, [][]float32{{2, 2, 2, 2, 2, 2, 2}, {2, 2, 2, 2, 2, 2, 2}},
			Result{Samples: 2, CosineMean: 1 / math.Sqrt(7), CosineMin: 1 / math.Sqrt(7), Top1: 0, Top5: 0.5, MaxAbsError: 7, MeanAbsError: 38.0 / 14,
				SQNRdB: 10 * math.Log10(162.0/146)}},
		// Larger values ahead of the reference arg-max push it out of the top 5.
		{"top-5 by value", [][]float32{{0, 0, 0, 0, 0, 0, 9}}, [][]float32{{5, 5, 5, 5, 5, 9, 1}},
			Result{Samples: 1, CosineMean: 9.0 / math.Sqrt(81*207), CosineMin: 9.0 / math.Sqrt(81*207), Top1: 0, Top5: 0, MaxAbsError: 9, MeanAbsError: 42.0 / 7,
				SQNRdB: 10 * math.Log10(81.0/(5*25+81+64))}},
		{"five values or fewer are always top 5", [][]float32{{1, 2, 3, 4, 5}}, [][]float32{{5, 4, 3, 2, 1}},
			Result{Samples: 1, CosineMean: 35.0 / 55, CosineMin: 35.0 / 55, Top1: 0, Top5: 1, MaxAbsError: 4, MeanAbsError: 12.0 / 5,
				SQNRdB: 10 * math.Log10(55.0/40)}},
		// Noise 1e-40 against signal 1e38: 780 dB, capped.
		{"tiny noise is capped", [][]float32{{1e19, 0}}, [][]float32{{1e19, 1e-20}},
			Result{Samples: 1, CosineMean: 1, CosineMin: 1, Top1: 1, Top5: 1, MaxAbsError: float64(float32(1e-20)), MeanAbsError: float64(float32(1e-20)) / 2, SQNRdB: MaxSQNRdB}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Compare(tt.ref, tt.got)
			if err != nil {
				t.Fatal(err)
			}
			if r.Samples != tt.want.Samples {
				t.Errorf("samples %d want %d", r.Samples, tt.want.Samples)
			}
			for _, f := range []struct {
				name      string
				got, want float64
			}{
				{"cosine mean", r.CosineMean, tt.want.CosineMean},
				{"cosine min", r.CosineMin, tt.want.CosineMin},
				{"top1", r.Top1, tt.want.Top1},
				{"top5", r.Top5, tt.want.Top5},
				{"max abs error", r.MaxAbsError, tt.want.MaxAbsError},
				{"mean abs error", r.MeanAbsError, tt.want.MeanAbsError},
				{"SQNR", r.SQNRdB, tt.want.SQNRdB},
			} {
				if !approx(f.got, f.want) {
					t.Errorf("%s %v want %v", f.name, f.got, f.want)
				}
			}
		})
	}
}

// approx is equality to 1e-12 relative, NaN equal to NaN.
func approx(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b || math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b))
}

func TestCompareIdenticalIsExact(t *testing.T) {
	// FP32 against itself must read as exactly 1 and MaxSQNRdB: the
	// worker's self-check and the report's "1.0000" depend on it.
	ref := [][]float32{{0.1, -0.7, 3.3e-5, 12345.678}, {1e-30, 2e30, -3, 0}}
	r, err := Compare(ref, ref)
	if err != nil {
		t.Fatal(err)
	}
	if r.CosineMean != 1 || r.CosineMin != 1 || r.Top1 != 1 || r.Top5 != 1 || r.MaxAbsError != 0 || r.MeanAbsError != 0 || r.SQNRdB != MaxSQNRdB {
		t.Errorf("identical outputs: %+v", r)
	}
}

func TestCompareRejects(t *testing.T) {
	tests := []struct {
		name     string
		ref, got [][]float32
		want     string
	}{
		{"no samples", nil, nil, "no samples"},
		{"fewer variant samples", [][]float32{{1}}, nil, "1 reference samples, 0 variant samples"},
		{"more variant samples", [][]float32{{1}}, [][]float32{{1}, {2}}, "1 reference samples, 2 variant samples"},
		{"shorter variant vector", [][]float32{{1, 2}}, [][]float32{{1}}, "sample 0 has 2 reference values and 1 variant values"},
		{"longer variant vector", [][]float32{{1}, {1, 2}}, [][]float32{{1}, {1, 2, 3}}, "sample 1 has 2 reference values and 3 variant values"},
		{"empty vectors", [][]float32{{}}, [][]float32{{}}, "sample 0 has 0 reference values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compare(tt.ref, tt.got)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestResultJSON(t *testing.T) {
	// A record as results.jsonl has held it since before mean_abs_error:
	// it still reads, field for field.
	old := `{"samples":256,"cosine_mean":0.99934,"cosine_min":0.9961,"top1":0.9921875,"top5":1,"max_abs_error":0.41,"sqnr_db":29.5}`
	var r Result
	if err := json.Unmarshal([]byte(old), &r); err != nil {
		t.Fatal(err)
	}
	want := Result{Samples: 256, CosineMean: 0.99934, CosineMin: 0.9961, Top1: 0.9921875, Top5: 1, MaxAbsError: 0.41, SQNRdB: 29.5,
		RefMedianMargin: math.NaN(), DecisiveTop1: math.NaN()}
	if r.String() != want.String() || !math.IsNaN(r.RefMedianMargin) || !math.IsNaN(r.DecisiveTop1) || r.DecisiveSamples != 0 || r.Inputs != "" {
		t.Errorf("old record reads as %+v, want %+v (margin and decisive top-1 unknown, not 0)", r, want)
	}
	if _, ok := r.Decisive(); ok || !strings.Contains(r.DecisiveString(), "not recorded") {
		t.Errorf("old record's decisive top-1: %s", r.DecisiveString())
	}
	// Fields that are unknown stay out of the JSON, as before they existed.
	self, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if w := `{"samples":256,"cosine_mean":0.99934,"cosine_min":0.9961,"top1":0.9921875,"top5":1,"max_abs_error":0.41,"sqnr_db":29.5}`; string(self) != w {
		t.Errorf("JSON %s\nwant %s", self, w)
	}
	want.MeanAbsError = 0.02
	want.RefMedianMargin, want.DecisiveTop1, want.DecisiveSamples, want.Inputs = 0.75, 0.5, 2, "2 seeded synthetic images"
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if got := `{"samples":256,"cosine_mean":0.99934,"cosine_min":0.9961,"top1":0.9921875,"top5":1,"max_abs_error":0.41,"mean_abs_error":0.02,"sqnr_db":29.5,` +
		`"ref_median_margin":0.75,"decisive_top1":0.5,"decisive_samples":2,"inputs":"2 seeded synthetic images"}`; string(b) != got {
		t.Errorf("JSON %s\nwant %s", b, got)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != want {
		t.Errorf("round trip %+v, want %+v", back, want)
	}
}

// TestDecisiveTop1 works through hand-made logits: near-tied samples whose
// arg-max flips within the variant's error do not count against it; a
// flip on a sample with a clear margin does.
func TestDecisiveTop1(t *testing.T) {
	ref := [][]float32{
		{5, 1, 0},      // margin 4: decisive
		{3, 0, 1},      // margin 2: decisive
		{1.05, 1, 0},   // margin 0.05: a near-tie
		{0, 2.02, 2},   // margin 0.02: a near-tie
		{0.5, 0.5, -1}, // margin 0: an exact tie
	}
	t.Run("flips only on near-ties", func(t *testing.T) {
		got := [][]float32{
			{5.1, 1, 0},   // agrees
			{2.9, 0, 1},   // agrees
			{1.0, 1.1, 0}, // flips: error 0.1
			{0, 1.95, 2},  // flips: error 0.07
			{0.5, 0.5, -1},
		}
		r, err := Compare(ref, got)
		if err != nil {
			t.Fatal(err)
		}
		// Top-1 3 of 5; max abs error 0.1; margins 4, 2, 0.05, 0.02, 0:
		// median 0.05; decisive: the two with margin > 0.1, both agree.
		if !approx(r.Top1, 0.6) || !approx(r.MaxAbsError, float64(float32(1.1)-1)) || !approx(r.RefMedianMargin, float64(float32(1.05)-1)) {
			t.Errorf("top-1 %v max abs %v median margin %v", r.Top1, r.MaxAbsError, r.RefMedianMargin)
		}
		if d, ok := r.Decisive(); !ok || d != 1 || r.DecisiveSamples != 2 {
			t.Errorf("decisive top-1 %v on %d samples, want 100%% on 2", d, r.DecisiveSamples)
		}
	})
	t.Run("a flip with a clear margin counts", func(t *testing.T) {
		got := [][]float32{
			{5, 1, 0},
			{0.9, 0, 1.2}, // flips with margin 2: error 2.1 — but that error is the max, so it is not decisive
			{1.05, 1, 0},
			{0, 2.02, 2},
			{0.5, 0.5, -1},
		}
		r, _ := Compare(ref, got)
		// Max abs error 2.1: only the margin-4 sample is decisive and it agrees.
		if d, ok := r.Decisive(); !ok || d != 1 || r.DecisiveSamples != 1 {
			t.Errorf("decisive %v on %d, want 100%% on 1", d, r.DecisiveSamples)
		}
		got[0] = []float32{5, 5.5, 0} // flips the margin-4 sample with error 4.5
		got[1] = []float32{3, 0, 1}
		r, _ = Compare(ref, got)
		if _, ok := r.Decisive(); ok {
			t.Errorf("an error above every margin left decisive samples: %d", r.DecisiveSamples)
		}
		// Small errors everywhere, and one decisive flip: counted.
		got = [][]float32{{5, 1, 0}, {0.95, 0, 1.0}, {1.05, 1, 0}, {0, 2.02, 2}, {0.5, 0.5, -1}}
		ref2 := [][]float32{{5, 1, 0}, {1.0, 0, 0.9}, {1.05, 1, 0}, {0, 2.02, 2}, {0.5, 0.5, -1}}
		r, _ = Compare(ref2, got)
		// Errors 0.05 and 0.1: max 0.1; margins 4 and 0.1 (not > 0.1),
		// so one decisive sample... and the margin-0.1 flip is a near-tie.
		if d, ok := r.Decisive(); !ok || d != 1 || r.DecisiveSamples != 1 {
			t.Errorf("decisive %v on %d", d, r.DecisiveSamples)
		}
		ref2[1] = []float32{1.5, 0, 0.9} // margin 0.6 > max error 0.55: decisive, and flipped
		got[1] = []float32{0.95, 0, 1.0}
		r, _ = Compare(ref2, got)
		if d, ok := r.Decisive(); !ok || !approx(d, 0.5) || r.DecisiveSamples != 2 {
			t.Errorf("decisive %v on %d, want 50%% on 2", d, r.DecisiveSamples)
		}
	})
	t.Run("embeddings of one value have no margin", func(t *testing.T) {
		r, _ := Compare([][]float32{{1}, {2}}, [][]float32{{1}, {2}})
		if !math.IsNaN(r.RefMedianMargin) || r.DecisiveSamples != 0 {
			t.Errorf("margin %v decisive %d", r.RefMedianMargin, r.DecisiveSamples)
		}
	})
}

// Outputs that overflowed (NaN, ±Inf) make a Result JSON can still hold:
// the non-finite fields are written as null and read back as NaN, so the
// record is kept and shows the failure instead of failing to encode.
func TestResultJSONNonFinite(t *testing.T) {
	ref := [][]float32{{1, 2, 3}, {4, 5, 6}}
	got := [][]float32{{1, 2, 3}, {float32(math.NaN()), float32(math.Inf(1)), 6}}
	r, err := Compare(ref, got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("a NaN result does not encode: %v", err)
	}
	for _, want := range []string{`"cosine_min":null`, `"sqnr_db":null`, `"samples":2`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(back.CosineMin) || !math.IsNaN(back.SQNRdB) || !math.IsNaN(back.MeanAbsError) || back.Samples != 2 || back.Top1 != r.Top1 {
		t.Errorf("read back %+v from %s", back, b)
	}
	if err := json.Unmarshal([]byte(`{"samples":1,"cosine_mean":"x"}`), &back); err == nil {
		t.Error("a string where a number belongs was accepted")
	}
}

func TestResultString(t *testing.T) {
	r := Result{Samples: 64, CosineMean: 0.9993, CosineMin: 0.99, Top1: 0.984375, Top5: 1, MaxAbsError: 0.4123, MeanAbsError: 0.0213, SQNRdB: 29.46}
	want := "cosine mean 0.999300 min 0.990000, top-1 agreement 98.44%, top-5 100.00% (64 samples), max abs error 0.4123 (mean 0.0213), SQNR 29.5 dB"
	if s := r.String(); s != want {
		t.Errorf("String()\n got %s\nwant %s", s, want)
	}
}

// FuzzCompare feeds arbitrary float32 bit patterns (NaN, ±Inf, subnormals)
// in arbitrary shapes: Compare must never panic, must reject only bad
// shapes, and what it returns must stay in range.
func FuzzCompare(f *testing.F) {
	f.Add([]byte{}, uint8(1), uint8(3), uint8(0))
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64}, uint8(1), uint8(3), uint8(0))
	f.Add([]byte{0, 0, 192, 127, 0, 0, 128, 127, 0, 0, 128, 255, 1, 0, 0, 0}, uint8(2), uint8(1), uint8(0))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, uint8(1), uint8(2), uint8(1))
	f.Add([]byte{0, 0, 128, 63}, uint8(3), uint8(7), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, samples, width, skew uint8) {
		n, w := int(samples%5), int(width%12)
		next := func() float32 {
			if len(data) < 4 {
				return 0
			}
			v := math.Float32frombits(binary.LittleEndian.Uint32(data))
			data = data[4:]
			return v
		}
		ref, got := make([][]float32, n), make([][]float32, n)
		for i := range n {
			ref[i], got[i] = make([]float32, w), make([]float32, w)
			for j := range w {
				ref[i][j] = next()
			}
			for j := range w {
				got[i][j] = next()
			}
		}
		shapeOK := n > 0 && w > 0
		switch skew % 4 { // 0 leaves the shapes as they are
		case 1:
			if n > 0 {
				got[n-1] = append(got[n-1], 1)
				shapeOK = false
			}
		case 2:
			got = append(got, []float32{1})
			shapeOK = false
		case 3:
			if n > 0 && w > 0 {
				ref[0] = ref[0][:w-1]
				shapeOK = false
			}
		}
		r, err := Compare(ref, got)
		if (err == nil) != shapeOK {
			t.Fatalf("%d×%d skew %d: error %v", n, w, skew, err)
		}
		if err != nil {
			return
		}
		if r.Samples != n || r.Top1 < 0 || r.Top1 > 1 || r.Top5 < r.Top1 || r.Top5 > 1 {
			t.Errorf("samples %d top1 %v top5 %v", r.Samples, r.Top1, r.Top5)
		}
		for _, c := range []float64{r.CosineMean, r.CosineMin} {
			if c < -1 || c > 1 {
				t.Errorf("cosine %v out of [−1, 1]", c)
			}
		}
		if r.CosineMin > r.CosineMean+1e-12 {
			t.Errorf("cosine min %v above mean %v", r.CosineMin, r.CosineMean)
		}
		if r.SQNRdB < -MaxSQNRdB || r.SQNRdB > MaxSQNRdB || r.MaxAbsError < 0 || r.MeanAbsError < 0 || r.MeanAbsError > r.MaxAbsError*(1+1e-9) {
			t.Errorf("SQNR %v max abs %v mean abs %v", r.SQNRdB, r.MaxAbsError, r.MeanAbsError)
		}
		if d, ok := r.Decisive(); r.DecisiveSamples < 0 || r.DecisiveSamples > r.Samples || (ok && (d < 0 || d > 1)) {
			t.Errorf("decisive top-1 %v on %d of %d samples", d, r.DecisiveSamples, r.Samples)
		}
		hasNaN := false
		for i := range ref {
			for j := range ref[i] {
				hasNaN = hasNaN || ref[i][j] != ref[i][j] || got[i][j] != got[i][j]
			}
		}
		if hasNaN && (r.CosineMean == 1 || r.SQNRdB == MaxSQNRdB || r.MaxAbsError == 0 || r.Top1 == 1) {
			t.Errorf("NaN outputs look faithful: %+v", r)
		}
		_ = r.String()
	})
}
