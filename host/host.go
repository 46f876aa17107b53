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
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

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
	"github.com/kassehq/kasse/host/telemetry"
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
	// TracerProvider, if set, receives the request spans instead of the provider the OTEL_* environment
	// variables configure (tests pass one with an in-memory exporter).
	TracerProvider trace.TracerProvider
	// Adapters are the platform adapters to serve. Default adapters.Registered(): those registered by
	// import (see adapters/standard).
	Adapters []adapters.Info
	// Schemas are the compiled JSON Schemas, when the caller compiled them already (the command line
	// does, to read the config's log section); compiling them takes tens of milliseconds of a start.
	// Default: compiled by New.
	Schemas *schemas.Set
}

// StartStep is one step of New and how long it took.
type StartStep struct {
	// Name is the step: "schemas", "config", "telemetry", "store", "plugins", "service", "settlement",
	// "drivers" or "handlers".
	Name string
	Took time.Duration
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

	handler     http.Handler
	closeRedis  func() error // the Redis client of store.redis; the store does not own it
	ops         http.Handler
	clients     []*http.Client
	tel         *telemetry.Telemetry
	mismatches  *prometheus.CounterVec
	withheld    *prometheus.CounterVec
	stalePaid   *prometheus.CounterVec
	stopTracing func(context.Context) error // flushes the spans of a tracer provider New made
	syncs       sync.WaitGroup
	runtime     *plugins.Runtime
	plugins     *upgrade.Manager
	live        *liveConfig
	provider    *provider.Client
	segments    *urlsecret.Keys
	statusQueue outbound.Storage // platform status updates
	inboxQueue  outbound.Storage // webhook deliveries acknowledged first
	configPoll  time.Duration
	log         *slog.Logger
	startSteps  []StartStep
}

// StartSteps returns how long each step of New took, in order.
func (s *Server) StartSteps() []StartStep { return slices.Clone(s.startSteps) }

// PluginStartTimes returns where the plugins step of New spent its time, bundle by bundle.
func (s *Server) PluginStartTimes() []upgrade.BundleTimes { return s.plugins.StartTimes() }

// Config returns the running configuration; it changes when the config file does.
func (s *Server) Config() *config.Config { return s.live.Config() }

// ReloadConfig reads the config file now instead of waiting for the next poll. It reports whether a new
// configuration became active.
func (s *Server) ReloadConfig() bool { return s.live.Reload() }

// New builds a Server from its config file. It fails fast: a config that fails its schema, a store that
// cannot be reached or a plugin that does not load is an error here, not at the first request.
func New(ctx context.Context, opts Options) (_ *Server, err error) {
	opts = opts.withDefaults()
	// Every log line passes through redact: an HTTP client's error quotes the URL it called, and a
	// platform's URL may carry credentials in its query (WooCommerce's OAuth over plain http).
	log := slog.New(redact.Handler(opts.Logger.Handler()))
	var steps []StartStep
	t0 := time.Now()
	set := opts.Schemas
	if set == nil {
		if set, err = schemas.Compile(); err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
		steps = append(steps, StartStep{"schemas", time.Since(t0)})
		t0 = time.Now()
	}
	live, err := newLiveConfig(opts.ConfigPath, set, opts.Getenv, log)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	cfg := live.Config()
	steps = append(steps, StartStep{"config", time.Since(t0)})
	s := &Server{live: live, log: log, configPoll: opts.ConfigPollInterval, startSteps: steps}
	defer func() {
		if err != nil {
			_ = s.Close(context.WithoutCancel(ctx))
		}
	}()

	// The parts in the order data flows through them: telemetry watches everything; the store and its
	// queues hold the state; the plugins and the provider client do the payment work; the checkout
	// service ties them together; settlement, hooks, webhooks and the reconciler drive it; the two
	// listeners' handlers come last.
	adapterSet := opts.Adapters
	if adapterSet == nil {
		adapterSet = adapters.Registered()
	}
	if err := hooks.Check(adapterSet, cfg); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	for _, step := range []struct {
		name string
		run  func() error
	}{
		{"telemetry", func() error { return s.startTelemetry(ctx, opts) }},
		{"store", func() error { return s.openStore(ctx, cfg, opts) }},
		{"plugins", func() error { return s.loadPlugins(ctx, cfg, set) }},
		{"service", func() error { return s.startService(cfg, set, opts, adapterSet) }},
		{"settlement", func() error { return s.startSettlement(cfg, opts) }},
		{"drivers", func() error { return s.startDrivers(ctx, cfg, set, opts, adapterSet) }},
		{"handlers", func() error { return s.buildHandlers(cfg, set, opts) }},
	} {
		t0 := time.Now()
		if err := step.run(); err != nil {
			return nil, err
		}
		s.startSteps = append(s.startSteps, StartStep{step.name, time.Since(t0)})
	}
	attrs := make([]any, 0, 2*len(s.startSteps))
	for _, st := range s.startSteps {
		attrs = append(attrs, st.Name, st.Took.Round(10*time.Microsecond).String())
	}
	log.Debug("start-up steps", attrs...)
	return s, nil
}

