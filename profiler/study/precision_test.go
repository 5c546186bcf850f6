package study

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/quantscope/quantscope/models/quant"
)

// storedPrecision is a precision report as records of schemas 1–4 hold
// it: the quantizer's report re-encoded from a map, so with its keys in
// alphabetical order.
const storedPrecision = `{"bytes_after":2670472,"bytes_before":5080424,"calibration":{"method":"minmax","samples":8,"source":"synthetic (seed 1)","tensors":12},` +
	`"elapsed_ns":122818525,"file_bytes_after":2737742,"file_bytes_before":5138314,` +
	`"kept":[{"node":"/attn/qk","op":"MatMul","reason":"activation × activation"}],` +
	`"layers":[{"form":"ConvInteger (dynamic int8)","node":"/stem/Conv","op":"Conv"},{"form":"DynamicQuantizeMatMul (dynamic int8)","node":"/head/Gemm","op":"Gemm"}],` +
	`"nodes_after":235,"nodes_before":244,"nodes_converted":2,"nodes_kept":171,` +
	`"ops":[{"nodes":{"fp32":1,"int8":1},"op":"Conv"},{"nodes":{"int8":1},"op":"Gemm"}],` +
	`"quantizer_version":"quant/4","rewrites":["Gemm /head/Gemm rewritten as a MatMul (+ bias)"],"spec":"int8",` +
	`"weight_bytes_by_bits":{"0":552,"32":1858400,"8":811520}}`

// TestStoredPrecisionReportIsTyped reads the precision report of a stored
// record into quant.Report, every figure intact, and writes it back as
// the same JSON value (keys now in the struct's order): records of
// schemas 1–4 read unchanged, so the typed report needs no new schema.
func TestStoredPrecisionReportIsTyped(t *testing.T) {
	for _, schema := range []string{"1", "4"} {
		line := `{"schema":` + schema + `,"experiment":{"model":"m","precision":"int8","ep":"cpu","batch":1},"status":"ok",` +
			`"metrics":{"throughput":10,"precision":` + storedPrecision + `}}` + "\n"
		recs, warns, err := DecodeResults(strings.NewReader(line))
		if err != nil || len(warns) != 0 || len(recs) != 1 {
			t.Fatalf("schema %s: %d records, warnings %v, err %v", schema, len(recs), warns, err)
		}
		p := recs[0].Metrics.Precision
		if p == nil || p.Spec != "int8" || p.NodesConverted != 2 || p.NodesKept != 171 || p.Count("Conv", quant.PrecInt8) != 1 ||
			p.ConvIntegers() != 1 || p.WeightBytes[8] != 811520 || p.Calibration == nil || p.Calibration.Samples != 8 ||
			p.Elapsed != 122818525 || len(p.Kept) != 1 || p.FileBytesAfter != 2737742 {
			t.Fatalf("schema %s: typed report %+v", schema, p)
		}
		if c, ok := p.Coverage(); !ok || c < 0.30 || c > 0.31 {
			t.Errorf("coverage %v, %v; want 811520/(811520+1858400)", c, ok)
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var was, is any
		if err := json.Unmarshal([]byte(storedPrecision), &was); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(again, &is); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(was, is) {
			t.Errorf("schema %s: report written back differs:\nwas %s\nis  %s", schema, storedPrecision, again)
		}
	}
}
