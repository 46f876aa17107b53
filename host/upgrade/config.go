package upgrade

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"time"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/schemas"
)

// FromConfig builds a Manager's Config from the plugins section of the config file. It fails on a trusted
// key that is not an ed25519 public key.
func FromConfig(c config.Plugins, rt *plugins.Runtime, set *schemas.Set, log *slog.Logger) (Config, error) {
	keys := make([]ed25519.PublicKey, 0, len(c.TrustedKeys))
	for i, s := range c.TrustedKeys {
		k, err := ParsePublicKey(s)
		if err != nil {
			return Config{}, fmt.Errorf("upgrade: plugins.trustedKeys[%d]: %w", i, err)
		}
		keys = append(keys, k)
	}
	return Config{
		Runtime: rt,
		Schemas: set,
		Dir:     c.Dir,
		Verify: VerifyOptions{
			TrustedKeys:    keys,
			DevMode:        c.DevMode,
			MaxModuleBytes: c.MaxModuleBytes,
		},
		KeepVersions:          c.KeepVersions,
		CanaryPercent:         c.CanaryPercent,
		RollbackErrors:        c.RollbackErrors,
		RollbackErrorRate:     c.RollbackErrorRate,
		ProbationCalls:        c.ProbationCalls,
		WatchInterval:         time.Duration(c.WatchInterval),
		RetireAfter:           time.Duration(c.RetireAfter),
		RollbackLatencyFactor: c.RollbackLatencyFactor,
		RollbackLatencyMin:    time.Duration(c.RollbackLatencyMin),
		LatencyMinCalls:       c.LatencyMinCalls,
		GateSlowdownFactor:    c.GateSlowdownFactor,
		GateSlowdownMin:       time.Duration(c.GateSlowdownMin),
		Logger:                log,
	}, nil
}

// Check refuses a configuration in which a merchant names a plugin without an active version, as the
// host's plugin set did before (live config reload calls it).
func (m *Manager) Check(cfg *config.Config) error {
	for _, mc := range cfg.Merchants {
		if _, ok := m.Plugin(mc.Plugin); !ok {
			return fmt.Errorf("merchant %s: plugin %s is not loaded (no bundle for it in plugins.dir %s; run `make plugins`)",
				mc.ID, mc.Plugin, cfg.Plugins.Dir)
		}
	}
	return nil
}
