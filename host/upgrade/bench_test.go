package upgrade_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/checkout"
	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/host/provider"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/host/upgrade"
	"github.com/kassehq/kasse/plugin/abi"
)

// benchMerchants is the one merchant the benchmark's checkouts are for.
type benchMerchants struct{}

func (benchMerchants) Merchant(id string) (config.Merchant, bool) {
	return config.Merchant{ID: id, Plugin: "vipps-ecom", ReturnURLPrefixes: []string{"https://shop.example/"},
		Vipps: config.Vipps{BaseURL: "https://apitest.vipps.no", MerchantSerialNumber: "123456", ClientID: "client"}}, id == "shop"
}

// benchProvider answers every initiate as Vipps does, without a network.
type benchProvider struct{}

func (benchProvider) Do(_ context.Context, call provider.Call) (*abi.Response, error) {
	var body struct {
		Transaction struct {
			OrderID string `json:"orderId"`
		} `json:"transaction"`
	}
	if err := json.Unmarshal(call.Request.Body, &body); err != nil {
		return nil, err
	}
	resp, _ := json.Marshal(map[string]string{"orderId": body.Transaction.OrderID,
		"url": "https://apitest.vipps.no/dwo-api-application/v1/deeplink/vippsgateway?v=2&token=x"})
	return &abi.Response{Status: 201, Body: resp}, nil
}

type sample struct {
	start, end time.Time
	err        error
}

// BenchmarkSwapUnderLoad creates checkouts (plugin build + provider + plugin read + store, the whole
// checkout service) from 4 goroutines while another goroutine swaps the active vipps-ecom version back and
// forth every 40ms. It reports failed requests (target 0), and p50/p99 of the requests that overlapped a
// swap (from the Activate call until it returned and, in "drain", until the old version was closed)
// against those that did not.
//
// Sub-benchmark "drain" keeps no old version loaded: every swap drains and closes the old version, and
// the next swap loads it again (compilation cache hit plus a pool of instances) before it swaps. "keep"
// keeps the previous version loaded (the default), so a swap is the pointer swap alone.
//
//	go test -run '^$' -bench SwapUnderLoad -benchtime 3000x ./host/upgrade/
func BenchmarkSwapUnderLoad(b *testing.B) {
	b.Run("drain", func(b *testing.B) { benchSwap(b, -1) })
	b.Run("keep", func(b *testing.B) { benchSwap(b, 0) })
}

