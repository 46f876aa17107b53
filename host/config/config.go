// Package config owns kasse's config file: its Go types, their defaults, and loading a file into them.
//
// Loading goes one way: YAML 1.2 is converted to JSON (goccy/go-yaml: one document, duplicate keys
// refused, NO stays a string), checked against schemas/config.schema.json (an unknown field close to a
// known one gets "did you mean"), decoded strictly (unknown fields refused) over the defaults, and then
// checked for what the schema cannot express: URLs that must parse, plain http only towards loopback hosts,
// positive durations, an API key for every merchant (or insecureNoAuth, only when both listeners are on
// loopback), a URL secret when a merchant has Express Checkout. Secrets are never in the file: a merchant names the environment variables that hold
// them, and Load reads them through the getenv function it is given, into Secret values that never print.
//
// Every problem found is reported at once, each at the JSON pointer of the offending field, in an *Error.
// The package does no I/O besides reading the file and does not keep any state.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kassehq/kasse/schemas"
)

// EnvRedisURL is the environment variable that, when set, overrides store.redisUrl and store.redis.url.
const EnvRedisURL = "KASSE_REDIS_URL"

// Config is a loaded config file with its defaults applied and its secrets resolved. Load returns a new
// value each time; treat it as read-only.
type Config struct {
	// Server is the HTTP server kasse listens on.
	Server Server `json:"server"`
	// Store says where checkout sessions are kept.
	Store Store `json:"store"`
	// Plugins configures the WebAssembly plugin runtime.
	Plugins Plugins `json:"plugins"`
	// Reconciler configures the polling of payments whose callback has not arrived.
	Reconciler Reconciler `json:"reconciler"`
	// Merchants are the merchants this kasse serves, by merchant id (lowercase letters, digits and
	// hyphens, at most 63 characters). At least one is required.
	Merchants map[string]Merchant `json:"merchants"`
	// Admin configures the plugin administration API. Default: off.
	Admin Admin `json:"admin,omitzero"`
	// Console configures the operator console under /console/ on the operations listener. Default: on
	// with the admin token when admin.tokenEnv is set, else off.
	Console Console `json:"console,omitzero"`
	// Log configures kasse's log lines. Default: text at level info.
	Log Log `json:"log,omitzero"`
	// Settlement configures the following of the merchants' settlement ledgers. Default: off.
	Settlement Settlement `json:"settlement,omitzero"`
}

// Log formats and levels (Log.Format, Log.Level).
const (
	LogText  = "text"
	LogJSON  = "json"
	LogDebug = "debug"
	LogInfo  = "info"
	LogWarn  = "warn"
	LogError = "error"
)

// Log configures kasse's log lines. The flags -log-format and -log-level of `kasse serve` override it; a
// change takes effect at the next start.
type Log struct {
	// Format is "text" (key=value pairs, the default) or "json" (one JSON object a line).
	Format string `json:"format,omitempty"`
	// Level is the least severe level written: "debug", "info" (the default), "warn" or "error".
	Level string `json:"level,omitempty"`
}

// Settlement configures the settlement follower (host/settlement), which reads each merchant's ledger
// through the Vipps Report API and matches it to the checkouts.
type Settlement struct {
	// Enabled turns the follower on, and with it the store's index of captured sessions awaiting the
	// ledger, written with each capture (store.RedisOptions.AwaitingSettlement). Set it alike on every
	// instance that shares a store: captures written by an instance with it off are not expected on the
	// ledger. Default false.
	Enabled bool `json:"enabled,omitempty"`
	// PollInterval is how often each merchant's ledger feeds are read. Default 1m.
	PollInterval Duration `json:"pollInterval,omitempty"`
	// PayoutDelay is how long after a capture the money is expected on the ledger and in the bank (the
	// merchant's agreement with Vipps, e.g. T+2 is 48h). A capture not on the ledger by then is reported.
	// Default 48h.
	PayoutDelay Duration `json:"payoutDelay,omitempty"`
	// From, YYYY-MM-DD, is the first ledger date kasse settles: earlier entries (from before kasse took
	// over the merchant's payments) are shown in the reports but not matched or reported as mismatches.
	// Optional: default every date.
	From string `json:"from,omitempty"`
}

