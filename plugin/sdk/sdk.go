// Package sdk is the guest side of the kasse plugin ABI for plugins written in Go. It owns the WebAssembly
// exports a plugin module must provide (see plugin/ABI.md), the input and output buffers, and the codecs
// for the two ABI messages (the input in ABI version 2's binary encoding, or version 1's JSON; the output
// in JSON), so that a plugin author writes one function from *abi.Input to *abi.Output:
//
//	package main
//
//	import (
//		"github.com/kassehq/kasse/plugin/abi"
//		"github.com/kassehq/kasse/plugin/sdk"
//	)
//
//	func init() { sdk.Handle(handle) }
//
//	func handle(in *abi.Input) *abi.Output { ... }
//
//	func main() {}
//
// Build the package with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags='-s -w' -o plugin.wasm .
//
// The module implements ABI version 2 (binary input). With -tags kasse_abi1 it implements version 1 (JSON
// input) instead, for hosts that predate version 2.
//
// # Lifetimes
//
// The SDK reuses the *abi.Input, its slices and its strings between calls: strings alias the input buffer or
// a reused scratch arena, and json.RawMessage fields alias the input buffer (version 2) or are copied into
// reused buffers (version 1). Everything reachable from
// the Input is valid only until the handler returns. A handler that keeps a value for later must copy it
// (strings.Clone, bytes.Clone).
//
// # Speed
//
// Go compiled to WebAssembly and run with a per-call deadline pays for every taken branch and every heap
// allocation (see the runtime notes linked from plugin/ABI.md). The SDK therefore decodes abi.Input without
// allocating (version 2's binary input with abi.Decoder, which parses nothing; version 1's JSON with a
// hand-written scanner) and encodes abi.Output with append code instead of encoding/json, and
// offers [JSON] for building provider request bodies the same way. Handlers should avoid encoding/json,
// fmt and maps on the hot path.
//
// # Panics
//
// A panic in the handler is recovered and returned as an output with ok=false and error code
// [CodePanic]; the module stays usable.
package sdk

import (
	"github.com/kassehq/kasse/plugin/abi"
)

// Error codes the SDK itself puts in an output. Plugins choose their own codes for everything else.
const (
	// CodePanic reports that the handler panicked. The message is the panic value.
	CodePanic = "plugin_panic"
	// CodeInvalidInput reports that the input message was not a valid abi.Input.
	CodeInvalidInput = "invalid_input"
	// CodeNoHandler reports that the plugin never called Handle.
	CodeNoHandler = "plugin_no_handler"
	// CodeNilOutput reports that the handler returned a nil *abi.Output.
	CodeNilOutput = "plugin_nil_output"
)

// HandlerFunc handles one call. The input and everything it references is valid only until the function
// returns; the output must stay valid until then too (it is encoded right after the handler returns).
type HandlerFunc func(in *abi.Input) *abi.Output

// Handle registers the plugin's handler. Call it once, from the plugin's init function; a later call replaces
// the handler.
func Handle(h HandlerFunc) {
	guest.handler = h
}

// guest is the module's one dispatcher. A WebAssembly instance runs one call at a time (the host never
// shares an instance between goroutines), so the exports need no locking. It accepts only the encoding of
// the ABI version the module reports.
var guest = dispatcher{version: moduleVersion}

// Run decodes input as the host sends it, calls h and returns the encoded output: what the module's
// kasse_call returns for the same bytes, panics and invalid input included. It lets plugin authors test a
// handler natively, without building the module. input may be in either encoding (JSON, ABI version 1, or
// binary, version 2; see abi.IsBinary), where a module accepts only its own version's. The output is a new
// slice.
func Run(h HandlerFunc, input []byte) []byte {
	d := dispatcher{handler: h}
	copy(d.input(len(input)), input)
	return append([]byte(nil), d.call(len(input))...)
}
