package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/vippsecom/ecom"
)

// benchInput is the build_initiate vector with merchant settings, a phone number and three order lines,
// compacted as the host sends it.
func benchInput(b *testing.B) []byte {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join(goldenDir, "build_initiate-regular.input.json"))
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		b.Fatal(err)
	}
	var in abi.Input
	if err := json.Unmarshal(buf.Bytes(), &in); err != nil || len(in.Session.Lines) != 3 || in.Session.CustomerPhone == "" {
		b.Fatalf("benchmark input is not the realistic one (3 lines, a phone number): %v", err)
	}
	return buf.Bytes()
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

// BenchmarkBuildInitiate measures the initiate mapping, the one plugin call on the checkout's hot path:
//
//   - native: ecom.Handle as idiomatic native Go would run it, decoding the input JSON and encoding the
//     output with encoding/json (the baseline);
//   - wasm: the same input JSON through the built module's pooled Plugin.Call in the host's runtime
//     (deadline checks on), SDK decoding and encoding included.
func BenchmarkBuildInitiate(b *testing.B) {
	input := benchInput(b)
	plugin := golden().Load(b)
	ctx := context.Background()

	b.Run("native", func(b *testing.B) {
		d := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			var in abi.Input
			if err := json.Unmarshal(input, &in); err != nil {
				b.Fatal(err)
			}
			out, err := json.Marshal(ecom.Handle(&in))
			if err != nil || len(out) == 0 {
				b.Fatal(err)
			}
			d = append(d, time.Since(start))
		}
		b.StopTimer()
		reportPercentiles(b, d)
	})

	b.Run("wasm", func(b *testing.B) {
		input := plugins.ConvertInput(input, plugin.ABIVersion()) // as the host sends it
		for range 50 {                                            // warm the pool's instances
			if _, err := plugin.Call(ctx, input); err != nil {
				b.Fatal(err)
			}
		}
		d := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			out, err := plugin.Call(ctx, input)
			if err != nil || len(out) == 0 {
				b.Fatal(err)
			}
			d = append(d, time.Since(start))
		}
		b.StopTimer()
		reportPercentiles(b, d)
	})
}
