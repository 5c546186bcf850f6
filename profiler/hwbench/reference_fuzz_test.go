package hwbench

import (
	"strings"
	"testing"
)

// FuzzParseReferences: any text either parses into rows that hold what the
// parser promises, or fails with an error; it never panics.
func FuzzParseReferences(f *testing.F) {
	f.Add(referencesCSV)
	f.Add(strings.Join(referenceColumns, ",") + "\ninference,m,fp32,cpu,8,true,cpu:k,M,12.5,samples/s,quantscope,2026-12-02,s\n")
	f.Add("kind\n\"unterminated")
	f.Fuzz(func(t *testing.T, text string) {
		refs, err := ParseReferences(strings.NewReader(text))
		if err != nil {
			return
		}
		for _, r := range refs {
			if r.Value <= 0 || r.Batch < 0 || r.Kind == "" || r.MachineKey == "" || r.Date == "" {
				t.Fatalf("accepted an invalid row %+v", r)
			}
		}
	})
}
