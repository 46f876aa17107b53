package checkout

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/internal/loadbench"
	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
	"github.com/kassehq/kasse/plugin/vippsecom/ecom"
	"github.com/kassehq/kasse/plugin/vippsepayment/epayment"
)

// boundaryPlugins are the two shipped plugins with the golden vector the benchmark uses for each hot-path
// operation: the realistic, successful case of each (a session with order lines, a customer, a provider
// answer or callback of the size Vipps sends).
var boundaryPlugins = []struct {
	name, pkg, dir string
	handle         func(*abi.Input) *abi.Output
	vectors        map[abi.Op]string
}{
	{"vipps-ecom", "./plugin/vippsecom", "plugin/vippsecom/testdata/golden", ecom.Handle, map[abi.Op]string{
		abi.OpBuildInitiate:   "build_initiate-regular",
		abi.OpReadInitiate:    "read_initiate-ok",
		abi.OpReadCapture:     "read_capture-partial",
		abi.OpBuildCapture:    "build_capture-partial",
		abi.OpBuildRefund:     "build_refund-partial",
		abi.OpReadRefund:      "read_refund-partial",
		abi.OpBuildCancel:     "build_cancel-authorized",
		abi.OpReadCancel:      "read_cancel-after-partial-capture",
		abi.OpReadCallback:    "read_callback-reserve-express",
		abi.OpReadDetails:     "read_details-partly-captured",
		abi.OpShippingOptions: "shipping_options-oslo-norway-postcode",
	}},
	{"vipps-epayment", "./plugin/vippsepayment", "plugin/vippsepayment/testdata/golden", epayment.Handle, map[abi.Op]string{
		abi.OpBuildInitiate: "build_initiate-push-message",
		abi.OpReadInitiate:  "read_initiate-web-redirect",
		abi.OpReadCapture:   "read_capture-partial",
		abi.OpBuildCapture:  "build_capture-partial",
		abi.OpBuildRefund:   "build_refund-partial",
		abi.OpReadRefund:    "read_refund-partial",
		abi.OpBuildCancel:   "build_cancel-authorized",
		abi.OpReadCancel:    "read_cancel-authorized",
		abi.OpReadCallback:  "read_callback-authorized",
		abi.OpReadDetails:   "read_details-partly-captured",
	}},
}

// boundaryOps is the order the benchmark runs the operations in.
var boundaryOps = []abi.Op{abi.OpBuildInitiate, abi.OpReadInitiate, abi.OpBuildCapture, abi.OpReadCapture, abi.OpBuildRefund,
	abi.OpReadRefund, abi.OpBuildCancel, abi.OpReadCancel, abi.OpReadCallback, abi.OpReadDetails, abi.OpShippingOptions}

// BenchmarkPluginBoundary measures every hot-path plugin operation of both plugins, as kasse runs it:
//
//   - native: the plugin's handler as idiomatic native Go would run it, decoding the input JSON and
//     encoding the output with encoding/json, and the host decoding that output (the baseline). The
//     handlers read provider bodies with sdk.Scanner, which speeds the native read operations up too; run
//     with -tags kasse_stdjson for the idiomatic baseline of the reads, which read bodies with
//     encoding/json (the wasm module is built without the tag either way);
//   - wasm: callPlugin, the host's whole boundary: encode the abi.Input, call the pooled instance of the
//     built module (deadline checks on), check and decode the output.
//
// Each reports p50-µs and p99-µs of single calls; wasm also reports cpu-µs/op, the process's CPU time per
// call, which includes the instance's yields (the guest's garbage collection) that run between calls.
func BenchmarkPluginBoundary(b *testing.B) {
	root := plugintest.ModuleRoot(b)
	ctx := context.Background()
	for _, pl := range boundaryPlugins {
		b.Run(pl.name, func(b *testing.B) {
			plugin := loadBenchPlugin(b, pl.name, pl.pkg)
			for _, op := range boundaryOps {
				vec, ok := pl.vectors[op]
				if !ok {
					continue
				}
				raw, err := os.ReadFile(filepath.Join(root, pl.dir, vec+".input.json"))
				if err != nil {
					b.Fatal(err)
				}
				var in abi.Input
				if err := json.Unmarshal(raw, &in); err != nil {
					b.Fatal(err)
				}
				if in.Op != op {
					b.Fatalf("%s is a %s vector, want %s", vec, in.Op, op)
				}
				compact, err := json.Marshal(&in)
				if err != nil {
					b.Fatal(err)
				}
				// Both sides start from the same bytes: the golden file is indented for reading, but a
				// provider's body (the raw callback or response) reaches kasse compact, as in compact.
				in = abi.Input{}
				if err := json.Unmarshal(compact, &in); err != nil {
					b.Fatal(err)
				}
				b.Run(string(op), func(b *testing.B) {
					b.Run("native", func(b *testing.B) {
						d := make([]time.Duration, 0, b.N)
						b.ReportAllocs()
						for b.Loop() {
							start := time.Now()
							var in abi.Input
							if err := json.Unmarshal(compact, &in); err != nil {
								b.Fatal(err)
							}
							outRaw, err := json.Marshal(pl.handle(&in))
							if err != nil {
								b.Fatal(err)
							}
							var out abi.Output
							if err := json.Unmarshal(outRaw, &out); err != nil || !out.OK {
								b.Fatalf("%s: %v %s", vec, err, outRaw)
							}
							d = append(d, time.Since(start))
						}
						reportPercentiles(b, d)
					})
					b.Run("call", func(b *testing.B) {
						compact := plugins.ConvertInput(compact, plugin.ABIVersion()) // as callPlugin sends it
						d := make([]time.Duration, 0, b.N)
						for b.Loop() {
							start := time.Now()
							if _, err := plugin.Call(ctx, compact); err != nil {
								b.Fatal(err)
							}
							d = append(d, time.Since(start))
						}
						reportPercentiles(b, d)
					})
					b.Run("wasm", func(b *testing.B) {
						for range 50 { // warm the pool's instances
							if _, err := callPlugin(ctx, plugin, &in); err != nil {
								b.Fatal(err)
							}
						}
						d := make([]time.Duration, 0, b.N)
						b.ReportAllocs()
						cpu0 := loadbench.ProcessCPU()
						for b.Loop() {
							start := time.Now()
							out, err := callPlugin(ctx, plugin, &in)
							if err != nil || !out.OK {
								b.Fatalf("%s: %v %+v", vec, err, out)
							}
							d = append(d, time.Since(start))
						}
						// The CPU time per call includes what no single call's duration shows: the
						// instance's yields (the guest's garbage collection) run in the background.
						b.ReportMetric(float64((loadbench.ProcessCPU()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
						reportPercentiles(b, d)
					})
				})
			}
		})
	}
}

// loadBenchPlugin builds and loads a plugin package with the host's default runtime configuration, except
// the call timeout.
func loadBenchPlugin(b *testing.B, name, pkg string) Plugin {
	b.Helper()
	wasm := plugintest.Build(b, pkg)
	// A generous deadline: a stall of a busy machine shows in p99 rather than failing the benchmark.
	rt := plugintest.Runtime(b, plugins.NewRuntimeConfig().WithCallTimeout(time.Second))
	p, err := rt.Load(context.Background(), name, "0.0.0-bench", wasm)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// reportPercentiles reports the median and 99th percentile of the recorded per-call durations.
func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	us := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(us(0.50), "p50-µs")
	b.ReportMetric(us(0.99), "p99-µs")
}
