// Command spin loops forever on every operation except "ping".
package main

import (
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

func init() { sdk.Handle(handle) }

var (
	ok      = abi.Output{OK: true}
	counter int
)

func handle(in *abi.Input) *abi.Output {
	if in.Op == "ping" {
		return &ok
	}
	for {
		counter++
	}
}

func main() {}
