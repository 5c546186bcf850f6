// Package worker runs one experiment in a child process and streams what it
// measures back as JSON lines: started, periodic samples, then one result or
// error. The parent side (Run) spawns the child, enforces a timeout, cancels
// with SIGTERM then SIGKILL, and turns a crash, a hang or garbage on stdout
// into a failure that carries the reason and the tail of the child's stderr.
// A model that aborts ONNX Runtime or exhausts memory thus fails one
// experiment, never the study.
package worker
