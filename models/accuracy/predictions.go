package accuracy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// K is how many ranked classes a prediction keeps per image: enough for
// top-5 accuracy.
const K = 5

// Predictions are a model's K best classes for each image of a set, best
// first, in the set's order. A class of −1 marks a rank the model did not
// fill (fewer than K outputs, or NaN outputs, which never count as right).
type Predictions struct {
	// Set is the key of the image set they were made on (see
	// models/imageset); two runs pair only on the same set.
	Set string
	top []int32 // K per image
}

// Len is the number of images predicted.
func (p *Predictions) Len() int { return len(p.top) / K }

// Row returns image i's K classes, best first.
func (p *Predictions) Row(i int) []int32 { return p.top[i*K : (i+1)*K] }

// Add ranks one image's outputs (logits or probabilities, larger is more
// likely) and appends its K best classes; ties go to the lower index, as
// models/fidelity ranks them. An output vector with a NaN is appended as
// no answer at all.
func (p *Predictions) Add(scores []float32) {
	var row [K]int32
	for i := range row {
		row[i] = -1
	}
	nan := false
	for _, v := range scores {
		if v != v {
			nan = true
			break
		}
	}
	if !nan {
		// Insertion into a K-long ranking: one pass over the outputs.
		n := 0
		for j, v := range scores {
			pos := n
			for pos > 0 && v > scores[row[pos-1]] {
				pos--
			}
			if pos >= K {
				continue
			}
			end := min(n, K-1)
			copy(row[pos+1:end+1], row[pos:end])
			row[pos] = int32(j)
			if n < K {
				n++
			}
		}
	}
	p.top = append(p.top, row[:]...)
}

// Counts are the correct answers of one model on a labelled set.
type Counts struct {
	Images int `json:"images"`
	Top1   int `json:"top1_correct"`
	Top5   int `json:"top5_correct"`
}

// Score counts p's correct answers against labels (one class per image).
func Score(p *Predictions, labels []int32) (Counts, error) {
	if p.Len() != len(labels) {
		return Counts{}, fmt.Errorf("score: %d predictions for %d labels", p.Len(), len(labels))
	}
	c := Counts{Images: len(labels)}
	for i, want := range labels {
		row := p.Row(i)
		if row[0] == want {
			c.Top1++
		}
		for _, got := range row {
			if got == want {
				c.Top5++
				break
			}
		}
	}
	return c, nil
}

// Paired holds a variant's paired tables against its reference.
type Paired struct {
	Top1 Table `json:"top1"`
	Top5 Table `json:"top5"`
}

// Pair compares a variant's predictions with its reference's on the same
// labelled images.
func Pair(ref, got *Predictions, labels []int32) (Paired, error) {
	if ref.Set != got.Set {
		return Paired{}, fmt.Errorf("pair predictions: made on different image sets (%s and %s)", short(ref.Set), short(got.Set))
	}
	if ref.Len() != len(labels) || got.Len() != len(labels) {
		return Paired{}, fmt.Errorf("pair predictions: %d reference and %d variant predictions for %d labels", ref.Len(), got.Len(), len(labels))
	}
	var out Paired
	add := func(t *Table, r, g bool) {
		switch {
		case r && g:
			t.Both++
		case g:
			t.VariantOnly++
		case r:
			t.RefOnly++
		default:
			t.Neither++
		}
	}
	in := func(row []int32, c int32) bool {
		for _, v := range row {
			if v == c {
				return true
			}
		}
		return false
	}
	for i, want := range labels {
		r, g := ref.Row(i), got.Row(i)
		add(&out.Top1, r[0] == want, g[0] == want)
		add(&out.Top5, in(r, want), in(g, want))
	}
	return out, nil
}

func short(key string) string {
	if len(key) > 12 {
		return key[:12]
	}
	return key
}

// predMagic starts a predictions file.
var predMagic = [8]byte{'Q', 'S', 'P', 'R', 'E', 'D', '0', '1'}

// maxPredImages bounds what ReadPredictions allocates (64 Mi images).
const maxPredImages = 1 << 26