// Server is the HTTP server.
type Server struct {
	// Listen is the TCP address to listen on, host:port. Default "127.0.0.1:8080".
	Listen string `json:"listen"`
	// PublicURL is the absolute http or https base URL at which Vipps and browsers reach kasse; the
	// callbackPrefix and fallBack URLs sent to Vipps are built from it. Load removes a trailing slash.
	// Default: "http://" + Listen, with 127.0.0.1 when Listen has no specific host.
	PublicURL string `json:"publicUrl"`
	// OpsListen is the TCP address of the operations listener, host:port: /metrics, /admin/v1 and the
	// detailed /readyz are served there and nowhere else. Default "127.0.0.1:9090".
	OpsListen string `json:"opsListen"`
	// ReadHeaderTimeout is how long a client may take to send a request's headers. Default 10s.
	ReadHeaderTimeout Duration `json:"readHeaderTimeout"`
	// ReadTimeout is how long a client may take to send a whole request. Default 30s.
	ReadTimeout Duration `json:"readTimeout"`
	// WriteTimeout is how long kasse may take to answer, from the end of the request headers. Default 60s.
	WriteTimeout Duration `json:"writeTimeout"`
	// IdleTimeout is how long an idle keep-alive connection stays open. Default 120s.
	IdleTimeout Duration `json:"idleTimeout"`
	// MaxHeaderBytes is the largest request header block accepted. Default 65536.
	MaxHeaderBytes int `json:"maxHeaderBytes"`
	// PendingClaimTTL is how long a request still running holds its Idempotency-Key (and a platform
	// delivery its delivery id, a create its key until its session exists) without renewing it; kasse
	// renews it every third of this while the work runs, and swaps it for the answer (kept 24h, a
	// delivery id 72h) when it ends. It is how long a retry waits after kasse died mid-request (kill -9,
	// OOM, a lost node) before it runs again. Keep it well above the store's command timeout (2s), so a
	// renewal never comes too late. Default 30s; at least 1s.
	PendingClaimTTL Duration `json:"pendingClaimTtl"`
	// URLSecretEnv names the environment variable holding the server secret (at least 32 characters)
	// the per-merchant segment of the Express shipping-details and consent-removal URLs is derived
	// from. Required when a merchant has expressCheckout on.
	URLSecretEnv string `json:"urlSecretEnv,omitempty"`
	// PreviousURLSecretEnv names the environment variable holding the URL secret being rotated out:
	// URLs derived from it keep working while it is set. Optional.
	PreviousURLSecretEnv string `json:"previousUrlSecretEnv,omitempty"`
	// URLSecret is the value of URLSecretEnv; Load sets it.
	URLSecret Secret `json:"-"`
	// PreviousURLSecret is the value of PreviousURLSecretEnv; Load sets it.
	PreviousURLSecret Secret `json:"-"`
}

// Store says where sessions are kept.
type Store struct {
	// RedisURL is redis://host:port/db (rediss:// for TLS, unix:// for a socket): the short form of
	// Redis{URL: ...}, kept for existing files. Empty, the default, and without Redis, keeps sessions in
	// process, for a single instance. The environment variable KASSE_REDIS_URL overrides it.
	RedisURL string `json:"redisUrl"`
	// Redis is how kasse reaches Redis: one server, a cluster or Sentinel, with credentials, pool size
	// and timeouts. Give it or RedisURL, not both. After Load it is set whenever Redis is configured
	// (from either field or KASSE_REDIS_URL), and nil for the in-process store.
	Redis *Redis `json:"redis,omitempty"`
	// SessionTTL is how long a session is kept after it is created. Refunds are possible up to 365 days
	// after the reservation. Default 9600h (400 days).
	SessionTTL Duration `json:"sessionTtl"`
}

