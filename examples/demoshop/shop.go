package demoshop

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"
)

// Limits of the shop's input handling and memory.
const (
	// MaxQuantity is the largest quantity one order takes.
	MaxQuantity = 99
	// MaxOrders is how many orders the shop keeps in memory; past it, checkouts are refused until restart.
	MaxOrders = 10_000
	// firstOrderID is the number of the first order after a start.
	firstOrderID = 1001
	// maxFormBytes bounds every form body the shop reads.
	maxFormBytes = 8 << 10
	// maxOpsPerOrder bounds the merchant actions remembered per order (the oldest are dropped).
	maxOpsPerOrder = 50
	// ordersListed is how many of the newest orders GET /orders shows, each read from kasse.
	ordersListed = 50
	// defaultKasseTimeout bounds each call to kasse made with the default HTTP client.
	defaultKasseTimeout = 15 * time.Second
)

// Product is one item of the shop's catalogue.
type Product struct {
	// SKU identifies the product in URLs (/products/{SKU}) and in kasse's order lines: 1 to 64 ASCII
	// letters, digits, dots, dashes and underscores, starting with a letter or digit.
	SKU string
	// Name is shown to customers and sent to kasse: 1 to 60 printable characters.
	Name string
	// Description is shown on the product page; optional, at most 500 characters.
	Description string
	// Price of one unit including VAT, in øre (49900 is 499,00 kr): from MinAmount to MaxAmount.
	Price int64
}

// DefaultProducts returns the demo catalogue: three products with prices in øre.
func DefaultProducts() []Product {
	return []Product{
		{SKU: "SOCK-42", Name: "Wool socks, size 42", Price: 49900,
			Description: "Warm socks of Norwegian wool, knitted in Setesdal pattern."},
		{SKU: "HAT-1", Name: "Knitted hat", Price: 34900,
			Description: "A lined wool hat for cold mornings."},
		{SKU: "MITT-M", Name: "Lambswool mittens, medium", Price: 29950,
			Description: "Soft mittens; the price shows that øre work too."},
	}
}

// Config configures a Shop.
type Config struct {
	// KasseURL is the base URL of kasse's HTTP API, e.g. "http://127.0.0.1:8080". Required.
	KasseURL string
	// Merchant is the shop's merchant id in kasse's config, e.g. "demo". Required.
	Merchant string
	// APIKey is the merchant's kasse API key, sent as "Authorization: Bearer <key>" on every call. Empty
	// sends no Authorization header (a merchant without apiKeyEnv in kasse's config). The shop never logs
	// or shows it.
	APIKey string
	// PublicURL is the shop's own base URL as browsers reach it, e.g. "http://127.0.0.1:8081"; each
	// checkout's returnUrl is PublicURL + "/orders/{id}/thanks". Required.
	PublicURL string
	// HTTPClient calls kasse. nil means a client with a 15 second timeout.
	HTTPClient *http.Client
	// Products is the catalogue, in the order the home page lists it. nil means DefaultProducts().
	Products []Product
	// ExpressEnabled reports whether product pages offer the "Vipps Express Checkout" button. nil means
	// never. The shop asks on every product page view and checkout, so the answer may change at runtime;
	// it must be safe for concurrent use.
	ExpressEnabled func() bool
	// ExpressFromKasse, when ExpressEnabled is nil, makes the shop ask kasse (GET /v1/express/{merchant},
	// with a 2 second timeout) whether the merchant's Express Checkout is on, on every product page view
	// and Express checkout: switching expressCheckout in kasse's config file shows or hides the button
	// without restarting either. A failed probe hides the button.
	ExpressFromKasse bool
	// Logger receives one line per failed call to kasse. nil means slog.Default().
	Logger *slog.Logger
}

