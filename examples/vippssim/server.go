package vippssim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Tenant is one set of Vipps API credentials and the sales unit (merchant
// serial number) they belong to. Tokens issued to a tenant only work together
// with the tenant's subscription key and only for payments of its MSN.
type Tenant struct {
	// MerchantSerialNumber is the MSN of the sales unit: 5 or 6 digits.
	MerchantSerialNumber string
	// ClientID is sent as the client_id header to /accesstoken/get.
	ClientID string
	// ClientSecret is sent as the client_secret header to /accesstoken/get.
	ClientSecret string
	// SubscriptionKey is the Ocp-Apim-Subscription-Key required on every call.
	SubscriptionKey string
	// Name is the sales unit's name, which the landing and Express pages show
	// the customer, as Vipps shows the name registered in its portal. Default:
	// "merchant <MSN>".
	Name string
}

// DemoTenant returns the credentials of the demo merchant: MSN "123456",
// client id "demo-client-id", secret "demo-client-secret" and subscription key
// "demo-subscription-key". They are public and for local use only.
func DemoTenant() Tenant {
	return Tenant{
		MerchantSerialNumber: "123456",
		ClientID:             "demo-client-id",
		ClientSecret:         "demo-client-secret",
		SubscriptionKey:      "demo-subscription-key",
		Name:                 "Demo shop",
	}
}

// Config configures a [Server]. The zero value of every field but Tenants
// has a default.
type Config struct {
	// Tenants are the accepted credentials. At least one is required; client
	// ids and merchant serial numbers must be unique.
	Tenants []Tenant
	// PublicURL is the base URL the simulator is reached at, used in the
	// landing page url returned by initiate, e.g. http://127.0.0.1:8090.
	// Default: derived from each initiate request's Host header.
	PublicURL string
	// AllowHTTPLoopback accepts http:// callbackPrefix and fallBack URLs whose
	// host is 127.0.0.1 (any 127.0.0.0/8 address), localhost or ::1, and
	// https:// URLs to those hosts. For development and tests only: real Vipps
	// demands public HTTPS URLs, and so does the simulator when this is false.
	AllowHTTPLoopback bool
	// CallbackClient sends the callbacks. Default: a client with Vipps's
	// 3 second timeout that does not follow redirects.
	CallbackClient *http.Client
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// TokenTTL is how long an access token is valid. Default: 1 hour, as in
	// the Vipps test environment.
	TokenTTL time.Duration
	// PaymentTTL is how long a payment waits for the user before it expires
	// (REJECTED callback, errorCode 45). Expiry happens lazily when the payment
	// is next touched, or through [Server.Expire] and [Server.ExpireDue].
	// Default: 10 minutes.
	PaymentTTL time.Duration
	// WebhookTimeout is how long a webhook delivery waits for kasse's answer. Default: 10 seconds, as
	// Vipps does.
	WebhookTimeout time.Duration
	// WebhookRetry is the first pause before a failed webhook delivery is sent again; it doubles up to
	// WebhookRetryMax. Defaults: 100ms and 5s (Vipps: about 2s, and up to daily for 7 days).
	WebhookRetry, WebhookRetryMax time.Duration
	// WebhookAttempts is how many times one event is sent to one webhook before it is dropped. Default 30.
	WebhookAttempts int
	// Logger receives the simulator's log lines: by default a summary, one line
	// per money operation (initiate, capture, refund, cancel), per callback,
	// webhook and shippingDetails call, and per request that failed. Secrets
	// (client secrets, tokens, authToken) are never logged. Default: Logf's
	// lines if Logf is set, else no logging.
	Logger *slog.Logger
	// Logf, when Logger is nil, receives each log line as text (key=value
	// pairs), e.g. testing.T.Logf.
	Logf func(format string, args ...any)
	// Verbose logs every request, the successful ones too (token fetches, polls
	// of /details, /status, ePayment get and events, landing pages, /_sim/
	// reads); without it they are not logged, as they drown the lines that
	// matter.
	Verbose bool
	// Seed seeds the random source of the faults ([Server.SetFaults]), so that
	// a run can be replayed. Default (0): a random seed, logged at start.
	Seed uint64
	// Ledger sets the fees and the report page size of the settlement ledgers (ledger.go); the zero
	// value charges the guide's 4 kr per capture, net settlement, 1000 entries a page.
	Ledger LedgerConfig
}

const (
	defaultTokenTTL   = time.Hour
	defaultPaymentTTL = 10 * time.Minute
	callbackTimeout   = 3 * time.Second
	landingPath       = "/dwo-api-application/v1/deeplink/vippsgateway"
)

var msnPattern = regexp.MustCompile(`^\d{5,6}$`)

// Server is a running simulator. It is safe for concurrent use. Create it
// with [New], serve [Server.Handler], and call [Server.Close] when done.
type Server struct {
	cfg      Config
	log      *slog.Logger
	tenants  []Tenant
	byClient map[string]int
	byMSN    map[string]int
	mux      *http.ServeMux
	handler  http.Handler

	mu        sync.Mutex
	idle      *sync.Cond // signalled when inflight drops to zero
	inflight  int        // callbacks being sent
	closed    bool
	mode      CallbackMode
	tokens    map[string]accessToken
	payments  map[paymentKey]*payment
	landing   map[string]paymentKey // landing page token -> payment
	callbacks []*callbackEntry
	txSeq     int64
	ep        *epaymentSim // ePayment payments and webhooks (epayment.go, webhooks.go)
	ops       []Operation  // the operations log (operations.go)
	opSeq     int64
	fs        *faultState // faults on command (faults.go)
	led       ledgerState // settlement ledgers and the Report API (ledger.go)
}

// New checks cfg, fills in defaults and returns a simulator with no payments.
func New(cfg Config) (*Server, error) {
	if len(cfg.Tenants) == 0 {
		return nil, errors.New("vippssim: config: at least one tenant is required")
	}
	s := &Server{
		byClient: make(map[string]int),
		byMSN:    make(map[string]int),
		tokens:   make(map[string]accessToken),
		payments: make(map[paymentKey]*payment),
		landing:  make(map[string]paymentKey),
		ep:       newEPaymentSim(),
	}
	s.idle = sync.NewCond(&s.mu)
	for i, t := range cfg.Tenants {
		if !msnPattern.MatchString(t.MerchantSerialNumber) {
			return nil, fmt.Errorf("vippssim: config: tenant[%d]: merchant serial number %q is not 5 or 6 digits", i, t.MerchantSerialNumber)
		}
		if t.ClientID == "" || t.ClientSecret == "" || t.SubscriptionKey == "" {
			return nil, fmt.Errorf("vippssim: config: tenant[%d] (MSN %s): client id, client secret and subscription key are required", i, t.MerchantSerialNumber)
		}
		if _, dup := s.byClient[t.ClientID]; dup {
			return nil, fmt.Errorf("vippssim: config: tenant[%d]: duplicate client id", i)
		}
		if _, dup := s.byMSN[t.MerchantSerialNumber]; dup {
			return nil, fmt.Errorf("vippssim: config: tenant[%d]: duplicate merchant serial number %s", i, t.MerchantSerialNumber)
		}
		s.byClient[t.ClientID] = i
		s.byMSN[t.MerchantSerialNumber] = i
		s.tenants = append(s.tenants, t)
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("vippssim: config: public URL: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("vippssim: config: public URL %q: want an absolute http or https URL", cfg.PublicURL)
		}
		cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	}
	if cfg.CallbackClient == nil {
		cfg.CallbackClient = &http.Client{
			Timeout: callbackTimeout,
			// Vipps does not follow redirects on callbacks.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = defaultTokenTTL
	}
	if cfg.PaymentTTL <= 0 {
		cfg.PaymentTTL = defaultPaymentTTL
	}
	if cfg.WebhookTimeout <= 0 {
		cfg.WebhookTimeout = defaultWebhookTimeout
	}
	if cfg.WebhookRetry <= 0 {
		cfg.WebhookRetry = defaultWebhookRetry
	}
	if cfg.WebhookRetryMax < cfg.WebhookRetry {
		cfg.WebhookRetryMax = max(defaultWebhookRetryMax, cfg.WebhookRetry)
	}
	if cfg.WebhookAttempts <= 0 {
		cfg.WebhookAttempts = defaultWebhookAttempts
	}
	switch {
	case cfg.Logger != nil:
		s.log = cfg.Logger
	case cfg.Logf != nil:
		s.log = slog.New(slog.NewTextHandler(logfWriter(cfg.Logf), &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey { // Logf's sink (a test log) has its own
					return slog.Attr{}
				}
				return a
			}}))
	default:
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64() | 1
		s.log.Info("fault seed", "seed", cfg.Seed)
	}
	s.fs = newFaultState(cfg.Seed)
	cfg.Tenants = append([]Tenant(nil), cfg.Tenants...)
	s.cfg = cfg
	s.routes()
	return s, nil
}

