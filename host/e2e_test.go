package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/kassehq/kasse/examples/vippssim"
	"github.com/kassehq/kasse/examples/vippssim/vippsspec"
	"github.com/kassehq/kasse/host"
	"github.com/kassehq/kasse/host/internal/testredis"
	"github.com/kassehq/kasse/plugin/plugintest"
	"github.com/kassehq/kasse/schemas"
)

const apiKey = "test-api-key"

// testURLSecret is the server secret the Express URLs' merchant segment is derived from.
const testURLSecret = "test-url-secret-of-at-least-32-characters"

// stack is one kasse instance with its Vipps simulator, all on loopback.
type stack struct {
	t       testing.TB
	sim     *vippssim.Server
	simURL  string
	kasse   *host.Server
	baseURL string
	client  *http.Client
	redis   string
	// configPath is the instance's config file; tests may rewrite it (see writeConfig) and call
	// kasse.ReloadConfig.
	configPath string
	// config renders the instance's config file with the demo merchant on plugin.
	config func(plugin string) string
}

type stackOptions struct {
	redisURL       string
	pendingTimeout string
	listener       net.Listener
	// plugin is the demo merchant's plugin (default vipps-ecom); wasmDir is the plugins directory, which
	// must hold it (default pluginDir, the eCom plugin alone).
	plugin  string
	wasmDir string
	sim     *vippssim.Server
	simURL  string
	// transport, if set, carries the provider requests (under the OpenAPI check).
	transport http.RoundTripper
	// tracerProvider, if set, receives the instance's request spans.
	tracerProvider trace.TracerProvider
	// noSpecCheck leaves the OpenAPI check of provider requests out (the load benchmark measures kasse,
	// not the check).
	noSpecCheck bool
	// reconcilerYAML, if set, replaces the reconciler section's settings, indented by two spaces.
	reconcilerYAML string
	// extraMerchants is YAML appended under merchants:, indented by four spaces; env adds variables.
	extraMerchants string
	env            map[string]string
	// adminToken, if set, turns the admin API on with this token.
	adminToken string
	// serverYAML is added under server:, indented by two spaces (e.g. "  readTimeout: 1s\n").
	serverYAML string
	// topYAML is added at the top level of the config (e.g. "settlement:\n  enabled: true\n").
	topYAML string
	// logs, if set, also receives every log line (at every level).
	logs io.Writer
	// beforeServe, if set, runs after host.New and before Serve, with the instance's context.
	beforeServe func(ctx context.Context, srv *host.Server) error
}

var (
	schemaOnce sync.Once
	schemaSetV *schemas.Set
)

func schemaSet(t testing.TB) *schemas.Set {
	schemaOnce.Do(func() {
		set, err := schemas.Compile()
		if err != nil {
			t.Fatal(err)
		}
		schemaSetV = set
	})
	return schemaSetV
}

// pluginsDir is a plugins directory whose modules are built once per test binary.
type pluginsDir struct {
	prefix  string            // of the temporary directory's name
	plugins map[string]string // plugin name by Go package, e.g. "./plugin/vippsecom": "vipps-ecom"
	once    sync.Once
	dir     string
}

// ecomPlugins holds vipps-ecom alone.
var ecomPlugins = &pluginsDir{prefix: "kasse-e2e-plugins-", plugins: map[string]string{"./plugin/vippsecom": "vipps-ecom"}}

