package worker

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// dieWithParent has the kernel kill the worker when the process that started
// it dies, even by SIGKILL, so no experiment keeps running orphaned.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

// waitExit blocks until process pid has exited, without reaping it
// (waitid with WNOWAIT): its pid, and so its process group id, stay taken
// until cmd.Wait reaps it, so a signal sent meanwhile cannot reach another
// process. It reports whether it saw the exit (false on an error).
func waitExit(pid int) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err == nil
		}
	}
}