// Handler returns the HTTP handler serving the API, the landing page and the
// /_sim/ controls. Unknown routes get a JSON 404 (or 405).
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops webhook delivery (queued events are dropped) and sending new
// callbacks (later ones are recorded with an error)
// and waits for callbacks in flight. It is safe to call more than once.
func (s *Server) Close() {
	s.stopFaults()
	s.closeWebhooks()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for s.inflight > 0 {
		s.idle.Wait()
	}
}

// Flush waits until every callback started so far has been answered or has
// failed, so that [Server.Callbacks] includes it. Callbacks (and webhook
// events) that faults delay or hold for reordering are waited for too.
func (s *Server) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.inflight > 0 || s.fs.pendingOut > 0 {
		s.idle.Wait()
	}
}

func (s *Server) now() time.Time { return s.cfg.Now().UTC() }

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /accesstoken/get", s.handleAccessToken)
	m.HandleFunc("POST /accessToken/get", s.handleAccessToken) // spelling used in Vipps quick-starts
	m.HandleFunc("POST /ecomm/v2/payments", s.handleInitiate)
	m.HandleFunc("POST /ecomm/v2/payments/{$}", s.handleInitiate) // the official Postman collection's spelling
	m.HandleFunc("GET /ecomm/v2/payments/{orderId}/details", s.handleDetails)
	m.HandleFunc("GET /ecomm/v2/payments/{orderId}/status", s.handleStatus)
	m.HandleFunc("POST /ecomm/v2/payments/{orderId}/capture", s.handleCapture)
	m.HandleFunc("PUT /ecomm/v2/payments/{orderId}/cancel", s.handleCancel)
	m.HandleFunc("POST /ecomm/v2/payments/{orderId}/refund", s.handleRefund)
	m.HandleFunc("POST /ecomm/v2/integration-test/payments/{orderId}/approve", s.handleForceApprove)
	m.HandleFunc("GET "+landingPath, s.handleLandingGet)
	m.HandleFunc("POST "+landingPath, s.handleLandingPost)
	s.simRoutes(m)
	s.faultRoutes(m)
	s.operationsRoute(m)
	s.expressRoutes(m)
	s.epaymentRoutes(m)
	s.ledgerRoutes(m)
	s.mux = m
	s.handler = http.HandlerFunc(s.serve)
}

