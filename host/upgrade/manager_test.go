package upgrade_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/host/upgrade"
)

// Interface guard: the manager is a drop-in for the host's plugin set.
var _ checkout.Plugins = (*upgrade.Manager)(nil)

// hammer calls the named plugin's active version until stop is closed and reports the first failure.
func hammer(m *upgrade.Manager, name string, stop <-chan struct{}, ok *atomic.Int64, fail chan<- error) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		p, found := m.Plugin(name)
		if !found {
			fail <- errors.New("no active version")
			return
		}
		out, err := p.Call(context.Background(), initiateInput(fmt.Sprintf("order-%d", i)))
		if err != nil {
			fail <- err
			return
		}
		if !bytes.Contains(out, []byte(`"ok":true`)) {
			fail <- fmt.Errorf("unexpected output %s", out)
			return
		}
		ok.Add(1)
	}
}

// background runs hammer in g goroutines and returns a function that stops them and fails the test on any
// failed call or when no call succeeded.
func background(t *testing.T, m *upgrade.Manager, name string, g int) func() int64 {
	t.Helper()
	stop := make(chan struct{})
	fail := make(chan error, g)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range g {
		wg.Go(func() { hammer(m, name, stop, &ok, fail) })
	}
	return func() int64 {
		t.Helper()
		waitFor(t, "a background call", func() bool { return ok.Load() > 0 })
		close(stop)
		wg.Wait()
		select {
		case err := <-fail:
			t.Fatalf("a concurrent checkout call failed: %v", err)
		default:
		}
		return ok.Load()
	}
}

func activeVersion(t *testing.T, m *upgrade.Manager, name string) string {
	t.Helper()
	p, ok := m.Plugin(name)
	if !ok {
		t.Fatalf("no active version of %s", name)
	}
	return p.Version()
}