// Shop is the demo web shop. Create it with New; it is safe for concurrent use.
type Shop struct {
	kasse     *kasseClient
	merchant  string
	publicURL string
	products  []Product
	bySKU     map[string]Product
	express   func() bool
	log       *slog.Logger
	pages     pages
	handler   http.Handler
	// instance is random per Shop: it keeps Idempotency-Keys of a restarted shop, whose order numbers
	// start again at 1001, from colliding with the previous run's keys still remembered by kasse.
	instance string

	mu     sync.Mutex
	orders map[string]*order
	ids    []string // order ids, oldest first
	nextID int
}

// operation is a merchant action on a payment; the value is kasse's path segment.
type operation string

const (
	opCapture operation = "capture"
	opRefund  operation = "refund"
	opCancel  operation = "cancel"
)

// order is one order in the shop's memory.
type order struct {
	ID          string
	SKU         string
	ProductName string
	Quantity    int64
	UnitPrice   int64
	Amount      int64
	Phone       string
	CreatedAt   time.Time
	// CheckoutID is kasse's checkout id, set once kasse created the checkout.
	CheckoutID string
	// PaymentError says why the checkout could not be created; empty otherwise.
	PaymentError string
	// Express is true for an order placed with Vipps Express Checkout: the customer chose address and
	// shipping in Vipps, and kasse holds them.
	Express bool
	// Ops are the merchant's actions on this order, oldest first.
	Ops    []opResult
	nextOp int
}

// opResult is the outcome of one merchant action, shown once on the order page after the redirect.
type opResult struct {
	Seq     int
	At      time.Time
	Op      operation
	OK      bool
	Message string
	Problem *problem
}

// snapshot copies o for rendering without the lock.
func (o *order) snapshot() order {
	c := *o
	c.Ops = slices.Clone(o.Ops)
	return c
}

var (
	merchantPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	skuPattern      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	opKeyPattern    = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// New checks cfg and returns a shop with no orders.
func New(cfg Config) (*Shop, error) {
	kasseURL, err := baseURL(cfg.KasseURL)
	if err != nil {
		return nil, fmt.Errorf("demoshop: kasse url: %w", err)
	}
	publicURL, err := baseURL(cfg.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("demoshop: public url: %w", err)
	}
	if !merchantPattern.MatchString(cfg.Merchant) {
		return nil, fmt.Errorf("demoshop: merchant %q: must be 1 to 63 lowercase letters, digits and dashes", cfg.Merchant)
	}
	for i := 0; i < len(cfg.APIKey); i++ {
		if c := cfg.APIKey[i]; c <= ' ' || c >= 0x7f {
			// The key itself is never put in an error: errors end up in logs.
			return nil, errors.New("demoshop: api key: must be printable ASCII without spaces")
		}
	}
	products := cfg.Products
	if products == nil {
		products = DefaultProducts()
	}
	if len(products) == 0 {
		return nil, errors.New("demoshop: products: the catalogue is empty")
	}
	bySKU := make(map[string]Product, len(products))
	for i, p := range products {
		if err := checkProduct(p); err != nil {
			return nil, fmt.Errorf("demoshop: product[%d]: %w", i, err)
		}
		if _, dup := bySKU[p.SKU]; dup {
			return nil, fmt.Errorf("demoshop: product[%d]: sku %q listed twice", i, p.SKU)
		}
		bySKU[p.SKU] = p
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: defaultKasseTimeout}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	express := cfg.ExpressEnabled
	pg, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("demoshop: parse templates: %w", err)
	}
	s := &Shop{
		kasse:     &kasseClient{base: kasseURL, apiKey: cfg.APIKey, http: client},
		merchant:  cfg.Merchant,
		publicURL: publicURL,
		products:  slices.Clone(products),
		bySKU:     bySKU,
		express:   express,
		log:       logger,
		pages:     pg,
		instance:  randomHex(4),
		orders:    map[string]*order{},
		nextID:    firstOrderID,
	}
	if express == nil && cfg.ExpressFromKasse {
		s.express = s.expressFromKasse
	} else if express == nil {
		s.express = func() bool { return false }
	}
	s.handler = s.routes()
	return s, nil
}

