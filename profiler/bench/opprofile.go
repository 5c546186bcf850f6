package bench

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// OpProfile is where one inference's time goes, per operator type and per
// node, from ONNX Runtime's profiler: a few profiled runs outside the
// timed loop (the profiler's own cost never touches the throughput
// figures), the first of them dropped as warm-up, times averaged over the
// rest.
type OpProfile struct {
	// Runs is how many profiled runs the figures average.
	Runs int `json:"runs"`
	// RunMs is the mean time of one whole inference (ONNX Runtime's
	// model_run event) in the profiled runs.
	RunMs float64 `json:"run_ms"`
	// KernelMs is the mean sum of the node kernel times per run: RunMs
	// less what lies between kernels (session overhead, input copies).
	KernelMs float64 `json:"kernel_ms"`
	// Ops are the operator types by time, largest first.
	Ops []OpTime `json:"ops"`
	// Top are the slowest nodes, largest first (at most TopNodes).
	Top []NodeTime `json:"top"`
}

// OpTime is one operator type's share of an inference.
type OpTime struct {
	Op    string  `json:"op"`
	Ms    float64 `json:"ms"`    // mean per run
	Share float64 `json:"share"` // of KernelMs, 0–1
	Nodes int     `json:"nodes"`
	// Provider is the execution provider its nodes ran on ("mixed" when
	// several).
	Provider string `json:"provider,omitempty"`
}

// NodeTime is one node's share of an inference.
type NodeTime struct {
	Node  string  `json:"node"`
	Op    string  `json:"op"`
	Ms    float64 `json:"ms"`
	Share float64 `json:"share"`
	// Types are the element types of its inputs ("float16", "float").
	Types []string `json:"types,omitempty"`
}

// TopNodes is how many nodes an OpProfile keeps.
const TopNodes = 10

// Share returns op's share of the kernel time (0 when absent).
func (p *OpProfile) Share(op string) float64 {
	if p == nil {
		return 0
	}
	for _, o := range p.Ops {
		if o.Op == op {
			return o.Share
		}
	}
	return 0
}

// traceEvent is the part of an ONNX Runtime profile event read here.
type traceEvent struct {
	Cat  string  `json:"cat"`
	Name string  `json:"name"`
	Ts   float64 `json:"ts"`  // µs
	Dur  float64 `json:"dur"` // µs
	Args struct {
		OpName   string                       `json:"op_name"`
		Provider string                       `json:"provider"`
		Inputs   []map[string]json.RawMessage `json:"input_type_shape"`
	} `json:"args"`
}

// ParseOpProfile reads an ONNX Runtime profile (the JSON array of trace
// events its profiler writes) and averages per-operator and per-node
// kernel times over the model runs after the first skip.
func ParseOpProfile(data []byte, skip int) (*OpProfile, error) {
	if skip < 0 {
		skip = 0
	}
	var events []traceEvent
	if err := json.Unmarshal(data, &events); err != nil {
		return nil, fmt.Errorf("parse ONNX Runtime profile: %w", err)
	}
	var runs []traceEvent
	for _, e := range events {
		if e.Cat == "Session" && e.Name == "model_run" {
			runs = append(runs, e)
		}
	}
	slices.SortFunc(runs, func(a, b traceEvent) int { return cmpFloat(a.Ts, b.Ts) })
	if len(runs) <= skip {
		return nil, fmt.Errorf("parse ONNX Runtime profile: %d model runs, need more than %d", len(runs), skip)
	}
	runs = runs[skip:]
	type acc struct {
		op, provider string
		us           float64
		types        []string
	}
	nodes := map[string]*acc{}
	var order []string
	p := &OpProfile{Runs: len(runs)}
	var kernelUs float64
	for _, r := range runs {
		p.RunMs += r.Dur / 1000
	}
	for _, e := range events {
		if e.Cat != "Node" || !strings.HasSuffix(e.Name, "_kernel_time") || !inAnyRun(e, runs) {
			continue
		}
		name := strings.TrimSuffix(e.Name, "_kernel_time")
		a := nodes[name]
		if a == nil {
			a = &acc{op: e.Args.OpName, provider: e.Args.Provider, types: inputTypes(e)}
			nodes[name] = a
			order = append(order, name)
		}
		a.us += e.Dur
		kernelUs += e.Dur
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("parse ONNX Runtime profile: no node events in the model runs")
	}
	n := float64(len(runs))
	p.RunMs /= n
	p.KernelMs = kernelUs / n / 1000
	byOp := map[string]*OpTime{}
	for _, name := range order {
		a := nodes[name]
		ms := a.us / n / 1000
		share := 0.0
		if kernelUs > 0 {
			share = a.us / kernelUs
		}
		p.Top = append(p.Top, NodeTime{Node: name, Op: a.op, Ms: ms, Share: share, Types: a.types})
		o := byOp[a.op]
		if o == nil {
			o = &OpTime{Op: a.op, Provider: a.provider}
			byOp[a.op] = o
		}
		if o.Provider != a.provider {
			o.Provider = "mixed"
		}
		o.Ms += ms
		o.Share += share
		o.Nodes++
	}
	for _, o := range byOp {
		p.Ops = append(p.Ops, *o)
	}
	slices.SortStableFunc(p.Ops, func(a, b OpTime) int { return cmpFloat(b.Ms, a.Ms) })
	slices.SortStableFunc(p.Top, func(a, b NodeTime) int { return cmpFloat(b.Ms, a.Ms) })
	if len(p.Top) > TopNodes {
		p.Top = p.Top[:TopNodes]
	}
	return p, nil
}

