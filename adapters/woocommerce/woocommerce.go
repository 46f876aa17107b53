// Package woocommerce is kasse's adapter for WooCommerce shops. It registers itself as "woocommerce".
//
// Inbound: WooCommerce webhooks (POST /hooks/woocommerce/{merchant}) are signed with
// X-WC-Webhook-Signature, base64(HMAC-SHA256(secret, raw body)), the secret first HTML-entity-decoded as
// WooCommerce does. The ping WooCommerce sends when a webhook is created (form body "webhook_id=N", no
// signature) is answered 200 and does nothing. order.created with the merchant's gateway and a payable
// status (pending, on-hold) starts a checkout; a checkout-draft order does not. order.updated to the
// capture status (default "completed") captures, to "cancelled" cancels, and refunds on the order refund
// the difference to what kasse refunded. order.deleted (trashed) cancels. The synchronous checkout hook
// (POST /hooks/woocommerce/{merchant}/checkout, same order JSON and signature) starts the checkout and
// answers with the Vipps redirect URL.
//
// Outbound: WooCommerce REST API v3, PUT /wp-json/wc/v3/orders/{id} (status, set_paid, transaction_id,
// meta_data) and POST /wp-json/wc/v3/orders/{id}/notes for an order note, authenticated as WooCommerce's
// WC_REST_Authentication expects: over https with the consumer key and secret as HTTP Basic
// authentication; over plain http (which the config allows for loopback shops only) with OAuth 1.0a
// "one-legged" HMAC-SHA256 parameters in the query string, because WooCommerce refuses Basic over http.
package woocommerce

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/payment"
)

// ID is the adapter's registered id.
const ID = "woocommerce"

func init() {
	adapters.Register(adapters.Info{ID: ID, New: func() adapters.Adapter { return Adapter{} }, Mode: adapters.ModeSync})
}

// Defaults of the merchant's platform settings.
const (
	DefaultGatewayID       = "vipps"
	DefaultCaptureOnStatus = "completed"
	DefaultPaidStatus      = "processing"
	DefaultFailedStatus    = "failed"
	// DefaultReturnPath is appended to baseUrl when returnUrl is not set.
	DefaultReturnPath = "/checkout/order-received/{id}/?key={key}"
)

// Adapter is the WooCommerce adapter. The zero value is ready to use.
type Adapter struct {
	// Now is the clock for OAuth timestamps (plain-http shops only). Default time.Now.
	Now func() time.Time
	// Nonce returns an OAuth nonce (plain-http shops only). Default: 32 random hex characters.
	Nonce func() string
}

// Interface guards.
var (
	_ adapters.Adapter   = Adapter{}
	_ adapters.Validator = Adapter{}
)

var pingBody = regexp.MustCompile(`^webhook_id=[0-9]{1,20}$`)

// isPing reports whether d is WooCommerce's unsigned creation ping.
func isPing(d *adapters.Delivery) bool {
	return d.Header.Get("X-WC-Webhook-Signature") == "" && pingBody.Match(bytes.TrimSpace(d.Body))
}

// wpSpecialcharsDecode undoes the HTML encoding WordPress may have stored the secret with, as
// wp_specialchars_decode($secret, ENT_QUOTES) does before WooCommerce signs.
var wpSpecialcharsDecode = strings.NewReplacer(
	"&lt;", "<", "&#060;", "<", "&#60;", "<",
	"&gt;", ">", "&#062;", ">", "&#62;", ">",
	"&quot;", `"`, "&#034;", `"`, "&#34;", `"`, "&#x22;", `"`,
	"&#039;", "'", "&#39;", "'", "&#x27;", "'",
	"&amp;", "&", "&#038;", "&", "&#38;", "&", "&#x26;", "&",
)

// Verify implements adapters.Adapter.
func (Adapter) Verify(d *adapters.Delivery) error {
	if isPing(d) {
		return nil
	}
	sig := d.Header.Get("X-WC-Webhook-Signature")
	if sig == "" {
		return adapters.Unauthorized("woocommerce: no X-WC-Webhook-Signature header")
	}
	var keys [][]byte
	for _, s := range adapters.Secrets(d.Merchant) {
		keys = append(keys, []byte(wpSpecialcharsDecode.Replace(s.Reveal())))
	}
	if len(keys) == 0 {
		return adapters.Unauthorized("woocommerce: merchant %s has no webhook secret", d.Merchant.ID)
	}
	if !adapters.ValidHMACBase64(d.Body, sig, keys...) {
		return adapters.Unauthorized("woocommerce: X-WC-Webhook-Signature does not match the body")
	}
	return nil
}

