package quant

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/onnx/onnxpb"
)

// Tensor is a float32 tensor in host memory.
type Tensor struct {
	Shape []int64
	Data  []float32
}

// Runner opens models to run: calibration runs an augmented copy of the
// model through it. The profiler implements it on ONNX Runtime
// (ort.CalibRunner); this package never loads a runtime itself.
type Runner interface {
	Open(modelPath string) (Session, error)
}

// Session runs one model.
type Session interface {
	// Run runs the model on its inputs, in the order of the graph's
	// inputs, and returns every output in the order of the graph's
	// outputs.
	Run(inputs ...Tensor) ([]Tensor, error)
	Close() error
}

// Calibration configures int8-static's calibration run.
type Calibration struct {
	// Runner runs the augmented model. Required for int8-static.
	Runner Runner
	// Dir is a folder of JPEG/PNG images; empty means seeded synthetic
	// images. Unreadable files are skipped with a warning.
	Dir string
	// Preprocess turns images into model input; the zero value means
	// ImageNet mean and standard deviation.
	Preprocess Preprocess
	// Seed picks the synthetic images (0 means 1).
	Seed uint64
	// BatchSize is the number of samples per run (0 means 4, or the
	// model's fixed batch size).
	BatchSize int
	// TempDir holds the augmented model while it runs ("" means the
	// system temporary directory).
	TempDir string
}

// Calibration defaults.
const (
	defaultCalibBatch = 4
	histBins          = 2048 // percentile and entropy histograms
	entropyQuantBins  = 128  // TensorRT's and ONNX Runtime's num_quantized_bins
)

// calibrate runs the model on the calibration samples and returns the
// range [lo, hi] of each tensor in names (symmetric says which tensors
// are quantized symmetrically: their percentile cuts |x|). The model is run as an
// augmented copy whose outputs are the observed tensors; activations are
// folded into per-tensor statistics batch by batch, so memory holds one
// batch's activations at a time.
func calibrate(ctx context.Context, st *state, names []string, symmetric func(string) bool) (map[string][2]float32, error) {
	cal := st.opts.Calibration
	if cal.Runner == nil {
		return nil, errors.New("int8-static needs ONNX Runtime to calibrate (no calibration runner given)")
	}
	in, err := ImageInputOf(st.m)
	if err != nil {
		return nil, fmt.Errorf("calibration input: %w", err)
	}
	src := &sampleSource{in: in, pre: cal.Preprocess.orDefault(), seed: cal.Seed, n: st.spec.samples(), warn: func(msg string) { st.warnf("%s", msg) }}
	if src.seed == 0 {
		src.seed = 1
	}
	info := &CalibrationInfo{Method: st.spec.calibMethod(), Tensors: len(names), Source: fmt.Sprintf("synthetic images (seed %d)", src.seed)}
	if st.spec.calibMethod() == CalibPercentile {
		info.Percentile = st.spec.percentile()
	}
	if cal.Dir != "" {
		if src.files, err = ImageFiles(cal.Dir); err != nil {
			return nil, err
		}
		info.Source = cal.Dir
	}
	batch := cal.BatchSize
	if batch <= 0 {
		batch = defaultCalibBatch
	}
	if in.Batch > 0 {
		batch = in.Batch
	}

	path, cleanup, err := writeAugmented(st.m, names, cal.TempDir)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	sess, err := cal.Runner.Open(path)
	if err != nil {
		return nil, fmt.Errorf("calibration: open augmented model: %w", err)
	}
	defer sess.Close()
	nOut := len(st.m.Graph().GetOutput())
	cols := make([]collector, len(names))
	for i := range cols {
		cols[i] = newCollector(st.spec.calibMethod(), symmetric(names[i]))
	}
	buf := make([]float32, 0, batch*in.SampleLen())
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		buf = buf[:0]
		n := 0
		for n < batch {
			x, err := src.nextSample()
			if err != nil {
				return nil, err
			}
			if x == nil {
				break
			}
			buf = append(buf, x...)
			n++
		}
		if n == 0 {
			break
		}
		if in.Batch > 0 && n < in.Batch {
			// A fixed-batch model: pad the last batch by repeating its
			// first sample (it counts twice; harmless for ranges).
			for ; n < in.Batch; n++ {
				buf = append(buf, buf[:in.SampleLen()]...)
			}
		}
		outs, err := sess.Run(Tensor{Shape: in.Shape(n), Data: buf})
		if err != nil {
			return nil, fmt.Errorf("calibration run: %w", err)
		}
		if len(outs) != nOut+len(names) {
			return nil, fmt.Errorf("calibration run returned %d outputs, want %d", len(outs), nOut+len(names))
		}
		for i, c := range cols {
			c.add(outs[nOut+i].Data)
		}
		info.Samples += n
	}
	if info.Samples == 0 {
		return nil, errors.New("calibration: no samples")
	}
	info.Skipped = src.skipped
	st.calib = info
	ranges := make(map[string][2]float32, len(names))
	for i, name := range names {
		lo, hi := cols[i].rangeOf(st.spec.percentile())
		ranges[name] = [2]float32{lo, hi}
	}
	return ranges, nil
}

