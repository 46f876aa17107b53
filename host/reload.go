package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/logging"
	"github.com/kassehq/kasse/schemas"
)

// liveConfig holds the running configuration and swaps in a new one when the file changes. Merchants
// (their plugin, return URLs, credentials, API keys) take effect at once; server, store and plugin
// runtime settings need a restart, and a reload that changes them says so in the log. A file that fails
// to load is refused with a log line naming each problem, and the running configuration stays.
type liveConfig struct {
	path    string
	schemas *schemas.Set
	getenv  func(string) string
	log     *slog.Logger
	current atomic.Pointer[config.Config]
	// mu serialises Reload (Watch's ticks and ReloadConfig may call it at once) and guards sum.
	mu  sync.Mutex
	sum [sha256.Size]byte
	// check, if set, vets a parsed configuration against the running process (e.g. that every
	// merchant's plugin is loaded) before it is activated.
	check func(*config.Config) error
	// onChange, if set, is called after a new configuration is active.
	onChange func(old, new *config.Config)
}

func newLiveConfig(path string, set *schemas.Set, getenv func(string) string, log *slog.Logger) (*liveConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := config.ParseAt(raw, filepath.Dir(path), set, getenv)
	if err != nil {
		return nil, err
	}
	lc := &liveConfig{path: path, schemas: set, getenv: getenv, log: log, sum: sha256.Sum256(raw)}
	lc.current.Store(cfg)
	return lc, nil
}

// Config returns the running configuration.
func (lc *liveConfig) Config() *config.Config { return lc.current.Load() }

// Merchant implements checkout.Merchants over the running configuration.
func (lc *liveConfig) Merchant(id string) (config.Merchant, bool) {
	return lc.current.Load().Merchant(id)
}

// APIKey implements httpapi.APIKeys over the running configuration.
func (lc *liveConfig) APIKey(merchant string) (key string, open, ok bool) {
	m, ok := lc.Merchant(merchant)
	if !ok {
		return "", false, false
	}
	return m.APIKey.Reveal(), m.InsecureNoAuth, true
}

// Reload reads the file again and activates it if it changed and is valid. It reports whether a new
// configuration became active.
func (lc *liveConfig) Reload() bool {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	raw, err := os.ReadFile(lc.path)
	if err != nil {
		lc.log.Error("config reload refused: cannot read the file; the running config stays", "path", lc.path, "err", err)
		return false
	}
	sum := sha256.Sum256(raw)
	if bytes.Equal(sum[:], lc.sum[:]) {
		return false
	}
	lc.sum = sum
	next, err := config.ParseAt(raw, filepath.Dir(lc.path), lc.schemas, lc.getenv)
	if err == nil && lc.check != nil {
		err = lc.check(next)
	}
	if err == nil {
		err = checkInsecureNoAuth(lc.current.Load().Server, next)
	}
	if err != nil {
		logging.Error(lc.log, "config reload refused; the running config stays", err, "path", lc.path)
		return false
	}
	old := lc.current.Swap(next)
	if !reflect.DeepEqual(old.Server, next.Server) || !reflect.DeepEqual(old.Store, next.Store) ||
		!reflect.DeepEqual(old.Plugins, next.Plugins) || !reflect.DeepEqual(old.Reconciler, next.Reconciler) ||
		old.Log != next.Log {
		lc.log.Warn("config reloaded; changes to server, store, plugins, reconciler or log take effect at the next restart", "path", lc.path)
	}
	lc.log.Info("config reloaded", "path", lc.path, "merchants", len(next.Merchants))
	if lc.onChange != nil {
		lc.onChange(old, next)
	}
	return true
}

// Watch checks the file every interval until ctx is done. Polling a hash survives editors that replace
// the file and needs no platform-specific notification API.
func (lc *liveConfig) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			lc.Reload()
		}
	}
}

// checkInsecureNoAuth refuses a merchant without an API key unless the listeners kasse runs with (server
// settings take effect at a restart only, so not the file's) are on loopback.
func checkInsecureNoAuth(running config.Server, next *config.Config) error {
	if running.LoopbackOnly() {
		return nil
	}
	for id, m := range next.Merchants {
		if m.InsecureNoAuth {
			return fmt.Errorf("merchant %s: insecureNoAuth is refused: kasse runs with listeners that are not all loopback (%s, %s)",
				id, running.Listen, running.OpsListen)
		}
	}
	return nil
}
