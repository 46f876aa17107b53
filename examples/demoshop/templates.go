package demoshop

import (
	"html/template"
	"strings"
)

// layout is shared by every page; each page defines "content". Everything a page shows passes through
// html/template's contextual escaping, kasse's problem texts included.
const layout = `{{define "layout"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} – Demo shop</title>
{{- block "head" .}}{{end}}
<style>
body{font-family:system-ui,sans-serif;max-width:44rem;margin:0 auto;padding:0 1rem 2rem;line-height:1.5;color:#1a1a1a}
header{display:flex;flex-wrap:wrap;gap:1rem;align-items:baseline;border-bottom:1px solid #ccc;margin-bottom:1rem;padding:.5rem 0}
header .brand{font-weight:700;font-size:1.2rem;color:#1a1a1a;text-decoration:none}
a{color:#0b57d0}
label{display:block;font-weight:600;margin-top:1rem}
input{font-size:1.1rem;padding:.35rem;width:10rem}
.hint{display:block;font-weight:400;font-size:.9rem;color:#555}
button{font-size:1.05rem;padding:.55rem 1.1rem;margin:1rem .5rem 0 0;border-radius:.4rem;border:2px solid #ff5b24;background:#fff;color:#1a1a1a;cursor:pointer}
button.vipps{background:#ff5b24;color:#fff}
button:focus-visible,a:focus-visible,input:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}
.price{font-size:1.2rem;font-weight:600}
.error,.problem{border-left:4px solid #a50000;padding:.25rem .75rem;background:#fff4f4}
.ok{border-left:4px solid #137333;padding:.25rem .75rem;background:#f3fbf5}
.state{font-size:1.2rem;font-weight:600}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}
td.num,th.num{text-align:right;white-space:nowrap}
dt{font-weight:600}
section{margin-top:1.5rem}
footer{margin-top:2rem;font-size:.85rem;color:#555}
</style>
</head>
<body>
<header>
<a class="brand" href="/">Demo shop</a>
<nav aria-label="Main"><a href="/">Products</a> · <a href="/orders">Orders (merchant)</a></nav>
</header>
<main>
{{template "content" .}}
</main>
<footer>A demo shop for kasse. Payments go through kasse to Vipps (or the local Vipps simulator); orders live in memory only.</footer>
</body>
</html>{{end}}
{{define "delivery"}}
<section aria-labelledby="delivery">
<h2 id="delivery">Delivery (Vipps Express Checkout)</h2>
{{- if .Shipping.Method}}
<dl>
<dt>Customer</dt><dd id="customer">{{if .Contact.FirstName}}{{.Contact.FirstName}} {{.Contact.LastName}}{{if .Contact.Email}}, {{.Contact.Email}}{{end}}{{if .Contact.PhoneNumber}}, {{.Contact.PhoneNumber}}{{end}}{{else}}removed at the customer's request{{end}}</dd>
<dt>Address</dt><dd id="address">{{if .Shipping.Address.Line1}}{{.Shipping.Address.Line1}}{{if .Shipping.Address.Line2}}, {{.Shipping.Address.Line2}}{{end}}, {{.Shipping.Address.PostCode}} {{.Shipping.Address.City}}{{if .Shipping.Address.Country}}, {{.Shipping.Address.Country}}{{end}}{{else}}removed at the customer's request{{end}}</dd>
<dt>Shipping</dt><dd id="shipping">{{.Shipping.Method}} – <data value="{{.Shipping.Cost}}">{{kr .Shipping.Cost}}</data></dd>
<dt>Total with shipping</dt><dd id="total"><data value="{{.AuthorizedAmount}}">{{kr .AuthorizedAmount}}</data></dd>
</dl>
{{- else}}
<p>Vipps has not told us the address and shipping yet.</p>
{{- end}}
</section>
{{end}}`

const homePage = `{{define "content"}}
<h1>Products</h1>
<ul>
{{- range .Products}}
<li><a href="/products/{{.SKU}}">{{.Name}}</a> – <data value="{{.Price}}">{{kr .Price}}</data></li>
{{- end}}
</ul>
{{end}}`