// get builds the plugins on the first call and returns the directory.
func (p *pluginsDir) get(t testing.TB) string {
	t.Helper()
	p.once.Do(func() {
		dir, err := os.MkdirTemp("", p.prefix)
		if err != nil {
			t.Fatal(err)
		}
		pkgs := make([]string, 0, len(p.plugins))
		for pkg := range p.plugins {
			pkgs = append(pkgs, pkg)
		}
		mods := plugintest.BuildAll(t, pkgs...)
		for pkg, name := range p.plugins {
			if err := os.WriteFile(filepath.Join(dir, name+".wasm"), mods[pkg], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		p.dir = dir
	})
	if p.dir == "" {
		t.Fatal("plugin build failed earlier")
	}
	return p.dir
}

// pluginDir builds the eCom plugin from plugin/vippsecom once per test binary.
func pluginDir(t testing.TB) string {
	t.Helper()
	return ecomPlugins.get(t)
}

func newSim(t testing.TB) (*vippssim.Server, string) {
	t.Helper()
	return startSim(t, vippssim.Config{})
}

// startSim serves a simulator with the demo tenant on loopback, configured by cfg (whose Tenants,
// PublicURL, AllowHTTPLoopback and Logf it sets), and returns it with its URL.
func startSim(t testing.TB, cfg vippssim.Config) (*vippssim.Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	simURL := "http://" + l.Addr().String()
	cfg.Tenants = []vippssim.Tenant{vippssim.DemoTenant()}
	cfg.PublicURL = simURL
	cfg.AllowHTTPLoopback = true
	cfg.Logf = t.Logf
	sim, err := vippssim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(sim.Handler())
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(func() { srv.Close(); sim.Close() })
	return sim, simURL
}

func newStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	if o.sim == nil {
		o.sim, o.simURL = newSim(t)
	}
	if o.wasmDir == "" {
		o.wasmDir = pluginDir(t)
	}
	if o.pendingTimeout == "" {
		o.pendingTimeout = "10m"
	}
	if o.plugin == "" {
		o.plugin = "vipps-ecom"
	}
	if o.reconcilerYAML == "" {
		o.reconcilerYAML = "  firstPoll: 300ms\n  interval: 200ms\n  maxInterval: 1s\n  pendingTimeout: " + o.pendingTimeout +
			"\n  retryInDoubt: 1s\n  verifyAfter: 500ms\n"
	}
	l := o.listener
	if l == nil {
		var err error
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	baseURL := "http://" + l.Addr().String()
	adminYAML := ""
	if o.adminToken != "" {
		adminYAML = "admin:\n  tokenEnv: TEST_ADMIN_TOKEN\n"
	}
	adminYAML += o.topYAML
	config := func(plugin string) string {
		return fmt.Sprintf(`
server:
  listen: %q
  publicUrl: %q
  opsListen: 127.0.0.1:0
  urlSecretEnv: TEST_URL_SECRET
%sstore:
  redisUrl: %q
plugins:
  dir: %q
  devMode: true
  cacheDir: %q
  callTimeout: 2s
reconciler:
%s%smerchants:
  demo:
    plugin: %s
    returnUrlPrefixes: ["http://shop.test/"]
    apiKeyEnv: TEST_API_KEY
    vipps:
      baseUrl: %q
      merchantSerialNumber: "123456"
      clientId: demo-client-id
      clientSecretEnv: TEST_CLIENT_SECRET
      subscriptionKeyEnv: TEST_SUBSCRIPTION_KEY
`, l.Addr().String(), baseURL, o.serverYAML, o.redisURL, o.wasmDir, plugintest.CacheDir(), o.reconcilerYAML, adminYAML, plugin, o.simURL) +
			strings.ReplaceAll(o.extraMerchants, "{{simURL}}", o.simURL)
	}
	path := filepath.Join(t.TempDir(), "kasse.yaml")
	if err := os.WriteFile(path, []byte(config(o.plugin)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"TEST_API_KEY": apiKey, "TEST_CLIENT_SECRET": "demo-client-secret",
		"TEST_SUBSCRIPTION_KEY": "demo-subscription-key", "TEST_URL_SECRET": testURLSecret,
	}
	if o.adminToken != "" {
		env["TEST_ADMIN_TOKEN"] = o.adminToken
	}
	for k, v := range o.env {
		env[k] = v
	}
	// Without the check and a transport of the test's, kasse's own outbound transport carries the requests.
	next := o.transport
	if !o.noSpecCheck {
		if next == nil {
			next = http.DefaultTransport
		}
		next = vippsspec.Load(t).Transport(t, next)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := host.New(ctx, host.Options{
		ConfigPath:        path,
		Getenv:            func(k string) string { return env[k] },
		Logger:            testLogger(t, o.logs),
		ProviderTransport: next,
		TracerProvider:    o.tracerProvider,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if o.beforeServe != nil {
		if err := o.beforeServe(ctx, srv); err != nil {
			cancel()
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	client := &http.Client{Timeout: 10 * time.Second, Transport: specChecked(t, &http.Transport{}, l.Addr().String()),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = srv.Close(context.Background())
		client.CloseIdleConnections()
	})
	return &stack{t: t, sim: o.sim, simURL: o.simURL, kasse: srv, baseURL: baseURL, redis: o.redisURL, configPath: path, config: config,
		client: client}
}

// writeConfig rewrites the instance's config file as newStack wrote it, but with the demo merchant on
// plugin; the running instance takes it up at kasse.ReloadConfig.
func (s *stack) writeConfig(plugin string) {
	s.t.Helper()
	if err := os.WriteFile(s.configPath, []byte(s.config(plugin)), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// testLogger logs warnings and errors to the test's log, and everything to logs if set.
func testLogger(t testing.TB, logs io.Writer) *slog.Logger {
	h := slog.Handler(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if logs != nil {
		h = slog.NewMultiHandler(h, slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(h)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// ops sends a request to the operations handler (/metrics, /admin/v1, the detailed /readyz).
func (s *stack) ops(method, path string, body io.Reader, headers ...string) result {
	s.t.Helper()
	req := httptest.NewRequest(method, path, body)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	s.kasse.OpsHandler().ServeHTTP(rec, req)
	if err := apiSpec(s.t).Check(req, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
		s.t.Error(err)
	}
	res := result{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	if len(res.raw) > 0 {
		_ = json.Unmarshal(res.raw, &res.body)
	}
	return res
}

// expressPath is the path of merchant's Express prefix (with its secret segment) followed by rest.
func (s *stack) expressPath(merchant, rest string) string {
	return strings.TrimPrefix(s.kasse.Service.ExpressPrefix(merchant), s.baseURL) + rest
}

// result is an HTTP answer decoded as JSON.
type result struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (s *stack) do(method, path string, body any, headers ...string) result {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.baseURL+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	res := result{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &res.body)
	}
	return res
}

func checkoutBody(amount int64) map[string]any {
	return map[string]any{
		"merchant": "demo", "reference": "order-1001", "amount": amount, "currency": "NOK",
		"description": "One pair of wool socks", "returnUrl": "http://shop.test/orders/1001/thanks",
		"customer": map[string]any{"phoneNumber": "91234567"},
	}
}

func (s *stack) create(amount int64) (id, orderID string) {
	s.t.Helper()
	res := s.do("POST", "/v1/checkouts", checkoutBody(amount))
	if res.status != http.StatusCreated {
		s.t.Fatalf("create: %d %s", res.status, res.raw)
	}
	id, _ = res.body["id"].(string)
	orderID, _ = res.body["providerReference"].(string)
	if id == "" || orderID == "" || res.body["state"] != "pending" {
		s.t.Fatalf("create: unexpected body %s", res.raw)
	}
	if u, _ := res.body["redirectUrl"].(string); !strings.HasPrefix(u, s.simURL+"/") {
		s.t.Fatalf("redirectUrl %q does not lead to the simulator %s", u, s.simURL)
	}
	return id, orderID
}

func (s *stack) get(id string) result {
	s.t.Helper()
	res := s.do("GET", "/v1/checkouts/"+id, nil)
	if res.status != http.StatusOK {
		s.t.Fatalf("get %s: %d %s", id, res.status, res.raw)
	}
	// Every session the API shows matches its published schema, and never shows the callback token.
	if err := schemaSet(s.t).Validate(schemas.Session, res.raw); err != nil {
		s.t.Fatalf("GET /v1/checkouts/%s: %v\n%s", id, err, res.raw)
	}
	return res
}

// waitState polls the API until the session reaches want, or fails after a few seconds.
func (s *stack) waitState(id, want string) result {
	s.t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for {
		res := s.get(id)
		if res.body["state"] == want {
			return res
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("session %s: state %v, want %s; body %s", id, res.body["state"], want, res.raw)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func amounts(res result) string {
	return fmt.Sprintf("state=%v amount=%v authorized=%v captured=%v refunded=%v", res.body["state"],
		res.body["amount"], res.body["authorizedAmount"], res.body["capturedAmount"], res.body["refundedAmount"])
}

func expectAmounts(t *testing.T, res result, want string) {
	t.Helper()
	if got := amounts(res); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func expectProblem(t *testing.T, res result, status int, pointer string) {
	t.Helper()
	if res.status != status {
		t.Fatalf("status %d, want %d: %s", res.status, status, res.raw)
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	if res.body["title"] == nil || res.body["status"] != float64(status) {
		t.Fatalf("not a problem document: %s", res.raw)
	}
	if pointer == "" {
		return
	}
	errs, _ := res.body["errors"].([]any)
	for _, e := range errs {
		if m, _ := e.(map[string]any); m["pointer"] == pointer && m["detail"] != "" {
			return
		}
	}
	t.Fatalf("problem does not name %s: %s", pointer, res.raw)
}

// stores runs f once with the in-process store and once with a real redis-server; with
// KASSE_TEST_REDIS=cluster, the second run is on a Redis Cluster of three primaries with a replica each
// instead, reached through go-redis's cluster URL form (the store's keys then spread over the primaries).
func stores(t *testing.T, f func(t *testing.T, redisURL string)) {
	t.Run("memory", func(t *testing.T) { f(t, "") })
	t.Run("redis", func(t *testing.T) {
		if os.Getenv("KASSE_TEST_REDIS") != "cluster" {
			f(t, testredis.Start(t))
			return
		}
		addrs := testredis.StartReplicatedCluster(t).Addrs()
		f(t, "redis://"+addrs[0]+"?addr="+strings.Join(addrs[1:], "&addr="))
	})
}