// Plugins configures the plugin runtime.
type Plugins struct {
	// Dir is the directory where <plugin>.wasm modules are found. A relative path is relative to the
	// config file's directory (Load, ParseAt). Default "plugin/build".
	Dir string `json:"dir"`
	// CacheDir is the wazero compilation cache directory. Default (also when empty in the file):
	// <user cache dir>/kasse/wazero; empty only when the system has no user cache directory. A relative
	// path is relative to the config file's directory.
	CacheDir string `json:"cacheDir"`
	// CallTimeout is the longest one plugin call may run before it is stopped. Default 100ms.
	CallTimeout Duration `json:"callTimeout"`
	// MemoryLimitPages is the most linear memory one plugin instance may use, in 64 KiB pages.
	// Default 512 (32 MiB); at most 65536.
	MemoryLimitPages uint32 `json:"memoryLimitPages"`
	// PoolSize is the most instances run per plugin version (the pool grows to it on demand and shrinks
	// when idle). Default 0, which means GOMAXPROCS-1, at least 2 (the plugin runtime resolves it).
	PoolSize int `json:"poolSize"`
	// PoolIdle is the window over which each plugin version's pool measures its use: once per window it
	// closes the free instances beyond the most that were busy at once during it (keeping one). Shorter
	// gives memory back sooner after a peak; longer keeps instances warm through gaps in the traffic.
	// Default 30s.
	PoolIdle Duration `json:"poolIdle"`
	// TrustedKeys are the ed25519 public keys whose signatures make a plugin bundle (<name>.wasm,
	// <name>.manifest.json, <name>.wasm.sig) loadable: the 32-byte key in standard base64, optionally
	// prefixed "ed25519:", as `kasse plugin keygen` prints it. Default none.
	TrustedKeys []string `json:"trustedKeys,omitempty"`
	// DevMode accepts unsigned plugin modules (a bare <name>.wasm, or a bundle without signature). For
	// local development only. A bundle whose manifest does not match its module is refused anyway.
	// Default false.
	DevMode bool `json:"devMode,omitempty"`
	// MaxModuleBytes is the largest plugin module accepted, in bytes. Default 0, which means 16 MiB.
	MaxModuleBytes int64 `json:"maxModuleBytes,omitempty"`
	// KeepVersions is how many previously active versions of each plugin stay loaded, so that sessions
	// they created keep using them and a rollback is instant. Default 0, which means 2; -1 keeps none.
	KeepVersions int `json:"keepVersions,omitempty"`
	// CanaryPercent, from 1 to 100, makes a bundle dropped into Dir start as a canary that gets this
	// share of new checkouts, instead of becoming active for all. Default 0: dropped-in bundles activate.
	CanaryPercent int `json:"canaryPercent,omitempty"`
	// RollbackErrors is how many failed calls (trap, timeout, exit, output too large or failing its
	// schema, an error answered as data that is the plugin's fault, an output the host refused; not the
	// provider's refusals) roll a version on probation (a canary, or a version just activated over
	// another) back by itself, when they are also at least RollbackErrorRate of its calls and its failure
	// rate exceeds its baseline's by RollbackErrorRate. Default 0, which means 5.
	RollbackErrors int `json:"rollbackErrors,omitempty"`
	// RollbackErrorRate is the share of failed calls, from 0 to 1, that together with RollbackErrors
	// rolls a version on probation back. Default 0, which means 0.05 (5%).
	RollbackErrorRate float64 `json:"rollbackErrorRate,omitempty"`
	// ProbationCalls is how many calls a version activated over another stays on probation. Default 0,
	// which means 1000. A canary stays on probation until it is activated.
	ProbationCalls int `json:"probationCalls,omitempty"`
	// WatchInterval is how often Dir is scanned for new or changed bundles. Default 0, which means 2s.
	WatchInterval Duration `json:"watchInterval,omitempty"`
	// RetireAfter is how long a version whose bundle file was removed keeps serving the sessions it
	// started, counted from its last call, before it is unloaded. Default 0, which means 1h.
	RetireAfter Duration `json:"retireAfter,omitempty"`
	// RollbackLatencyFactor and RollbackLatencyMin roll back a version on probation whose p99 call
	// latency exceeds its baseline's by both. Defaults 0, which mean 3 and 20ms.
	RollbackLatencyFactor float64  `json:"rollbackLatencyFactor,omitempty"`
	RollbackLatencyMin    Duration `json:"rollbackLatencyMin,omitempty"`
	// LatencyMinCalls is how many calls a version on probation serves before its p99 is judged.
	// Default 0, which means 100.
	LatencyMinCalls int `json:"latencyMinCalls,omitempty"`
	// GateSlowdownFactor and GateSlowdownMin refuse a version whose gate vectors run slower than the
	// active version's by both (the extra per vector). Defaults 0, which mean 3 and 2ms.
	GateSlowdownFactor float64  `json:"gateSlowdownFactor,omitempty"`
	GateSlowdownMin    Duration `json:"gateSlowdownMin,omitempty"`
}

// Admin configures the plugin administration API under /admin/v1/.
type Admin struct {
	// TokenEnv names the environment variable holding the admin API's bearer token. Default empty: the
	// admin API is off.
	TokenEnv string `json:"tokenEnv,omitempty"`
	// Token is the value of TokenEnv; Load sets it.
	Token Secret `json:"-"`
}

// Console configures the operator console under /console/ on the operations listener.
type Console struct {
	// TokenEnv names the environment variable holding the token operators log in with (at least 16
	// characters). Default empty: the console uses the admin token, and is off when there is none.
	TokenEnv string `json:"tokenEnv,omitempty"`
	// Token is the value of TokenEnv; Load sets it.
	Token Secret `json:"-"`
}

// Reconciler configures the polling of pending payments.
type Reconciler struct {
	// FirstPoll is how long after initiation the provider is first asked for a payment's state.
	// Default 5s.
	FirstPoll Duration `json:"firstPoll"`
	// Interval is the shortest time between two polls of one payment. Default 2s.
	Interval Duration `json:"interval"`
	// MaxInterval is the longest time between two polls of one payment; the interval backs off up to
	// it. Default 30s; must not be shorter than Interval.
	MaxInterval Duration `json:"maxInterval"`
	// PendingTimeout is how long a checkout may stay pending before it is expired. Default 10m.
	PendingTimeout Duration `json:"pendingTimeout"`
	// RetryInDoubt is how long after a provider operation went into doubt (no answer, a timeout, a
	// 5xx) kasse sends it again with the same request id. Default 20s; optional (zero: the default).
	RetryInDoubt Duration `json:"retryInDoubt,omitempty"`
	// VerifyAfter is how long after a capture, refund or cancel kasse checks that its amounts equal the
	// provider's. Default 1m; optional (zero: the default).
	VerifyAfter Duration `json:"verifyAfter,omitempty"`
	// InitiateGrace is how old an initiate without an answer must be before a status check that does not
	// find the payment marks it never started. Default 45s (three provider timeouts); optional.
	InitiateGrace Duration `json:"initiateGrace,omitempty"`
	// WatchFor is how long after its money last moved an authorized or captured payment is still checked
	// against the provider, at doubling intervals from VerifyAfter (money moved in the Vipps portal, a
	// write a Redis failover took back). Default 1h; optional.
	WatchFor Duration `json:"watchFor,omitempty"`
}

