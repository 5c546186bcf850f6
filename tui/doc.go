// Package tui is quantscope's interactive terminal application: pick models
// and precisions, run the study live, compare the results.
//
// The root Model routes messages to one screen at a time (setup, dashboard,
// heatmap, run detail) and draws the help overlay, confirmations and the
// "terminal too small" notice itself. Styles live in styles.go and every key
// binding in keys.go. The study runs in the profiler's worker processes;
// the UI never blocks: study.Run executes inside a tea.Cmd, its updates land
// in a coalescing feed that a ~10 Hz tick drains, and charts are drawn on
// that tick only.
//
// Everything the application needs from the outside world comes in through
// Options (catalog, preparer, environment probe, the study runner), so the
// package can be driven by fake events in tests.
package tui
