package demoshop_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/kassehq/kasse/host/payment"
)

// pushWithPhone answers like kasse with the ePayment plugin: a checkout that names the customer's phone
// is a PUSH_MESSAGE payment, without a redirectUrl.
func pushWithPhone(co payment.Checkout) bool {
	return co.Customer != nil && co.Customer.PhoneNumber != ""
}

const refreshTag = `<meta http-equiv="refresh" content="3">`

// buyWithPhone posts the product form with a phone number and returns the kasse checkout id and where the
// browser was sent.
func (ts *testShop) buyWithPhone(sku, qty, phone string) (id, location string) {
	ts.t.Helper()
	r := ts.post("/checkout", url.Values{"sku": {sku}, "quantity": {qty}, "phone": {phone}, "flow": {"vipps"}}).
		wantStatus(ts.t, http.StatusSeeOther)
	for sid := range ts.kasse.sessionsByKey(ts.kasse.lastCall().IdempotencyKey) {
		id = sid
	}
	return id, r.location
}

// TestPushMessageConfirmPage follows a payment that kasse starts without a redirectUrl: the shop asks the
// customer to confirm in the Vipps app on a page that reloads itself until the payment leaves pending, and
// then goes on to the thank-you page, for each way the payment can end.
func TestPushMessageConfirmPage(t *testing.T) {
	tests := []struct {
		name   string
		finish func(k *fakeKasse, id string)
		want   []string
	}{
		{"approved", (*fakeKasse).authorize, []string{"Thank you for your order", "Payment authorized — we will charge you when we ship."}},
		{"rejected", (*fakeKasse).reject, []string{"Your order is not paid", "Payment not completed", `<a href="/products/HAT-1">Try again</a>`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newFakeKasse(t)
			k.noRedirect = pushWithPhone
			ts := newTestShop(t, k, nil)
			id, loc := ts.buyWithPhone("HAT-1", "1", "91234567")
			if loc != "/orders/1001/confirm" {
				t.Fatalf("redirected to %q, want the confirm page", loc)
			}
			if s := k.session(id); s.Customer == nil || s.Customer.PhoneNumber != "91234567" {
				t.Fatalf("checkout without the phone number: %+v", s.Customer)
			}
			for range 2 { // pending: the page stays, and keeps refreshing itself
				ts.get(loc).wantStatus(t, http.StatusOK).
					wantBody(t, "Confirm the payment in your Vipps app", refreshTag, "91234567", "Order <strong>1001</strong>",
						`<a href="/orders/1001/confirm">Check now</a>`).
					wantNoBody(t, "<script")
			}
			tt.finish(k, id)
			r := ts.get(loc).wantStatus(t, http.StatusSeeOther)
			if r.location != "/orders/1001/thanks" {
				t.Fatalf("after the payment left pending: redirected to %q, want the thank-you page", r.location)
			}
			ts.get(r.location).wantStatus(t, http.StatusOK).wantBody(t, tt.want...).wantNoBody(t, refreshTag)
		})
	}
}

// TestPushMessageOnlyWithPhone checks the cases around the confirm page: a checkout without a phone still
// goes to kasse's redirectUrl, an order that never reached kasse goes to the thank-you page, and a
// redirectUrl missing where no push message can have been sent is still an error.
func TestPushMessageOnlyWithPhone(t *testing.T) {
	k := newFakeKasse(t)
	k.noRedirect = pushWithPhone
	ts := newTestShop(t, k, nil)

	id := ts.buy("HAT-1", "1") // no phone: WEB_REDIRECT, the browser goes to kasse's redirectUrl
	ts.get("/orders/1001/confirm").wantStatus(t, http.StatusOK).wantBody(t, refreshTag)
	k.authorize(id)
	ts.get("/orders/1001/confirm").wantStatus(t, http.StatusSeeOther)

	k.mu.Lock()
	k.createFail = &problemDoc{Title: "Plugin refused the checkout", Status: http.StatusUnprocessableEntity}
	k.mu.Unlock()
	ts.post("/checkout", url.Values{"sku": {"HAT-1"}, "quantity": {"1"}, "phone": {"91234567"}, "flow": {"vipps"}}).
		wantStatus(t, http.StatusBadGateway)
	if r := ts.get("/orders/1002/confirm").wantStatus(t, http.StatusSeeOther); r.location != "/orders/1002/thanks" {
		t.Fatalf("order without a checkout: redirected to %q", r.location)
	}
	ts.get("/orders/1002/thanks").wantBody(t, "Your order is not paid")
	ts.get("/orders/9999/confirm").wantStatus(t, http.StatusNotFound)

	k2 := newFakeKasse(t)
	k2.noRedirect = func(payment.Checkout) bool { return true }
	ts2 := newTestShop(t, k2, nil)
	ts2.post("/checkout", url.Values{"sku": {"HAT-1"}, "quantity": {"1"}, "flow": {"vipps"}}).
		wantStatus(t, http.StatusBadGateway).wantBody(t, "We could not start the payment")
}
