package study

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecodeResults: arbitrary bytes never panic, and every record returned
// re-encodes to a line that decodes to the same experiment.
func FuzzDecodeResults(f *testing.F) {
	good, _ := json.Marshal(rec("deit-tiny", "fp32", StatusOK))
	f.Add(append(good, '\n'))
	f.Add(good[:len(good)/2])
	f.Add([]byte("\n\n{\"schema\":1}\n"))
	f.Add([]byte(`{"schema":1,"experiment":{"model":"m"},"telemetry":{"worker_s":1,"t":[1.5,2],"phase":"wm","throughput":[3,4],"rss":[5,6]}}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, _, err := DecodeResults(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("in-memory decode returned an I/O error: %v", err)
		}
		for _, r := range recs {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("record does not re-encode: %v", err)
			}
			again, _, _ := DecodeResults(bytes.NewReader(append(b, '\n')))
			if len(again) != 1 || again[0].Experiment != r.Experiment || again[0].Telemetry.Len() != r.Telemetry.Len() {
				t.Fatalf("round trip changed %+v", r.Experiment)
			}
			for i := range r.Telemetry.Len() {
				r.Telemetry.At(i) // every kept sample is readable
			}
		}
	})
}
