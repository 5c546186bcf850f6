package onnx

import (
	"slices"
	"testing"

	"github.com/quantscope/quantscope/models/onnx/onnxpb"
	"google.golang.org/protobuf/proto"
)

func TestAttrHelpers(t *testing.T) {
	n := &onnxpb.NodeProto{OpType: proto.String("Softmax"), Attribute: []*onnxpb.AttributeProto{
		AttrInt("axis", -1), AttrFloat("epsilon", 1e-5), AttrString("mode", "exact"),
	}}
	if AttrIntOr(n, "axis", 1) != -1 || AttrIntOr(n, "missing", 7) != 7 {
		t.Error("AttrIntOr")
	}
	if AttrFloatOr(n, "epsilon", 0) != 1e-5 || AttrFloatOr(n, "alpha", 2) != 2 {
		t.Error("AttrFloatOr")
	}
	if AttrStringOr(n, "mode", "") != "exact" || AttrStringOr(n, "x", "d") != "d" || Attr(n, "x") != nil {
		t.Error("AttrStringOr / Attr")
	}
	if !IsDefaultDomain(n) || IsDefaultDomain(&onnxpb.NodeProto{Domain: proto.String(MicrosoftDomain)}) {
		t.Error("IsDefaultDomain")
	}
}

func TestFreeInputsSeesNestedScopes(t *testing.T) {
	inner := &onnxpb.GraphProto{Node: []*onnxpb.NodeProto{{Input: []string{"outer_w", "t"}, Output: []string{"u"}}}}
	body := &onnxpb.GraphProto{
		Input: []*onnxpb.ValueInfoProto{{Name: proto.String("i")}},
		Node: []*onnxpb.NodeProto{
			{Input: []string{"i", "x"}, Output: []string{"t"}},
			{OpType: proto.String("If"), Input: []string{"cond"}, Attribute: []*onnxpb.AttributeProto{AttrGraph("then_branch", inner)}},
		},
	}
	got := FreeInputs(body)
	slices.Sort(got)
	if !slices.Equal(got, []string{"cond", "outer_w", "x"}) {
		t.Errorf("FreeInputs = %v, want cond, outer_w, x", got)
	}
	if len(Subgraphs(body.Node[1])) != 1 {
		t.Error("Subgraphs missed the If branch")
	}
}
