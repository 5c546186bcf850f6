package ort

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// Bound is a session whose input and output tensors are allocated once, at a
// fixed batch size, so each Run costs ONNX Runtime's work and nothing else:
// the shape of a benchmark loop. The tensors are host memory (C memory, so
// ONNX Runtime may keep pointing at it between calls).
type Bound struct {
	sess     *cSession
	cpuMI    unsafe.Pointer
	inNames  cArray // char*
	outNames cArray
	inVals   cArray // OrtValue*
	outVals  cArray
	inData   []unsafe.Pointer // float32 buffers behind the values
	outData  []unsafe.Pointer
	inLen    []int
	outLen   []int
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
// standard-normal values (the distribution of normalized pixels). Exactly
// one ONNX Runtime session is created; the inputs and outputs are read
// from it.
func NewBound(path string, cfg SessionConfig, batch int, seed uint64) (*Bound, error) {
	if batch < 1 {
		return nil, fmt.Errorf("batch size %d: must be at least 1", batch)
	}
	if !ort.IsInitialized() {
		return nil, fmt.Errorf("open %s: %w (call ort.Init first)", path, ErrNoLibrary)
	}
	sess, ins, outs, err := openCSession(path, cfg)
	if err != nil {
		return nil, err
	}
	b := &Bound{sess: sess, Batch: batch}
	fail := func(err error) (*Bound, error) {
		b.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	api := sess.api
	if b.cpuMI, err = api.cpuMemInfo(); err != nil {
		return fail(err)
	}
	b.inNames, b.outNames = cStrings(names(ins)), cStrings(names(outs))
	b.inVals, b.outVals = newCArray(len(ins)), newCArray(len(outs))
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	for i, in := range ins {
		shape, err := resolveShape(in, batch, cfg.ImageSize)
		if err != nil {
			return fail(err)
		}
		data, n, v, err := b.tensor(shape)
		if err != nil {
			return fail(fmt.Errorf("input %q: %w", in.Name, err))
		}
		b.inData, b.inLen = append(b.inData, data), append(b.inLen, n)
		b.inVals.set(i, v)
		b.InShape = append(b.InShape, shape)
		vals := b.Input(i)
		for j := range vals {
			vals[j] = float32(rng.NormFloat64())
		}
	}
	for i, out := range outs {
		shape, err := resolveShape(out, batch, 0)
		if err != nil {
			return fail(err)
		}
		data, n, v, err := b.tensor(shape)
		if err != nil {
			return fail(fmt.Errorf("output %q: %w", out.Name, err))
		}
		b.outData, b.outLen = append(b.outData, data), append(b.outLen, n)
		b.outVals.set(i, v)
		b.OutShape = append(b.OutShape, shape)
	}
	return b, nil
}

// tensor allocates a zeroed float32 host buffer of shape and a tensor over it.
func (b *Bound) tensor(shape []int64) (data unsafe.Pointer, n int, v unsafe.Pointer, err error) {
	n = 1
	for _, d := range shape {
		n *= int(d)
	}
	if data, err = cBuffer(4 * n); err != nil {
		return nil, 0, nil, err
	}
	v, err = b.sess.api.hostTensor(b.cpuMI, data, shape)
	if err != nil {
		cFree(data)
		return nil, 0, nil, err
	}
	return data, n, v, nil
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
func (b *Bound) Run() error { return b.sess.run(b.inNames, b.inVals, b.outNames, b.outVals) }

// Input returns input i's data, to be overwritten in place between runs.
func (b *Bound) Input(i int) []float32 { return unsafe.Slice((*float32)(b.inData[i]), b.inLen[i]) }

// Output returns output i's data after a Run (valid until the next Run).
func (b *Bound) Output(i int) []float32 { return unsafe.Slice((*float32)(b.outData[i]), b.outLen[i]) }

// EndProfile ends the profiling the session was opened with
// (SessionConfig.ProfilePrefix) and returns what it recorded; the profile
// file is removed. Runs after it are not profiled.
func (b *Bound) EndProfile() (Profile, error) { return endProfile(b.sess) }

// Close releases the session and its tensors.
func (b *Bound) Close() error {
	if b == nil || b.sess == nil {
		return nil
	}
	api := b.sess.api
	for i := 0; i < b.inVals.n; i++ {
		api.releaseValue(b.inVals.get(i))
	}
	for i := 0; i < b.outVals.n; i++ {
		api.releaseValue(b.outVals.get(i))
	}
	for _, p := range append(b.inData, b.outData...) {
		cFree(p)
	}
	b.inVals.free()
	b.outVals.free()
	freeCStrings(&b.inNames)
	freeCStrings(&b.outNames)
	api.releaseMemInfo(b.cpuMI)
	b.sess.release()
	*b = Bound{}
	return nil
}
