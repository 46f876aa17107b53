package demoshop_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/schemas"
)

// testAPIKey is the merchant API key the shop under test is configured with.
const testAPIKey = "test-api-key-9f3c"

// kasseCall is one request the shop made to the fake kasse.
type kasseCall struct {
	Method         string
	Path           string
	IdempotencyKey string
	ContentType    string
	Body           []byte
}

// fakeKasse answers like kasse's HTTP API (host/httpapi) for one merchant: it checks the method, path,
// Authorization header and body of every call against kasse's own JSON Schemas, keeps sessions with the
// canonical state machine (host/payment), honours Idempotency-Key, and answers problem+json documents
// that match schemas/problem.schema.json. Anything unexpected fails the test.
type fakeKasse struct {
	t       *testing.T
	srv     *httptest.Server
	schemas *schemas.Set

	mu       sync.Mutex
	calls    []kasseCall
	sessions map[string]*payment.Session
	// checkoutKeys maps a checkout Idempotency-Key to the session id and the body it was first used with.
	checkoutKeys map[string]keyUse
	// opKeys maps session id + operation Idempotency-Key to the operation and body it was first used with.
	opKeys     map[string]string
	nextID     int
	createFail *problemDoc
	// expressOn is what GET /v1/express/demo answers; POST /v1/express/demo works either way.
	expressOn bool
	// noRedirect, when set before the first request, says which checkouts kasse starts without a
	// redirectUrl, as it does for the ePayment plugin's PUSH_MESSAGE flow.
	noRedirect func(payment.Checkout) bool
}

type keyUse struct {
	id   string
	body string
}

// problemDoc is a problem document as kasse sends it.
type problemDoc struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail,omitempty"`
	Errors []schemas.Violation `json:"errors,omitempty"`
}

var sessionIDPattern = regexp.MustCompile(`^/v1/checkouts/([a-z0-9]+)(/capture|/refund|/cancel)?$`)

func newFakeKasse(t *testing.T) *fakeKasse {
	t.Helper()
	set, err := schemas.Compile()
	if err != nil {
		t.Fatalf("compile schemas: %v", err)
	}
	k := &fakeKasse{t: t, schemas: set, sessions: map[string]*payment.Session{},
		checkoutKeys: map[string]keyUse{}, opKeys: map[string]string{}, nextID: 1}
	k.srv = httptest.NewServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *fakeKasse) URL() string { return k.srv.URL }

// redirectURL is the Vipps landing page URL the fake hands out for a session.
func (k *fakeKasse) redirectURL(id string) string {
	return k.srv.URL + "/landing/" + id + "?token=tok-" + id
}

func (k *fakeKasse) Calls() []kasseCall {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]kasseCall(nil), k.calls...)
}

// lastCall returns the latest call, failing the test if there is none.
func (k *fakeKasse) lastCall() kasseCall {
	k.t.Helper()
	calls := k.Calls()
	if len(calls) == 0 {
		k.t.Fatal("the shop made no call to kasse")
	}
	return calls[len(calls)-1]
}

func (k *fakeKasse) session(id string) payment.Session {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	s, ok := k.sessions[id]
	if !ok {
		k.t.Fatalf("no session %s", id)
	}
	return *s
}

// authorize plays the customer approving the payment in Vipps.
func (k *fakeKasse) authorize(id string) {
	k.t.Helper()
	k.observe(id, payment.Observation{State: payment.StateAuthorized, AuthorizedAmount: -1, CapturedAmount: -1,
		RefundedAmount: -1, CancelledAmount: -1}, true)
}

// authorizeExpress plays the customer sharing an address, choosing shipping for 99 kr and approving an
// Express payment: the reserved amount includes the shipping.
func (k *fakeKasse) authorizeExpress(id string) {
	k.t.Helper()
	k.mu.Lock()
	s := k.sessions[id]
	s.Contact = payment.Contact{UserID: "uiJskNQ6qNN1iwN891uuob==", FirstName: "Ada", LastName: "Lovelace",
		Email: "ada@example.com", PhoneNumber: "91234567"}
	s.Shipping = payment.Shipping{MethodID: "posten", Method: "Posten Servicepakke", Cost: 9900,
		Address: payment.Address{Line1: "Dronning Eufemias gate 42", PostCode: "0191", City: "OSLO", Country: "NO"}}
	amount := s.Amount + 9900
	k.mu.Unlock()
	k.observe(id, payment.Observation{State: payment.StateAuthorized, AuthorizedAmount: amount, CapturedAmount: -1,
		RefundedAmount: -1, CancelledAmount: -1}, false)
}

// reject plays the customer declining in Vipps.
func (k *fakeKasse) reject(id string) {
	k.t.Helper()
	k.observe(id, payment.Observation{State: payment.StateRejected, AuthorizedAmount: -1, CapturedAmount: -1,
		RefundedAmount: -1, CancelledAmount: -1, Reason: "declined by the user"}, false)
}

