// Package demoshop is the small web shop that `make run` serves next to kasse: a product list, a product
// page with a "Pay with Vipps" button, a thank-you page, and a merchant view that ships (captures), cancels
// and refunds orders. It shows an integrator's side of kasse: it talks to kasse's HTTP API only, from the
// server, with the merchant's API key, exactly as a real shop would.
//
// The package owns the shop's in-memory orders, its HTML pages and its small client of kasse's API. It
// owns no payment logic: every payment state it shows is read from kasse, and every amount is integer øre.
//
// # Flow
//
//  1. GET /products/{sku} shows the product with a quantity field and the "Pay with Vipps" button.
//  2. POST /checkout creates an order ("1001", "1002", ...), calls POST /v1/checkouts with an
//     Idempotency-Key derived from the order id, and 303-redirects the browser to the checkout's
//     redirectUrl (the Vipps landing page). When the customer gave a phone number, kasse's ePayment plugin
//     starts the payment with a push message to the Vipps app (PUSH_MESSAGE) and answers without a
//     redirectUrl: the shop then sends the browser to GET /orders/{id}/confirm, "Confirm the payment in
//     your Vipps app", which reloads itself every 3 seconds (a meta refresh, no JavaScript) until kasse
//     says the payment is no longer pending, and then redirects to the thank-you page.
//  3. After paying, kasse sends the browser to the returnUrl, GET /orders/{id}/thanks, which reads the
//     payment state from kasse (never from the kasse_state query parameter, which anyone can type).
//  4. GET /orders and GET /orders/{id} are the merchant view; its buttons POST to
//     /orders/{id}/capture, /orders/{id}/cancel and /orders/{id}/refund, which call kasse and redirect back
//     to the order with the outcome.
//  5. Once kasse has read the payment off the merchant's Vipps ledger (settlement following), the order
//     page shows its settlement: ledger date, captured, refunded, fees, net, and the payout with its bank
//     reference and expected date.
//
// # Express Checkout
//
// With Config.ExpressFromKasse (the command sets it) every product page asks kasse, GET
// /v1/express/{merchant}, whether the merchant's expressCheckout is on, and shows the "Vipps Express
// Checkout" button only then, so switching it in kasse's config file takes effect without a restart. The
// button posts the same form with flow=express; the shop starts the payment with POST
// /v1/express/{merchant} and the cart, and the customer chooses address and shipping in Vipps. The
// thank-you and order pages show the customer, the address, the shipping method and its cost, and the
// total with shipping, as kasse read them from Vipps.
//
// # Demo limitations
//
// Orders live in memory and are lost when the shop stops; order numbers start again at 1001. The merchant
// view has no login: anyone who can reach the shop can capture, cancel and refund, which is why the command
// listens on loopback by default. There is no CSRF token: POSTs are guarded only by [http.CrossOriginProtection]
// (Sec-Fetch-Site and Origin headers), which old browsers that send neither do not get. Thank-you pages are
// found by sequential order numbers. A real shop needs authentication for the merchant view, CSRF tokens,
// unguessable order references and durable storage.
package demoshop