// writeAugmented saves m with the observed tensors added as graph outputs
// to a temporary file, and restores m. Large models go out with external
// data. cleanup removes the files.
func writeAugmented(m *onnx.Model, names []string, dir string) (path string, cleanup func(), err error) {
	tmp, err := os.MkdirTemp(dir, "quantscope-calib-")
	if err != nil {
		return "", nil, fmt.Errorf("calibration: %w", err)
	}
	cleanup = func() { os.RemoveAll(tmp) }
	g := m.Graph()
	saved := g.Output
	g.Output = append(g.Output[:len(saved):len(saved)], make([]*onnxpb.ValueInfoProto, 0, len(names))...)
	for _, name := range names {
		g.Output = append(g.Output, &onnxpb.ValueInfoProto{
			Name: ptr(name),
			Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: ptr(int32(onnx.Float))}}},
		})
	}
	path = filepath.Join(tmp, "augmented.onnx")
	stats, _ := tensorBytes(g)
	err = onnx.Save(m, path, onnx.SaveOptions{ExternalData: stats > 1<<30})
	g.Output = saved
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("calibration: write augmented model: %w", err)
	}
	return path, cleanup, nil
}

// collector folds a tensor's values, batch by batch, into what its
// calibration method needs.
type collector interface {
	add(values []float32)
	// rangeOf returns the calibrated range (percentile is used by the
	// percentile method only).
	rangeOf(percentile float64) (lo, hi float32)
}

func newCollector(m CalibMethod, symmetric bool) collector {
	switch m {
	case CalibMinMax:
		return &minMaxCollector{lo: float32(math.Inf(1)), hi: float32(math.Inf(-1))}
	case CalibEntropy:
		return &histCollector{entropy: true, symmetric: symmetric}
	}
	return &histCollector{symmetric: symmetric}
}

// minMaxCollector keeps the global minimum and maximum.
type minMaxCollector struct{ lo, hi float32 }

func (c *minMaxCollector) add(vs []float32) {
	for _, v := range vs {
		if v < c.lo {
			c.lo = v
		}
		if v > c.hi {
			c.hi = v
		}
	}
}

func (c *minMaxCollector) rangeOf(float64) (float32, float32) {
	if c.lo > c.hi {
		return 0, 0
	}
	return c.lo, c.hi
}

// histCollector keeps a histogram of the values, symmetric around 0, as
// ONNX Runtime's histogram calibrators do: the bin width is fixed by the
// first batch (histBins bins over ±its largest magnitude), and later
// batches with larger values add bins at both ends, so outliers do not
// coarsen the bins the bulk of the values falls in. Past maxHistBins bins,
// neighbouring bins are merged pairwise (exactly) and the width doubles.
type histCollector struct {
	entropy   bool
	symmetric bool
	width     float64
	half      int // bins on each side of 0; len(bins) == 2*half, half even
	bins      []float64
	lo, hi    float32 // observed extremes
	seen      bool
}

