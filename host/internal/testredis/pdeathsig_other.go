//go:build !linux

package testredis

import "os/exec"

// setParentDeathSignal does nothing where the kernel has no parent-death signal; cleanups stop the server.
func setParentDeathSignal(*exec.Cmd) {}