// Merchant is one merchant (a Vipps sales unit) and how kasse reaches its payment provider.
type Merchant struct {
	// ID is the merchant's key in the merchants map; Load sets it.
	ID string `json:"-"`
	// Plugin names the payment plugin (plugins.dir/<plugin>.wasm). Required; one of the schema's enum:
	// "vipps-ecom" (Vipps eCom API v2) or "vipps-epayment" (Vipps ePayment API v1, with webhooks).
	// Changing it sends new checkouts to the other plugin; sessions keep the plugin that created them.
	// Express Checkout needs vipps-ecom: the ePayment API has none yet.
	Plugin string `json:"plugin"`
	// WebhookEvents are the Vipps Webhooks API events kasse subscribes to for a vipps-epayment merchant,
	// e.g. "epayments.payment.authorized.v1". Default (empty): all eight ePayment events. Ignored for
	// other plugins.
	WebhookEvents []string `json:"webhookEvents,omitempty"`
	// ReturnURLPrefixes are absolute http(s) URLs with a path; a checkout's returnUrl must start with
	// one of them, so kasse is not an open redirect. Required, at least one.
	ReturnURLPrefixes []string `json:"returnUrlPrefixes"`
	// TransactionTextPrefix is put in front of every checkout's description in the transaction text
	// the customer sees. Default empty; at most 50 characters.
	TransactionTextPrefix string `json:"transactionTextPrefix,omitempty"`
	// APIKeyEnv names the environment variable holding the API key the merchant's shop must send as
	// "Authorization: Bearer <key>". Required unless InsecureNoAuth is true.
	APIKeyEnv string `json:"apiKeyEnv,omitempty"`
	// InsecureNoAuth leaves the merchant's API open, without a key. Load refuses it unless every
	// listener (server.listen and server.opsListen) is on loopback: for local development only.
	InsecureNoAuth bool `json:"insecureNoAuth,omitempty"`
	// APIKey is the value of APIKeyEnv; Load sets it.
	APIKey Secret `json:"-"`
	// Vipps holds the merchant's Vipps API settings and credentials. Required.
	Vipps Vipps `json:"vipps"`
	// ExpressCheckout turns Vipps Express Checkout (Hurtigkasse) on: shops may then start payments with
	// POST /v1/express/{merchant}, and the customer chooses address and shipping in Vipps. Default false;
	// true requires Shipping. A change takes effect at the next config reload, without a restart.
	ExpressCheckout bool `json:"expressCheckout,omitempty"`
	// Shipping is the merchant's shipping for Express Checkout: mode, methods and rules. Required when
	// ExpressCheckout is true.
	Shipping *Shipping `json:"shipping,omitempty"`
	// Platform says which webshop platform drives this merchant through POST /hooks/{kind}/{merchant}
	// and how kasse reports payment outcomes back to it. Optional: without it the merchant's shop uses
	// the checkout API directly.
	Platform *Platform `json:"platform,omitempty"`
}

// Platform is a merchant's webshop platform: the adapter that reads its webhooks and writes its status
// updates, and that adapter's settings. Which fields an adapter needs is checked by the adapter when the
// host starts (package adapters); the secrets are given by the names of the environment variables that
// hold them.
type Platform struct {
	// Kind is the registered adapter id: "woocommerce", "shopify", "generic", or the id a third-party
	// adapter registered. Required.
	Kind string `json:"kind"`
	// WebhookSecretEnv names the environment variable holding the secret the platform signs its
	// deliveries with (WooCommerce: the webhook's secret; Shopify: the app's client secret or the
	// store's notification signing key; generic: the shared secret of kasse's own scheme). Required.
	WebhookSecretEnv string `json:"webhookSecretEnv"`
	// PreviousWebhookSecretEnv names the environment variable holding the secret being rotated out.
	// While it is set, deliveries signed with either secret are accepted. Optional.
	PreviousWebhookSecretEnv string `json:"previousWebhookSecretEnv,omitempty"`
	// BaseURL is where kasse reaches the platform's API: the WordPress site URL for WooCommerce
	// (https://shop.example), https://{shop}.myshopify.com for Shopify, and for generic the URL kasse
	// POSTs signed status updates to. https, or http to a loopback host only. Load removes a trailing
	// slash. Required by woocommerce and shopify; optional for generic (no status updates without it).
	BaseURL string `json:"baseUrl,omitempty"`
	// ConsumerKeyEnv names the environment variable holding the WooCommerce REST API consumer key
	// (ck_...), with read/write scope. Required by woocommerce.
	ConsumerKeyEnv string `json:"consumerKeyEnv,omitempty"`
	// ConsumerSecretEnv names the environment variable holding the WooCommerce REST API consumer secret
	// (cs_...). Required by woocommerce.
	ConsumerSecretEnv string `json:"consumerSecretEnv,omitempty"`
	// AccessTokenEnv names the environment variable holding the Shopify Admin API access token
	// (shpat_...), sent as X-Shopify-Access-Token. Required by shopify.
	AccessTokenEnv string `json:"accessTokenEnv,omitempty"`
	// APIVersion is the Shopify Admin API version in the request path. Default "2026-07" (shopify only).
	APIVersion string `json:"apiVersion,omitempty"`
	// GatewayID says which orders are paid through kasse: the WooCommerce payment_method id, or a name
	// in Shopify's payment_gateway_names. Orders with another gateway are ignored. Default "vipps".
	GatewayID string `json:"gatewayId,omitempty"`
	// CaptureOnStatus is the WooCommerce order status that captures the payment. Default "completed"
	// (Norwegian law requires capture at shipping). Shopify captures on fulfilment.
	CaptureOnStatus string `json:"captureOnStatus,omitempty"`
	// PaidStatus is the WooCommerce order status kasse sets when the payment is reserved. Default
	// "processing".
	PaidStatus string `json:"paidStatus,omitempty"`
	// FailedStatus is the WooCommerce order status kasse sets when the payment fails, is rejected or
	// expires: "failed" (the default; the customer can pay the order again) or "cancelled".
	FailedStatus string `json:"failedStatus,omitempty"`
	// ReturnURL is where the customer lands after paying. "{id}" and "{key}" are replaced by the order
	// id and the order key. Default for woocommerce: baseUrl + "/checkout/order-received/{id}/?key={key}";
	// Shopify orders carry their own order_status_url. It must start with one of returnUrlPrefixes.
	ReturnURL string `json:"returnUrl,omitempty"`
	// Options holds adapter-specific settings that are not secrets, for adapters outside kasse. The
	// adapter's validator checks them. Optional.
	Options map[string]string `json:"options,omitempty"`

	// WebhookSecret is the value of WebhookSecretEnv; Load sets it.
	WebhookSecret Secret `json:"-"`
	// PreviousWebhookSecret is the value of PreviousWebhookSecretEnv; Load sets it.
	PreviousWebhookSecret Secret `json:"-"`
	// ConsumerKey is the value of ConsumerKeyEnv; Load sets it.
	ConsumerKey Secret `json:"-"`
	// ConsumerSecret is the value of ConsumerSecretEnv; Load sets it.
	ConsumerSecret Secret `json:"-"`
	// AccessToken is the value of AccessTokenEnv; Load sets it.
	AccessToken Secret `json:"-"`
}

