package plugins_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
)

func echoInput(ref string, amount int64) []byte {
	in := abi.Input{
		Op:       abi.OpBuildInitiate,
		Merchant: abi.Merchant{ID: "m1", MerchantSerialNumber: "123456"},
		Session: abi.Session{ID: "s1", Reference: ref, Amount: amount, Currency: "NOK", Description: "Ørn & <co>",
			Lines: []abi.Line{{Name: "a", Quantity: 1, UnitPrice: amount}}},
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic(err)
	}
	return b
}

func echoWant(ref string, amount int64) string {
	return fmt.Sprintf(`{"ok":true,"request":{"method":"POST","path":"/echo/%s","body":{"op":"build_initiate","merchant":"m1","reference":"%s","amount":%d,"currency":"NOK","description":"Ørn \u0026 \u003cco\u003e","lines":1}}}`,
		ref, ref, amount)
}

// TestEcho builds the echo plugin with plugintest.Build and runs the operations a plugin answers.
func TestEcho(t *testing.T) {
	ctx := context.Background()
	r := plugintest.Runtime(t, plugins.NewRuntimeConfig().WithPoolSize(2).WithCallTimeout(goodCallTimeout))
	p, err := r.Load(ctx, "echo", "1.0.0", plugintest.Build(t, "./host/plugins/testdata/echo"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "echo" || p.Version() != "1.0.0" {
		t.Fatalf("Name, Version = %q, %q", p.Name(), p.Version())
	}
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"build", string(echoInput("order-1", 1000)), echoWant("order-1", 1000)},
		{"read with raw response", `{"op":"read_initiate","session":{"reference":"r2"},"response":{"status":201,"body":{"token":"x"}}}`,
			`{"ok":true,"request":{"method":"POST","path":"/echo/r2","body":{"op":"read_initiate","merchant":"","reference":"r2","amount":0,"currency":"","description":"","lines":0,"status":201,"response":{"token":"x"}}}}`},
		{"error as data", `{"op":"fail","session":{"description":"no \"amount\""}}`,
			`{"ok":false,"error":{"code":"invalid_input","message":"asked to fail: no \"amount\""}}`},
		{"panic", `{"op":"panic"}`,
			`{"ok":false,"error":{"code":"plugin_panic","message":"panic: asked to panic"}}`},
		{"invalid input", `{"op":`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := p.Call(ctx, []byte(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				var o abi.Output
				if err := json.Unmarshal(out, &o); err != nil || o.OK || o.Error == nil || o.Error.Code != "invalid_input" {
					t.Fatalf("got %s, want an invalid_input error", out)
				}
				return
			}
			if string(out) != tc.want {
				t.Fatalf("got  %s\nwant %s", out, tc.want)
			}
		})
	}
	st := p.Stats()
	if st.Calls != uint64(len(tests)) || len(st.Failures) != 0 || st.Replaced != 0 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
	if st.PeakMemoryPages == 0 || st.PeakMemoryPages > 512 {
		t.Fatalf("peak memory %d pages", st.PeakMemoryPages)
	}
}

