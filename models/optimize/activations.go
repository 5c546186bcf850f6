package optimize

import (
	"github.com/quantscope/quantscope/models/onnx"
)

// PeakActivationBytes estimates, from shape inference, the activation
// memory one sample needs at the peak of a forward pass: three times the
// largest intermediate value whose size is known with the batch
// dimension taken as 1 (an operator's input, its output, and a value
// held across it such as a residual), and never less than the graph's
// inputs and outputs together. Values are counted as 4-byte floats. It is
// a floor, not a prediction: ONNX Runtime's arena holds more. m's nodes
// are sorted in place. Zero when nothing can be sized.
func PeakActivationBytes(m *onnx.Model) int64 {
	if m == nil || m.Graph() == nil || onnx.TopoSort(m.Graph()) != nil {
		return 0
	}
	gr := newGraph(m)
	sh := inferShapes(gr)
	batchSym := map[string]bool{}
	for _, vi := range m.Graph().GetInput() {
		if s := sh.shape[vi.GetName()]; len(s) > 0 && !s[0].isKnown() {
			batchSym[s[0].s] = true
		}
	}
	perSample := func(s shape) (int64, bool) {
		if s == nil {
			return 0, false
		}
		n := int64(1)
		for i, d := range s {
			switch {
			case d.isKnown():
				if i == 0 && len(batchSym) == 0 && d.v > 1 {
					continue // a fixed batch: per sample
				}
				n *= max(d.v, 1)
			case batchSym[d.s]:
			default:
				return 0, false
			}
			if n > 1<<40 {
				return 0, false
			}
		}
		return 4 * n, true
	}
	var largest, io int64
	for name, s := range sh.shape {
		b, ok := perSample(s)
		if !ok {
			continue
		}
		if gr.Inits[name] != nil {
			continue // a weight, counted with the file
		}
		largest = max(largest, b)
	}
	g := m.Graph()
	for _, list := range [][]string{names(g.GetInput()), names(g.GetOutput())} {
		for _, name := range list {
			if gr.Inits[name] != nil {
				continue
			}
			if b, ok := perSample(sh.shape[name]); ok {
				io += b
			}
		}
	}
	return max(3*largest, io)
}

func names[T interface{ GetName() string }](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.GetName()
	}
	return out
}