// expressFromKasse asks kasse whether the merchant offers Express Checkout now.
func (s *Shop) expressFromKasse() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	on, err := s.kasse.expressEnabled(ctx, s.merchant)
	if err != nil {
		s.log.Warn("demoshop: ask kasse whether Express Checkout is on", "err", err)
		return false
	}
	return on
}

// Handler returns the shop's HTTP handler: the pages listed in the package documentation, behind
// cross-origin protection for every POST.
func (s *Shop) Handler() http.Handler { return s.handler }

// baseURL checks that raw is an absolute http or https URL without credentials, query or fragment, and
// returns it without a trailing slash.
func baseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%q: must be an absolute http or https URL", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%q: must have no credentials, query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func checkProduct(p Product) error {
	if !skuPattern.MatchString(p.SKU) {
		return fmt.Errorf("sku %q: must be 1 to 64 ASCII letters, digits, dots, dashes and underscores", p.SKU)
	}
	if err := checkText(p.Name, 1, 60); err != nil {
		return fmt.Errorf("sku %q: name: %w", p.SKU, err)
	}
	if p.Description != "" {
		if err := checkText(p.Description, 1, 500); err != nil {
			return fmt.Errorf("sku %q: description: %w", p.SKU, err)
		}
	}
	if p.Price < MinAmount || p.Price > MaxAmount {
		return fmt.Errorf("sku %q: price %d øre: must be from %d to %d", p.SKU, p.Price, MinAmount, MaxAmount)
	}
	return nil
}

// checkText accepts valid UTF-8 of min to max characters without control characters or surrounding spaces,
// which is what kasse's checkout schema accepts for names and descriptions.
func checkText(s string, minLen, maxLen int) error {
	n := utf8.RuneCountInString(s)
	switch {
	case !utf8.ValidString(s):
		return errors.New("must be valid UTF-8")
	case n < minLen || n > maxLen:
		return fmt.Errorf("must be %d to %d characters", minLen, maxLen)
	case strings.TrimSpace(s) != s:
		return errors.New("must not start or end with spaces")
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }):
		return errors.New("must not contain control characters")
	}
	return nil
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}

func (s *Shop) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /products/{sku}", s.product)
	mux.HandleFunc("POST /checkout", s.checkout)
	mux.HandleFunc("GET /orders", s.ordersList)
	mux.HandleFunc("GET /orders/{id}", s.orderPage)
	mux.HandleFunc("GET /orders/{id}/thanks", s.thanks)
	mux.HandleFunc("GET /orders/{id}/confirm", s.confirm)
	mux.HandleFunc("GET /returned", s.returned)
	for _, op := range []operation{opCapture, opRefund, opCancel} {
		mux.HandleFunc("POST /orders/{id}/"+string(op), s.operate(op))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.notFound(w, r, "There is no page at this address.")
	})

	// CSRF tokens are out of scope for this demo (see "Demo limitations" in the package documentation);
	// the standard library's check of Sec-Fetch-Site and Origin at least refuses cross-site form posts
	// from current browsers.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusForbidden, "message", messageView{Title: "Forbidden", Heading: "Request refused",
			Paragraphs: []string{"This form was posted from another site. Use the shop's own pages."}})
	}))
	return s.guard(cop.Handler(mux))
}