// withDefaults fills the options a caller left empty.
func (o Options) withDefaults() Options {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// startTelemetry sets up the metrics registry and the tracer (OTEL_* variables, unless the options give
// a tracer provider).
func (s *Server) startTelemetry(ctx context.Context, opts Options) (err error) {
	tp := opts.TracerProvider
	if tp == nil {
		if tp, s.stopTracing, err = telemetry.TracerProviderFromEnv(ctx, opts.Getenv, Version); err != nil {
			return fmt.Errorf("host: %w", err)
		}
	}
	s.tel = telemetry.New(telemetry.Options{TracerProvider: tp})
	s.mismatches = newMismatches()
	s.withheld, s.stalePaid = newOrderSessionCounters()
	if err := errors.Join(s.tel.Register(serverCollector{s}), s.tel.Register(s.mismatches), s.tel.Register(s.withheld),
		s.tel.Register(s.stalePaid)); err != nil {
		return fmt.Errorf("host: metrics: %w", err)
	}
	return nil
}

// openStore opens the session store (store.redis: one server, a cluster or Sentinel; else in process)
// and the two queues kept beside the sessions: platform status updates and acknowledged-first webhook
// deliveries.
func (s *Server) openStore(ctx context.Context, cfg *config.Config, opts Options) error {
	s.statusQueue, s.inboxQueue = outbound.NewMemoryStorage(), outbound.NewMemoryStorage()
	rc := cfg.Store.Redis
	if rc == nil {
		s.Store = store.NewMemory(store.WithNow(opts.Now))
		s.log.Info("session store: in-process (single instance; configure store.redis to scale out)")
		return nil
	}
	client, err := rc.NewClient()
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	s.closeRedis = client.Close
	// With settlement on, every session write keeps the index of captures awaiting the ledger, which
	// the follower reads (the memory store always keeps it).
	rs, err := store.NewRedisFromClient(client, store.RedisOptions{WaitReplicas: rc.WaitReplicas,
		WaitTimeout: time.Duration(rc.WaitTimeout), AwaitingSettlement: cfg.Settlement.Enabled,
		SeparateReads: rc.SeparateReads})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	s.Store = rs
	if err := s.Store.Ping(ctx); err != nil {
		return fmt.Errorf("host: redis store (%s): %w", rc.Description(), err)
	}
	// Data of an earlier key layout would be invisible to this version: refuse it, with the way on.
	if err := rs.CheckLayout(ctx); err != nil {
		return fmt.Errorf("host: redis store (%s): %w", rc.Description(), err)
	}
	// Partitioned like the store, so that on a cluster the queues' traffic spreads over the primaries.
	tags := store.PartitionTags(store.QueuePartitions)
	if s.statusQueue, err = outbound.NewPartitionedRedisStorage(rs.Client(), rs.KeyPrefix()+"outbound:", tags); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	if s.inboxQueue, err = outbound.NewPartitionedRedisStorage(rs.Client(), rs.KeyPrefix()+"inbox:", tags); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	s.log.Info("session store: redis", "redis", rc.Description())
	return nil
}

// runtimeConfig is the plugin runtime's configuration from the file's plugins section.
func runtimeConfig(p config.Plugins) plugins.RuntimeConfig {
	rcfg := plugins.NewRuntimeConfig().
		WithCallTimeout(time.Duration(p.CallTimeout)).
		WithMemoryLimitPages(p.MemoryLimitPages).
		WithCompilationCacheDir(p.CacheDir)
	if p.PoolSize > 0 {
		rcfg = rcfg.WithPoolSize(p.PoolSize)
	}
	if p.PoolIdle > 0 {
		rcfg = rcfg.WithPoolIdle(time.Duration(p.PoolIdle))
	}
	return rcfg
}

// loadPlugins starts the wasm runtime and loads, verifies and activates the plugin bundles in
// plugins.dir; the live config's check refuses a merchant whose plugin has no active version.
func (s *Server) loadPlugins(ctx context.Context, cfg *config.Config, set *schemas.Set) (err error) {
	if s.runtime, err = plugins.NewRuntime(ctx, runtimeConfig(cfg.Plugins)); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	ucfg, err := upgrade.FromConfig(cfg.Plugins, s.runtime, set, s.log)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	if s.plugins, err = upgrade.New(ucfg); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	if err := s.plugins.LoadDir(ctx); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	s.live.check = s.plugins.Check
	if err := s.live.check(cfg); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	return nil
}

// startService builds the outbound clients (no redirects followed, timeouts, answers capped, TLS 1.2+:
// host/internal/httpclient), the provider client, the platform notifier and the checkout service.
func (s *Server) startService(cfg *config.Config, set *schemas.Set, opts Options, adapterSet []adapters.Info) (err error) {
	httpClient := httpclient.New(httpclient.Options{Transport: opts.ProviderTransport})
	platformClient := httpclient.New(httpclient.Options{})
	s.clients = append(s.clients, httpClient, platformClient)
	s.provider = provider.New(httpClient, provider.SystemInfo{Name: "kasse", Version: Version}, opts.Now)

	s.Notifier, err = notify.New(notify.Config{Adapters: adapterSet, Merchants: s.live, Storage: s.statusQueue,
		Logger: s.log, Now: opts.Now, Client: platformClient,
		OnDelivered: func(ctx context.Context, merchant string, u adapters.StatusUpdate) {
			// The timeline shows what the shop heard, not only what was queued for it.
			if s.Service != nil && u.Session != "" {
				_ = s.Service.Note(ctx, u.Session, payment.CauseNoticeDelivered,
					fmt.Sprintf("%s update %s delivered", u.Status, u.DeliveryID))
			}
		},
		OnGiveUp: func(ctx context.Context, merchant string, u adapters.StatusUpdate, err error) {
			if s.Service != nil && u.Session != "" {
				_ = s.Service.Note(ctx, u.Session, "platform update given up",
					redact.String(fmt.Sprintf("telling the shop's platform %q failed for good: %v", u.Status, err)))
			}
		},
		CurrentSession: s.currentSession, OnWithheld: s.noticeWithheld, OnStalePayment: s.stalePayment})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	s.segments = urlsecret.New(cfg.Server.URLSecret.Reveal(), cfg.Server.PreviousURLSecret.Reveal())
	s.Service, err = checkout.New(checkout.Config{
		Store: s.Store, Plugins: s.plugins, Merchants: s.live, Provider: observedProvider{next: s.provider, s: s}, Schemas: set,
		PublicURL:       cfg.Server.PublicURL,
		ExpressSegment:  s.segments.Segment,
		SessionTTL:      time.Duration(cfg.Store.SessionTTL),
		PendingTimeout:  time.Duration(cfg.Reconciler.PendingTimeout),
		FirstPoll:       time.Duration(cfg.Reconciler.FirstPoll),
		RetryInDoubt:    time.Duration(cfg.Reconciler.RetryInDoubt),
		VerifyAfter:     time.Duration(cfg.Reconciler.VerifyAfter),
		InitiateGrace:   time.Duration(cfg.Reconciler.InitiateGrace),
		WatchFor:        time.Duration(cfg.Reconciler.WatchFor),
		PendingClaimTTL: time.Duration(cfg.Server.PendingClaimTTL),
		Now:             opts.Now,
		Logger:          s.log,
		Relay:           s.Notifier.Relay,
		OnPluginCall:    s.pluginCall,
		OnChange:        s.onCheckoutChange,
	})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	return nil
}

// currentSession is the session the shop's order reference points at now (the order's newest checkout),
// nil if none: notify.Config.CurrentSession.
func (s *Server) currentSession(ctx context.Context, merchant, reference string) (*payment.Session, error) {
	sess, err := s.Store.GetByReference(ctx, merchant, reference)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("host: order %s/%s: %w", merchant, reference, err)
	}
	return sess, nil
}

