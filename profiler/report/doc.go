// Package report turns study results into a report a team can read: derived
// figures (speedup, memory and size reduction, cost per million inferences),
// a ranking and per-model recommendations chosen by stated rules against a
// fidelity gate, Pareto frontiers, an A/B comparison that takes run-to-run
// noise into account, charts (PNG and SVG, drawn with gonum.org/v1/plot),
// Markdown or self-contained HTML, and a CSV export.
//
// Records come from study.ReadResults through Load; rows and repeat folding
// come from study.Summarize; statistics from profiler/bench. Records are
// grouped by host environment (hostname, CPU, GPU, driver, CUDA, ONNX
// Runtime version) so numbers from different machines never mix. Nothing is
// stored that cannot be derived again from the records, and the same input
// always gives the same output.
package report
