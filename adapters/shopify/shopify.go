// Package shopify is kasse's adapter for Shopify stores. It registers itself as "shopify", in
// ModeAckFirst: Shopify allows 5 s for an answer and retries for hours otherwise, so the hooks handler
// verifies, drops duplicates by X-Shopify-Webhook-Id, stores the delivery and answers 200 at once.
//
// Inbound (POST /hooks/shopify/{merchant}): X-Shopify-Hmac-Sha256 is base64(HMAC-SHA256(secret, raw
// body)); the old and the new secret are both accepted during a rotation. X-Shopify-Shop-Domain must
// match the merchant's baseUrl host when that is a *.myshopify.com host. orders/create with the
// merchant's gateway in payment_gateway_names and financial_status pending starts a checkout, charged in
// presentment money. orders/fulfilled and fulfillments/create capture, orders/cancelled cancels and
// refunds/create refunds the refund's transactions. Order and line ids above 2^53 are kept exactly: they
// are decoded as json.Number and used as strings.
//
// Outbound: the Admin GraphQL API, POST {baseUrl}/admin/api/{version}/graphql.json with
// X-Shopify-Access-Token: orderMarkAsPaid for a reserved payment, and tagsAdd to record the Vipps
// reference and every later outcome on the order.
package shopify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/payment"
)

// ID is the adapter's registered id.
const ID = "shopify"

// Defaults of the merchant's platform settings.
const (
	DefaultAPIVersion = "2026-07"
	DefaultGatewayID  = "vipps"
)

func init() {
	adapters.Register(adapters.Info{ID: ID, New: func() adapters.Adapter { return Adapter{} }, Mode: adapters.ModeAckFirst})
}

// Adapter is the Shopify adapter. The zero value is ready to use.
type Adapter struct{}

// Interface guards.
var (
	_ adapters.Adapter   = Adapter{}
	_ adapters.Validator = Adapter{}
)

// header returns a Shopify header in its prefixed form, or the unprefixed form of the newer Events
// delivery.
func header(h http.Header, name string) string {
	if v := h.Get("X-Shopify-" + name); v != "" {
		return v
	}
	return h.Get("Shopify-" + name)
}

// Verify implements adapters.Adapter.
func (Adapter) Verify(d *adapters.Delivery) error {
	sig := header(d.Header, "Hmac-Sha256")
	if sig == "" {
		return adapters.Unauthorized("shopify: no X-Shopify-Hmac-Sha256 header")
	}
	var keys [][]byte
	for _, s := range adapters.Secrets(d.Merchant) {
		keys = append(keys, []byte(s.Reveal()))
	}
	if len(keys) == 0 {
		return adapters.Unauthorized("shopify: merchant %s has no webhook secret", d.Merchant.ID)
	}
	if !adapters.ValidHMACBase64(d.Body, sig, keys...) {
		return adapters.Unauthorized("shopify: X-Shopify-Hmac-Sha256 does not match the body")
	}
	if want := shopDomain(d.Merchant); want != "" {
		if got := header(d.Header, "Shop-Domain"); !strings.EqualFold(got, want) {
			return adapters.Unauthorized("shopify: delivery for shop %q, merchant %s is %q", got, d.Merchant.ID, want)
		}
	}
	return nil
}

