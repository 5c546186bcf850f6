package runtime

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shirou/gopsutil/v4/cpu"
	ort "github.com/yalue/onnxruntime_go"
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
	// writes PREFIX_<time>.json when the session is closed.
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

// Session is one ONNX Runtime inference session on a model.
type Session struct {
	sess    *ort.DynamicAdvancedSession
	Inputs  []ort.InputOutputInfo
	Outputs []ort.InputOutputInfo
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

// NewSession opens the model at path on the CPU execution provider.
func NewSession(path string, cfg SessionConfig) (*Session, error) {
	if !ort.IsInitialized() {
		return nil, fmt.Errorf("open session on %s: %w (call runtime.Init first)", path, ErrNoLibrary)
	}
	opts, err := newSessionOptions(cfg)
	if err != nil {
		return nil, fmt.Errorf("open session on %s: %w", path, err)
	}
	defer opts.Destroy()
	ins, outs, err := ort.GetInputOutputInfoWithOptions(path, opts)
	if err != nil {
		return nil, fmt.Errorf("read inputs/outputs of %s: %w", path, err)
	}
	s := &Session{Inputs: ins, Outputs: outs}
	s.sess, err = ort.NewDynamicAdvancedSession(path, names(ins), names(outs), opts)
	if err != nil {
		return nil, fmt.Errorf("open session on %s: %w", path, explainSessionError(err))
	}
	return s, nil
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
	if len(inputs) != len(s.Inputs) {
		return nil, fmt.Errorf("model takes %d inputs, got %d", len(s.Inputs), len(inputs))
	}
	in := make([]ort.Value, len(inputs))
	defer func() {
		for _, v := range in {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, t := range inputs {
		v, err := ort.NewTensor(ort.NewShape(t.Shape...), t.Data)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", s.Inputs[i].Name, err)
		}
		in[i] = v
	}
	out := make([]ort.Value, len(s.Outputs))
	defer func() {
		for _, v := range out {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	if err := s.sess.Run(in, out); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	res := make([]Tensor, len(out))
	for i, v := range out {
		t, ok := v.(*ort.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("output %q is %v, not float32", s.Outputs[i].Name, s.Outputs[i].DataType)
		}
		res[i] = Tensor{Shape: t.GetShape().Clone(), Data: append([]float32(nil), t.GetData()...)}
	}
	return res, nil
}

// Close releases the session.
func (s *Session) Close() error {
	if s == nil || s.sess == nil {
		return nil
	}
	err := s.sess.Destroy()
	s.sess = nil
	if err != nil {
		return errors.Join(errors.New("close session"), err)
	}
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
