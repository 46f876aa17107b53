// Package host wires kasse together from its configuration: the session store, the plugin runtime with
// the merchants' payment plugins, the provider client, the checkout service, the reconciler and the HTTP
// API. It owns start-up and shutdown and nothing else; each part lives in its own package.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/admin"
	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/hooks"
	"github.com/kassehq/kasse/host/httpapi"
	"github.com/kassehq/kasse/host/internal/httpclient"
	"github.com/kassehq/kasse/host/internal/redact"
	"github.com/kassehq/kasse/host/internal/urlsecret"
	"github.com/kassehq/kasse/host/notify"
	"github.com/kassehq/kasse/host/outbound"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/host/provider"
	"github.com/kassehq/kasse/host/reconciler"
	"github.com/kassehq/kasse/host/settlement"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/host/upgrade"
	"github.com/kassehq/kasse/host/webhooks"
	"github.com/kassehq/kasse/schemas"
)

// Version is kasse's version, sent to Vipps as Vipps-System-Version.
const Version = "0.1.0"

// Options are what New needs besides the config file.
type Options struct {
	// ConfigPath is the merchant config file (YAML).
	ConfigPath string
	// Getenv resolves the environment variables the config names for secrets. Default os.Getenv.
	Getenv func(string) string
	// Logger receives the service's logs. Default: JSON lines on stderr.
	Logger *slog.Logger
	// ProviderTransport, if set, carries every request to the payment provider (tests wrap it to check
	// requests against the provider's OpenAPI files).
	ProviderTransport http.RoundTripper
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// ConfigPollInterval is how often the config file is checked for changes. Default 1s.
	ConfigPollInterval time.Duration
	// Adapters are the platform adapters to serve. Default adapters.Registered(): those registered by
	// import (see adapters/standard).
	Adapters []adapters.Info
}

// Server is a configured kasse instance.
type Server struct {
	Service    *checkout.Service
	Reconciler *reconciler.Reconciler
	Store      store.Store
	// Notifier sends payment status updates to the shops' platforms through a durable queue.
	Notifier *notify.Notifier
	// Hooks serves the platforms' webhooks under /hooks/.
	Hooks *hooks.Hooks
	// Webhooks keeps kasse's Vipps webhook registrations (ePayment merchants) and verifies deliveries.
	Webhooks *webhooks.Manager
	// Settlement follows the merchants' settlement ledgers; nil when settlement.enabled is off.
	Settlement *settlement.Follower

	handler    http.Handler
	closeRedis func() error // the Redis client of store.redis; the store does not own it
	ops        http.Handler
	clients    []*http.Client
	authFails  authFailures
	mismatches mismatchCounts
	syncs      sync.WaitGroup
	runtime    *plugins.Runtime
	plugins    *upgrade.Manager
	live       *liveConfig
	configPoll time.Duration
	log        *slog.Logger
}

// Config returns the running configuration; it changes when the config file does.
func (s *Server) Config() *config.Config { return s.live.Config() }

// ReloadConfig reads the config file now instead of waiting for the next poll. It reports whether a new
// configuration became active.
func (s *Server) ReloadConfig() bool { return s.live.Reload() }

