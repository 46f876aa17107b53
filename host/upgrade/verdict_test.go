package upgrade_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/upgrade"
	"github.com/kassehq/kasse/plugin/plugintest"
)

// stagedDetail returns the detail of the plugin's last "staged" event.
func stagedDetail(t *testing.T, m *upgrade.Manager, name string) string {
	t.Helper()
	h, err := m.History(name)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Action == upgrade.ActionStaged {
			return h[i].Detail
		}
	}
	t.Fatalf("no staged event in %+v", h)
	return ""
}

// TestGateVerdictRemembered checks that a bundle that passed the gate does not run its vectors again when
// kasse starts with the same plugins dir, and that anything the verdict depends on makes it run again.
func TestGateVerdictRemembered(t *testing.T) {
	ctx := context.Background()
	mods := modules(t)
	pub, priv := newKey(t)
	golden := ecomGolden(t)
	const ran, skipped = "golden vectors and the conformance vectors", "verdict remembered by digest"

	tests := []struct {
		name string
		// change edits the directory between the first and the second start.
		change func(t *testing.T, dir string)
		want   string
	}{
		{"same bundle", func(*testing.T, string) {}, skipped},
		{"changed module", func(t *testing.T, dir string) {
			writeBundle(t, dir, "vipps-ecom-1.0.0", signedBundle(t, priv, "vipps-ecom", "1.0.0", withCustomSection(mods[ecomPkg], "x"), golden))
		}, ran},
		{"changed golden vectors", func(t *testing.T, dir string) {
			g := []byte(strings.Replace(string(golden), "{", "{ ", 1)) // same vectors, another digest
			writeBundle(t, dir, "vipps-ecom-1.0.0", signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], g))
		}, ran},
		{"verdict file unreadable", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, upgrade.VerdictFileName), []byte("{not json"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, ran},
		{"verdict file removed", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, upgrade.VerdictFileName)); err != nil {
				t.Fatal(err)
			}
		}, ran},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeBundle(t, dir, "vipps-ecom-1.0.0", signedBundle(t, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden))
			edit := func(c *upgrade.Config) { c.Dir = dir }

			first := newManager(t, pub, edit)
			if err := first.LoadDir(ctx); err != nil {
				t.Fatal(err)
			}
			if d := stagedDetail(t, first, "vipps-ecom"); !strings.Contains(d, ran) {
				t.Fatalf("first start: staged %q, want the gate run", d)
			}
			if err := first.Close(ctx); err != nil {
				t.Fatal(err)
			}
			tc.change(t, dir)

			second := newManager(t, pub, edit)
			if err := second.LoadDir(ctx); err != nil {
				t.Fatal(err)
			}
			if v := activeVersion(t, second, "vipps-ecom"); v != "1.0.0" {
				t.Fatalf("active %q after the restart, want 1.0.0", v)
			}
			if d := stagedDetail(t, second, "vipps-ecom"); !strings.Contains(d, tc.want) {
				t.Errorf("second start: staged %q, want %q", d, tc.want)
			}
			p, ok := second.Plugin("vipps-ecom")
			if !ok {
				t.Fatal("no plugin after the restart")
			}
			if _, err := p.Call(ctx, initiateInput("r1")); err != nil {
				t.Errorf("call after the restart: %v", err)
			}
		})
	}
}

// BenchmarkStartWarmCache measures what a kasse start spends on its plugins: a new Manager loading a plugins
// dir with both shipped plugins (vipps-ecom, vipps-epayment) until Ready, with a warm compilation cache.
// "gate" forgets the verdicts before every start, so that each bundle runs its vectors as before the
// verdict file existed; "remembered" keeps them. It reports ms per start, over at most ten starts.
func BenchmarkStartWarmCache(b *testing.B) {
	ctx := context.Background()
	mods := modules(b)
	pub, priv := newKey(b)
	root := plugintest.ModuleRoot(b)
	epGolden, err := upgrade.ReadGoldenDir(filepath.Join(root, "plugin", "vippsepayment", "testdata", "golden"))
	if err != nil {
		b.Fatal(err)
	}
	epModule := plugintest.Build(b, "./plugin/vippsepayment")
	dir := b.TempDir()
	writeBundleB(b, dir, "vipps-ecom-1.0.0", signedBundle(b, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], ecomGolden(b)))
	ep := upgrade.NewManifest("vipps-epayment", "1.0.0", epModule, epGolden, epaymentOps(b, epGolden)).Encode()
	writeBundleB(b, dir, "vipps-epayment-1.0.0", upgrade.Bundle{Stem: "vipps-epayment-1.0.0", Module: epModule, Manifest: ep,
		Signature: upgrade.Sign(ep, priv), Golden: epGolden})
	start := func(b *testing.B) {
		m := newManager(b, pub, func(c *upgrade.Config) { c.Dir = dir })
		if err := m.LoadDir(ctx); err != nil {
			b.Fatal(err)
		}
		if err := m.Ready(); err != nil {
			b.Fatal(err)
		}
		if err := m.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	start(b) // warm the compilation cache and write the verdicts
	for _, mode := range []string{"gate", "remembered"} {
		b.Run(mode, func(b *testing.B) {
			// At most ten starts, whatever -benchtime says: a start takes a few hundred milliseconds, and make
			// bench runs every benchmark with one -benchtime.
			var total time.Duration
			starts := min(b.N, 10)
			for range starts {
				if mode == "gate" {
					b.StopTimer()
					if err := os.Remove(filepath.Join(dir, upgrade.VerdictFileName)); err != nil && !os.IsNotExist(err) {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				t0 := time.Now()
				start(b)
				total += time.Since(t0)
			}
			b.ReportMetric(float64(total.Microseconds())/1e3/float64(starts), "ms/start")
		})
	}
}

// epaymentOps are the operations the ePayment golden vectors use.
func epaymentOps(b *testing.B, golden []byte) []string {
	ops, err := upgrade.GoldenOps(golden)
	if err != nil {
		b.Fatal(err)
	}
	return ops
}

// writeBundleB is writeBundle for a benchmark.
func writeBundleB(b *testing.B, dir, stem string, bu upgrade.Bundle) {
	for suffix, data := range map[string][]byte{upgrade.SuffixModule: bu.Module, upgrade.SuffixManifest: bu.Manifest,
		upgrade.SuffixSignature: bu.Signature, upgrade.SuffixGolden: bu.Golden} {
		if data == nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, stem+suffix), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}