// maxHistBins bounds a histogram's size (and the entropy search's cost).
const maxHistBins = 8192

func (c *histCollector) add(vs []float32) {
	if len(vs) == 0 {
		return
	}
	lo, hi := minMax(vs)
	if !c.seen {
		c.lo, c.hi, c.seen = lo, hi, true
	} else {
		c.lo, c.hi = min(c.lo, lo), max(c.hi, hi)
	}
	m := math.Max(math.Abs(float64(lo)), math.Abs(float64(hi)))
	if math.IsNaN(m) || math.IsInf(m, 0) {
		return
	}
	if c.bins == nil {
		if m == 0 {
			m = 1e-6
		}
		c.half = histBins / 2
		c.width = m / float64(c.half)
		c.bins = make([]float64, histBins)
	}
	if t := c.width * float64(c.half); m > t {
		c.extend(m)
	}
	t := c.width * float64(c.half)
	n := len(c.bins)
	for _, v := range vs {
		i := int((float64(v) + t) / c.width)
		if i >= n {
			i = n - 1
		}
		if i < 0 {
			i = 0
		}
		c.bins[i]++
	}
}

// extend adds bins at both ends until ±m is covered, merging pairs while
// the histogram would exceed maxHistBins.
func (c *histCollector) extend(m float64) {
	need := int(math.Ceil(m/c.width)) + 1
	need = max(need, c.half*5/4)
	need += need % 2
	for 2*need > maxHistBins {
		c.merge()
		need = (need + 1) / 2
		need += need % 2
	}
	if need <= c.half {
		return
	}
	nb := make([]float64, 2*need)
	copy(nb[need-c.half:], c.bins)
	c.bins, c.half = nb, need
}

// merge halves the number of bins: pairs of bins, aligned on 0, add up.
func (c *histCollector) merge() {
	if c.half%2 != 0 {
		// Pad one empty bin on each side to keep pairs aligned on 0.
		nb := make([]float64, 2*c.half+2)
		copy(nb[1:], c.bins)
		c.bins, c.half = nb, c.half+1
	}
	nb := make([]float64, c.half)
	for i, v := range c.bins {
		nb[i/2] += v
	}
	c.bins, c.half, c.width = nb, c.half/2, c.width*2
	if c.half%2 != 0 {
		nb := make([]float64, 2*c.half+2)
		copy(nb[1:], c.bins)
		c.bins, c.half = nb, c.half+1
	}
}

func (c *histCollector) rangeOf(percentile float64) (float32, float32) {
	if !c.seen || c.bins == nil {
		return 0, 0
	}
	var lo, hi float64
	if c.entropy {
		lo, hi = c.entropyRange()
	} else {
		lo, hi = c.percentileRange(percentile)
	}
	// Never beyond what was observed.
	return max(float32(lo), c.lo), min(float32(hi), c.hi)
}

// edge returns the lower edge of bin i.
func (c *histCollector) edge(i int) float64 { return float64(i-c.half) * c.width }

// percentileRange cuts (100-p)/2 percent of the values off each tail
// (ONNX Runtime's asymmetric percentile), or, symmetric, returns ±the
// magnitude below which p percent of the values lie.
func (c *histCollector) percentileRange(p float64) (float64, float64) {
	var total float64
	for _, v := range c.bins {
		total += v
	}
	if total == 0 {
		return 0, 0
	}
	n := len(c.bins)
	t := c.edge(n)
	if c.symmetric {
		// Fold into |x| bins around the centre.
		half := c.half
		target := total * p / 100
		var acc float64
		for i := 0; i < half; i++ {
			acc += c.bins[half+i] + c.bins[half-1-i]
			if acc >= target {
				t := c.edge(half + i + 1)
				return -t, t
			}
		}
		return -t, t
	}
	tail := total * (100 - p) / 200
	lo, hi := -t, t
	var acc float64
	for i := 0; i < n; i++ {
		acc += c.bins[i]
		if acc > tail {
			lo = c.edge(i)
			break
		}
	}
	acc = 0
	for i := n - 1; i >= 0; i-- {
		acc += c.bins[i]
		if acc > tail {
			hi = c.edge(i + 1)
			break
		}
	}
	return lo, hi
}