// shopDomain is the merchant's *.myshopify.com host, or "" when its baseUrl is another host (a test
// server, a proxy).
func shopDomain(m adapters.Merchant) string {
	if m.Platform == nil {
		return ""
	}
	u, err := url.Parse(m.Platform.BaseURL)
	if err != nil || !strings.HasSuffix(strings.ToLower(u.Hostname()), ".myshopify.com") {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

type money struct {
	Amount       string `json:"amount"`
	CurrencyCode string `json:"currency_code"`
}

type moneySet struct {
	ShopMoney        money `json:"shop_money"`
	PresentmentMoney money `json:"presentment_money"`
}

// order is the part of a Shopify order webhook payload kasse reads.
type order struct {
	ID                  json.Number `json:"id"`
	Name                string      `json:"name"`
	CancelledAt         *string     `json:"cancelled_at"`
	FinancialStatus     string      `json:"financial_status"`
	PresentmentCurrency string      `json:"presentment_currency"`
	TotalPriceSet       *moneySet   `json:"total_price_set"`
	PaymentGatewayNames []string    `json:"payment_gateway_names"`
	OrderStatusURL      string      `json:"order_status_url"`
	Phone               *string     `json:"phone"`
	LineItems           []struct {
		ID       json.Number `json:"id"`
		Title    string      `json:"title"`
		SKU      *string     `json:"sku"`
		Quantity int64       `json:"quantity"`
		PriceSet *moneySet   `json:"price_set"`
	} `json:"line_items"`
}

type fulfillment struct {
	OrderID json.Number `json:"order_id"`
}

type refund struct {
	ID           json.Number `json:"id"`
	OrderID      json.Number `json:"order_id"`
	Note         *string     `json:"note"`
	Transactions []struct {
		Kind   string `json:"kind"`
		Status string `json:"status"`
		Amount string `json:"amount"`
	} `json:"transactions"`
}

// Parse implements adapters.Adapter.
func (Adapter) Parse(d *adapters.Delivery) (*adapters.Event, error) {
	topic := header(d.Header, "Topic")
	ev := &adapters.Event{Topic: topic, DeliveryID: header(d.Header, "Webhook-Id")}
	switch topic {
	case "orders/create":
		var o order
		if err := decode(d.Body, &o); err != nil {
			return nil, err
		}
		if err := id(&ev.Reference, "/id", o.ID); err != nil {
			return nil, err
		}
		gateway := DefaultGatewayID
		if p := d.Merchant.Platform; p != nil && p.GatewayID != "" {
			gateway = p.GatewayID
		}
		ours := false
		for _, g := range o.PaymentGatewayNames {
			ours = ours || strings.EqualFold(g, gateway)
		}
		switch {
		case !ours:
			return ignore(ev, fmt.Sprintf("payment gateways %q do not include %q", o.PaymentGatewayNames, gateway)), nil
		case o.CancelledAt != nil:
			return ignore(ev, "order is cancelled"), nil
		case o.FinancialStatus != "pending":
			return ignore(ev, "financial status "+strconv.Quote(o.FinancialStatus)+" is not pending"), nil
		}
		co, err := checkoutOf(d.Merchant, &o)
		if err != nil {
			return nil, err
		}
		ev.Action, ev.Checkout = adapters.ActionCheckout, co
	case "orders/fulfilled", "orders/cancelled":
		var o order
		if err := decode(d.Body, &o); err != nil {
			return nil, err
		}
		if err := id(&ev.Reference, "/id", o.ID); err != nil {
			return nil, err
		}
		if topic == "orders/cancelled" {
			ev.Action, ev.Key, ev.Text = adapters.ActionCancel, "cancel", "Order "+o.Name+" cancelled"
		} else {
			ev.Action, ev.Key, ev.Text = adapters.ActionCapture, "capture", "Order "+o.Name+" fulfilled"
		}
	case "fulfillments/create":
		var f fulfillment
		if err := decode(d.Body, &f); err != nil {
			return nil, err
		}
		if err := id(&ev.Reference, "/order_id", f.OrderID); err != nil {
			return nil, err
		}
		ev.Action, ev.Key, ev.Text = adapters.ActionCapture, "capture", "Order "+f.OrderID.String()+" fulfilled"
	case "refunds/create":
		var r refund
		if err := decode(d.Body, &r); err != nil {
			return nil, err
		}
		if err := id(&ev.Reference, "/order_id", r.OrderID); err != nil {
			return nil, err
		}
		var refundID string
		if err := id(&refundID, "/id", r.ID); err != nil {
			return nil, err
		}
		var total int64
		for i, tx := range r.Transactions {
			if tx.Kind != "refund" || (tx.Status != "success" && tx.Status != "pending") {
				continue
			}
			n, err := adapters.ParseAmount(tx.Amount)
			if err != nil {
				return nil, &adapters.InputError{Pointer: "/transactions/" + strconv.Itoa(i) + "/amount", Detail: err.Error()}
			}
			total += n
		}
		if total == 0 {
			// 0 would mean "refund everything": a refund without money (restock only) refunds nothing.
			return ignore(ev, "refund "+refundID+" has no refund transaction"), nil
		}
		ev.Action, ev.Amount, ev.Key = adapters.ActionRefund, total, "refund:"+refundID
		ev.Text = "Refund " + refundID
		if r.Note != nil && *r.Note != "" {
			ev.Text = adapters.Text(*r.Note, 100)
		}
	default:
		return ignore(ev, "topic "+strconv.Quote(topic)+" is not used by kasse"), nil
	}
	return ev, nil
}

func ignore(ev *adapters.Event, reason string) *adapters.Event {
	ev.Action, ev.Reason = adapters.ActionIgnore, reason
	return ev
}

// id checks that n is a positive integer id and stores its exact digits in dst.
func id(dst *string, ptr string, n json.Number) error {
	s := n.String()
	if s == "" || len(s) > 20 || s[0] == '0' {
		return &adapters.InputError{Pointer: ptr, Detail: "must be a positive integer id"}
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return &adapters.InputError{Pointer: ptr, Detail: "must be a positive integer id"}
		}
	}
	*dst = s
	return nil
}

func decode[T any](body []byte, v *T) error {
	if err := adapters.DecodeJSON(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return &adapters.InputError{Pointer: "/" + strings.ReplaceAll(te.Field, ".", "/"),
				Detail: "must be a JSON " + te.Type.String() + ", got " + te.Value}
		}
		return &adapters.InputError{Detail: "not a Shopify payload: " + err.Error()}
	}
	return nil
}

