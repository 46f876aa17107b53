package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/provider"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/plugin/abi"
)

// Plugin is the payment plugin whose merchants get a webhook registration.
const Plugin = "vipps-epayment"

// Events are the ePayment webhook events kasse subscribes to by default: all of them (vipps-reference.md
// §6.2).
var Events = []string{
	"epayments.payment.created.v1", "epayments.payment.aborted.v1", "epayments.payment.expired.v1",
	"epayments.payment.cancelled.v1", "epayments.payment.captured.v1", "epayments.payment.refunded.v1",
	"epayments.payment.authorized.v1", "epayments.payment.terminated.v1",
}

// pathWebhooks is the Webhooks API's path under the merchant's API base URL.
const pathWebhooks = "/webhooks/v1/webhooks"

// Store scopes of the shared registration records and of the per-merchant sync lock.
const (
	scopeRecord = "webhook-registration"
	scopeLock   = "webhook-sync"
	// recordTTL is how long a registration record is kept; Sync registers anew after it.
	recordTTL = 400 * 24 * time.Hour
	lockTTL   = 30 * time.Second
	// absent marks "no record" while another instance reads (see readRecord).
	absent = "-"
)

// Provider sends kasse's own requests to the Webhooks API; *provider.Client satisfies it.
type Provider interface {
	Do(ctx context.Context, call provider.Call) (*abi.Response, error)
}

// ManagerConfig holds a Manager's collaborators and settings.
type ManagerConfig struct {
	// Provider sends the Webhooks API requests with the merchant's credentials. Required.
	Provider Provider
	// Store shares registrations (id and secret) between kasse instances. Required.
	Store store.Store
	// Config returns the running configuration; merchants whose plugin is vipps-epayment get a
	// webhook. Required.
	Config func() *config.Config
	// MaxSkew bounds the x-ms-date of a delivery. Default DefaultMaxSkew.
	MaxSkew time.Duration
	// Interval is how often Run syncs again, which repairs registrations deleted at Vipps and follows
	// config changes nobody announced with Sync. Default 10 minutes.
	Interval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger gets one line per registration change and per failure; never a secret. Default slog.Default().
	Logger *slog.Logger
}

// registration is one merchant's live webhook.
type registration struct {
	ID     string
	URL    string
	Events []string
	Secret config.Secret
}

// record is a registration as kept in the store.
type record struct {
	ID     string   `json:"id"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret"`
}

// Manager registers kasse's webhook for every ePayment merchant and verifies deliveries. It is safe for
// concurrent use; several instances sharing one store share one registration per merchant.
type Manager struct {
	cfg ManagerConfig

	mu      sync.RWMutex
	regs    map[string]registration // by merchant id
	reloads map[string]time.Time    // last secret reload from the store, by merchant
}

// NewManager returns a Manager, or an error naming the first missing collaborator.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	switch {
	case cfg.Provider == nil:
		return nil, errors.New("webhooks: config: Provider is required")
	case cfg.Store == nil:
		return nil, errors.New("webhooks: config: Store is required")
	case cfg.Config == nil:
		return nil, errors.New("webhooks: config: Config is required")
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{cfg: cfg, regs: map[string]registration{}, reloads: map[string]time.Time{}}, nil
}

// URL is the webhook URL kasse registers for merchant under publicURL.
func URL(publicURL, merchant string) string {
	return strings.TrimRight(publicURL, "/") + "/v1/vipps/" + merchant + "/webhooks"
}

// eventsFor returns the events a merchant subscribes to: its config's, else Events.
func eventsFor(m config.Merchant) []string {
	if len(m.WebhookEvents) > 0 {
		return m.WebhookEvents
	}
	return Events
}

