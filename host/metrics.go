package host

import (
	"context"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/internal/tracing"
	"github.com/kassehq/kasse/host/outbound"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/provider"
	"github.com/kassehq/kasse/plugin/abi"
)

// The figures other parts keep (plugin versions, queues, divergences) are read at each scrape by
// serverCollector; what happens during requests is counted by host/telemetry's instruments as it happens.
// Everything is registered in the Server's own registry, served on the operations listener only. It holds
// no secrets and no personal data: labels are plugin names and versions, merchant ids, routes, states.

// queueTimeout bounds how long a scrape waits for the queue figures (they may live in Redis).
const queueTimeout = 2 * time.Second

// serverCollector reads the Server's figures at each scrape. It is unchecked (Describe sends nothing):
// the series depend on which plugin versions are loaded.
type serverCollector struct{ s *Server }

func (serverCollector) Describe(chan<- *prometheus.Desc) {}

func (c serverCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	emit := func(name, help string, typ prometheus.ValueType, v float64, labels ...string) {
		var names, values []string
		for i := 0; i+1 < len(labels); i += 2 {
			names, values = append(names, labels[i]), append(values, labels[i+1])
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, names, nil), typ, v, values...)
	}
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue
	if r, ok := s.Store.(interface{ UnreplicatedWrites() uint64 }); ok {
		emit("kasse_store_unreplicated_writes_total", "Store writes that fewer replicas than store.redis.waitReplicas acknowledged in time.", counter, float64(r.UnreplicatedWrites()))
	}
	emit("kasse_plugin_bundles_skipped_total", "Bundles in plugins.dir refused or skipped as quarantined.", counter, float64(s.plugins.SkippedBundles()))
	emit("kasse_plugin_state_errors_total", "Plugin state file reads or writes that failed.", counter, float64(s.plugins.StateErrors()))
	for _, st := range s.plugins.Statuses() {
		for _, q := range st.Quarantined {
			emit("kasse_plugin_quarantined", "Plugin versions rolled back, which serve again only when forced.", gauge, 1,
				"plugin", st.Plugin, "version", q.Version)
		}
		for _, v := range st.Versions {
			l := []string{"plugin", v.Plugin, "version", v.Version, "state", string(v.State)}
			emit("kasse_plugin_calls_total", "Calls to a plugin version.", counter, float64(v.Calls), l...)
			emit("kasse_plugin_failures_total", "Failed calls to a plugin version (traps, timeouts, bad or refused output, errors that are the plugin's fault; not provider refusals).", counter, float64(v.Failed), l...)
			if r := v.Runtime; r != nil {
				emit("kasse_plugin_instances", "Live wasm instances of a plugin version.", gauge, float64(r.InstancesLive), l...)
				emit("kasse_plugin_instances_replaced_total", "Instances discarded after a failure.", counter, float64(r.Replaced), l...)
				emit("kasse_plugin_instances_grown_total", "Instances started because a caller found none free (the pool growing on demand).", counter, float64(r.Grown), l...)
				emit("kasse_plugin_instances_shrunk_total", "Idle instances closed when the pool shrank.", counter, float64(r.Shrunk), l...)
				emit("kasse_plugin_peak_memory_pages", "Largest linear memory seen, in 64 KiB pages.", gauge, float64(r.PeakMemoryPages), l...)
				emit("kasse_plugin_instances_max", "Most wasm instances the pool of a plugin version may run.", gauge, float64(r.InstancesMax), l...)
				if r.InstancesLive > 0 {
					emit("kasse_plugin_instance_memory_bytes", "Linear memory per live wasm instance of a plugin version (average, as of each one's last call).", gauge, float64(r.MemoryPages)*65536/float64(r.InstancesLive), l...)
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), queueTimeout)
	defer cancel()
	queue := func(name, what string, st outbound.Stats, err error) {
		if err != nil {
			return // the store is unreachable: leave the queue out rather than report zeros
		}
		for _, r := range []struct {
			result string
			n      int64
		}{{"enqueued", st.Enqueued}, {"delivered", st.Delivered}, {"retried", st.Retried}, {"given_up", st.GivenUp}} {
			emit(name+"_total", what+" by outcome (this instance).", counter, float64(r.n), "result", r.result)
		}
		emit(name+"_pending", what+" waiting to be sent (all instances).", gauge, float64(st.Pending))
	}
	nst, err := s.Notifier.Stats(ctx)
	queue("kasse_platform_updates", "Status updates to shop platforms", nst, err)
	ist, err := s.Hooks.InboxStats(ctx)
	queue("kasse_hook_inbox", "Platform webhook deliveries acknowledged first", ist, err)
	emit("kasse_checkout_divergences_total", "Sessions whose amounts differed from the provider's and were made equal to them (this instance).",
		counter, float64(s.Service.Diverged()))
}

// newMismatches is kasse_settlement_mismatches_total, which the settlement follower adds to.
func newMismatches() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kasse_settlement_mismatches_total",
		Help: "Disagreements between a merchant's settlement ledger and kasse, by kind (unknown-reference, amount-differs, missing-from-ledger).",
	}, []string{"merchant", "kind"})
}

