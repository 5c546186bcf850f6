package optimize

import "testing"

func TestSliceLen(t *testing.T) {
	for _, d := range []int64{0, 1, 5, 9} {
		for start := int64(-12); start <= 12; start++ {
			for end := int64(-12); end <= 12; end++ {
				for _, step := range []int64{-3, -2, -1, 1, 2, 3} {
					if got, want := sliceLen(start, end, step, d), int64(len(sliceIndices(start, end, step, d))); got != want {
						t.Fatalf("sliceLen(%d, %d, %d, %d) = %d, want %d", start, end, step, d, got, want)
					}
				}
			}
		}
	}
	if got := sliceLen(0, 1<<62, 1, 1<<40); got != 1<<40 {
		t.Fatalf("huge: %d", got)
	}
}