func benchSwap(b *testing.B, keep int) {
	ctx := context.Background()
	mods := modules(b)
	pub, priv := newKey(b)
	m := newManager(b, pub, func(c *upgrade.Config) { c.KeepVersions = keep })
	golden := ecomGolden(b)
	for _, bundle := range []upgrade.Bundle{
		signedBundle(b, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden),
		signedBundle(b, priv, "vipps-ecom", "1.1.0", withCustomSection(mods[ecomPkg], "bench"), golden),
	} {
		if _, err := m.Apply(ctx, upgrade.Update{Source: "bench", Bundle: bundle}, upgrade.Activation{Mode: upgrade.ModeActivate}); err != nil {
			b.Fatal(err)
		}
	}
	set := compiledSchemas(b)
	svc, err := checkout.New(checkout.Config{Store: store.NewMemory(), Plugins: m, Merchants: benchMerchants{},
		Provider: benchProvider{}, Schemas: set, PublicURL: "https://kasse.example",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	create := func(i int64) sample {
		s := sample{start: time.Now()}
		_, _, s.err = svc.Create(ctx, payment.Checkout{Merchant: "shop", Reference: fmt.Sprint("order-", i), Amount: 10000,
			Currency: "NOK", Description: "Benchmark order", ReturnURL: "https://shop.example/done"}, "")
		s.end = time.Now()
		return s
	}
	for i := range 20 { // warm both the pool and the caches
		if s := create(int64(i)); s.err != nil {
			b.Fatal(s.err)
		}
	}

	const workers = 4
	var (
		next    atomic.Int64
		mu      sync.Mutex
		samples = make([]sample, 0, b.N)
		windows [][2]time.Time
		swaps   int
		stop    = make(chan struct{})
		swapErr error
		wg      sync.WaitGroup
	)
	b.ResetTimer()
	wg.Go(func() {
		versions := []string{"1.0.0", "1.1.0"}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(40 * time.Millisecond):
			}
			old, want := versions[(i+1)%2], versions[i%2]
			start := time.Now()
			if err := m.Activate(ctx, "vipps-ecom", want, upgrade.Force()); err != nil {
				swapErr = err
				return
			}
			for keep < 0 { // the window ends when the old version is drained and closed
				st, _ := m.Status("vipps-ecom")
				closed := true
				for _, v := range st.Versions {
					if v.Version == old && v.Loaded {
						closed = false
					}
				}
				if closed {
					break
				}
				time.Sleep(100 * time.Microsecond)
			}
			mu.Lock()
			windows = append(windows, [2]time.Time{start, time.Now()})
			swaps++
			mu.Unlock()
		}
	})
	var clients sync.WaitGroup
	for range workers {
		clients.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				s := create(i + 100)
				mu.Lock()
				samples = append(samples, s)
				mu.Unlock()
			}
		})
	}
	clients.Wait()
	b.StopTimer()
	close(stop)
	wg.Wait()
	if swapErr != nil {
		b.Fatal(swapErr)
	}

	var failed int
	var steady, during []time.Duration
	for _, s := range samples {
		if s.err != nil {
			failed++
			if failed <= 3 {
				b.Logf("failed request: %v", s.err)
			}
			continue
		}
		overlaps := false
		for _, w := range windows {
			if s.start.Before(w[1]) && s.end.After(w[0]) {
				overlaps = true
				break
			}
		}
		if overlaps {
			during = append(during, s.end.Sub(s.start))
		} else {
			steady = append(steady, s.end.Sub(s.start))
		}
	}
	b.ReportMetric(float64(failed), "failed")
	b.ReportMetric(float64(swaps), "swaps")
	b.ReportMetric(ms(percentile(steady, 50)), "p50-steady-ms")
	b.ReportMetric(ms(percentile(steady, 99)), "p99-steady-ms")
	b.ReportMetric(ms(percentile(during, 50)), "p50-swap-ms")
	b.ReportMetric(ms(percentile(during, 99)), "p99-swap-ms")
	b.Logf("%d requests, %d failed, %d swaps; %d requests overlapped a swap", len(samples), failed, swaps, len(during))
	if failed > 0 {
		b.Errorf("%d requests failed during swaps, want 0", failed)
	}
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, len(ds)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkLiveCallsDuringGate calls the active vipps-ecom version (build_initiate) from 2 goroutines
// while another goroutine stages new versions one after the other: each is compiled (a new module, so a
// compilation cache miss), gated on its golden and the conformance vectors, and timed against the
// active version, from the moment half of the calls are done. It reports the live calls' p50 and p99 while
// a version was being compiled or gated against those outside, and how many versions were staged. Compilation runs on one worker and the gate
// yields between vectors, so live calls keep their cores.
//
//	go test -run '^$' -bench LiveCallsDuringGate -benchtime 40000x ./host/upgrade/
func BenchmarkLiveCallsDuringGate(b *testing.B) {
	ctx := context.Background()
	mods := modules(b)
	pub, priv := newKey(b)
	m := newManager(b, pub, nil)
	golden := ecomGolden(b)
	if _, err := m.Apply(ctx, upgrade.Update{Source: "bench", Bundle: signedBundle(b, priv, "vipps-ecom", "1.0.0", mods[ecomPkg], golden)},
		upgrade.Activation{Mode: upgrade.ModeActivate}); err != nil {
		b.Fatal(err)
	}
	p, _ := m.Plugin("vipps-ecom")
	input := plugins.ConvertInput(initiateInput("live"), p.ABIVersion()) // as host/checkout sends it
	for range 100 {                                                      // warm the pool
		if _, err := p.Call(ctx, input); err != nil {
			b.Fatal(err)
		}
	}
	var (
		mu      sync.Mutex
		samples = make([]sample, 0, b.N)
		windows [][2]time.Time
		staged  int
		gateErr error
		next    atomic.Int64
		stop    = make(chan struct{})
		half    = make(chan struct{})
		wg      sync.WaitGroup
	)
	b.ResetTimer()
	wg.Go(func() {
		select { // the first half of the calls is the steady baseline
		case <-half:
		case <-stop:
			return
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			bundle := signedBundle(b, priv, "vipps-ecom", fmt.Sprintf("1.%d.0", i+1),
				withCustomSection(mods[ecomPkg], fmt.Sprintf("gate-%d-%d", time.Now().UnixNano(), i)), golden)
			start := time.Now()
			if _, err := m.Apply(ctx, upgrade.Update{Source: "bench", Bundle: bundle}, upgrade.Activation{Mode: upgrade.ModeStage}); err != nil {
				gateErr = err
				return
			}
			mu.Lock()
			windows = append(windows, [2]time.Time{start, time.Now()})
			staged++
			mu.Unlock()
		}
	})
	var clients sync.WaitGroup
	for range 2 {
		clients.Go(func() {
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				if n == int64(b.N)/2 {
					close(half)
				}
				s := sample{start: time.Now()}
				_, s.err = p.Call(ctx, input)
				s.end = time.Now()
				mu.Lock()
				samples = append(samples, s)
				mu.Unlock()
			}
		})
	}
	clients.Wait()
	b.StopTimer()
	close(stop)
	wg.Wait()
	if gateErr != nil {
		b.Fatal(gateErr)
	}
	var failed int
	var steady, during []time.Duration
	for _, s := range samples {
		if s.err != nil {
			failed++
			continue
		}
		overlaps := false
		for _, w := range windows {
			if s.start.Before(w[1]) && s.end.After(w[0]) {
				overlaps = true
				break
			}
		}
		if overlaps {
			during = append(during, s.end.Sub(s.start))
		} else {
			steady = append(steady, s.end.Sub(s.start))
		}
	}
	b.ReportMetric(float64(failed), "failed")
	b.ReportMetric(float64(staged), "gates")
	b.ReportMetric(ms(percentile(steady, 50)), "p50-steady-ms")
	b.ReportMetric(ms(percentile(steady, 99)), "p99-steady-ms")
	b.ReportMetric(ms(percentile(during, 50)), "p50-gate-ms")
	b.ReportMetric(ms(percentile(during, 99)), "p99-gate-ms")
	b.Logf("%d live calls, %d failed, %d versions staged; %d calls overlapped a compile or gate", len(samples), failed, staged, len(during))
	if failed > 0 {
		b.Errorf("%d live calls failed during gates, want 0", failed)
	}
}
