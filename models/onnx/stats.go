package onnx

import "github.com/quantscope/quantscope/models/onnx/onnxpb"

// Stats summarizes a graph for size and precision reports. Subgraphs (If,
// Loop, Scan bodies) are included.
type Stats struct {
	// Nodes is the number of nodes.
	Nodes int
	// NodesByOp counts nodes by operator: the op type for the default
	// domain ("MatMul"), domain and op type otherwise
	// ("com.microsoft.MatMulNBits"); see OpKey.
	NodesByOp map[string]int
	// Initializers is the number of initializers.
	Initializers int
	// Params is the total number of initializer elements.
	Params int64
	// InitializerBytes is the total storage of initializer data: elements
	// times element size, packed for 4-bit types (strings count their
	// bytes).
	InitializerBytes int64
	// ParamsByType and BytesByType split Params and InitializerBytes by
	// element type.
	ParamsByType map[DataType]int64
	BytesByType  map[DataType]int64
}

// OpKey is the key of an operator in Stats.NodesByOp: opType for the
// default domain, domain + "." + opType for others.
func OpKey(domain, opType string) string {
	if d := normDomain(domain); d != "" {
		return d + "." + opType
	}
	return opType
}

// Stats returns the statistics of m's graph.
func (m *Model) Stats() Stats { return GraphStats(m.Graph()) }

// GraphStats returns the statistics of g and its subgraphs. Initializers
// whose dims are invalid count as initializers but add no elements or bytes.
func GraphStats(g *onnxpb.GraphProto) Stats {
	s := Stats{
		NodesByOp:    map[string]int{},
		ParamsByType: map[DataType]int64{},
		BytesByType:  map[DataType]int64{},
	}
	s.add(g)
	return s
}

func (s *Stats) add(g *onnxpb.GraphProto) {
	if g == nil {
		return
	}
	for _, t := range g.GetInitializer() {
		s.Initializers++
		n, err := Numel(t.GetDims())
		if err != nil {
			continue
		}
		dt := DataTypeOf(t)
		var size int64
		if dt == String {
			for _, b := range t.GetStringData() {
				size += int64(len(b))
			}
		} else if size, err = dt.ByteSize(n); err != nil {
			size = 0
		}
		s.Params += n
		s.ParamsByType[dt] += n
		s.InitializerBytes += size
		s.BytesByType[dt] += size
	}
	for _, n := range g.GetNode() {
		s.Nodes++
		s.NodesByOp[OpKey(n.GetDomain(), n.GetOpType())]++
		for _, sg := range subgraphs(n) {
			s.add(sg)
		}
	}
}
