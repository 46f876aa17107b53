package host_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/examples/vippssim/vippsspec"
	"github.com/kassehq/kasse/host"
	"github.com/kassehq/kasse/host/internal/testredis"
	"github.com/kassehq/kasse/host/upgrade"
	"github.com/kassehq/kasse/host/upgrade/upgradetest"
	"github.com/kassehq/kasse/plugin/plugintest"
)

// The malicious-signed-plugin suite. Each variant of host/upgrade/testdata/evil is the real vipps-ecom
// plugin, signed by a trusted key and correct on every golden and conformance vector, with one attack on
// live traffic: a redirect to another site, a rewritten callback prefix, fallback, callback token,
// amount or merchant serial number, polite errors, or slowness. Each is delivered through a real path (the
// admin API upload, or a bundle dropped into plugins.dir) as a 50% canary beside the good 1.0.0, while
// checkouts keep coming. The slow one must be refused at the gate; every other one must be contained (no
// customer sent elsewhere, no request with a changed value sent to Vipps) and rolled back by itself, and
// no checkout on the good version may fail. After a restart on the same directory and Redis, the good
// version serves and none of the rolled-back ones is even loaded.

const adminToken = "test-admin-token-0123456789"

var (
	evilOnce sync.Once
	evilMods map[string][]byte
)

func evilModules(t *testing.T) map[string][]byte {
	t.Helper()
	evilOnce.Do(func() { evilMods = plugintest.BuildAll(t, "./plugin/vippsecom", upgradetest.EvilPkg) })
	if evilMods == nil {
		t.Fatal("building the malicious test plugins failed earlier")
	}
	return evilMods
}

type fenceStack struct {
	*stack
	dir  string
	stop func()
	// opsURL serves the instance's operations handler (the admin API lives there, not on baseURL).
	opsURL string
	// adminClient waits longer than the shop's: an upload compiles and gates a version.
	adminClient *http.Client
}

