// Package abi defines the contract between the kasse host and a payment plugin: the names of the
// WebAssembly exports, the ABI version, and the JSON messages that cross the sandbox boundary.
//
// The host imports this package to build inputs and read outputs; the guest SDK (plugin/sdk) imports it
// to decode inputs and encode outputs. Nothing here does I/O, so it compiles for GOOS=wasip1 and natively.
// plugin/ABI.md describes the same contract for authors who write plugins in other languages.
package abi

import "encoding/json"

// Version is the ABI version this package describes. A module's kasse_abi_version export must return it.
const Version = 1

// Names of the exports every plugin module provides. See plugin/ABI.md for their signatures.
const (
	// ExportABIVersion is `kasse_abi_version() -> i32`.
	ExportABIVersion = "kasse_abi_version"
	// ExportInput is `kasse_input(size i32) -> i32`: returns the address of a guest-owned buffer of at
	// least size bytes into which the host writes the next input.
	ExportInput = "kasse_input"
	// ExportCall is `kasse_call(size i32) -> i64`: handles the size bytes of input in the buffer and
	// returns the output's address in the high 32 bits and its length in the low 32 bits. The output
	// stays valid until the next call into the module.
	ExportCall = "kasse_call"
	// ExportYield is `kasse_yield()`: lets the guest's runtime run its garbage collector. The host calls
	// it off the request path (when an instance goes back to its pool).
	ExportYield = "kasse_yield"
	// StartFunction is the reactor initialiser the host runs once per instance.
	StartFunction = "_initialize"
)

// Op names an operation the host asks a plugin to perform. Build operations turn a session into an HTTP
// request for the provider; read operations turn the provider's answer (or a callback) into a payment status.
type Op string

// Operations every payment plugin implements.
const (
	OpBuildInitiate Op = "build_initiate"
	OpReadInitiate  Op = "read_initiate"
	OpBuildCapture  Op = "build_capture"
	OpReadCapture   Op = "read_capture"
	OpBuildCancel   Op = "build_cancel"
	OpReadCancel    Op = "read_cancel"
	OpBuildRefund   Op = "build_refund"
	OpReadRefund    Op = "read_refund"
	OpBuildDetails  Op = "build_details"
	OpReadDetails   Op = "read_details"
	OpReadCallback  Op = "read_callback"
)

// Ops lists every operation, in the order they are documented.
var Ops = []Op{
	OpBuildInitiate, OpReadInitiate, OpBuildCapture, OpReadCapture, OpBuildCancel, OpReadCancel,
	OpBuildRefund, OpReadRefund, OpBuildDetails, OpReadDetails, OpReadCallback,
}

// Input is the one message the host sends for every call. Fields that an operation does not use are empty.
type Input struct {
	Op       Op       `json:"op"`
	Merchant Merchant `json:"merchant"`
	Session  Session  `json:"session"`
	// Operation carries the amount and text of a capture, refund or cancel.
	Operation *Operation `json:"operation,omitempty"`
	// Response is the provider's answer to the request a build operation produced (read_* operations).
	Response *Response `json:"response,omitempty"`
	// Callback is the raw body of a provider callback (read_callback).
	Callback json.RawMessage `json:"callback,omitempty"`
}

// Merchant is the merchant's non-secret settings. Credentials never cross into the sandbox.
type Merchant struct {
	ID                   string `json:"id"`
	MerchantSerialNumber string `json:"merchantSerialNumber"`
	// CallbackPrefix is where the provider sends payment callbacks for this merchant.
	CallbackPrefix string `json:"callbackPrefix"`
	// FallBack is where the customer's browser returns after the payment, for this session.
	FallBack string `json:"fallBack"`
	// TransactionTextPrefix, when set, is put in front of the checkout's description.
	TransactionTextPrefix string `json:"transactionTextPrefix,omitempty"`
}

