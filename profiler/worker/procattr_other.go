//go:build !linux

package worker

import "syscall"

// dieWithParent is Linux-only (PR_SET_PDEATHSIG); elsewhere the parent's
// SIGTERM/SIGKILL on cancel is all there is.
func dieWithParent(*syscall.SysProcAttr) {}
