// Package tui is quantscope's interactive terminal application: pick models
// and precisions, run the study live, compare the results.
//
// Every screen (setup, dashboard, heatmap, run detail, doctor) keeps one
// contract, Screen: Update, View, SetSize and its own help. The root Model
// routes keys to the current screen and every other message to all of
// them, turns what they ask for (intents) into hub calls and screen
// switches, and draws the header, footer, help overlay, confirmations and
// the "terminal too small" notice itself. Styles live in styles.go and every key
// binding in keys.go. The study runs in the profiler's worker processes;
// the UI never blocks: study.Run executes inside a tea.Cmd, its updates land
// in a coalescing feed that a ~10 Hz tick drains, and charts are drawn on
// that tick only.
//
// Everything the application needs from the outside world comes in through
// Options (catalog, preparer, environment probe, the study runner), so the
// package can be driven by fake events in tests.
package tui
