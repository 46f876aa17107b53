package plugins_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/plugins"
)

// TestRewriteCache checks that the deadline rewrite is kept in the compilation cache directory and read
// back by the next Load, and that a cached file that does not match its digest is ignored: the module is
// rewritten again and its deadline checks still stop a spinning guest.
func TestRewriteCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	load := func(t *testing.T, version string) *plugins.Plugin {
		t.Helper()
		r, err := plugins.NewRuntime(ctx, plugins.NewRuntimeConfig().
			WithPoolSize(1).
			WithCallTimeout(50*time.Millisecond).
			WithCompilationCacheDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close(ctx) })
		p, err := r.Load(ctx, "spin", version, watModule(t, "spin"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	spins := func(t *testing.T, p *plugins.Plugin) {
		t.Helper()
		_, err := p.Call(ctx, []byte(`{}`))
		var ce *plugins.CallError
		if !errors.As(err, &ce) || ce.Kind != plugins.KindTimeout {
			t.Fatalf("spinning call: %v, want a timeout", err)
		}
	}
	for _, tc := range []struct {
		name   string
		before func(t *testing.T)
		cached bool
	}{
		{name: "first load rewrites", cached: false},
		{name: "second load reads the rewrite", cached: true},
		{name: "a damaged rewrite is ignored", cached: false, before: func(t *testing.T) {
			files, _ := filepath.Glob(filepath.Join(dir, "kasse-deadline-checks", "*"))
			if len(files) != 1 {
				t.Fatalf("cached rewrites %v, want one", files)
			}
			data, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)-1] ^= 0xff
			if err := os.WriteFile(files[0], data, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "and written again", cached: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before(t)
			}
			p := load(t, "1.0.0")
			if got := p.LoadTimes().RewriteCached; got != tc.cached {
				t.Fatalf("RewriteCached %v, want %v", got, tc.cached)
			}
			spins(t, p)
		})
	}
}
