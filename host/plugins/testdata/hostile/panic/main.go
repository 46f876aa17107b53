// Command panic panics: in the handler on "panic" (the SDK recovers and reports plugin_panic), in a new
// goroutine on "gopanic" (nothing recovers; the Go runtime exits). It answers "ping" normally.
package main

import (
	"runtime"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
)

func init() { sdk.Handle(handle) }

var ok = abi.Output{OK: true}

func handle(in *abi.Input) *abi.Output {
	switch in.Op {
	case "panic":
		panic("hostile panic")
	case "gopanic":
		done := make(chan struct{})
		go func() {
			defer close(done)
			panic("hostile goroutine panic")
		}()
		for {
			runtime.Gosched()
			select {
			case <-done:
			default:
			}
		}
	}
	return &ok
}

func main() {}
