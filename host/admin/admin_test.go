package admin_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/host/admin"
	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/host/upgrade"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
	"github.com/kassehq/kasse/schemas"
)

const token = "admin-token-for-tests-0123456789"

type fixture struct {
	t       *testing.T
	srv     *httptest.Server
	priv    ed25519.PrivateKey
	module  []byte
	golden  []byte
	manager *upgrade.Manager
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, err := schemas.Compile()
	if err != nil {
		t.Fatal(err)
	}
	rt := plugintest.Runtime(t, plugins.NewRuntimeConfig().WithCallTimeout(time.Second).WithAcquireTimeout(10*time.Second))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := upgrade.New(upgrade.Config{Runtime: rt, Schemas: set, Logger: quiet,
		Verify: upgrade.VerifyOptions{TrustedKeys: []ed25519.PublicKey{pub}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	api, err := admin.New(admin.Config{Manager: m, Token: token, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	api.Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	golden, err := upgrade.ReadGoldenDir(filepath.Join(plugintest.ModuleRoot(t), "plugin", "vippsecom", "testdata", "golden"))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, srv: srv, priv: priv, module: plugintest.Build(t, "./plugin/vippsecom"), golden: golden, manager: m}
}

func ops() []string {
	var out []string
	for _, op := range abi.Ops {
		out = append(out, string(op))
	}
	return out
}

// bundle returns the multipart body of a signed upload of module as name@version.
func (f *fixture) bundle(name, version string, module []byte, key ed25519.PrivateKey, fields map[string]string) (string, *bytes.Buffer) {
	f.t.Helper()
	manifest := upgrade.NewManifest(name, version, module, f.golden, ops()).Encode()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for field, data := range map[string][]byte{"module": module, "manifest": manifest,
		"signature": upgrade.Sign(manifest, key), "golden": f.golden} {
		part, err := w.CreateFormFile(field, field)
		if err != nil {
			f.t.Fatal(err)
		}
		_, _ = part.Write(data)
	}
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	_ = w.Close()
	return w.FormDataContentType(), &body
}

// do sends a request with the admin token and decodes the JSON answer into out (when not nil).
func (f *fixture) do(method, path, contentType string, body io.Reader, auth string, out any) int {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			f.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		f.t.Errorf("%s %s: error %d with content type %q", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode
}

func (f *fixture) json(method, path, body string, out any) int {
	f.t.Helper()
	return f.do(method, path, "application/json", strings.NewReader(body), "Bearer "+token, out)
}

type problem struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func TestAuthorization(t *testing.T) {
	f := newFixture(t)
	for _, auth := range []string{"", "Bearer", "Bearer wrong-token-of-some-length", "Basic " + token, "Bearer " + token + "x"} {
		var p problem
		if code := f.do("GET", "/admin/v1/status", "", nil, auth, &p); code != http.StatusUnauthorized || p.Type != "https://kasse.dev/problems/admin-unauthorized" {
			t.Errorf("Authorization %q: %d %+v", auth, code, p)
		}
	}
	var st struct {
		Ready   bool             `json:"ready"`
		Plugins []upgrade.Status `json:"plugins"`
	}
	if code := f.do("GET", "/admin/v1/status", "", nil, "Bearer "+token, &st); code != http.StatusOK || st.Ready || len(st.Plugins) != 0 {
		t.Errorf("status: %d %+v", code, st)
	}
	if _, err := admin.New(admin.Config{Manager: f.manager, Token: "short"}); err == nil {
		t.Error("a short token was accepted")
	}
}

// TestLifecycle uploads, activates, canaries, shadows, rolls back and reads the history over HTTP.
func TestLifecycle(t *testing.T) {
	f := newFixture(t)
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	v2 := append(bytes.Clone(f.module), 0, 7, 5, 'k', 'a', 's', 's', 'e', 2) // a custom section "kasse": other bytes, same code

	var info upgrade.VersionInfo
	ct, body := f.bundle("vipps-ecom", "1.0.0", f.module, f.priv, map[string]string{"mode": "activate"})
	if code := f.do("POST", "/admin/v1/plugins/vipps-ecom/versions", ct, body, "Bearer "+token, &info); code != http.StatusCreated || info.State != "active" || !info.Signed {
		t.Fatalf("upload 1.0.0: %d %+v", code, info)
	}

	var p problem
	ct, body = f.bundle("vipps-ecom", "1.1.0", v2, stranger, nil)
	if code := f.do("POST", "/admin/v1/plugins/vipps-ecom/versions", ct, body, "Bearer "+token, &p); code != http.StatusUnprocessableEntity ||
		p.Type != "https://kasse.dev/problems/admin-refused-signature" {
		t.Errorf("upload signed by a stranger: %d %+v", code, p)
	}
	ct, body = f.bundle("vipps-epayment", "1.1.0", v2, f.priv, nil)
	if code := f.do("POST", "/admin/v1/plugins/vipps-ecom/versions", ct, body, "Bearer "+token, &p); code != http.StatusUnprocessableEntity ||
		!strings.Contains(p.Detail, `the manifest names plugin "vipps-epayment"`) {
		t.Errorf("upload under another name: %d %+v", code, p)
	}
	ct, body = f.bundle("vipps-ecom", "1.1.0", v2, f.priv, nil)
	var raw json.RawMessage
	if code := f.do("POST", "/admin/v1/plugins/vipps-ecom/versions", ct, body, "Bearer "+token, &raw); code != http.StatusCreated {
		t.Fatalf("upload 1.1.0: %d %s", code, raw)
	}
	if err := json.Unmarshal(raw, &info); err != nil || info.State != "ready" {
		t.Fatalf("upload 1.1.0: %s", raw)
	}

	var st upgrade.Status
	fresh := func() *upgrade.Status { st = upgrade.Status{}; return &st }
	if code := f.json("POST", "/admin/v1/plugins/vipps-ecom/canary", `{"version":"1.1.0","percent":10}`, fresh()); code != http.StatusOK ||
		st.Canary == nil || st.Canary.Percent != 10 || st.ActiveVersion != "1.0.0" {
		t.Fatalf("canary: %d %+v", code, st)
	}
	if code := f.json("POST", "/admin/v1/plugins/vipps-ecom/canary", `{"version":"1.1.0"}`, &p); code != http.StatusBadRequest {
		t.Errorf("canary without percent: %d %+v", code, p)
	}
	if code := f.json("POST", "/admin/v1/plugins/vipps-ecom/activate", `{"version":"1.1.0"}`, fresh()); code != http.StatusOK ||
		st.ActiveVersion != "1.1.0" || st.Canary != nil {
		t.Fatalf("activate: %d %+v", code, st)
	}
	if code := f.json("POST", "/admin/v1/plugins/vipps-ecom/shadow", `{"version":"1.0.0"}`, fresh()); code != http.StatusOK || st.Shadow == nil {
		t.Fatalf("shadow: %d %+v", code, st)
	}
	if code := f.json("DELETE", "/admin/v1/plugins/vipps-ecom/shadow", ``, fresh()); code != http.StatusOK || st.Shadow != nil {
		t.Fatalf("stop shadow: %d %+v", code, st)
	}
	if code := f.json("POST", "/admin/v1/plugins/vipps-ecom/rollback", ``, fresh()); code != http.StatusOK || st.ActiveVersion != "1.0.0" {
		t.Fatalf("rollback: %d %+v", code, st)
	}
	if code := f.json("POST", "/admin/v1/plugins/vipps-ecom/rollback", ``, &p); code != http.StatusConflict {
		t.Errorf("second rollback: %d %+v", code, p)
	}
	if code := f.json("POST", "/admin/v1/plugins/vipps-ecom/activate", `{"version":"9.9.9"}`, &p); code != http.StatusNotFound {
		t.Errorf("activate an unknown version: %d %+v", code, p)
	}
	// The rolled-back 1.1.0 is quarantined and below nothing: going back to it needs force.
	if code := f.json("POST", "/admin/v1/plugins/vipps-ecom/activate", `{"version":"1.1.0"}`, &p); code != http.StatusConflict {
		t.Errorf("activate the rolled-back 1.1.0 without force: %d %+v", code, p)
	}
	if code := f.json("GET", "/admin/v1/plugins/vipps-ecom", ``, fresh()); code != http.StatusOK ||
		len(st.Quarantined) != 1 || st.Quarantined[0].Version != "1.1.0" {
		t.Errorf("quarantine: %d %+v", code, st.Quarantined)
	}
	if code := f.json("GET", "/admin/v1/plugins/nope", ``, &p); code != http.StatusNotFound {
		t.Errorf("unknown plugin: %d %+v", code, p)
	}

	var list struct {
		Plugins []upgrade.Status `json:"plugins"`
	}
	if code := f.json("GET", "/admin/v1/plugins", ``, &list); code != http.StatusOK || len(list.Plugins) != 1 || len(list.Plugins[0].Versions) != 2 {
		t.Fatalf("list: %d %+v", code, list)
	}
	var hist struct {
		Events []upgrade.Event `json:"events"`
	}
	if code := f.json("GET", "/admin/v1/plugins/vipps-ecom/history", ``, &hist); code != http.StatusOK {
		t.Fatalf("history: %d", code)
	}
	var actions []string
	for _, e := range hist.Events {
		if e.Action != upgrade.ActionUnloaded {
			actions = append(actions, string(e.Action)+" "+e.Version)
		}
	}
	want := "staged 1.0.0,activated 1.0.0,refused 1.1.0,staged 1.1.0,canary 1.1.0,activated 1.1.0,shadow 1.0.0,shadow_stopped 1.0.0,rolled_back 1.0.0"
	if got := strings.Join(actions, ","); got != want {
		t.Errorf("history\n got %s\nwant %s", got, want)
	}
}