// TestHostileVersionsNeverActivate applies misbehaving versions over a good active one while other
// checkouts keep running: each is refused, names the rule it broke, is recorded, and never serves.
func TestHostileVersionsNeverActivate(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	pub, priv := newKey(t)
	_, strangerKey := newKey(t)
	m := newManager(t, pub, func(c *upgrade.Config) { c.Verify.MaxModuleBytes = 8 << 20 })
	golden := ecomGolden(t)
	if _, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden)},
		upgrade.Activation{Mode: upgrade.ModeActivate}); err != nil {
		t.Fatal(err)
	}
	badGolden := changeExpected(t, golden, "build_initiate-regular", `"amount":49900`, `"amount":49901`)
	tampered := signedBundle(t, priv, "vipps-ecom", "2.0.0", mods[ecomPkg], golden)
	tampered.Module = withCustomSection(tampered.Module, "tampered")
	tests := []struct {
		name   string
		bundle upgrade.Bundle
		rule   upgrade.Rule
		errHas string
	}{
		{"bad signature", signedBundle(t, strangerKey, "vipps-ecom", "2.0.0", mods[ecomPkg], golden), upgrade.RuleSignature, "does not verify"},
		{"tampered module", tampered, upgrade.RuleDigest, "module digest mismatch"},
		{"oversized", signedBundle(t, priv, "vipps-ecom", "2.0.0", withCustomSection(mods[ecomPkg], strings.Repeat("x", 5<<20)), golden),
			upgrade.RuleSize, "over the limit of 8388608"},
		{"missing export", watBundle(t, priv, "2.0.0", "missing_export", golden), upgrade.RuleLoad, "export kasse_call missing"},
		{"wrong signature", watBundle(t, priv, "2.0.0", "wrong_signature", golden), upgrade.RuleLoad, "has signature (i32) -> (i32), want (i32) -> (i64)"},
		{"extra import", watBundle(t, priv, "2.0.0", "env_import", golden), upgrade.RuleLoad, "import env.foo not allowed"},
		{"socket import", watBundle(t, priv, "2.0.0", "sock_import", golden), upgrade.RuleLoad, "sock_accept not allowed"},
		{"memory over the cap", watBundle(t, priv, "2.0.0", "big_memory", golden), upgrade.RuleLoad, "over limit of 512 pages"},
		{"wrong abi version", watBundle(t, priv, "2.0.0", "wrong_abi_version", golden), upgrade.RuleLoad, "abi version 3, want 1 or 2"},
		{"trap at start", watBundle(t, priv, "2.0.0", "init_trap", golden), upgrade.RuleLoad, "unreachable"},
		{"fails its golden vectors", signedBundle(t, priv, "vipps-ecom", "2.0.0", withCustomSection(mods[ecomPkg], "v2"), badGolden),
			upgrade.RuleGolden, "output differs from the expected one at /request/body/transaction/amount"},
		{"answers another plugin's golden vectors", watBundle(t, priv, "2.0.0", "ok", golden), upgrade.RuleGolden, "output differs"},
		{"output fails its schema", watBundle(t, priv, "2.0.0", "bad_schema",
			[]byte(`{"vectors":[{"name":"self","input":{"op":"build_details"},"output":{"ok":"yes"}}]}`)),
			upgrade.RuleConformance, "output fails its schema"},
		{"answers build without request", watBundle(t, priv, "2.0.0", "ok",
			[]byte(`{"vectors":[{"name":"self","input":{"op":"build_details"},"output":{"ok":true}}]}`)),
			upgrade.RuleConformance, "vector build_initiate: output fails its schema"},
		{"traps on a call", watBundle(t, priv, "2.0.0", "trap", golden), upgrade.RuleGolden, "wasm error: unreachable"},
		{"spins", watBundle(t, priv, "2.0.0", "spin", golden), upgrade.RuleGolden, "context deadline exceeded"},
		{"recursion bomb", watBundle(t, priv, "2.0.0", "bomb", golden), upgrade.RuleGolden, "context deadline exceeded"},
		{"bad output buffer", watBundle(t, priv, "2.0.0", "bad_output", golden), upgrade.RuleGolden, "outside guest memory"},
	}
	done := background(t, m, "vipps-ecom", 1)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: tc.bundle}, upgrade.Activation{Mode: upgrade.ModeActivate})
			var re *upgrade.RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("Apply = %+v, %v; want a *RefusedError", info, err)
			}
			if re.Rule != tc.rule || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("refused for %q: %v; want rule %q and %q", re.Rule, err, tc.rule, tc.errHas)
			}
			if v := activeVersion(t, m, "vipps-ecom"); v != "1.0.0" {
				t.Fatalf("active version %s after a refused update", v)
			}
			st, serr := m.Status("vipps-ecom")
			if serr != nil {
				t.Fatal(serr)
			}
			if st.State != upgrade.StateWarn || st.LastError != err.Error() {
				t.Errorf("status %s, last error %q", st.State, st.LastError)
			}
			if len(st.Versions) != 1 {
				t.Errorf("refused version kept: %+v", st.Versions)
			}
			hist, _ := m.History("vipps-ecom")
			if last := hist[len(hist)-1]; last.Action != upgrade.ActionRefused || !strings.Contains(last.Detail, tc.errHas) {
				t.Errorf("last event %+v", last)
			}
		})
	}
	if n := done(); n == 0 {
		t.Fatal("no concurrent call ran")
	}
	if _, err := m.PluginVersion("vipps-ecom", "2.0.0"); !err || activeVersion(t, m, "vipps-ecom") != "1.0.0" {
		t.Error("a refused version is reachable")
	}
}