// Session is the canonical view of a checkout session the plugin works on.
type Session struct {
	ID                string `json:"id"`
	Reference         string `json:"reference"`
	ProviderReference string `json:"providerReference"`
	State             string `json:"state"`
	Amount            int64  `json:"amount"`
	Currency          string `json:"currency"`
	Description       string `json:"description"`
	CustomerPhone     string `json:"customerPhone,omitempty"`
	AuthorizedAmount  int64  `json:"authorizedAmount"`
	CapturedAmount    int64  `json:"capturedAmount"`
	RefundedAmount    int64  `json:"refundedAmount"`
	CancelledAmount   int64  `json:"cancelledAmount"`
	Lines             []Line `json:"lines,omitempty"`
}

// Line is one order line, amounts in minor units.
type Line struct {
	SKU       string `json:"sku,omitempty"`
	Name      string `json:"name"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unitPrice"`
}

// Operation is a merchant-initiated change: capture, refund or cancel.
type Operation struct {
	// Amount in minor units. Zero on capture means "the remaining amount".
	Amount int64  `json:"amount"`
	Text   string `json:"text"`
}

// Response is an HTTP answer from the provider, as the host received it.
type Response struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// Output is the one message a plugin returns for every call.
type Output struct {
	OK    bool   `json:"ok"`
	Error *Error `json:"error,omitempty"`
	// Request is set by build operations: the HTTP request the host should send to the provider.
	Request *Request `json:"request,omitempty"`
	// Payment is set by read operations: what the provider's answer says about the payment.
	Payment *Payment `json:"payment,omitempty"`
}

// Error is a failure the plugin reports as data: invalid input, or an error the provider answered with.
type Error struct {
	// Code is stable and machine-readable, e.g. "invalid_input", "provider_error", "unexpected_response".
	Code    string `json:"code"`
	Message string `json:"message"`
	// ProviderStatus is the provider's HTTP status, when the error came from the provider.
	ProviderStatus int `json:"providerStatus,omitempty"`
	// ProviderErrors are the provider's own error entries, e.g. eCom's errorGroup/errorCode pairs.
	ProviderErrors []ProviderError `json:"providerErrors,omitempty"`
	// Retryable says whether sending the same request again (with the same idempotency key) may succeed.
	Retryable bool `json:"retryable,omitempty"`
}

// ProviderError is one entry of a provider's error list.
type ProviderError struct {
	Group   string `json:"group,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Request is an HTTP request to the provider, built by the plugin and sent by the host. The host resolves
// Path against the merchant's configured base URL (it must start with "/"), and adds every credential header.
type Request struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body,omitempty"`
	// IdempotencyHeader names the header in which the host sends the operation's idempotency key,
	// e.g. "X-Request-Id" for eCom. Empty means the request is not idempotent.
	IdempotencyHeader string `json:"idempotencyHeader,omitempty"`
	// Inject lists values only the host knows that it writes into Body before sending.
	Inject []Injection `json:"inject,omitempty"`
}

// Injection asks the host to set the JSON value at Pointer (RFC 6901) in the request body to the host value
// named Value. The plugin never sees the value itself.
type Injection struct {
	Pointer string `json:"pointer"`
	Value   string `json:"value"`
}

// Host values a plugin may ask to inject.
const (
	// InjectCallbackToken is the per-session random token the provider echoes on callbacks.
	InjectCallbackToken = "callbackToken"
)

// Payment is the provider-neutral status of a payment as one provider answer shows it.
type Payment struct {
	// State is one of the canonical states: pending, authorized, captured, refunded, cancelled, rejected,
	// expired, failed. See host/payment for their meaning.
	State             string `json:"state"`
	ProviderReference string `json:"providerReference,omitempty"`
	RedirectURL       string `json:"redirectUrl,omitempty"`
	// Amounts in minor units. A read operation sets the ones the answer reveals; -1 means "not known from
	// this answer", so the host keeps what it had.
	AuthorizedAmount int64 `json:"authorizedAmount"`
	CapturedAmount   int64 `json:"capturedAmount"`
	RefundedAmount   int64 `json:"refundedAmount"`
	CancelledAmount  int64 `json:"cancelledAmount"`
	// Reason explains a rejected, expired or failed payment, e.g. the provider's error message.
	Reason string `json:"reason,omitempty"`
}
