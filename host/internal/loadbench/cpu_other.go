//go:build !unix

package loadbench

import "time"

// ProcessCPU is the CPU time the process has used so far; 0 on this platform, which does not measure it.
func ProcessCPU() time.Duration { return 0 }
