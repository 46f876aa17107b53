package upgrade_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kassehq/kasse/host/upgrade"
	"github.com/kassehq/kasse/host/upgrade/upgradetest"
)

// TestMaliciousVariantsAtTheGate: the slow variant is refused at the gate for its cost; the others are
// correct on every vector, so only live traffic can catch them (host/malicious_test.go stages every one;
// here two stand for them, to keep this package's tests short).
func TestMaliciousVariantsAtTheGate(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	pub, priv := newKey(t)
	m := newManager(t, pub, nil)
	golden := ecomGolden(t)
	if _, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden)},
		upgrade.Activation{Mode: upgrade.ModeActivate}); err != nil {
		t.Fatal(err)
	}
	for i, attack := range []string{"redirect", "slow"} {
		t.Run(attack, func(t *testing.T) {
			module, err := upgradetest.EvilVariant(mods[upgradetest.EvilPkg], attack)
			if err != nil {
				t.Fatal(err)
			}
			ver := fmt.Sprintf("1.%d.0", i+1)
			info, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundle(t, priv, "vipps-ecom", ver, module, golden)},
				upgrade.Activation{Mode: upgrade.ModeStage})
			var re *upgrade.RefusedError
			if attack == "slow" {
				if !errors.As(err, &re) || re.Rule != upgrade.RuleSlow {
					t.Fatalf("slow variant: %v, want refused for its cost", err)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("variant %s refused at the gate (it should pass its vectors): %v", attack, err)
			}
			t.Logf("%s staged: %s", attack, info.Gate)
		})
	}
}