// Vipps is a merchant's Vipps MobilePay API settings. The secrets are given in the file by the names of
// the environment variables that hold them.
type Vipps struct {
	// BaseURL is the API base URL: https://apitest.vipps.no (test) or https://api.vipps.no
	// (production). Plain http is accepted only for loopback hosts. Load removes a trailing slash.
	// Required.
	BaseURL string `json:"baseUrl"`
	// MerchantSerialNumber is the sales unit's MSN, 5 or 6 digits. Required.
	MerchantSerialNumber string `json:"merchantSerialNumber"`
	// ClientID is the client_id from the Vipps portal; not a secret. Required.
	ClientID string `json:"clientId"`
	// ClientSecretEnv names the environment variable holding the client_secret. Required.
	ClientSecretEnv string `json:"clientSecretEnv"`
	// SubscriptionKeyEnv names the environment variable holding the Ocp-Apim-Subscription-Key.
	// Required.
	SubscriptionKeyEnv string `json:"subscriptionKeyEnv"`
	// LedgerID is the Report API ledger that settles this sales unit. Optional: without it the
	// settlement follower looks the ledger up by the merchant serial number.
	LedgerID string `json:"ledgerId,omitempty"`
	// ClientSecret is the value of ClientSecretEnv; Load sets it.
	ClientSecret Secret `json:"-"`
	// SubscriptionKey is the value of SubscriptionKeyEnv; Load sets it.
	SubscriptionKey Secret `json:"-"`
	// RedirectHosts and RedirectSchemes extend where a plugin's redirect URL (or app link, or QR target)
	// may point: by default the host of BaseURL, the documented Vipps landing host and the vipps and
	// vippsMT app schemes (host/fence). Default none.
	RedirectHosts   []string `json:"redirectHosts,omitempty"`
	RedirectSchemes []string `json:"redirectSchemes,omitempty"`
}

// Merchant returns the merchant with the given id.
func (c *Config) Merchant(id string) (Merchant, bool) {
	m, ok := c.Merchants[id]
	return m, ok
}

// Problem is one thing wrong with a config file.
type Problem struct {
	// Pointer is the RFC 6901 JSON pointer of the offending field in the file ("" is the whole file).
	Pointer string
	// Detail says what is wrong. It never contains a secret's value.
	Detail string
}

// Error lists every problem found in a config file: schema violations first checked, then the invariants
// the schema cannot express. Problems are sorted by pointer.
type Error struct {
	Problems []Problem
	// Err is the schema validation error the problems came from, if they came from the schema.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		writeProblem(&b, e.Problems[0])
		return b.String()
	}
	fmt.Fprintf(&b, "%d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		writeProblem(&b, p)
	}
	return b.String()
}

// Unwrap returns the schema validation error, if any.
func (e *Error) Unwrap() error { return e.Err }

func writeProblem(b *strings.Builder, p Problem) {
	ptr := p.Pointer
	if ptr == "" {
		ptr = "(document)"
	}
	b.WriteString(ptr)
	b.WriteString(": ")
	b.WriteString(p.Detail)
}

