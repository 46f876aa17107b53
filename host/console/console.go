// Package console owns kasse's operator console: server-rendered HTML pages (Go html/template, plain
// CSS, no script) under /console/ on the operations listener, never on the public one. Operators find
// payments, read their timeline, capture, refund and cancel them, manage plugin versions, read the
// settlement reports and the service's health.
//
// It does no payment or plugin work itself: actions go through checkout.Service (the same methods and
// checks as the HTTP API) and upgrade.Manager (as the admin API), listings through store.Lister, settlement
// reports through host/settlement's follower. Access needs a token (the admin token or console.tokenEnv),
// exchanged at a login form for a signed, expiring, HttpOnly, SameSite=Strict cookie; every form carries
// a CSRF token, and every action is logged with who did what.
package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/settlement"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/host/upgrade"
)

// Prefix is where the console's pages live.
const Prefix = "/console"

// MinTokenLength is the shortest token New accepts.
const MinTokenLength = 16

// DefaultSessionTTL is how long a login lasts unless Config.SessionTTL says otherwise.
const DefaultSessionTTL = 8 * time.Hour

//go:embed web
var webFS embed.FS

// Health is what the Health page shows besides the store and the plugins; the host fills it.
type Health struct {
	// Queues are the durable queues (platform updates, webhook inbox) with their counts.
	Queues []Queue
	// ReconcilerLastRun is when the reconciler last finished a pass; zero before the first.
	ReconcilerLastRun time.Time
	// ConfigVersion identifies the running configuration (a digest of its file); LastReload is when it
	// became active.
	ConfigVersion string
	LastReload    time.Time
}

// Queue is one durable queue's counts.
type Queue struct {
	Name                                          string
	Pending, Enqueued, Delivered, Retried, GaveUp int64
	Err                                           string
}

// SettlementReports builds a merchant's settlement report for a ledger date; *settlement.Follower
// satisfies it. It returns an error wrapping settlement.ErrNoReport for a date without entries.
type SettlementReports interface {
	Report(ctx context.Context, merchant, date string) (*settlement.Report, error)
}

// Config configures the console.
type Config struct {
	// Service carries out captures, refunds and cancels and reads sessions. Required.
	Service *checkout.Service
	// Store lists sessions; it must implement store.Lister. Required.
	Store store.Store
	// Plugins is the plugin manager. Required.
	Plugins *upgrade.Manager
	// Config returns the running configuration (merchants, thresholds). Required.
	Config func() *config.Config
	// Token is what an operator types at the login form. Required, at least MinTokenLength characters.
	Token string
	// Settlements builds settlement reports (*settlement.Follower); nil when settlement following is off,
	// and the Settlements page says so.
	Settlements SettlementReports
	// Health, if set, adds queues, the reconciler and the config version to the Health page.
	Health func(ctx context.Context) Health
	// ProviderClient checks provider reachability on the Health page. Default: a client with a 3 s
	// timeout that follows no redirects.
	ProviderClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// SessionTTL is how long a login lasts. Default DefaultSessionTTL.
	SessionTTL time.Duration
	// Logger receives one line per login and per action. Default slog.Default().
	Logger *slog.Logger
}

// Console serves the console's pages.
type Console struct {
	cfg    Config
	lister store.Lister
	key    []byte // signs cookies and CSRF tokens; derived from the token, so a new token ends every login
	tmpl   map[string]*template.Template
	log    *slog.Logger
}

