package quant

import (
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // decoders for calibration folders
	_ "image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/quantscope/quantscope/models/onnx"
)

// ImageInput is a model's image input: its name and the layout of one
// sample, channels × height × width (NCHW).
type ImageInput struct {
	Name                    string
	Channels, Height, Width int
	// Batch is the input's fixed batch size, or 0 when it is symbolic.
	Batch int
	// SymbolicSize is true when the model leaves height or width open:
	// Height and Width are then the size the model declares (metadata
	// MetaResolution) or DefaultImageSize, and At picks another.
	SymbolicSize bool
	hOpen, wOpen bool // which of the two is symbolic
}

// MetaResolution is the metadata key by which a model with symbolic height
// and width declares the size it is meant to run at (quantscope's own
// builds write it; an exporter may too).
const MetaResolution = "quantscope.resolution"

// At returns the input as a run at size uses it. A model with symbolic
// height and width runs at size when it is > 0, else at the size it
// declares (ImageInputOf). A fixed-size input keeps its size; asking it
// for another is an error.
func (in ImageInput) At(size int) (ImageInput, error) {
	if size <= 0 {
		return in, nil
	}
	if !in.SymbolicSize {
		if in.Height == size && in.Width == size {
			return in, nil
		}
		return in, fmt.Errorf("input %q has a fixed %d×%d size: it cannot run at %d×%d", in.Name, in.Height, in.Width, size, size)
	}
	if in.hOpen {
		in.Height = size
	}
	if in.wOpen {
		in.Width = size
	}
	return in, nil
}

// SampleLen is the number of float32 values of one sample.
func (in ImageInput) SampleLen() int { return in.Channels * in.Height * in.Width }

// Shape returns the input's shape for a batch of n samples.
func (in ImageInput) Shape(n int) []int64 {
	return []int64{int64(n), int64(in.Channels), int64(in.Height), int64(in.Width)}
}

// DefaultImageSize is used for symbolic height and width.
const DefaultImageSize = 224

// ImageInputOf finds the model's single float image input [N, C, H, W].
// Symbolic height and width take the size the model declares in its
// metadata (MetaResolution), else DefaultImageSize; symbolic channels
// are 3. This is the one rule for what size such a model runs at:
// quantize's checks and calibration and bench's workers all use it.
func ImageInputOf(m *onnx.Model) (ImageInput, error) {
	declared := DefaultImageSize
	for _, e := range m.Proto.GetMetadataProps() {
		if e.GetKey() == MetaResolution {
			if v, err := strconv.Atoi(strings.TrimSpace(e.GetValue())); err == nil && v >= 8 && v <= 8192 {
				declared = v
			}
		}
	}
	g := m.Graph()
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	var found []ImageInput
	for _, vi := range g.GetInput() {
		if inits[vi.GetName()] {
			continue
		}
		dims, ok := staticShape(vi)
		if !ok || len(dims) != 4 || elemTypeOf(vi) != onnx.Float {
			return ImageInput{}, fmt.Errorf("input %q is not a float32 image tensor [N, C, H, W]", vi.GetName())
		}
		in := ImageInput{Name: vi.GetName(), Channels: int(dims[1]), Height: int(dims[2]), Width: int(dims[3])}
		if dims[0] > 0 {
			in.Batch = int(dims[0])
		}
		if in.Channels <= 0 {
			in.Channels = 3
		}
		if in.Height <= 0 {
			in.Height, in.SymbolicSize, in.hOpen = declared, true, true
		}
		if in.Width <= 0 {
			in.Width, in.SymbolicSize, in.wOpen = declared, true, true
		}
		found = append(found, in)
	}
	if len(found) != 1 {
		return ImageInput{}, fmt.Errorf("model has %d inputs; quantscope feeds models with exactly one image input", len(found))
	}
	return found[0], nil
}

// Preprocess is how images become model input: resized so the shorter
// side is Height/CropRatio, centre-cropped, scaled to [0, 1], then
// normalized per channel with (x - Mean) / Std.
type Preprocess struct {
	Mean, Std [3]float32
	// CropRatio is the crop's share of the resized image (0 means 0.875,
	// the usual 224-of-256).
	CropRatio float64
}

// ImageNetPreprocess is the ImageNet mean and standard deviation most
// vision models are trained with.
var ImageNetPreprocess = Preprocess{Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}}