// Load reads the config file at path and returns it with defaults applied and secrets resolved.
// s must hold schemas.Config. getenv resolves the environment variables the file names (nil means
// os.Getenv).
//
// # Errors
//
// A file that cannot be read or parsed is an error naming the path. A file that fails its schema or an
// invariant is an *Error listing each problem at its JSON pointer. A secret's environment variable that
// is unset is a Problem naming the merchant, the field and the variable, never a value.
func Load(path string, s *schemas.Set, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parse(data, filepath.Dir(path), s, getenv)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return c, nil
}

// Parse is Load for a file already in memory. Relative paths in it (plugins.dir, plugins.cacheDir) stay
// relative to the working directory; ParseAt resolves them against the file's directory, as Load does.
func Parse(data []byte, s *schemas.Set, getenv func(string) string) (*Config, error) {
	return ParseAt(data, "", s, getenv)
}

// ParseAt is Load for a file already in memory that was read from directory dir: relative paths in it
// (plugins.dir, plugins.cacheDir, and plugins.dir's default) are resolved against dir, so that a config
// means the same whatever the working directory of the process reading it. dir "" leaves them as they are.
func ParseAt(data []byte, dir string, s *schemas.Set, getenv func(string) string) (*Config, error) {
	c, err := parse(data, dir, s, getenv)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// defaults returns the config every file is decoded over.
func defaults() Config {
	return Config{
		Server: Server{Listen: "127.0.0.1:8080", OpsListen: "127.0.0.1:9090",
			ReadHeaderTimeout: Duration(10 * time.Second), ReadTimeout: Duration(30 * time.Second),
			WriteTimeout: Duration(60 * time.Second), IdleTimeout: Duration(120 * time.Second),
			MaxHeaderBytes: 64 << 10, PendingClaimTTL: Duration(30 * time.Second)},
		Store: Store{SessionTTL: Duration(9600 * time.Hour)},
		Plugins: Plugins{
			Dir:              "plugin/build",
			CallTimeout:      Duration(100 * time.Millisecond),
			MemoryLimitPages: 512,
			PoolIdle:         Duration(30 * time.Second),
		},
		Reconciler: Reconciler{
			FirstPoll:      Duration(5 * time.Second),
			Interval:       Duration(2 * time.Second),
			MaxInterval:    Duration(30 * time.Second),
			PendingTimeout: Duration(10 * time.Minute),
		},
		Settlement: Settlement{PollInterval: Duration(time.Minute), PayoutDelay: Duration(48 * time.Hour)},
	}
}

func parse(data []byte, dir string, s *schemas.Set, getenv func(string) string) (*Config, error) {
	if s == nil {
		return nil, errors.New("no schema set to validate against")
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	doc, err := yamlToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	if err := s.Validate(schemas.Config, doc); err != nil {
		var ve *schemas.ValidationError
		if !errors.As(err, &ve) {
			return nil, fmt.Errorf("validate: %w", err)
		}
		e := &Error{Err: err}
		for _, v := range ve.Violations {
			e.Problems = append(e.Problems, Problem{Pointer: v.Pointer, Detail: v.Detail})
		}
		if len(e.Problems) == 0 {
			e.Problems = []Problem{{Detail: err.Error()}}
		}
		withSuggestions(e.Problems)
		sortProblems(e.Problems)
		return nil, e
	}

	c := defaults()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}

	var problems []Problem
	add := func(ptr, format string, args ...any) {
		problems = append(problems, Problem{Pointer: ptr, Detail: fmt.Sprintf(format, args...)})
	}

	if dir != "" {
		for _, p := range []*string{&c.Plugins.Dir, &c.Plugins.CacheDir} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
	}
	if c.Plugins.CacheDir == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			c.Plugins.CacheDir = filepath.Join(dir, "kasse", "wazero")
		}
	}

	for _, d := range []struct {
		ptr string
		v   Duration
	}{
		{"/server/readHeaderTimeout", c.Server.ReadHeaderTimeout},
		{"/server/readTimeout", c.Server.ReadTimeout},
		{"/server/writeTimeout", c.Server.WriteTimeout},
		{"/server/idleTimeout", c.Server.IdleTimeout},
		{"/server/pendingClaimTtl", c.Server.PendingClaimTTL},
		{"/store/sessionTtl", c.Store.SessionTTL},
		{"/plugins/callTimeout", c.Plugins.CallTimeout},
		{"/plugins/poolIdle", c.Plugins.PoolIdle},
		{"/reconciler/firstPoll", c.Reconciler.FirstPoll},
		{"/reconciler/interval", c.Reconciler.Interval},
		{"/reconciler/maxInterval", c.Reconciler.MaxInterval},
		{"/reconciler/pendingTimeout", c.Reconciler.PendingTimeout},
	} {
		if d.v <= 0 {
			add(d.ptr, "must be a positive duration, got %s", d.v)
		}
	}
	if c.Server.PendingClaimTTL > 0 && c.Server.PendingClaimTTL < Duration(time.Second) {
		// Renewed every third of it: shorter, a renewal that waits on a busy store comes too late, and a
		// retry runs beside the request it should have waited for.
		add("/server/pendingClaimTtl", "must be at least 1s, got %s", c.Server.PendingClaimTTL)
	}
	if c.Reconciler.MaxInterval < c.Reconciler.Interval {
		add("/reconciler/maxInterval", "must not be shorter than interval (%s), got %s",
			c.Reconciler.Interval, c.Reconciler.MaxInterval)
	}

	host, port, err := net.SplitHostPort(c.Server.Listen)
	if err != nil {
		add("/server/listen", "must be host:port, got %q", c.Server.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		add("/server/listen", "port must be 0 to 65535, got %q", port)
	} else if c.Server.PublicURL == "" {
		if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		c.Server.PublicURL = "http://" + net.JoinHostPort(host, port)
	}
	loopbackOnly := c.Server.LoopbackOnly()
	if host, port, err := net.SplitHostPort(c.Server.OpsListen); err != nil {
		add("/server/opsListen", "must be host:port, got %q", c.Server.OpsListen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		add("/server/opsListen", "port must be 0 to 65535, got %q", port)
	} else {
		if lh, lp, err := net.SplitHostPort(c.Server.Listen); err == nil && lp == port && port != "0" &&
			(lh == host || isAnyHost(lh) || isAnyHost(host)) {
			add("/server/opsListen", "must not share listen's port %s on the same address, got %q", port, c.Server.OpsListen)
		}
	}
	urlSecret := func(ptr, env string) Secret {
		switch v := getenv(env); {
		case v == "":
			add(ptr, "URL secret: environment variable %s is not set", env)
		case len(v) < 32:
			add(ptr, "URL secret: environment variable %s holds fewer than 32 characters", env)
		case strings.ContainsFunc(v, isControl):
			add(ptr, "URL secret: environment variable %s contains control characters (a trailing newline?)", env)
		default:
			return Secret(v)
		}
		return ""
	}
	if c.Server.URLSecretEnv != "" {
		c.Server.URLSecret = urlSecret("/server/urlSecretEnv", c.Server.URLSecretEnv)
	}
	if c.Server.PreviousURLSecretEnv != "" {
		c.Server.PreviousURLSecret = urlSecret("/server/previousUrlSecretEnv", c.Server.PreviousURLSecretEnv)
	}
	if c.Server.PublicURL != "" {
		c.Server.PublicURL = strings.TrimRight(c.Server.PublicURL, "/")
		if detail := checkBaseURL(c.Server.PublicURL); detail != "" {
			add("/server/publicUrl", "%s, got %q", detail, c.Server.PublicURL)
		}
	}

	checkStore(&c, getenv, add)

	if c.Admin.TokenEnv != "" {
		switch v := getenv(c.Admin.TokenEnv); {
		case v == "":
			add("/admin/tokenEnv", "admin API token: environment variable %s is not set", c.Admin.TokenEnv)
		case len(v) < 16:
			add("/admin/tokenEnv", "admin API token: environment variable %s holds fewer than 16 characters", c.Admin.TokenEnv)
		case strings.ContainsFunc(v, isControl):
			add("/admin/tokenEnv", "admin API token: environment variable %s contains control characters (a trailing newline?)", c.Admin.TokenEnv)
		default:
			c.Admin.Token = Secret(v)
		}
	}

	if c.Console.TokenEnv != "" {
		switch v := getenv(c.Console.TokenEnv); {
		case v == "":
			add("/console/tokenEnv", "console token: environment variable %s is not set", c.Console.TokenEnv)
		case len(v) < 16:
			add("/console/tokenEnv", "console token: environment variable %s holds fewer than 16 characters", c.Console.TokenEnv)
		case strings.ContainsFunc(v, isControl):
			add("/console/tokenEnv", "console token: environment variable %s contains control characters (a trailing newline?)", c.Console.TokenEnv)
		default:
			c.Console.Token = Secret(v)
		}
	}

	ids := make([]string, 0, len(c.Merchants))
	for id := range c.Merchants {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	expressWithoutSecret := ""
	for _, id := range ids {
		m := c.Merchants[id]
		m.ID = id
		base := "/merchants/" + escapePointer(id)
		for i, p := range m.ReturnURLPrefixes {
			if detail := checkReturnPrefix(p); detail != "" {
				add(base+"/returnUrlPrefixes/"+strconv.Itoa(i), "%s, got %q", detail, p)
			}
		}
		m.Vipps.BaseURL = strings.TrimRight(m.Vipps.BaseURL, "/")
		if detail := checkVippsBaseURL(m.Vipps.BaseURL); detail != "" {
			add(base+"/vipps/baseUrl", "%s, got %q", detail, m.Vipps.BaseURL)
		}
		secret := func(ptr, what, env string) Secret {
			v := getenv(env)
			switch {
			case v == "":
				add(ptr, "merchant %s: %s: environment variable %s is not set", id, what, env)
			case strings.ContainsFunc(v, isControl):
				add(ptr, "merchant %s: %s: environment variable %s contains control characters (a trailing newline?)", id, what, env)
			}
			return Secret(v)
		}
		m.Vipps.ClientSecret = secret(base+"/vipps/clientSecretEnv", "client secret", m.Vipps.ClientSecretEnv)
		m.Vipps.SubscriptionKey = secret(base+"/vipps/subscriptionKeyEnv", "subscription key", m.Vipps.SubscriptionKeyEnv)
		switch {
		case m.APIKeyEnv != "" && m.InsecureNoAuth:
			add(base+"/insecureNoAuth", "merchant %s: insecureNoAuth contradicts apiKeyEnv; remove one", id)
		case m.APIKeyEnv != "":
			m.APIKey = secret(base+"/apiKeyEnv", "API key", m.APIKeyEnv)
		case !m.InsecureNoAuth:
			add(base+"/apiKeyEnv", "merchant %s: required: the shop must authenticate with an API key "+
				"(insecureNoAuth: true leaves the API open, on a loopback-only kasse)", id)
		case !loopbackOnly:
			add(base+"/insecureNoAuth", "merchant %s: refused: server.listen and server.opsListen must both be "+
				"loopback addresses for a merchant without an API key", id)
		}
		if m.ExpressCheckout && c.Server.URLSecretEnv == "" && expressWithoutSecret == "" {
			expressWithoutSecret = id
		}
		checkExpress(base, &m, add)
		if m.Platform != nil {
			p := *m.Platform
			pbase := base + "/platform"
			if p.BaseURL != "" {
				p.BaseURL = strings.TrimRight(p.BaseURL, "/")
				if detail := checkVippsBaseURL(p.BaseURL); detail != "" {
					add(pbase+"/baseUrl", "%s, got %q", detail, p.BaseURL)
				}
			}
			p.WebhookSecret = secret(pbase+"/webhookSecretEnv", "platform webhook secret", p.WebhookSecretEnv)
			optional := func(ptr, what, env string) Secret {
				if env == "" {
					return ""
				}
				return secret(pbase+ptr, what, env)
			}
			p.PreviousWebhookSecret = optional("/previousWebhookSecretEnv", "previous platform webhook secret", p.PreviousWebhookSecretEnv)
			p.ConsumerKey = optional("/consumerKeyEnv", "platform consumer key", p.ConsumerKeyEnv)
			p.ConsumerSecret = optional("/consumerSecretEnv", "platform consumer secret", p.ConsumerSecretEnv)
			p.AccessToken = optional("/accessTokenEnv", "platform access token", p.AccessTokenEnv)
			m.Platform = &p
		}
		c.Merchants[id] = m
	}

	if expressWithoutSecret != "" {
		add("/server/urlSecretEnv", "required when a merchant has expressCheckout on (merchant %s): the Express "+
			"shipping-details and consent-removal URLs are derived from it", expressWithoutSecret)
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, &Error{Problems: problems}
	}
	return &c, nil
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Pointer != ps[j].Pointer {
			return ps[i].Pointer < ps[j].Pointer
		}
		return ps[i].Detail < ps[j].Detail
	})
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// escapePointer escapes one RFC 6901 reference token.
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// checkBaseURL checks an absolute http(s) URL with a host and without user info, query or fragment. It
// returns what is wrong, or "".
func checkBaseURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "must be an absolute http or https URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an absolute http or https URL"
	case u.Host == "" || u.Hostname() == "":
		return "must have a host"
	case u.User != nil:
		return "must not carry user info"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(raw, "?#"):
		return "must not have a query or fragment"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "port must be 1 to 65535"
		}
	}
	return ""
}

