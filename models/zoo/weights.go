package zoo

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// Weights are generated deterministically: every tensor gets a seed from
// the build's seed and its name, every chunk of chunkElems elements gets
// its own random stream from the tensor's seed and the chunk's index, so the
// bytes depend on neither the number of goroutines nor the order the
// chunks are filled in. Values are written straight into the tensor's
// raw_data (little-endian float32), never into an intermediate slice.

// chunkElems is the number of elements one random stream fills.
const chunkElems = 1 << 16

// truncBound is where the truncated normal is cut, in standard deviations
// (timm's trunc_normal_ cuts at ±2σ when a=-2σ, b=2σ).
const truncBound = 2.0

// invCDFBits is log2 of the number of intervals of the inverse-CDF table.
const invCDFBits = 12

// invCDF maps u in [0,1] to the standard normal truncated to
// [-truncBound, truncBound] at 2^invCDFBits+1 evenly spaced points; values
// in between are interpolated linearly (the error is below 1e-5σ).
var invCDF = func() []float32 {
	n := 1 << invCDFBits
	t := make([]float32, n+1)
	lo := normCDF(-truncBound)
	hi := normCDF(truncBound)
	for i := 0; i <= n; i++ {
		p := lo + (hi-lo)*float64(i)/float64(n)
		t[i] = float32(math.Sqrt2 * math.Erfinv(2*p-1))
	}
	t[0], t[n] = -truncBound, truncBound
	return t
}()

func normCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// splitmix64 is a tiny, fast, well-mixed generator; its output is fixed by
// its seed on every platform.
type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// truncNormal turns 32 random bits into a standard normal value truncated
// to ±truncBound.
func truncNormal(r uint32) float32 {
	const fracBits = 32 - invCDFBits
	i := r >> fracBits
	f := float32(r&(1<<fracBits-1)) * (1.0 / (1 << fracBits))
	a, b := invCDF[i], invCDF[i+1]
	d := float32(b - a)
	return a + float32(d*f)
}

// tensorSeed derives a tensor's seed from the build seed and its name.
func tensorSeed(seed uint64, name string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	h.Write([]byte(name))
	return h.Sum64()
}

// fillJob is one tensor whose raw bytes are filled with std·N(0,1)
// truncated at ±2σ.
type fillJob struct {
	raw  []byte
	seed uint64
	std  float32
}

// fillChunk fills chunk c of j.
func (j *fillJob) fillChunk(c int) {
	start := c * chunkElems * 4
	end := min(start+chunkElems*4, len(j.raw))
	buf := j.raw[start:end]
	s := splitmix64(j.seed ^ (uint64(c)+1)*0xd1b54a32d192ed03)
	std := j.std
	i := 0
	for ; i+8 <= len(buf); i += 8 {
		r := s.next()
		binary.LittleEndian.PutUint32(buf[i:], math.Float32bits(std*truncNormal(uint32(r))))
		binary.LittleEndian.PutUint32(buf[i+4:], math.Float32bits(std*truncNormal(uint32(r>>32))))
	}
	if i < len(buf) {
		binary.LittleEndian.PutUint32(buf[i:], math.Float32bits(std*truncNormal(uint32(s.next()))))
	}
}

func (j *fillJob) chunks() int { return (len(j.raw)/4 + chunkElems - 1) / chunkElems }

// fillAll runs jobs on GOMAXPROCS goroutines, chunk by chunk, checking ctx
// between chunks. progress (may be nil) gets the bytes filled so far and
// the total, from one goroutine at a time.
func fillAll(ctx context.Context, jobs []fillJob, progress func(done, total int64)) error {
	type ref struct{ job, chunk int }
	var refs []ref
	var total int64
	for ji := range jobs {
		total += int64(len(jobs[ji].raw))
		for c := range jobs[ji].chunks() {
			refs = append(refs, ref{ji, c})
		}
	}
	var next atomic.Int64
	var done atomic.Int64
	var mu sync.Mutex
	var lastReport atomic.Int64
	const reportEvery = 16 << 20
	workers := min(runtime.GOMAXPROCS(0), max(1, len(refs)))
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for range workers {
		wg.Go(func() {
			for {
				if err := ctx.Err(); err != nil {
					select {
					case errc <- err:
					default:
					}
					return
				}
				k := int(next.Add(1)) - 1
				if k >= len(refs) {
					return
				}
				r := refs[k]
				j := &jobs[r.job]
				j.fillChunk(r.chunk)
				n := done.Add(int64(min(chunkElems*4, len(j.raw)-r.chunk*chunkElems*4)))
				if progress != nil && (n-lastReport.Load() >= reportEvery || n == total) {
					mu.Lock()
					if n > lastReport.Load() {
						lastReport.Store(n)
						progress(n, total)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// fillConst writes v into every float32 of raw.
func fillConst(raw []byte, v float32) {
	if v == 0 {
		clear(raw)
		return
	}
	bits := math.Float32bits(v)
	if len(raw) < 4 {
		return
	}
	binary.LittleEndian.PutUint32(raw, bits)
	for filled := 4; filled < len(raw); filled *= 2 {
		copy(raw[filled:], raw[:filled])
	}
}
