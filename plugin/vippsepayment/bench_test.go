package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/vippsepayment/epayment"
)

// BenchmarkBuildInitiate measures the create-payment mapping natively (encoding/json in and out, the
// baseline) and through the built module's pooled Plugin.Call (SDK decoding and encoding included).
func BenchmarkBuildInitiate(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join(goldenDir, "build_initiate-push-message.input.json"))
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		b.Fatal(err)
	}
	input := buf.Bytes()
	plugin := golden().Load(b)
	ctx := context.Background()
	b.Run("native", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var in abi.Input
			if err := json.Unmarshal(input, &in); err != nil {
				b.Fatal(err)
			}
			if out, err := json.Marshal(epayment.Handle(&in)); err != nil || len(out) == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("wasm", func(b *testing.B) {
		input := plugins.ConvertInput(input, plugin.ABIVersion()) // as the host sends it
		for range 50 {                                            // warm the pool's instances
			if _, err := plugin.Call(ctx, input); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			if out, err := plugin.Call(ctx, input); err != nil || len(out) == 0 {
				b.Fatal(err)
			}
		}
	})
}