func checkoutOf(m adapters.Merchant, o *order) (*payment.Checkout, error) {
	if o.TotalPriceSet == nil {
		return nil, &adapters.InputError{Pointer: "/total_price_set", Detail: "is required"}
	}
	total, err := adapters.ParseAmount(o.TotalPriceSet.PresentmentMoney.Amount)
	if err != nil {
		return nil, &adapters.InputError{Pointer: "/total_price_set/presentment_money/amount", Detail: err.Error()}
	}
	currency := o.TotalPriceSet.PresentmentMoney.CurrencyCode
	if currency == "" {
		currency = o.PresentmentCurrency
	}
	co := &payment.Checkout{
		Merchant: m.ID, Reference: o.ID.String(), Amount: total, Currency: currency,
		Description: adapters.Text("Order "+o.Name, 100), ReturnURL: o.OrderStatusURL,
	}
	if m.Platform != nil && m.Platform.ReturnURL != "" {
		co.ReturnURL = strings.NewReplacer("{id}", url.PathEscape(co.Reference), "{key}", "").Replace(m.Platform.ReturnURL)
	}
	if o.Phone != nil {
		if phone := adapters.NorwegianMobile(*o.Phone); phone != "" {
			co.Customer = &payment.Customer{PhoneNumber: phone}
		}
	}
	for i, li := range o.LineItems {
		if li.PriceSet == nil || li.Quantity <= 0 {
			continue
		}
		price, err := adapters.ParseAmount(li.PriceSet.PresentmentMoney.Amount)
		if err != nil {
			return nil, &adapters.InputError{Pointer: "/line_items/" + strconv.Itoa(i) + "/price_set/presentment_money/amount",
				Detail: err.Error()}
		}
		name := adapters.Text(li.Title, 255)
		if name == "" {
			continue
		}
		line := payment.Line{Name: name, Quantity: li.Quantity, UnitPrice: price}
		if li.SKU != nil {
			line.SKU = adapters.Text(*li.SKU, 100)
		}
		co.Lines = append(co.Lines, line)
	}
	return co, nil
}

