//go:build linux

package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/internal/testredis"
	"github.com/kassehq/kasse/plugin/plugintest"
)

// Secrets of the run: they only open this run's simulator and fake platforms.
const (
	apiKey        = "chaos-api-key"
	genericSecret = "chaos-generic-secret"
	wooSecret     = "chaos-woo-secret"
	shopifySecret = "chaos-shopify-secret"
	shopifyToken  = "shpat_chaos"
	shopifyAPI    = "2026-07"
	shopDomain    = "jsmith.myshopify.com" // the published sample order's shop (its order_status_url)
)

// timing of the run's kasse instances: short, so that the run settles within minutes.
const (
	pendingTimeout = 30 * time.Second
	firstPoll      = time.Second
	pollInterval   = time.Second
	maxPoll        = 4 * time.Second
)

// kasseInstance is one kasse process.
type kasseInstance struct {
	proc *proc
	url  string
	ops  string // the operations listener (/metrics), "" if this kasse has none
}

// harness is everything a run starts and the records it keeps.
type harness struct {
	t       *testing.T
	dir     string
	logs    string // where the processes' logs go: KASSE_CHAOS_LOGS to keep them, else dir
	cluster *testredis.Cluster
	sim     *proc
	simURL  string
	kasses  []*kasseInstance
	plat    *platforms
	client  *http.Client // to kasse: long enough for a frozen simulator behind it
	control *http.Client // to the simulator's controls
	rr      atomic.Uint64
	stats   *stats
	reg     *registry
	faults  *faultLog

	wooOrder, shopifyOrder string // the platforms' sample orders, made pending Vipps orders in NOK

	simFaultsMu  sync.Mutex
	simFaultsDoc map[string]any
	simFaults    int32 // 0 unknown, 1 supported, -1 missing (atomic)
}

// start builds the binaries and starts the cluster, the simulator, the platforms and three kasse instances.
func start(t *testing.T) *harness {
	h := &harness{t: t, dir: t.TempDir(), logs: os.Getenv("KASSE_CHAOS_LOGS"), stats: newStats(), reg: newRegistry(), faults: newFaultLog(),
		client:  &http.Client{Timeout: 25 * time.Second},
		control: &http.Client{Timeout: 5 * time.Second}}
	if h.logs == "" {
		h.logs = h.dir
	} else if err := os.MkdirAll(h.logs, 0o755); err != nil {
		t.Fatal(err)
	}
	root := moduleRoot(t)
	var err error
	if h.wooOrder, h.shopifyOrder, err = fixtures(root); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(h.dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	kasseBin := buildBinary(t, root, bin, "./host/cmd/kasse", "kasse")
	simBin := buildBinary(t, root, bin, "./examples/vippssim/cmd/vippssim", "vippssim")
	plugins := filepath.Join(h.dir, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plugins, "vipps-ecom.wasm"), plugintest.Build(t, "./plugin/vippsecom"), 0o644); err != nil {
		t.Fatal(err)
	}

	h.cluster = testredis.StartReplicatedCluster(t)
	addrs := h.cluster.Addrs()
	redisURL := "redis://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr=")

	h.plat = newPlatforms(t)

	simPort := freePort(t)
	h.simURL = "http://127.0.0.1:" + strconv.Itoa(simPort)
	h.sim = &proc{name: "vippssim", bin: simBin, logPath: filepath.Join(h.logs, "vippssim.log"),
		args: []string{"-addr", "127.0.0.1:" + strconv.Itoa(simPort), "-allow-http-loopback"}}
	if err := h.sim.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.sim.stop)
	if err := h.sim.waitHTTP(t.Context(), h.simURL+"/_sim/payments", 30*time.Second); err != nil {
		t.Fatal(err)
	}

	opsListen, urlSecret := schemaHas(root, "opsListen"), schemaHas(root, "urlSecretEnv")
	for i := range 3 {
		port := freePort(t)
		k := &kasseInstance{url: "http://127.0.0.1:" + strconv.Itoa(port)}
		cfg := filepath.Join(h.dir, fmt.Sprintf("kasse-%d.yaml", i))
		ops := ""
		if opsListen {
			opsPort := freePort(t)
			ops = fmt.Sprintf("  opsListen: 127.0.0.1:%d\n", opsPort)
			k.ops = "http://127.0.0.1:" + strconv.Itoa(opsPort)
		}
		if urlSecret {
			ops += "  urlSecretEnv: CHAOS_URL_SECRET\n"
		}
		if err := os.WriteFile(cfg, []byte(h.kasseConfig(port, ops, plugins)), 0o600); err != nil {
			t.Fatal(err)
		}
		k.proc = &proc{name: fmt.Sprintf("kasse-%d", i), bin: kasseBin, logPath: filepath.Join(h.logs, fmt.Sprintf("kasse-%d.log", i)),
			args: []string{"-config", cfg},
			env: []string{"KASSE_REDIS_URL=" + redisURL, "CHAOS_API_KEY=" + apiKey,
				"CHAOS_CLIENT_SECRET=demo-client-secret", "CHAOS_SUBSCRIPTION_KEY=demo-subscription-key",
				"CHAOS_GENERIC_SECRET=" + genericSecret, "CHAOS_WOO_SECRET=" + wooSecret,
				"CHAOS_WOO_KEY=ck_chaos", "CHAOS_WOO_CONSUMER_SECRET=cs_chaos",
				"CHAOS_SHOPIFY_SECRET=" + shopifySecret, "CHAOS_SHOPIFY_TOKEN=" + shopifyToken,
				"CHAOS_URL_SECRET=chaos-url-secret-of-at-least-32-characters"}}
		if err := k.proc.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(k.proc.stop)
		h.kasses = append(h.kasses, k)
	}
	for _, k := range h.kasses {
		if err := k.proc.waitHTTP(t.Context(), k.url+"/readyz", 90*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range h.procs() {
				t.Logf("---- last lines of %s (%s)\n%s", p.name, p.logPath, p.tail(4000))
			}
			// The errors explain a 500 or a lost write long after they scrolled out of the tail.
			for _, p := range h.procs() {
				lines, err := grepFile(p.logPath, "level=ERROR")
				if err == nil && lines != "" {
					if len(lines) > 8000 {
						lines = lines[:8000] + "\n[...]"
					}
					t.Logf("---- errors logged by %s\n%s", p.name, lines)
				}
			}
		}
	})
	return h
}

