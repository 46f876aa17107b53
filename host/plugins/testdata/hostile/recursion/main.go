// Command recursion recurses without end on every operation except "ping", with 16 KiB frames, so that the
// Go runtime's stack growth hits the host's memory limit (and the runtime aborts) within milliseconds.
package main

import (
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

func init() { sdk.Handle(handle) }

var ok = abi.Output{OK: true}

//go:noinline
func recurse(n int) int {
	var pad [16 << 10]byte
	pad[n%len(pad)] = byte(n)
	return recurse(n+1) + int(pad[(n+1)%len(pad)])
}

func handle(in *abi.Input) *abi.Output {
	if in.Op == "ping" {
		return &ok
	}
	recurse(0)
	return &ok
}

func main() {}
