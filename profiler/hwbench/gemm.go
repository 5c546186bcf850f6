package hwbench

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/quantscope/quantscope/models/onnx"
)

// Precision is the arithmetic a GEMM model computes in.
type Precision string

// The GEMM precisions. TF32 is the FP32 model run with the CUDA EP's
// use_tf32 on; FP32 on CUDA runs with it off (strict FP32).
const (
	FP32 Precision = "fp32"
	TF32 Precision = "tf32"
	FP16 Precision = "fp16"
	INT8 Precision = "int8"
)

// gemmBuilderVersion changes whenever the GEMM graphs change, so a cached
// file from an older build is never reused.
const gemmBuilderVersion = 1

// GEMM is a matrix-multiply model: its one float32 input is X[M, K] with M
// the symbolic batch dimension, so a worker run at batch M multiplies M rows.
//
// Float models (FP32, FP16) chain Layers MatMuls that share one K×K weight,
// X → W → W → …, so a run is Layers GEMMs and the casts at the two ends (FP16)
// cost little. Integer models on the CPU chain DynamicQuantizeMatMul nodes,
// the kernel ONNX Runtime's CPU EP runs on VNNI and AMX. Integer models for a
// GPU quantize X once (QuantizeLinear, int8) and run one MatMulInteger
// against a K×(K·Layers) weight, whose int32 result is cut to its first row
// before leaving the graph: a chain would need a requantization pass after
// every GEMM, which costs more than the GEMM on a GPU.
type GEMM struct {
	Precision Precision
	K         int  // inner and output dimension of each MatMul
	Layers    int  // GEMMs per run
	GPU       bool // the integer form for a GPU EP (QuantizeLinear + MatMulInteger)
}

// FLOPsPerRow is the arithmetic one row of X costs: 2·K·K per GEMM (integer
// models count multiply-adds the same way, as operations).
func (g GEMM) FLOPsPerRow() float64 {
	return 2 * float64(g.K) * float64(g.K) * float64(g.Layers)
}

// FileName names the model in the cache: every parameter and the builder
// version, so two configurations never share a file.
func (g GEMM) FileName() string {
	kind := string(g.Precision)
	if g.Precision == TF32 {
		kind = string(FP32) // the same graph
	}
	if g.Precision == INT8 && g.GPU {
		kind += "-gpu"
	}
	return fmt.Sprintf("gemm-%s-k%d-l%d-v%d.onnx", kind, g.K, g.Layers, gemmBuilderVersion)
}

func (g GEMM) validate() error {
	switch g.Precision {
	case FP32, TF32, FP16, INT8:
	default:
		return fmt.Errorf("gemm: unknown precision %q (want fp32, tf32, fp16 or int8)", g.Precision)
	}
	if g.K < 4 || g.K%4 != 0 || g.Layers < 1 {
		return fmt.Errorf("gemm %s: K=%d, layers=%d: want K a positive multiple of 4 and at least one layer", g.Precision, g.K, g.Layers)
	}
	return nil
}

// gemmSeed fixes the weights, so a cached file is the file a fresh build
// would write.
const gemmSeed = 0x9e3779b97f4a7c15