// serve wraps the mux: JSON for unknown routes, the freeze gate and API
// latency (faults.go), a request log line, and a last-resort recover so that
// no input can take the process down.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
			if rec.status == 0 {
				writeAPIError(rec, newVippsError(http.StatusInternalServerError, groupVippsError, "99", "Internal error"))
			}
		}
		// Quiet by default: a line per request only when it failed; what succeeded is summed up by the
		// operation lines (recordOpLocked) and the callback and webhook lines. Verbose logs every request.
		if code := rec.code(); s.cfg.Verbose || code >= 400 {
			level := slog.LevelInfo
			if code >= 400 {
				level = slog.LevelWarn
			}
			// The path only: the landing page query carries the payment token.
			s.log.Log(r.Context(), level, "request", "method", r.Method, "path", r.URL.Path, "status", code)
		}
	}()
	// No redirects to cleaned paths: a path that is not canonical is unknown
	// (but for initiate with a trailing slash, which Vipps accepts).
	_, pattern := s.mux.Handler(r)
	if pattern == "" || (path.Clean(r.URL.Path) != r.URL.Path && r.URL.Path != "/ecomm/v2/payments/") {
		s.noRoute(rec, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.mux.ServeHTTP(rec, r)
		return
	}
	r, done := s.throughGate(rec, r)
	var out http.ResponseWriter = rec
	var buf *bufferedWriter
	if delay := s.latency(); delay > 0 {
		buf = &bufferedWriter{header: http.Header{}}
		out = buf
		defer func() {
			if v := recover(); v != nil {
				panic(v) // to the recover above, which answers 500
			}
			select { // the operation is done; only the answer is late
			case <-time.After(delay):
			case <-r.Context().Done():
			case <-s.fs.stop:
			}
			buf.flushTo(rec)
		}()
	}
	defer done() // before the latency: the next held request need not wait for this answer
	s.mux.ServeHTTP(out, r)
}

func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if m == r.Method || path.Clean(r.URL.Path) != r.URL.Path {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeAPIError(w, newAzureError(http.StatusMethodNotAllowed, "Method not allowed for this resource"))
		return
	}
	writeAPIError(w, newAzureError(http.StatusNotFound, "Resource not found"))
}

// logfWriter turns each line a slog text handler writes into one Logf call.
type logfWriter func(format string, args ...any)

func (f logfWriter) Write(p []byte) (int, error) {
	f("%s", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// logSent logs a call the simulator made to the merchant (callback, webhook, shippingDetails, consent
// removal): info when it was answered 2xx, a warning otherwise.
func (s *Server) logSent(what string, status int, errText string, args ...any) {
	level := slog.LevelInfo
	if status < 200 || status > 299 {
		level = slog.LevelWarn
	}
	args = append(args, "answer", status)
	if errText != "" {
		args = append(args, "err", errText)
	}
	s.log.Log(context.Background(), level, what+" sent", args...)
}

// tenantName is the name the pages show for the sales unit msn.
func (s *Server) tenantName(msn string) string {
	if i, ok := s.byMSN[msn]; ok && s.tenants[i].Name != "" {
		return s.tenants[i].Name
	}
	return "merchant " + msn
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) code() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
