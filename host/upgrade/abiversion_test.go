package upgrade_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kassehq/kasse/host/upgrade"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
)

// signedBundleABI is signedBundle with the manifest declaring ABI version abiVersion.
func signedBundleABI(t testing.TB, key ed25519.PrivateKey, version string, module, golden []byte, abiVersion int) upgrade.Bundle {
	t.Helper()
	mf := upgrade.NewManifest("vipps-ecom", version, module, golden, allOps())
	mf.ABIVersion = abiVersion
	manifest := mf.Encode()
	return upgrade.Bundle{Stem: "vipps-ecom", Module: module, Manifest: manifest, Signature: upgrade.Sign(manifest, key), Golden: golden}
}

// watBundle is a signed bundle of one of host/plugins' hand-written test modules, which implement ABI
// version 1 (they read no input).
func watBundle(t testing.TB, key ed25519.PrivateKey, version, module string, golden []byte) upgrade.Bundle {
	t.Helper()
	return signedBundleABI(t, key, version, watModule(t, module), golden, abi.VersionJSON)
}

// TestABIVersionsInUpgrades: a version 1 module loads, passes its gate and serves beside version 2 ones; a
// manifest that declares another version than its module reports is refused; a shadow of the other ABI
// version than the active one gets every live input in its own encoding.
func TestABIVersionsInUpgrades(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	v1Module := plugintest.BuildTags(t, ecomPkg, "kasse_abi1")
	pub, priv := newKey(t)
	m := newManager(t, pub, nil)
	golden := ecomGolden(t)

	_, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundleABI(t, priv, "0.9.0", v1Module, golden, abi.VersionBinary)},
		upgrade.Activation{Mode: upgrade.ModeActivate})
	var refused *upgrade.RefusedError
	if !errors.As(err, &refused) || refused.Rule != upgrade.RuleABIVersion ||
		!strings.Contains(err.Error(), "manifest abiVersion 2, but the module reports 1") {
		t.Fatalf("a version 1 module declared as version 2: %v", err)
	}

	if _, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundleABI(t, priv, "1.0.0", v1Module, golden, abi.VersionJSON)},
		upgrade.Activation{Mode: upgrade.ModeActivate}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundleABI(t, priv, "1.1.0", mods[ecomPkg], golden, abi.VersionBinary)},
		upgrade.Activation{Mode: upgrade.ModeStage}); err != nil {
		t.Fatal(err)
	}
	live := func(version string, wantABI int, n int) {
		t.Helper()
		p, _ := m.Plugin("vipps-ecom")
		if p.Version() != version || p.ABIVersion() != wantABI {
			t.Fatalf("active %s (ABI %d), want %s (ABI %d)", p.Version(), p.ABIVersion(), version, wantABI)
		}
		for i := range n {
			// As host/checkout sends it: in the active version's encoding.
			input := initiateInput("abi-" + strings.ReplaceAll(version, ".", "-") + "-" + string(rune('a'+i)))
			if wantABI == abi.VersionBinary {
				var in abi.Input
				if err := json.Unmarshal(input, &in); err != nil {
					t.Fatal(err)
				}
				input = abi.AppendBinary(nil, &in)
			}
			out, err := p.Call(ctx, input)
			if err != nil || !bytes.Contains(out, []byte(`"ok":true`)) {
				t.Fatalf("live call on %s: %s, %v", version, out, err)
			}
		}
	}
	shadowed := func(want uint64) {
		t.Helper()
		waitFor(t, "the shadow", func() bool {
			st, _ := m.Status("vipps-ecom")
			return st.Shadow != nil && st.Shadow.Compared+st.Shadow.Dropped >= want
		})
		st, _ := m.Status("vipps-ecom")
		if sh := st.Shadow; sh.Compared == 0 || sh.Differed != 0 || sh.Errors != 0 {
			t.Fatalf("shadow of another ABI version: %+v", sh)
		}
	}

	if err := m.Shadow(ctx, "vipps-ecom", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // one at a time, so the shadow's queue never drops one
		live("1.0.0", abi.VersionJSON, 1)
		shadowed(uint64(i + 1))
	}
	if err := m.StopShadow("vipps-ecom"); err != nil {
		t.Fatal(err)
	}
	if err := m.Activate(ctx, "vipps-ecom", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	if err := m.Shadow(ctx, "vipps-ecom", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		live("1.1.0", abi.VersionBinary, 1)
		shadowed(uint64(i + 1))
	}
	st, _ := m.Status("vipps-ecom")
	for _, r := range st.Shadow.Recent {
		t.Errorf("shadow difference %+v", r)
	}
}
