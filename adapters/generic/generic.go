// Package generic is kasse's adapter for custom shops: the canonical JSON hook, signed with kasse's own
// scheme. It registers itself as "generic".
//
// # Signature
//
// Every delivery carries
//
//	Kasse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + raw body)>
//
// More than one v1 may be given (a sender signing with the old and the new secret during a rotation);
// one valid v1 is enough. A timestamp more than Tolerance away from kasse's clock is refused, and the
// hooks handler remembers every accepted signature (72 hours by default) and refuses it again, so a
// captured delivery cannot be replayed. kasse signs the status updates it POSTs to the shop the same way.
//
// # Body
//
//	{"type": "checkout", "checkout": {canonical checkout, see schemas/checkout.schema.json}}
//	{"type": "express", "checkout": {canonical checkout with its cart "lines"}}
//	{"type": "capture" | "refund" | "cancel", "reference": "<order reference>",
//	 "amount": <minor units, 0 or omitted = all that is left>, "text": "...", "key": "<idempotency key>"}
//
// Unknown fields are refused. The checkout's merchant may be omitted; if given it must be the merchant in
// the path. "express" is an Express Checkout (Vipps Hurtigkasse), e.g. from a product page's button: the
// customer chooses address and shipping inside Vipps, so the checkout must carry the cart's lines, from
// which shipping is computed; kasse refuses it (403) when the merchant's expressCheckout is off.
package generic

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/payment"
)

// ID is the adapter's registered id.
const ID = "generic"

// SignatureHeader is the header kasse's signature scheme uses.
const SignatureHeader = "Kasse-Signature"

// Tolerance is how far a delivery's timestamp may be from kasse's clock.
const Tolerance = 5 * time.Minute

func init() {
	adapters.Register(adapters.Info{ID: ID, New: func() adapters.Adapter { return Adapter{} }, Mode: adapters.ModeSync})
}

// Adapter is the generic adapter. The zero value is ready to use; Now, if set, is its clock for
// rendering signatures (default time.Now).
type Adapter struct {
	Now func() time.Time
}

// Interface guards.
var _ adapters.Adapter = Adapter{}

// Sign returns the Kasse-Signature header value for body at time t with secret.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// signature is a parsed Kasse-Signature header.
type signature struct {
	ts  string
	at  time.Time
	v1s []string
}

func parseSignature(h string) (signature, error) {
	var s signature
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return s, errors.New("malformed Kasse-Signature")
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 || s.ts != "" {
				return s, errors.New("malformed Kasse-Signature timestamp")
			}
			s.ts, s.at = v, time.Unix(n, 0)
		case "v1":
			if len(v) != 2*sha256.Size || len(s.v1s) >= 4 {
				return s, errors.New("malformed Kasse-Signature v1")
			}
			s.v1s = append(s.v1s, strings.ToLower(v))
		}
	}
	if s.ts == "" || len(s.v1s) == 0 {
		return s, errors.New("Kasse-Signature needs t= and v1=")
	}
	return s, nil
}

// Verify implements adapters.Adapter.
func (Adapter) Verify(d *adapters.Delivery) error {
	h := d.Header.Get(SignatureHeader)
	if h == "" {
		return adapters.Unauthorized("generic: no %s header", SignatureHeader)
	}
	sig, err := parseSignature(h)
	if err != nil {
		return adapters.Unauthorized("generic: %v", err)
	}
	now := d.ReceivedAt
	if now.IsZero() {
		now = time.Now()
	}
	if skew := now.Sub(sig.at); skew > Tolerance || skew < -Tolerance {
		return adapters.Unauthorized("generic: signature timestamp is %s away from kasse's clock (tolerance %s)",
			skew.Round(time.Second), Tolerance)
	}
	secrets := adapters.Secrets(d.Merchant)
	if len(secrets) == 0 {
		return adapters.Unauthorized("generic: merchant %s has no webhook secret", d.Merchant.ID)
	}
	ok := false
	for _, s := range secrets {
		want := []byte(mac([]byte(s.Reveal()), sig.ts, d.Body))
		for _, v1 := range sig.v1s {
			if hmac.Equal(want, []byte(v1)) {
				ok = true
			}
		}
	}
	if !ok {
		return adapters.Unauthorized("generic: Kasse-Signature does not match the body")
	}
	return nil
}

// body is the generic hook's request body.
type body struct {
	Type      string          `json:"type"`
	Checkout  json.RawMessage `json:"checkout,omitempty"`
	Reference string          `json:"reference,omitempty"`
	Amount    *int64          `json:"amount,omitempty"`
	Text      string          `json:"text,omitempty"`
	Key       string          `json:"key,omitempty"`
}

