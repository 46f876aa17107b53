// Command hog allocates 1 MiB blocks and keeps them on every operation except "ping", until the Go runtime
// runs out of memory at the host's page limit.
package main

import (
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

func init() { sdk.Handle(handle) }

var (
	ok   = abi.Output{OK: true}
	kept [][]byte
)

func handle(in *abi.Input) *abi.Output {
	if in.Op == "ping" {
		return &ok
	}
	for {
		b := make([]byte, 1<<20)
		b[len(b)-1] = 1
		kept = append(kept, b)
	}
}

func main() {}
