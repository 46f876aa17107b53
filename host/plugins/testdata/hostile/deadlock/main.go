// Command deadlock blocks forever in select {} on every operation except "ping"; the Go runtime reports a
// deadlock and aborts.
package main

import (
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

func init() { sdk.Handle(handle) }

var ok = abi.Output{OK: true}

func handle(in *abi.Input) *abi.Output {
	if in.Op == "ping" {
		return &ok
	}
	select {}
}

func main() {}
