package testredis

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill redis-server if the test binary dies without running its
// cleanups (a panic in another goroutine, a timeout), so no server outlives the tests.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