// order is the part of a WooCommerce REST v3 order kasse reads.
type order struct {
	ID            json.Number `json:"id"`
	Number        string      `json:"number"`
	OrderKey      string      `json:"order_key"`
	Status        string      `json:"status"`
	Currency      string      `json:"currency"`
	Total         string      `json:"total"`
	PaymentMethod string      `json:"payment_method"`
	Billing       struct {
		Phone string `json:"phone"`
	} `json:"billing"`
	LineItems []struct {
		Name     string `json:"name"`
		Quantity int64  `json:"quantity"`
		Total    string `json:"total"`
		TotalTax string `json:"total_tax"`
		SKU      string `json:"sku"`
	} `json:"line_items"`
	Refunds []struct {
		ID    json.Number `json:"id"`
		Total string      `json:"total"`
	} `json:"refunds"`
}

// settings are a merchant's platform settings with defaults applied.
type settings struct {
	gateway, captureOn, paid, failed, returnURL, baseURL string
}

func settingsOf(m adapters.Merchant) settings {
	s := settings{gateway: DefaultGatewayID, captureOn: DefaultCaptureOnStatus, paid: DefaultPaidStatus,
		failed: DefaultFailedStatus}
	if p := m.Platform; p != nil {
		s.baseURL = p.BaseURL
		s.returnURL = p.BaseURL + DefaultReturnPath
		s.gateway, s.captureOn = cmp.Or(p.GatewayID, s.gateway), cmp.Or(p.CaptureOnStatus, s.captureOn)
		s.paid, s.failed = cmp.Or(p.PaidStatus, s.paid), cmp.Or(p.FailedStatus, s.failed)
		s.returnURL = cmp.Or(p.ReturnURL, s.returnURL)
	}
	return s
}

// payable lists the order statuses a checkout can start from.
var payable = map[string]bool{"pending": true, "on-hold": true}

// drafts are orders that are not placed yet.
var drafts = map[string]bool{"checkout-draft": true, "draft": true, "auto-draft": true, "new": true}

// Parse implements adapters.Adapter.
func (Adapter) Parse(d *adapters.Delivery) (*adapters.Event, error) {
	if isPing(d) {
		return &adapters.Event{Action: adapters.ActionPing, Topic: "ping"}, nil
	}
	topic := d.Header.Get("X-WC-Webhook-Topic")
	if d.Sync {
		topic = "checkout"
	}
	switch topic {
	case "checkout", "order.created", "order.updated", "order.deleted":
	default:
		return &adapters.Event{Action: adapters.ActionIgnore, Topic: topic, Reason: "topic " + strconv.Quote(topic) + " is not used by kasse"}, nil
	}
	var o order
	if err := decode(d.Body, &o); err != nil {
		return nil, err
	}
	ref := o.ID.String()
	if !isOrderID(ref) {
		return nil, &adapters.InputError{Pointer: "/id", Detail: "must be a positive integer order id"}
	}
	ev := &adapters.Event{Topic: topic, Reference: ref}
	st := settingsOf(d.Merchant)
	if topic == "order.deleted" {
		// The body is only {"id": N}; a trashed order with a kasse payment releases it.
		ev.Action, ev.Key, ev.Text = adapters.ActionCancel, "cancel", "Order "+ref+" deleted"
		return ev, nil
	}
	if o.PaymentMethod != st.gateway {
		if d.Sync {
			return nil, &adapters.InputError{Pointer: "/payment_method", Detail: fmt.Sprintf(
				"the order's payment method %q is not the merchant's gateway %q", o.PaymentMethod, st.gateway)}
		}
		return ignore(ev, "payment method "+strconv.Quote(o.PaymentMethod)+" is not "+strconv.Quote(st.gateway)), nil
	}
	switch topic {
	case "checkout", "order.created":
		if !payable[o.Status] {
			if d.Sync {
				return nil, &adapters.InputError{Pointer: "/status", Detail: fmt.Sprintf(
					"an order in status %q cannot be paid (want pending or on-hold)", o.Status)}
			}
			if drafts[o.Status] {
				return ignore(ev, "draft order ("+o.Status+")"), nil
			}
			return ignore(ev, "order status "+strconv.Quote(o.Status)+" is not payable"), nil
		}
		co, err := checkoutOf(d.Merchant, st, &o)
		if err != nil {
			return nil, err
		}
		ev.Action, ev.Checkout = adapters.ActionCheckout, co
		return ev, nil
	}
	// order.updated
	var refunded int64
	for i, r := range o.Refunds {
		n, _, err := adapters.ParseSignedAmount(r.Total)
		if err != nil {
			return nil, &adapters.InputError{Pointer: "/refunds/" + strconv.Itoa(i) + "/total", Detail: err.Error()}
		}
		refunded += n
	}
	switch {
	case refunded > 0:
		ev.Action, ev.Amount, ev.AmountIsTotal = adapters.ActionRefund, refunded, true
		ev.Key, ev.Text = "refund-total:"+strconv.FormatInt(refunded, 10), "Refund for order "+o.Number
	case o.Status == st.captureOn:
		ev.Action, ev.Key, ev.Text = adapters.ActionCapture, "capture", "Order "+o.Number+" "+o.Status
	case o.Status == "cancelled":
		ev.Action, ev.Key, ev.Text = adapters.ActionCancel, "cancel", "Order "+o.Number+" cancelled"
	default:
		return ignore(ev, "order status "+strconv.Quote(o.Status)+" needs no payment operation"), nil
	}
	return ev, nil
}

