// Package adaptertest is the conformance kit every kasse platform adapter runs, the built-in ones and
// third-party ones alike (in the spirit of net/http/httptest and testing/fstest): given an adapter and a
// few signed deliveries with the events they must give, Run checks signature verification (a correct
// signature passes, a tampered body, a missing signature and a wrong secret fail), translation, the
// absence of panics on mangled input, and the shape of every status update the adapter renders.
//
// It owns no adapter and no fixtures; each adapter's tests bring their own.
package adaptertest

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/adapters"
)

// Fixture is one delivery and what the adapter must make of it.
type Fixture struct {
	// Name names the sub-test.
	Name string
	// Merchant receives the delivery; its Platform carries the secret the delivery is signed with.
	Merchant adapters.Merchant
	// Header holds the delivery's headers, signature included (computed by the test, not by the
	// adapter under test).
	Header http.Header
	// Body is the raw body.
	Body []byte
	// Sync marks a delivery to the synchronous checkout route.
	Sync bool
	// ReceivedAt is the delivery time; default time.Now().
	ReceivedAt time.Time
	// Unsigned marks a delivery that carries no signature by design (the WooCommerce ping): the tamper
	// and wrong-secret checks are skipped, and Verify must accept it.
	Unsigned bool
	// Want is the event Parse must return. Only its non-zero fields are compared, except Action, which
	// always is.
	Want adapters.Event
	// WantErr, if set, is a substring Parse's error must contain; Want is then ignored.
	WantErr string
}

// Run runs the conformance checks for adapter a on fixtures, and renders every status for every
// distinct merchant of the fixtures, for the first order reference a fixture's Want names ("1001" if
// none does).
func Run(t *testing.T, a adapters.Adapter, fixtures []Fixture) {
	t.Helper()
	if len(fixtures) == 0 {
		t.Fatal("adaptertest: no fixtures")
	}
	for _, f := range fixtures {
		t.Run(f.Name, func(t *testing.T) {
			d := delivery(f, f.Body)
			if err := a.Verify(d); err != nil {
				t.Fatalf("Verify rejected a correctly signed delivery: %v", err)
			}
			if !f.Unsigned {
				checkRejections(t, a, f)
			}
			ev, err := a.Parse(delivery(f, f.Body))
			switch {
			case f.WantErr != "":
				if err == nil || !strings.Contains(err.Error(), f.WantErr) {
					t.Errorf("Parse error = %v, want one containing %q", err, f.WantErr)
				}
			case err != nil:
				t.Fatalf("Parse: %v", err)
			default:
				compare(t, ev, &f.Want)
				again, err := a.Parse(delivery(f, f.Body))
				if err != nil || !reflect.DeepEqual(ev, again) {
					t.Errorf("Parse is not deterministic: %+v then %+v (%v)", ev, again, err)
				}
			}
			mangle(t, a, f)
		})
	}
	// Render for each merchant, addressing an order reference the fixtures use.
	ref := "1001"
	for _, f := range fixtures {
		if f.Want.Reference != "" {
			ref = f.Want.Reference
			break
		}
	}
	seen := map[string]bool{}
	for _, f := range fixtures {
		if seen[f.Merchant.ID] {
			continue
		}
		seen[f.Merchant.ID] = true
		t.Run("render/"+f.Merchant.ID, func(t *testing.T) { checkRender(t, a, f.Merchant, ref) })
	}
}

func delivery(f Fixture, body []byte) *adapters.Delivery {
	at := f.ReceivedAt
	if at.IsZero() {
		at = time.Now()
	}
	return &adapters.Delivery{Merchant: f.Merchant, Header: f.Header.Clone(), Body: body, Sync: f.Sync, ReceivedAt: at}
}

func checkRejections(t *testing.T, a adapters.Adapter, f Fixture) {
	t.Helper()
	if len(f.Body) > 0 {
		tampered := bytes.Clone(f.Body)
		tampered[len(tampered)/2] ^= 0x01
		if err := a.Verify(delivery(f, tampered)); !errors.Is(err, adapters.ErrUnauthorized) {
			t.Errorf("Verify of a tampered body = %v, want ErrUnauthorized", err)
		}
		if err := a.Verify(delivery(f, append(bytes.Clone(f.Body), ' '))); !errors.Is(err, adapters.ErrUnauthorized) {
			t.Errorf("Verify of a body with a trailing byte = %v, want ErrUnauthorized", err)
		}
	}
	wrong := f
	p := *f.Merchant.Platform
	p.WebhookSecret, p.PreviousWebhookSecret = "not-the-secret", ""
	wrong.Merchant.Platform = &p
	if err := a.Verify(delivery(wrong, f.Body)); !errors.Is(err, adapters.ErrUnauthorized) {
		t.Errorf("Verify with a wrong secret = %v, want ErrUnauthorized", err)
	}
	none := f
	none.Merchant.Platform = &p
	none.Merchant.Platform.WebhookSecret = ""
	if err := a.Verify(delivery(none, f.Body)); !errors.Is(err, adapters.ErrUnauthorized) {
		t.Errorf("Verify with no secret configured = %v, want ErrUnauthorized", err)
	}
	stripped := f
	stripped.Header = http.Header{}
	for k, v := range f.Header {
		if k == "Content-Type" {
			stripped.Header[k] = v
		}
	}
	if err := a.Verify(delivery(stripped, f.Body)); !errors.Is(err, adapters.ErrUnauthorized) {
		t.Errorf("Verify without the platform's headers = %v, want ErrUnauthorized", err)
	}
}

