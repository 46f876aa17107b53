package vippssim

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
)

// The landing page stands in for both the Vipps landing page and the app:
// step 1 asks for the phone number, step 2 is "confirm in the app".
var landingTemplate = template.Must(template.New("landing").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} – Vipps simulator</title>
<style>
body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}
h1{color:#ff5b24}
label{display:block;font-weight:600;margin-top:1rem}
input{font-size:1.2rem;padding:.4rem;width:12rem}
button{font-size:1.1rem;padding:.6rem 1.2rem;margin:1rem .5rem 0 0;border-radius:.4rem;border:2px solid #ff5b24;cursor:pointer}
button.primary{background:#ff5b24;color:#fff}
button.secondary{background:#fff;color:#1a1a1a}
.error{color:#a50000;font-weight:600}
dt{font-weight:600}
.note{font-size:.9rem;color:#555}
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{if .Error}}<p class="error" role="alert" id="error">{{.Error}}</p>{{end}}
{{- if eq .Step "phone"}}
<p>Pay {{.Amount}} to <strong id="shop">{{.Shop}}</strong>{{if .Text}} for <strong id="order">{{.Text}}</strong>{{end}}.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="step" value="phone">
<label for="phone">Mobile number (8 digits)</label>
<input id="phone" name="phone" type="tel" inputmode="numeric" autocomplete="tel-national" pattern="[0-9]{8}" maxlength="8" required value="{{.Phone}}"{{if .Error}} aria-invalid="true" aria-describedby="error"{{end}}>
<div><button type="submit" class="primary">Next</button></div>
</form>
{{- else if eq .Step "confirm"}}
<p>Confirm the payment in the Vipps app on {{.Phone}}.</p>
<dl>
<dt>Shop</dt><dd>{{.Shop}}</dd>
<dt>Order</dt><dd>{{.Text}}</dd>
<dt>Amount</dt><dd><data value="{{.AmountOre}}">{{.Amount}}</data></dd>
</dl>
<form method="post" action="{{.Action}}">
<input type="hidden" name="step" value="confirm">
<input type="hidden" name="phone" value="{{.Phone}}">
<button type="submit" name="action" value="confirm" class="primary">Confirm payment</button>
<button type="submit" name="action" value="reject" class="secondary">Reject</button>
</form>
{{- else}}
<p>{{.Message}}</p>
{{- end}}
{{- if .OrderID}}
<p class="note">Vipps order id {{.OrderID}}, merchant serial number {{.MSN}}.</p>
{{- end}}
<p class="note">This is the kasse Vipps simulator, not Vipps. No money moves.</p>
</main>
</body>
</html>
`))

type landingPage struct {
	Title, Step, Error, Message       string
	Action, MSN, OrderID, Phone, Text string
	// Shop is the sales unit's name (Tenant.Name); Text is the shop's transactionText, which names the
	// order (kasse sends the checkout's description, or "Order <reference>"). The Vipps order id is
	// kasse's session id, which means nothing to a shopper: it is shown only in small print.
	Shop      string
	Amount    string
	AmountOre int64
}

// formatNOK renders øre as Norwegian kroner, e.g. 49900 -> "499,00 NOK".
func formatNOK(ore int64) string {
	kr := fmt.Sprintf("%d", ore/100)
	var b strings.Builder
	for i, c := range kr {
		if i > 0 && (len(kr)-i)%3 == 0 {
			b.WriteRune('\u00a0') // no-break space between thousands
		}
		b.WriteRune(c)
	}
	return fmt.Sprintf("%s,%02d NOK", b.String(), ore%100)
}

func (s *Server) renderLanding(w http.ResponseWriter, status int, page landingPage) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY") // Vipps forbids iframing the landing page
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	if err := landingTemplate.Execute(w, page); err != nil {
		s.log.Error("render landing page", "err", err)
	}
}

func (s *Server) landingError(w http.ResponseWriter, status int, title, msg string) {
	s.renderLanding(w, status, landingPage{Title: title, Step: "error", Message: msg})
}

// landingPayment resolves the page's token to a pending payment, or writes
// the error page. Call with s.mu held.
func (s *Server) landingPaymentLocked(w http.ResponseWriter, r *http.Request) (*payment, bool) {
	q := r.URL.Query()
	if q.Get("v") != "2" {
		s.landingError(w, http.StatusBadRequest, "Invalid link", "This payment link is not valid (unsupported version).")
		return nil, false
	}
	key, ok := s.landing[q.Get("token")]
	if !ok {
		s.landingError(w, http.StatusNotFound, "Payment not found", "This payment link is not valid. Go back to the shop and try again.")
		return nil, false
	}
	p, _ := s.lookupLocked(key)
	if p.state != StateInitiate {
		msg := "This payment has already been completed or cancelled."
		if p.state == StateRejected {
			msg = "This payment request has expired. Go back to the shop and try again."
		}
		s.landingError(w, http.StatusGone, "Payment no longer available", msg)
		return nil, false
	}
	return p, true
}

func (s *Server) pageFor(r *http.Request, p *payment, step string) landingPage {
	return landingPage{
		Title: "Pay with Vipps", Step: step,
		Action:  landingPath + "?" + r.URL.RawQuery,
		MSN:     p.key.msn,
		Shop:    s.tenantName(p.key.msn),
		OrderID: p.key.orderID,
		Phone:   p.phone,
		Text:    p.text,
		Amount:  formatNOK(p.amount), AmountOre: p.amount,
	}
}

// handleLandingGet serves the page the initiate url points to.
func (s *Server) handleLandingGet(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.landingPaymentLocked(w, r)
	if !ok {
		return
	}
	s.renderLanding(w, http.StatusOK, s.pageFor(r, p, "phone"))
}

// handleLandingPost handles both forms: the phone number, then confirm or reject.
func (s *Server) handleLandingPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		s.landingError(w, http.StatusBadRequest, "Invalid form", "The form could not be read.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.landingPaymentLocked(w, r)
	if !ok {
		return
	}
	phone := strings.TrimSpace(r.PostForm.Get("phone"))
	if !phonePattern.MatchString(phone) {
		page := s.pageFor(r, p, "phone")
		page.Phone = phone
		page.Error = "Enter your mobile number as 8 digits, without +47."
		s.renderLanding(w, http.StatusBadRequest, page)
		return
	}
	if p.express != nil {
		s.expressStepLocked(w, r, p, phone)
		return
	}
	switch r.PostForm.Get("step") {
	case "phone":
		page := s.pageFor(r, p, "confirm")
		page.Title = "Confirm in the Vipps app"
		page.Phone = phone
		s.renderLanding(w, http.StatusOK, page)
	case "confirm":
		switch r.PostForm.Get("action") {
		case "confirm":
			s.reserveLocked(p, phone, "")
		case "reject":
			p.phone = phone
			s.userCancelLocked(p)
		default:
			s.landingError(w, http.StatusBadRequest, "Invalid form", "Choose Confirm payment or Reject.")
			return
		}
		if p.isApp && p.fallBack == "INTENT" {
			s.landingError(w, http.StatusOK, "Done", "You can return to the app.")
			return
		}
		http.Redirect(w, r, p.fallBack, http.StatusSeeOther)
	default:
		s.landingError(w, http.StatusBadRequest, "Invalid form", "Unknown form step.")
	}
}