func (k *fakeKasse) observe(id string, o payment.Observation, fullAmount bool) {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	s, ok := k.sessions[id]
	if !ok {
		k.t.Fatalf("no session %s", id)
	}
	if fullAmount {
		o.AuthorizedAmount = s.Amount
	}
	if !s.Apply(o, "callback", time.Now()) {
		k.t.Fatalf("observation %+v changed nothing on %s", o, id)
	}
}

func (k *fakeKasse) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		k.t.Errorf("fake kasse: read body: %v", err)
	}
	k.mu.Lock()
	k.calls = append(k.calls, kasseCall{Method: r.Method, Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key"),
		ContentType: r.Header.Get("Content-Type"), Body: body})
	k.mu.Unlock()

	if got := r.Header.Get("Authorization"); got != "Bearer "+testAPIKey {
		k.t.Errorf("fake kasse: %s %s: Authorization %q, want the merchant's bearer key", r.Method, r.URL.Path, got)
		w.Header().Set("WWW-Authenticate", `Bearer realm="kasse"`)
		k.problem(w, problemDoc{Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: "send the merchant's API key as Authorization: Bearer <key>"})
		return
	}
	if len(body) > 0 && r.Header.Get("Content-Type") != "application/json" {
		k.t.Errorf("fake kasse: %s %s: Content-Type %q with a body, want application/json", r.Method, r.URL.Path,
			r.Header.Get("Content-Type"))
	}

	if r.URL.Path == "/v1/checkouts" && r.Method == http.MethodPost {
		k.create(w, r, body, false)
		return
	}
	if r.URL.Path == "/v1/express/demo" && r.Method == http.MethodPost {
		k.create(w, r, body, true)
		return
	}
	if r.URL.Path == "/v1/express/demo" && r.Method == http.MethodGet {
		k.mu.Lock()
		on := k.expressOn
		k.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = fmt.Fprintf(w, `{"merchant":"demo","expressCheckout":%t}`, on)
		return
	}
	m := sessionIDPattern.FindStringSubmatch(r.URL.Path)
	switch {
	case m != nil && m[2] == "" && r.Method == http.MethodGet:
		if len(body) != 0 {
			k.t.Errorf("fake kasse: GET %s with a body", r.URL.Path)
		}
		k.mu.Lock()
		s, ok := k.sessions[m[1]]
		k.mu.Unlock()
		if !ok {
			k.problem(w, problemDoc{Title: "Checkout not found", Status: http.StatusNotFound,
				Detail: "no checkout session with this id"})
			return
		}
		k.answer(w, http.StatusOK, s)
	case m != nil && m[2] != "" && r.Method == http.MethodPost:
		k.operate(w, r, m[1], m[2][1:], body)
	default:
		k.t.Errorf("fake kasse: unexpected call %s %s", r.Method, r.URL.Path)
		k.problem(w, problemDoc{Title: "Not found", Status: http.StatusNotFound, Detail: "no route " + r.Method + " " + r.URL.Path})
	}
}

var checkoutKeyPattern = regexp.MustCompile(`^demoshop-[0-9a-f]{8}-order-([0-9]+)$`)

func (k *fakeKasse) create(w http.ResponseWriter, r *http.Request, body []byte, express bool) {
	if err := k.schemas.Validate(schemas.Checkout, body); err != nil {
		k.t.Errorf("fake kasse: POST /v1/checkouts body %s: %v", body, err)
		p := problemDoc{Title: "Request body is invalid", Status: http.StatusBadRequest,
			Detail: "the request body does not match checkout.schema.json"}
		if verr := (*schemas.ValidationError)(nil); errors.As(err, &verr) {
			p.Errors = verr.Violations
		}
		k.problem(w, p)
		return
	}
	var co payment.Checkout
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&co); err != nil {
		k.t.Errorf("fake kasse: decode checkout: %v", err)
	}
	key := r.Header.Get("Idempotency-Key")
	km := checkoutKeyPattern.FindStringSubmatch(key)
	if km == nil || co.Reference != "order-"+km[1] {
		k.t.Errorf("fake kasse: Idempotency-Key %q does not name the order of reference %q", key, co.Reference)
	}

	k.mu.Lock()
	fail := k.createFail
	if fail != nil {
		k.mu.Unlock()
		k.problem(w, *fail)
		return
	}
	if prev, ok := k.checkoutKeys[key]; ok {
		s := k.sessions[prev.id]
		k.mu.Unlock()
		if prev.body != string(body) {
			k.t.Errorf("fake kasse: Idempotency-Key %q reused with another body", key)
			k.problem(w, problemDoc{Title: "Idempotency-Key reused", Status: http.StatusUnprocessableEntity,
				Detail: "Idempotency-Key was already used with a different request body"})
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		k.answer(w, http.StatusCreated, s)
		return
	}
	id := fmt.Sprintf("cs%06d", k.nextID)
	k.nextID++
	now := time.Now().UTC()
	redirect := k.redirectURL(id)
	if k.noRedirect != nil && k.noRedirect(co) {
		redirect = ""
	}
	s := &payment.Session{ID: id, Merchant: co.Merchant, Reference: co.Reference, State: payment.StatePending,
		Amount: co.Amount, Currency: co.Currency, Description: co.Description, ReturnURL: co.ReturnURL,
		Customer: co.Customer, Lines: co.Lines, Plugin: "vipps-ecom", PluginVersion: "1.0.0",
		ProviderReference: "kasse-" + id, RedirectURL: redirect, UserFlow: co.UserFlow, CreatedAt: now, UpdatedAt: now,
		ExpiresAt: now.Add(10 * time.Minute), Revision: 1, Express: express,
		History: []payment.Event{{At: now, To: payment.StatePending, Cause: "checkout created", Amount: co.Amount}}}
	k.sessions[id] = s
	k.checkoutKeys[key] = keyUse{id: id, body: string(body)}
	k.mu.Unlock()
	w.Header().Set("Location", "/v1/checkouts/"+id)
	k.answer(w, http.StatusCreated, s)
}

