package host

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/console"
	"github.com/kassehq/kasse/host/internal/httpclient"
	"github.com/kassehq/kasse/host/outbound"
)

// mountConsole adds the operator console to the operations routes when a token for it is configured
// (console.tokenEnv, else the admin token).
func (s *Server) mountConsole(cfg *config.Config, mount *func(gin.IRouter), now func() time.Time, log *slog.Logger) error {
	token := cfg.Console.Token.Reveal()
	if token == "" {
		token = cfg.Admin.Token.Reveal()
	}
	if token == "" {
		log.Info("console off: set admin.tokenEnv or console.tokenEnv to turn it on")
		return nil
	}
	// The Health page's reachability checks go out with kasse's outbound rules; Close drops its idle
	// connections with the other clients'.
	client := httpclient.New(httpclient.Options{Timeout: 3 * time.Second})
	s.clients = append(s.clients, client)
	ccfg := console.Config{Service: s.Service, Store: s.Store, Plugins: s.plugins,
		Config: s.live.Config, Token: token, Now: now, Logger: log, Health: s.consoleHealth, ProviderClient: client}
	if s.Settlement != nil {
		ccfg.Settlements = s.Settlement
	}
	c, err := console.New(ccfg)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	inner := *mount
	*mount = func(r gin.IRouter) { inner(r); c.Mount(r) }
	log.Info("console on", "listen", cfg.Server.OpsListen, "path", console.Prefix+"/")
	return nil
}

// consoleHealth is what the console's Health page shows of the host's parts.
func (s *Server) consoleHealth(ctx context.Context) console.Health {
	var h console.Health
	queue := func(name string, st outbound.Stats, err error) {
		q := console.Queue{Name: name, Pending: int64(st.Pending), Enqueued: st.Enqueued, Delivered: st.Delivered,
			Retried: st.Retried, GaveUp: st.GivenUp}
		if err != nil {
			q.Err = err.Error()
		}
		h.Queues = append(h.Queues, q)
	}
	st, err := s.Notifier.Stats(ctx)
	queue("platform updates", st, err)
	st, err = s.Hooks.InboxStats(ctx)
	queue("platform webhook inbox", st, err)
	h.ReconcilerLastRun = s.Reconciler.LastRun()
	h.ConfigVersion, h.LastReload = s.live.Version()
	return h
}
