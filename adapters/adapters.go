// Package adapters owns the seam between webshop platforms and kasse: the small Adapter interface every
// platform implements, the registry adapters add themselves to from init (as database/sql drivers and
// Caddy modules do), the canonical events a delivery translates into, the status updates kasse sends
// back, and the helpers every adapter needs (exact money parsing, constant-time HMAC checks).
//
// The host knows no adapter by name. adapters/standard blank-imports the built-in ones (woocommerce,
// shopify, generic); a third-party adapter is one more blank import (see examples/adapter-shopkit). The
// HTTP side lives in host/hooks, the outgoing status updates in host/notify.
//
// An adapter is pure translation: it does no I/O, keeps no state between calls and never sees the
// checkout service. It gets a Merchant on every call: the merchant's id and its own platform section with
// the platform's secrets resolved, never the payment provider's settings or secrets.
//
// The package imports nothing of kasse's but host/payment (the canonical checkout and session types that
// an Event and a StatusUpdate carry); layering_test.go enforces that, and that no host package below the
// host itself and its commands depends on an adapter implementation.
//
// See README.md in this directory for how to write one.
package adapters

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/kassehq/kasse/host/payment"
)

// Action is what a delivery asks kasse to do, in canonical terms.
type Action string

// The actions a delivery classifies into.
const (
	// ActionIgnore: nothing to do (another gateway, a draft order, a topic kasse does not use).
	ActionIgnore Action = "ignore"
	// ActionPing: the platform checks the endpoint; answer 200 and do nothing.
	ActionPing Action = "ping"
	// ActionCheckout: the shop wants payment for an order; Event.Checkout is set.
	ActionCheckout Action = "checkout"
	// ActionExpressCheckout: the shop wants an Express Checkout (Vipps Hurtigkasse) for a cart, the
	// customer choosing address and shipping inside Vipps; Event.Checkout is set and carries the cart's
	// Lines, from which shipping is computed. kasse refuses it when the merchant's expressCheckout is off.
	ActionExpressCheckout Action = "express"
	// ActionCapture: the order was completed or shipped; capture Event.Amount (0 = all that is left).
	ActionCapture Action = "capture"
	// ActionCancel: the order was cancelled; release the reservation.
	ActionCancel Action = "cancel"
	// ActionRefund: money goes back to the customer; see Event.Amount and Event.AmountIsTotal.
	ActionRefund Action = "refund"
)

// Delivery is one request from a platform, as received: headers and the raw body bytes on which the
// signature is checked.
type Delivery struct {
	// Merchant is the merchant the delivery is addressed to, with its platform settings and secrets.
	Merchant Merchant
	// Header holds the request headers (canonical keys; look them up with Header.Get).
	Header http.Header
	// Body is the raw request body, never re-encoded.
	Body []byte
	// Sync is true on the synchronous checkout route, POST /hooks/{adapter}/{merchant}/checkout, where
	// the shop's payment step waits for the Vipps redirect URL.
	Sync bool
	// ReceivedAt is when kasse received the delivery (for timestamped signature schemes).
	ReceivedAt time.Time
}

// Event is a verified delivery translated into canonical terms.
type Event struct {
	// Action is what to do.
	Action Action `json:"action"`
	// Topic is the platform's own name of the event, for logs, e.g. "order.updated".
	Topic string `json:"topic,omitempty"`
	// DeliveryID is the platform's id of this delivery, the same on every retry of it (Shopify's
	// X-Shopify-Webhook-Id). A repeated DeliveryID is dropped. Empty when the platform has none that is
	// reliable (WooCommerce).
	DeliveryID string `json:"deliveryId,omitempty"`
	// Reference is the platform's order id, exactly as the platform wrote it; it is the checkout's
	// Reference and how later events find the session.
	Reference string `json:"reference,omitempty"`
	// Checkout is the canonical checkout, for ActionCheckout and ActionExpressCheckout.
	Checkout *payment.Checkout `json:"checkout,omitempty"`
	// Amount is the amount to capture or refund in minor units; 0 means all that is left.
	Amount int64 `json:"amount,omitempty"`
	// AmountIsTotal says Amount is the order's total refunded so far (WooCommerce sends the whole order),
	// so kasse refunds the difference to what it already refunded.
	AmountIsTotal bool `json:"amountIsTotal,omitempty"`
	// Text is the capture or refund text; empty for kasse's default.
	Text string `json:"text,omitempty"`
	// Key names the business operation for idempotency (e.g. "refund:4711"); deliveries with the same
	// Key for the same session are applied once.
	Key string `json:"key,omitempty"`
	// Reason says why a delivery is ignored, for logs and the response body.
	Reason string `json:"reason,omitempty"`
}

// Status is what kasse tells a platform about an order's payment.
type Status string

// The statuses kasse reports.
const (
	// StatusPaid: the payment is reserved (authorized); the order can be fulfilled.
	StatusPaid Status = "paid"
	// StatusCaptured: money was captured (at fulfilment).
	StatusCaptured Status = "captured"
	// StatusFailed: the payment failed, was rejected by the customer or expired.
	StatusFailed Status = "failed"
	// StatusCancelled: the reservation was cancelled.
	StatusCancelled Status = "cancelled"
	// StatusRefunded: money was refunded.
	StatusRefunded Status = "refunded"
	// StatusSettled: the merchant's ledger scheduled the payment's money for payout; Settlement says
	// what was settled (captured, refunded, fees, net, payout reference and date).
	StatusSettled Status = "settled"
)