func (h *harness) procs() []*proc {
	ps := []*proc{h.sim}
	for _, k := range h.kasses {
		ps = append(ps, k.proc)
	}
	return ps
}

// schemaHas reports whether the config schema in this checkout knows a property (so that the suite
// works before and after a field lands).
func schemaHas(root, property string) bool {
	b, err := os.ReadFile(filepath.Join(root, "schemas", "config.schema.json"))
	return err == nil && bytes.Contains(b, []byte(`"`+property+`"`))
}

// kasseConfig renders one instance's config: three merchants on the simulator's demo tenant.
func (h *harness) kasseConfig(port int, ops, plugins string) string {
	vipps := fmt.Sprintf(`    vipps:
      baseUrl: %s
      merchantSerialNumber: "123456"
      clientId: demo-client-id
      clientSecretEnv: CHAOS_CLIENT_SECRET
      subscriptionKeyEnv: CHAOS_SUBSCRIPTION_KEY
`, h.simURL)
	return fmt.Sprintf(`server:
  listen: 127.0.0.1:%d
  publicUrl: http://127.0.0.1:%d
%sstore:
  redis:
    waitReplicas: 1
plugins:
  dir: %s
  devMode: true
  cacheDir: %s
  callTimeout: 2s
reconciler:
  firstPoll: %s
  interval: %s
  maxInterval: %s
  pendingTimeout: %s
merchants:
  shop:
    plugin: vipps-ecom
    returnUrlPrefixes: ["http://shop.test/"]
    apiKeyEnv: CHAOS_API_KEY
%s    expressCheckout: true
    shipping:
      mode: dynamic
      methods:
        - {id: posten, name: Posten Servicepakke, cost: 9900, default: true}
    platform:
      kind: generic
      webhookSecretEnv: CHAOS_GENERIC_SECRET
      baseUrl: %s/kasse-status
  woo:
    plugin: vipps-ecom
    returnUrlPrefixes: ["%s/"]
    apiKeyEnv: CHAOS_API_KEY
%s    platform:
      kind: woocommerce
      webhookSecretEnv: CHAOS_WOO_SECRET
      baseUrl: %s/
      consumerKeyEnv: CHAOS_WOO_KEY
      consumerSecretEnv: CHAOS_WOO_CONSUMER_SECRET
      gatewayId: vipps
  shopi:
    plugin: vipps-ecom
    returnUrlPrefixes: ["https://%s/"]
    apiKeyEnv: CHAOS_API_KEY
%s    platform:
      kind: shopify
      webhookSecretEnv: CHAOS_SHOPIFY_SECRET
      baseUrl: %s
      accessTokenEnv: CHAOS_SHOPIFY_TOKEN
      apiVersion: "%s"
      gatewayId: Vipps MobilePay
`, port, port, ops, plugins, plugintest.CacheDir(), firstPoll, pollInterval, maxPoll, pendingTimeout,
		vipps, h.plat.generic.URL, h.plat.woo.URL, vipps, h.plat.woo.URL, shopDomain, vipps, h.plat.shopify.URL, shopifyAPI)
}