func compare(t *testing.T, got, want *adapters.Event) {
	t.Helper()
	if got == nil {
		t.Fatal("Parse returned a nil event")
	}
	for _, p := range problems(got, want) {
		t.Error(p)
	}
}

// problems lists how got differs from want (Action always, the other fields where want's are non-zero)
// and what is inconsistent in got whatever was wanted: a checkout or Express event without its checkout,
// an Express event without the cart's lines, a capture, cancel or refund without a reference.
func problems(got, want *adapters.Event) []string {
	var out []string
	if got.Action != want.Action {
		out = append(out, fmt.Sprintf("Action = %q, want %q (reason %q)", got.Action, want.Action, got.Reason))
	}
	gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := range wv.NumField() {
		if wv.Field(i).IsZero() || wv.Type().Field(i).Name == "Action" {
			continue
		}
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			out = append(out, fmt.Sprintf("%s = %+v, want %+v", wv.Type().Field(i).Name, gv.Field(i).Interface(),
				wv.Field(i).Interface()))
		}
	}
	switch got.Action {
	case adapters.ActionCheckout, adapters.ActionExpressCheckout:
		switch {
		case got.Checkout == nil:
			out = append(out, string(got.Action)+" event without a Checkout")
		case got.Checkout.Reference != got.Reference || got.Checkout.Merchant == "":
			out = append(out, fmt.Sprintf("checkout reference %q / merchant %q do not match the event's reference %q",
				got.Checkout.Reference, got.Checkout.Merchant, got.Reference))
		case got.Action == adapters.ActionExpressCheckout && len(got.Checkout.Lines) == 0:
			out = append(out, "express event without the cart's Lines (Express shipping is computed from them)")
		}
	case adapters.ActionCapture, adapters.ActionCancel, adapters.ActionRefund:
		if got.Reference == "" {
			out = append(out, fmt.Sprintf("%s event without a Reference", got.Action))
		}
	}
	return out
}

// mangle parses truncated and altered versions of the body: Parse may fail but must not panic.
func mangle(t *testing.T, a adapters.Adapter, f Fixture) {
	t.Helper()
	bodies := [][]byte{nil, []byte("{}"), []byte("[]"), []byte("null"), []byte(`{"id":"x"}`)}
	for i := 0; i < len(f.Body); i += max(1, len(f.Body)/40) {
		bodies = append(bodies, f.Body[:i])
	}
	bodies = append(bodies, bytes.ReplaceAll(f.Body, []byte(`"`), []byte(`'`)),
		bytes.ReplaceAll(f.Body, []byte(`: "`), []byte(`: 1e999, "x":"`)))
	for _, b := range bodies {
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Errorf("Parse panicked on %q: %v", truncate(b), v)
				}
			}()
			_, _ = a.Parse(delivery(f, b))
		}()
	}
}

func truncate(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}

// Statuses are the status updates checkRender renders.
var Statuses = []adapters.Status{adapters.StatusPaid, adapters.StatusCaptured, adapters.StatusFailed,
	adapters.StatusCancelled, adapters.StatusRefunded, adapters.StatusSettled}

func checkRender(t *testing.T, a adapters.Adapter, m adapters.Merchant, ref string) {
	t.Helper()
	for _, st := range Statuses {
		reqs, err := a.Render(m, adapters.StatusUpdate{Status: st, Reference: ref, Session: "ksession",
			ProviderReference: "kvippsref", Amount: 2935, Currency: "NOK", Reason: "declined"})
		if err != nil {
			t.Errorf("Render(%s): %v", st, err)
			continue
		}
		for i, r := range reqs {
			u, err := url.Parse(r.URL)
			if err != nil || !u.IsAbs() || u.Host == "" {
				t.Errorf("Render(%s) request %d: URL %q is not absolute", st, i, r.URL)
			}
			switch r.Method {
			case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			default:
				t.Errorf("Render(%s) request %d: method %q", st, i, r.Method)
			}
			if len(r.Body) > 0 && r.Header.Get("Content-Type") == "" {
				t.Errorf("Render(%s) request %d: a body without Content-Type", st, i)
			}
		}
	}
	if _, err := a.Render(m, adapters.StatusUpdate{Status: "bogus", Reference: "1"}); err == nil {
		t.Error("Render accepted an unknown status")
	}
}
