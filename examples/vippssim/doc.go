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
//   - the ePayment API v1 and the Webhooks API v1 (epayment.go, webhooks.go);
//   - a settlement ledger per sales unit and the Report API v2 that serves it
//     (ledger.go): every capture and refund by either API is a funds entry,
//     each capture's fee a fees entry; closing a ledger date
//     ([Server.CloseLedgerDay]) retains the fees and schedules the payout as in
//     the Report API guide's worked example;
//   - idempotent replays, an operations log and faults on command (below);
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
// # Idempotency
//
// Capture and refund require X-Request-Id (the spec marks it required); cancel
// and force approve take it optionally. A request that repeats an X-Request-Id
// already used for the same endpoint and payment, with the same body, gets the
// first answer (status and body, byte for byte) and changes nothing; with
// another body it is refused with 409 VippsError 93. A new X-Request-Id is a
// new operation: two captures with different ids capture twice. The ePayment
// API does the same with Idempotency-Key on create (per merchant serial
// number), capture, refund and cancel (409 problems, codes 4020 and 4010).
// Every applied money operation, and every replay (flagged), is in the
// operations log ([Server.Operations], GET /_sim/operations).
//
// # Faults on command
//
// [Server.SetFaults] (PUT /_sim/faults) makes the simulator misbehave the way
// Vipps and networks do; the random choices come from one source seeded with
// Config.Seed, so a run can be replayed:
//
//   - callbacks: drop a share, duplicate a share, delay each by a fixed or
//     random time, or hold them in batches sent in shuffled order. This applies
//     to every eCom callback (Express RESERVE callbacks included) and every
//     ePayment webhook delivery, on top of CallbackMode and WebhookMode.
//     Express's shippingDetails call and consent removal are dropped,
//     duplicated and delayed too (not reordered: each is a single synchronous
//     call); a dropped shippingDetails call fails the user's approval.
//   - latency: every API answer comes late. The request takes effect at once,
//     so a client that times out has still had its capture carried out.
//   - freeze ([Server.Freeze], [Server.Thaw]): API requests are read and held
//     unanswered; at thaw each is carried out, one at a time in arrival order,
//     even if its client gave up long ago, as the real queue did. Sending
//     SIGSTOP and SIGCONT to the command gives the same from outside.
//
// The /_sim/ controls are never delayed or held.
//
// # Choices where Vipps documents nothing
//
//   - Initiate is documented as not idempotent, and the spec lists no
//     X-Request-Id for it. The simulator honours one anyway, keyed by orderId
//     and request id: the same orderId, request id and body get the first
//     answer; the same orderId and request id with another body get 409
//     VippsError 93; the same orderId without that request id gets 409
//     Merchant 34, as from Vipps. A merchant must still handle 34 after a lost
//     initiate answer (by reading /details), since real Vipps may answer it.
//   - Only successful answers are remembered for replay: a request id whose
//     first attempt was refused (for example 61, amount too high) may be used
//     again and is then carried out as new.
//   - A replay is answered whatever happened to the payment since (the first
//     answer, not the current state), as an idempotency store does.
//   - POST /ecomm/v2/payments/ (with a trailing slash, as the official Postman
//     collection sends it) is initiate; every other path must be canonical.
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
//     shippingDetails call to the merchant (ShippingCostAndMethod, with
//     addressLine2 null when empty, as the guide's example; an address
//     without a first line, a city and a 4-digit postcode is refused before
//     it), the RESERVE callback with
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
//	GET  /_sim/operations[?orderId=...]    the operations log ([Operation]), oldest first
//	GET  /_sim/faults                      the faults in force ([Faults]) plus "frozen" and "held"
//	PUT  /_sim/faults                      body [Faults], e.g. {"callbacks":{"drop":0.3,"duplicate":0.1,
//	                                       "delay":"0s..2s","reorder":true},"latency":"0s..500ms","seed":42}
//	DELETE /_sim/faults                    no faults (held reorder batches are sent)
//	POST /_sim/freeze                      hold API requests unanswered
//	POST /_sim/thaw                        carry out the held requests in arrival order
//	POST /_sim/ledger/close                close the open ledger date: optional body
//	                                       {"merchantSerialNumber":"123456"} (default: every ledger);
//	                                       answers the closed days ([ClosedDay]): sums, fees, payout
//	GET  /_sim/ledger[?merchantSerialNumber=...]  the whole ledger ([LedgerSnapshot]), shown or not
//	PUT  /_sim/ledger/config               body [LedgerConfig], e.g. {"captureFee":400,
//	                                       "captureFeeBasisPoints":0,"gross":false,"pageSize":1000}
//
// The ledger's faults are part of [Faults]: {"ledger":{"unknownReference":true}}
// adds a capture for a reference no payment has to every day closed,
// {"ledger":{"dropCapture":0.5}} leaves a share of captures off the ledger,
// {"ledger":{"delayDay":true}} holds the Report API back (days closed answer
// 404, new entries stay off the feed) until it is cleared.
//
// Snapshots give amounts in øre: authorizedAmount, capturedAmount,
// refundedAmount, cancelledAmount (and the remaining amounts); the ePayment
// snapshot (GET /_sim/epayments/{reference}) has the same four.
//
// Controls answer 204 on success (PUT /_sim/faults answers like GET), and
// {"error": "..."} with 404 for an unknown orderId, 409 when the payment is no
// longer pending, 400 otherwise.
package vippssim