// WritePredictions stores p at path (written to a temporary file and
// renamed, so a reader never sees half of one).
func WritePredictions(path string, p *Predictions) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pred-*")
	if err != nil {
		return fmt.Errorf("write predictions %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	hdr := []uint32{uint32(len(p.Set)), uint32(p.Len()), K}
	err = errors.Join(binary.Write(w, binary.LittleEndian, predMagic), binary.Write(w, binary.LittleEndian, hdr))
	if err == nil {
		_, err = w.WriteString(p.Set)
	}
	if err == nil {
		err = binary.Write(w, binary.LittleEndian, p.top)
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write predictions %s: %w", path, err)
	}
	return nil
}

// ReadPredictions loads a file written by WritePredictions.
func ReadPredictions(path string) (*Predictions, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read predictions %s: %w", path, err)
	}
	defer f.Close()
	p, err := decodePredictions(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("read predictions %s: %w", path, err)
	}
	return p, nil
}

func decodePredictions(r io.Reader) (*Predictions, error) {
	var magic [8]byte
	var hdr [3]uint32
	if err := binary.Read(r, binary.LittleEndian, &magic); err != nil || magic != predMagic {
		return nil, errors.New("not a quantscope predictions file")
	}
	if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	keyLen, n, k := hdr[0], hdr[1], hdr[2]
	if k != K || keyLen > 1024 || n > maxPredImages {
		return nil, fmt.Errorf("header: %d images × %d classes, key of %d bytes: not a file this version writes", n, k, keyLen)
	}
	key := make([]byte, keyLen)
	if _, err := io.ReadFull(r, key); err != nil {
		return nil, fmt.Errorf("set key: %w", err)
	}
	p := &Predictions{Set: string(key), top: make([]int32, int(n)*K)}
	if err := binary.Read(r, binary.LittleEndian, p.top); err != nil {
		return nil, fmt.Errorf("predictions: %w (file truncated?)", err)
	}
	return p, nil
}

// Result is what a run on a labelled image set measured: the set, the
// model's correct answers, and (for a variant) its paired tables against
// the FP32 model's answers on the same images. Rates, intervals and tests
// are derived from these counts (Top1Rate, Top1CI, Drop, …), never stored.
type Result struct {
	// Dataset is the image folder as the user named it.
	Dataset string `json:"dataset"`
	// Set is the key of the decoded, preprocessed set: which files (names,
	// sizes, times, labels) and which preprocessing.
	Set string `json:"set"`
	// Preprocess describes the preprocessing, e.g. "224×224: shorter side
	// to 248 bicubic, centre crop, mean 0.5,0.5,0.5, std 0.5,0.5,0.5".
	Preprocess string `json:"preprocess"`
	// Classes is the number of classes of the labels.
	Classes int `json:"classes"`
	// Skipped counts files that could not be decoded (never scored).
	Skipped int `json:"skipped,omitempty"`
	Counts
	// VsFP32 pairs this run with the FP32 model's on the same images; nil
	// for the FP32 run itself.
	VsFP32 *Paired `json:"vs_fp32,omitempty"`
}

// Top1Rate is top-1 accuracy, 0–1 (NaN with no images).
func (r *Result) Top1Rate() float64 { return rate(r.Top1, r.Images) }

// Top5Rate is top-5 accuracy, 0–1.
func (r *Result) Top5Rate() float64 { return rate(r.Top5, r.Images) }

// Top1CI is the 95% Wilson interval of top-1 accuracy.
func (r *Result) Top1CI() Interval { return Wilson(r.Top1, r.Images, Z95) }

// Top5CI is the 95% Wilson interval of top-5 accuracy.
func (r *Result) Top5CI() Interval { return Wilson(r.Top5, r.Images, Z95) }

// Top1Diff is the paired top-1 comparison with FP32; ok is false without
// a pairing.
func (r *Result) Top1Diff() (Difference, bool) {
	if r == nil || r.VsFP32 == nil {
		return Difference{}, false
	}
	return r.VsFP32.Top1.Compare(), true
}

// Top5Diff is the paired top-5 comparison with FP32.
func (r *Result) Top5Diff() (Difference, bool) {
	if r == nil || r.VsFP32 == nil {
		return Difference{}, false
	}
	return r.VsFP32.Top5.Compare(), true
}

// Drop is the top-1 accuracy lost against FP32 in percentage points
// (positive when the variant is worse): what the gate `acc-drop<=0.5`
// tests. ok is false without a pairing.
func (r *Result) Drop() (float64, bool) {
	d, ok := r.Top1Diff()
	if !ok {
		return math.NaN(), false
	}
	return -100 * d.Diff, true
}

func rate(k, n int) float64 {
	if n <= 0 {
		return math.NaN()
	}
	return float64(k) / float64(n)
}
