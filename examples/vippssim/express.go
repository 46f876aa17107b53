package vippssim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Express Checkout ("eComm Express Payment", Vipps Hurtigkasse): the user chooses a delivery address and a
// shipping method in the app before confirming. The simulator plays the app with two more landing pages
// after the phone number: the address (with name and email, prefilled with a demo user), then the shipping
// choice, whose options are the initiate's staticShippingDetails or, with a shippingDetailsPrefix, the
// merchant's answer to POST {shippingDetailsPrefix}/v2/payments/{orderId}/shippingDetails (sent with the
// payment's authToken as Authorization, within Vipps's 10 second timeout). Confirming adds the chosen
// shipping cost to the reserved amount and sends the express callback: status RESERVE (not RESERVED), with
// shippingDetails (address with zipCode, country "Norway", shippingCost in NOK) and userDetails.
//
// A user's userId is derived from the phone number, so repeated purchases share it, and it contains "/",
// "+" or "=" for some numbers, as real ones do. [Server.RemoveConsent] plays the user withdrawing consent
// in the app: it sends DELETE {consentRemovalPrefix}/v2/consents/{userId}, the userId URL-encoded, to every
// merchant the user bought from with Express.

const shippingDetailsTimeout = 10 * time.Second

// ShippingOption is a shipping method offered to the user; Cost in øre.
type ShippingOption struct {
	ID       string `json:"shippingMethodId"`
	Name     string `json:"shippingMethod"`
	Cost     int64  `json:"costOre"`
	Default  bool   `json:"default"`
	Priority int64  `json:"priority"`
}

// ExpressAddress is the delivery address and the user the simulated app shares.
type ExpressAddress struct {
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Email     string `json:"email"`
	Line1     string `json:"addressLine1"`
	Line2     string `json:"addressLine2,omitempty"`
	PostCode  string `json:"postCode"`
	City      string `json:"city"`
}

// shippable reports whether a can be shared in the app and asked about: the shippingDetails request
// (ShippingCostAndMethod) requires addressLine1, city and a postCode matching ^\d{4}$, and the app does
// not let a user leave the first two empty.
func (a ExpressAddress) shippable() bool {
	return strings.TrimSpace(a.Line1) != "" && strings.TrimSpace(a.City) != "" && len(a.PostCode) == 4 && allDigits(a.PostCode)
}

// DemoAddress is the address the landing page offers and ApproveExpress uses by default.
func DemoAddress() ExpressAddress {
	return ExpressAddress{FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com",
		Line1: "Dronning Eufemias gate 42", PostCode: "0191", City: "OSLO"}
}

// ExpressSnapshot is the Express part of a [PaymentSnapshot].
type ExpressSnapshot struct {
	ConsentRemovalPrefix  string           `json:"consentRemovalPrefix"`
	ShippingDetailsPrefix string           `json:"shippingDetailsPrefix,omitempty"`
	Static                []ShippingOption `json:"staticShippingDetails,omitempty"`
	// Offered are the options the user last saw; Chosen is the one confirmed.
	Offered []ShippingOption `json:"offered,omitempty"`
	Chosen  *ShippingOption  `json:"chosen,omitempty"`
	Address *ExpressAddress  `json:"address,omitempty"`
	// UserID is the user's Vipps id, set once the user shared the address.
	UserID string `json:"userId,omitempty"`
}

// expressPayment is the Express state of a payment.
type expressPayment struct {
	consentRemovalPrefix, shippingDetailsPrefix string
	static                                      []ShippingOption
	offered                                     []ShippingOption
	chosen                                      *ShippingOption
	address                                     *ExpressAddress
	userID                                      string
}

func (x *expressPayment) snapshot() *ExpressSnapshot {
	if x == nil {
		return nil
	}
	out := &ExpressSnapshot{ConsentRemovalPrefix: x.consentRemovalPrefix, ShippingDetailsPrefix: x.shippingDetailsPrefix,
		Static: slices.Clone(x.static), Offered: slices.Clone(x.offered), UserID: x.userID}
	if x.chosen != nil {
		c := *x.chosen
		out.Chosen = &c
	}
	if x.address != nil {
		a := *x.address
		out.Address = &a
	}
	return out
}