// checkVippsBaseURL is checkBaseURL plus: https, or http to a loopback host.
func checkVippsBaseURL(raw string) string {
	if detail := checkBaseURL(raw); detail != "" {
		return detail
	}
	u, _ := url.Parse(raw)
	if u.Scheme == "http" && !IsLoopback(u.Hostname()) {
		return "must be https (plain http is accepted only for loopback hosts)"
	}
	return ""
}

// checkReturnPrefix is checkBaseURL plus a path that starts with "/", so that the prefix ends the host:
// without it "http://shop.example" would also admit "http://shop.example.evil.test/".
func checkReturnPrefix(raw string) string {
	if detail := checkBaseURL(raw); detail != "" {
		return detail
	}
	u, _ := url.Parse(raw)
	if !strings.HasPrefix(u.Path, "/") {
		return "must have a path, at least \"/\" after the host"
	}
	return ""
}

// LoopbackOnly reports whether both listeners (Listen and OpsListen) bind loopback addresses only, as a
// merchant with InsecureNoAuth requires.
func (s Server) LoopbackOnly() bool {
	return isLoopbackListen(s.Listen) && isLoopbackListen(s.OpsListen)
}

// isLoopbackListen reports whether a listen address (host:port) binds a loopback address only; an empty
// host binds every interface.
func isLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && host != "" && IsLoopback(host)
}

// isAnyHost reports whether a listen host binds every interface.
func isAnyHost(host string) bool {
	ip, err := netip.ParseAddr(host)
	return host == "" || (err == nil && ip.IsUnspecified())
}

// IsLoopback reports whether host (a URL's hostname, without port or brackets) is "localhost" or a
// loopback IP address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