// TestPoolHammer calls a pool of two instances from many goroutines; with -race this also checks that no
// instance is used by two goroutines (the runtime panics if one is).
func TestPoolHammer(t *testing.T) {
	ctx := context.Background()
	r := plugintest.Runtime(t, plugins.NewRuntimeConfig().
		WithPoolSize(2).
		WithPoolMin(2).
		WithCallTimeout(goodCallTimeout).
		WithAcquireTimeout(30*time.Second))
	p, err := r.Load(ctx, "echo", "1.0.0", testModules(t)[echoPkg])
	if err != nil {
		t.Fatal(err)
	}
	// The second instance of the minimum starts in the background at Load; hammer both.
	waitFor(t, "both instances", func() bool { return p.Stats().InstancesLive == 2 })
	const goroutines, calls = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				ref := fmt.Sprintf("g%d-c%d", g, i)
				amount := int64(g*1000 + i)
				out, err := p.Call(ctx, echoInput(ref, amount))
				if err != nil {
					errs <- err
					return
				}
				if got, want := string(out), echoWant(ref, amount); got != want {
					errs <- fmt.Errorf("got  %s\nwant %s", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := p.Stats()
	if st.Calls != goroutines*calls || len(st.Failures) != 0 || st.InFlight != 0 || st.Replaced != 0 || st.InstancesLive != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCallErrors(t *testing.T) {
	ctx := context.Background()
	r := plugintest.Runtime(t, plugins.NewRuntimeConfig().
		WithPoolSize(1).
		WithMaxInputBytes(64).
		WithCallTimeout(300*time.Millisecond).
		WithAcquireTimeout(20*time.Millisecond))
	spin, err := r.Load(ctx, "spin", "1.0.0", watModule(t, "spin"))
	if err != nil {
		t.Fatal(err)
	}
	ok, err := r.Load(ctx, "ok", "1.0.0", watModule(t, "ok"))
	if err != nil {
		t.Fatal(err)
	}
	expect := func(t *testing.T, err error, kind plugins.ErrorKind, msg string) {
		t.Helper()
		var ce *plugins.CallError
		if !errors.As(err, &ce) || ce.Kind != kind {
			t.Fatalf("error %v, want kind %s", err, kind)
		}
		if err.Error() != msg {
			t.Fatalf("error\n got %q\nwant %q", err, msg)
		}
	}

	t.Run("input too large", func(t *testing.T) {
		_, err := ok.Call(ctx, bytes.Repeat([]byte(" "), 65))
		expect(t, err, plugins.KindInputTooLarge,
			"plugins: plugin[ok]@1.0.0: input_too_large: input of 65 bytes exceeds the limit of 64")
	})

	t.Run("a bulk call takes the bulk limits", func(t *testing.T) {
		if _, err := ok.Call(plugins.WithBulk(ctx), []byte(`{}`+strings.Repeat(" ", 65))); err != nil {
			t.Fatalf("bulk call of 67 bytes: %v", err)
		}
		_, err := ok.Call(plugins.WithBulk(ctx), bytes.Repeat([]byte(" "), plugins.DefaultBulkMaxInputBytes+1))
		expect(t, err, plugins.KindInputTooLarge, fmt.Sprintf(
			"plugins: plugin[ok]@1.0.0: input_too_large: input of %d bytes exceeds the limit of %d",
			plugins.DefaultBulkMaxInputBytes+1, plugins.DefaultBulkMaxInputBytes))
	})

	t.Run("busy and cancelled", func(t *testing.T) {
		done := make(chan error, 1)
		go func() {
			_, err := spin.Call(ctx, []byte(`{}`))
			done <- err
		}()
		waitFor(t, "the spinning call", func() bool { return spin.Stats().InFlight == 1 })
		_, err := spin.Call(ctx, []byte(`{}`))
		expect(t, err, plugins.KindBusy, "plugins: plugin[spin]@1.0.0: busy: no free instance of 1 within 20ms")

		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err = spin.Call(cctx, []byte(`{}`))
		expect(t, err, plugins.KindBusy, "plugins: plugin[spin]@1.0.0: busy: no free instance before the context ended: context canceled")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%v does not wrap context.Canceled", err)
		}
		if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("spinning call: %v", err)
		}
	})

	t.Run("caller cancels a running call", func(t *testing.T) {
		// The timed-out instance of the subtest before is being replaced: this call waits for it, however
		// much longer than the 20ms acquire timeout the start takes on a loaded machine.
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			for spin.Stats().InFlight == 0 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		_, err := spin.Call(cctx, []byte(`{}`))
		// The guest is stopped by the call timeout, not by the caller: its context ended first.
		expect(t, err, plugins.KindTimeout, "plugins: plugin[spin]@1.0.0 export[kasse_call]: timeout: guest stopped: context deadline exceeded")
		if cctx.Err() == nil {
			t.Fatal("the caller's context was not cancelled while the guest ran")
		}
	})

	t.Run("caller gave up before the call", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := ok.Call(cctx, []byte(`{}`))
		expect(t, err, plugins.KindBusy, "plugins: plugin[ok]@1.0.0: busy: the context ended before the call: context canceled")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%v does not wrap context.Canceled", err)
		}
		if out, err := ok.Call(ctx, []byte(`{}`)); err != nil || string(out) != `{"ok":true}` {
			t.Fatalf("next call: %q, %v", out, err)
		}
		if st := ok.Stats(); st.Replaced != 0 || st.InstancesLive != 1 {
			t.Fatalf("stats %+v: the instance was replaced", st)
		}
	})

	t.Run("closed", func(t *testing.T) {
		if err := ok.Close(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := ok.Call(ctx, []byte(`{}`))
		expect(t, err, plugins.KindBusy, "plugins: plugin[ok]@1.0.0: busy: plugin closed")
		if !errors.Is(err, plugins.ErrClosed) {
			t.Fatalf("%v does not wrap ErrClosed", err)
		}
		if err := ok.Close(ctx); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})

	st := spin.Stats()
	want := map[plugins.ErrorKind]uint64{plugins.KindBusy: 2, plugins.KindTimeout: 2}
	if fmt.Sprint(st.Failures) != fmt.Sprint(want) || st.Calls != 4 || st.Replaced != 2 {
		t.Fatalf("stats %+v, want failures %v", st, want)
	}
}

