package ort

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/shirou/gopsutil/v4/cpu"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/quantscope/quantscope/models/onnx"
)

// SessionConfig chooses how a model runs.
type SessionConfig struct {
	// IntraOpThreads is the number of threads inside one operator; 0 means
	// one per physical core, the setting that gives steady CPU numbers.
	IntraOpThreads int
	// InterOpThreads is the number of operators run at once; 0 means 1.
	InterOpThreads int
	// DisableOptimizations turns ONNX Runtime's graph optimizations off
	// (level ORT_DISABLE_ALL instead of ORT_ENABLE_ALL).
	DisableOptimizations bool
	// EP is the execution provider: "cpu" (default), "cuda", "tensorrt" or
	// "auto"; ResolveEP says what each means on this machine.
	EP string
	// EPRoute and EPPlugin say how "cuda" attaches: "builtin" (the ORT
	// build's own provider) or "plugin" (the library at EPPlugin, registered
	// on first use). ResolveEP fills them in.
	EPRoute  string
	EPPlugin string
	// ProfilePrefix, when set, turns on ONNX Runtime's profiler, which
	// writes PREFIX_<time>.json when the session is closed, or at once on
	// EndProfile (Bound, DeviceBound), after which runs are not profiled.
	ProfilePrefix string
	// EPOptions pass through to the provider (e.g. CUDA's device_id,
	// cudnn_conv_algo_search, use_tf32, enable_cuda_graph).
	EPOptions map[string]string
	// ImageSize is the height and width bound sessions (NewBound,
	// NewDeviceBound) give an image input whose height and width are
	// symbolic; 0 refuses such a model.
	ImageSize int
}

// Tensor is a float32 tensor in host memory.
type Tensor struct {
	Shape []int64
	Data  []float32
}

// Session is one ONNX Runtime inference session on a model, run on
// tensors of any batch (RunFloat32).
type Session struct {
	sess     *cSession
	inNames  cArray
	outNames cArray
	Inputs   []ort.InputOutputInfo
	Outputs  []ort.InputOutputInfo
}

// PhysicalCores is the number of physical CPU cores (at least 1).
func PhysicalCores() int {
	if n, err := cpu.Counts(false); err == nil && n > 0 {
		return n
	}
	if n, err := cpu.Counts(true); err == nil && n > 0 {
		return n
	}
	return 1
}

// NewSession opens the model at path with cfg (the CPU execution provider
// unless cfg says otherwise). Exactly one ONNX Runtime session is created;
// the inputs and outputs are read from it.
func NewSession(path string, cfg SessionConfig) (*Session, error) {
	if !ort.IsInitialized() {
		return nil, fmt.Errorf("open session on %s: %w (call ort.Init first)", path, ErrNoLibrary)
	}
	sess, ins, outs, err := openCSession(path, cfg)
	if err != nil {
		return nil, err
	}
	return &Session{sess: sess, Inputs: ins, Outputs: outs,
		inNames: cStrings(names(ins)), outNames: cStrings(names(outs))}, nil
}

func newSessionOptions(cfg SessionConfig) (*ort.SessionOptions, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	intra := cfg.IntraOpThreads
	if intra <= 0 {
		intra = PhysicalCores()
	}
	inter := cfg.InterOpThreads
	if inter <= 0 {
		inter = 1
	}
	var level ort.GraphOptimizationLevel = ort.GraphOptimizationLevelEnableAll
	if cfg.DisableOptimizations {
		level = ort.GraphOptimizationLevelDisableAll
	}
	for _, step := range []func() error{
		func() error { return opts.SetIntraOpNumThreads(intra) },
		func() error { return opts.SetInterOpNumThreads(inter) },
		func() error { return opts.SetGraphOptimizationLevel(level) },
		func() error { return attachEP(opts, cfg) },
		func() error {
			if cfg.ProfilePrefix == "" {
				return nil
			}
			return opts.EnableProfiling(cfg.ProfilePrefix)
		},
	} {
		if err := step(); err != nil {
			opts.Destroy()
			return nil, err
		}
	}
	return opts, nil
}

func names(infos []ort.InputOutputInfo) []string {
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.Name
	}
	return out
}

