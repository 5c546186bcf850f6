package report

import (
	"fmt"
	"strings"

	"github.com/quantscope/quantscope/profiler/ort/cudaopt"
	"github.com/quantscope/quantscope/profiler/study"
)

// cudaSettings describes, over the CUDA records of a group, the provider
// settings that change what the ratios mean: TF32 (on, the FP32 baseline
// runs TF32 matmuls and every FP16 speedup shrinks) and CUDA graphs
// (on, fell back and why, or off). Each is "" when no CUDA record says
// (records written before the options were recorded). The text is escaped
// for the report's markup.
func cudaSettings(recs []study.Record) (tf32, graph string) {
	var tfOn, tfOff int
	var gOn, gOff, gFell int
	var fellReason string
	for _, r := range recs {
		p := r.Provider
		if p == nil || p.Name != "cuda" {
			continue
		}
		if v, ok := p.Options[cudaopt.TF32]; ok {
			switch n, _ := cudaopt.Normalize(cudaopt.TF32, v); n {
			case "1":
				tfOn++
			case "0":
				tfOff++
			}
		}
		switch g := p.CUDAGraph; {
		case g != nil && g.Active:
			gOn++
		case g != nil && g.Requested:
			gFell++
			if fellReason == "" {
				fellReason = g.Reason
			}
		default:
			if _, ok := p.Options[cudaopt.Graph]; ok {
				gOff++
			}
		}
	}
	switch {
	case tfOn > 0 && tfOff > 0:
		tf32 = fmt.Sprintf("mixed: on in %d, off in %d records", tfOn, tfOff)
	case tfOn > 0:
		tf32 = "on (FP32 baselines use TF32 math)"
	case tfOff > 0:
		tf32 = "off (strict FP32 baselines)"
	}
	reason := ""
	if fellReason != "" {
		reason = esc(clip(fellReason, 160))
	}
	switch {
	case gOn+gFell+gOff == 0:
	case gOn == 0 && gFell == 0:
		graph = "off"
	case gFell == 0 && gOff == 0:
		graph = "on"
	case gOn == 0 && gOff == 0:
		graph = "requested, fell back"
		if reason != "" {
			graph += ": " + reason
		}
	default:
		var parts []string
		for _, c := range []struct {
			n    int
			what string
		}{{gOn, "on"}, {gOff, "off"}, {gFell, "fell back"}} {
			if c.n > 0 {
				parts = append(parts, fmt.Sprintf("%s in %d", c.what, c.n))
			}
		}
		graph = "mixed: " + strings.Join(parts, ", ") + " records"
		if reason != "" {
			graph += " (fell back: " + reason + ")"
		}
	}
	return tf32, graph
}