// newOrderSessionCounters are kasse_platform_updates_withheld_total and
// kasse_payments_outside_current_session_total, which the notifier adds to at delivery.
func newOrderSessionCounters() (withheld, stalePaid *prometheus.CounterVec) {
	withheld = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kasse_platform_updates_withheld_total",
		Help: "Status updates (failed, cancelled before capture) not sent because their session no longer speaks for the shop's order, by status.",
	}, []string{"merchant", "status"})
	stalePaid = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kasse_payments_outside_current_session_total",
		Help: "Payments taken by a session that was not its shop order's current checkout (the order may be paid twice; see the console's needs-attention filter).",
	}, []string{"merchant"})
	return withheld, stalePaid
}

// countTransition counts a session entering a state: every change whose state differs from before's, and a new
// session's first state.
func (s *Server) countTransition(before, after *payment.Session) {
	if before == nil || before.State != after.State {
		s.tel.Transition(after.Merchant, string(after.State))
	}
}

func (s *Server) pluginCall(plugin, version string, op abi.Op, d time.Duration, err error) {
	s.tel.PluginCall(plugin, version, string(op), d, err)
}

// observedProvider times every request the checkout service sends to the provider, and traces it.
type observedProvider struct {
	next checkout.Provider
	s    *Server
}

func (p observedProvider) Do(ctx context.Context, call provider.Call) (*abi.Response, error) {
	op := "other"
	if call.Request != nil {
		op = call.Request.Method + " " + pathTemplate(call.Request.Path)
	}
	ctx, span := tracing.Start(ctx, "provider.request")
	if span.IsRecording() {
		span.SetAttributes(attribute.String("kasse.provider.operation", op), attribute.String("kasse.merchant", call.Endpoint.MerchantID),
			attribute.String("kasse.plugin", call.PluginName), attribute.String("kasse.plugin.version", call.PluginVersion))
	}
	start := time.Now()
	resp, err := p.next.Do(ctx, call)
	status := 0
	if resp != nil {
		status = resp.Status
	}
	p.s.tel.ProviderCall(op, status, time.Since(start))
	if span.IsRecording() && status > 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	tracing.End(span, err)
	return resp, err
}

// word matches a path segment that is a word of the API rather than an id: lowercase letters and dashes,
// or a version such as v2.
var word = regexp.MustCompile(`^(v[0-9]+|[a-z][a-z-]*)$`)

// pathTemplate replaces the ids in a provider path with {id}, so that the operation label names the
// endpoint ("/ecomm/v2/payments/{id}/capture") and its values stay few. kasse's order ids are 26
// characters and may by chance be all letters, hence the length rule.
func pathTemplate(p string) string {
	p, _, _ = strings.Cut(p, "?")
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if seg != "" && (len(seg) > 20 || !word.MatchString(seg)) {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}