// parseExpress reads the express members of an initiate whose paymentType is "eComm Express Payment". The
// URLs and staticShippingDetails are checked by parseInitiate; this adds the express rules: a
// consentRemovalPrefix, static shipping or a shippingDetailsPrefix, and no profile scope.
func parseExpress(f *fields, mi, tx map[string]any) *expressPayment {
	x := &expressPayment{}
	x.consentRemovalPrefix, _ = mi["consentRemovalPrefix"].(string)
	x.shippingDetailsPrefix, _ = mi["shippingDetailsPrefix"].(string)
	if x.consentRemovalPrefix == "" {
		f.add("merchantInfo.consentRemovalPrefix", "missing", "is required for express payments")
	}
	if items, ok := mi["staticShippingDetails"].([]any); ok {
		for _, it := range items {
			m, _ := it.(map[string]any)
			o := ShippingOption{}
			o.ID, _ = m["shippingMethodId"].(string)
			o.Name, _ = m["shippingMethod"].(string)
			d, _ := m["isDefault"].(string)
			o.Default = d == "Y"
			if n, ok := m["priority"].(json.Number); ok {
				o.Priority, _ = n.Int64()
			}
			if n, ok := m["shippingCost"].(json.Number); ok {
				kr, _ := n.Float64()
				o.Cost = int64(math.Round(kr * 100))
			}
			x.static = append(x.static, o)
		}
		if len(x.static) == 0 {
			f.invalid("merchantInfo.staticShippingDetails", "must list at least one shipping method")
		}
	} else if x.shippingDetailsPrefix == "" {
		f.add("merchantInfo.shippingDetailsPrefix", "missing",
			"is required for express payments without staticShippingDetails")
	}
	if _, ok := tx["scope"]; ok && tx["scope"] != nil {
		f.invalid("transaction.scope", "cannot be combined with express payments")
	}
	return x
}

// userIDFor derives a stable Vipps-like userId from the phone number.
func userIDFor(phone string) string {
	sum := sha256.Sum256([]byte("vippssim-user:" + phone))
	return base64.StdEncoding.EncodeToString(sum[:16]) // 22 characters and "==", like Vipps's
}

// expressCallbackFields returns the shippingDetails and userDetails of p's express callback, or nils.
func (p *payment) expressCallbackFields() (shipping, user any) {
	x := p.express
	if x == nil || x.chosen == nil || x.address == nil {
		return nil, nil
	}
	type addressExpress struct {
		AddressLine1 string `json:"addressLine1"`
		AddressLine2 string `json:"addressLine2,omitempty"`
		City         string `json:"city"`
		Country      string `json:"country"`
		ZipCode      string `json:"zipCode"`
	}
	return struct {
			Address          addressExpress `json:"address"`
			ShippingCost     float64        `json:"shippingCost"`
			ShippingMethod   string         `json:"shippingMethod"`
			ShippingMethodID string         `json:"shippingMethodId"`
		}{addressExpress{x.address.Line1, x.address.Line2, x.address.City, "Norway", x.address.PostCode},
			float64(x.chosen.Cost) / 100, x.chosen.Name, x.chosen.ID},
		p.userDetails()
}

// expressDetailsFields returns the shippingDetails and userDetails /details shows for a reserved express
// payment (PaymentShippingDetails uses Address, with postCode), or nils.
func (p *payment) expressDetailsFields() (shipping, user any) {
	x := p.express
	if x == nil || x.chosen == nil || x.address == nil {
		return nil, nil
	}
	type address struct {
		AddressLine1 string `json:"addressLine1"`
		AddressLine2 string `json:"addressLine2,omitempty"`
		City         string `json:"city"`
		Country      string `json:"country"`
		PostCode     string `json:"postCode"`
	}
	return struct {
		Address          address `json:"address"`
		ShippingCost     float64 `json:"shippingCost"`
		ShippingMethod   string  `json:"shippingMethod"`
		ShippingMethodID string  `json:"shippingMethodId"`
	}{address{x.address.Line1, x.address.Line2, x.address.City, "Norway", x.address.PostCode},
		float64(x.chosen.Cost) / 100, x.chosen.Name, x.chosen.ID}, p.userDetails()
}

