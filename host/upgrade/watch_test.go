package upgrade_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// TestLoadDirSkipsRefused: a refused bundle in the plugins dir is reported, and the host starts with the
// others.
func TestLoadDirSkipsRefused(t *testing.T) {
	mods := modules(t)
	pub, priv := newKey(t)
	_, stranger := newKey(t)
	dir := t.TempDir()
	writeBundle(t, dir, "vipps-ecom-1.0.0", signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], ecomGolden(t)))
	writeBundle(t, dir, "vipps-ecom-1.1.0", signedBundle(t, stranger, "vipps-ecom", "1.1.0", withCustomSection(mods[ecomPkg], "x"), ecomGolden(t)))
	m := newManager(t, pub, func(c *upgrade.Config) { c.Dir = dir })
	if err := m.LoadDir(context.Background()); err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	if v := activeVersion(t, m, "vipps-ecom"); v != "1.0.0" {
		t.Errorf("active %s, want 1.0.0", v)
	}
	if n := m.SkippedBundles(); n != 1 {
		t.Errorf("SkippedBundles %d, want 1", n)
	}
	events, _ := m.History("vipps-ecom")
	if !slices.ContainsFunc(events, func(e upgrade.Event) bool {
		return e.Action == upgrade.ActionRefused && e.Version == "1.1.0" && strings.Contains(e.Detail, "signature")
	}) {
		t.Errorf("no refusal of 1.1.0 in history %+v", events)
	}
}

// TestDecisionsSurviveRestart: a rolled-back version stays rolled back after a restart, an uploaded one is
// saved into the plugins dir and comes back, and a deleted bundle file is unloaded.
func TestDecisionsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	pub, priv := newKey(t)
	dir := t.TempDir()
	golden := ecomGolden(t)
	writeBundle(t, dir, "vipps-ecom-1.0.0", signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden))
	// RetireAfter < 0: a deleted bundle is unloaded at once (TestRemovedVersionRetires covers the default).
	edit := func(c *upgrade.Config) { c.Dir = dir; c.RetireAfter = -1 }

	first := newManager(t, pub, edit)
	if err := first.LoadDir(ctx); err != nil {
		t.Fatal(err)
	}
	// 1.1.0 is dropped in (the watcher applies a bundle once it stayed the same for a scan), then rolled back.
	writeBundle(t, dir, "vipps-ecom-1.1.0", signedBundle(t, priv, "vipps-ecom", "1.1.0", withCustomSection(mods[ecomPkg], "1.1"), golden))
	first.Scan(ctx)
	first.Scan(ctx)
	if v := activeVersion(t, first, "vipps-ecom"); v != "1.1.0" {
		t.Fatalf("active %s after the drop-in, want 1.1.0", v)
	}
	if err := first.Rollback(ctx, "vipps-ecom"); err != nil {
		t.Fatal(err)
	}
	// An upload (1.2.0) is activated and written into the directory.
	if _, err := first.Apply(ctx, upgrade.Update{Source: upgrade.SourceUpload,
		Bundle: signedBundle(t, priv, "vipps-ecom", "1.2.0", withCustomSection(mods[ecomPkg], "1.2"), golden)},
		upgrade.Activation{Mode: upgrade.ModeActivate}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "vipps-ecom-1.2.0.wasm")); err != nil {
		t.Fatalf("upload not saved: %v", err)
	}
	if got := first.Scan(ctx); len(got) != 0 {
		t.Errorf("the watcher re-applied %v, which the upload wrote", got)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}

	second := newManager(t, pub, edit)
	if err := second.LoadDir(ctx); err != nil {
		t.Fatal(err)
	}
	if v := activeVersion(t, second, "vipps-ecom"); v != "1.2.0" {
		t.Fatalf("active %s after the restart, want the uploaded 1.2.0", v)
	}
	st, err := second.Status("vipps-ecom")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Quarantined) != 1 || st.Quarantined[0].Version != "1.1.0" {
		t.Errorf("quarantined %+v, want 1.1.0", st.Quarantined)
	}
	for _, v := range st.Versions {
		if v.Version == "1.1.0" {
			t.Errorf("the rolled-back 1.1.0 was loaded again: %+v", v)
		}
	}
	if st.HighestActivated != "1.2.0" {
		t.Errorf("highest activated %q", st.HighestActivated)
	}
	if refusals := second.Refusals(); !slices.ContainsFunc(refusals, func(e upgrade.Event) bool {
		return e.Version == "1.1.0" && strings.Contains(e.Detail, "quarantined")
	}) {
		hist, _ := second.History("vipps-ecom")
		if !slices.ContainsFunc(hist, func(e upgrade.Event) bool {
			return e.Action == upgrade.ActionRefused && e.Version == "1.1.0" && strings.Contains(e.Detail, "quarantined")
		}) {
			t.Errorf("the skipped quarantined file is reported nowhere: refusals %+v, history %+v", refusals, hist)
		}
	}
	events, _ := second.History("vipps-ecom")
	if !slices.ContainsFunc(events, func(e upgrade.Event) bool {
		return e.Action == upgrade.ActionRolledBack && e.From == "1.1.0"
	}) {
		t.Errorf("the rollback is not in the restored history %+v", events)
	}
	// A quarantined version dropped in again is refused; forced through an upload it may serve.
	if _, err := second.Apply(ctx, upgrade.Update{Source: upgrade.SourceDir,
		Bundle: signedBundle(t, priv, "vipps-ecom", "1.1.0", withCustomSection(mods[ecomPkg], "1.1"), golden)},
		upgrade.Activation{Mode: upgrade.ModeActivate}); !isRefused(err, upgrade.RuleQuarantined) {
		t.Errorf("quarantined 1.1.0 again: %v", err)
	}

	// Deleting the previous version's files unloads it.
	for _, suffix := range []string{upgrade.SuffixModule, upgrade.SuffixManifest, upgrade.SuffixSignature, upgrade.SuffixGolden} {
		if err := os.Remove(filepath.Join(dir, "vipps-ecom-1.0.0"+suffix)); err != nil {
			t.Fatal(err)
		}
	}
	second.Scan(ctx)
	st, _ = second.Status("vipps-ecom")
	for _, v := range st.Versions {
		if v.Version == "1.0.0" {
			t.Errorf("1.0.0 still held after its file was deleted: %+v", v)
		}
	}
	if p, _ := second.PluginVersion("vipps-ecom", "1.0.0"); p.Version() != "1.2.0" {
		t.Errorf("a session of the deleted 1.0.0 is served by %s, want the active 1.2.0", p.Version())
	}
}