func (p Preprocess) orDefault() Preprocess {
	if p.Std == ([3]float32{}) {
		mean, ratio := p.Mean, p.CropRatio
		p = ImageNetPreprocess
		if mean != ([3]float32{}) {
			p.Mean = mean
		}
		p.CropRatio = ratio
	}
	if p.CropRatio <= 0 || p.CropRatio > 1 {
		p.CropRatio = 0.875
	}
	return p
}

// normalize writes pixel values in [0, 1] (planar, [C][H·W]) into dst as
// model input.
func (p Preprocess) normalize(dst []float32, c, hw int) {
	for ch := 0; ch < c; ch++ {
		mean, std := p.Mean[min(ch, 2)], p.Std[min(ch, 2)]
		if std == 0 {
			std = 1
		}
		plane := dst[ch*hw : (ch+1)*hw]
		for i, v := range plane {
			plane[i] = (v - mean) / std
		}
	}
}

// SyntheticImage returns seeded synthetic image number index as model
// input: a smooth random background (oriented gradients and low-frequency
// waves), a few flat-coloured shapes with sharp edges, and pixel noise,
// in [0, 1] before normalization — the statistics of photographs closely
// enough to exercise activation ranges. The same seed and index always
// give the same image.
func SyntheticImage(in ImageInput, pre Preprocess, seed uint64, index int) []float32 {
	pre = pre.orDefault()
	rng := rand.New(rand.NewPCG(seed, uint64(index)*0x9e3779b97f4a7c15+1))
	h, w, c := in.Height, in.Width, in.Channels
	hw := h * w
	out := make([]float32, c*hw)
	type wave struct{ fx, fy, ph, amp float64 }
	for ch := 0; ch < c; ch++ {
		base := 0.2 + 0.6*rng.Float64()
		gx, gy := (rng.Float64()-0.5)*0.6, (rng.Float64()-0.5)*0.6
		var waves [3]wave
		for i := range waves {
			waves[i] = wave{
				fx: (rng.Float64() - 0.5) * 12 / float64(w), fy: (rng.Float64() - 0.5) * 12 / float64(h),
				ph: rng.Float64() * 2 * math.Pi, amp: 0.05 + 0.15*rng.Float64(),
			}
		}
		plane := out[ch*hw : (ch+1)*hw]
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := base + gx*float64(x)/float64(w) + gy*float64(y)/float64(h)
				for _, wv := range waves {
					v += wv.amp * math.Sin(2*math.Pi*(wv.fx*float64(x)+wv.fy*float64(y))+wv.ph)
				}
				plane[y*w+x] = float32(v)
			}
		}
	}
	shapes := 2 + rng.IntN(5)
	for s := 0; s < shapes; s++ {
		cx, cy := rng.Float64()*float64(w), rng.Float64()*float64(h)
		rx, ry := (0.05+0.25*rng.Float64())*float64(w), (0.05+0.25*rng.Float64())*float64(h)
		round := rng.IntN(2) == 0
		color := make([]float32, c)
		for ch := range color {
			color[ch] = float32(rng.Float64())
		}
		for y := max(0, int(cy-ry)); y < min(h, int(cy+ry)+1); y++ {
			for x := max(0, int(cx-rx)); x < min(w, int(cx+rx)+1); x++ {
				dx, dy := (float64(x)-cx)/rx, (float64(y)-cy)/ry
				if round && dx*dx+dy*dy > 1 {
					continue
				}
				for ch := 0; ch < c; ch++ {
					out[ch*hw+y*w+x] = color[ch]
				}
			}
		}
	}
	for i := range out {
		v := out[i] + float32(rng.NormFloat64()*0.03)
		out[i] = min(max(v, 0), 1)
	}
	pre.normalize(out, c, hw)
	return out
}

// CheckInputs is the one definition of the inputs a variant's fidelity
// against FP32 is measured on when no images of the task are given:
// N seeded synthetic images (SyntheticImage, so image-like) normalised the
// way the model expects. quantize --check and the benchmark worker both
// feed these, and record String() with the result.
type CheckInputs struct {
	N    int    `json:"n"`
	Seed uint64 `json:"seed"`
	// Norm names the normalisation ("imagenet", "clip", …); Mean and Std
	// are its per-channel values.
	Norm string     `json:"norm"`
	Mean [3]float32 `json:"mean"`
	Std  [3]float32 `json:"std"`
}