// TestSwapDrainsOldVersion activates v2 while calls run; with no versions kept, v1 is drained and closed.
func TestSwapDrainsOldVersion(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	pub, priv := newKey(t)
	m := newManager(t, pub, func(c *upgrade.Config) { c.KeepVersions = -1 })
	golden := ecomGolden(t)
	for _, b := range []upgrade.Bundle{
		signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden),
		signedBundle(t, priv, "vipps-ecom", "1.1.0", withCustomSection(mods[ecomPkg], "v1.1"), golden),
	} {
		if _, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: b}, upgrade.Activation{Mode: upgrade.ModeStage}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Activate(ctx, "vipps-ecom", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	v1, _ := m.Plugin("vipps-ecom")
	done := background(t, m, "vipps-ecom", 3)
	for i := range 3 {
		// Swapping back and forth goes below the highest version activated: the operator forces it.
		if err := m.Activate(ctx, "vipps-ecom", "1.1.0", upgrade.Force()); err != nil {
			t.Fatal(err)
		}
		if err := m.Activate(ctx, "vipps-ecom", "1.0.0", upgrade.Force()); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			if err := m.Activate(ctx, "vipps-ecom", "1.1.0", upgrade.Force()); err != nil {
				t.Fatal(err)
			}
		}
	}
	calls := done()
	t.Logf("%d calls during 7 swaps, none failed", calls)
	waitFor(t, "v1 unloaded", func() bool {
		st, _ := m.Status("vipps-ecom")
		for _, v := range st.Versions {
			if v.Version == "1.0.0" {
				return !v.Loaded
			}
		}
		return false
	})
	// A caller still holding the old handle is served by the active version.
	out, err := v1.Call(ctx, initiateInput("late"))
	if err != nil || !bytes.Contains(out, []byte(`"ok":true`)) {
		t.Fatalf("call on an unloaded version's handle: %s, %v", out, err)
	}
	// A session created by 1.0.0 now uses the active version.
	if p, _ := m.PluginVersion("vipps-ecom", "1.0.0"); p.Version() != "1.1.0" {
		t.Errorf("session of an unloaded version served by %s", p.Version())
	}
	waitFor(t, "a drained unload in the history", func() bool {
		hist, _ := m.History("vipps-ecom")
		for _, e := range hist {
			if e.Action == upgrade.ActionUnloaded && strings.HasPrefix(e.Detail, "drained in ") {
				return true
			}
		}
		return false
	})
}

// TestSessionsKeepTheirVersion: with versions kept loaded, a session's later operations go to the version
// that created it; a rolled-back version's sessions go to the active one.
func TestSessionsKeepTheirVersion(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	pub, priv := newKey(t)
	m := newManager(t, pub, nil)
	golden := ecomGolden(t)
	apply := func(ver string, module []byte) {
		t.Helper()
		if _, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundle(t, priv, "vipps-ecom", ver, module, golden)},
			upgrade.Activation{Mode: upgrade.ModeActivate}); err != nil {
			t.Fatal(err)
		}
	}
	apply("1.0.0", mods[ecomPkg])
	apply("1.1.0", withCustomSection(mods[ecomPkg], "v1.1"))
	if p, _ := m.PluginVersion("vipps-ecom", "1.0.0"); p.Version() != "1.0.0" {
		t.Fatalf("session of 1.0.0 served by %s", p.Version())
	}
	if p, _ := m.PluginForNewCheckout("vipps-ecom", "any"); p.Version() != "1.1.0" {
		t.Fatalf("new checkout served by %s", p.Version())
	}
	if err := m.Rollback(ctx, "vipps-ecom"); err != nil {
		t.Fatal(err)
	}
	if v := activeVersion(t, m, "vipps-ecom"); v != "1.0.0" {
		t.Fatalf("active %s after rollback", v)
	}
	if p, _ := m.PluginVersion("vipps-ecom", "1.1.0"); p.Version() != "1.0.0" {
		t.Errorf("session of the rolled-back 1.1.0 served by %s", p.Version())
	}
	if err := m.Rollback(ctx, "vipps-ecom"); !errors.Is(err, upgrade.ErrNoPrevious) {
		t.Errorf("second rollback: %v", err)
	}
	// Re-activating the rolled-back version is an explicit operator decision: refused unless forced.
	if err := m.Activate(ctx, "vipps-ecom", "1.1.0"); !errors.Is(err, upgrade.ErrRefusedVersion) {
		t.Fatalf("re-activating the rolled-back 1.1.0 without force: %v, want ErrRefusedVersion", err)
	}
	if err := m.Activate(ctx, "vipps-ecom", "1.1.0", upgrade.Force()); err != nil {
		t.Fatal(err)
	}
	st, _ := m.Status("vipps-ecom")
	if st.State != upgrade.StateOK || st.ActiveVersion != "1.1.0" || st.LastActivation.IsZero() {
		t.Errorf("status %+v", st)
	}
	var actions []string
	hist, _ := m.History("vipps-ecom")
	for _, e := range hist {
		actions = append(actions, string(e.Action)+" "+e.Version)
	}
	want := "staged 1.0.0,activated 1.0.0,staged 1.1.0,activated 1.1.0,rolled_back 1.0.0,unloaded 1.1.0,activated 1.1.0"
	if got := strings.Join(actions, ","); got != want {
		t.Errorf("history\n got %s\nwant %s", got, want)
	}
	// The same bundle again changes nothing; the same version with other bytes is a conflict.
	info, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden)},
		upgrade.Activation{Mode: upgrade.ModeStage})
	if err != nil || !info.Unchanged {
		t.Errorf("re-apply: %+v, %v", info, err)
	}
	_, err = m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[flakyPkg], golden)},
		upgrade.Activation{Mode: upgrade.ModeStage})
	var re *upgrade.RefusedError
	if !errors.As(err, &re) || re.Rule != upgrade.RuleConflict {
		t.Errorf("conflicting re-apply: %v", err)
	}
}