func (k *fakeKasse) operate(w http.ResponseWriter, r *http.Request, id, op string, body []byte) {
	var req struct {
		Amount int64  `json:"amount"`
		Text   string `json:"text"`
	}
	if len(body) > 0 {
		if err := k.schemas.Validate(schemas.Operation, body); err != nil {
			k.t.Errorf("fake kasse: POST %s body %s: %v", r.URL.Path, body, err)
		}
		if err := json.Unmarshal(body, &req); err != nil {
			k.t.Errorf("fake kasse: decode operation: %v", err)
		}
		if req.Amount == 0 {
			k.t.Errorf("fake kasse: POST %s sends amount 0 explicitly; omit the body for all that is left", r.URL.Path)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	s, ok := k.sessions[id]
	if !ok {
		k.problemLocked(w, problemDoc{Title: "Checkout not found", Status: http.StatusNotFound, Detail: "no checkout session with this id"})
		return
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		fp := op + "|" + string(body)
		if prev, ok := k.opKeys[id+"|"+key]; ok {
			if prev != fp {
				k.problemLocked(w, problemDoc{Title: "Idempotency-Key reused", Status: http.StatusUnprocessableEntity,
					Detail: "Idempotency-Key was already used for a different operation or amount"})
				return
			}
			k.answerLocked(w, http.StatusOK, s)
			return
		}
		defer func() {
			k.opKeys[id+"|"+key] = fp
		}()
	}
	unknown := payment.Observation{AuthorizedAmount: -1, CapturedAmount: -1, RefundedAmount: -1, CancelledAmount: -1}
	o := unknown
	var err error
	switch op {
	case "capture":
		var amt int64
		if amt, err = s.CheckCapture(req.Amount); err == nil {
			o.State, o.CapturedAmount = payment.StateCaptured, s.CapturedAmount+amt
		}
	case "refund":
		var amt int64
		if amt, err = s.CheckRefund(req.Amount); err == nil {
			o.State, o.RefundedAmount = payment.StateCaptured, s.RefundedAmount+amt
		}
	case "cancel":
		if err = s.CheckCancel(); err == nil {
			o.State, o.CancelledAmount = payment.StateCancelled, s.AuthorizedAmount-s.CapturedAmount
		}
	}
	if err != nil {
		k.problemLocked(w, problemDoc{Title: "Operation not allowed in this state", Status: http.StatusConflict,
			Detail: err.Error()})
		return
	}
	s.Apply(o, op, time.Now())
	s.Revision++
	k.answerLocked(w, http.StatusOK, s)
}

func (k *fakeKasse) answer(w http.ResponseWriter, status int, s *payment.Session) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.answerLocked(w, status, s)
}

// answerLocked writes the session as kasse's API shows it; the fake checks it against session.schema.json
// so that it cannot drift from what kasse answers.
func (k *fakeKasse) answerLocked(w http.ResponseWriter, status int, s *payment.Session) {
	data, err := json.Marshal(s)
	if err != nil {
		k.t.Errorf("fake kasse: encode session: %v", err)
	}
	if err := k.schemas.Validate(schemas.Session, data); err != nil {
		k.t.Errorf("fake kasse: its own answer does not match session.schema.json: %v", err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func (k *fakeKasse) problem(w http.ResponseWriter, p problemDoc) { k.problemLocked(w, p) }

// problemLocked writes p as kasse does (application/problem+json, checked against problem.schema.json).
// It touches no fake state, so it may be called with or without the lock.
func (k *fakeKasse) problemLocked(w http.ResponseWriter, p problemDoc) {
	if p.Type == "" {
		p.Type = "https://kasse.dev/problems/" + strings.ToLower(strings.ReplaceAll(p.Title, " ", "-"))
	}
	data, err := json.Marshal(p)
	if err != nil {
		k.t.Errorf("fake kasse: encode problem: %v", err)
	}
	if err := k.schemas.Validate(schemas.Problem, data); err != nil {
		k.t.Errorf("fake kasse: its own problem does not match problem.schema.json: %v", err)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_, _ = w.Write(data)
}