// guard sets headers every page gets and turns a panic into a 500 page, so that a bug in one request
// never takes the shop down.
func (s *Shop) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("demoshop: panic", "method", r.Method, "path", r.URL.Path, "panic", v)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// render executes page into a buffer first, so that a template error becomes a clean 500.
func (s *Shop) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	var buf bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		s.log.Error("demoshop: render page", "page", page, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// link is a link on a message page.
type link struct{ Href, Text string }

// messageView is a page that explains something: an error, a missing page.
type messageView struct {
	Title      string
	Heading    string
	Paragraphs []string
	Problem    *problem
	Links      []link
}

// returned is where a checkout created outside the shop (the README's examples/checkout.json, sent with
// curl) brings the customer back: the shop has no order for it, so the page says so and where its state is.
func (s *Shop) returned(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("ref")
	if ref == "" {
		ref = "(no reference)"
	}
	s.render(w, r, http.StatusOK, "message", messageView{Title: "Back from Vipps", Heading: "Back from Vipps",
		Paragraphs: []string{
			"Checkout " + ref + " was created with kasse's API directly, not in this shop, so the shop has no order page for it.",
			"Its state is kasse's: GET /v1/checkouts/{id} with the merchant's API key (README, step 3).",
		},
		Links: []link{{Href: "/", Text: "Visit the shop"}}})
}

func (s *Shop) notFound(w http.ResponseWriter, r *http.Request, msg string) {
	s.render(w, r, http.StatusNotFound, "message", messageView{Title: "Not found", Heading: "Not found",
		Paragraphs: []string{msg}, Links: []link{{"/", "See all products"}}})
}

func (s *Shop) badRequest(w http.ResponseWriter, r *http.Request, msg string) {
	s.render(w, r, http.StatusBadRequest, "message", messageView{Title: "Bad request", Heading: "Bad request",
		Paragraphs: []string{msg}, Links: []link{{"/", "See all products"}}})
}

func (s *Shop) home(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "home", struct {
		Title    string
		Products []Product
	}{"Products", s.products})
}

// productView is the product page, also re-shown with the errors of a refused form.
type productView struct {
	Title         string
	Product       Product
	Quantity      string
	Phone         string
	Errors        []string
	QuantityError bool
	PhoneError    bool
	Express       bool
}

func (s *Shop) product(w http.ResponseWriter, r *http.Request) {
	p, ok := s.bySKU[r.PathValue("sku")]
	if !ok {
		s.notFound(w, r, "There is no product with this SKU.")
		return
	}
	s.render(w, r, http.StatusOK, "product", productView{Title: p.Name, Product: p, Quantity: "1", Express: s.express()})
}

// parseForm reads a urlencoded form of at most maxFormBytes.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("read form: %w", err)
	}
	return nil
}

// field returns the one value of a form field; a field given twice is refused, a missing one is "".
func field(r *http.Request, name string) (string, error) {
	v := r.PostForm[name]
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	}
	return "", fmt.Errorf("field %s is given %d times", name, len(v))
}

// Messages for refused product forms.
const (
	msgQuantity = "Quantity must be a whole number from 1 to 99."
	msgPhone    = "Mobile number must be 8 digits, like 91234567, or left empty."
)

// parseQuantity accepts 1 to MaxQuantity written as plain ASCII digits (no sign, no spaces inside).
func parseQuantity(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 3 || !allDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > MaxQuantity {
		return 0, false
	}
	return n, true
}

// parsePhone accepts an empty value or a Norwegian mobile number of 8 digits; spaces and a +47 or 0047
// prefix are removed first.
func parsePhone(s string) (string, bool) {
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	if s == "" {
		return "", true
	}
	if len(s) == 11 && strings.HasPrefix(s, "+47") {
		s = s[3:]
	} else if len(s) == 12 && strings.HasPrefix(s, "0047") {
		s = s[4:]
	}
	if len(s) != 8 || !allDigits(s) {
		return "", false
	}
	return s, true
}

