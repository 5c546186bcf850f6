// Package hwbench answers "is this machine as fast as it should be?": it
// measures GEMM peaks through ONNX Runtime (MatMul models built here),
// memory bandwidth (host, and on a GPU device memory and PCIe copies), and a
// reference inference, against theoretical peaks computed from the hardware
// (cores × clock × per-cycle rate; SMs × clock × per-SM rate) and against
// figures recorded on known machines. It watches the machine's health while
// it runs (clocks, throttling, power, temperature, PCIe link, ECC, MIG, other
// processes; CPU governor, clock, steal time, other load) and gives every
// line a verdict — ok, below expectation, fault — with the likely cause and
// the next step.
//
// The package owns the peak tables, the verdict rules and the report's
// JSON schema; `quantscope doctor --bench` and the TUI's Doctor screen
// render its Report and Events.
package hwbench
