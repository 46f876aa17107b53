package demoshop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxKasseResponse bounds how much of a kasse answer the shop reads.
const maxKasseResponse = 1 << 20

// checkoutRequest is the body of POST /v1/checkouts (schemas/checkout.schema.json). The shop keeps its own
// copy of the wire format, as any integrator would, instead of importing kasse's Go types.
type checkoutRequest struct {
	Merchant    string    `json:"merchant"`
	Reference   string    `json:"reference"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Description string    `json:"description"`
	ReturnURL   string    `json:"returnUrl"`
	Customer    *customer `json:"customer,omitempty"`
	Lines       []line    `json:"lines,omitempty"`
}

type customer struct {
	PhoneNumber string `json:"phoneNumber,omitempty"`
}

type line struct {
	SKU       string `json:"sku,omitempty"`
	Name      string `json:"name"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unitPrice"`
}

// operationRequest is the optional body of capture, refund and cancel (schemas/operation.schema.json).
type operationRequest struct {
	// Amount in øre; omitted means everything that is left.
	Amount int64 `json:"amount,omitempty"`
}

// checkoutView is the part of kasse's checkout session the shop reads. Amounts are in øre.
type checkoutView struct {
	ID                string  `json:"id"`
	Reference         string  `json:"reference"`
	State             string  `json:"state"`
	Amount            int64   `json:"amount"`
	Currency          string  `json:"currency"`
	AuthorizedAmount  int64   `json:"authorizedAmount"`
	CapturedAmount    int64   `json:"capturedAmount"`
	RefundedAmount    int64   `json:"refundedAmount"`
	CancelledAmount   int64   `json:"cancelledAmount"`
	ProviderReference string  `json:"providerReference"`
	RedirectURL       string  `json:"redirectUrl"`
	Reason            string  `json:"reason"`
	History           []event `json:"history"`
	// Express, Contact and Shipping are set for Vipps Express Checkout payments: who paid, where to
	// ship, how and at what cost (in øre, part of AuthorizedAmount).
	Express  bool         `json:"express"`
	Contact  contactView  `json:"contact"`
	Shipping shippingView `json:"shipping"`
	// Settlement is what the merchant's Vipps ledger settled for the payment, once kasse has read it.
	Settlement *settlementView `json:"settlement"`
}

// settlementView is a payment's settlement as kasse read it from the Vipps ledger: amounts in øre.
type settlementView struct {
	LedgerDate      string `json:"ledgerDate"`
	Captured        int64  `json:"captured"`
	Refunded        int64  `json:"refunded"`
	Fees            int64  `json:"fees"`
	Net             int64  `json:"net"`
	PayoutReference string `json:"payoutReference"`
	PayoutDate      string `json:"payoutDate"`
	Mismatch        string `json:"mismatch"`
}

// contactView is the Express customer as Vipps shared them.
type contactView struct {
	FirstName   string `json:"firstName"`
	LastName    string `json:"lastName"`
	Email       string `json:"email"`
	PhoneNumber string `json:"phoneNumber"`
}

// shippingView is the shipping an Express customer chose.
type shippingView struct {
	MethodID string `json:"methodId"`
	Method   string `json:"method"`
	Cost     int64  `json:"cost"`
	Address  struct {
		Line1    string `json:"line1"`
		Line2    string `json:"line2"`
		PostCode string `json:"postCode"`
		City     string `json:"city"`
		Country  string `json:"country"`
	} `json:"address"`
}

// event is one entry of a session's history.
type event struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Cause  string    `json:"cause"`
	Amount int64     `json:"amount"`
	Detail string    `json:"detail"`
}

// leftToCapture is what is reserved and neither captured nor released.
func (c *checkoutView) leftToCapture() int64 {
	return max(c.AuthorizedAmount-c.CapturedAmount-c.CancelledAmount, 0)
}

// leftToRefund is what is captured and not yet refunded.
func (c *checkoutView) leftToRefund() int64 {
	return max(c.CapturedAmount-c.RefundedAmount, 0)
}

// problem is kasse's RFC 9457 answer to a request it refused or could not complete.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Pointer string `json:"pointer"`
		Detail  string `json:"detail"`
	} `json:"errors"`
}