func (s *Shop) checkout(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		s.badRequest(w, r, "The form could not be read.")
		return
	}
	sku, err1 := field(r, "sku")
	qtyText, err2 := field(r, "quantity")
	phoneText, err3 := field(r, "phone")
	flow, err4 := field(r, "flow")
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		s.badRequest(w, r, "The form has a field more than once.")
		return
	}
	p, ok := s.bySKU[sku]
	if !ok {
		s.notFound(w, r, "There is no product with this SKU.")
		return
	}
	express := false
	switch flow {
	case "", "vipps":
	case "express":
		if !s.express() {
			s.badRequest(w, r, "Vipps Express Checkout is not offered in this shop.")
			return
		}
		express = true
	default:
		s.badRequest(w, r, "Unknown payment method.")
		return
	}

	v := productView{Title: p.Name, Product: p, Quantity: qtyText, Phone: phoneText, Express: s.express()}
	qty, ok := parseQuantity(qtyText)
	if !ok {
		v.Errors, v.QuantityError = append(v.Errors, msgQuantity), true
	}
	phone, ok := parsePhone(phoneText)
	if !ok {
		v.Errors, v.PhoneError = append(v.Errors, msgPhone), true
	}
	amount := qty * p.Price // at most 99 * MaxAmount: no overflow
	if len(v.Errors) == 0 && amount > MaxAmount {
		v.Errors, v.QuantityError = append(v.Errors, fmt.Sprintf(
			"The total, %s, is more than Vipps takes in one payment (%s). Choose fewer.", FormatKroner(amount),
			FormatKroner(MaxAmount))), true
	}
	if len(v.Errors) > 0 {
		s.render(w, r, http.StatusUnprocessableEntity, "product", v)
		return
	}

	o, ok := s.newOrder(p, qty, phone, express)
	if !ok {
		s.render(w, r, http.StatusServiceUnavailable, "message", messageView{Title: "Shop full", Heading: "The shop is full",
			Paragraphs: []string{fmt.Sprintf("This demo keeps at most %d orders in memory. Restart it to start over.", MaxOrders)}})
		return
	}
	req := checkoutRequest{
		Merchant:    s.merchant,
		Reference:   "order-" + o.ID,
		Amount:      amount,
		Currency:    "NOK",
		Description: fmt.Sprintf("Order %s: %d x %s", o.ID, qty, p.Name),
		ReturnURL:   s.publicURL + "/orders/" + o.ID + "/thanks",
		Lines:       []line{{SKU: p.SKU, Name: p.Name, Quantity: qty, UnitPrice: p.Price}},
	}
	if phone != "" {
		req.Customer = &customer{PhoneNumber: phone}
	}
	create := s.kasse.create
	if express {
		// Vipps asks for the address and shipping; kasse keeps this cart with the payment and computes
		// shipping from it.
		create = s.kasse.createExpress
	}
	co, err := create(r.Context(), req, s.idempotencyKey(o.ID))
	// A checkout with the customer's phone number may have no redirectUrl: with the ePayment plugin,
	// Vipps sends a push message to the phone (PUSH_MESSAGE) and the customer confirms in the app.
	pushed := err == nil && co.RedirectURL == "" && phone != "" && !express
	if err == nil && !pushed && !isHTTPURL(co.RedirectURL) {
		err = fmt.Errorf("kasse: checkout %s has no usable redirectUrl", co.ID)
	}
	if err != nil {
		s.log.Warn("demoshop: create checkout", "order", o.ID, "err", err)
		pr := asProblem(err)
		s.setOrder(o.ID, func(o *order) { o.PaymentError = pr.Title })
		s.render(w, r, http.StatusBadGateway, "message", messageView{Title: "Payment not started",
			Heading:    "We could not start the payment",
			Paragraphs: []string{"Order " + o.ID + " was not charged. The payment service answered:"},
			Problem:    pr,
			Links:      []link{{"/products/" + p.SKU, "Back to " + p.Name}}})
		return
	}
	s.setOrder(o.ID, func(o *order) { o.CheckoutID = co.ID })
	if pushed {
		http.Redirect(w, r, "/orders/"+o.ID+"/confirm", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, co.RedirectURL, http.StatusSeeOther)
}

