// Package shopkit is an example kasse platform adapter for ShopKit, a made-up hosted shop platform,
// written the way an integrator would: outside kasse's own packages, using only package adapters, and
// registered by a blank import (see ../cmd/kasse). It owns nothing in kasse.
//
// ShopKit, as this example imagines it:
//
//   - Webhooks POST JSON with X-ShopKit-Event (order.payment_requested, order.shipped, order.cancelled,
//     order.refunded, ping), X-ShopKit-Delivery (a UUID kept on retries) and X-ShopKit-Signature:
//     "sha256=" + hex(HMAC-SHA256(secret, raw body)).
//   - Money is integer cents ("total_cents"); order ids are strings such as "SK-1001".
//   - Status updates go to POST {baseUrl}/v1/orders/{id}/payment-status with
//     Authorization: Bearer <access token> and X-ShopKit-Store: <store id>.
//
// Merchant config (platform section): kind "shopkit", webhookSecretEnv, baseUrl, accessTokenEnv, and
// options.storeId (required, digits).
package shopkit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/payment"
)

// ID is the platform kind merchants configure.
const ID = "shopkit"

func init() {
	adapters.Register(adapters.Info{ID: ID, New: func() adapters.Adapter { return Adapter{} }})
}

// Adapter is the ShopKit adapter; the zero value is ready to use and safe for concurrent use.
type Adapter struct{}

// Interface guards: the compiler checks the interfaces the adapter claims.
var (
	_ adapters.Adapter   = Adapter{}
	_ adapters.Validator = Adapter{}
)

// Verify checks X-ShopKit-Signature in constant time, with the current and (during a rotation) the
// previous secret.
func (Adapter) Verify(d *adapters.Delivery) error {
	sig, ok := strings.CutPrefix(d.Header.Get("X-ShopKit-Signature"), "sha256=")
	if !ok {
		return adapters.Unauthorized("shopkit: no X-ShopKit-Signature header")
	}
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return adapters.Unauthorized("shopkit: malformed X-ShopKit-Signature")
	}
	secrets := adapters.Secrets(d.Merchant)
	if len(secrets) == 0 {
		return adapters.Unauthorized("shopkit: merchant %s has no webhook secret", d.Merchant.ID)
	}
	match := false
	for _, s := range secrets {
		mac := hmac.New(sha256.New, []byte(s.Reveal()))
		mac.Write(d.Body)
		match = hmac.Equal(mac.Sum(nil), got) || match
	}
	if !match {
		return adapters.Unauthorized("shopkit: X-ShopKit-Signature does not match the body")
	}
	return nil
}

type order struct {
	ID          string `json:"id"`
	Number      string `json:"number"`
	TotalCents  *int64 `json:"total_cents"`
	Currency    string `json:"currency"`
	ThankYouURL string `json:"thank_you_url"`
	Customer    struct {
		Phone string `json:"phone"`
	} `json:"customer"`
	Items []struct {
		SKU       string `json:"sku"`
		Title     string `json:"title"`
		Qty       int64  `json:"qty"`
		UnitCents int64  `json:"unit_cents"`
	} `json:"items"`
}

type delivery struct {
	Order  *order `json:"order"`
	Refund *struct {
		ID          string `json:"id"`
		AmountCents int64  `json:"amount_cents"`
	} `json:"refund"`
}

var orderID = regexp.MustCompile(`^SK-[0-9]{1,18}$`)

