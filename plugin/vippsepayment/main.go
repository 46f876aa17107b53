// Command vippsepayment is the vipps-epayment payment plugin: the Vipps ePayment API v1 mapping of package
// epayment, compiled to a WebAssembly reactor module that kasse's host loads (see plugin/ABI.md). It only
// registers epayment.Handle with the guest SDK, which owns the module's exports. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin/build/vipps-epayment.wasm ./plugin/vippsepayment
//
// Its golden vectors (testdata/golden) run natively and through the built module in this package's tests.
package main

import (
	"github.com/kassehq/kasse/plugin/sdk"
	"github.com/kassehq/kasse/plugin/vippsepayment/epayment"
)

func init() { sdk.Handle(epayment.Handle) }

// main is empty: a reactor module is driven through its exports, never run as a command.
func main() {}