// The GraphQL documents kasse sends. tagsAdd is idempotent; orderMarkAsPaid fails harmlessly with a user
// error on an order already paid.
const (
	markPaidMutation = `mutation kasseMarkPaid($input: OrderMarkAsPaidInput!, $id: ID!, $tags: [String!]!) { ` +
		`orderMarkAsPaid(input: $input) { order { id } userErrors { field message } } ` +
		`tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } } }`
	tagsMutation = `mutation kasseTag($id: ID!, $tags: [String!]!) { ` +
		`tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } } }`
)

// Render implements adapters.Adapter.
func (Adapter) Render(m adapters.Merchant, u adapters.StatusUpdate) ([]adapters.Request, error) {
	if m.Platform == nil {
		return nil, fmt.Errorf("shopify: merchant %s has no platform settings", m.ID)
	}
	var ref string
	if err := id(&ref, "/reference", json.Number(u.Reference)); err != nil {
		return nil, fmt.Errorf("shopify: %q is not a Shopify order id", u.Reference)
	}
	gid := "gid://shopify/Order/" + ref
	var body map[string]any
	switch u.Status {
	case adapters.StatusPaid:
		body = map[string]any{"query": markPaidMutation, "variables": map[string]any{
			"input": map[string]string{"id": gid}, "id": gid,
			"tags": []string{"vipps-paid", "vipps-ref-" + u.ProviderReference}}}
	case adapters.StatusCaptured, adapters.StatusFailed, adapters.StatusCancelled, adapters.StatusRefunded,
		adapters.StatusSettled:
		body = map[string]any{"query": tagsMutation, "variables": map[string]any{
			"id": gid, "tags": []string{"vipps-" + string(u.Status)}}}
	default:
		return nil, fmt.Errorf("shopify: unknown status %q", u.Status)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("shopify: encode mutation: %w", err)
	}
	version := m.Platform.APIVersion
	if version == "" {
		version = DefaultAPIVersion
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	h.Set("X-Shopify-Access-Token", m.Platform.AccessToken.Reveal())
	return []adapters.Request{{Method: http.MethodPost, Header: h, Body: b, Accept: acceptGraphQL,
		URL: m.Platform.BaseURL + "/admin/api/" + version + "/graphql.json"}}, nil
}

// acceptGraphQL judges a GraphQL answer, which reports errors inside a 200: throttling is retried, other
// errors and user errors give the update up.
func acceptGraphQL(_ int, body []byte) error {
	var resp struct {
		Data   map[string]json.RawMessage `json:"data"`
		Errors []struct {
			Message    string `json:"message"`
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return fmt.Errorf("shopify: answer is not GraphQL JSON: %w", err)
	}
	for _, e := range resp.Errors {
		if e.Extensions.Code == "THROTTLED" {
			return fmt.Errorf("shopify: throttled: %w", adapters.ErrRetry)
		}
	}
	if len(resp.Errors) > 0 {
		return fmt.Errorf("shopify: graphql error: %s", resp.Errors[0].Message)
	}
	names := make([]string, 0, len(resp.Data))
	for name := range resp.Data {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		raw := resp.Data[name]
		var field struct {
			UserErrors []struct {
				Message string `json:"message"`
			} `json:"userErrors"`
		}
		if json.Unmarshal(raw, &field) == nil && len(field.UserErrors) > 0 {
			return fmt.Errorf("shopify: %s: %s", name, field.UserErrors[0].Message)
		}
	}
	return nil
}

// Validate implements adapters.Validator: baseUrl and the access token are required.
func (Adapter) Validate(m adapters.Merchant) error {
	var errs []error
	if m.Platform.BaseURL == "" {
		errs = append(errs, &adapters.FieldError{Field: "baseUrl", Detail: "shopify needs the store's https://{shop}.myshopify.com URL"})
	}
	if m.Platform.AccessTokenEnv == "" {
		errs = append(errs, &adapters.FieldError{Field: "accessTokenEnv", Detail: "shopify needs an Admin API access token"})
	}
	return errors.Join(errs...)
}