// TestCanaryRollsBackByItself sends half of the new checkouts to a version that fails on live traffic;
// past the threshold it is rolled back without anyone asking, and the failing calls were contained.
func TestCanaryRollsBackByItself(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	pub, priv := newKey(t)
	m := newManager(t, pub, func(c *upgrade.Config) { c.RollbackErrors = 3; c.RollbackErrorRate = 0.2 })
	golden := ecomGolden(t)
	if _, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden)},
		upgrade.Activation{Mode: upgrade.ModeActivate}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundle(t, priv, "vipps-ecom", "1.1.0", mods[flakyPkg], golden)},
		upgrade.Activation{Mode: upgrade.ModeCanary, Percent: 50}); err != nil {
		t.Fatal(err)
	}
	st, _ := m.Status("vipps-ecom")
	if st.Canary == nil || st.Canary.Version != "1.1.0" || st.Canary.Percent != 50 {
		t.Fatalf("canary %+v", st.Canary)
	}
	done := background(t, m, "vipps-ecom", 1)
	counts := map[string]int{}
	var canaryFailures int
	for i := 0; i < 400; i++ {
		id := fmt.Sprintf("session-%d", i)
		p, _ := m.PluginForNewCheckout("vipps-ecom", id)
		counts[p.Version()]++
		_, err := p.Call(ctx, initiateInput("boom-"+id))
		var ce *plugins.CallError
		switch {
		case p.Version() == "1.1.0" && err != nil:
			if !errors.As(err, &ce) || ce.Kind != plugins.KindExit {
				t.Fatalf("canary failure %v, want an exit", err)
			}
			canaryFailures++
		case err != nil:
			t.Fatalf("call on %s: %v", p.Version(), err)
		}
		if st, _ := m.Status("vipps-ecom"); st.Canary == nil {
			break
		}
	}
	waitFor(t, "the automatic rollback", func() bool { st, _ := m.Status("vipps-ecom"); return st.Canary == nil })
	done()
	t.Logf("routed %v; %d canary calls failed before the rollback", counts, canaryFailures)
	if canaryFailures < 3 {
		t.Errorf("%d canary failures, want at least the threshold of 3", canaryFailures)
	}
	st, _ = m.Status("vipps-ecom")
	if st.State != upgrade.StateWarn || !strings.Contains(st.LastError, "rolled back automatically") || st.ActiveVersion != "1.0.0" {
		t.Errorf("status after rollback: %s %q active %s", st.State, st.LastError, st.ActiveVersion)
	}
	for range 20 {
		if p, _ := m.PluginForNewCheckout("vipps-ecom", fmt.Sprint(counts)); p.Version() != "1.0.0" {
			t.Fatalf("new checkout still sent to %s", p.Version())
		}
	}
	if p, _ := m.PluginVersion("vipps-ecom", "1.1.0"); p.Version() != "1.0.0" {
		t.Errorf("sessions of the rolled-back canary served by %s", p.Version())
	}
}

