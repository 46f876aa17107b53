// Package vippssim is a strict, in-memory simulator of the Vipps eCom API v2
// (test environment) for kasse's tests, demos and local development.
//
// It implements, on one http.Handler:
//
//   - the access token endpoint (POST /accesstoken/get), with credentials
//     checked per [Tenant];
//   - the eCom v2 merchant API: initiate, details, capture, cancel, refund,
//     the deprecated status call and the test-only force approve;
//   - the landing page that the initiate url points to: a plain HTML form
//     (phone number, then "Confirm payment" or "Reject") that plays the part
//     of the Vipps app;
//   - the transaction update callback to {callbackPrefix}/v2/payments/{orderId},
//     sent once, asynchronously, with a 3 second timeout and never retried,
//     as Vipps does;
//   - test controls, as Go methods on [Server] and as HTTP under /_sim/.
//
// Field names, headers, status strings and error shapes follow the eCom
// OpenAPI document (ecom-v2.swagger.yaml and ms_import.yaml) and the Vipps
// guides summarised in kasse's shared vipps-reference.md. Requests the real
// API refuses are refused here with the same error group and code; the
// sub-package vippsspec lets tests check every request and response against
// the published spec.
//
// # Errors
//
// Vipps errors are a JSON array of {errorGroup, errorCode, errorMessage,
// contextId}. The HTTP status is 400 for invalid requests and refused
// operations, 403 when the merchant serial number does not belong to the
// caller, 404 for an unknown orderId (Merchant 35), 409 for a duplicate
// orderId (Merchant 34) and for an X-Request-Id reused with another body
// (VippsError 93), and 415 for a body that is not JSON. Authentication
// failures (401) and unknown routes (404, 405) use the Azure API Management
// shape {responseInfo, result}, which is the spec's ErrorFromAzure.
//
// # Choices where Vipps documents nothing
//
//   - A payment whose user never acts (PaymentTTL, or [Server.Expire]) gets a
//     REJECTED callback with errorInfo code 45 and a CANCEL entry in its
//     transaction log, so that a merchant polling /details sees it is final.
//   - Cancelling the remainder after a partial capture is logged as VOID of
//     the released amount.
//   - A refund without an amount refunds what is left to refund.
//   - The landing page token lives as long as the payment is pending
//     (PaymentTTL), not the 5 minutes the guide gives the url.
//   - Unknown JSON fields are accepted: the spec sets no
//     additionalProperties: false anywhere. JSON null in an optional field is
//     treated as absent.
//   - isApp: true returns a vippsMT://?token=... url (the test app's scheme);
//     the landing page still works with the token.
//   - Express checkout (paymentType "eComm Express Payment") is simulated in
//     express.go: address and shipping pages after the phone number, the
//     shippingDetails call to the merchant, the RESERVE callback with
//     shippingDetails and userDetails, and consent removal
//     (POST /_sim/consents/remove). Force approve refuses express payments, as
//     Vipps does. scope is checked but no profile data (sub) is returned for
//     regular payments. Direct capture (SALE), the MT magic amounts and rate
//     limits are not simulated.
//
// # Test controls over HTTP
//
// For demos and tests in other processes; no authentication, so serve the
// simulator on loopback only. Callback records include the Authorization
// header, i.e. the merchant's authToken.
//
//	GET  /_sim/payments                    all payments ([PaymentSnapshot])
//	GET  /_sim/payments/{orderId}          one payment
//	POST /_sim/payments/{orderId}/approve  optional body {"phone":"91234567"} or form phone=
//	POST /_sim/payments/{orderId}/reject
//	POST /_sim/payments/{orderId}/expire
//	GET  /_sim/callbacks                   every finished callback ([DeliveredCallback])
//	GET  /_sim/callback-mode               {"mode":"deliver"}
//	PUT  /_sim/callback-mode               body {"mode":"deliver"} or {"mode":"drop"}
//
// Controls answer 204 on success, and {"error": "..."} with 404 for an unknown
// orderId, 409 when the payment is no longer pending, 400 otherwise.
package vippssim