// Error returns e.g. "kasse: 422 Request body is invalid: the request body does not match checkout.schema.json".
func (p *problem) Error() string {
	s := fmt.Sprintf("kasse: %d %s", p.Status, p.Title)
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// kasseClient calls kasse's checkout API for one merchant.
type kasseClient struct {
	base   string // without a trailing slash
	apiKey string
	http   *http.Client
}

// create starts a payment: POST /v1/checkouts.
func (k *kasseClient) create(ctx context.Context, req checkoutRequest, idempotencyKey string) (*checkoutView, error) {
	return k.do(ctx, http.MethodPost, "/v1/checkouts", idempotencyKey, req)
}

// createExpress starts a Vipps Express Checkout payment: POST /v1/express/{merchant}. A merchant with
// Express Checkout off gets a *problem naming the setting.
func (k *kasseClient) createExpress(ctx context.Context, req checkoutRequest, idempotencyKey string) (*checkoutView, error) {
	return k.do(ctx, http.MethodPost, "/v1/express/"+url.PathEscape(req.Merchant), idempotencyKey, req)
}

// expressEnabled asks kasse whether the merchant's Express Checkout is on: GET /v1/express/{merchant}.
func (k *kasseClient) expressEnabled(ctx context.Context, merchant string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.base+"/v1/express/"+url.PathEscape(merchant), nil)
	if err != nil {
		return false, fmt.Errorf("kasse: express status: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if k.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+k.apiKey)
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("kasse: express status: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return false, fmt.Errorf("kasse: express status: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return false, decodeProblem(resp, data)
	}
	var v struct {
		ExpressCheckout bool `json:"expressCheckout"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return false, fmt.Errorf("kasse: express status: decode answer: %w", err)
	}
	return v.ExpressCheckout, nil
}

// get reads a checkout: GET /v1/checkouts/{id}.
func (k *kasseClient) get(ctx context.Context, id string) (*checkoutView, error) {
	return k.do(ctx, http.MethodGet, "/v1/checkouts/"+url.PathEscape(id), "", nil)
}

// operate captures, refunds or cancels: POST /v1/checkouts/{id}/{op}. amount 0 means everything that is
// left and sends no body.
func (k *kasseClient) operate(ctx context.Context, id string, op operation, amount int64, idempotencyKey string) (*checkoutView, error) {
	var body any
	if amount > 0 {
		body = operationRequest{Amount: amount}
	}
	return k.do(ctx, http.MethodPost, "/v1/checkouts/"+url.PathEscape(id)+"/"+string(op), idempotencyKey, body)
}

// do sends one request and decodes a 2xx answer as a checkout, anything else as a *problem. Errors that are
// not kasse's answer (kasse unreachable, a body that is not JSON) are returned wrapped.
//
// A POST that carries an Idempotency-Key is one that net/http itself may replay on a fresh connection when
// a kept-alive one turns out to be dead; kasse answers the replay with the first call's checkout.
func (k *kasseClient) do(ctx context.Context, method, path, idempotencyKey string, body any) (*checkoutView, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("kasse: %s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("kasse: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if k.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+k.apiKey)
	}
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kasse: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxKasseResponse+1))
	if err != nil {
		return nil, fmt.Errorf("kasse: %s %s: read answer: %w", method, path, err)
	}
	if len(data) > maxKasseResponse {
		return nil, fmt.Errorf("kasse: %s %s: answer larger than %d bytes", method, path, maxKasseResponse)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, decodeProblem(resp, data)
	}
	var co checkoutView
	if err := json.Unmarshal(data, &co); err != nil {
		return nil, fmt.Errorf("kasse: %s %s: decode answer: %w", method, path, err)
	}
	if co.ID == "" || co.State == "" {
		return nil, fmt.Errorf("kasse: %s %s: answer has no id or state", method, path)
	}
	return &co, nil
}

// decodeProblem turns a non-2xx answer into a *problem, filling in a title from the status where kasse (or
// a proxy in front of it) sent something else than a problem document.
func decodeProblem(resp *http.Response, data []byte) *problem {
	p := &problem{}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		if err := json.Unmarshal(data, p); err != nil {
			p = &problem{}
		}
	}
	p.Status = resp.StatusCode
	if strings.TrimSpace(p.Title) == "" {
		p.Title = http.StatusText(resp.StatusCode)
		if p.Title == "" {
			p.Title = "Unexpected answer"
		}
	}
	return p
}
