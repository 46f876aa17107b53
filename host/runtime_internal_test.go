package host

import (
	"reflect"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/plugins"
)

// TestRuntimeConfigFromFile: the plugins section's settings reach the plugin runtime, each one through
// its own With method; the pool's idle window among them.
func TestRuntimeConfigFromFile(t *testing.T) {
	base := func() plugins.RuntimeConfig {
		return plugins.NewRuntimeConfig().WithCallTimeout(250 * time.Millisecond).WithMemoryLimitPages(256).
			WithCompilationCacheDir("/cache")
	}
	section := config.Plugins{CallTimeout: config.Duration(250 * time.Millisecond), MemoryLimitPages: 256, CacheDir: "/cache"}
	for _, tc := range []struct {
		name string
		set  func(*config.Plugins)
		want plugins.RuntimeConfig
	}{
		{"defaults", func(*config.Plugins) {}, base()},
		{"poolSize", func(p *config.Plugins) { p.PoolSize = 3 }, base().WithPoolSize(3)},
		{"poolIdle", func(p *config.Plugins) { p.PoolIdle = config.Duration(7 * time.Second) }, base().WithPoolIdle(7 * time.Second)},
	} {
		p := section
		tc.set(&p)
		if got := runtimeConfig(p); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: runtime config %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if reflect.DeepEqual(base().WithPoolIdle(7*time.Second), base()) {
		t.Fatal("WithPoolIdle changes nothing the comparison can see")
	}
}