func ignore(ev *adapters.Event, reason string) *adapters.Event {
	ev.Action, ev.Reason = adapters.ActionIgnore, reason
	return ev
}

func isOrderID(s string) bool {
	if s == "" || len(s) > 20 || s[0] == '0' {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func decode[T any](body []byte, v *T) error {
	if err := adapters.DecodeJSON(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return &adapters.InputError{Pointer: "/" + strings.ReplaceAll(te.Field, ".", "/"),
				Detail: "must be a JSON " + te.Type.String() + ", got " + te.Value}
		}
		return &adapters.InputError{Detail: "not a WooCommerce order: " + err.Error()}
	}
	return nil
}

func checkoutOf(m adapters.Merchant, st settings, o *order) (*payment.Checkout, error) {
	total, err := adapters.ParseAmount(o.Total)
	if err != nil {
		return nil, &adapters.InputError{Pointer: "/total", Detail: err.Error()}
	}
	number := o.Number
	if number == "" {
		number = o.ID.String()
	}
	co := &payment.Checkout{
		Merchant:    m.ID,
		Reference:   o.ID.String(),
		Amount:      total,
		Currency:    o.Currency,
		Description: adapters.Text("Order "+number, 100),
		ReturnURL:   returnURL(st.returnURL, url.PathEscape(o.ID.String()), url.QueryEscape(o.OrderKey)),
	}
	if phone := adapters.NorwegianMobile(o.Billing.Phone); phone != "" {
		co.Customer = &payment.Customer{PhoneNumber: phone}
	}
	for i, li := range o.LineItems {
		ptr := "/line_items/" + strconv.Itoa(i)
		lineTotal, err := adapters.ParseAmount(li.Total)
		if err != nil {
			return nil, &adapters.InputError{Pointer: ptr + "/total", Detail: err.Error()}
		}
		tax := int64(0)
		if li.TotalTax != "" {
			if tax, err = adapters.ParseAmount(li.TotalTax); err != nil {
				return nil, &adapters.InputError{Pointer: ptr + "/total_tax", Detail: err.Error()}
			}
		}
		name := adapters.Text(html.UnescapeString(li.Name), 255)
		if name == "" || li.Quantity <= 0 {
			continue
		}
		line := payment.Line{SKU: adapters.Text(li.SKU, 100), Name: name, Quantity: li.Quantity}
		gross := lineTotal + tax
		if gross%li.Quantity == 0 {
			line.UnitPrice = gross / li.Quantity
		} else {
			// Not divisible exactly: one line for the lot, so that money stays exact.
			line.Name = adapters.Text(strconv.FormatInt(li.Quantity, 10)+" × "+name, 255)
			line.Quantity, line.UnitPrice = 1, gross
		}
		co.Lines = append(co.Lines, line)
	}
	return co, nil
}

// returnURL fills the return URL template's {id} and {key} in one pass from the left, as
// strings.NewReplacer("{id}", id, "{key}", key).Replace(template) does, without building a replacer for
// every delivery.
func returnURL(template, id, key string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(template, '{')
		if i < 0 {
			b.WriteString(template)
			return b.String()
		}
		b.WriteString(template[:i])
		switch rest := template[i:]; {
		case strings.HasPrefix(rest, "{id}"):
			b.WriteString(id)
			template = rest[len("{id}"):]
		case strings.HasPrefix(rest, "{key}"):
			b.WriteString(key)
			template = rest[len("{key}"):]
		default:
			b.WriteByte('{')
			template = rest[1:]
		}
	}
}