const productPage = `{{define "content"}}
<h1>{{.Product.Name}}</h1>
<p class="price"><data value="{{.Product.Price}}">{{kr .Product.Price}}</data></p>
{{if .Product.Description}}<p>{{.Product.Description}}</p>{{end}}
{{- if .Errors}}
<div class="error" role="alert" id="form-errors">
<p>Please correct this:</p>
<ul>{{range .Errors}}<li>{{.}}</li>{{end}}</ul>
</div>
{{- end}}
<form method="post" action="/checkout">
<input type="hidden" name="sku" value="{{.Product.SKU}}">
<label for="quantity">Quantity <span class="hint">1 to 99</span></label>
<input id="quantity" name="quantity" type="number" inputmode="numeric" min="1" max="99" step="1" required value="{{.Quantity}}"{{if .QuantityError}} aria-invalid="true" aria-describedby="form-errors"{{end}}>
<label for="phone">Mobile number (optional) <span class="hint">8 digits; fills in the Vipps page for you</span></label>
<input id="phone" name="phone" type="tel" inputmode="numeric" autocomplete="tel-national" maxlength="20" value="{{.Phone}}"{{if .PhoneError}} aria-invalid="true" aria-describedby="form-errors"{{end}}>
<div>
<button type="submit" class="vipps" name="flow" value="vipps">Pay with Vipps</button>
{{- if .Express}}
<button type="submit" name="flow" value="express">Vipps Express Checkout</button>
{{- end}}
</div>
</form>
<p><a href="/">Back to all products</a></p>
{{end}}`

const messagePage = `{{define "content"}}
<h1>{{.Heading}}</h1>
{{range .Paragraphs}}<p>{{.}}</p>{{end}}
{{- with .Problem}}
<div class="problem" role="alert">
<p><strong>{{.Title}}</strong>{{if .Status}} (HTTP {{.Status}}){{end}}</p>
{{if .Detail}}<p>{{.Detail}}</p>{{end}}
{{- if .Errors}}
<ul>{{range .Errors}}<li>{{if .Pointer}}<code>{{.Pointer}}</code>: {{end}}{{.Detail}}</li>{{end}}</ul>
{{- end}}
</div>
{{- end}}
{{range .Links}}<p><a href="{{.Href}}">{{.Text}}</a></p>{{end}}
{{end}}`

const thanksPage = `{{define "content"}}
<h1>{{.Heading}}</h1>
<p>Order <strong>{{.Order.ID}}</strong>: {{.Order.Quantity}} × {{.Order.ProductName}}, <data value="{{.Order.Amount}}">{{kr .Order.Amount}}</data>.</p>
{{- if .Checkout}}
<p class="state" role="status">{{.Words}}</p>
{{- if .Checkout.Reason}}<p>Reason given by Vipps: {{.Checkout.Reason}}</p>{{end}}
{{- if .Checkout.Express}}{{template "delivery" .Checkout}}{{end}}
{{- else if .Order.PaymentError}}
<p class="error" role="alert">The payment was not started: {{.Order.PaymentError}}</p>
{{- else if .ReadError}}
<p class="error" role="alert">We could not read the payment state just now ({{.ReadError}}). Reload this page in a moment.</p>
{{- end}}
{{- if .TryAgain}}<p><a href="/products/{{.Order.SKU}}">Try again</a></p>{{end}}
<p><a href="/orders/{{.Order.ID}}">See order {{.Order.ID}}</a></p>
{{end}}`

// confirmPage reloads itself every 3 seconds (meta refresh, no JavaScript); the handler, Shop.confirm,
// sends the browser on to the thank-you page once the payment has left pending.
const confirmPage = `{{define "head"}}
<meta http-equiv="refresh" content="3">
{{- end}}
{{define "content"}}
<h1>Confirm the payment in your Vipps app</h1>
<p class="state" role="status">We have sent a payment request to your phone{{if .Order.Phone}}, <strong>{{.Order.Phone}}</strong>{{end}}. Open the Vipps app and confirm the payment.</p>
<p>Order <strong>{{.Order.ID}}</strong>: {{.Order.Quantity}} × {{.Order.ProductName}}, <data value="{{.Order.Amount}}">{{kr .Order.Amount}}</data>.</p>
{{- if .ReadError}}
<p class="error" role="alert">We could not read the payment state just now ({{.ReadError}}). We will try again.</p>
{{- end}}
<p>This page updates by itself and takes you on as soon as the payment is confirmed. <a href="/orders/{{.Order.ID}}/confirm">Check now</a></p>
<p>No request in the app? <a href="/orders/{{.Order.ID}}/thanks">See the order</a> or <a href="/products/{{.Order.SKU}}">try again</a>.</p>
{{end}}`

const ordersPage = `{{define "content"}}
<h1>Orders</h1>
<p>The merchant's view. States are read from kasse now.{{if .Hidden}} Showing the newest {{len .Rows}} of {{.Total}} orders.{{end}}</p>
{{- if .Rows}}
<table>
<caption class="hint">Newest first</caption>
<thead><tr><th scope="col">Order</th><th scope="col">Created</th><th scope="col">Items</th><th scope="col" class="num">Amount</th><th scope="col">Payment</th></tr></thead>
<tbody>
{{- range .Rows}}
<tr><td><a href="/orders/{{.Order.ID}}">{{.Order.ID}}</a></td><td><time datetime="{{.Order.CreatedAt.Format "2006-01-02T15:04:05Z07:00"}}">{{.Order.CreatedAt.Format "2006-01-02 15:04"}}</time></td><td>{{.Order.Quantity}} × {{.Order.ProductName}}</td><td class="num">{{kr .Order.Amount}}</td><td>{{.State}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>No orders yet. <a href="/">Buy something.</a></p>
{{- end}}
{{end}}`

