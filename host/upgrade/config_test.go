package upgrade_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/upgrade"
)

func TestFromConfig(t *testing.T) {
	pub, _ := newKey(t)
	c := config.Plugins{Dir: "plugins", TrustedKeys: []string{upgrade.FormatPublicKey(pub)}, DevMode: true, MaxModuleBytes: 1 << 20,
		KeepVersions: -1, CanaryPercent: 10, RollbackErrors: 3, RollbackErrorRate: 0.5, ProbationCalls: 10,
		WatchInterval: config.Duration(time.Second)}
	got, err := upgrade.FromConfig(c, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dir != "plugins" || len(got.Verify.TrustedKeys) != 1 || !got.Verify.TrustedKeys[0].Equal(pub) || !got.Verify.DevMode ||
		got.Verify.MaxModuleBytes != 1<<20 || got.KeepVersions != -1 || got.CanaryPercent != 10 || got.RollbackErrors != 3 ||
		got.RollbackErrorRate != 0.5 || got.ProbationCalls != 10 || got.WatchInterval != time.Second {
		t.Errorf("FromConfig = %+v", got)
	}
	c.TrustedKeys = append(c.TrustedKeys, "ed25519:AAAA")
	if _, err := upgrade.FromConfig(c, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "plugins.trustedKeys[1]") {
		t.Errorf("bad key: %v", err)
	}
}

func TestCheckNamesMissingPlugin(t *testing.T) {
	mods := modules(t)
	pub, priv := newKey(t)
	m := newManager(t, pub, nil)
	if _, err := m.Apply(context.Background(), upgrade.Update{Source: "test", Bundle: signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], ecomGolden(t))},
		upgrade.Activation{Mode: upgrade.ModeActivate}); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Plugins: config.Plugins{Dir: "plugin/build"}, Merchants: map[string]config.Merchant{
		"a": {ID: "a", Plugin: "vipps-ecom"}}}
	if err := m.Check(cfg); err != nil {
		t.Errorf("Check: %v", err)
	}
	cfg.Merchants["b"] = config.Merchant{ID: "b", Plugin: "vipps-epayment"}
	want := "merchant b: plugin vipps-epayment is not loaded (no bundle for it in plugins.dir plugin/build; run `make plugins`)"
	if err := m.Check(cfg); err == nil || err.Error() != want {
		t.Errorf("Check = %v, want %s", err, want)
	}
	if got := m.Names(); len(got) != 1 || got[0] != "vipps-ecom" {
		t.Errorf("Names = %v", got)
	}
}
