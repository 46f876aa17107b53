package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kassehq/kasse/examples/vippssim"
	"github.com/kassehq/kasse/host"
	"github.com/kassehq/kasse/host/internal/loadbench"
	"github.com/kassehq/kasse/host/internal/testredis"
	"github.com/kassehq/kasse/host/webhooks"
)

var (
	loadDuration    = flag.Duration("load.duration", 2*time.Second, "how long BenchmarkLoad drives each path")
	loadConcurrency = flag.Int("load.concurrency", 32, "concurrent requests BenchmarkLoad keeps in flight")
	loadProfile     = flag.String("load.cpuprofile", "", "directory where BenchmarkLoad writes a CPU profile of each path (<path>.cpu.prof); not with -cpuprofile")
)

// loadReconciler keeps the reconciler out of the measurement: no poll is due during the run, so a
// session approved at the simulator waits for the callback the benchmark delivers first.
const loadReconciler = "  firstPoll: 1h\n  interval: 1h\n  maxInterval: 1h\n  pendingTimeout: 2h\n"

const wooLoadSecret = "woo-load-webhook-secret"

// BenchmarkLoad is the load benchmark of `make bench`: a bare gin no-op handler as the baseline, then
// kasse (Redis store, both plugins, the Vipps simulator on loopback, as production runs them) on each hot
// path, every path driven for -load.duration with -load.concurrency requests in flight, in one run. Each
// path is a sub-benchmark reporting req/s, p50, p99, errors and the req/s of a gin baseline run just
// before it; benchtable prints each path's req/s as a share of that baseline (the machine is shared, so
// only the share compares across runs). Each row also reports the CPU time per request of the benchmark
// process and redis-server together (the simulator and the client are in the process), and the same for
// its gin baseline: their ratio is what the share would be on an idle machine, and it hardly moves with
// other load. Each row also reports the Redis commands per request (redis-cmds/req, commands run by
// scripts included). -load.cpuprofile DIR writes a CPU profile of each path (DIR/<path>.cpu.prof), for
// `go tool pprof`. It runs once whatever -benchtime says.
func BenchmarkLoad(b *testing.B) {
	if b.N > 1 {
		b.Skip("the load benchmark drives each path for -load.duration; run it with -benchtime 1x")
	}
	ctx := b.Context()
	o := loadbench.Options{Concurrency: *loadConcurrency, Duration: *loadDuration}
	client := loadbench.NewClient(o.Concurrency)
	b.Cleanup(client.CloseIdleConnections)
	o.Client = client

	noop := httptest.NewServer(loadbench.NoopHandler())
	b.Cleanup(noop.Close)
	env := newLoadEnv(b)

	noopGet := func(int, int) (*http.Request, error) { return http.NewRequest("GET", noop.URL+"/noop", nil) }
	// Other load on the machine drifts over a run, so each path is compared with a gin baseline measured
	// just before it (for a third of the time), reported as its gin-req/s.
	adjacent := o
	adjacent.Duration = max(o.Duration/3, 200*time.Millisecond)
	run := func(name string, next loadbench.Next) loadbench.Result {
		var res loadbench.Result
		b.Run(name, func(b *testing.B) {
			base := loadbench.Run(ctx, adjacent, noopGet)
			redis0, calls0 := env.redisCPU(b), env.redisCalls(b)
			stop := startPathProfile(b, name)
			res = loadbench.Run(ctx, o, next)
			stop()
			res.CPU += env.redisCPU(b) - redis0
			if res.Requests > 0 {
				b.ReportMetric(float64(env.redisCalls(b)-calls0)/float64(res.Requests), "redis-cmds/req")
			}
			b.ReportMetric(base.RPS(), "gin-req/s")
			b.ReportMetric(float64(base.CPUPerRequest().Nanoseconds())/1e3, "gin-cpu-µs/req")
			b.ReportMetric(float64(res.CPUPerRequest().Nanoseconds())/1e3, "cpu-µs/req")
			b.ReportMetric(res.RPS(), "req/s")
			b.ReportMetric(float64(res.P50.Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(res.P99.Nanoseconds())/1e3, "p99-µs")
			b.ReportMetric(float64(res.Errors), "errors")
			b.ReportMetric(float64(res.Requests), "requests")
			if res.Errors > 0 {
				b.Errorf("%s: %d of %d requests failed; first: %s", name, res.Errors, res.Requests, res.FirstError)
			}
		})
		return res
	}
	// A warm-up, unreported: the first run of a process pays for connections, page faults and GC sizing.
	warm := o
	warm.Duration = o.Duration / 4
	loadbench.Run(ctx, warm, noopGet)
	first := run("gin-noop", noopGet)

	// POST /v1/checkouts; the sessions it creates are the input of the paths after it.
	body, _ := json.Marshal(checkoutBody(49900))
	run("post-checkout", func(w, _ int) (*http.Request, error) {
		return env.apiRequest("POST", "/v1/checkouts", body), nil
	})
	refs := env.sessions(b, "demo")
	if len(refs) < o.Concurrency {
		b.Fatalf("only %d sessions created", len(refs))
	}
	run("get-checkout", func(w, i int) (*http.Request, error) {
		return env.apiRequest("GET", "/v1/checkouts/"+refs[(w+i*o.Concurrency)%len(refs)].id, nil), nil
	})
	// The floor under GET: a bare gin handler that reads a session-sized value with one Redis GET and
	// answers it; kasse's GET does that plus the API key, routing, decoding and the view. Its first row
	// sends each GET on its own, its second through the automatic pipeliner as kasse's reads go.
	for _, f := range []struct {
		name      string
		pipelined bool
	}{{"gin-redis-get", false}, {"gin-redis-get-pipelined", true}} {
		floorHandler, err := loadbench.RedisGetHandler(ctx, env.rdb, env.sessionJSON(b, refs[0].id), f.pipelined)
		if err != nil {
			b.Fatal(err)
		}
		floor := httptest.NewServer(floorHandler)
		b.Cleanup(floor.Close)
		run(f.name, func(int, int) (*http.Request, error) { return http.NewRequest("GET", floor.URL+"/get", nil) })
	}

	// The customer approves every one; the simulator records the callbacks without sending them, so the
	// benchmark delivers each for the first time.
	callbacks := env.approveAll(b, refs)
	byWorker := split(callbacks, o.Concurrency)
	run("callback-first", func(w, i int) (*http.Request, error) {
		if i >= len(byWorker[w]) {
			return nil, loadbench.ErrDone
		}
		return callbackRequest(byWorker[w][i]), nil
	})
	run("callback-duplicate", func(w, i int) (*http.Request, error) {
		cbs := byWorker[w]
		return callbackRequest(cbs[i%len(cbs)]), nil
	})

	// Partial captures of 1 NOK (Vipps's least); a worker keeps to its own sessions, so no two captures of one session
	// overlap (that would rightly answer 409).
	authorized := split(refs, o.Concurrency)
	capture := []byte(`{"amount":100}`)
	run("capture", func(w, i int) (*http.Request, error) {
		ref := authorized[w][i%len(authorized[w])]
		return env.apiRequest("POST", "/v1/checkouts/"+ref.id+"/capture", capture), nil
	})

	run("woo-order-created", func(w, i int) (*http.Request, error) {
		return env.wooOrderCreated(w*1_000_000 + i + 1000), nil
	})

	ship := env.expressSessions(b, o.Concurrency)
	question := []byte(`{"addressId":3960,"addressLine1":"Storgata 1","city":"TROMSØ","country":"Norway","postCode":"9008"}`)
	run("express-shipping-details", func(w, _ int) (*http.Request, error) {
		req, _ := http.NewRequest("POST", ship[w].url, bytes.NewReader(question))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", ship[w].token)
		return req, nil
	})

	ep := env.epaymentAuthorized(b, o.Concurrency)
	run("epayment-webhook-duplicate", func(w, _ int) (*http.Request, error) {
		return env.webhookRequest(ep[w]), nil
	})

	// The baseline runs again at the end: the drift between the two says how much the machine's other
	// load moved during the run.
	last := run("gin-noop", noopGet)
	b.Logf("gin baseline over the run: %.0f then %.0f req/s", first.RPS(), last.RPS())
}

// startPathProfile starts a CPU profile of one path when -load.cpuprofile names a directory, so that each
// path's costs can be read apart from the others'; the returned function stops it.
func startPathProfile(b *testing.B, name string) func() {
	if *loadProfile == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(*loadProfile, name+".cpu.prof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		b.Fatalf("-load.cpuprofile: %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// checkoutRef is a session the benchmark created.
type checkoutRef struct{ id, orderID string }

// split deals items out to n workers, round robin.
func split[T any](items []T, n int) [][]T {
	out := make([][]T, n)
	for i, it := range items {
		out[i%n] = append(out[i%n], it)
	}
	return out
}

// loadEnv is kasse as production runs it: Redis, both plugins, the simulator, a WooCommerce merchant, an
// Express merchant and an ePayment merchant.
type loadEnv struct {
	*stack
	ctx     context.Context
	wooURL  string
	wooBody string
	secret  string // the ePayment merchant's webhook secret
	rdb     *redis.Client
}

func newLoadEnv(b *testing.B) *loadEnv {
	redisURL := testredis.Start(b)
	woo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":727}`))
	}))
	b.Cleanup(woo.Close)
	sim, simURL := startQuietSim(b)
	merchant := func(name, plugin, extra string) string {
		return `
  ` + name + `:
    plugin: ` + plugin + `
    apiKeyEnv: TEST_API_KEY
    returnUrlPrefixes: ["http://shop.test/", "` + woo.URL + `/"]
    vipps:
      baseUrl: {{simURL}}
      merchantSerialNumber: "123456"
      clientId: demo-client-id
      clientSecretEnv: TEST_CLIENT_SECRET
      subscriptionKeyEnv: TEST_SUBSCRIPTION_KEY
` + extra
	}
	extra := merchant("woo", "vipps-ecom", `    platform:
      kind: woocommerce
      webhookSecretEnv: TEST_WOO_SECRET
      baseUrl: `+woo.URL+`/
      consumerKeyEnv: TEST_WOO_KEY
      consumerSecretEnv: TEST_WOO_CONSUMER_SECRET
      gatewayId: vipps
`) + merchant("ep", "vipps-epayment", "") + merchant("expr", "vipps-ecom", expressConfig("dynamic"))
	s := newStack(b, stackOptions{
		redisURL: redisURL, sim: sim, simURL: simURL, wasmDir: bothPluginsDir(b), noSpecCheck: true,
		reconcilerYAML: loadReconciler, extraMerchants: extra,
		// Every line is formatted, as production formats its info lines, and then dropped.
		logs:        io.Discard,
		env:         map[string]string{"TEST_WOO_SECRET": wooLoadSecret, "TEST_WOO_KEY": "ck_test", "TEST_WOO_CONSUMER_SECRET": "cs_test"},
		beforeServe: func(ctx context.Context, srv *host.Server) error { return srv.Webhooks.Sync(ctx) },
	})
	ropts, err := redis.ParseURL(redisURL)
	if err != nil {
		b.Fatal(err)
	}
	e := &loadEnv{stack: s, ctx: b.Context(), wooURL: woo.URL, rdb: redis.NewClient(ropts)}
	b.Cleanup(func() { _ = e.rdb.Close() })
	raw, err := os.ReadFile("../adapters/woocommerce/testdata/woocommerce-order-created.json")
	if err != nil {
		b.Fatal(err)
	}
	e.wooBody = strings.NewReplacer(`"status": "processing"`, `"status": "pending"`,
		`"payment_method": "bacs"`, `"payment_method": "vipps"`, `"currency": "USD"`, `"currency": "NOK"`,
		`"id": 727,`, `"id": {{id}},`, `"number": "727"`, `"number": "{{id}}"`).Replace(string(raw))
	for _, r := range sim.RegisteredWebhooks() {
		if strings.HasSuffix(r.URL, "/v1/vipps/ep/webhooks") {
			e.secret = r.Secret
		}
	}
	if e.secret == "" {
		b.Fatalf("no webhook registered for merchant ep: %+v", sim.RegisteredWebhooks())
	}
	sim.SetCallbackMode(vippssim.CallbackDrop)
	return e
}