// Build returns the ONNX model.
func (g GEMM) Build() (*onnx.Model, error) {
	if err := g.validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(gemmSeed, uint64(g.K)))
	// Weights of standard deviation 1/√K keep every layer's output about as
	// large as its input: no overflow in FP16, no denormals in FP32.
	scale := 1 / math.Sqrt(float64(g.K))
	k := int64(g.K)
	b := onnx.NewBuilder("gemm_"+string(g.Precision), 17)
	b.SetDocString(fmt.Sprintf("quantscope doctor GEMM: %s, K=%d, %d layers", g.Precision, g.K, g.Layers))
	x := b.AddInput("x", onnx.Float, onnx.Dims("batch", g.K))
	switch {
	case g.Precision == FP32 || g.Precision == TF32:
		w := b.AddInitializerFloat32("w", []int64{k, k}, normals(rng, g.K*g.K, scale))
		y := x
		for i := 0; i < g.Layers; i++ {
			y = b.AddNode("MatMul", []string{y, w}, nil).Out()
		}
		b.AddNode("Identity", []string{y}, []string{"y"})
		b.AddOutput("y", onnx.Float, onnx.Dims("batch", g.K))
	case g.Precision == FP16:
		w := b.AddInitializerFloat16("w", []int64{k, k}, onnx.Float32sToFloat16s(normals(rng, g.K*g.K, scale)))
		y := b.AddNode("Cast", []string{x}, nil, onnx.AttrInt("to", int64(onnx.Float16))).Out()
		for i := 0; i < g.Layers; i++ {
			y = b.AddNode("MatMul", []string{y, w}, nil).Out()
		}
		b.AddNode("Cast", []string{y}, []string{"y"}, onnx.AttrInt("to", int64(onnx.Float)))
		b.AddOutput("y", onnx.Float, onnx.Dims("batch", g.K))
	case g.Precision == INT8 && !g.GPU:
		w := b.AddInitializerInt8("w", []int64{k, k}, int8s(rng, g.K*g.K))
		ws := b.AddInitializerFloat32("w_scale", nil, []float32{float32(scale / 64)})
		y := x
		for i := 0; i < g.Layers; i++ {
			y = b.AddNodeDomain(onnx.MicrosoftDomain, "DynamicQuantizeMatMul", []string{y, w, ws}, nil).Out()
		}
		b.AddNode("Identity", []string{y}, []string{"y"})
		b.AddOutput("y", onnx.Float, onnx.Dims("batch", g.K))
	default: // INT8 for a GPU
		n := k * int64(g.Layers)
		w := b.AddInitializerInt8("w", []int64{k, n}, int8s(rng, int(k*n)))
		xs := b.AddInitializerFloat32("x_scale", nil, []float32{1.0 / 32})
		xz := b.AddInitializerInt8("x_zero", nil, []int8{0})
		q := b.AddNode("QuantizeLinear", []string{x, xs, xz}, nil).Out()
		acc := b.AddNode("MatMulInteger", []string{q, w}, nil).Out()
		starts := b.AddInitializerInt64("starts", []int64{1}, []int64{0})
		ends := b.AddInitializerInt64("ends", []int64{1}, []int64{1})
		row := b.AddNode("Slice", []string{acc, starts, ends}, nil).Out()
		b.AddNode("Cast", []string{row}, []string{"y"}, onnx.AttrInt("to", int64(onnx.Float)))
		b.AddOutput("y", onnx.Float, onnx.Dims(1, n))
	}
	return b.Build()
}

// Ensure returns the path of the model in dir, building and saving it first
// when it is not there. The file is written under a temporary name and
// renamed, so a reader never sees half of it.
func (g GEMM) Ensure(dir string) (string, error) {
	if err := g.validate(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, g.FileName())
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
		return path, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("gemm model %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("gemm model dir %s: %w", dir, err)
	}
	m, err := g.Build()
	if err != nil {
		return "", err
	}
	if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
		return "", err
	}
	return path, nil
}

// Stream is an element-wise model for memory bandwidth: Layers passes over
// X[batch, Elems], each reading and writing every element (Mul and Add by
// constants in turn, values ONNX Runtime cannot drop as no-ops).
type Stream struct {
	Elems  int // float32 elements per row
	Layers int
}

// BytesPerRow is the memory traffic one row causes: every pass reads and
// writes it.
func (s Stream) BytesPerRow() float64 { return 2 * 4 * float64(s.Elems) * float64(s.Layers) }

// FileName names the model in the cache.
func (s Stream) FileName() string {
	return fmt.Sprintf("stream-e%d-l%d-v%d.onnx", s.Elems, s.Layers, gemmBuilderVersion)
}

// Build returns the model.
func (s Stream) Build() (*onnx.Model, error) {
	if s.Elems < 1 || s.Layers < 1 {
		return nil, fmt.Errorf("stream model: %d elements, %d layers: want at least one of each", s.Elems, s.Layers)
	}
	b := onnx.NewBuilder("stream", 17)
	b.SetDocString(fmt.Sprintf("quantscope doctor memory stream: %d float32 per row, %d passes", s.Elems, s.Layers))
	y := b.AddInput("x", onnx.Float, onnx.Dims("batch", s.Elems))
	mul := b.AddInitializerFloat32("half", nil, []float32{0.5})
	add := b.AddInitializerFloat32("quarter", nil, []float32{0.25})
	for i := 0; i < s.Layers; i++ {
		op, c := "Mul", mul
		if i%2 == 1 {
			op, c = "Add", add
		}
		y = b.AddNode(op, []string{y, c}, nil).Out()
	}
	b.AddNode("Identity", []string{y}, []string{"y"})
	b.AddOutput("y", onnx.Float, onnx.Dims("batch", s.Elems))
	return b.Build()
}

// Ensure returns the model's path in dir, writing it first when missing.
func (s Stream) Ensure(dir string) (string, error) {
	path := filepath.Join(dir, s.FileName())
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("stream model dir %s: %w", dir, err)
	}
	m, err := s.Build()
	if err != nil {
		return "", err
	}
	if err := onnx.Save(m, path, onnx.SaveOptions{}); err != nil {
		return "", err
	}
	return path, nil
}

func normals(rng *rand.Rand, n int, scale float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64() * scale)
	}
	return out
}

func int8s(rng *rand.Rand, n int) []int8 {
	out := make([]int8, n)
	for i := range out {
		out[i] = int8(rng.IntN(255) - 127)
	}
	return out
}