const orderPage = `{{define "content"}}
<h1>Order {{.Order.ID}}</h1>
{{- with .Flash}}
<div id="result" class="{{if .OK}}ok{{else}}problem{{end}}" role="{{if .OK}}status{{else}}alert{{end}}">
<p><strong>{{.Message}}</strong></p>
{{- with .Problem}}
{{if .Detail}}<p>{{.Detail}}</p>{{end}}
{{- if .Errors}}<ul>{{range .Errors}}<li>{{if .Pointer}}<code>{{.Pointer}}</code>: {{end}}{{.Detail}}</li>{{end}}</ul>{{end}}
{{- end}}
</div>
{{- end}}
<dl>
<dt>Items</dt><dd>{{.Order.Quantity}} × {{.Order.ProductName}} ({{.Order.SKU}}) at {{kr .Order.UnitPrice}}</dd>
<dt>Total</dt><dd><data value="{{.Order.Amount}}">{{kr .Order.Amount}}</data></dd>
<dt>Created</dt><dd><time datetime="{{.Order.CreatedAt.Format "2006-01-02T15:04:05Z07:00"}}">{{.Order.CreatedAt.Format "2006-01-02 15:04:05"}}</time></dd>
{{- if .Order.CheckoutID}}<dt>kasse checkout</dt><dd><code>{{.Order.CheckoutID}}</code></dd>{{end}}
</dl>
{{- if .Order.PaymentError}}
<p class="error">The payment was never started: {{.Order.PaymentError}}</p>
{{- else if .ReadError}}
<p class="error" role="alert">Could not read the payment from kasse: {{.ReadError}}</p>
{{- end}}
{{- with .Checkout}}
<section aria-labelledby="payment">
<h2 id="payment">Payment</h2>
<p class="state">State: {{.State}} – {{$.Words}}</p>
{{if .Reason}}<p>Reason: {{.Reason}}</p>{{end}}
{{- if .Express}}{{template "delivery" .}}{{end}}
<table>
<caption class="hint">Amounts</caption>
<tbody>
<tr><th scope="row">Amount</th><td class="num">{{kr .Amount}}</td></tr>
<tr><th scope="row">Authorized</th><td class="num">{{kr .AuthorizedAmount}}</td></tr>
<tr><th scope="row">Captured</th><td class="num">{{kr .CapturedAmount}}</td></tr>
<tr><th scope="row">Refunded</th><td class="num">{{kr .RefundedAmount}}</td></tr>
<tr><th scope="row">Cancelled</th><td class="num">{{kr .CancelledAmount}}</td></tr>
<tr><th scope="row">Left to capture</th><td class="num">{{kr $.LeftToCapture}}</td></tr>
<tr><th scope="row">Left to refund</th><td class="num">{{kr $.LeftToRefund}}</td></tr>
</tbody>
</table>
</section>
{{- with .Settlement}}
<section aria-labelledby="settlement">
<h2 id="settlement">Settlement (from the Vipps ledger)</h2>
<table>
<caption class="hint">Ledger date {{.LedgerDate}}</caption>
<tbody>
<tr><th scope="row">Captured</th><td class="num">{{kr .Captured}}</td></tr>
<tr><th scope="row">Refunded</th><td class="num">{{kr .Refunded}}</td></tr>
<tr><th scope="row">Fees</th><td class="num">{{kr .Fees}}</td></tr>
<tr><th scope="row">Net to the bank</th><td class="num">{{kr .Net}}</td></tr>
<tr><th scope="row">Payout</th><td>{{if .PayoutReference}}{{.PayoutReference}}, expected {{.PayoutDate}}{{else}}not scheduled yet{{end}}</td></tr>
</tbody>
</table>
{{- if .Mismatch}}<p class="error" role="alert">The ledger does not match: {{.Mismatch}}</p>{{end}}
</section>
{{- end}}
<section aria-labelledby="actions">
<h2 id="actions">Actions</h2>
{{- if $.CanCapture}}
<form method="post" action="/orders/{{$.Order.ID}}/capture">
<input type="hidden" name="key" value="{{$.OpKey}}">
<label for="capture-amount">Amount to capture in kr (optional) <span class="hint">Leave empty to capture all that is left, {{kr $.LeftToCapture}}</span></label>
<input id="capture-amount" name="amount" type="text" inputmode="decimal" maxlength="20" autocomplete="off">
<button type="submit">Ship (capture)</button>
</form>
{{- end}}
{{- if $.CanRefund}}
<form method="post" action="/orders/{{$.Order.ID}}/refund">
<input type="hidden" name="key" value="{{$.OpKey}}">
<label for="refund-amount">Amount to refund in kr (optional) <span class="hint">Leave empty to refund all that is left, {{kr $.LeftToRefund}}</span></label>
<input id="refund-amount" name="amount" type="text" inputmode="decimal" maxlength="20" autocomplete="off">
<button type="submit">Refund</button>
</form>
{{- end}}
{{- if $.CanCancel}}
<form method="post" action="/orders/{{$.Order.ID}}/cancel">
<input type="hidden" name="key" value="{{$.OpKey}}">
<button type="submit">Cancel</button>
</form>
{{- end}}
{{- if not (or $.CanCapture $.CanRefund $.CanCancel)}}
<p>Nothing can be done with this payment in state {{.State}}.</p>
{{- end}}
</section>
{{- if .History}}
<section aria-labelledby="history">
<h2 id="history">History (from kasse)</h2>
<table>
<thead><tr><th scope="col">When</th><th scope="col">Change</th><th scope="col">Cause</th><th scope="col" class="num">Amount</th></tr></thead>
<tbody>
{{- range .History}}
<tr><td><time datetime="{{.At.Format "2006-01-02T15:04:05Z07:00"}}">{{.At.Format "2006-01-02 15:04:05"}}</time></td><td>{{if .From}}{{.From}} → {{.To}}{{else}}created ({{.To}}){{end}}</td><td>{{.Cause}}{{if .Detail}}: {{.Detail}}{{end}}</td><td class="num">{{if .Amount}}{{kr .Amount}}{{end}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
{{- end}}
{{- end}}
{{- if .Order.Ops}}
<section aria-labelledby="log">
<h2 id="log">Actions taken here</h2>
<ul>
{{- range .Order.Ops}}
<li><time datetime="{{.At.Format "2006-01-02T15:04:05Z07:00"}}">{{.At.Format "15:04:05"}}</time> {{.Op}}: {{.Message}}</li>
{{- end}}
</ul>
</section>
{{- end}}
<p><a href="/orders">All orders</a> · <a href="/orders/{{.Order.ID}}/thanks">Customer's thank-you page</a></p>
{{end}}`

