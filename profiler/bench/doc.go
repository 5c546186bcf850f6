// Package bench measures one experiment: warm-up until timings settle, a timed
// loop, and the latency statistics a performance engineer reads (percentiles,
// spread, outliers, confidence intervals).
package bench
