package tui

import (
	"strconv"
	"strings"
	"time"

	"github.com/quantscope/quantscope/profiler/study"
)

// benchCommand is the `quantscope bench` command line that measures exp
// again headless: the same model, precision (with its FP32 baseline), EP,
// batch, threads and timed duration, appending to the same results file.
func benchCommand(exp study.Experiment, dur time.Duration, out, ortLib string) string {
	// --precisions is a comma-separated list read as CSV (pflag's
	// StringSlice): a spec with commas of its own goes in double quotes.
	precs := "fp32"
	if !exp.IsBaseline() {
		p := exp.Precision
		if strings.ContainsAny(p, ",\"") {
			p = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
		}
		precs += "," + p
	}
	args := []string{"quantscope", "bench",
		"--models", shellQuote(exp.Model),
		"--precisions", shellQuote(precs),
		"--ep", shellQuote(exp.EP),
		"--batch", strconv.Itoa(exp.Batch),
	}
	if exp.Threads > 0 {
		args = append(args, "--threads", strconv.Itoa(exp.Threads))
	}
	if dur > 0 {
		args = append(args, "--duration", fmtDuration(dur))
	}
	if out != "" {
		args = append(args, "--out", shellQuote(out))
	}
	if ortLib != "" {
		args = append(args, "--ort-lib", shellQuote(ortLib))
	}
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./,:=+@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
