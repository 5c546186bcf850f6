package bench

import (
	"math"
	"testing"
)

func TestCompareOutputs(t *testing.T) {
	ref := [][]float32{{1, 2, 3, 4, 5, 6}, {6, 5, 4, 3, 2, 1}}
	tests := []struct {
		name               string
		got                [][]float32
		cosMin, top1, top5 float64
		maxAbs, sqnr       float64
	}{
		{"identical", ref, 1, 1, 1, 0, MaxSQNRdB},
		{"scaled keeps cosine and arg-max", [][]float32{{2, 4, 6, 8, 10, 12}, {12, 10, 8, 6, 4, 2}}, 1, 1, 1, 6,
			10 * math.Log10(182.0/182.0)},
		{"second sample's top-1 moves to rank 2", [][]float32{{1, 2, 3, 4, 5, 6}, {5, 6, 4, 3, 2, 1}}, 0, 0.5, 1, 1,
			10 * math.Log10(182.0/2.0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := CompareOutputs(ref, tt.got)
			if err != nil {
				t.Fatal(err)
			}
			if tt.cosMin > 0 && math.Abs(f.CosineMin-tt.cosMin) > 1e-9 {
				t.Errorf("cos min %v want %v", f.CosineMin, tt.cosMin)
			}
			if f.Top1 != tt.top1 || f.Top5 != tt.top5 {
				t.Errorf("top1 %v top5 %v, want %v %v", f.Top1, f.Top5, tt.top1, tt.top5)
			}
			if math.Abs(f.MaxAbsError-tt.maxAbs) > 1e-9 {
				t.Errorf("max abs %v want %v", f.MaxAbsError, tt.maxAbs)
			}
			if math.Abs(f.SQNRdB-tt.sqnr) > 1e-9 {
				t.Errorf("SQNR %v want %v", f.SQNRdB, tt.sqnr)
			}
		})
	}
	// Cosine of {5,6,4,3,2,1} with {6,5,4,3,2,1}: (30+30+16+9+4+1)/91.
	f, _ := CompareOutputs(ref[1:], [][]float32{{5, 6, 4, 3, 2, 1}})
	if want := 90.0 / 91.0; math.Abs(f.CosineMean-want) > 1e-9 {
		t.Errorf("cosine %v want %v", f.CosineMean, want)
	}
}

func TestCompareOutputsRejectsMismatch(t *testing.T) {
	if _, err := CompareOutputs([][]float32{{1}}, nil); err == nil {
		t.Error("sample count mismatch accepted")
	}
	if _, err := CompareOutputs([][]float32{{1, 2}}, [][]float32{{1}}); err == nil {
		t.Error("length mismatch accepted")
	}
}