// pages are the parsed templates by page name; each executes "layout".
type pages map[string]*template.Template

func parsePages() (pages, error) {
	base, err := template.New("layout").Funcs(template.FuncMap{"kr": FormatKroner}).Parse(layout)
	if err != nil {
		return nil, err
	}
	p := pages{}
	for name, text := range map[string]string{
		"home": homePage, "product": productPage, "message": messagePage, "thanks": thanksPage,
		"orders": ordersPage, "order": orderPage, "confirm": confirmPage,
	} {
		t, err := base.Clone()
		if err == nil {
			t, err = t.Parse(text)
		}
		if err != nil {
			return nil, err
		}
		p[name] = t
	}
	return p, nil
}

// customerWords says what a payment state means to the customer.
func customerWords(state string) string {
	switch state {
	case "pending":
		return "Waiting for Vipps — your payment is not confirmed yet. Reload this page in a moment."
	case "authorized":
		return "Payment authorized — we will charge you when we ship."
	case "captured":
		return "Payment received — your order has been shipped."
	case "refunded":
		return "Payment refunded — the money is on its way back to you."
	case "cancelled":
		return "Payment cancelled — you have not been charged."
	case "rejected":
		return "Payment not completed — it was declined or cancelled in Vipps. You have not been charged."
	case "expired":
		return "Payment timed out — it was not confirmed in time. You have not been charged."
	case "failed":
		return "Payment failed — Vipps could not reserve the amount. You have not been charged."
	}
	return "Payment state: " + strings.TrimSpace(state)
}

// merchantWords says what a payment state means to the merchant.
func merchantWords(state string) string {
	switch state {
	case "pending":
		return "the customer has not approved yet"
	case "authorized":
		return "reserved on the customer's account; ship, then capture"
	case "captured":
		return "money captured (refunds still possible)"
	case "refunded":
		return "everything captured was refunded"
	case "cancelled":
		return "cancelled; the reservation is released"
	case "rejected":
		return "the customer declined"
	case "expired":
		return "the customer never confirmed"
	case "failed":
		return "Vipps could not reserve the amount"
	}
	return "unknown state"
}