// TestCorruptStateFileDoesNotStopTheStart: an unreadable state file is kept aside and reported.
func TestCorruptStateFileDoesNotStopTheStart(t *testing.T) {
	mods := modules(t)
	pub, priv := newKey(t)
	dir := t.TempDir()
	writeBundle(t, dir, "vipps-ecom", signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], ecomGolden(t)))
	if err := os.WriteFile(filepath.Join(dir, upgrade.StateFileName), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, pub, func(c *upgrade.Config) { c.Dir = dir })
	if err := m.LoadDir(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := activeVersion(t, m, "vipps-ecom"); v != "1.0.0" {
		t.Errorf("active %s", v)
	}
	if m.StateErrors() != 1 {
		t.Errorf("StateErrors %d, want 1", m.StateErrors())
	}
	aside, _ := filepath.Glob(filepath.Join(dir, upgrade.StateFileName+".corrupt-*"))
	if len(aside) != 1 {
		t.Errorf("corrupt state file not kept aside: %v", aside)
	}
}

func isRefused(err error, rule upgrade.Rule) bool {
	var re *upgrade.RefusedError
	return errors.As(err, &re) && re.Rule == rule
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

// TestInstancesSharingADirAgree: a rollback one instance decides reaches another instance that shares the
// plugins directory at its next scan.
func TestInstancesSharingADirAgree(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	pub, priv := newKey(t)
	dir := t.TempDir()
	golden := ecomGolden(t)
	writeBundle(t, dir, "vipps-ecom-1.0.0", signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden))
	edit := func(c *upgrade.Config) { c.Dir = dir }
	a, b := newManager(t, pub, edit), newManager(t, pub, edit)
	for _, m := range []*upgrade.Manager{a, b} {
		if err := m.LoadDir(ctx); err != nil {
			t.Fatal(err)
		}
	}
	writeBundle(t, dir, "vipps-ecom-1.1.0", signedBundle(t, priv, "vipps-ecom", "1.1.0", withCustomSection(mods[ecomPkg], "1.1"), golden))
	for _, m := range []*upgrade.Manager{a, b} {
		m.Scan(ctx)
		m.Scan(ctx)
		if v := activeVersion(t, m, "vipps-ecom"); v != "1.1.0" {
			t.Fatalf("active %s after the drop-in", v)
		}
	}
	if err := a.Rollback(ctx, "vipps-ecom"); err != nil {
		t.Fatal(err)
	}
	b.Scan(ctx)
	if v := activeVersion(t, b, "vipps-ecom"); v != "1.0.0" {
		t.Fatalf("the other instance still serves %s after the rollback", v)
	}
	st, _ := b.Status("vipps-ecom")
	if len(st.Quarantined) != 1 || st.Quarantined[0].Version != "1.1.0" || !strings.Contains(st.Quarantined[0].Reason, "another instance") {
		t.Errorf("quarantine on the other instance: %+v", st.Quarantined)
	}
}