func (p *payment) userDetails() any {
	return struct {
		Email        string `json:"email"`
		FirstName    string `json:"firstName"`
		LastName     string `json:"lastName"`
		MobileNumber string `json:"mobileNumber"`
		UserID       string `json:"userId"`
	}{p.express.address.Email, p.express.address.FirstName, p.express.address.LastName, p.phone, p.express.userID}
}

// fetchShippingOptions asks the merchant for the shipping options for addr: the shippingDetails call,
// with the payment's authToken. Call it without s.mu held.
func (s *Server) fetchShippingOptions(ctx context.Context, prefix, orderID, authToken string, addressID int64, addr ExpressAddress) ([]ShippingOption, error) {
	body, _ := json.Marshal(map[string]any{ // plain values: cannot fail
		"addressId": addressID, "addressLine1": addr.Line1, "addressLine2": nullIfEmpty(addr.Line2),
		"city": addr.City, "country": "Norway", "postCode": addr.PostCode, "addressType": "H",
	})
	ctx, cancel := context.WithTimeout(ctx, shippingDetailsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, prefix+"/v2/payments/"+orderID+"/shippingDetails", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("shippingDetails: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vippssim")
	if authToken != "" {
		req.Header.Set("Authorization", authToken)
	}
	resp, err := s.cfg.CallbackClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("shippingDetails: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("shippingDetails: read answer: %w", err)
	}
	s.logSent("shippingDetails", resp.StatusCode, "", "order", orderID)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("shippingDetails: merchant answered %d", resp.StatusCode)
	}
	obj, err := decodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("shippingDetails: answer: %w", err)
	}
	var f fields
	if id, ok := f.integer(obj, "addressId", "addressId", true); ok && id != addressID {
		f.invalid("addressId", "must echo the request's addressId %d", addressID)
	}
	if id, ok := f.str(obj, "orderId", "orderId", true, 0); ok && id != orderID {
		f.invalid("orderId", "must be %q", orderID)
	}
	list, ok := f.get(obj, "shippingDetails", "shippingDetails", true)
	if ok {
		checkShippingDetails(&f, list)
	}
	if e := f.err(); e != nil {
		return nil, fmt.Errorf("shippingDetails: answer does not match FetchShippingCostResponse: %v", e.errs)
	}
	x := parseExpress(&fields{}, map[string]any{"consentRemovalPrefix": "-", "staticShippingDetails": list}, nil)
	return x.static, nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ExpressChoice is what the simulated user does in an express payment: the phone number (empty: the one
// given at initiate), the address (zero: DemoAddress) and the shipping method (empty: the default one).
type ExpressChoice struct {
	Phone    string
	Address  ExpressAddress
	MethodID string
}

// ApproveExpress is the user completing an express payment in the app: sharing the address, getting the
// shipping options (static, or from the merchant's shippingDetails endpoint), choosing one and confirming.
// The reserved amount becomes the initiated amount plus the shipping cost, and the RESERVE callback is sent.
// An address the app would not accept (ErrInvalidAddress) changes nothing and asks the merchant nothing.
func (s *Server) ApproveExpress(ctx context.Context, orderID string, c ExpressChoice) error {
	if c.Phone != "" && !phonePattern.MatchString(c.Phone) {
		return fmt.Errorf("approve express %q: %w", orderID, ErrInvalidPhone)
	}
	if c.Address == (ExpressAddress{}) {
		c.Address = DemoAddress()
	}
	if !c.Address.shippable() {
		return fmt.Errorf("approve express %q: %w", orderID, ErrInvalidAddress)
	}
	if _, err := s.offerShipping(ctx, orderID, c.Phone, c.Address); err != nil {
		return fmt.Errorf("approve express: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.pendingLocked(orderID)
	if err != nil {
		return fmt.Errorf("approve express: %w", err)
	}
	return s.confirmExpressLocked(p, c.MethodID)
}

var errNotExpress = errors.New("not an express payment")

// offerShipping records the user's phone and address on a pending express payment and returns the
// shipping options for it. It takes s.mu itself and does not hold it during the merchant call.
func (s *Server) offerShipping(ctx context.Context, orderID, phone string, addr ExpressAddress) ([]ShippingOption, error) {
	s.mu.Lock()
	p, err := s.pendingLocked(orderID)
	if err == nil && p.express == nil {
		err = fmt.Errorf("order %q: %w", orderID, errNotExpress)
	}
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if phone != "" {
		p.phone = phone
	}
	if p.phone == "" {
		s.mu.Unlock()
		return nil, fmt.Errorf("order %q: %w", orderID, ErrInvalidPhone)
	}
	a := addr
	p.express.address = &a
	p.express.userID = userIDFor(p.phone)
	opts := slices.Clone(p.express.static)
	prefix, token, txSeq := p.express.shippingDetailsPrefix, p.authToken, s.txSeq
	s.mu.Unlock()

	if opts == nil {
		delays, drop := s.syncPlan()
		if drop {
			return nil, fmt.Errorf("shippingDetails: %w", errDroppedByFault)
		}
		for _, d := range delays { // a duplicated call counts with its last answer
			if err := sleepCtx(ctx, d); err != nil {
				return nil, fmt.Errorf("shippingDetails: %w", err)
			}
			if opts, err = s.fetchShippingOptions(ctx, prefix, orderID, token, 3960+txSeq, addr); err != nil {
				return nil, err
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err = s.pendingLocked(orderID)
	if err != nil {
		return nil, err
	}
	p.express.offered = opts
	return slices.Clone(opts), nil
}

// confirmExpressLocked confirms p with the offered option methodID (empty: the default). Call with s.mu held.
func (s *Server) confirmExpressLocked(p *payment, methodID string) error {
	var chosen *ShippingOption
	for i, o := range p.express.offered {
		if (methodID == "" && (o.Default || chosen == nil)) || (methodID != "" && o.ID == methodID) {
			chosen = &p.express.offered[i]
		}
	}
	if chosen == nil {
		return fmt.Errorf("order %q: no shipping method %q was offered", p.key.orderID, methodID)
	}
	c := *chosen
	p.express.chosen = &c
	p.amount += c.Cost
	s.reserveLocked(p, p.phone, "")
	return nil
}

// ConsentRemoval is the outcome of one consent removal request to a merchant.
type ConsentRemoval struct {
	URL        string `json:"url"`
	StatusCode int    `json:"statusCode"`
	Err        string `json:"error,omitempty"`
}

// RemoveConsent is the user withdrawing consent in the app: for every distinct consentRemovalPrefix of the
// user's express payments it sends DELETE {consentRemovalPrefix}/v2/consents/{userId}, waits for the
// answer and reports it.
func (s *Server) RemoveConsent(ctx context.Context, userID string) []ConsentRemoval {
	s.mu.Lock()
	var prefixes []string
	for _, p := range s.payments {
		if p.express != nil && p.express.userID == userID && !slices.Contains(prefixes, p.express.consentRemovalPrefix) {
			prefixes = append(prefixes, p.express.consentRemovalPrefix)
		}
	}
	s.mu.Unlock()
	slices.Sort(prefixes)
	out := make([]ConsentRemoval, 0, len(prefixes))
	for _, prefix := range prefixes {
		u := prefix + "/v2/consents/" + url.QueryEscape(userID)
		delays, drop := s.syncPlan()
		if drop {
			out = append(out, ConsentRemoval{URL: u, Err: "not sent: " + errDroppedByFault.Error()})
			continue
		}
		for _, d := range delays {
			r := ConsentRemoval{URL: u}
			err := sleepCtx(ctx, d)
			if err == nil {
				r.StatusCode, err = s.removeConsentAt(ctx, u)
			}
			if err != nil {
				r.Err = err.Error()
			}
			s.logSent("consent removal", r.StatusCode, r.Err)
			out = append(out, r)
		}
	}
	return out
}

// expressRoutes registers the express test control:
//
//	POST /_sim/consents/remove   body {"userId":"..."} or form userId=   -> [ConsentRemoval]
func (s *Server) expressRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /_sim/consents/remove", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			UserID string `json:"userId"`
		}
		if err := readSimBody(w, r, &in); err != nil {
			simError(w, err)
			return
		}
		if in.UserID == "" {
			in.UserID = r.PostForm.Get("userId")
		}
		if in.UserID == "" {
			simError(w, errors.New("userId is required"))
			return
		}
		writeJSON(w, http.StatusOK, s.RemoveConsent(r.Context(), in.UserID))
	})
}

// removeConsentAt sends one consent removal and returns the merchant's status.
func (s *Server) removeConsentAt(ctx context.Context, u string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, callbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return 0, fmt.Errorf("consent removal: %w", err)
	}
	req.Header.Set("User-Agent", "vippssim")
	resp, err := s.cfg.CallbackClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("consent removal: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// The express pages: the address (with name and email), then the shipping choice and confirmation.
var expressTemplate = template.Must(template.New("express").Funcs(template.FuncMap{"nok": formatNOK, "add": func(a, b int64) int64 { return a + b }}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} – Vipps simulator</title>
<style>
body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}
h1{color:#ff5b24}
label{display:block;font-weight:600;margin-top:.8rem}
input[type=text],input[type=email]{font-size:1.1rem;padding:.35rem;width:18rem}
fieldset{margin-top:1rem;border:1px solid #ccc;border-radius:.4rem}
fieldset label{font-weight:400}
button{font-size:1.1rem;padding:.6rem 1.2rem;margin:1rem .5rem 0 0;border-radius:.4rem;border:2px solid #ff5b24;cursor:pointer}
button.primary{background:#ff5b24;color:#fff}
button.secondary{background:#fff;color:#1a1a1a}
.error{color:#a50000;font-weight:600}
.note{font-size:.9rem;color:#555}
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{if .Error}}<p class="error" role="alert" id="error">{{.Error}}</p>{{end}}
<p>Express checkout at <strong id="shop">{{.Shop}}</strong>{{if .Text}} for <strong id="order">{{.Text}}</strong>{{end}}: <data id="subtotal" value="{{.Amount}}">{{nok .Amount}}</data> before shipping.</p>
{{- if eq .Step "address"}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="step" value="address">
<input type="hidden" name="phone" value="{{.Phone}}">
<p>Share your name and delivery address with the merchant.</p>
<label for="firstName">First name</label><input id="firstName" name="firstName" type="text" autocomplete="given-name" required value="{{.Address.FirstName}}">
<label for="lastName">Last name</label><input id="lastName" name="lastName" type="text" autocomplete="family-name" required value="{{.Address.LastName}}">
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="email" required value="{{.Address.Email}}">
<label for="addressLine1">Address</label><input id="addressLine1" name="addressLine1" type="text" autocomplete="address-line1" required value="{{.Address.Line1}}">
<label for="addressLine2">Address line 2 (optional)</label><input id="addressLine2" name="addressLine2" type="text" autocomplete="address-line2" value="{{.Address.Line2}}">
<label for="postCode">Postcode</label><input id="postCode" name="postCode" type="text" inputmode="numeric" autocomplete="postal-code" pattern="[0-9]{4}" maxlength="4" required value="{{.Address.PostCode}}">
<label for="city">City</label><input id="city" name="city" type="text" autocomplete="address-level2" required value="{{.Address.City}}">
<div><button type="submit" class="primary">Next</button></div>
</form>
{{- else if eq .Step "shipping"}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="step" value="shipping">
<input type="hidden" name="phone" value="{{.Phone}}">
<p>Deliver to {{.Address.FirstName}} {{.Address.LastName}}, {{.Address.Line1}}, {{.Address.PostCode}} {{.Address.City}}.</p>
<fieldset>
<legend>Shipping</legend>
{{- range $i, $o := .Options}}
<label><input type="radio" name="shippingMethodId" value="{{$o.ID}}"{{if $o.Default}} checked{{end}} required> {{$o.Name}} – <data value="{{$o.Cost}}">{{nok $o.Cost}}</data>, total <strong><data class="total" value="{{add $.Amount $o.Cost}}">{{nok (add $.Amount $o.Cost)}}</data></strong></label>
{{- end}}
</fieldset>
<button type="submit" name="action" value="confirm" class="primary">Confirm payment</button>
<button type="submit" name="action" value="reject" class="secondary">Reject</button>
</form>
{{- end}}
<p class="note">Vipps order id {{.OrderID}}, merchant serial number {{.MSN}}.</p>
<p class="note">This is the kasse Vipps simulator, not Vipps. No money moves.</p>
</main>
</body>
</html>
`))

// expressPage is an Express page's data; Shop and Text are as on the landing page (landingPage), and the
// shipping step shows each option's total (Amount plus its cost), the amount the customer confirms.
type expressPage struct {
	Title, Step, Error, Action, MSN, OrderID, Phone string
	Shop, Text                                      string
	Amount                                          int64
	Address                                         ExpressAddress
	Options                                         []ShippingOption
}

func (s *Server) renderExpress(w http.ResponseWriter, status int, page expressPage) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	if err := expressTemplate.Execute(w, page); err != nil {
		s.log.Error("render express page", "err", err)
	}
}

// expressStepLocked handles the landing page's form posts for an express payment once the phone number is
// valid. Call with s.mu held (it is released around the merchant's shippingDetails call).
func (s *Server) expressStepLocked(w http.ResponseWriter, r *http.Request, p *payment, phone string) {
	page := expressPage{Title: "Vipps Express Checkout", Action: landingPath + "?" + r.URL.RawQuery, MSN: p.key.msn,
		Shop: s.tenantName(p.key.msn), Text: p.text, OrderID: p.key.orderID, Phone: phone, Amount: p.amount, Address: DemoAddress()}
	if p.express.address != nil {
		page.Address = *p.express.address
	}
	switch r.PostForm.Get("step") {
	case "phone":
		page.Step = "address"
		s.renderExpress(w, http.StatusOK, page)
	case "address":
		form := r.PostForm
		addr := ExpressAddress{FirstName: strings.TrimSpace(form.Get("firstName")), LastName: strings.TrimSpace(form.Get("lastName")),
			Email: strings.TrimSpace(form.Get("email")), Line1: strings.TrimSpace(form.Get("addressLine1")),
			Line2: strings.TrimSpace(form.Get("addressLine2")), PostCode: strings.TrimSpace(form.Get("postCode")),
			City: strings.TrimSpace(form.Get("city"))}
		page.Address = addr
		if addr.FirstName == "" || addr.LastName == "" || addr.Email == "" || !addr.shippable() {
			page.Step, page.Error = "address", "Fill in every field; the postcode has 4 digits."
			s.renderExpress(w, http.StatusBadRequest, page)
			return
		}
		orderID := p.key.orderID
		s.mu.Unlock()
		opts, err := s.offerShipping(r.Context(), orderID, phone, addr)
		s.mu.Lock()
		if err != nil {
			s.log.Warn("express: no shipping options", "order", orderID, "err", err)
			page.Step, page.Error = "address", "No shipping methods found for this address."
			s.renderExpress(w, http.StatusBadGateway, page)
			return
		}
		if len(opts) == 0 {
			page.Step, page.Error = "address", "No shipping methods found for this address."
			s.renderExpress(w, http.StatusOK, page)
			return
		}
		page.Step, page.Title, page.Options = "shipping", "Choose shipping", opts
		s.renderExpress(w, http.StatusOK, page)
	case "shipping":
		if p.express.address == nil || p.express.offered == nil {
			s.landingError(w, http.StatusBadRequest, "Invalid form", "Share your address first.")
			return
		}
		switch r.PostForm.Get("action") {
		case "confirm":
			if err := s.confirmExpressLocked(p, r.PostForm.Get("shippingMethodId")); err != nil {
				page.Step, page.Title, page.Options = "shipping", "Choose shipping", p.express.offered
				page.Error = "Choose one of the shipping methods."
				s.renderExpress(w, http.StatusBadRequest, page)
				return
			}
		case "reject":
			s.userCancelLocked(p)
		default:
			s.landingError(w, http.StatusBadRequest, "Invalid form", "Choose Confirm payment or Reject.")
			return
		}
		http.Redirect(w, r, p.fallBack, http.StatusSeeOther)
	default:
		s.landingError(w, http.StatusBadRequest, "Invalid form", "Unknown form step.")
	}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
