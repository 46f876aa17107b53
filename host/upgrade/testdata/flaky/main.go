// Command flaky is a test plugin for host/upgrade: the vipps-ecom plugin (so it passes vipps-ecom's golden
// vectors and the host's conformance vectors) with two faults that only live traffic triggers. A session
// reference starting with "boom" makes it call os.Exit (the instance dies: a plugin failure), and one
// starting with "diff" changes the request path (a difference only a shadow run notices).
package main

import (
	"os"
	"strings"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/sdk"
	"github.com/kassehq/kasse/plugin/vippsecom/ecom"
)

func init() { sdk.Handle(handle) }

func handle(in *abi.Input) *abi.Output {
	switch {
	case strings.HasPrefix(in.Session.Reference, "boom"):
		os.Exit(3)
	case strings.HasPrefix(in.Session.Reference, "diff"):
		out := ecom.Handle(in)
		if out.Request != nil {
			out.Request.Path += "/shadow-difference"
		}
		return out
	}
	return ecom.Handle(in)
}

func main() {}
