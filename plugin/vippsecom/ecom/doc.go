// Package ecom is the payment logic of the vipps-ecom plugin: it maps kasse's canonical session to Vipps
// eCom API v2 requests, and Vipps's answers and callbacks back to canonical payment observations. It owns
// nothing else: no I/O, no clock, no randomness, no state between calls, so every call can be replayed from
// its recorded input (the golden vectors in ../testdata/golden) natively and inside the wasm sandbox.
//
// [Handle] dispatches on the operation (see plugin/abi):
//
//   - build_initiate, build_capture, build_cancel, build_refund and build_details build the HTTP requests of
//     the eCom API v2 (ecom-v2.swagger.yaml 2.0.3, operations initiatePaymentV3UsingPOST,
//     capturePaymentUsingPOST, cancelPaymentRequestUsingPUT, refundPaymentUsingPOST and
//     getPaymentDetailsUsingGET). Bodies follow the request schemas InitiatePaymentCommand,
//     PaymentActionsRequest and CancelPaymentActionRequest; capture and refund ask the host for an
//     X-Request-Id idempotency header; initiate asks the host to inject the per-session callback token at
//     /merchantInfo/authToken, so the secret never enters the plugin.
//   - The checkout's userFlow (session.userFlow, named as in the ePayment API) maps as the migration guide
//     maps eCom to ePayment (vipps-reference.md §7): none or WEB_REDIRECT is isApp false, NATIVE_REDIRECT
//     isApp true (the answer's url is then a vipps:// or vippsMT:// app link). PUSH_MESSAGE (eCom's
//     skipLandingPage, for whitelisted sales units only) and QR (not in eCom) are refused with
//     invalid_input naming session.userFlow.
//   - read_initiate, read_capture, read_cancel and read_refund read the answers PaymentInitiationResponse,
//     TransactionResponse (transactionInfo.status "Captured"), CancelTransactionResponse ("Cancelled") and
//     RefundTransactionResponse (whose key is "transaction", not "transactionInfo"; status "Refund").
//   - read_details reads TransactionDetails: only transactionLogHistory entries with operationSuccess true
//     count, as the eCom API guide requires, and transactionSummary amounts win when present.
//   - read_callback reads the body Vipps posts to [callbackPrefix]/v2/payments/{orderId}
//     (ms_import.yaml, TransactionUpdateCallbackOneOf), checking that it is for this session and merchant.
//     An Express callback's userDetails and shippingDetails become the payment's contact and shipping
//     (the cost converted from NOK to øre, zipCode or postCode, "Norway" or "NO"), and its amount may
//     include the shipping cost; read_details reads the same details from an Express payment's details.
//   - Express Checkout (express.go): when the host sets merchant.express, build_initiate builds an "eComm
//     Express Payment" with consentRemovalPrefix and either staticShippingDetails (static shipping: the
//     merchant's methods priced by the rules that do not depend on the address, shippingCost in NOK with
//     two decimals, isDefault "Y"/"N") or shippingDetailsPrefix (dynamic shipping). shipping_options
//     answers Vipps's shippingDetails request (ShippingCostAndMethod) with FetchShippingCostResponse, in
//     Output.Reply: the options for the address asked about, from the cart stored with the session at
//     initiation (its lines, else its amount) and the merchant's rules (cost by cart total, country and
//     postcode; methods limited to countries and postcodes, such as pick-up points).
//   - Every read operation turns a non-2xx answer into a "provider_error" from either error shape the eCom
//     API uses: its own JSON array of {errorGroup, errorCode, errorMessage, contextId}, or an Azure API
//     Management object ({"responseInfo":..., "result":...} or {"statusCode":..., "message":...}).
//
// The mapping of Vipps statuses to canonical states, and the inconsistencies between Vipps's own documents
// that this package tolerates, follow kasse's shared/docs/vipps-reference.md: §3 (eCom API), §4 (callbacks)
// and §9 (known inconsistencies: RESERVED vs RESERVE, merchantSerialNumber and amount types, errorGroup
// values outside the enum, transactionId missing on REJECTED, the two error shapes, the refund response key).
//
// Failures are data, never panics: invalid host input gives the error code "invalid_input", an error answer
// from Vipps "provider_error", a 2xx answer or callback this package cannot read "unexpected_response", and a
// callback for another payment, merchant or amount "callback_mismatch". An unknown operation gives
// "unsupported_op". The report operations (abi.ReportOps: the merchant's settlement ledger through the
// Vipps Report API) are plugin/internal/vipps/report's, shared with the other Vipps plugin. Amounts are integer øre throughout; -1 in a payment means "not known from this answer".
package ecom

// Name is the plugin's name, as the host's registry and the merchant config refer to it.
const Name = "vipps-ecom"

// Version is the plugin's version (semantic versioning). Change it with every change of behaviour: the host
// records it on every session, and golden vectors are replayed against it before an upgrade is activated.
const Version = "1.4.0"

// Error codes this package reports in abi.Error.Code.
const (
	// CodeInvalidInput: the host's input cannot be turned into a valid Vipps request.
	CodeInvalidInput = "invalid_input"
	// CodeProviderError: Vipps answered with an error status.
	CodeProviderError = "provider_error"
	// CodeUnexpectedResponse: a success answer or a callback that this package cannot read.
	CodeUnexpectedResponse = "unexpected_response"
	// CodeCallbackMismatch: a callback for another order, merchant or amount than the session's.
	CodeCallbackMismatch = "callback_mismatch"
	// CodeUnsupportedOp: the input names an operation this plugin does not implement.
	CodeUnsupportedOp = "unsupported_op"
)
