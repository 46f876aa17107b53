// Command exit calls os.Exit(3) on every operation except "ping".
package main

import (
	"os"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

func init() { sdk.Handle(handle) }

var ok = abi.Output{OK: true}

func handle(in *abi.Input) *abi.Output {
	if in.Op == "ping" {
		return &ok
	}
	os.Exit(3)
	return &ok
}

func main() {}
