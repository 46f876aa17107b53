package host

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/host/outbound"
)

// metricsHandler serves GET /metrics in the Prometheus text exposition format: the plugin versions' call
// and failure counters and instance gauges, and the platform-notification and webhook-inbox queues. It
// holds no secrets and no personal data, so it needs no key; it is served on the operations listener only.
func (s *Server) metricsHandler(c *gin.Context) {
	c.Header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	c.Status(http.StatusOK)
	s.writeMetrics(c.Request.Context(), c.Writer)
}

func (s *Server) writeMetrics(ctx context.Context, w io.Writer) {
	type sample struct {
		labels string
		value  float64
	}
	families := map[string][]sample{}
	help := map[string]string{}
	kind := map[string]string{}
	add := func(name, typ, text, labels string, v float64) {
		help[name], kind[name] = text, typ
		families[name] = append(families[name], sample{labels, v})
	}

	add("kasse_plugin_bundles_skipped_total", "counter", "Bundles in plugins.dir refused or skipped as quarantined.", "", float64(s.plugins.SkippedBundles()))
	add("kasse_plugin_state_errors_total", "counter", "Plugin state file reads or writes that failed.", "", float64(s.plugins.StateErrors()))
	for _, st := range s.plugins.Statuses() {
		for _, q := range st.Quarantined {
			add("kasse_plugin_quarantined", "gauge", "Plugin versions rolled back, which serve again only when forced.",
				fmt.Sprintf(`plugin=%q,version=%q`, st.Plugin, q.Version), 1)
		}
		for _, v := range st.Versions {
			l := fmt.Sprintf(`plugin=%q,version=%q,state=%q`, v.Plugin, v.Version, v.State)
			add("kasse_plugin_calls_total", "counter", "Calls to a plugin version.", l, float64(v.Calls))
			add("kasse_plugin_failures_total", "counter", "Failed calls to a plugin version (traps, timeouts, bad or refused output, errors that are the plugin's fault; not provider refusals).", l, float64(v.Failed))
			if v.Runtime != nil {
				add("kasse_plugin_instances", "gauge", "Live wasm instances of a plugin version.", l, float64(v.Runtime.InstancesLive))
				add("kasse_plugin_instances_replaced_total", "counter", "Instances discarded after a failure.", l, float64(v.Runtime.Replaced))
				add("kasse_plugin_peak_memory_pages", "gauge", "Largest linear memory seen, in 64 KiB pages.", l, float64(v.Runtime.PeakMemoryPages))
				add("kasse_plugin_instances_max", "gauge", "Most wasm instances the pool of a plugin version may run.", l, float64(v.Runtime.InstancesMax))
				if v.Runtime.InstancesLive > 0 {
					add("kasse_plugin_instance_memory_bytes", "gauge", "Linear memory per live wasm instance of a plugin version (average, as of each one's last call).", l, float64(v.Runtime.MemoryPages)*65536/float64(v.Runtime.InstancesLive))
				}
			}
		}
	}
	for k, n := range s.mismatches.snapshot() {
		add("kasse_settlement_mismatches_total", "counter", "Disagreements between a merchant's settlement ledger and kasse, by kind (unknown-reference, amount-differs, missing-from-ledger).",
			fmt.Sprintf(`merchant=%q,kind=%q`, k.merchant, k.kind), float64(n))
	}
	queue := func(name, what string, st outbound.Stats, err error) {
		if err != nil {
			return
		}
		for _, r := range []struct {
			result string
			n      int64
		}{{"enqueued", st.Enqueued}, {"delivered", st.Delivered}, {"retried", st.Retried}, {"given_up", st.GivenUp}} {
			add(name+"_total", "counter", what+" by outcome (this instance).", fmt.Sprintf(`result=%q`, r.result), float64(r.n))
		}
		add(name+"_pending", "gauge", what+" waiting to be sent (all instances).", "", float64(st.Pending))
	}
	fails := s.authFails.snapshot()
	routes := make([]string, 0, len(fails))
	for r := range fails {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	for _, route := range routes {
		add("kasse_auth_failures_total", "counter", "Requests refused for a missing or wrong API key, by route.",
			fmt.Sprintf(`route=%q`, route), float64(fails[route]))
	}
	nst, err := s.Notifier.Stats(ctx)
	queue("kasse_platform_updates", "Status updates to shop platforms", nst, err)
	ist, err := s.Hooks.InboxStats(ctx)
	queue("kasse_hook_inbox", "Platform webhook deliveries acknowledged first", ist, err)
	add("kasse_checkout_divergences_total", "counter",
		"Sessions whose amounts differed from the provider's and were made equal to them (this instance).", "",
		float64(s.Service.Diverged()))

	names := make([]string, 0, len(families))
	for n := range families {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", n, help[n], n, kind[n])
		for _, smp := range families[n] {
			if smp.labels == "" {
				fmt.Fprintf(&b, "%s %g\n", n, smp.value)
			} else {
				fmt.Fprintf(&b, "%s{%s} %g\n", n, smp.labels, smp.value)
			}
		}
	}
	_, _ = io.WriteString(w, b.String())
}

// mismatchCounts counts the settlement mismatches the follower found, by merchant and kind.
type mismatchCounts struct {
	mu sync.Mutex
	n  map[mismatchKey]uint64
}

type mismatchKey struct{ merchant, kind string }

func (m *mismatchCounts) add(merchant, kind string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[mismatchKey]uint64{}
	}
	m.n[mismatchKey{merchant, kind}]++
}

func (m *mismatchCounts) snapshot() map[mismatchKey]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.n)
}