// TestStderr checks that guest stderr reaches the configured writer and appears in trap errors.
func TestStderr(t *testing.T) {
	ctx := context.Background()
	var stderr syncBuffer
	r := plugintest.Runtime(t, plugins.NewRuntimeConfig().WithPoolSize(1).WithCallTimeout(goodCallTimeout).WithStderr(&stderr))
	p, err := r.Load(ctx, "panic", "1.0.0", testModules(t)[hostileDir+"panic"])
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Call(ctx, opInput("gopanic"))
	if err == nil || !strings.Contains(err.Error(), `guest output: "panic: hostile goroutine panic\n`) {
		t.Fatalf("error %v does not show the guest's output", err)
	}
	if !strings.HasPrefix(stderr.String(), "panic: hostile goroutine panic\n") {
		t.Fatalf("stderr %q", stderr.String())
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestNewRuntimeErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		cfg  plugins.RuntimeConfig
		want string
	}{
		{plugins.RuntimeConfig{}, "plugins: new runtime: config not made by NewRuntimeConfig"},
		{plugins.NewRuntimeConfig().WithPoolSize(0), "plugins: new runtime: pool size 0 not positive"},
		{plugins.NewRuntimeConfig().WithMemoryLimitPages(0), "plugins: new runtime: memory limit 0 pages out of range 1..65536"},
		{plugins.NewRuntimeConfig().WithCallTimeout(0), "plugins: new runtime: call timeout 0s not positive"},
		{plugins.NewRuntimeConfig().WithMaxInputBytes(0), "plugins: new runtime: max input 0 bytes out of range 1..1GiB"},
		{plugins.NewRuntimeConfig().WithMaxOutputBytes(-1), "plugins: new runtime: max output -1 bytes out of range 1..1GiB"},
		{plugins.NewRuntimeConfig().WithAcquireTimeout(-time.Second), "plugins: new runtime: acquire timeout -1s negative"},
	}
	for _, tc := range tests {
		r, err := plugins.NewRuntime(ctx, tc.cfg)
		if err == nil {
			_ = r.Close(ctx)
			t.Errorf("NewRuntime succeeded, want %q", tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("got %q, want %q", err, tc.want)
		}
	}
}

func TestRuntimeClose(t *testing.T) {
	ctx := context.Background()
	r, err := plugins.NewRuntime(ctx, plugins.NewRuntimeConfig().WithPoolSize(2))
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Load(ctx, "ok", "1.0.0", watModule(t, "ok"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := p.Call(ctx, []byte(`{}`)); err != nil || string(out) != `{"ok":true}` {
		t.Fatalf("Call: %s, %v", out, err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Call(ctx, []byte(`{}`)); !errors.Is(err, plugins.ErrClosed) {
		t.Fatalf("Call after Runtime.Close: %v", err)
	}
	if _, err := r.Load(ctx, "ok", "1.0.1", watModule(t, "ok")); err == nil {
		t.Fatal("Load after Close succeeded")
	}
	if st := p.Stats(); st.InstancesLive != 0 {
		t.Fatalf("%d instances live after Close", st.InstancesLive)
	}
}

func BenchmarkCallEcho(b *testing.B) {
	ctx := context.Background()
	r := plugintest.Runtime(b, plugins.NewRuntimeConfig().WithPoolSize(1))
	p, err := r.Load(ctx, "echo", "1.0.0", plugintest.Build(b, echoPkg))
	if err != nil {
		b.Fatal(err)
	}
	in := plugins.ConvertInput(echoInput("order-1", 1000), p.ABIVersion()) // as the host sends it
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Call(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallOverhead measures the host side alone, with a module that answers a constant.
func BenchmarkCallOverhead(b *testing.B) {
	ctx := context.Background()
	r := plugintest.Runtime(b, plugins.NewRuntimeConfig().WithPoolSize(1))
	p, err := r.Load(ctx, "ok", "1.0.0", watModule(b, "ok"))
	if err != nil {
		b.Fatal(err)
	}
	in := echoInput("order-1", 1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Call(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}