// Parse implements adapters.Adapter.
func (Adapter) Parse(d *adapters.Delivery) (*adapters.Event, error) {
	var b body
	if err := strict(d.Body, &b); err != nil {
		return nil, err
	}
	ev := &adapters.Event{Topic: b.Type, Text: b.Text}
	if sig, err := parseSignature(d.Header.Get(SignatureHeader)); err == nil {
		// Replay protection: the hooks handler refuses a signature it has seen.
		ev.DeliveryID = "sig:" + sig.v1s[0]
	}
	if b.Type == "checkout" || b.Type == "express" {
		if len(b.Checkout) == 0 {
			return nil, &adapters.InputError{Pointer: "/checkout", Detail: "is required for type " + b.Type}
		}
		var co payment.Checkout
		if err := strict(b.Checkout, &co); err != nil {
			var ie *adapters.InputError
			if errors.As(err, &ie) && ie.Pointer != "" {
				ie.Pointer = "/checkout" + ie.Pointer
			}
			return nil, err
		}
		if co.Merchant == "" {
			co.Merchant = d.Merchant.ID
		}
		if co.Merchant != d.Merchant.ID {
			return nil, &adapters.InputError{Pointer: "/checkout/merchant", Detail: fmt.Sprintf(
				"must be %q, the merchant in the path", d.Merchant.ID)}
		}
		ev.Action, ev.Checkout, ev.Reference, ev.Key = adapters.ActionCheckout, &co, co.Reference, b.Key
		if b.Type == "express" {
			if len(co.Lines) == 0 {
				return nil, &adapters.InputError{Pointer: "/checkout/lines",
					Detail: "is required for type express: shipping is computed from the cart's lines"}
			}
			ev.Action = adapters.ActionExpressCheckout
		}
		return ev, nil
	}
	switch b.Type {
	case "capture":
		ev.Action = adapters.ActionCapture
	case "refund":
		ev.Action = adapters.ActionRefund
	case "cancel":
		ev.Action = adapters.ActionCancel
	case "":
		return nil, &adapters.InputError{Pointer: "/type", Detail: "is required"}
	default:
		return nil, &adapters.InputError{Pointer: "/type", Detail: "must be one of checkout, express, capture, refund, cancel"}
	}
	if b.Reference == "" {
		return nil, &adapters.InputError{Pointer: "/reference", Detail: "is required for type " + b.Type}
	}
	if b.Amount != nil {
		if *b.Amount < 0 {
			return nil, &adapters.InputError{Pointer: "/amount", Detail: "must be >= 0 (minor units; 0 means all that is left)"}
		}
		ev.Amount = *b.Amount
	}
	ev.Reference, ev.Key = b.Reference, b.Key
	if ev.Key == "" {
		ev.Key = b.Type + ":" + strconv.FormatInt(ev.Amount, 10)
	}
	return ev, nil
}

func strict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return &adapters.InputError{Pointer: "/" + strings.ReplaceAll(te.Field, ".", "/"),
				Detail: "must be a JSON " + te.Type.String() + ", got " + te.Value}
		}
		if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			f, _ := strconv.Unquote(field)
			return &adapters.InputError{Pointer: "/" + f, Detail: "unknown field"}
		}
		return &adapters.InputError{Detail: "not a JSON object: " + err.Error()}
	}
	if dec.More() {
		return &adapters.InputError{Detail: "trailing data after the JSON object"}
	}
	return nil
}

// statusBody is what kasse POSTs to the shop's baseUrl.
type statusBody struct {
	Type string `json:"type"`
	adapters.StatusUpdate
}

// Render implements adapters.Adapter: a signed POST of {"type":"status", ...the update} to the
// platform's baseUrl, or nothing when no baseUrl is configured.
func (a Adapter) Render(m adapters.Merchant, u adapters.StatusUpdate) ([]adapters.Request, error) {
	switch u.Status {
	case adapters.StatusPaid, adapters.StatusCaptured, adapters.StatusFailed, adapters.StatusCancelled, adapters.StatusRefunded,
		adapters.StatusSettled:
	default:
		return nil, fmt.Errorf("generic: unknown status %q", u.Status)
	}
	if m.Platform == nil || m.Platform.BaseURL == "" {
		return nil, nil
	}
	b, err := json.Marshal(statusBody{Type: "status", StatusUpdate: u})
	if err != nil {
		return nil, fmt.Errorf("generic: encode status: %w", err)
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(SignatureHeader, Sign([]byte(m.Platform.WebhookSecret.Reveal()), now(), b))
	return []adapters.Request{{Method: http.MethodPost, URL: m.Platform.BaseURL, Header: h, Body: b}}, nil
}
