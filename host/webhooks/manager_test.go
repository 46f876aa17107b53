package webhooks_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/examples/vippssim"
	"github.com/kassehq/kasse/examples/vippssim/vippsspec"
	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/provider"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/host/webhooks"
)

// env is a simulator, a spec-checking provider client and a shared in-process store.
type env struct {
	sim   *vippssim.Server
	prov  *provider.Client
	store store.Store
	cfg   *config.Config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	simURL := "http://" + l.Addr().String()
	sim, err := vippssim.New(vippssim.Config{Tenants: []vippssim.Tenant{vippssim.DemoTenant()}, PublicURL: simURL,
		AllowHTTPLoopback: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(sim.Handler())
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(func() { srv.Close(); sim.Close() })
	specs := vippsspec.Load(t)
	prov := provider.New(&http.Client{Timeout: 5 * time.Second, Transport: specs.Transport(t, nil)},
		provider.SystemInfo{Name: "kasse", Version: "test"}, nil)
	merchant := func(id, plugin string) config.Merchant {
		return config.Merchant{ID: id, Plugin: plugin, Vipps: config.Vipps{BaseURL: simURL, MerchantSerialNumber: "123456",
			ClientID: "demo-client-id", ClientSecret: "demo-client-secret", SubscriptionKey: "demo-subscription-key"}}
	}
	cfg := &config.Config{Server: config.Server{PublicURL: "http://127.0.0.1:1"},
		Merchants: map[string]config.Merchant{"shop": merchant("shop", webhooks.Plugin), "legacy": merchant("legacy", "vipps-ecom")}}
	return &env{sim: sim, prov: prov, store: store.NewMemory(), cfg: cfg}
}

func (e *env) manager(t *testing.T) *webhooks.Manager {
	t.Helper()
	m, err := webhooks.NewManager(webhooks.ManagerConfig{Provider: e.prov, Store: e.store,
		Config: func() *config.Config { return e.cfg }})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// signed is a delivery to shop's webhook URL signed with secret now.
func signed(secret string, body string, now time.Time) webhooks.Request {
	req := webhooks.Request{Method: "POST", PathAndQuery: "/v1/vipps/shop/webhooks", Host: "127.0.0.1:1", Body: []byte(body)}
	webhooks.Sign(secret, &req, now)
	return req
}

func TestManagerRegistersOnceAndShares(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := e.manager(t), e.manager(t)

	// A registration of kasse's path left from an earlier public URL is stale.
	stale := registerDirect(t, e, "http://127.0.0.1:2/v1/vipps/shop/webhooks")
	other := registerDirect(t, e, "http://127.0.0.1:3/someone-else/hook")

	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	regs := e.sim.RegisteredWebhooks()
	var ids []string
	for _, r := range regs {
		ids = append(ids, r.URL)
	}
	if len(regs) != 2 || regs[0].ID != other || regs[1].URL != "http://127.0.0.1:1/v1/vipps/shop/webhooks" {
		t.Fatalf("registrations after sync: %v (stale %s)", ids, stale)
	}
	if len(regs[1].Events) != len(webhooks.Events) {
		t.Fatalf("events %v", regs[1].Events)
	}
	ida, _, _ := a.Registration("shop")
	idb, _, _ := b.Registration("shop")
	if ida != regs[1].ID || idb != ida {
		t.Fatalf("managers hold %s and %s, live is %s", ida, idb, regs[1].ID)
	}
	if _, _, ok := a.Registration("legacy"); ok {
		t.Fatal("an eCom merchant got a webhook")
	}

	// Both instances verify what Vipps signs with the one secret; nothing else.
	now := time.Now()
	req := signed(regs[1].Secret, `{"msn":"123456"}`, now)
	for _, m := range []*webhooks.Manager{a, b} {
		if err := m.VerifyWebhook(ctx, "shop", req); err != nil {
			t.Fatalf("verify: %v", err)
		}
	}
	if err := a.VerifyWebhook(ctx, "shop", signed("not-the-secret", `{"msn":"123456"}`, now)); !errors.Is(err, webhooks.ErrUnverified) {
		t.Fatalf("wrong secret: %v", err)
	}
	if err := a.VerifyWebhook(ctx, "legacy", req); !errors.Is(err, webhooks.ErrUnverified) {
		t.Fatalf("eCom merchant: %v", err)
	}

	// A sync with nothing changed registers nothing new.
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.RegisteredWebhooks(); len(got) != 2 || got[1].ID != regs[1].ID {
		t.Fatalf("second sync changed registrations: %+v", got)
	}

	// Deleted at Vipps (e.g. after two weeks unreachable): the next sync registers again, and the other
	// instance picks up the new secret from the store when a delivery no longer verifies.
	deleteDirect(t, e, regs[1].ID)
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := e.sim.RegisteredWebhooks()
	if len(fresh) != 2 || fresh[1].ID == regs[1].ID {
		t.Fatalf("not registered again: %+v", fresh)
	}
	if err := b.VerifyWebhook(ctx, "shop", signed(fresh[1].Secret, `{}`, now)); err != nil {
		t.Fatalf("other instance after rotation: %v", err)
	}

	// The merchant leaves ePayment: its secret is forgotten.
	sh := e.cfg.Merchants["shop"]
	sh.Plugin = "vipps-ecom"
	e.cfg.Merchants["shop"] = sh
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := a.Registration("shop"); ok {
		t.Fatal("secret kept for a merchant that left ePayment")
	}
}

func TestManagerEventsFollowConfig(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m := e.manager(t)
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	first := e.sim.RegisteredWebhooks()
	sh := e.cfg.Merchants["shop"]
	sh.WebhookEvents = []string{"epayments.payment.authorized.v1"}
	e.cfg.Merchants["shop"] = sh
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := e.sim.RegisteredWebhooks()
	if len(got) != 1 || got[0].ID == first[0].ID || strings.Join(got[0].Events, ",") != "epayments.payment.authorized.v1" {
		t.Fatalf("after events changed: %+v", got)
	}
}

func TestNewManagerRequires(t *testing.T) {
	_, err := webhooks.NewManager(webhooks.ManagerConfig{})
	if err == nil || err.Error() != "webhooks: config: Provider is required" {
		t.Fatalf("err = %v", err)
	}
}

// registerDirect registers a webhook for the demo MSN without the Manager.
func registerDirect(t *testing.T, e *env, url string) string {
	t.Helper()
	m, err := webhooks.NewManager(webhooks.ManagerConfig{Provider: e.prov, Store: store.NewMemory(),
		Config: func() *config.Config {
			return &config.Config{Server: config.Server{PublicURL: strings.TrimSuffix(url, "/v1/vipps/shop/webhooks")},
				Merchants: map[string]config.Merchant{"shop": e.cfg.Merchants["shop"]}}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(url, "/v1/vipps/shop/webhooks") {
		if err := m.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		id, _, _ := m.Registration("shop")
		return id
	}
	resp, err := e.prov.Do(context.Background(), callFor(e, "POST", "/webhooks/v1/webhooks",
		`{"url":"`+url+`","events":["epayments.payment.created.v1"]}`))
	if err != nil || resp.Status != http.StatusCreated {
		t.Fatalf("register %s: %v %+v", url, err, resp)
	}
	regs := e.sim.RegisteredWebhooks()
	return regs[len(regs)-1].ID
}

func deleteDirect(t *testing.T, e *env, id string) {
	t.Helper()
	resp, err := e.prov.Do(context.Background(), callFor(e, "DELETE", "/webhooks/v1/webhooks/"+id, ""))
	if err != nil || resp.Status != http.StatusNoContent {
		t.Fatalf("delete %s: %v %+v", id, err, resp)
	}
}

// TestManagerPublicURLWithPath removes a registration of kasse's own URL whose secret this store does not
// hold (e.g. left by an instance with a wiped store), under a public URL with a path prefix.
func TestManagerPublicURLWithPath(t *testing.T) {
	e := newEnv(t)
	e.cfg.Server.PublicURL = "http://127.0.0.1:1/kasse"
	orphan := registerDirect(t, e, "http://127.0.0.1:1/kasse/v1/vipps/shop/webhooks")
	m := e.manager(t)
	if err := m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	regs := e.sim.RegisteredWebhooks()
	id, hookURL, _ := m.Registration("shop")
	if len(regs) != 1 || regs[0].ID == orphan || regs[0].ID != id || hookURL != "http://127.0.0.1:1/kasse/v1/vipps/shop/webhooks" {
		t.Fatalf("registrations %+v, manager holds %s %s", regs, id, hookURL)
	}
	req := webhooks.Request{Method: "POST", PathAndQuery: "/v1/vipps/shop/webhooks", Host: "proxy.internal:8080", Body: []byte(`{}`)}
	webhooks.Sign(regs[0].Secret, &req, time.Now())
	// Signed over the registered URL, received behind a proxy that strips /kasse and changes the host.
	req.Authorization = webhooks.Authorization(webhooks.Signature(regs[0].Secret, "POST", "/kasse/v1/vipps/shop/webhooks", req.Date, "127.0.0.1:1", req.ContentSHA256))
	if err := m.VerifyWebhook(context.Background(), "shop", req); err != nil {
		t.Fatalf("verify behind a proxy: %v", err)
	}
}
