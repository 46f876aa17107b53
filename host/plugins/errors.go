package plugins

import (
	"errors"
	"fmt"
)

// ErrorKind classifies a failed call.
type ErrorKind string

// Kinds of CallError.
const (
	// KindTimeout: the call timeout passed while the guest ran (the caller's context does not stop a
	// running guest; see Plugin.Call). The instance was discarded.
	KindTimeout ErrorKind = "timeout"
	// KindTrap: the guest trapped (unreachable, out-of-bounds access, stack overflow, the Go runtime
	// aborting). The instance was discarded.
	KindTrap ErrorKind = "trap"
	// KindExit: the guest called proc_exit (os.Exit, or a Go runtime fatal error). The instance was
	// discarded.
	KindExit ErrorKind = "exit"
	// KindInputTooLarge: the input exceeds the configured maximum; the guest was not called.
	KindInputTooLarge ErrorKind = "input_too_large"
	// KindOutputTooLarge: the output exceeds the configured maximum. The instance was discarded.
	KindOutputTooLarge ErrorKind = "output_too_large"
	// KindBusy: no instance became free within the acquire timeout, or the caller's context ended before
	// the guest started, or the plugin is closed. The guest was not called.
	KindBusy ErrorKind = "busy"
	// KindABI: the guest broke the ABI (a buffer outside its memory, an empty or non-JSON output, a wrong
	// ABI version). The instance was discarded.
	KindABI ErrorKind = "abi"
)

// ErrClosed is the cause of the KindBusy error a call to a closed plugin returns.
var ErrClosed = errors.New("plugin closed")

// CallError is the error Plugin.Call returns for every failure.
type CallError struct {
	// Plugin and Version identify the plugin.
	Plugin, Version string
	// Export is the guest function the failure happened in ("kasse_call", "kasse_input", "_initialize"),
	// or empty when the guest was not called.
	Export string
	// Kind classifies the failure.
	Kind ErrorKind
	// Err is the cause.
	Err error
}

// Error implements error, e.g. "plugins: plugin[vipps-ecom]@1.0.0 export[kasse_call]: timeout: ...".
func (e *CallError) Error() string {
	if e.Export == "" {
		return fmt.Sprintf("plugins: plugin[%s]@%s: %s: %v", e.Plugin, e.Version, e.Kind, e.Err)
	}
	return fmt.Sprintf("plugins: plugin[%s]@%s export[%s]: %s: %v", e.Plugin, e.Version, e.Export, e.Kind, e.Err)
}

// Unwrap returns Err.
func (e *CallError) Unwrap() error { return e.Err }
