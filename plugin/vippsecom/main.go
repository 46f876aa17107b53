// Command vippsecom is the vipps-ecom payment plugin: the Vipps eCom API v2 mapping of package ecom,
// compiled to a WebAssembly reactor module that kasse's host loads (see plugin/ABI.md). It only registers
// ecom.Handle with the guest SDK, which owns the module's exports. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin/build/vipps-ecom.wasm ./plugin/vippsecom
//
// Its golden vectors (testdata/golden) run natively and through the built module in this package's tests.
package main

import (
	"github.com/kassehq/kasse/plugin/sdk"
	"github.com/kassehq/kasse/plugin/vippsecom/ecom"
)

func init() { sdk.Handle(ecom.Handle) }

// main is empty: a reactor module is driven through its exports, never run as a command.
func main() {}