// TestRemovedVersionRetires: a version whose bundle file is deleted while sessions may still need it keeps
// serving them until it has had no call for RetireAfter, then it is unloaded and its sessions go to the
// active version.
func TestRemovedVersionRetires(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	pub, priv := newKey(t)
	dir := t.TempDir()
	golden := ecomGolden(t)
	var mu sync.Mutex
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	writeBundle(t, dir, "vipps-ecom-1.0.0", signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden))
	m := newManager(t, pub, func(c *upgrade.Config) { c.Dir = dir; c.Now = clock; c.RetireAfter = time.Hour })
	if err := m.LoadDir(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, upgrade.Update{Source: upgrade.SourceUpload,
		Bundle: signedBundle(t, priv, "vipps-ecom", "1.1.0", withCustomSection(mods[ecomPkg], "1.1"), golden)},
		upgrade.Activation{Mode: upgrade.ModeActivate}); err != nil {
		t.Fatal(err)
	}
	m.Scan(ctx) // the upload's files are known to the watcher
	for _, suffix := range []string{upgrade.SuffixModule, upgrade.SuffixManifest, upgrade.SuffixSignature, upgrade.SuffixGolden} {
		if err := os.Remove(filepath.Join(dir, "vipps-ecom-1.0.0"+suffix)); err != nil {
			t.Fatal(err)
		}
	}
	servedBy := func() string {
		p, ok := m.PluginVersion("vipps-ecom", "1.0.0")
		if !ok {
			t.Fatal("no version serves vipps-ecom")
		}
		return p.Version()
	}
	retiring := func() bool {
		st, err := m.Status("vipps-ecom")
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range st.Versions {
			if v.Version == "1.0.0" {
				return v.Retiring && v.Loaded
			}
		}
		return false
	}

	m.Scan(ctx)
	if !retiring() || servedBy() != "1.0.0" {
		t.Fatalf("right after its file was removed: retiring %v, its sessions served by %s; want 1.0.0 retiring", retiring(), servedBy())
	}
	if p, _ := m.PluginForNewCheckout("vipps-ecom", "new-session"); p.Version() != "1.1.0" {
		t.Errorf("a new checkout went to %s", p.Version())
	}
	advance(50 * time.Minute)
	p, _ := m.PluginVersion("vipps-ecom", "1.0.0")
	if _, err := p.Call(ctx, initiateInput("late-capture")); err != nil {
		t.Fatalf("call on the retiring version: %v", err)
	}
	advance(50 * time.Minute) // 100 minutes after the removal, 50 after its last call
	m.Scan(ctx)
	if !retiring() || servedBy() != "1.0.0" {
		t.Fatalf("50 minutes after its last call: retiring %v, served by %s", retiring(), servedBy())
	}
	advance(11 * time.Minute)
	m.Scan(ctx)
	if servedBy() != "1.1.0" {
		t.Errorf("an hour after its last call its sessions are served by %s, want the active 1.1.0", servedBy())
	}
	st, _ := m.Status("vipps-ecom")
	for _, v := range st.Versions {
		if v.Version == "1.0.0" {
			t.Errorf("1.0.0 still held: %+v", v)
		}
	}
	events, _ := m.History("vipps-ecom")
	if !slices.ContainsFunc(events, func(e upgrade.Event) bool {
		return e.Action == upgrade.ActionRemoved && e.Version == "1.0.0" && strings.Contains(e.Detail, "serving its sessions")
	}) {
		t.Errorf("the retirement is not in the history %+v", events)
	}
}