// noticeWithheld records in the session's history, and counts, a status update the notifier did not
// send because the session no longer speaks for the shop's order.
func (s *Server) noticeWithheld(ctx context.Context, merchant string, u adapters.StatusUpdate, why string) {
	s.withheld.WithLabelValues(merchant, string(u.Status)).Inc()
	if s.Service != nil {
		_, _ = s.Service.NoteOnce(ctx, u.Session, payment.CauseNoticeWithheld,
			fmt.Sprintf("%s update %s withheld: %s", u.Status, u.DeliveryID, why))
	}
}

// stalePayment records, before the shop hears of it, that session u.Session took money while current
// was the order's current checkout: in both sessions' histories (the console shows both as needing
// attention, and a later failure of current is then withheld), and in a counter.
func (s *Server) stalePayment(ctx context.Context, merchant string, u adapters.StatusUpdate, current *payment.Session) error {
	added, err := s.Service.NoteOnce(ctx, u.Session, payment.CausePaidNotCurrent,
		fmt.Sprintf("session %s is the order's current checkout", current.ID))
	if err != nil {
		return err
	}
	if added {
		s.stalePaid.WithLabelValues(merchant).Inc()
	}
	_, err = s.Service.NoteOnce(ctx, current.ID, payment.CauseOrderPaidElsewhere,
		fmt.Sprintf("session %s of this order took %s %s", u.Session, adapters.FormatAmount(u.Amount), u.Currency))
	return err
}

