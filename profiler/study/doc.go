// Package study plans a matrix of experiments (models × precisions × execution
// providers × batch sizes, with the FP32 baseline of each added) and keeps
// their results in an append-only JSON-lines file that survives a killed
// process: one study writes a file at a time (an flock'd lock file names the
// holder), every record is one fsync'd line, a failed write is cut back to the
// last whole line and the record kept in a fallback file, a torn last line or
// an exact duplicate is skipped with a warning, and a resumed study skips only
// what this machine already recorded.
package study