// Render implements adapters.Adapter.
func (a Adapter) Render(m adapters.Merchant, u adapters.StatusUpdate) ([]adapters.Request, error) {
	if m.Platform == nil {
		return nil, fmt.Errorf("woocommerce: merchant %s has no platform settings", m.ID)
	}
	if !isOrderID(u.Reference) {
		return nil, fmt.Errorf("woocommerce: %q is not a WooCommerce order id", u.Reference)
	}
	st := settingsOf(m)
	orderURL := st.baseURL + "/wp-json/wc/v3/orders/" + u.Reference
	money := u.Currency + " " + adapters.FormatAmount(u.Amount)
	var update map[string]any
	var note string
	switch u.Status {
	case adapters.StatusPaid:
		update = map[string]any{"status": st.paid, "set_paid": true, "transaction_id": u.ProviderReference,
			"meta_data": []map[string]string{{"key": "_kasse_session", "value": u.Session},
				{"key": "_vipps_reference", "value": u.ProviderReference}}}
		note = fmt.Sprintf("Vipps payment of %s reserved (Vipps reference %s).", money, u.ProviderReference)
	case adapters.StatusCaptured:
		note = fmt.Sprintf("Vipps captured %s (Vipps reference %s).", money, u.ProviderReference)
	case adapters.StatusFailed:
		update = map[string]any{"status": st.failed}
		note = fmt.Sprintf("Vipps payment failed (Vipps reference %s): %s", u.ProviderReference, u.Reason)
	case adapters.StatusCancelled:
		update = map[string]any{"status": "cancelled"}
		note = fmt.Sprintf("Vipps reservation cancelled (Vipps reference %s).", u.ProviderReference)
	case adapters.StatusRefunded:
		note = fmt.Sprintf("Vipps refunded %s (Vipps reference %s).", money, u.ProviderReference)
	case adapters.StatusSettled:
		note = settledNote(u)
	default:
		return nil, fmt.Errorf("woocommerce: unknown status %q", u.Status)
	}
	var reqs []adapters.Request
	if update != nil {
		b, err := json.Marshal(update)
		if err != nil {
			return nil, fmt.Errorf("woocommerce: encode order update: %w", err)
		}
		reqs = append(reqs, a.request(m, http.MethodPut, orderURL, b))
	}
	b, err := json.Marshal(map[string]any{"note": note, "customer_note": false})
	if err != nil {
		return nil, fmt.Errorf("woocommerce: encode order note: %w", err)
	}
	reqs = append(reqs, a.request(m, http.MethodPost, orderURL+"/notes", b))
	return reqs, nil
}