// redisCPU is the CPU time redis-server has used so far (INFO cpu).
func (e *loadEnv) redisCPU(b *testing.B) time.Duration {
	info, err := e.rdb.Info(e.ctx, "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu: %s: %v", line, err)
			}
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

// redisCalls is the number of commands redis-server has run so far (INFO commandstats): the commands
// scripts run count each, a script call counts too, the benchmark's own INFO calls do not. Per request
// it says how much Redis work a path asks for.
func (e *loadEnv) redisCalls(b *testing.B) int64 {
	info, err := e.rdb.Info(e.ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(info, "\n") {
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") || name == "cmdstat_info" {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(stats, "calls="), ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			b.Fatalf("INFO commandstats: %s: %v", line, err)
		}
		total += n
	}
	return total
}

// apiRequest is a shop's request to the API with the merchants' API key.
// sessionJSON returns the API's JSON of session id (the size of what a GET reads from Redis).
func (e *loadEnv) sessionJSON(b *testing.B, id string) []byte {
	b.Helper()
	resp, err := http.DefaultClient.Do(e.apiRequest("GET", "/v1/checkouts/"+id, nil))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %v", id, resp.StatusCode, err)
	}
	return body
}

func (e *loadEnv) apiRequest(method, path string, body []byte) *http.Request {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.baseURL+path, r)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// sessions lists the merchant's sessions, by way of the payments the simulator has.
func (e *loadEnv) sessions(b *testing.B, merchant string) []checkoutRef {
	resp, err := http.Get(e.simURL + "/_sim/payments")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var list []struct {
		OrderID string `json:"orderId"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		b.Fatal(err)
	}
	var out []checkoutRef
	for _, p := range list {
		// A session's id is its eCom orderId (RATIONALE: "Why session ids double as provider references").
		sess, err := e.kasse.Store.Get(e.ctx, p.OrderID)
		if err != nil || sess.Merchant != merchant {
			continue
		}
		out = append(out, checkoutRef{id: sess.ID, orderID: sess.ProviderReference})
	}
	return out
}

// approveAll approves every session at the simulator and returns the callbacks it recorded (not sent).
func (e *loadEnv) approveAll(b *testing.B, refs []checkoutRef) []vippssim.DeliveredCallback {
	want := map[string]bool{}
	for _, r := range refs {
		if err := e.sim.Approve(r.orderID, "91234567"); err != nil {
			b.Fatal(err)
		}
		want[r.orderID] = true
	}
	e.sim.Flush()
	var out []vippssim.DeliveredCallback
	for _, cb := range e.sim.Callbacks() {
		if want[cb.OrderID] && !cb.Sent {
			out = append(out, cb)
			delete(want, cb.OrderID)
		}
	}
	if len(want) > 0 {
		b.Fatalf("%d approvals left no callback", len(want))
	}
	return out
}

func callbackRequest(cb vippssim.DeliveredCallback) *http.Request {
	req, _ := http.NewRequest("POST", cb.URL, bytes.NewReader(cb.Body))
	for k, v := range cb.Header {
		req.Header[k] = v
	}
	return req
}

// wooOrderCreated is WooCommerce's signed order.created webhook for a new order id.
func (e *loadEnv) wooOrderCreated(id int) *http.Request {
	body := []byte(strings.ReplaceAll(e.wooBody, "{{id}}", strconv.Itoa(id)))
	req, _ := http.NewRequest("POST", e.baseURL+"/hooks/woocommerce/woo", bytes.NewReader(body))
	for k, v := range map[string]string{
		"Content-Type": "application/json", "X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Resource": "order",
		"X-WC-Webhook-Event": "created", "X-WC-Webhook-Source": e.wooURL + "/", "X-WC-Webhook-ID": "142",
		"X-WC-Webhook-Delivery-ID": "d-" + strconv.Itoa(id), "X-WC-Webhook-Signature": wooSign(wooLoadSecret, body),
	} {
		req.Header.Set(k, v)
	}
	return req
}

// shippingQuestion is where Vipps asks for one Express session's shipping options, with its token.
type shippingQuestion struct{ url, token string }

// expressSessions creates n Express sessions at merchant expr.
func (e *loadEnv) expressSessions(b *testing.B, n int) []shippingQuestion {
	out := make([]shippingQuestion, n)
	for i := range out {
		body := expressBody(fmt.Sprintf("x-%d", i), line("SOCK", 2, 49900), line("HAT", 1, 34900))
		body["merchant"] = "expr"
		res := e.do("POST", "/v1/express/expr", body)
		if res.status != http.StatusCreated {
			b.Fatalf("express create: %d %s", res.status, res.raw)
		}
		sess, err := e.kasse.Store.Get(e.ctx, res.body["id"].(string))
		if err != nil {
			b.Fatal(err)
		}
		out[i] = shippingQuestion{url: e.baseURL + e.expressPath("expr", "/v2/payments/"+sess.ProviderReference+"/shippingDetails"),
			token: sess.CallbackToken}
	}
	return out
}

// epaymentAuthorized creates n ePayment sessions at merchant ep and has the customer approve each; the
// simulator's webhooks authorize them.
func (e *loadEnv) epaymentAuthorized(b *testing.B, n int) []string {
	out := make([]string, n)
	for i := range out {
		body := checkoutBody(15000)
		body["merchant"] = "ep"
		delete(body, "customer")
		res := e.do("POST", "/v1/checkouts", body)
		if res.status != http.StatusCreated {
			b.Fatalf("ePayment create: %d %s", res.status, res.raw)
		}
		out[i] = res.body["id"].(string)
		if err := e.sim.ApproveEPayment(out[i], ""); err != nil {
			b.Fatal(err)
		}
	}
	for _, id := range out {
		e.waitState(id, "authorized")
	}
	return out
}

// webhookRequest is Vipps's AUTHORIZED webhook for ePayment session id, signed now.
func (e *loadEnv) webhookRequest(id string) *http.Request {
	host := strings.TrimPrefix(e.baseURL, "http://")
	event := `{"msn":"123456","reference":"` + id + `","pspReference":"p-` + id + `","name":"AUTHORIZED","amount":{"currency":"NOK","value":15000},"timestamp":"2026-11-25T12:00:00Z","idempotencyKey":null,"success":true}`
	r := webhooks.Request{Method: "POST", PathAndQuery: "/v1/vipps/ep/webhooks", Host: host, Body: []byte(event)}
	webhooks.Sign(e.secret, &r, time.Now())
	req, _ := http.NewRequest("POST", e.baseURL+r.PathAndQuery, bytes.NewReader(r.Body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-ms-date", r.Date)
	req.Header.Set("x-ms-content-sha256", r.ContentSHA256)
	req.Header.Set("Authorization", r.Authorization)
	return req
}

// startQuietSim is startSim without the per-request log lines (thousands a second under load).
func startQuietSim(b *testing.B) (*vippssim.Server, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	simURL := "http://" + l.Addr().String()
	sim, err := vippssim.New(vippssim.Config{Tenants: []vippssim.Tenant{vippssim.DemoTenant()}, PublicURL: simURL,
		AllowHTTPLoopback: true}) // no Logger or Logf: the simulator formats no log lines
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close(); sim.Close() })
	return sim, simURL
}