// StatusUpdate is one payment outcome to report to the platform.
type StatusUpdate struct {
	Status Status `json:"status"`
	// Reference is the platform's order id (the session's Reference).
	Reference string `json:"reference"`
	// Session is kasse's session id.
	Session string `json:"session"`
	// ProviderReference is the Vipps reference (orderId) of the payment, the transaction id.
	ProviderReference string `json:"providerReference"`
	// Amount is the amount this update is about, in minor units: the reserved amount for paid, the
	// amount moved for captured and refunded.
	Amount int64 `json:"amount"`
	// Currency of Amount.
	Currency string `json:"currency"`
	// Reason explains a failed payment.
	Reason string `json:"reason,omitempty"`
	// DeliveryID identifies this update and is the same on every resend: a receiver that has seen it
	// drops the delivery. kasse also sends it as the Kasse-Delivery-Id header on every request.
	DeliveryID string `json:"deliveryId,omitempty"`
	// Sequence numbers the session's updates 1, 2, 3, ... in the order the changes happened (header
	// Kasse-Sequence): a receiver that already applied a higher one got this one late.
	Sequence int64 `json:"sequence,omitempty"`
	// State is the session's state after the change.
	State payment.State `json:"state,omitempty"`
	// Totals are the session's absolute amounts after the change, in minor units: applying them is
	// idempotent, unlike adding Amount.
	Totals *payment.Amounts `json:"totals,omitempty"`
	// Settlement is set on StatusSettled updates.
	Settlement *payment.Settlement `json:"settlement,omitempty"`
}

// Request is one HTTP request to a platform. Adapters render them; host/notify sends them.
type Request struct {
	Method string
	// URL is absolute.
	URL    string
	Header http.Header
	Body   []byte
	// Accept judges a 2xx answer's body (e.g. GraphQL errors inside a 200). Nil accepts every 2xx.
	// An error wrapping ErrRetry is retried; any other error gives the update up.
	Accept func(status int, body []byte) error
}

// ErrRetry marks an error from Request.Accept that a later retry may fix (rate limiting).
var ErrRetry = errors.New("retry later")

// Adapter translates one platform's deliveries and status updates. Implementations must be safe for
// concurrent use and must not panic on any input; adaptertest.Run checks both.
type Adapter interface {
	// Verify checks that the delivery comes from the platform: its signature over the raw body with the
	// merchant's secret (or previous secret, during a rotation), in constant time. It returns an error
	// wrapping ErrUnauthorized otherwise. It runs before any parsing.
	Verify(d *Delivery) error
	// Parse classifies a verified delivery and translates it into an Event. A body that cannot be
	// understood is an *InputError; a delivery that needs nothing is an Event with ActionIgnore.
	Parse(d *Delivery) (*Event, error)
	// Render turns a status update into the HTTP requests that tell the platform, in order. No
	// requests (and no error) means the platform needs no update for this status.
	Render(m Merchant, u StatusUpdate) ([]Request, error)
}

// Validator is implemented by adapters that check a merchant's platform settings when kasse starts.
// Validate returns nil or an error; errors of type *FieldError (alone or joined with errors.Join) are
// reported at the field's JSON pointer.
type Validator interface {
	Validate(m Merchant) error
}

// Mode says how the hooks handler runs an adapter's deliveries.
type Mode int

const (
	// ModeSync processes a delivery before answering, and answers with the result (the WooCommerce
	// webhooks and checkout hook, the generic hook). A repeated DeliveryID is refused with 409.
	ModeSync Mode = iota
	// ModeAckFirst verifies, drops duplicates, stores the delivery in the durable inbox and answers 200
	// at once; the work is done after (Shopify, which allows 5 s and retries for hours otherwise).
	ModeAckFirst
)

// Info registers an adapter.
type Info struct {
	// ID is the platform kind used in config (platform.kind) and in the hook path /hooks/{ID}/...:
	// lowercase letters, digits, '.', '_' and '-', starting with a letter.
	ID string
	// New returns the adapter. It is called once per host.
	New func() Adapter
	// Mode says how deliveries are run; default ModeSync.
	Mode Mode
}

var (
	registryMu sync.Mutex
	registry   = map[string]Info{}
	idPattern  = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,62}$`)
)

// Register adds an adapter. Call it from an init function. It panics on an invalid or duplicate ID or a
// nil New, so that a broken build fails at start-up rather than at the first webhook.
func Register(info Info) {
	if !idPattern.MatchString(info.ID) {
		panic(fmt.Sprintf("adapters: register: invalid adapter id %q", info.ID))
	}
	if info.New == nil {
		panic(fmt.Sprintf("adapters: register %s: New is nil", info.ID))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[info.ID]; dup {
		panic(fmt.Sprintf("adapters: register: adapter %s already registered", info.ID))
	}
	registry[info.ID] = info
}

// Registered returns the registered adapters sorted by ID: a snapshot the host takes once at start-up.
func Registered() []Info {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]Info, 0, len(registry))
	for _, info := range registry {
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Instances builds each adapter of set once, by ID.
func Instances(set []Info) map[string]Instance {
	out := make(map[string]Instance, len(set))
	for _, info := range set {
		out[info.ID] = Instance{Info: info, Adapter: info.New()}
	}
	return out
}

// Instance is a built adapter with its registration.
type Instance struct {
	Info
	Adapter Adapter
}

// FieldError is a problem with one platform setting, reported by a Validator.
type FieldError struct {
	// Field is the platform setting's JSON name, e.g. "baseUrl" or "options/storeId".
	Field string
	// Detail says what is wrong; never a secret's value.
	Detail string
}

// Error returns "field: detail".
func (e *FieldError) Error() string { return e.Field + ": " + e.Detail }
