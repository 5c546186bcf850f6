//go:build !linux

package worker

import "syscall"

// dieWithParent is Linux-only (PR_SET_PDEATHSIG); elsewhere the parent's
// SIGTERM/SIGKILL on cancel is all there is.
func dieWithParent(*syscall.SysProcAttr) {}

// waitExit has no portable non-reaping wait: it reports false at once,
// and the caller marks the exit after cmd.Wait.
func waitExit(int) bool { return false }