// TestActivatedVersionRollsBackByItself: a version activated over another is on probation too.
func TestActivatedVersionRollsBackByItself(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	pub, priv := newKey(t)
	m := newManager(t, pub, func(c *upgrade.Config) { c.RollbackErrors = 2; c.RollbackErrorRate = 0.5 })
	golden := ecomGolden(t)
	for _, b := range []upgrade.Bundle{
		signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden),
		signedBundle(t, priv, "vipps-ecom", "1.1.0", mods[flakyPkg], golden),
	} {
		if _, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: b}, upgrade.Activation{Mode: upgrade.ModeActivate}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		p, _ := m.Plugin("vipps-ecom")
		if _, err := p.Call(ctx, initiateInput(fmt.Sprint("boom-", i))); err == nil {
			t.Fatal("boom call succeeded")
		}
	}
	waitFor(t, "the automatic rollback", func() bool { p, _ := m.Plugin("vipps-ecom"); return p.Version() == "1.0.0" })
	hist, _ := m.History("vipps-ecom")
	var rb *upgrade.Event
	for i := range hist {
		if hist[i].Action == upgrade.ActionRolledBack {
			rb = &hist[i]
		}
	}
	if rb == nil || rb.Version != "1.0.0" || rb.From != "1.1.0" || !strings.Contains(rb.Detail, "2 of 2 calls failed") {
		t.Errorf("rollback event %+v in %+v", rb, hist)
	}
}

// TestShadowReportsDifferences runs the flaky version in shadow: live answers come from the active
// version, and the shadow's differences and failures are counted, never acted on.
func TestShadowReportsDifferences(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	pub, priv := newKey(t)
	m := newManager(t, pub, nil)
	golden := ecomGolden(t)
	if _, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden)},
		upgrade.Activation{Mode: upgrade.ModeActivate}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: signedBundle(t, priv, "vipps-ecom", "1.1.0", mods[flakyPkg], golden)},
		upgrade.Activation{Mode: upgrade.ModeStage}); err != nil {
		t.Fatal(err)
	}
	if err := m.Shadow(ctx, "vipps-ecom", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	refs := []string{"same-1", "diff-1", "boom-1", "same-2"}
	for _, ref := range refs {
		p, _ := m.Plugin("vipps-ecom")
		out, err := p.Call(ctx, initiateInput(ref))
		if err != nil || p.Version() != "1.0.0" || bytes.Contains(out, []byte("shadow-difference")) {
			t.Fatalf("live call %s on %s: %s, %v", ref, p.Version(), out, err)
		}
		// One at a time, so the shadow's queue never drops one.
		waitFor(t, "the shadow", func() bool {
			st, _ := m.Status("vipps-ecom")
			return st.Shadow.Compared+st.Shadow.Dropped >= uint64(len(refs[:slices.Index(refs, ref)+1]))
		})
	}
	st, _ := m.Status("vipps-ecom")
	sh := st.Shadow
	if sh.Compared != 4 || sh.Differed != 1 || sh.Errors != 1 || len(sh.Recent) != 2 {
		t.Fatalf("shadow status %+v", sh)
	}
	if d := sh.Recent[0]; d.Op != "build_initiate" || len(d.Pointers) != 1 || d.Pointers[0] != "/request/path" {
		t.Errorf("difference %+v", d)
	}
	if !strings.Contains(sh.Recent[1].Error, "exit") {
		t.Errorf("shadow failure %+v", sh.Recent[1])
	}
	if err := m.StopShadow("vipps-ecom"); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.Status("vipps-ecom"); st.Shadow != nil || st.ActiveVersion != "1.0.0" {
		t.Errorf("after stop: %+v", st)
	}
}