// onCheckoutChange counts state transitions. (A capture needs no word to the settlement follower: the
// store indexes it as awaiting the ledger in the capture's own write.)
func (s *Server) onCheckoutChange(_ context.Context, before, after *payment.Session) {
	s.countTransition(before, after)
}

// startSettlement builds the settlement follower when settlement.enabled is on (read at start). Its
// merchants come from the live config, so a reload that adds one is followed at the next round.
func (s *Server) startSettlement(cfg *config.Config, opts Options) (err error) {
	if !cfg.Settlement.Enabled {
		return nil
	}
	merchants := func() []settlement.Merchant {
		c := s.live.Config()
		ms := make([]settlement.Merchant, 0, len(c.Merchants))
		for id, m := range c.Merchants {
			ms = append(ms, settlement.Merchant{ID: id, LedgerID: m.Vipps.LedgerID})
		}
		slices.SortFunc(ms, func(a, b settlement.Merchant) int { return strings.Compare(a.ID, b.ID) })
		return ms
	}
	s.Settlement, err = settlement.New(settlement.Config{Store: s.Store, Source: s.Service, CurrentMerchants: merchants,
		PollInterval: time.Duration(cfg.Settlement.PollInterval), PayoutDelay: time.Duration(cfg.Settlement.PayoutDelay),
		From: cfg.Settlement.From, Now: opts.Now, Logger: s.log,
		OnMismatch: func(merchant, kind string) { s.mismatches.WithLabelValues(merchant, kind).Inc() },
		Relay:      s.Service.RelayNotices, RelayRetry: 10 * time.Second,
		Notify: func(merchant string) bool {
			m, ok := s.live.Merchant(merchant)
			return ok && m.Platform != nil
		}})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	return nil
}

// startDrivers builds what drives the checkout service from outside: the platforms' hooks, the Vipps
// webhook registrations (synced again when a reload changes a merchant) and the reconciler.
func (s *Server) startDrivers(ctx context.Context, cfg *config.Config, set *schemas.Set, opts Options, adapterSet []adapters.Info) (err error) {
	s.Hooks, err = hooks.New(hooks.Deps{Adapters: adapterSet, Merchants: s.live, Checkouts: hookCheckouts{s.Service},
		Claims: s.Store, PendingClaimTTL: time.Duration(cfg.Server.PendingClaimTTL), Schemas: set,
		InboxStorage: s.inboxQueue, Logger: s.log, Now: opts.Now})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	s.Webhooks, err = webhooks.NewManager(webhooks.ManagerConfig{Provider: s.provider, Store: s.Store,
		Config: s.live.Config, Now: opts.Now, Logger: s.log})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	s.live.onChange = func(_, _ *config.Config) {
		// A merchant moved to or from ePayment: register or remove its webhook now, not at the next sync.
		// Serve's shutdown and Close wait for it.
		s.syncs.Add(1)
		go func() {
			defer s.syncs.Done()
			if err := s.Webhooks.Sync(context.WithoutCancel(ctx)); err != nil {
				s.log.Warn("webhooks: sync after config reload", "err", err)
			}
		}()
	}
	s.Reconciler = reconciler.New(s.Store, s.Service, reconciler.Config{
		Interval:    time.Duration(cfg.Reconciler.Interval),
		MaxInterval: time.Duration(cfg.Reconciler.MaxInterval),
		Now:         opts.Now,
		Logger:      s.log,
		OnPass:      s.tel.ReconcilerPass,
	})
	return nil
}

