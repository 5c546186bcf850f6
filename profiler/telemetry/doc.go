// Package telemetry holds quantscope's samplers and system information: what
// the host is (CPU model, cores, the instruction-set features that decide
// quantized inference speed, memory) and what its NVIDIA GPUs report through
// NVML (name, driver, memory, temperature, power).
//
// Readers return plain, JSON-tagged values so that the same types serve the
// doctor command, result records (the host fingerprint) and live samplers.
// NVML is always reached through an injected nvml.Interface: nvml.New() in
// production, the go-nvml mock package in tests.
package telemetry