// changeExpected returns golden with one vector's expected output edited.
func changeExpected(t *testing.T, golden []byte, vector, old, new string) []byte {
	t.Helper()
	vs, err := upgrade.ParseGolden(golden)
	if err != nil {
		t.Fatal(err)
	}
	changed := false
	for i, v := range vs {
		if v.Name == vector && bytes.Contains(v.Output, []byte(old)) {
			vs[i].Output = bytes.Replace(v.Output, []byte(old), []byte(new), 1)
			changed = true
		}
	}
	if !changed {
		t.Fatalf("no vector %s with %s to change", vector, old)
	}
	b, err := json.Marshal(upgrade.GoldenFile{Vectors: vs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHealthCountsWhatUsersSee: errors answered as data that are the plugin's fault count against a
// version on probation and roll it back; the provider's refusals (provider_error) do not.
func TestHealthCountsWhatUsersSee(t *testing.T) {
	tests := []struct {
		name       string
		prefix     string
		rolledBack bool
	}{
		{name: "plugin_error", prefix: "polite", rolledBack: true},
		{name: "provider_error", prefix: "refuse", rolledBack: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			mods := modules(t)
			pub, priv := newKey(t)
			m := newManager(t, pub, func(c *upgrade.Config) { c.RollbackErrors = 5; c.RollbackErrorRate = 0.2 })
			golden := ecomGolden(t)
			for _, b := range []upgrade.Bundle{
				signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden),
				signedBundle(t, priv, "vipps-ecom", "1.1.0", mods[flakyPkg], golden),
			} {
				if _, err := m.Apply(ctx, upgrade.Update{Source: "test", Bundle: b}, upgrade.Activation{Mode: upgrade.ModeActivate}); err != nil {
					t.Fatal(err)
				}
			}
			const calls = 40
			for i := range calls {
				p, _ := m.Plugin("vipps-ecom")
				if p.Version() != "1.1.0" {
					break
				}
				out, err := p.Call(ctx, initiateInput(fmt.Sprint(tc.prefix, "-", i)))
				if err != nil || !strings.Contains(string(out), `"ok":false`) {
					if cur, _ := m.Plugin("vipps-ecom"); tc.rolledBack && cur.Version() == "1.0.0" {
						break // the rollback landed between looking up the version and the call
					}
					t.Fatalf("call %d: %s, %v; want an error as data", i, out, err)
				}
			}
			if tc.rolledBack {
				waitFor(t, "the automatic rollback", func() bool { p, _ := m.Plugin("vipps-ecom"); return p.Version() == "1.0.0" })
				hist, _ := m.History("vipps-ecom")
				if !slices.ContainsFunc(hist, func(e upgrade.Event) bool {
					return e.Action == upgrade.ActionRolledBack && e.From == "1.1.0" && strings.Contains(e.Detail, "calls failed")
				}) {
					t.Errorf("no automatic rollback of 1.1.0 with its reason in %+v", hist)
				}
				return
			}
			st, _ := m.Status("vipps-ecom")
			if st.ActiveVersion != "1.1.0" {
				t.Fatalf("active %s: provider refusals rolled the version back", st.ActiveVersion)
			}
			for _, v := range st.Versions {
				if v.Version == "1.1.0" && (v.Calls != calls || v.Failed != 0) {
					t.Errorf("1.1.0 calls %d failed %d, want %d and 0", v.Calls, v.Failed, calls)
				}
			}
		})
	}
}

// TestVersionsOnlyGoUp: a version lower than one activated before is refused unless forced; prereleases
// sort below their release.
func TestVersionsOnlyGoUp(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	pub, priv := newKey(t)
	m := newManager(t, pub, nil)
	golden := ecomGolden(t)
	apply := func(ver string, act upgrade.Activation) error {
		_, err := m.Apply(ctx, upgrade.Update{Source: "test",
			Bundle: signedBundle(t, priv, "vipps-ecom", ver, withCustomSection(mods[ecomPkg], ver), golden)}, act)
		return err
	}
	activate := upgrade.Activation{Mode: upgrade.ModeActivate}
	for _, step := range []struct {
		ver  string
		act  upgrade.Activation
		want error
	}{
		{"1.2.0-rc.1", activate, nil},
		{"1.2.0", activate, nil},
		{"1.2.0-rc.2", activate, upgrade.ErrNotNewer},
		{"1.1.9", upgrade.Activation{Mode: upgrade.ModeCanary, Percent: 10}, upgrade.ErrNotNewer},
		{"1.1.9", upgrade.Activation{Mode: upgrade.ModeActivate, Force: true}, nil},
	} {
		if err := apply(step.ver, step.act); !errors.Is(err, step.want) && (err != nil || step.want != nil) {
			t.Fatalf("%s %+v: %v, want %v", step.ver, step.act, err, step.want)
		}
	}
	if v := activeVersion(t, m, "vipps-ecom"); v != "1.1.9" {
		t.Errorf("active %s, want the forced 1.1.9", v)
	}
	if st, _ := m.Status("vipps-ecom"); st.HighestActivated != "1.2.0" {
		t.Errorf("highest activated %s, want 1.2.0", st.HighestActivated)
	}
}
