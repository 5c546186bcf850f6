package zoo

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"runtime"
	"testing"
)

// The bytes depend on the seeds only, not on how many goroutines fill
// them or in which order.
func TestFillIsIndependentOfParallelism(t *testing.T) {
	sizes := []int{1, 3, chunkElems - 1, chunkElems, 3*chunkElems + 5}
	fill := func(procs int) [][]byte {
		old := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(old)
		var jobs []fillJob
		for i, n := range sizes {
			jobs = append(jobs, fillJob{raw: make([]byte, 4*n), seed: tensorSeed(42, string(rune('a'+i))), std: 0.02})
		}
		if err := fillAll(context.Background(), jobs, nil); err != nil {
			t.Fatal(err)
		}
		out := make([][]byte, len(jobs))
		for i, j := range jobs {
			out[i] = j.raw
		}
		return out
	}
	one, four := fill(1), fill(4)
	for i := range one {
		if !bytes.Equal(one[i], four[i]) {
			t.Errorf("tensor %d (%d elements) differs between 1 and 4 goroutines", i, sizes[i])
		}
	}
	// Chunks of one tensor are not copies of each other.
	big := one[len(one)-1]
	if bytes.Equal(big[:64], big[4*chunkElems:4*chunkElems+64]) {
		t.Errorf("chunks 0 and 1 start alike")
	}
}

func TestTruncatedNormal(t *testing.T) {
	const n = 1 << 20
	raw := make([]byte, 4*n)
	j := fillJob{raw: raw, seed: 1, std: 1}
	for c := range j.chunks() {
		j.fillChunk(c)
	}
	var sum, sq float64
	var beyond1 int
	for i := 0; i < n; i++ {
		v := float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
		if math.Abs(v) > truncBound || math.IsNaN(v) {
			t.Fatalf("value %g outside ±%g", v, truncBound)
		}
		if math.Abs(v) > 1 {
			beyond1++
		}
		sum += v
		sq += v * v
	}
	mean := sum / n
	std := math.Sqrt(sq/n - mean*mean)
	// N(0,1) truncated at ±2: σ = 0.8796, P(|x| > 1) = (0.3173-0.0455)/0.9545 = 0.2848.
	if math.Abs(mean) > 0.005 || math.Abs(std-0.8796) > 0.003 {
		t.Errorf("mean %g std %g, want 0 and 0.8796", mean, std)
	}
	if p := float64(beyond1) / n; math.Abs(p-0.2848) > 0.003 {
		t.Errorf("P(|x|>1) = %g, want 0.2848", p)
	}
}

func TestFillProgressAndCancel(t *testing.T) {
	jobs := []fillJob{{raw: make([]byte, 4*100*chunkElems), seed: 1, std: 1}}
	var last, total int64
	calls := 0
	if err := fillAll(context.Background(), jobs, func(d, tot int64) {
		if d < last {
			t.Errorf("progress went back from %d to %d", last, d)
		}
		last, total = d, tot
		calls++
	}); err != nil {
		t.Fatal(err)
	}
	if last != total || total != int64(len(jobs[0].raw)) || calls < 2 {
		t.Errorf("progress ended at %d/%d after %d calls", last, total, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := fillAll(ctx, jobs, nil); err != context.Canceled {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestFillConst(t *testing.T) {
	raw := make([]byte, 4*37)
	fillConst(raw, 0.1)
	for i := 0; i < 37; i++ {
		if v := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); v != 0.1 {
			t.Fatalf("element %d = %g", i, v)
		}
	}
	fillConst(raw, 0)
	if !bytes.Equal(raw, make([]byte, len(raw))) {
		t.Errorf("zero fill left bytes")
	}
}

func BenchmarkFill(b *testing.B) {
	jobs := []fillJob{{raw: make([]byte, 64<<20), seed: 1, std: 0.02}}
	b.SetBytes(int64(len(jobs[0].raw)))
	for b.Loop() {
		if err := fillAll(context.Background(), jobs, nil); err != nil {
			b.Fatal(err)
		}
	}
}