// Run syncs at once and then every Interval until ctx is done. Failures are logged and retried at the
// next interval.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		if err := m.Sync(ctx); err != nil && ctx.Err() == nil {
			m.cfg.Logger.Warn("webhooks: sync failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync makes sure every ePayment merchant of the running config has exactly one live registration of
// kasse's URL with its events, and that this Manager knows its secret. It removes the merchant's other
// registrations of kasse's webhook path (an old public URL, a duplicate from a race, one whose secret
// nobody kept) and forgets merchants that left ePayment. Each merchant is synced under a store lock, so
// that instances starting together register once.
func (m *Manager) Sync(ctx context.Context) error {
	cfg := m.cfg.Config()
	var errs []error
	wanted := map[string]bool{}
	ids := make([]string, 0, len(cfg.Merchants))
	for id := range cfg.Merchants {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		mc := cfg.Merchants[id]
		if mc.Plugin != Plugin {
			continue
		}
		wanted[id] = true
		if err := m.syncMerchant(ctx, mc, URL(cfg.Server.PublicURL, id)); err != nil {
			errs = append(errs, fmt.Errorf("webhooks: merchant[%s]: %w", id, err))
		}
	}
	m.mu.Lock()
	for id := range m.regs {
		if !wanted[id] {
			delete(m.regs, id)
		}
	}
	m.mu.Unlock()
	return errors.Join(errs...)
}

func (m *Manager) syncMerchant(ctx context.Context, mc config.Merchant, hookURL string) (err error) {
	unlock, err := m.lock(ctx, mc.ID)
	if err != nil {
		return err
	}
	defer unlock()

	list, err := m.list(ctx, mc)
	if err != nil {
		return err
	}
	events := eventsFor(mc)
	rec, raw, err := m.readRecord(ctx, mc.ID, hookURL)
	if err != nil {
		return err
	}
	live := false
	if rec != nil {
		for _, w := range list {
			if w.ID == rec.ID && w.URL == hookURL && sameSet(w.Events, events) {
				live = true
			}
		}
	}
	// Remove every other registration of this merchant's webhook path.
	suffix := "/v1/vipps/" + mc.ID + "/webhooks"
	for _, w := range list {
		if live && w.ID == rec.ID {
			continue
		}
		if u, err := url.Parse(w.URL); w.URL == hookURL || err == nil && strings.HasSuffix(strings.TrimRight(u.Path, "/"), suffix) {
			if err := m.delete(ctx, mc, w.ID); err != nil {
				return err
			}
			m.cfg.Logger.Info("webhooks: removed stale registration", "merchant", mc.ID, "id", w.ID, "url", w.URL)
		}
	}
	if !live {
		if raw != "" {
			if err := m.cfg.Store.ReleaseIdempotencyKey(ctx, scopeRecord, mc.ID+"|"+hookURL, raw); err != nil {
				return fmt.Errorf("forget registration record: %w", err)
			}
		}
		reg, err := m.register(ctx, mc, hookURL, events)
		if err != nil {
			return err
		}
		rec = &record{ID: reg.ID, URL: hookURL, Events: events, Secret: reg.Secret}
		data, _ := json.Marshal(rec) // strings only: cannot fail
		if prev, err := m.cfg.Store.ClaimIdempotencyKey(ctx, scopeRecord, mc.ID+"|"+hookURL, string(data), recordTTL); err != nil {
			return fmt.Errorf("keep registration record: %w", err)
		} else if prev != "" {
			// Only a reader's placeholder can be there while this instance holds the lock.
			_ = m.cfg.Store.ReleaseIdempotencyKey(ctx, scopeRecord, mc.ID+"|"+hookURL, prev)
			if prev, err = m.cfg.Store.ClaimIdempotencyKey(ctx, scopeRecord, mc.ID+"|"+hookURL, string(data), recordTTL); err != nil || prev != "" {
				return fmt.Errorf("keep registration record: the record is held by another writer")
			}
		}
		m.cfg.Logger.Info("webhooks: registered", "merchant", mc.ID, "id", rec.ID, "url", hookURL)
	}
	m.mu.Lock()
	m.regs[mc.ID] = registration{ID: rec.ID, URL: hookURL, Events: rec.Events, Secret: config.Secret(rec.Secret)}
	m.mu.Unlock()
	return nil
}

// lock takes the merchant's sync lock in the store, waiting up to lockTTL for another holder.
func (m *Manager) lock(ctx context.Context, merchant string) (func(), error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	deadline := m.cfg.Now().Add(lockTTL)
	for {
		held, err := m.cfg.Store.ClaimIdempotencyKey(ctx, scopeLock, merchant, nonce, lockTTL)
		if err != nil {
			return nil, fmt.Errorf("sync lock: %w", err)
		}
		if held == "" {
			return func() {
				_ = m.cfg.Store.ReleaseIdempotencyKey(context.WithoutCancel(ctx), scopeLock, merchant, nonce)
			}, nil
		}
		if m.cfg.Now().After(deadline) {
			return nil, errors.New("sync lock: held by another instance")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readRecord returns the shared record of a merchant's registration of hookURL and its raw value, or nil.
// The store can only claim, so a read claims a placeholder and releases it at once.
func (m *Manager) readRecord(ctx context.Context, merchant, hookURL string) (*record, string, error) {
	key := merchant + "|" + hookURL
	raw, err := m.cfg.Store.ClaimIdempotencyKey(ctx, scopeRecord, key, absent, lockTTL)
	if err != nil {
		return nil, "", fmt.Errorf("read registration record: %w", err)
	}
	switch raw {
	case "":
		_ = m.cfg.Store.ReleaseIdempotencyKey(ctx, scopeRecord, key, absent)
		return nil, "", nil
	case absent:
		return nil, "", nil
	}
	var rec record
	if json.Unmarshal([]byte(raw), &rec) != nil || rec.ID == "" || rec.Secret == "" {
		return nil, raw, nil
	}
	return &rec, raw, nil
}

// webhook is one entry of QueryResponse.
type webhook struct {
	ID     string   `json:"id"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
}

func endpoint(mc config.Merchant) provider.Endpoint {
	return provider.Endpoint{
		MerchantID: mc.ID, BaseURL: mc.Vipps.BaseURL, MerchantSerialNumber: mc.Vipps.MerchantSerialNumber,
		ClientID: mc.Vipps.ClientID, ClientSecret: mc.Vipps.ClientSecret, SubscriptionKey: mc.Vipps.SubscriptionKey,
	}
}

// call sends one Webhooks API request and returns the answer's body if its status is want.
func (m *Manager) call(ctx context.Context, mc config.Merchant, method, path string, body []byte, want int) ([]byte, error) {
	resp, err := m.cfg.Provider.Do(ctx, provider.Call{
		Endpoint: endpoint(mc), Request: &abi.Request{Method: method, Path: path, Body: body},
		PluginName: "kasse-webhooks", PluginVersion: "1",
	})
	if err != nil {
		return nil, err
	}
	if resp.Status != want {
		return nil, fmt.Errorf("%s %s: Vipps answered %d: %s", method, path, resp.Status, problemText(resp.Body))
	}
	return resp.Body, nil
}

// problemText is a short, secret-free summary of an error answer.
func problemText(body []byte) string {
	var p struct {
		Title, Detail string
	}
	if json.Unmarshal(body, &p) == nil && (p.Title != "" || p.Detail != "") {
		return strings.TrimSpace(p.Title + " " + p.Detail)
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return string(body)
}

func (m *Manager) list(ctx context.Context, mc config.Merchant) ([]webhook, error) {
	body, err := m.call(ctx, mc, "GET", pathWebhooks, nil, 200)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	var q struct {
		Webhooks []webhook `json:"webhooks"`
	}
	if err := json.Unmarshal(body, &q); err != nil {
		return nil, fmt.Errorf("list webhooks: decode answer: %w", err)
	}
	return q.Webhooks, nil
}

func (m *Manager) delete(ctx context.Context, mc config.Merchant, id string) error {
	if !validID(id) {
		return fmt.Errorf("delete webhook: id %q is not a webhook id", id)
	}
	if _, err := m.call(ctx, mc, "DELETE", pathWebhooks+"/"+id, nil, 204); err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	return nil
}

func (m *Manager) register(ctx context.Context, mc config.Merchant, hookURL string, events []string) (*record, error) {
	body, _ := json.Marshal(map[string]any{"url": hookURL, "events": events}) // strings only
	raw, err := m.call(ctx, mc, "POST", pathWebhooks, body, 201)
	if err != nil {
		return nil, fmt.Errorf("register webhook: %w", err)
	}
	var r struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || !validID(r.ID) || r.Secret == "" {
		return nil, errors.New("register webhook: answer has no id and secret")
	}
	return &record{ID: r.ID, Secret: r.Secret}, nil
}

// validID reports whether id can be a path segment: a UUID's letters, digits and hyphens.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// reloadEvery bounds how often VerifyWebhook rereads a merchant's secret from the store.
const reloadEvery = 5 * time.Second

// VerifyWebhook checks a delivery for merchant against its registration's secret. Vipps signs the URL it
// delivered to, so the host and path of the registered URL are used, not those of the request as it
// reached kasse (a reverse proxy may change them). If the signature does not match, the secret may have
// been rotated by another instance: it rereads the shared record (at most every few seconds per merchant)
// and tries once more. Errors wrap ErrUnverified.
func (m *Manager) VerifyWebhook(ctx context.Context, merchant string, req Request) error {
	m.mu.RLock()
	reg, ok := m.regs[merchant]
	m.mu.RUnlock()
	now := m.cfg.Now()
	cfg := m.cfg.Config()
	if u, err := url.Parse(URL(cfg.Server.PublicURL, merchant)); err == nil {
		req.Host, req.PathAndQuery = u.Host, u.RequestURI()
	}
	if ok {
		err := Verify(reg.Secret.Reveal(), req, now, m.cfg.MaxSkew)
		var ve *VerifyError
		if err == nil || !errors.As(err, &ve) || ve.Reason != "signature does not match" {
			return err
		}
	}
	mc, known := cfg.Merchant(merchant)
	if !known || mc.Plugin != Plugin {
		return unverified("merchant %s has no ePayment webhook", merchant)
	}
	m.mu.Lock()
	last := m.reloads[merchant]
	fresh := now.Sub(last) >= reloadEvery
	if fresh {
		m.reloads[merchant] = now
	}
	m.mu.Unlock()
	if !fresh {
		if !ok {
			return unverified("no webhook secret is known for merchant %s", merchant)
		}
		return unverified("signature does not match")
	}
	hookURL := URL(cfg.Server.PublicURL, merchant)
	rec, _, err := m.readRecord(ctx, merchant, hookURL)
	if err != nil || rec == nil {
		return unverified("no webhook secret is known for merchant %s", merchant)
	}
	m.mu.Lock()
	m.regs[merchant] = registration{ID: rec.ID, URL: hookURL, Events: rec.Events, Secret: config.Secret(rec.Secret)}
	m.mu.Unlock()
	return Verify(rec.Secret, req, now, m.cfg.MaxSkew)
}

// Registration returns the id and URL of merchant's live registration as this Manager knows it.
func (m *Manager) Registration(merchant string) (id, hookURL string, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.regs[merchant]
	return r.ID, r.URL, ok
}
