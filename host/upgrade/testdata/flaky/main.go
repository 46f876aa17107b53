// Command flaky is a test plugin for host/upgrade: the vipps-ecom plugin (so it passes vipps-ecom's golden
// vectors and the host's conformance vectors) with two faults that only live traffic triggers. A session
// reference starting with "boom" makes it call os.Exit (the instance dies: a plugin failure), one
// starting with "diff" changes the request path (a difference only a shadow run notices), one starting
// with "polite" answers an error as data that is the plugin's fault (plugin_error), and one starting with
// "refuse" answers the provider's refusal (provider_error), which is no fault of the plugin.
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
	case strings.HasPrefix(in.Session.Reference, "polite"):
		return &abi.Output{Error: &abi.Error{Code: "plugin_error", Message: "politely failing"}}
	case strings.HasPrefix(in.Session.Reference, "refuse"):
		return &abi.Output{Error: &abi.Error{Code: "provider_error", Message: "Requested amount exceeds reserved amount",
			ProviderStatus: 400}}
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