// RunFloat32 runs the model once on float32 inputs, given in the order of
// s.Inputs, and returns every output in the order of s.Outputs. Outputs of
// other element types are an error.
func (s *Session) RunFloat32(inputs ...Tensor) ([]Tensor, error) {
	if s == nil || s.sess == nil {
		return nil, errors.New("run: session is closed")
	}
	if len(inputs) != len(s.Inputs) {
		return nil, fmt.Errorf("model takes %d inputs, got %d", len(s.Inputs), len(inputs))
	}
	api := s.sess.api
	cpu, err := api.cpuMemInfo()
	if err != nil {
		return nil, err
	}
	defer api.releaseMemInfo(cpu)
	in := newCArray(len(inputs))
	var bufs []unsafe.Pointer
	defer func() {
		for i := 0; i < in.n; i++ {
			api.releaseValue(in.get(i))
		}
		in.free()
		for _, b := range bufs {
			cFree(b)
		}
	}()
	for i, t := range inputs {
		n, err := onnx.Numel(t.Shape)
		if err != nil || int(n) != len(t.Data) {
			return nil, fmt.Errorf("input %q: shape %v does not match %d values", s.Inputs[i].Name, t.Shape, len(t.Data))
		}
		buf, err := cBuffer(4 * len(t.Data))
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", s.Inputs[i].Name, err)
		}
		bufs = append(bufs, buf)
		if len(t.Data) > 0 {
			copy(unsafe.Slice((*float32)(buf), len(t.Data)), t.Data)
		}
		v, err := api.hostTensor(cpu, buf, t.Shape)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", s.Inputs[i].Name, err)
		}
		in.set(i, v)
	}
	out := newCArray(len(s.Outputs)) // ONNX Runtime allocates the outputs
	defer func() {
		for i := 0; i < out.n; i++ {
			api.releaseValue(out.get(i))
		}
		out.free()
	}()
	if err := s.sess.run(s.inNames, in, s.outNames, out); err != nil {
		return nil, err
	}
	res := make([]Tensor, out.n)
	for i := range res {
		info, err := s.sess.valueTensorInfo(out.get(i))
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", s.Outputs[i].Name, err)
		}
		if info.DataType != ort.TensorElementDataTypeFloat {
			return nil, fmt.Errorf("output %q is %v, not float32", s.Outputs[i].Name, info.DataType)
		}
		n, err := onnx.Numel(info.Dimensions)
		if err != nil {
			return nil, fmt.Errorf("output %q: shape %v: %w", s.Outputs[i].Name, info.Dimensions, err)
		}
		data := make([]float32, int(n))
		if n > 0 {
			p, err := s.sess.valueData(out.get(i))
			if err != nil {
				return nil, fmt.Errorf("output %q: %w", s.Outputs[i].Name, err)
			}
			copy(data, unsafe.Slice((*float32)(p), int(n)))
		}
		res[i] = Tensor{Shape: []int64(info.Dimensions.Clone()), Data: data}
	}
	return res, nil
}

// Close releases the session (writing the profile when it was opened with
// ProfilePrefix).
func (s *Session) Close() error {
	if s == nil || s.sess == nil {
		return nil
	}
	freeCStrings(&s.inNames)
	freeCStrings(&s.outNames)
	s.sess.release()
	s.sess = nil
	return nil
}

// contribOps are the com.microsoft operators quantscope's transforms
// write (models/optimize's fusions, the int8 and int4 kernels).
var contribOps = []string{"MultiHeadAttention", "Attention", "SkipLayerNormalization", "BiasGelu", "FastGelu",
	"QuickGelu", "Gelu", "MatMulNBits", "DynamicQuantizeMatMul"}

// explainSessionError adds what to do to a session-creation error that
// says the ONNX Runtime build has no kernel for one of the com.microsoft
// operators quantscope writes (a minimal or custom build without contrib
// operators, or an EP that lacks one).
func explainSessionError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if !strings.Contains(msg, "Could not find an implementation") && !strings.Contains(msg, "is not a registered function/op") {
		return err
	}
	for _, op := range contribOps {
		if strings.Contains(msg, op) {
			return fmt.Errorf("%w (%s is an ONNX Runtime contrib operator that quantscope's fusions or quantizers wrote, and this ONNX Runtime build or execution provider has no kernel for it: rerun with --optimize=false for unfused graphs, or use the ONNX Runtime `make setup` installs)", err, op)
		}
	}
	return err
}
