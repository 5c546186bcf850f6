// Package scripts holds quantscope's shell scripts (ONNX Runtime setup, the
// GPU bundle and the GPU check) and, in its tests, checks of the ones whose
// behaviour can be tested on any machine.
package scripts