// entropyRange picks the symmetric window [-t, t] whose histogram, folded
// and requantized to entropyQuantBins bins, diverges least (KL) from the
// original: TensorRT's calibration, as ONNX Runtime's entropy calibrator
// computes it.
func (c *histCollector) entropyRange() (float64, float64) {
	center := c.half
	best, bestI := math.Inf(1), c.half
	p := make([]float64, len(c.bins))
	q := make([]float64, len(c.bins))
	var total float64
	for _, v := range c.bins {
		total += v
	}
	if total == 0 {
		return 0, 0
	}
	// At most about 1024 candidate windows: large histograms are
	// searched with a stride.
	step := max(1, (c.half-entropyQuantBins/2)/1024)
	for i := entropyQuantBins / 2; i <= c.half; i += step {
		start, end := center-i, center+i
		n := end - start
		p = p[:n]
		copy(p, c.bins[start:end])
		for _, v := range c.bins[:start] {
			p[0] += v
		}
		for _, v := range c.bins[end:] {
			p[n-1] += v
		}
		// Requantize the window (without the folded outliers) to
		// entropyQuantBins bins and expand back over the nonzero bins.
		q = q[:n]
		clear(q)
		sliced := c.bins[start:end]
		merged := n / entropyQuantBins
		for j := 0; j < entropyQuantBins; j++ {
			s := j * merged
			e := s + merged
			if j == entropyQuantBins-1 {
				e = n
			}
			var sum float64
			nonzero := 0
			for _, v := range sliced[s:e] {
				sum += v
				if v != 0 {
					nonzero++
				}
			}
			if nonzero == 0 {
				continue
			}
			for k := s; k < e; k++ {
				if sliced[k] != 0 {
					q[k] = sum / float64(nonzero)
				}
			}
		}
		kl, ok := smoothedKL(p, q)
		// Ties (within rounding) go to the narrower window.
		if ok && (math.IsInf(best, 1) || kl < best-1e-9*math.Max(1, math.Abs(best))) {
			best, bestI = kl, i
		}
	}
	return c.edge(center - bestI), c.edge(center + bestI)
}

// smoothedKL is scipy's entropy(p, q) after ONNX Runtime's
// smooth_distribution: zero bins get 1e-4, taken evenly from the nonzero
// ones. ok is false when a distribution is all zeros or too sparse to
// smooth.
func smoothedKL(p, q []float64) (float64, bool) {
	const eps = 1e-4
	smooth := func(d []float64) ([]float64, float64, bool) {
		zeros := 0
		for _, v := range d {
			if v == 0 {
				zeros++
			}
		}
		nonzeros := len(d) - zeros
		if nonzeros == 0 {
			return nil, 0, false
		}
		eps1 := eps * float64(zeros) / float64(nonzeros)
		if eps1 >= 1 {
			return nil, 0, false
		}
		out := make([]float64, len(d))
		var sum float64
		for i, v := range d {
			if v == 0 {
				out[i] = eps
			} else {
				out[i] = v - eps1
			}
			sum += out[i]
		}
		return out, sum, true
	}
	ps, psum, ok1 := smooth(p)
	qs, qsum, ok2 := smooth(q)
	if !ok1 || !ok2 || psum <= 0 || qsum <= 0 {
		return 0, false
	}
	var kl float64
	for i := range ps {
		a, b := ps[i]/psum, qs[i]/qsum
		if a > 0 && b > 0 {
			kl += a * math.Log(a/b)
		}
	}
	return kl, true
}
