package main

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
	"github.com/kassehq/kasse/plugin/vippsecom/ecom"
)

// reportInput is a read_report_feed input whose answer holds n capture entries, as Vipps writes them.
func reportInput(tb testing.TB, n int) []byte {
	tb.Helper()
	items := make([]map[string]any, n)
	for i := range items {
		items[i] = map[string]any{"pspReference": strconv.Itoa(3343121302 + i), "time": "2022-10-01T14:33:00.824993Z",
			"ledgerDate": "2022-10-01", "entryType": "capture", "reference": "acme-shop-123-order" + strconv.Itoa(100000+i),
			"currency": "NOK", "amount": 49900, "recipientHandle": "api:123456",
			"balanceBefore": int64(i) * 49900, "balanceAfter": int64(i+1) * 49900}
	}
	body, _ := json.Marshal(map[string]any{"cursor": "MTAwMA==", "tryLater": false, "items": items})
	in, err := json.Marshal(abi.Input{Op: abi.OpReadReportFeed, Merchant: abi.Merchant{ID: "acme", MerchantSerialNumber: "123456"},
		Callback: json.RawMessage(`{"ledgerId":"302321","topic":"funds"}`), Response: &abi.Response{Status: 200, Body: body}})
	if err != nil {
		tb.Fatal(err)
	}
	return in
}

// BenchmarkReadReportPage measures reading a Report API page of 100 and of 1000 entries (the most Vipps
// sends) in the built module, with input and output limits and a deadline large enough for it: a
// 1000-entry page is about 250 KB in and 230 KB out, over the runtime's default limits (128 KiB in,
// 64 KiB out), so the host must raise them for the report operations.
func BenchmarkReadReportPage(b *testing.B) {
	wasm := plugintest.Build(b, "./plugin/vippsecom")
	rt := plugintest.Runtime(b, plugins.NewRuntimeConfig().WithMaxInputBytes(1<<20).WithMaxOutputBytes(1<<20).
		WithCallTimeout(5*time.Second))
	p, err := rt.Load(context.Background(), ecom.Name, ecom.Version, wasm)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{100, 1000} {
		input := plugins.ConvertInput(reportInput(b, n), p.ABIVersion()) // as the host sends it
		b.Run(strconv.Itoa(n)+"/wasm", func(b *testing.B) {
			b.SetBytes(int64(len(input)))
			d := make([]time.Duration, 0, b.N)
			for range b.N {
				start := time.Now()
				out, err := p.Call(context.Background(), input)
				if err != nil || len(out) < 100 {
					b.Fatalf("call: %v %.200s", err, out)
				}
				d = append(d, time.Since(start))
			}
			reportPercentiles(b, d)
		})
	}
}
