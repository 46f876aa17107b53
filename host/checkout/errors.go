package checkout

import (
	"errors"
	"fmt"

	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/plugin/abi"
)

// ErrCallbackUnauthorized is returned when a callback's Authorization header does not match the session.
var ErrCallbackUnauthorized = errors.New("checkout: callback authorization does not match the session")

// UnknownMerchantError is returned for a merchant id that is not in the configuration.
type UnknownMerchantError struct{ Merchant string }

func (e *UnknownMerchantError) Error() string {
	return fmt.Sprintf("checkout: unknown merchant %q", e.Merchant)
}

// InputError is a request the checkout service refuses for a reason the schema cannot express.
type InputError struct {
	// Pointer is the RFC 6901 pointer to the offending field of the request body.
	Pointer string
	Detail  string
}

func (e *InputError) Error() string { return fmt.Sprintf("checkout: %s: %s", e.Pointer, e.Detail) }

// UnavailableError means a dependency the request needs is not available right now.
type UnavailableError struct{ What string }

func (e *UnavailableError) Error() string { return "checkout: " + e.What + " is not available" }

// IdempotencyError is an Idempotency-Key reused for a different request, or one still in progress.
type IdempotencyError struct {
	InProgress bool
	Detail     string
}

func (e *IdempotencyError) Error() string { return "checkout: " + e.Detail }

// StateError is an operation the session's current state does not allow.
type StateError struct {
	Session string
	State   payment.State
	Err     error
}

func (e *StateError) Error() string {
	return fmt.Sprintf("checkout: session[%s]: %v", e.Session, e.Err)
}
func (e *StateError) Unwrap() error { return e.Err }

// PluginError is a plugin that failed (Cause: trap, timeout, bad output) or refused an operation (Err).
type PluginError struct {
	Plugin, Version string
	Op              abi.Op
	// Err is the error the plugin reported as data.
	Err *abi.Error
	// Cause is a failure of the plugin call itself.
	Cause error
}

func (e *PluginError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("checkout: plugin[%s]@%s %s: %s: %s", e.Plugin, e.Version, e.Op, e.Err.Code, e.Err.Message)
	}
	return fmt.Sprintf("checkout: plugin[%s]@%s %s: %v", e.Plugin, e.Version, e.Op, e.Cause)
}
func (e *PluginError) Unwrap() error { return e.Cause }

// ProviderError is a failed exchange with the payment provider: it refused the request (Status set) or
// could not be reached (Cause set).
type ProviderError struct {
	Status    int
	Detail    string
	Errors    []abi.ProviderError
	Retryable bool
	Cause     error
}

func (e *ProviderError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("checkout: provider answered %d: %s", e.Status, e.Detail)
	}
	return "checkout: provider: " + e.Detail
}
func (e *ProviderError) Unwrap() error { return e.Cause }

// reasonOf is a short, secret-free explanation of err for a session's history.
func reasonOf(err error) string {
	var pe *ProviderError
	if errors.As(err, &pe) && pe.Status != 0 {
		return pe.Detail
	}
	var ple *PluginError
	if errors.As(err, &ple) {
		if ple.Err != nil {
			return ple.Err.Message
		}
		return "payment plugin failed"
	}
	return "payment provider unreachable"
}

// InDoubtError is a new operation refused because another operation on the session is in doubt: kasse
// does not know yet whether the provider carried it out, and will not send anything else until it does.
type InDoubtError struct {
	Session, Operation, Kind string
}

func (e *InDoubtError) Error() string {
	return fmt.Sprintf("checkout: session[%s]: the %s %s is in doubt: its outcome at the provider is not known yet; "+
		"kasse retries it with the same request id, and accepts new operations once it is settled",
		e.Session, e.Kind, e.Operation)
}

// OutcomeUnknownError is an operation sent to the provider whose outcome kasse does not know yet (no
// answer, a timeout, a 5xx). It is recorded in the session as in doubt and retried with the same request
// id until it is known; it may well have happened.
type OutcomeUnknownError struct {
	Session, Operation, Kind string
	Cause                    error
}

func (e *OutcomeUnknownError) Error() string {
	msg := fmt.Sprintf("checkout: session[%s]: the outcome of %s %s is not known yet", e.Session, e.Kind, e.Operation)
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}
func (e *OutcomeUnknownError) Unwrap() error { return e.Cause }