// idempotencyKey is the Idempotency-Key of the checkout for order id: the same order always sends the
// same key, so a replayed request creates one checkout.
func (s *Shop) idempotencyKey(orderID string) string {
	return "demoshop-" + s.instance + "-order-" + orderID
}

// asProblem shows err as a problem: kasse's own, or one saying that kasse could not be reached (without
// the error text, which names internal addresses; it is logged instead).
func asProblem(err error) *problem {
	var p *problem
	if errors.As(err, &p) {
		return p
	}
	return &problem{Title: "The payment service did not answer",
		Detail: "kasse could not be reached or gave an answer the shop does not understand. Try again in a moment."}
}

func isHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}

// newOrder stores a new order with the next number; ok is false when the shop is full.
func (s *Shop) newOrder(p Product, qty int64, phone string, express bool) (order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.orders) >= MaxOrders {
		return order{}, false
	}
	o := &order{ID: strconv.Itoa(s.nextID), SKU: p.SKU, ProductName: p.Name, Quantity: qty, UnitPrice: p.Price,
		Amount: qty * p.Price, Phone: phone, CreatedAt: time.Now(), Express: express}
	s.nextID++
	s.orders[o.ID] = o
	s.ids = append(s.ids, o.ID)
	return o.snapshot(), true
}

// getOrder returns a copy of the order with this id.
func (s *Shop) getOrder(id string) (order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return order{}, false
	}
	return o.snapshot(), true
}

// setOrder changes the order with this id under the lock.
func (s *Shop) setOrder(id string, change func(*order)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.orders[id]; ok {
		change(o)
	}
}

// lookupOrder answers 404 itself when id names no order.
func (s *Shop) lookupOrder(w http.ResponseWriter, r *http.Request) (order, bool) {
	id := r.PathValue("id")
	if len(id) > 9 || !allDigits(id) {
		s.notFound(w, r, "There is no order with this number.")
		return order{}, false
	}
	o, ok := s.getOrder(id)
	if !ok {
		s.notFound(w, r, "There is no order with this number.")
	}
	return o, ok
}

// readCheckout reads the order's payment from kasse; it returns a message for people when that fails.
func (s *Shop) readCheckout(ctx context.Context, o order) (*checkoutView, string) {
	if o.CheckoutID == "" {
		return nil, ""
	}
	co, err := s.kasse.get(ctx, o.CheckoutID)
	if err != nil {
		s.log.Warn("demoshop: read checkout", "order", o.ID, "checkout", o.CheckoutID, "err", err)
		pr := asProblem(err)
		msg := pr.Title
		if pr.Detail != "" {
			msg += ": " + pr.Detail
		}
		return nil, msg
	}
	return co, ""
}

// thanksView is the customer's order confirmation page.
type thanksView struct {
	Title     string
	Heading   string
	Order     order
	Checkout  *checkoutView
	Words     string
	ReadError string
	TryAgain  bool
}

// thanks is the checkout's returnUrl. The kasse_checkout and kasse_state query parameters kasse appends
// are not trusted: the state shown is read from kasse with the checkout id the shop stored.
func (s *Shop) thanks(w http.ResponseWriter, r *http.Request) {
	o, ok := s.lookupOrder(w, r)
	if !ok {
		return
	}
	v := thanksView{Title: "Order " + o.ID, Heading: "Thank you for your order", Order: o}
	v.Checkout, v.ReadError = s.readCheckout(r.Context(), o)
	switch {
	case v.Checkout != nil:
		v.Words = customerWords(v.Checkout.State)
		switch v.Checkout.State {
		case "cancelled", "rejected", "expired", "failed":
			v.Heading, v.TryAgain = "Your order is not paid", true
		}
	case o.PaymentError != "":
		v.Heading, v.TryAgain = "Your order is not paid", true
	}
	s.render(w, r, http.StatusOK, "thanks", v)
}

