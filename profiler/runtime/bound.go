package runtime

import (
	"errors"
	"fmt"
	"math/rand/v2"

	ort "github.com/yalue/onnxruntime_go"
)

// Bound is a session whose input and output tensors are allocated once, at a
// fixed batch size, so each Run costs ONNX Runtime's work and nothing else:
// the shape of a benchmark loop.
type Bound struct {
	sess     *ort.AdvancedSession
	inputs   []*ort.Tensor[float32]
	outputs  []*ort.Tensor[float32]
	InShape  [][]int64 // per input, with the batch dimension resolved
	OutShape [][]int64 // per output
	Batch    int
}

// ErrNotFloatModel marks a model whose inputs or outputs are not all float32
// tensors; quantscope feeds images and reads logits or embeddings.
var ErrNotFloatModel = errors.New("model inputs and outputs must be float32 tensors")

// NewBound opens the model at path and allocates its tensors for batch.
// Symbolic or unknown leading dimensions become batch; any other unknown
// dimension is an error naming it. Inputs start filled with seeded
// standard-normal values (the distribution of normalized pixels).
func NewBound(path string, cfg SessionConfig, batch int, seed uint64) (*Bound, error) {
	if batch < 1 {
		return nil, fmt.Errorf("batch size %d: must be at least 1", batch)
	}
	if !ort.IsInitialized() {
		return nil, fmt.Errorf("open %s: %w (call runtime.Init first)", path, ErrNoLibrary)
	}
	opts, err := newSessionOptions(cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer opts.Destroy()
	ins, outs, err := ort.GetInputOutputInfoWithOptions(path, opts)
	if err != nil {
		return nil, fmt.Errorf("read inputs/outputs of %s: %w", path, err)
	}
	b := &Bound{Batch: batch}
	fail := func(err error) (*Bound, error) {
		b.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	var inVals, outVals []ort.Value
	for _, in := range ins {
		shape, err := resolveShape(in, batch, cfg.ImageSize)
		if err != nil {
			return fail(err)
		}
		t, err := ort.NewEmptyTensor[float32](ort.NewShape(shape...))
		if err != nil {
			return fail(fmt.Errorf("input %q: %w", in.Name, err))
		}
		data := t.GetData()
		for i := range data {
			data[i] = float32(rng.NormFloat64())
		}
		b.inputs = append(b.inputs, t)
		b.InShape = append(b.InShape, shape)
		inVals = append(inVals, t)
	}
	for _, out := range outs {
		shape, err := resolveShape(out, batch, 0)
		if err != nil {
			return fail(err)
		}
		t, err := ort.NewEmptyTensor[float32](ort.NewShape(shape...))
		if err != nil {
			return fail(fmt.Errorf("output %q: %w", out.Name, err))
		}
		b.outputs = append(b.outputs, t)
		b.OutShape = append(b.OutShape, shape)
		outVals = append(outVals, t)
	}
	b.sess, err = ort.NewAdvancedSession(path, names(ins), names(outs), inVals, outVals, opts)
	if err != nil {
		return fail(explainSessionError(err))
	}
	return b, nil
}

// resolveShape fixes a tensor's shape for batch: the leading dimension
// when symbolic, and, with imageSize > 0, the symbolic height and width of
// a 4-D [N, C, H, W] tensor.
func resolveShape(info ort.InputOutputInfo, batch, imageSize int) ([]int64, error) {
	if info.OrtValueType != ort.ONNXTypeTensor || info.DataType != ort.TensorElementDataTypeFloat {
		return nil, fmt.Errorf("%w: %q is %v", ErrNotFloatModel, info.Name, info.DataType)
	}
	shape := []int64(info.Dimensions.Clone())
	for i, d := range shape {
		switch {
		case d > 0:
		case i == 0:
			shape[0] = int64(batch)
		case imageSize > 0 && len(shape) == 4 && i >= 2:
			shape[i] = int64(imageSize)
		default:
			return nil, fmt.Errorf("%q has an unknown dimension %d %v: only the batch dimension may be symbolic", info.Name, i, info.Dimensions)
		}
	}
	return shape, nil
}

// Run runs the model once on the bound inputs.
func (b *Bound) Run() error { return b.sess.Run() }

// Input returns input i's data, to be overwritten in place between runs.
func (b *Bound) Input(i int) []float32 { return b.inputs[i].GetData() }

// Output returns output i's data after a Run (valid until the next Run).
func (b *Bound) Output(i int) []float32 { return b.outputs[i].GetData() }

// NumInputs and NumOutputs count the bound tensors.
func (b *Bound) NumInputs() int { return len(b.inputs) }

// NumOutputs counts the bound output tensors.
func (b *Bound) NumOutputs() int { return len(b.outputs) }

// Close releases the session and its tensors.
func (b *Bound) Close() error {
	if b == nil {
		return nil
	}
	var errs []error
	if b.sess != nil {
		errs = append(errs, b.sess.Destroy())
		b.sess = nil
	}
	for _, t := range b.inputs {
		errs = append(errs, t.Destroy())
	}
	for _, t := range b.outputs {
		errs = append(errs, t.Destroy())
	}
	b.inputs, b.outputs = nil, nil
	return errors.Join(errs...)
}