// Parse translates a verified delivery.
func (Adapter) Parse(d *adapters.Delivery) (*adapters.Event, error) {
	event := d.Header.Get("X-ShopKit-Event")
	ev := &adapters.Event{Topic: event, DeliveryID: d.Header.Get("X-ShopKit-Delivery")}
	if event == "ping" {
		ev.Action = adapters.ActionPing
		return ev, nil
	}
	switch event {
	case "order.payment_requested", "order.shipped", "order.cancelled", "order.refunded":
	default:
		ev.Action, ev.Reason = adapters.ActionIgnore, fmt.Sprintf("event %q is not used by kasse", event)
		return ev, nil
	}
	var body delivery
	dec := json.NewDecoder(bytes.NewReader(d.Body))
	if err := dec.Decode(&body); err != nil {
		return nil, &adapters.InputError{Detail: "not a ShopKit delivery: " + err.Error()}
	}
	if body.Order == nil {
		return nil, &adapters.InputError{Pointer: "/order", Detail: "is required"}
	}
	o := body.Order
	if !orderID.MatchString(o.ID) {
		return nil, &adapters.InputError{Pointer: "/order/id", Detail: "must be a ShopKit order id such as SK-1001"}
	}
	ev.Reference = o.ID
	switch event {
	case "order.payment_requested":
		if o.TotalCents == nil || *o.TotalCents <= 0 {
			return nil, &adapters.InputError{Pointer: "/order/total_cents", Detail: "must be a positive number of cents"}
		}
		co := &payment.Checkout{Merchant: d.Merchant.ID, Reference: o.ID, Amount: *o.TotalCents, Currency: o.Currency,
			Description: adapters.Text("ShopKit order "+o.Number, 100), ReturnURL: o.ThankYouURL}
		if phone := adapters.NorwegianMobile(o.Customer.Phone); phone != "" {
			co.Customer = &payment.Customer{PhoneNumber: phone}
		}
		for _, it := range o.Items {
			if it.Qty > 0 && it.UnitCents >= 0 && adapters.Text(it.Title, 255) != "" {
				co.Lines = append(co.Lines, payment.Line{SKU: adapters.Text(it.SKU, 100), Name: adapters.Text(it.Title, 255),
					Quantity: it.Qty, UnitPrice: it.UnitCents})
			}
		}
		ev.Action, ev.Checkout = adapters.ActionCheckout, co
	case "order.shipped":
		ev.Action, ev.Key, ev.Text = adapters.ActionCapture, "capture", "ShopKit order "+o.Number+" shipped"
	case "order.cancelled":
		ev.Action, ev.Key = adapters.ActionCancel, "cancel"
	case "order.refunded":
		if body.Refund == nil || body.Refund.ID == "" || body.Refund.AmountCents <= 0 {
			return nil, &adapters.InputError{Pointer: "/refund", Detail: "needs an id and a positive amount_cents"}
		}
		ev.Action, ev.Amount, ev.Key = adapters.ActionRefund, body.Refund.AmountCents, "refund:"+body.Refund.ID
	}
	return ev, nil
}

// Render tells ShopKit about a payment outcome with one POST.
func (Adapter) Render(m adapters.Merchant, u adapters.StatusUpdate) ([]adapters.Request, error) {
	switch u.Status {
	case adapters.StatusPaid, adapters.StatusCaptured, adapters.StatusFailed, adapters.StatusCancelled, adapters.StatusRefunded,
		adapters.StatusSettled:
	default:
		return nil, fmt.Errorf("shopkit: unknown status %q", u.Status)
	}
	if m.Platform == nil || !orderID.MatchString(u.Reference) {
		return nil, fmt.Errorf("shopkit: cannot address order %q of merchant %s", u.Reference, m.ID)
	}
	b, err := json.Marshal(map[string]any{"status": u.Status, "psp": "vipps", "psp_reference": u.ProviderReference,
		"amount_cents": u.Amount, "currency": u.Currency, "message": u.Reason})
	if err != nil {
		return nil, fmt.Errorf("shopkit: encode status: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Authorization", "Bearer "+m.Platform.AccessToken.Reveal())
	h.Set("X-ShopKit-Store", m.Platform.Options["storeId"])
	return []adapters.Request{{Method: http.MethodPost, Header: h, Body: b,
		URL: m.Platform.BaseURL + "/v1/orders/" + url.PathEscape(u.Reference) + "/payment-status"}}, nil
}

var digits = regexp.MustCompile(`^[0-9]{1,12}$`)

// Validate checks the merchant's ShopKit settings when kasse starts.
func (Adapter) Validate(m adapters.Merchant) error {
	var errs []error
	if m.Platform.BaseURL == "" {
		errs = append(errs, &adapters.FieldError{Field: "baseUrl", Detail: "shopkit needs the ShopKit API URL"})
	}
	if m.Platform.AccessTokenEnv == "" {
		errs = append(errs, &adapters.FieldError{Field: "accessTokenEnv", Detail: "shopkit needs an API access token"})
	}
	if !digits.MatchString(m.Platform.Options["storeId"]) {
		errs = append(errs, &adapters.FieldError{Field: "options/storeId", Detail: "shopkit needs the numeric store id"})
	}
	return errors.Join(errs...)
}