// startFenceStack serves kasse on Redis with a trusted key, the admin API, and drop-ins as 50% canaries.
func startFenceStack(t *testing.T, dir, redisURL string, pub ed25519.PublicKey, simSrv *stack) *fenceStack {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	baseURL := "http://" + l.Addr().String()
	cfg := fmt.Sprintf(`
server:
  listen: %q
  publicUrl: %q
  opsListen: 127.0.0.1:0
store:
  redisUrl: %q
plugins:
  dir: %q
  cacheDir: %q
  callTimeout: 2s
  trustedKeys: [%q]
  canaryPercent: 50
  watchInterval: 100ms
admin:
  tokenEnv: TEST_ADMIN_TOKEN
merchants:
  demo:
    plugin: vipps-ecom
    returnUrlPrefixes: ["http://shop.test/"]
    apiKeyEnv: TEST_API_KEY
    vipps:
      baseUrl: %q
      merchantSerialNumber: "123456"
      clientId: demo-client-id
      clientSecretEnv: TEST_CLIENT_SECRET
      subscriptionKeyEnv: TEST_SUBSCRIPTION_KEY
`, l.Addr().String(), baseURL, redisURL, dir, plugintest.CacheDir(), upgrade.FormatPublicKey(pub), simSrv.simURL)
	path := filepath.Join(t.TempDir(), "kasse.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TEST_API_KEY": apiKey, "TEST_CLIENT_SECRET": "demo-client-secret",
		"TEST_SUBSCRIPTION_KEY": "demo-subscription-key", "TEST_ADMIN_TOKEN": adminToken}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := host.New(ctx, host.Options{
		ConfigPath:        path,
		Getenv:            func(k string) string { return env[k] },
		Logger:            slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		ProviderTransport: vippsspec.Load(t).Transport(t, http.DefaultTransport),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	opsSrv := httptest.NewServer(srv.OpsHandler())
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		opsSrv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = srv.Close(context.Background())
	}
	t.Cleanup(stop)
	s := &stack{t: t, sim: simSrv.sim, simURL: simSrv.simURL, kasse: srv, baseURL: baseURL, redis: redisURL, configPath: path,
		client: &http.Client{Timeout: 10 * time.Second, Transport: specChecked(t, http.DefaultTransport, strings.TrimPrefix(baseURL, "http://")),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	fs := &fenceStack{stack: s, dir: dir, opsURL: opsSrv.URL, adminClient: &http.Client{Timeout: time.Minute,
		Transport: specChecked(t, http.DefaultTransport, strings.TrimPrefix(opsSrv.URL, "http://"))}}
	fs.stop = stop
	return fs
}

func (s *fenceStack) admin(method, path string, body io.Reader, contentType string) result {
	s.t.Helper()
	req, err := http.NewRequest(method, s.opsURL+"/admin/v1"+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.adminClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	res := result{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &res.body)
	return res
}

func (s *fenceStack) upload(b upgrade.Bundle, fields map[string]string) result {
	s.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for name, data := range map[string][]byte{"module": b.Module, "manifest": b.Manifest, "signature": b.Signature, "golden": b.Golden} {
		fw, err := w.CreateFormFile(name, name)
		if err != nil {
			s.t.Fatal(err)
		}
		_, _ = fw.Write(data)
	}
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	_ = w.Close()
	return s.admin("POST", "/plugins/vipps-ecom/versions", &buf, w.FormDataContentType())
}

// pluginStatus is the part of upgrade.Status the suite reads.
type pluginStatus struct {
	ActiveVersion string `json:"activeVersion"`
	Canary        *struct {
		Version string `json:"version"`
	} `json:"canary"`
	Versions []struct {
		Version string `json:"version"`
		State   string `json:"state"`
		Refused uint64 `json:"refused"`
		Failed  uint64 `json:"failed"`
	} `json:"versions"`
	Quarantined []struct {
		Version string `json:"version"`
		Reason  string `json:"reason"`
	} `json:"quarantined"`
}

func (s *fenceStack) status() pluginStatus {
	s.t.Helper()
	res := s.admin("GET", "/plugins/vipps-ecom", nil, "")
	if res.status != http.StatusOK {
		s.t.Fatalf("status: %d %s", res.status, res.raw)
	}
	var st pluginStatus
	if err := json.Unmarshal(res.raw, &st); err != nil {
		s.t.Fatal(err)
	}
	return st
}

func writeBundleFiles(t *testing.T, dir, stem string, b upgrade.Bundle) {
	t.Helper()
	// The module last: the watcher keys on it.
	for _, f := range []struct {
		suffix string
		data   []byte
	}{{upgrade.SuffixGolden, b.Golden}, {upgrade.SuffixSignature, b.Signature}, {upgrade.SuffixManifest, b.Manifest}, {upgrade.SuffixModule, b.Module}} {
		if err := os.WriteFile(filepath.Join(dir, stem+f.suffix), f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMaliciousSignedPlugins(t *testing.T) {
	mods := evilModules(t)
	golden, err := upgrade.ReadGoldenDir(filepath.Join(plugintest.ModuleRoot(t), "plugin", "vippsecom", "testdata", "golden"))
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := upgrade.GoldenOps(golden)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(version string, module []byte) upgrade.Bundle {
		manifest := upgrade.NewManifest("vipps-ecom", version, module, golden, ops).Encode()
		return upgrade.Bundle{Stem: "vipps-ecom", Module: module, Manifest: manifest, Signature: upgrade.Sign(manifest, priv), Golden: golden}
	}
	dir := t.TempDir()
	writeBundleFiles(t, dir, "vipps-ecom-1.0.0", sign("1.0.0", mods["./plugin/vippsecom"]))
	redisURL := testredis.Start(t)
	sim := &stack{}
	sim.sim, sim.simURL = newSim(t)
	s := startFenceStack(t, dir, redisURL, pub, sim)

	var (
		mu                sync.Mutex
		goodOK, badFailed int
	)
	// judge classifies one checkout answer: it succeeded on the good version with a redirect to the
	// simulator, or it failed on a malicious version, blaming it. Anything else is the returned problem.
	judge := func(i, status int, raw []byte) string {
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		mu.Lock()
		defer mu.Unlock()
		if status == http.StatusCreated {
			if u, _ := body["redirectUrl"].(string); !strings.HasPrefix(u, s.simURL+"/") {
				return fmt.Sprintf("checkout %d sends the customer to %q", i, u)
			}
			goodOK++
			return ""
		}
		text := string(raw)
		if strings.Contains(text, "@1.0.0") || !strings.Contains(text, "vipps-ecom@1.") {
			return fmt.Sprintf("checkout %d failed on the good version or without a plugin to blame: %d %s", i, status, text)
		}
		if strings.Contains(text, "evil.example") || strings.Contains(text, "known-to-the-attacker") {
			return fmt.Sprintf("checkout %d answer repeats the attack's values: %s", i, text)
		}
		badFailed++
		return ""
	}
	failedSoFar := func() int {
		mu.Lock()
		defer mu.Unlock()
		return badFailed
	}
	checkout := func(i int) {
		t.Helper()
		body := checkoutBody(10000 + int64(i))
		body["reference"] = fmt.Sprintf("order-%d", i)
		res := s.do("POST", "/v1/checkouts", body)
		if problem := judge(i, res.status, res.raw); problem != "" {
			t.Fatal(problem)
		}
	}
	// A steady stream of checkouts from another goroutine, beside the ones the test makes itself.
	streamStop := make(chan struct{})
	var streamWG sync.WaitGroup
	var streamProblems []string
	streamWG.Go(func() {
		client := &http.Client{Timeout: 30 * time.Second}
		for i := 1_000_000; ; i++ {
			select {
			case <-streamStop:
				return
			default:
			}
			body := checkoutBody(20000 + int64(i%1000))
			body["reference"] = fmt.Sprintf("stream-%d", i)
			raw, _ := json.Marshal(body)
			req, _ := http.NewRequest("POST", s.baseURL+"/v1/checkouts", bytes.NewReader(raw))
			req.Header.Set("Authorization", "Bearer "+apiKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				mu.Lock()
				streamProblems = append(streamProblems, err.Error())
				mu.Unlock()
				return
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if problem := judge(i, resp.StatusCode, answer); problem != "" {
				mu.Lock()
				streamProblems = append(streamProblems, problem)
				mu.Unlock()
			}
		}
	})
	var stopOnce sync.Once
	stopStream := func() { stopOnce.Do(func() { close(streamStop) }); streamWG.Wait() }
	t.Cleanup(stopStream) // runs before the server stops, also when the test fails early
	endStream := func() {
		stopStream()
		mu.Lock()
		defer mu.Unlock()
		for _, p := range streamProblems {
			t.Error("stream: " + p)
		}
	}

	n := 0
	var quarantined []string
	for i, attack := range upgradetest.Attacks {
		version := fmt.Sprintf("1.%d.0", i+1)
		module, err := upgradetest.EvilVariant(mods[upgradetest.EvilPkg], attack)
		if err != nil {
			t.Fatal(err)
		}
		b := sign(version, module)
		viaDir := i%2 == 1 && attack != "slow" // the slow one is refused by the upload itself
		t.Logf("%s: version %s via %s", attack, version, map[bool]string{true: "plugins.dir", false: "admin upload"}[viaDir])
		if attack == "slow" {
			res := s.upload(b, map[string]string{"mode": "canary", "percent": "50"})
			if res.status != http.StatusUnprocessableEntity || !strings.Contains(string(res.raw), "refused-slow") {
				t.Fatalf("slow version: %d %s, want refused at the gate for its cost", res.status, res.raw)
			}
			checkout(n)
			n++
			continue
		}
		if viaDir {
			writeBundleFiles(t, dir, "vipps-ecom-"+version, b)
			deadline := time.Now().Add(30 * time.Second)
			for st := s.status(); st.Canary == nil || st.Canary.Version != version; st = s.status() {
				if time.Now().After(deadline) {
					t.Fatalf("the dropped-in %s did not become the canary: %+v", version, st)
				}
				checkout(n)
				n++
				time.Sleep(20 * time.Millisecond)
			}
		} else if res := s.upload(b, map[string]string{"mode": "canary", "percent": "50"}); res.status != http.StatusCreated {
			t.Fatalf("upload %s: %d %s", version, res.status, res.raw)
		}
		before := failedSoFar()
		deadline := time.Now().Add(30 * time.Second)
		for st := s.status(); st.Canary != nil; st = s.status() {
			if time.Now().After(deadline) {
				t.Fatalf("%s (%s) was not rolled back: %+v", attack, version, st)
			}
			checkout(n)
			n++
		}
		st := s.status()
		if st.ActiveVersion != "1.0.0" {
			t.Fatalf("active %s after %s", st.ActiveVersion, attack)
		}
		found := false
		for _, q := range st.Quarantined {
			found = found || q.Version == version && strings.Contains(q.Reason, "rolled back automatically")
		}
		if !found {
			t.Fatalf("%s not quarantined with its reason: %+v", version, st.Quarantined)
		}
		quarantined = append(quarantined, version)
		t.Logf("%s contained: %d canary checkouts failed before the rollback", attack, failedSoFar()-before)
		for range 5 { // the good version still serves everyone
			checkout(n)
			n++
		}
	}
	endStream() // the stream has stopped: the counters are this goroutine's now
	t.Logf("%d checkouts (%d from the stream): %d on the good version, all succeeded; %d failed on malicious canaries",
		goodOK+badFailed, goodOK+badFailed-n, goodOK, badFailed)

	// A restart on the same directory and Redis: the good version serves, the rolled-back ones stay out.
	s.stop()
	s2 := startFenceStack(t, dir, redisURL, pub, sim)
	st := s2.status()
	if st.ActiveVersion != "1.0.0" || st.Canary != nil {
		t.Fatalf("after the restart: active %s canary %+v", st.ActiveVersion, st.Canary)
	}
	for _, v := range st.Versions {
		if v.Version != "1.0.0" {
			t.Errorf("after the restart %s is loaded (%s)", v.Version, v.State)
		}
	}
	if len(st.Quarantined) != len(quarantined) {
		t.Errorf("after the restart quarantined %+v, want %v", st.Quarantined, quarantined)
	}
	s = s2
	for i := range 5 {
		checkout(n + i)
	}
}