// New checks cfg and parses the pages' templates.
func New(cfg Config) (*Console, error) {
	switch {
	case cfg.Service == nil || cfg.Store == nil || cfg.Plugins == nil || cfg.Config == nil:
		return nil, errors.New("console: config: Service, Store, Plugins and Config are required")
	case len(cfg.Token) < MinTokenLength:
		return nil, fmt.Errorf("console: config: Token must be at least %d characters", MinTokenLength)
	}
	l, ok := cfg.Store.(store.Lister)
	if !ok {
		return nil, fmt.Errorf("console: config: the store %T cannot list sessions (store.Lister)", cfg.Store)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ProviderClient == nil {
		cfg.ProviderClient = &http.Client{Timeout: 3 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	key := hmac.New(sha256.New, []byte("kasse console cookie key"))
	key.Write([]byte(cfg.Token))
	c := &Console{cfg: cfg, lister: l, key: key.Sum(nil), log: cfg.Logger, tmpl: map[string]*template.Template{}}
	base, err := template.New("layout").Funcs(funcs).ParseFS(webFS, "web/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	pages, err := fs.Glob(webFS, "web/page-*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	for _, p := range pages {
		t, err := template.Must(base.Clone()).ParseFS(webFS, p)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", p, err)
		}
		c.tmpl[strings.TrimSuffix(strings.TrimPrefix(p, "web/page-"), ".html")] = t
	}
	return c, nil
}

// Mount adds the console's routes under Prefix to r: the operations router, never the public one.
func (c *Console) Mount(r gin.IRouter) {
	g := r.Group(Prefix, c.headers)
	g.GET("/style.css", c.style)
	g.GET("/login", c.loginForm)
	g.POST("/login", c.login)
	a := g.Group("", c.authorize)
	a.GET("", func(ctx *gin.Context) { ctx.Redirect(http.StatusSeeOther, Prefix+"/payments") })
	a.GET("/", func(ctx *gin.Context) { ctx.Redirect(http.StatusSeeOther, Prefix+"/payments") })
	a.POST("/logout", c.logout)
	a.GET("/payments", c.payments)
	a.GET("/payments/:id", c.payment)
	a.POST("/payments/:id/action", c.paymentAction)
	a.GET("/plugins", c.plugins)
	a.POST("/plugins/:name/action", c.pluginAction)
	a.GET("/settlements", c.settlements)
	a.GET("/settlements.csv", c.settlementsCSV)
	a.GET("/health", c.health)
}

// headers: the pages are never cached, never framed and run no script.
func (c *Console) headers(ctx *gin.Context) {
	h := ctx.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	ctx.Next()
}

func (c *Console) style(ctx *gin.Context) {
	b, err := webFS.ReadFile("web/style.css")
	if err != nil {
		ctx.Status(http.StatusInternalServerError)
		return
	}
	ctx.Data(http.StatusOK, "text/css; charset=utf-8", b)
}

const (
	cookieName    = "kasse_console"
	preCookieName = "kasse_console_login"
)

// operator is who is logged in, from the signed cookie.
type operator struct {
	Name  string
	nonce string
}

// sign returns base64url(payload) + "." + base64url(HMAC(payload)).
func (c *Console) sign(payload string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verify returns the payload of a value sign made, or false.
func (c *Console) verify(v string) (string, bool) {
	p64, s64, ok := strings.Cut(v, ".")
	if !ok {
		return "", false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	sig, err2 := base64.RawURLEncoding.DecodeString(s64)
	if err1 != nil || err2 != nil {
		return "", false
	}
	m := hmac.New(sha256.New, c.key)
	m.Write(payload)
	return string(payload), hmac.Equal(sig, m.Sum(nil))
}

// csrf is the form token of a login nonce: a MAC, so it needs no server-side state.
func (c *Console) csrf(nonce string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("csrf\x00" + nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func randomToken() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *Console) setCookie(ctx *gin.Context, name, value string, maxAge int) {
	http.SetCookie(ctx.Writer, &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: ctx.Request.TLS != nil})
}

// current returns the logged-in operator, or false.
func (c *Console) current(ctx *gin.Context) (operator, bool) {
	ck, err := ctx.Request.Cookie(cookieName)
	if err != nil {
		return operator{}, false
	}
	payload, ok := c.verify(ck.Value)
	if !ok {
		return operator{}, false
	}
	// payload: expiry unix seconds \x00 nonce \x00 name
	parts := strings.SplitN(payload, "\x00", 3)
	if len(parts) != 3 {
		return operator{}, false
	}
	exp, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || c.cfg.Now().Unix() >= exp {
		return operator{}, false
	}
	return operator{Name: parts[2], nonce: parts[1]}, true
}

// authorize lets a logged-in operator through and checks the CSRF token of every POST; anyone else
// is sent to the login form.
func (c *Console) authorize(ctx *gin.Context) {
	op, ok := c.current(ctx)
	if !ok {
		if ctx.Request.Method == http.MethodGet {
			ctx.Redirect(http.StatusSeeOther, Prefix+"/login")
		} else {
			c.render(ctx, http.StatusUnauthorized, "error", nil, pageData{Title: "Not logged in",
				Error: "Your login has expired. Log in again."})
		}
		ctx.Abort()
		return
	}
	if ctx.Request.Method == http.MethodPost {
		want := c.csrf(op.nonce)
		if subtle.ConstantTimeCompare([]byte(ctx.PostForm("csrf")), []byte(want)) != 1 {
			c.log.Warn("console: form refused: CSRF token missing or wrong", "operator", op.Name, "path", ctx.Request.URL.Path,
				"remote", ctx.Request.RemoteAddr)
			c.render(ctx, http.StatusForbidden, "error", &op, pageData{Title: "Form refused",
				Error: "The form's security token is missing or out of date. Go back, reload the page and try again."})
			ctx.Abort()
			return
		}
	}
	ctx.Set("operator", op)
	ctx.Next()
}

func (c *Console) loginForm(ctx *gin.Context) {
	pre := randomToken()
	c.setCookie(ctx, preCookieName, c.sign(pre), 1800)
	c.render(ctx, http.StatusOK, "login", nil, pageData{Title: "Log in", CSRF: c.csrf("login\x00" + pre)})
}

func (c *Console) login(ctx *gin.Context) {
	fail := func(status int, field, msg string) {
		pre := randomToken()
		c.setCookie(ctx, preCookieName, c.sign(pre), 1800)
		c.render(ctx, status, "login", nil, pageData{Title: "Log in", CSRF: c.csrf("login\x00" + pre),
			Errors: map[string]string{field: msg}, Form: map[string]string{"name": ctx.PostForm("name")}})
	}
	ck, err := ctx.Request.Cookie(preCookieName)
	pre, ok := "", false
	if err == nil {
		pre, ok = c.verify(ck.Value)
	}
	if !ok || subtle.ConstantTimeCompare([]byte(ctx.PostForm("csrf")), []byte(c.csrf("login\x00"+pre))) != 1 {
		fail(http.StatusForbidden, "form", "The form's security token is missing or out of date; try again.")
		return
	}
	name := strings.TrimSpace(ctx.PostForm("name"))
	if name == "" || len(name) > 64 || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		fail(http.StatusUnprocessableEntity, "name", "Give your name (1 to 64 characters), so that the log says who acted.")
		return
	}
	got, want := sha256.Sum256([]byte(ctx.PostForm("token"))), sha256.Sum256([]byte(c.cfg.Token))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		c.log.Warn("console: login refused: wrong token", "operator", name, "remote", ctx.Request.RemoteAddr)
		fail(http.StatusUnauthorized, "token", "That token is not right.")
		return
	}
	exp := c.cfg.Now().Add(c.cfg.SessionTTL)
	c.setCookie(ctx, cookieName, c.sign(strconv.FormatInt(exp.Unix(), 10)+"\x00"+randomToken()+"\x00"+name),
		int(c.cfg.SessionTTL/time.Second))
	c.setCookie(ctx, preCookieName, "", -1)
	c.log.Info("console: login", "operator", name, "remote", ctx.Request.RemoteAddr)
	ctx.Redirect(http.StatusSeeOther, Prefix+"/payments")
}

func (c *Console) logout(ctx *gin.Context) {
	op := ctx.MustGet("operator").(operator)
	c.setCookie(ctx, cookieName, "", -1)
	c.log.Info("console: logout", "operator", op.Name, "remote", ctx.Request.RemoteAddr)
	ctx.Redirect(http.StatusSeeOther, Prefix+"/login")
}