// New builds a Server from its config file. It fails fast: a config that fails its schema, a store that
// cannot be reached or a plugin that does not load is an error here, not at the first request.
func New(ctx context.Context, opts Options) (_ *Server, err error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// Every log line passes through redact: an HTTP client's error quotes the URL it called, and a
	// platform's URL may carry credentials in its query (WooCommerce's OAuth over plain http).
	log := slog.New(redact.Handler(opts.Logger.Handler()))
	set, err := schemas.Compile()
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	live, err := newLiveConfig(opts.ConfigPath, set, opts.Getenv, log)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	cfg := live.Config()

	s := &Server{live: live, log: log, configPoll: opts.ConfigPollInterval}
	defer func() {
		if err != nil {
			_ = s.Close(context.WithoutCancel(ctx))
		}
	}()

	if rc := cfg.Store.Redis; rc != nil {
		// store.redis (or store.redisUrl, or KASSE_REDIS_URL): one server, a cluster or Sentinel.
		client, err := rc.NewClient()
		if err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
		s.closeRedis = client.Close
		if s.Store, err = store.NewRedisFromClient(client, store.RedisOptions{WaitReplicas: rc.WaitReplicas,
			WaitTimeout: time.Duration(rc.WaitTimeout)}); err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
		if err := s.Store.Ping(ctx); err != nil {
			return nil, fmt.Errorf("host: redis store (%s): %w", rc.Description(), err)
		}
		// Data of an earlier key layout would be invisible to this version: refuse it, with the way on.
		if err := s.Store.(*store.Redis).CheckLayout(ctx); err != nil {
			return nil, fmt.Errorf("host: redis store (%s): %w", rc.Description(), err)
		}
		log.Info("session store: redis", "redis", rc.Description())
	} else {
		s.Store = store.NewMemory(store.WithNow(opts.Now))
		log.Info("session store: in-process (single instance; configure store.redis to scale out)")
	}

	// Platform status updates and acknowledged-first webhook deliveries are queued beside the sessions.
	var statusQueue, inboxQueue outbound.Storage = outbound.NewMemoryStorage(), outbound.NewMemoryStorage()
	if rs, ok := s.Store.(*store.Redis); ok {
		// Partitioned like the store, so that on a cluster the queues' traffic spreads over the primaries.
		tags := store.PartitionTags(store.QueuePartitions)
		if statusQueue, err = outbound.NewPartitionedRedisStorage(rs.Client(), rs.KeyPrefix()+"outbound:", tags); err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
		if inboxQueue, err = outbound.NewPartitionedRedisStorage(rs.Client(), rs.KeyPrefix()+"inbox:", tags); err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
	}
	adapterSet := opts.Adapters
	if adapterSet == nil {
		adapterSet = adapters.Registered()
	}
	if err := hooks.Check(adapterSet, cfg); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}

	rcfg := plugins.NewRuntimeConfig().
		WithCallTimeout(time.Duration(cfg.Plugins.CallTimeout)).
		WithMemoryLimitPages(cfg.Plugins.MemoryLimitPages).
		WithCompilationCacheDir(cfg.Plugins.CacheDir)
	if cfg.Plugins.PoolSize > 0 {
		rcfg = rcfg.WithPoolSize(cfg.Plugins.PoolSize)
	}
	s.runtime, err = plugins.NewRuntime(ctx, rcfg)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	ucfg, err := upgrade.FromConfig(cfg.Plugins, s.runtime, set, log)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	if s.plugins, err = upgrade.New(ucfg); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	if err := s.plugins.LoadDir(ctx); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	live.check = s.plugins.Check
	if err := live.check(cfg); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}

	// Every outbound client: no redirects followed, timeouts, answers capped, TLS 1.2+ (httpclient).
	httpClient := httpclient.New(httpclient.Options{Transport: opts.ProviderTransport})
	platformClient := httpclient.New(httpclient.Options{})
	s.clients = []*http.Client{httpClient, platformClient}
	prov := provider.New(httpClient, provider.SystemInfo{Name: "kasse", Version: Version}, opts.Now)

	s.Notifier, err = notify.New(notify.Config{Adapters: adapterSet, Merchants: live, Storage: statusQueue,
		Logger: log, Now: opts.Now, Client: platformClient,
		OnGiveUp: func(ctx context.Context, merchant string, u adapters.StatusUpdate, err error) {
			if s.Service != nil && u.Session != "" {
				_ = s.Service.Note(ctx, u.Session, "platform update given up",
					redact.String(fmt.Sprintf("telling the shop's platform %q failed for good: %v", u.Status, err)))
			}
		}})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	segments := urlsecret.New(cfg.Server.URLSecret.Reveal(), cfg.Server.PreviousURLSecret.Reveal())
	s.Service, err = checkout.New(checkout.Config{
		Store: s.Store, Plugins: s.plugins, Merchants: live, Provider: prov, Schemas: set,
		PublicURL:      cfg.Server.PublicURL,
		ExpressSegment: segments.Segment,
		SessionTTL:     time.Duration(cfg.Store.SessionTTL),
		PendingTimeout: time.Duration(cfg.Reconciler.PendingTimeout),
		FirstPoll:      time.Duration(cfg.Reconciler.FirstPoll),
		RetryInDoubt:   time.Duration(cfg.Reconciler.RetryInDoubt),
		VerifyAfter:    time.Duration(cfg.Reconciler.VerifyAfter),
		InitiateGrace:  time.Duration(cfg.Reconciler.InitiateGrace),
		Now:            opts.Now,
		Logger:         log,
		Relay:          s.Notifier.Relay,
		OnChange: func(ctx context.Context, before, after *payment.Session) {
			// A capture is expected on the ledger by the payout delay; the follower reports it if not.
			if s.Settlement != nil && before != nil && after.CapturedAmount > before.CapturedAmount {
				if err := s.Settlement.Expect(ctx, after); err != nil {
					log.Warn("settlement: note a capture", "session", after.ID, "err", err)
				}
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	var reports httpapi.SettlementReports
	if cfg.Settlement.Enabled {
		// The merchants come from the live config, so a reload that adds one is followed at the next round.
		// (settlement.enabled itself is read at start.)
		merchants := func() []settlement.Merchant {
			c := live.Config()
			ms := make([]settlement.Merchant, 0, len(c.Merchants))
			for id, m := range c.Merchants {
				ms = append(ms, settlement.Merchant{ID: id, LedgerID: m.Vipps.LedgerID})
			}
			slices.SortFunc(ms, func(a, b settlement.Merchant) int { return strings.Compare(a.ID, b.ID) })
			return ms
		}
		s.Settlement, err = settlement.New(settlement.Config{Store: s.Store, Source: s.Service, CurrentMerchants: merchants,
			PollInterval: time.Duration(cfg.Settlement.PollInterval), PayoutDelay: time.Duration(cfg.Settlement.PayoutDelay),
			From: cfg.Settlement.From,
			Now:  opts.Now, Logger: log, OnMismatch: s.mismatches.add, Relay: s.Service.RelayNotices,
			RelayRetry: 10 * time.Second,
			Notify: func(merchant string) bool {
				m, ok := live.Merchant(merchant)
				return ok && m.Platform != nil
			}})
		if err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
		reports = s.Settlement
	}
	s.Hooks, err = hooks.New(hooks.Deps{Adapters: adapterSet, Merchants: live, Checkouts: hookCheckouts{s.Service},
		Claims: s.Store, Schemas: set, InboxStorage: inboxQueue, Logger: log, Now: opts.Now})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	s.Webhooks, err = webhooks.NewManager(webhooks.ManagerConfig{Provider: prov, Store: s.Store,
		Config: live.Config, Now: opts.Now, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	live.onChange = func(_, _ *config.Config) {
		// A merchant moved to or from ePayment: register or remove its webhook now, not at the next sync.
		// Serve's shutdown and Close wait for it.
		s.syncs.Add(1)
		go func() {
			defer s.syncs.Done()
			if err := s.Webhooks.Sync(context.WithoutCancel(ctx)); err != nil {
				log.Warn("webhooks: sync after config reload", "err", err)
			}
		}()
	}
	s.Reconciler = reconciler.New(s.Store, s.Service, reconciler.Config{
		Interval:    time.Duration(cfg.Reconciler.Interval),
		MaxInterval: time.Duration(cfg.Reconciler.MaxInterval),
		Now:         opts.Now,
		Logger:      log,
	})
	// Operations routes live on their own listener (server.opsListen), never on the public one.
	opsMount := func(r gin.IRouter) { r.GET("/metrics", s.metricsHandler) }
	if cfg.Admin.TokenEnv != "" {
		adminAPI, err := admin.New(admin.Config{Manager: s.plugins, Token: cfg.Admin.Token.Reveal(),
			MaxModuleBytes: cfg.Plugins.MaxModuleBytes, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
		opsMount = func(r gin.IRouter) { r.GET("/metrics", s.metricsHandler); adminAPI.Mount(r) }
		log.Info("admin API on", "listen", cfg.Server.OpsListen, "path", "/admin/v1/")
	} else {
		log.Info("admin API off: set admin.tokenEnv to turn it on")
	}
	ready := func(ctx context.Context) error {
		if err := s.Store.Ping(ctx); err != nil {
			return fmt.Errorf("session store: %w", err)
		}
		if err := s.plugins.Ready(); err != nil {
			return fmt.Errorf("plugins: %w", err)
		}
		return nil
	}
	s.handler = httpapi.New(httpapi.Config{
		Service: s.Service, Schemas: set, APIKeys: live, Logger: log, Mount: s.Hooks.Mount, Webhooks: s.Webhooks,
		Ready: ready, OnAuthFailure: s.authFails.add, URLSegments: segments, Idempotency: s.Store,
		Settlements: reports,
	})
	s.ops = httpapi.NewOps(httpapi.OpsConfig{Ready: ready, Logger: log, Mount: opsMount})
	return s, nil
}

// Handler is the public HTTP API: the shop API, platform hooks, provider callbacks and return pages, and a
// bare /healthz and /readyz.
func (s *Server) Handler() http.Handler { return s.handler }

// OpsHandler is the operations API: /metrics, /admin/v1 (when a token is configured) and a /readyz that
// says what is not ready. Serve serves it on server.opsListen.
func (s *Server) OpsHandler() http.Handler { return s.ops }

// authFailures counts refused API keys by route.
type authFailures struct {
	mu      sync.Mutex
	byRoute map[string]uint64
}

func (a *authFailures) add(route string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byRoute == nil {
		a.byRoute = map[string]uint64{}
	}
	a.byRoute[route]++
}

func (a *authFailures) snapshot() map[string]uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := make(map[string]uint64, len(a.byRoute))
	for k, v := range a.byRoute {
		m[k] = v
	}
	return m
}

// httpServer is an http.Server for h with the configured timeouts and header limit.
func (s *Server) httpServer(h http.Handler) *http.Server {
	c := s.Config().Server
	return &http.Server{Handler: h,
		ReadHeaderTimeout: time.Duration(c.ReadHeaderTimeout), ReadTimeout: time.Duration(c.ReadTimeout),
		WriteTimeout: time.Duration(c.WriteTimeout), IdleTimeout: time.Duration(c.IdleTimeout),
		MaxHeaderBytes: c.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
}

// Serve serves the public API on l and the operations API on server.opsListen, and runs the reconciler
// and the other background work until ctx is done, then shuts down gracefully. Every goroutine it starts
// has ended when it returns.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	opsAddr := s.Config().Server.OpsListen
	ol, err := net.Listen("tcp", opsAddr)
	if err != nil {
		return fmt.Errorf("host: operations listener: %w", err)
	}
	s.log.Info("operations listener", "url", "http://"+ol.Addr().String(), "paths", "/metrics /admin/v1/ /readyz")
	srv, ops := s.httpServer(s.handler), s.httpServer(s.ops)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(6)
	go func() { defer wg.Done(); s.plugins.Run(rctx) }()
	go func() { defer wg.Done(); s.Reconciler.Run(rctx) }()
	go func() { defer wg.Done(); s.Webhooks.Run(rctx) }()
	go func() { defer wg.Done(); s.Notifier.Run(rctx) }()
	go func() { defer wg.Done(); s.Hooks.Run(rctx) }()
	if s.Settlement != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.Settlement.Run(rctx) }()
	}
	go func() {
		defer wg.Done()
		poll := s.configPoll
		if poll <= 0 {
			poll = time.Second
		}
		s.live.Watch(rctx, poll)
	}()

	errc := make(chan error, 2)
	var servers sync.WaitGroup
	servers.Add(2)
	go func() { defer servers.Done(); errc <- srv.Serve(l) }()
	go func() { defer servers.Done(); errc <- ops.Serve(ol) }()
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = errors.Join(srv.Shutdown(shutdownCtx), ops.Shutdown(shutdownCtx))
	stop()
	wg.Wait()
	servers.Wait()
	s.syncs.Wait()
	if serveErr != nil {
		return fmt.Errorf("host: serve: %w", serveErr)
	}
	if err != nil {
		return fmt.Errorf("host: shutdown: %w", err)
	}
	return nil
}

// Close releases the plugins, the runtime and the store, after the webhook syncs a config reload started
// have ended.
func (s *Server) Close(ctx context.Context) error {
	s.syncs.Wait()
	for _, c := range s.clients {
		c.CloseIdleConnections() // their read and write loops would outlive Close
	}
	var errs []error
	if s.plugins != nil {
		errs = append(errs, s.plugins.Close(ctx))
	}
	if s.runtime != nil {
		errs = append(errs, s.runtime.Close(ctx))
	}
	if s.Store != nil {
		errs = append(errs, s.Store.Close())
	}
	if s.closeRedis != nil {
		errs = append(errs, s.closeRedis())
	}
	return errors.Join(errs...)
}

// hookCheckouts adapts the checkout service to what the platform hooks need.
type hookCheckouts struct{ svc *checkout.Service }

func (h hookCheckouts) Create(ctx context.Context, co payment.Checkout, key string) (*payment.Session, bool, error) {
	return h.svc.Create(ctx, co, key)
}

func (h hookCheckouts) CreateExpress(ctx context.Context, co payment.Checkout, key string) (*payment.Session, bool, error) {
	return h.svc.CreateExpress(ctx, co, key)
}

func (h hookCheckouts) Modify(ctx context.Context, id, op string, amount int64, text, key string) (*payment.Session, error) {
	return h.svc.Modify(ctx, id, checkout.Operation(op), amount, text, key)
}

func (h hookCheckouts) Lookup(ctx context.Context, merchant, ref string) (*payment.Session, error) {
	return h.svc.Lookup(ctx, merchant, ref)
}
