package hwbench

import (
	"strings"
	"testing"
)

func TestShippedReferencesParse(t *testing.T) {
	refs, err := References()
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) < 5 {
		t.Fatalf("%d rows", len(refs))
	}
	for _, r := range refs {
		if r.Value <= 0 || r.Date == "" || r.Machine == "" || r.Source == "" {
			t.Errorf("incomplete row %+v", r)
		}
		if strings.HasPrefix(r.MachineKey, "gpu:") {
			if _, ok := LookupGPUPart(strings.TrimPrefix(r.MachineKey, "gpu:")); !ok && !strings.Contains(r.MachineKey, "NVIDIA") {
				t.Errorf("row for an unknown GPU key %q", r.MachineKey)
			}
		}
	}
}

func TestParseReferencesErrors(t *testing.T) {
	head := strings.Join(referenceColumns, ",") + "\n"
	for name, text := range map[string]string{
		"empty":        "",
		"wrong header": "kind,model\n",
		"bad batch":    head + "inference,m,fp32,cpu,x,true,cpu:k,M,1,samples/s,quantscope,2026-12-02,s\n",
		"bad fused":    head + "inference,m,fp32,cpu,1,maybe,cpu:k,M,1,samples/s,quantscope,2026-12-02,s\n",
		"bad value":    head + "inference,m,fp32,cpu,1,true,cpu:k,M,-3,samples/s,quantscope,2026-12-02,s\n",
		"no date":      head + "inference,m,fp32,cpu,1,true,cpu:k,M,3,samples/s,quantscope,,s\n",
		"short row":    head + "inference,m\n",
	} {
		if _, err := ParseReferences(strings.NewReader(text)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	refs, err := ParseReferences(strings.NewReader("# a comment\n" + head + "memory,host-copy,,cpu,0,false,cpu:k,M,20.5,GB/s,quantscope,2026-12-02,s\n"))
	if err != nil || len(refs) != 1 || refs[0].Value != 20.5 {
		t.Errorf("%+v %v", refs, err)
	}
}

func TestMatchReferences(t *testing.T) {
	row := func(engine, date string, fused bool, value float64) Reference {
		return Reference{Kind: "inference", Item: "vit-base-16", Precision: "fp16", EP: "cuda", Batch: 32, Fused: fused,
			MachineKey: "gpu:H200 SXM", Machine: "H200", Value: value, Unit: "samples/s", Engine: engine, Date: date}
	}
	q := refQuery{Kind: "inference", Item: "vit-base-16", Precision: "fp16", EP: "cuda", Batch: 32, Fused: true, MachineKey: "gpu:H200 SXM"}
	refs := []Reference{row("pytorch", "2026-11", false, 9391), row("onnxruntime", "2026-11", false, 3538)}
	basis, ctx := matchReferences(refs, q)
	if basis == nil || basis.Engine != "onnxruntime" || len(ctx) != 1 || ctx[0].Engine != "pytorch" {
		t.Errorf("without a quantscope row: basis %+v, context %+v", basis, ctx)
	}
	// An unfused quantscope row is a floor for a fused run, ahead of another harness.
	refs = append(refs, row("quantscope", "2026-11-26", false, 3700))
	if basis, _ = matchReferences(refs, q); basis == nil || basis.Value != 3700 || !strings.Contains(basis.describe(), "(unfused)") {
		t.Errorf("unfused floor: %+v", basis)
	}
	unfused := q
	unfused.Fused = false
	if basis, _ = matchReferences(refs, unfused); basis == nil || basis.Value != 3700 {
		t.Errorf("unfused query: %+v", basis)
	}
	refs = append(refs, row("quantscope", "2026-12-01", true, 4000), row("quantscope", "2026-12-02", true, 4100), row("quantscope", "2026-12-03", false, 3900))
	basis, ctx = matchReferences(refs, q)
	if basis == nil || basis.Value != 4100 || len(ctx) != 5 {
		t.Errorf("latest fused quantscope row: basis %+v, %d context rows", basis, len(ctx))
	}
	other := q
	other.MachineKey, other.Batch = "gpu:H100 SXM", 32
	if b, c := matchReferences(refs, other); b != nil || len(c) != 0 {
		t.Errorf("another machine matched: %+v %+v", b, c)
	}
	other = q
	other.Batch = 1
	if b, _ := matchReferences(refs, other); b != nil {
		t.Errorf("another batch matched: %+v", b)
	}
}
