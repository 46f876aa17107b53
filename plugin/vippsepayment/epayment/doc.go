// Package epayment is the payment logic of the vipps-epayment plugin: it maps kasse's canonical session to
// Vipps ePayment API v1 requests, and Vipps's answers and webhook events back to canonical payment
// observations. Like package ecom beside it, it owns nothing else: no I/O, no clock, no randomness, no state
// between calls, so every call can be replayed from its recorded input (the golden vectors in
// ../testdata/golden) natively and inside the wasm sandbox.
//
// [Handle] dispatches on the operation (see plugin/abi):
//
//   - build_initiate builds POST /epayment/v1/payments (createPayment, CreatePaymentRequest): amount as
//     {currency, value}, paymentMethod WALLET, reference = the session's provider reference (which must
//     match ^[a-zA-Z0-9-]{8,50}$), paymentDescription, and a userFlow chosen from the session. The
//     checkout's own choice (session.userFlow) wins: WEB_REDIRECT and NATIVE_REDIRECT (a checkout in the
//     merchant's app; Vipps answers with a vipps:// app link) with returnUrl = the session's return URL,
//     QR with qrFormat TEXT/TARGETURL (redirectUrl is then the URL the QR code encodes), PUSH_MESSAGE with
//     customer.phoneNumber in MSISDN form ("47" and the 8 digits), refused with invalid_input naming
//     session.userFlow when the session has no phone. Without a choice: PUSH_MESSAGE when the checkout
//     names the customer's phone, else WEB_REDIRECT.
//   - build_capture and build_refund build POST .../{reference}/capture and .../refund with
//     {"modificationAmount": {currency, value}}; build_cancel builds POST .../{reference}/cancel with no
//     body; build_details builds GET /epayment/v1/payments/{reference}. Create, capture, refund and cancel
//     ask the host for an Idempotency-Key header, which the spec requires on all four.
//   - read_initiate reads CreatePaymentResponse (201): pending, with redirectUrl when the flow has one
//     (every flow but PUSH_MESSAGE): an http(s) URL, or for NATIVE_REDIRECT a vipps:// or vippsMT:// link.
//   - read_details (GetPaymentResponse) and read_capture, read_refund and read_cancel (ModificationResponse)
//     map state and aggregate onto the canonical state. state stays AUTHORIZED after a capture, refund or
//     cancel, so the aggregate amounts decide: captured > 0 is captured (refunded once everything captured
//     is refunded and nothing is left to capture), cancelledAmount > 0 with nothing captured is cancelled.
//     CREATED is pending, ABORTED rejected, EXPIRED expired, TERMINATED (cancelled by the merchant before
//     the customer approved) cancelled.
//   - read_callback reads one webhook event (WebhookEvent, delivered through the Webhooks API), checking
//     that it is for this session's reference and merchant. An event's amount is the amount of that one
//     event, not a total, so CAPTURED, REFUNDED and CANCELLED only give lower bounds; the host follows them
//     with a status check (read_details) for the aggregate. An event with success false changes nothing.
//   - Beyond the ABI's operations the plugin offers build_events / read_events (GET .../events, the
//     authoritative event log, folded the same way as webhook events but complete) and
//     build_force_approve (POST /epayment/v1/test/payments/{reference}/approve, test environment only).
//   - Every read operation turns a non-2xx answer into a "provider_error". ePayment errors are RFC 7807
//     problems ({type, title, status, detail, traceId, extraDetails}); the problem's type (its stable
//     identifier), title, detail and extraDetails are passed on, and the eCom and Azure API Management
//     shapes are read too, because 401, 403 and 429 may come from the gateway in front of the API.
//
// # Express Checkout
//
// The ePayment API this package implements (epayment-v1.yaml 1.4.1, and its FAQ: "Is Express Checkout
// available in the ePayment API? Not yet.") has no Express Checkout: no shipping options and no address
// in the answer. build_initiate refuses an Express session (merchant.express set) with invalid_input, and
// shipping_options is unsupported_op. A merchant that offers Express Checkout stays on vipps-ecom
// (vipps-reference.md §5.5).
//
// The mapping follows kasse's shared/docs/vipps-reference.md §5 (ePayment), §6.2 (events), §7 (migration)
// and §9 (known inconsistencies, e.g. reference 8 to 50 characters in the spec but 64 in newer guides:
// this package keeps to the spec).
//
// Failures are data, never panics: invalid host input gives "invalid_input", an error answer from Vipps
// "provider_error", a 2xx answer or event this package cannot read "unexpected_response", an event for
// another payment, merchant, currency or amount "callback_mismatch", an unknown operation
// "unsupported_op". The report operations (abi.ReportOps: the merchant's settlement ledger through the
// Vipps Report API) are plugin/internal/vipps/report's, shared with the other Vipps plugin. Amounts are
// integer øre throughout; -1 in a payment means "not known from this answer".
package epayment

import "github.com/kassehq/kasse/plugin/abi"

// Name is the plugin's name, as the host's registry and the merchant config refer to it.
const Name = "vipps-epayment"

// Version is the plugin's version (semantic versioning). Change it with every change of behaviour.
const Version = "1.3.0"

// Error codes this package reports in abi.Error.Code.
const (
	// CodeInvalidInput: the host's input cannot be turned into a valid Vipps request.
	CodeInvalidInput = "invalid_input"
	// CodeProviderError: Vipps answered with an error status.
	CodeProviderError = "provider_error"
	// CodeUnexpectedResponse: a success answer or a webhook event that this package cannot read.
	CodeUnexpectedResponse = "unexpected_response"
	// CodeCallbackMismatch: a webhook event for another reference, merchant, currency or amount.
	CodeCallbackMismatch = "callback_mismatch"
	// CodeUnsupportedOp: the input names an operation this plugin does not implement.
	CodeUnsupportedOp = "unsupported_op"
)

// Operations this plugin offers beyond the ABI's list. The host does not call them today; they are here
// for tools and tests that read the event log or approve a payment in the test environment.
const (
	// OpBuildEvents builds GET /epayment/v1/payments/{reference}/events.
	OpBuildEvents abi.Op = "build_events"
	// OpReadEvents reads the event log (PaymentEvent[]) into a payment.
	OpReadEvents abi.Op = "read_events"
	// OpBuildForceApprove builds POST /epayment/v1/test/payments/{reference}/approve (test only).
	OpBuildForceApprove abi.Op = "build_force_approve"
)

// User flows of CreatePaymentRequest.userFlow, and the values session.userFlow may ask for.
const (
	FlowWebRedirect    = "WEB_REDIRECT"
	FlowNativeRedirect = "NATIVE_REDIRECT"
	FlowPushMessage    = "PUSH_MESSAGE"
	FlowQR             = "QR"
)
