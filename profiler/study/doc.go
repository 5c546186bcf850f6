// Package study plans a matrix of experiments (models × precisions × execution
// providers × batch sizes, with the FP32 baseline of each added) and keeps
// their results in an append-only JSON-lines file that survives a killed
// process: every record is one fsync'd line, a torn last line is skipped with
// a warning, and a resumed study skips what is already recorded.
package study