// Default check inputs: 64 images with seed 7.
const (
	DefaultCheckSamples = 64
	DefaultCheckSeed    = 7
)

// CheckInputsVersion names the definition of CheckInputs; files computed
// from the inputs (FP32 reference outputs) are keyed by it, so a change to
// SyntheticImage or to the default seed must change it.
const CheckInputsVersion = "synthetic-images-1"

// NewCheckInputs returns the default check inputs (n images, or
// DefaultCheckSamples for n ≤ 0) for a model normalised as norm/mean/std
// (ImageNet's when std is zero).
func NewCheckInputs(n int, seed uint64, norm string, mean, std [3]float32) CheckInputs {
	if n <= 0 {
		n = DefaultCheckSamples
	}
	if std == ([3]float32{}) {
		norm, mean, std = "imagenet", ImageNetPreprocess.Mean, ImageNetPreprocess.Std
	}
	if norm == "" {
		norm = "model"
	}
	return CheckInputs{N: n, Seed: seed, Norm: norm, Mean: mean, Std: std}
}

// Preprocess is the normalisation the images get.
func (c CheckInputs) Preprocess() Preprocess { return Preprocess{Mean: c.Mean, Std: c.Std} }

// Sample returns image i (0 ≤ i < N) as input of layout in.
func (c CheckInputs) Sample(in ImageInput, i int) []float32 {
	return SyntheticImage(in, c.Preprocess(), c.Seed, i)
}

// String says what the inputs are, e.g. "64 seeded synthetic images
// (seed 7, imagenet normalisation)".
func (c CheckInputs) String() string {
	return fmt.Sprintf("%d seeded synthetic images (seed %d, %s normalisation)", c.N, c.Seed, c.Norm)
}

// ImageFiles lists the JPEG and PNG files of dir (not recursive), sorted
// by name.
func ImageFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".jpg", ".jpeg", ".png":
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("image folder %s: no .jpg, .jpeg or .png files", dir)
	}
	return files, nil
}

// LoadImages decodes the images of dir (ImageFiles; the first limit of
// them when limit > 0) into model inputs (LoadImage). An image that does
// not decode is skipped and named through warn; a folder none of whose
// images decode is an error.
func LoadImages(dir string, in ImageInput, pre Preprocess, limit int, warn func(string)) ([][]float32, error) {
	files, err := ImageFiles(dir)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(files) > limit {
		files = files[:limit]
	}
	var out [][]float32
	for _, f := range files {
		img, err := LoadImage(f, in, pre)
		if err != nil {
			if warn != nil {
				warn(fmt.Sprintf("skipped %s: %v", filepath.Base(f), err))
			}
			continue
		}
		out = append(out, img)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("image folder %s: none of its %d images decoded", dir, len(files))
	}
	return out, nil
}

// LoadImage decodes a JPEG or PNG file and turns it into model input:
// the shorter side resized to Height/CropRatio (antialiased), the centre
// cropped to Height × Width, scaled to [0, 1] and normalized. Grayscale
// images are replicated to three channels.
func LoadImage(path string, in ImageInput, pre Preprocess) ([]float32, error) {
	pre = pre.orDefault()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", filepath.Base(path), err)
	}
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	if sw <= 0 || sh <= 0 {
		return nil, fmt.Errorf("decode %s: empty image", filepath.Base(path))
	}
	// Planar float RGB in [0, 1].
	src := make([]float32, 3*sw*sh)
	for y := 0; y < sh; y++ {
		for x := 0; x < sw; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			i := y*sw + x
			src[i] = float32(r) / 65535
			src[sw*sh+i] = float32(g) / 65535
			src[2*sw*sh+i] = float32(bl) / 65535
		}
	}
	short := math.Ceil(float64(max(in.Height, in.Width)) / pre.CropRatio)
	scale := short / float64(min(sw, sh))
	rw, rh := max(in.Width, int(math.Round(float64(sw)*scale))), max(in.Height, int(math.Round(float64(sh)*scale)))
	resized := resizePlanar(src, 3, sw, sh, rw, rh)
	x0, y0 := (rw-in.Width)/2, (rh-in.Height)/2
	hw := in.Height * in.Width
	out := make([]float32, in.Channels*hw)
	for ch := 0; ch < in.Channels; ch++ {
		sc := min(ch, 2)
		for y := 0; y < in.Height; y++ {
			row := resized[sc*rw*rh+(y0+y)*rw+x0:]
			copy(out[ch*hw+y*in.Width:ch*hw+(y+1)*in.Width], row[:in.Width])
		}
	}
	pre.normalize(out, in.Channels, hw)
	return out, nil
}

