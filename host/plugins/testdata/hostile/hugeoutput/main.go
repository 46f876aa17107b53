// Command hugeoutput answers every operation except "ping" with a 1 MiB request body, above the host's
// output limit.
package main

import (
	"bytes"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

func init() { sdk.Handle(handle) }

var (
	ok   = abi.Output{OK: true}
	huge = abi.Output{OK: true, Request: &abi.Request{Method: "POST", Path: "/", Body: append(append([]byte{'"'}, bytes.Repeat([]byte{'x'}, 1<<20)...), '"')}}
)

func handle(in *abi.Input) *abi.Output {
	if in.Op == "ping" {
		return &ok
	}
	return &huge
}

func main() {}