func inAnyRun(e traceEvent, runs []traceEvent) bool {
	for _, r := range runs {
		if e.Ts >= r.Ts && e.Ts <= r.Ts+r.Dur {
			return true
		}
	}
	return false
}

// inputTypes lists the distinct element types of a node's inputs.
func inputTypes(e traceEvent) []string {
	var out []string
	for _, in := range e.Args.Inputs {
		for t := range in {
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Summary is the profile in one line, largest first: "MatMul 61%,
// Softmax 12%, Cast 9%, 14 more".
func (p *OpProfile) Summary(n int) string {
	if p == nil || len(p.Ops) == 0 {
		return ""
	}
	var parts []string
	for i, o := range p.Ops {
		if i == n {
			parts = append(parts, fmt.Sprintf("%d more", len(p.Ops)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%%", o.Op, 100*o.Share))
	}
	return strings.Join(parts, ", ")
}

// slowKernels are operators whose large share of an inference has a known
// cause on ONNX Runtime's CPU execution provider, and what to do about it.
var slowKernels = map[string]string{
	"ConvInteger":           "dynamic int8 convolutions run on slow CPU kernels; int8 convolutions in QDQ form (int8-static, calibrated) are the fast ones",
	"DynamicQuantizeLinear": "activations are quantized at run time before every int8 layer; calibrated int8 (int8-static) quantizes with fixed scales",
	"MatMulNBits":           "int4 weights are unpacked at about FP32 speed at batch sizes like this one; int8 is the CPU precision that saves time",
	"Transpose":             "layout changes between operators: an unfused export (try --optimize)",
}

// Findings explains a profile: the casts an execution provider without
// float16 kernels inserts, and operators known to be slow on the CPU
// execution provider. Each finding is one sentence.
func (p *OpProfile) Findings() []string {
	if p == nil {
		return nil
	}
	var out []string
	if c := p.Share("Cast"); c >= 0.10 {
		f := fmt.Sprintf("Cast nodes take %.0f%% of the time: the execution provider lacks float16 kernels for the operators between them, so it converts to float32 and back around each", 100*c)
		if ops := p.float16Ops(); len(ops) > 0 {
			f += " (float16 nodes that ran: " + strings.Join(ops, ", ") + ")"
		}
		out = append(out, f+"; fp16:storage keeps float16 weights and computes in float32")
	}
	for _, o := range p.Ops {
		if why, ok := slowKernels[o.Op]; ok && o.Share >= 0.20 {
			out = append(out, fmt.Sprintf("%s takes %.0f%% of the time: %s", o.Op, 100*o.Share, why))
		}
	}
	return out
}

// float16Ops lists the operator types among the top nodes that read
// float16 inputs.
func (p *OpProfile) float16Ops() []string {
	var ops []string
	for _, n := range p.Top {
		if n.Op != "Cast" && slices.Contains(n.Types, "float16") && !slices.Contains(ops, n.Op) {
			ops = append(ops, n.Op)
		}
	}
	return ops
}