// confirmView is the page a customer waits on while confirming a pushed payment in the Vipps app.
type confirmView struct {
	Title     string
	Order     order
	ReadError string
}

// confirm is where the browser goes when kasse started the payment without a redirectUrl (PUSH_MESSAGE:
// Vipps sent a push message to the customer's phone). While kasse says the payment is pending, the page
// asks the customer to confirm in the Vipps app and reloads itself every few seconds with a meta refresh
// (no JavaScript); once the payment has left pending, whatever the outcome, it sends the browser to the
// thank-you page, which says how it ended. As on that page, the state is always read from kasse.
func (s *Shop) confirm(w http.ResponseWriter, r *http.Request) {
	o, ok := s.lookupOrder(w, r)
	if !ok {
		return
	}
	thanks := "/orders/" + o.ID + "/thanks"
	if o.CheckoutID == "" {
		http.Redirect(w, r, thanks, http.StatusSeeOther)
		return
	}
	co, readErr := s.readCheckout(r.Context(), o)
	if co != nil && co.State != "pending" {
		http.Redirect(w, r, thanks, http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "confirm", confirmView{Title: "Confirm in Vipps", Order: o, ReadError: readErr})
}

// orderRow is one line of the merchant's order list.
type orderRow struct {
	Order order
	State string
}

func (s *Shop) ordersList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	total := len(s.ids)
	var rows []orderRow
	for i := total - 1; i >= 0 && len(rows) < ordersListed; i-- {
		rows = append(rows, orderRow{Order: s.orders[s.ids[i]].snapshot()})
	}
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var g errgroup.Group
	g.SetLimit(4)
	for i := range rows {
		g.Go(func() error {
			row := &rows[i]
			switch co, msg := s.readCheckout(ctx, row.Order); {
			case co != nil:
				row.State = co.State
			case row.Order.PaymentError != "":
				row.State = "not started (" + row.Order.PaymentError + ")"
			case row.Order.CheckoutID == "":
				row.State = "starting"
			default:
				row.State = "unknown: " + msg
			}
			return nil
		})
	}
	_ = g.Wait() // the goroutines return no errors
	s.render(w, r, http.StatusOK, "orders", struct {
		Title  string
		Rows   []orderRow
		Total  int
		Hidden bool
	}{"Orders", rows, total, total > len(rows)})
}

// orderView is the merchant's page of one order.
type orderView struct {
	Title         string
	Order         order
	Checkout      *checkoutView
	ReadError     string
	Words         string
	Flash         *opResult
	OpKey         string
	LeftToCapture int64
	LeftToRefund  int64
	CanCapture    bool
	CanRefund     bool
	CanCancel     bool
}

func (s *Shop) orderPage(w http.ResponseWriter, r *http.Request) {
	o, ok := s.lookupOrder(w, r)
	if !ok {
		return
	}
	v := orderView{Title: "Order " + o.ID, Order: o, OpKey: randomHex(8)}
	if seq, err := strconv.Atoi(r.URL.Query().Get("result")); err == nil {
		for i := range o.Ops {
			if o.Ops[i].Seq == seq {
				v.Flash = &o.Ops[i]
			}
		}
	}
	v.Checkout, v.ReadError = s.readCheckout(r.Context(), o)
	if co := v.Checkout; co != nil {
		v.Words = merchantWords(co.State)
		v.LeftToCapture, v.LeftToRefund = co.leftToCapture(), co.leftToRefund()
		switch co.State {
		case "pending":
			v.CanCancel = true
		case "authorized":
			v.CanCapture, v.CanCancel = v.LeftToCapture > 0, true
		case "captured":
			v.CanCapture, v.CanCancel = v.LeftToCapture > 0, v.LeftToCapture > 0
			v.CanRefund = v.LeftToRefund > 0
		}
	}
	s.render(w, r, http.StatusOK, "order", v)
}

