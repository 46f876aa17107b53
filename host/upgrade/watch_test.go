package upgrade_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/upgrade"
)

// writeBundle writes b's files under dir/stem.
func writeBundle(t *testing.T, dir, stem string, b upgrade.Bundle) {
	t.Helper()
	for suffix, data := range map[string][]byte{upgrade.SuffixModule: b.Module, upgrade.SuffixManifest: b.Manifest,
		upgrade.SuffixSignature: b.Signature, upgrade.SuffixGolden: b.Golden} {
		if data == nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, stem+suffix), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDirectory loads the plugins directory at start, then picks up dropped-in bundles once their files
// have stopped changing, and refuses a tampered one without touching the active version.
func TestDirectory(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	pub, priv := newKey(t)
	golden := ecomGolden(t)
	dir := t.TempDir()
	writeBundle(t, dir, "vipps-ecom", signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden))
	writeBundle(t, dir, "vipps-ecom-0.9.0", signedBundle(t, priv, "vipps-ecom", "0.9.0", withCustomSection(mods[ecomPkg], "0.9"), golden))
	m := newManager(t, pub, func(c *upgrade.Config) { c.Dir = dir })
	if err := m.LoadDir(ctx); err != nil {
		t.Fatal(err)
	}
	if v := activeVersion(t, m, "vipps-ecom"); v != "1.0.0" {
		t.Fatalf("active %s after LoadDir, want the highest version", v)
	}
	if got := m.Scan(ctx); len(got) != 0 {
		t.Errorf("unchanged directory applied %v", got)
	}

	writeBundle(t, dir, "vipps-ecom-1.1.0", signedBundle(t, priv, "vipps-ecom", "1.1.0", withCustomSection(mods[ecomPkg], "1.1"), golden))
	if got := m.Scan(ctx); len(got) != 0 {
		t.Fatalf("a bundle seen once was applied: %v", got)
	}
	if got := m.Scan(ctx); len(got) != 1 || got[0] != "vipps-ecom-1.1.0" {
		t.Fatalf("second scan applied %v", got)
	}
	if v := activeVersion(t, m, "vipps-ecom"); v != "1.1.0" {
		t.Fatalf("active %s after the drop-in", v)
	}

	tampered := signedBundle(t, priv, "vipps-ecom", "1.2.0", withCustomSection(mods[ecomPkg], "1.2"), golden)
	tampered.Module = withCustomSection(tampered.Module, "extra")
	writeBundle(t, dir, "vipps-ecom-1.2.0", tampered)
	m.Scan(ctx)
	m.Scan(ctx)
	if got := m.Scan(ctx); len(got) != 0 {
		t.Errorf("a refused bundle was retried without changing: %v", got)
	}
	st, _ := m.Status("vipps-ecom")
	if st.ActiveVersion != "1.1.0" || st.State != upgrade.StateWarn || !strings.Contains(st.LastError, "module digest mismatch") {
		t.Errorf("after a tampered drop-in: %+v", st)
	}

	// A bundle without manifest or signature is refused outside development mode, and the refusal of a
	// name never seen is kept apart.
	if err := os.WriteFile(filepath.Join(dir, "stranger.wasm"), mods[ecomPkg], 0o644); err != nil {
		t.Fatal(err)
	}
	m.Scan(ctx)
	m.Scan(ctx)
	refusals := m.Refusals()
	if len(refusals) != 1 || refusals[0].Plugin != "stranger" || !strings.Contains(refusals[0].Detail, "plugins.devMode") {
		t.Errorf("refusals %+v", refusals)
	}
	if _, err := m.Status("stranger"); !errors.Is(err, upgrade.ErrUnknownPlugin) {
		t.Errorf("status of a refused stranger: %v", err)
	}
}

// TestLoadDirFailsFast: a host does not start with a bundle it cannot trust.
func TestLoadDirFailsFast(t *testing.T) {
	mods := modules(t)
	pub, _ := newKey(t)
	_, stranger := newKey(t)
	dir := t.TempDir()
	writeBundle(t, dir, "vipps-ecom", signedBundle(t, stranger, "vipps-ecom", "1.0.0", mods[ecomPkg], ecomGolden(t)))
	m := newManager(t, pub, func(c *upgrade.Config) { c.Dir = dir })
	err := m.LoadDir(context.Background())
	var re *upgrade.RefusedError
	if !errors.As(err, &re) || re.Rule != upgrade.RuleSignature {
		t.Fatalf("LoadDir: %v", err)
	}
	if m.Ready() == nil {
		t.Error("ready without a plugin")
	}
}

// TestDevModeLoadsBareModule: with development mode on, a bare <name>.wasm loads under a digest version.
func TestDevModeLoadsBareModule(t *testing.T) {
	mods := modules(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "vipps-ecom.wasm"), mods[ecomPkg], 0o644); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, nil, func(c *upgrade.Config) { c.Dir = dir; c.Verify = upgrade.VerifyOptions{DevMode: true} })
	if err := m.LoadDir(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := activeVersion(t, m, "vipps-ecom"); !strings.HasPrefix(v, "sha256-") {
		t.Errorf("version %s", v)
	}
	if err := m.Ready(); err != nil {
		t.Error(err)
	}
}

// TestRunWatches drives Run with a short interval.
func TestRunWatches(t *testing.T) {
	mods := modules(t)
	pub, priv := newKey(t)
	dir := t.TempDir()
	m := newManager(t, pub, func(c *upgrade.Config) {
		c.Dir = dir
		c.WatchInterval = 5 * time.Millisecond
		c.Verify.TrustedKeys = []ed25519.PublicKey{pub}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	writeBundle(t, dir, "vipps-ecom", signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], ecomGolden(t)))
	waitFor(t, "the watcher to load the bundle", func() bool { _, ok := m.Plugin("vipps-ecom"); return ok })
	cancel()
	<-done
}