// buildHandlers builds the two listeners' handlers: the public one (shop API, hooks, provider callbacks
// and return pages, bare probes) and the operations one (/metrics, the admin API and the console when
// their tokens are configured, the detailed readiness), never mixed.
func (s *Server) buildHandlers(cfg *config.Config, set *schemas.Set, opts Options) error {
	metrics := gin.WrapH(s.tel.Handler())
	opsMount := func(r gin.IRouter) { r.GET("/metrics", metrics) }
	if cfg.Admin.TokenEnv != "" {
		adminAPI, err := admin.New(admin.Config{Manager: s.plugins, Token: cfg.Admin.Token.Reveal(),
			MaxModuleBytes: cfg.Plugins.MaxModuleBytes, Logger: s.log})
		if err != nil {
			return fmt.Errorf("host: %w", err)
		}
		opsMount = func(r gin.IRouter) { r.GET("/metrics", metrics); adminAPI.Mount(r) }
		s.log.Info("admin API on", "listen", cfg.Server.OpsListen, "path", "/admin/v1/")
	} else {
		s.log.Info("admin API off: set admin.tokenEnv to turn it on")
	}
	if err := s.mountConsole(cfg, &opsMount, opts.Now, s.log); err != nil {
		return err
	}
	var reports httpapi.SettlementReports
	if s.Settlement != nil {
		reports = s.Settlement
	}
	s.handler = httpapi.New(httpapi.Config{
		Service: s.Service, Schemas: set, APIKeys: s.live, Logger: s.log, Mount: s.Hooks.Mount, Webhooks: s.Webhooks,
		Ready: s.ready, OnAuthFailure: s.tel.AuthFailure, URLSegments: s.segments, Idempotency: s.Store,
		PendingClaimTTL: time.Duration(cfg.Server.PendingClaimTTL),
		Settlements:     reports, Middleware: []gin.HandlerFunc{s.tel.Middleware("public")},
	})
	s.ops = httpapi.NewOps(httpapi.OpsConfig{Ready: s.ready, Logger: s.log, Mount: opsMount,
		Middleware: []gin.HandlerFunc{s.tel.Middleware("ops")}})
	return nil
}

// ready reports whether the instance can serve: its store answers and its plugins are loaded.
func (s *Server) ready(ctx context.Context) error {
	if err := s.Store.Ping(ctx); err != nil {
		return fmt.Errorf("session store: %w", err)
	}
	if err := s.plugins.Ready(); err != nil {
		return fmt.Errorf("plugins: %w", err)
	}
	return nil
}

// Handler is the public HTTP API: the shop API, platform hooks, provider callbacks and return pages, and a
// bare /healthz and /readyz.
func (s *Server) Handler() http.Handler { return s.handler }

// OpsHandler is the operations API: /metrics, /admin/v1 (when a token is configured) and a /readyz that
// says what is not ready. Serve serves it on server.opsListen.
func (s *Server) OpsHandler() http.Handler { return s.ops }

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
	s.log.Info("operations listener", "url", "http://"+ol.Addr().String(), "paths", "/metrics /admin/v1/ /console/ /readyz")
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
	if s.stopTracing != nil {
		errs = append(errs, s.stopTracing(ctx))
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

func (h hookCheckouts) ModifyFrom(ctx context.Context, sess *payment.Session, op string, amount int64, text, key string) (*payment.Session, error) {
	return h.svc.ModifyFrom(ctx, sess, checkout.Operation(op), amount, text, key)
}

func (h hookCheckouts) Lookup(ctx context.Context, merchant, ref string) (*payment.Session, error) {
	return h.svc.Lookup(ctx, merchant, ref)
}