// request builds one authenticated REST request: HTTP Basic over https, OAuth 1.0a over http.
func (a Adapter) request(m adapters.Merchant, method, rawURL string, body []byte) adapters.Request {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	key, secret := m.Platform.ConsumerKey.Reveal(), m.Platform.ConsumerSecret.Reveal()
	if !strings.HasPrefix(rawURL, "http://") {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(key+":"+secret)))
		return adapters.Request{Method: method, URL: rawURL, Header: h, Body: body}
	}
	now, nonce := time.Now, randomNonce
	if a.Now != nil {
		now = a.Now
	}
	if a.Nonce != nil {
		nonce = a.Nonce
	}
	params := map[string]string{
		"oauth_consumer_key":     key,
		"oauth_nonce":            nonce(),
		"oauth_signature_method": "HMAC-SHA256",
		"oauth_timestamp":        strconv.FormatInt(now().Unix(), 10),
	}
	params["oauth_signature"] = oauthSignature(method, rawURL, params, secret)
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var q []string
	for _, k := range keys {
		q = append(q, rfc3986(k)+"="+rfc3986(params[k]))
	}
	return adapters.Request{Method: method, URL: rawURL + "?" + strings.Join(q, "&"), Header: h, Body: body}
}

// oauthSignature is WC_REST_Authentication::check_oauth_signature's computation: the method, the
// encoded URL without query, and the parameters sorted by key, each key and value RFC 3986-encoded and
// joined with "%3D" and "%26", signed with HMAC-SHA256 under consumer_secret + "&", base64.
func oauthSignature(method, baseURL string, params map[string]string, consumerSecret string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, rfc3986(k))
	}
	byEncoded := make(map[string]string, len(params))
	for k, v := range params {
		byEncoded[rfc3986(k)] = rfc3986(v)
	}
	sort.Strings(keys)
	pairs := make([]string, 0, len(keys))
	for _, k := range keys {
		pairs = append(pairs, k+"%3D"+byEncoded[k])
	}
	toSign := method + "&" + rfc3986(baseURL) + "&" + strings.Join(pairs, "%26")
	mac := hmac.New(sha256.New, []byte(consumerSecret+"&"))
	mac.Write([]byte(toSign))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// rfc3986 percent-encodes everything but unreserved characters, as PHP's rawurlencode does.
func rfc3986(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func randomNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Validate implements adapters.Validator: baseUrl and the consumer key and secret are required, and the
// return URL must be one the merchant's returnUrlPrefixes allow.
func (Adapter) Validate(m adapters.Merchant) error {
	p := m.Platform
	var errs []error
	if p.BaseURL == "" {
		errs = append(errs, &adapters.FieldError{Field: "baseUrl", Detail: "woocommerce needs the shop's site URL"})
	}
	if p.ConsumerKeyEnv == "" {
		errs = append(errs, &adapters.FieldError{Field: "consumerKeyEnv", Detail: "woocommerce needs a REST API consumer key"})
	}
	if p.ConsumerSecretEnv == "" {
		errs = append(errs, &adapters.FieldError{Field: "consumerSecretEnv", Detail: "woocommerce needs a REST API consumer secret"})
	}
	if p.BaseURL != "" || p.ReturnURL != "" {
		sample := strings.NewReplacer("{id}", "1", "{key}", "k").Replace(settingsOf(m).returnURL)
		ok := false
		for _, prefix := range m.ReturnURLPrefixes {
			ok = ok || strings.HasPrefix(sample, prefix)
		}
		if !ok {
			errs = append(errs, &adapters.FieldError{Field: "returnUrl", Detail: fmt.Sprintf(
				"the return URL %q does not start with one of returnUrlPrefixes", sample)})
		}
	}
	return errors.Join(errs...)
}

// settledNote is the order note for a settlement: what the ledger settled and the payout that carries it.
func settledNote(u adapters.StatusUpdate) string {
	st := u.Settlement
	if st == nil {
		return fmt.Sprintf("Vipps settled the payment (Vipps reference %s).", u.ProviderReference)
	}
	kr := func(v int64) string { return u.Currency + " " + adapters.FormatAmount(v) }
	note := fmt.Sprintf("Vipps settlement (ledger date %s, Vipps reference %s): captured %s, refunded %s, fees %s, net %s.",
		st.LedgerDate, u.ProviderReference, kr(st.Captured), kr(st.Refunded), kr(st.Fees), kr(st.Net))
	if st.PayoutReference != "" {
		note += fmt.Sprintf(" Paid out as %q, expected in the bank %s.", st.PayoutReference, st.PayoutDate)
	}
	if st.Mismatch != "" {
		note += " Mismatch: " + st.Mismatch + "."
	}
	return note
}
