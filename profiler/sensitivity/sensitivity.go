// Package sensitivity ranks a model's weight layers (or blocks of them) by
// how much fidelity quantizing each one alone costs: for every candidate,
// the FP32 model with only that layer converted (models/quant's per-layer
// exclusion), written to a scratch file (in memory, /dev/shm, where there
// is one) and run in one ONNX Runtime session on a small fixed batch of
// inputs and compared with FP32's outputs — cosine, SQNR, top-1 agreement
// and, with labelled images, accuracy. `quantscope sensitivity` prints it,
// `quantscope tune` starts its search from it, the TUI's run detail draws
// its top entries as bars.
package sensitivity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/quantscope/quantscope/models/fidelity"
	"github.com/quantscope/quantscope/models/onnx"
	"github.com/quantscope/quantscope/models/quant"
	"github.com/quantscope/quantscope/profiler/ort"
)

// Granularity is what a candidate is: one weight layer or one block.
type Granularity string

// Granularities.
const (
	ByLayer Granularity = "layer"
	ByBlock Granularity = "block"
)

// Inputs are the fixed batch every candidate runs on: model inputs (one
// normalized image each) and, when known, their labels.
type Inputs struct {
	Samples [][]float32
	Labels  []int32 // nil without labels
	// Source says what they are ("12 synthetic images (seed 7)", "16
	// images of /data/val").
	Source string
}

// Config is a sensitivity analysis.
type Config struct {
	// Model is the FP32 model file to analyze (fused already if the
	// variants will be).
	Model string
	// Precision is what each candidate is quantized to (int8, int4, with
	// options); its own layer choices are ignored.
	Precision quant.Spec
	By        Granularity
	Inputs    Inputs
	// Batch is the session's batch (default: up to 8, at most the samples).
	Batch int
	// Session configures ONNX Runtime (threads).
	Session ort.SessionConfig
	// Progress is called before each candidate (done of total) and at the
	// end (may be nil).
	Progress func(done, total int, name string)
}

// Candidate is one layer or block's cost when quantized alone.
type Candidate struct {
	Name   string   `json:"name"`
	Layers []string `json:"layers"`
	Params int64    `json:"params"`
	// Fidelity of the model with this candidate quantized, against FP32.
	Cosine    float64 `json:"cosine"`
	CosineMin float64 `json:"cosine_min"`
	SQNRdB    float64 `json:"sqnr_db"`
	Top1Agree float64 `json:"top1_agreement"`
	// Correct is the number of labelled samples it got right (−1 without
	// labels).
	Correct int `json:"correct"`
	// Loss is 1 − Cosine: the ranking key (NaN outputs rank first).
	Loss float64 `json:"loss"`
	// Skipped says why the candidate was not measured ("" when it was).
	Skipped string `json:"skipped,omitempty"`
}

// Result is a ranked sensitivity analysis.
type Result struct {
	Model     string      `json:"model"`
	Precision string      `json:"precision"`
	By        Granularity `json:"by"`
	Inputs    string      `json:"inputs"`
	Samples   int         `json:"samples"`
	// FP32Correct is FP32's correct answers on the labelled samples (−1
	// without labels).
	FP32Correct int `json:"fp32_correct"`
	// Candidates, most sensitive first (skipped ones last).
	Candidates []Candidate `json:"candidates"`
	// Layers are every weight layer of the model, in graph order.
	Layers  []quant.Layer `json:"layers"`
	Elapsed float64       `json:"elapsed_s"`
}

// Groups returns the candidates of a model: each layer, or each block
// with its layers.
func Groups(layers []quant.Layer, by Granularity) (names []string, members map[string][]quant.Layer) {
	members = map[string][]quant.Layer{}
	for _, l := range layers {
		k := l.Name
		if by == ByBlock {
			k = l.Block
		}
		if _, ok := members[k]; !ok {
			names = append(names, k)
		}
		members[k] = append(members[k], l)
	}
	return names, members
}

// maxInline bounds the candidates written as one file; larger ones get
// their weights in an external data file.
const maxInline = 1536 << 20

// scratchDir is where candidates are written for ONNX Runtime to load: a
// fresh folder in /dev/shm (memory) when there is one, else the temporary
// directory.
func scratchDir() (string, error) {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "quantscope-sensitivity-"); err == nil {
			return d, nil
		}
	}
	return os.MkdirTemp("", "quantscope-sensitivity-")
}