// operate handles the merchant's capture, refund and cancel buttons: it calls kasse, records the outcome
// on the order, and redirects back to the order page, which shows it.
func (s *Shop) operate(op operation) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o, ok := s.lookupOrder(w, r)
		if !ok {
			return
		}
		if err := parseForm(w, r); err != nil {
			s.badRequest(w, r, "The form could not be read.")
			return
		}
		amountText, err1 := field(r, "amount")
		key, err2 := field(r, "key")
		if err := errors.Join(err1, err2); err != nil {
			s.badRequest(w, r, "The form has a field more than once.")
			return
		}
		if key != "" && !opKeyPattern.MatchString(key) {
			s.badRequest(w, r, "The form's key is malformed; reload the order page.")
			return
		}
		res := s.runOperation(r.Context(), o, op, amountText, key)
		seq := s.recordOp(o.ID, res)
		http.Redirect(w, r, "/orders/"+o.ID+"?result="+strconv.Itoa(seq)+"#result", http.StatusSeeOther)
	}
}

// runOperation validates the amount and calls kasse; the result says what happened, for the merchant.
func (s *Shop) runOperation(ctx context.Context, o order, op operation, amountText, key string) opResult {
	res := opResult{At: time.Now(), Op: op}
	if o.CheckoutID == "" {
		res.Message = "The payment of this order was never started."
		return res
	}
	var amount int64
	if op != opCancel && strings.TrimSpace(amountText) != "" {
		a, err := ParseKroner(amountText)
		switch {
		case err != nil:
			res.Message = "The amount must be written in kroner, like 120 or 120,50."
			return res
		case a == 0:
			res.Message = "The amount must be at least 0,01 kr; leave it empty for all that is left."
			return res
		case a > MaxAmount:
			res.Message = "The amount must be at most " + FormatKroner(MaxAmount) + "."
			return res
		}
		amount = a
	}
	idem := ""
	if key != "" {
		// One key per rendered form: a double-clicked button captures once; kasse refuses the same key
		// with another amount.
		idem = s.idempotencyKey(o.ID) + "-" + string(op) + "-" + key
	}
	co, err := s.kasse.operate(ctx, o.CheckoutID, op, amount, idem)
	if err != nil {
		s.log.Warn("demoshop: "+string(op), "order", o.ID, "checkout", o.CheckoutID, "err", err)
		res.Problem = asProblem(err)
		res.Message = failedVerb(op) + ": " + res.Problem.Title
		return res
	}
	res.OK = true
	switch {
	case op == opCancel:
		res.Message = "Cancelled. The payment is now " + co.State + "."
	case amount > 0:
		res.Message = fmt.Sprintf("%s %s. The payment is now %s.", doneVerb(op), FormatKroner(amount), co.State)
	case op == opCapture:
		res.Message = fmt.Sprintf("Captured all that was left; captured in total %s. The payment is now %s.",
			FormatKroner(co.CapturedAmount), co.State)
	default:
		res.Message = fmt.Sprintf("Refunded all that was left; refunded in total %s. The payment is now %s.",
			FormatKroner(co.RefundedAmount), co.State)
	}
	return res
}

// doneVerb says what a successful op with an amount did.
func doneVerb(op operation) string {
	if op == opRefund {
		return "Refunded"
	}
	return "Captured"
}

// failedVerb names a failed op.
func failedVerb(op operation) string {
	switch op {
	case opCapture:
		return "Capture failed"
	case opRefund:
		return "Refund failed"
	}
	return "Cancel failed"
}

// recordOp appends res to the order's actions and returns its sequence number.
func (s *Shop) recordOp(id string, res opResult) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return 0
	}
	o.nextOp++
	res.Seq = o.nextOp
	o.Ops = append(o.Ops, res)
	if len(o.Ops) > maxOpsPerOrder {
		o.Ops = slices.Delete(o.Ops, 0, len(o.Ops)-maxOpsPerOrder)
	}
	return res.Seq
}
