package worker

import "syscall"

// dieWithParent has the kernel kill the worker when the process that started
// it dies, even by SIGKILL, so no experiment keeps running orphaned.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