// Run analyzes cfg.Model: FP32 once, then every candidate in its own
// session.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	start := time.Now()
	if cfg.Precision.Kind != quant.Int8 && cfg.Precision.Kind != quant.Int4 && cfg.Precision.Kind != quant.Int8Static {
		return nil, fmt.Errorf("sensitivity: precision %s: want int8, int8-static or int4 (per-layer weight quantization)", cfg.Precision)
	}
	if cfg.By != ByLayer && cfg.By != ByBlock {
		return nil, fmt.Errorf("sensitivity: --by %q: want layer or block", cfg.By)
	}
	n := len(cfg.Inputs.Samples)
	if n == 0 {
		return nil, errors.New("sensitivity: no input samples")
	}
	batch := cfg.Batch
	if batch <= 0 {
		batch = min(8, n)
	}
	m, err := onnx.Load(cfg.Model)
	if err != nil {
		return nil, fmt.Errorf("sensitivity: %w", err)
	}
	layers := quant.Layers(m)
	if len(layers) == 0 {
		return nil, fmt.Errorf("sensitivity: %s has no weight layers (MatMul, Gemm or Conv with a constant weight)", cfg.Model)
	}
	spec := cfg.Precision
	spec.Layers = quant.LayerChoice{}
	res := &Result{Model: cfg.Model, Precision: spec.String(), By: cfg.By, Inputs: cfg.Inputs.Source, Samples: n, FP32Correct: -1, Layers: layers}

	ref, err := runModel(ctx, cfg.Model, cfg, batch)
	if err != nil {
		return nil, fmt.Errorf("sensitivity: fp32: %w", err)
	}
	if cfg.Inputs.Labels != nil {
		res.FP32Correct = correct(ref, cfg.Inputs.Labels)
	}
	names, members := Groups(layers, cfg.By)
	scratch, err := scratchDir()
	if err != nil {
		return nil, fmt.Errorf("sensitivity: %w", err)
	}
	defer os.RemoveAll(scratch)
	// Candidates are prepared (copied, quantized, written) one ahead in a
	// goroutine while ONNX Runtime runs the previous one.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	prepared := make(chan prepared, 1)
	go func() {
		defer close(prepared)
		for i, name := range names {
			p := prepare(ctx, m, layers, members[name], spec, name, filepath.Join(scratch, fmt.Sprintf("candidate-%d.onnx", i)))
			select {
			case prepared <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	i := 0
	for p := range prepared {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if cfg.Progress != nil {
			cfg.Progress(i, len(names), p.c.Name)
		}
		i++
		c := p.c
		switch {
		case p.err != nil:
			return nil, fmt.Errorf("sensitivity: %s: %w", c.Name, p.err)
		case c.Skipped != "":
			res.Candidates = append(res.Candidates, c)
			continue
		}
		got, err := runModel(ctx, p.path, cfg, batch)
		removeModel(p.path)
		if err != nil {
			return nil, fmt.Errorf("sensitivity: %s: %w", c.Name, err)
		}
		f, err := fidelity.Compare(ref, got)
		if err != nil {
			return nil, fmt.Errorf("sensitivity: %s: %w", c.Name, err)
		}
		c.Cosine, c.CosineMin, c.SQNRdB, c.Top1Agree = f.CosineMean, f.CosineMin, f.SQNRdB, f.Top1
		c.Loss = 1 - f.CosineMean
		if math.IsNaN(c.Loss) {
			c.Loss = math.Inf(1)
		}
		if cfg.Inputs.Labels != nil {
			c.Correct = correct(got, cfg.Inputs.Labels)
		}
		res.Candidates = append(res.Candidates, c)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.Progress != nil {
		cfg.Progress(len(names), len(names), "")
	}
	slices.SortStableFunc(res.Candidates, func(a, b Candidate) int {
		switch {
		case a.Loss > b.Loss:
			return -1
		case a.Loss < b.Loss:
			return 1
		}
		return 0
	})
	res.Elapsed = time.Since(start).Seconds()
	return res, nil
}

// prepared is a candidate ready to run (its model file), or skipped.
type prepared struct {
	c    Candidate
	path string
	err  error
}

// prepare makes candidate name's model: a copy of m with its layers
// quantized to spec, written to path.
func prepare(ctx context.Context, m *onnx.Model, layers, members []quant.Layer, spec quant.Spec, name, path string) prepared {
	c := Candidate{Name: name, Correct: -1}
	in := map[string]bool{}
	for _, l := range members {
		c.Layers = append(c.Layers, l.Name)
		c.Params += l.Params
		in[l.Output] = true
	}
	var exclude []string
	for _, l := range layers {
		if !in[l.Output] {
			exclude = append(exclude, l.Output)
		}
	}
	v := cloneFor(m, in)
	if _, err := quant.Apply(ctx, v, spec, quant.Options{Exclude: exclude}); err != nil {
		if errors.Is(err, quant.ErrNothingConverted) {
			c.Skipped = "nothing to convert at " + string(spec.Kind)
			c.Loss = math.Inf(-1)
			return prepared{c: c}
		}
		return prepared{c: c, err: err}
	}
	err := onnx.Save(v, path, onnx.SaveOptions{ExternalData: proto.Size(v.Proto) >= maxInline})
	return prepared{c: c, path: path, err: err}
}

// removeModel deletes a candidate file and its external data.
func removeModel(path string) {
	os.Remove(path)
	os.Remove(path + ".data")
}

// runModel runs the samples through the model at path and returns each
// sample's first output.
func runModel(ctx context.Context, path string, cfg Config, batch int) ([][]float32, error) {
	bd, err := ort.NewBound(path, cfg.Session, batch, 1)
	if err != nil {
		return nil, err
	}
	defer bd.Close()
	in := bd.Input(0)
	samples := cfg.Inputs.Samples
	per := len(samples[0])
	if len(in) != batch*per {
		return nil, fmt.Errorf("the model takes %d values a batch of %d, the samples have %d each", len(in), batch, per)
	}
	outs := make([][]float32, 0, len(samples))
	for i := 0; i < len(samples); i += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k := min(batch, len(samples)-i)
		for j := 0; j < batch; j++ {
			copy(in[j*per:(j+1)*per], samples[i+min(j, k-1)])
		}
		if err := bd.Run(); err != nil {
			return nil, err
		}
		out := bd.Output(0)
		w := len(out) / batch
		for j := 0; j < k; j++ {
			outs = append(outs, append([]float32(nil), out[j*w:(j+1)*w]...))
		}
	}
	return outs, nil
}

// correct counts arg-max answers equal to the labels.
func correct(outs [][]float32, labels []int32) int {
	n := 0
	for i, o := range outs {
		best := 0
		for j, v := range o {
			if v > o[best] {
				best = j
			}
		}
		if i < len(labels) && int32(best) == labels[i] {
			n++
		}
	}
	return n
}