// resizePlanar resizes c planes of sw×sh to dw×dh with a triangle
// (bilinear) filter widened by the scale when shrinking, so downscaling
// averages instead of aliasing (what PIL's bilinear resize does).
func resizePlanar(src []float32, c, sw, sh, dw, dh int) []float32 {
	tmp := make([]float32, c*dw*sh)
	wx := filterWeights(sw, dw)
	for ch := 0; ch < c; ch++ {
		for y := 0; y < sh; y++ {
			row := src[ch*sw*sh+y*sw : ch*sw*sh+(y+1)*sw]
			for x := 0; x < dw; x++ {
				var acc float32
				for _, t := range wx[x] {
					acc += row[t.i] * t.w
				}
				tmp[ch*dw*sh+y*dw+x] = acc
			}
		}
	}
	out := make([]float32, c*dw*dh)
	wy := filterWeights(sh, dh)
	for ch := 0; ch < c; ch++ {
		for y := 0; y < dh; y++ {
			for x := 0; x < dw; x++ {
				var acc float32
				for _, t := range wy[y] {
					acc += tmp[ch*dw*sh+t.i*dw+x] * t.w
				}
				out[ch*dw*dh+y*dw+x] = acc
			}
		}
	}
	return out
}

type tap struct {
	i int
	w float32
}

// filterWeights returns, for each destination pixel, the source pixels
// and normalized weights of a triangle filter with support
// max(1, src/dst).
func filterWeights(src, dst int) [][]tap {
	ratio := float64(src) / float64(dst)
	support := math.Max(1, ratio)
	out := make([][]tap, dst)
	for d := 0; d < dst; d++ {
		center := (float64(d)+0.5)*ratio - 0.5
		lo, hi := int(math.Floor(center-support)), int(math.Ceil(center+support))
		var taps []tap
		var sum float64
		for s := lo; s <= hi; s++ {
			w := 1 - math.Abs(float64(s)-center)/support
			if w <= 0 {
				continue
			}
			taps = append(taps, tap{i: min(max(s, 0), src-1), w: float32(w)})
			sum += w
		}
		for i := range taps {
			taps[i].w = float32(float64(taps[i].w) / sum)
		}
		out[d] = taps
	}
	return out
}

// sampleSource yields calibration or check samples one at a time.
type sampleSource struct {
	in      ImageInput
	pre     Preprocess
	files   []string // image folder; nil for synthetic
	seed    uint64
	n       int // samples wanted
	next    int // next file or synthetic index
	done    int
	skipped []string
	warn    func(string)
}

// errNoImages is returned when every file of a folder was unreadable.
var errNoImages = errors.New("no readable image")

// nextSample returns the next sample, or nil at the end. Unreadable
// files are skipped with a warning.
func (s *sampleSource) nextSample() ([]float32, error) {
	if s.done >= s.n {
		return nil, nil
	}
	if s.files == nil {
		x := SyntheticImage(s.in, s.pre, s.seed, s.next)
		s.next++
		s.done++
		return x, nil
	}
	for s.next < len(s.files) {
		path := s.files[s.next]
		s.next++
		x, err := LoadImage(path, s.in, s.pre)
		if err != nil {
			s.skipped = append(s.skipped, filepath.Base(path))
			if s.warn != nil {
				s.warn(fmt.Sprintf("skipping calibration image %s: %v", filepath.Base(path), err))
			}
			continue
		}
		s.done++
		return x, nil
	}
	if s.done == 0 {
		return nil, fmt.Errorf("image folder: %w among %d files", errNoImages, len(s.files))
	}
	return nil, nil
}

// ImageInputFile is ImageInputOf for a model file (its graph only is
// read).
func ImageInputFile(path string) (ImageInput, error) {
	m, err := onnx.LoadWith(path, onnx.LoadOptions{SkipExternalData: true})
	if err != nil {
		return ImageInput{}, err
	}
	in, err := ImageInputOf(m)
	if err != nil {
		return ImageInput{}, fmt.Errorf("%s: %w", path, err)
	}
	return in, nil
}
