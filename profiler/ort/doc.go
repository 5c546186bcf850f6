// Package ort finds, loads and initializes the ONNX Runtime shared library
// and reports what it offers: its version and the execution providers this
// build can run. The ONNX Runtime environment is the one piece of process-wide
// state in quantscope; this package owns it.
package ort