// answer is one HTTP answer from kasse.
type answer struct {
	status int
	body   []byte
	header http.Header
}

func (a answer) json() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(a.body, &m)
	return m
}

// kasseDo sends one request to the instances round-robin. A refused connection (the instance is down,
// the request never arrived) goes to the next instance, as a load balancer would; any other failure is
// the shop's to handle.
func (h *harness) kasseDo(ctx context.Context, op, method, path string, body []byte, headers ...string) (answer, error) {
	var lastErr error
	for range len(h.kasses) {
		k := h.kasses[int(h.rr.Add(1))%len(h.kasses)]
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, k.url+path, r)
		if err != nil {
			return answer{}, err
		}
		req.Header.Set("Authorization", "Bearer "+apiKey)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(headers); i += 2 {
			if headers[i+1] == "" {
				req.Header.Del(headers[i])
				continue
			}
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := h.client.Do(req)
		if err != nil {
			lastErr = err
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			h.stats.answer(op, 0, method+" "+path, err.Error())
			return answer{}, err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h.stats.answer(op, resp.StatusCode, method+" "+path, string(b))
		return answer{status: resp.StatusCode, body: b, header: resp.Header}, nil
	}
	h.stats.answer(op, 0, method+" "+path, "every instance refused the connection")
	return answer{}, lastErr
}

// simDo calls the simulator's controls.
func (h *harness) simDo(ctx context.Context, method, path string, body any) (answer, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.simURL+path, r)
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.control.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: b, header: resp.Header}, nil
}

// setSimFaults changes the simulator's fault document (PUT /_sim/faults, DELETE when empty). It reports
// false when the simulator has no such endpoint.
func (h *harness) setSimFaults(ctx context.Context, change func(doc map[string]any)) bool {
	h.simFaultsMu.Lock()
	defer h.simFaultsMu.Unlock()
	if h.simFaultsDoc == nil {
		h.simFaultsDoc = map[string]any{}
	}
	change(h.simFaultsDoc)
	if cb, ok := h.simFaultsDoc["callbacks"].(map[string]any); ok && len(cb) == 0 {
		delete(h.simFaultsDoc, "callbacks")
	}
	var (
		a   answer
		err error
	)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if len(h.simFaultsDoc) == 0 {
			a, err = h.simDo(ctx, http.MethodDelete, "/_sim/faults", nil)
		} else {
			a, err = h.simDo(ctx, http.MethodPut, "/_sim/faults", h.simFaultsDoc)
		}
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond) // the simulator may be frozen right now
	}
	if err != nil {
		h.t.Logf("simulator faults: %v", err)
		return false
	}
	if a.status == http.StatusNotFound || a.status == http.StatusMethodNotAllowed {
		atomic.StoreInt32(&h.simFaults, -1)
		return false
	}
	if a.status >= 300 {
		h.t.Logf("simulator faults %v: %d %s", h.simFaultsDoc, a.status, a.body)
		return false
	}
	atomic.StoreInt32(&h.simFaults, 1)
	return true
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sleep waits d or until ctx is done; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
