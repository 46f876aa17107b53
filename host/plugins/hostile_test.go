package plugins_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/internal/wat"
	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/plugin/plugintest"
)

const (
	echoPkg    = "./host/plugins/testdata/echo"
	hostileDir = "./host/plugins/testdata/hostile/"
	// hangGuard fails a hostile call that is not contained at all. It is not a speed target: a contained
	// call returns within a few milliseconds of its deadline.
	hangGuard = 5 * time.Second
	// testCallTimeout is the deadline of the calls that hostile guests must hit: generous, because a
	// shared 2-core CI machine can stall a good call for tens of milliseconds, and short enough that the
	// hostile tests, which wait for it, stay quick.
	testCallTimeout = 500 * time.Millisecond
	// goodCallTimeout is the deadline of tests whose calls must never time out (pool growth, echo, yields):
	// on a busy 2-core machine with eight callers a good call was seen to pass 500 ms, and such a test
	// fails on the timeout, not on what it checks.
	goodCallTimeout = 30 * time.Second
)

var hostileGo = []string{"spin", "recursion", "hog", "panic", "exit", "hugeoutput", "notjson", "deadlock"}

var (
	builtOnce sync.Once
	built     map[string][]byte
)

func testModules(t *testing.T) map[string][]byte {
	t.Helper()
	builtOnce.Do(func() {
		pkgs := []string{echoPkg}
		for _, name := range hostileGo {
			pkgs = append(pkgs, hostileDir+name)
		}
		built = plugintest.BuildAll(t, pkgs...)
	})
	if built == nil {
		t.Fatal("building the test plugins failed in an earlier test")
	}
	return built
}

func watModule(t testing.TB, name string) []byte {
	t.Helper()
	return wat.Module(t, filepath.Join("testdata", "wat", name+".wat"))
}

func opInput(op string) []byte {
	b, err := json.Marshal(abi.Input{Op: abi.Op(op), Session: abi.Session{Reference: "r"}})
	if err != nil {
		panic(err)
	}
	return b
}

// hammer calls p with echo inputs from one goroutine until stop is closed, counting results.
func hammer(p *plugins.Plugin, stop <-chan struct{}, okCalls *atomic.Int64, failures chan<- error) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		ref := "h" + string(rune('a'+i%26))
		out, err := p.Call(context.Background(), echoInput(ref, int64(i)))
		if err != nil {
			failures <- err
			return
		}
		if !strings.Contains(string(out), `"reference":"`+ref+`"`) {
			failures <- errors.New("wrong echo output: " + string(out))
			return
		}
		okCalls.Add(1)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHostile(t *testing.T) {
	ctx := context.Background()
	mods := testModules(t)
	const limitPages = 512
	r := plugintest.Runtime(t, plugins.NewRuntimeConfig().
		WithPoolSize(1).
		WithMemoryLimitPages(limitPages).
		WithCallTimeout(testCallTimeout))
	// The good plugin lives in a runtime of its own with a deadline longer than any hostile call: guest
	// code cannot be preempted, so while a hostile guest spins to its deadline a stop-the-world of the
	// host's garbage collector (or an OS that shares the cores with other work) can hold a concurrent good
	// call for about as long. The test asserts that good calls keep succeeding, not how fast they are.
	echoRT := plugintest.Runtime(t, plugins.NewRuntimeConfig().WithPoolSize(1).WithCallTimeout(hangGuard))
	echo, err := echoRT.Load(ctx, "echo", "1.0.0", mods[echoPkg])
	if err != nil {
		t.Fatal(err)
	}
	goMod := func(name string) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return mods[hostileDir+name] }
	}
	wat := func(name string) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return watModule(t, name) }
	}
	tests := []struct {
		name   string
		module func(t *testing.T) []byte
		// loadErr, when set, is the whole error Load must return.
		loadErr string
		// op is the input operation for Go guests.
		op string
		// kind and export are what the call must fail with; an empty kind means the call succeeds.
		kind   plugins.ErrorKind
		export string
		// errHas is a part of the call's error message, or of its output when it succeeds.
		errHas string
		// orTimeout accepts a timeout instead of kind: for a guest whose failure races its deadline.
		orTimeout bool
		// ping: the guest answers op "ping" normally, which shows that its replacement works.
		ping bool
	}{
		{name: "missing_export", module: wat("missing_export"),
			loadErr: "plugins: load plugin[missing_export]@1.0.0: export kasse_call missing"},
		{name: "wrong_signature", module: wat("wrong_signature"),
			loadErr: "plugins: load plugin[wrong_signature]@1.0.0: export kasse_call has signature (i32) -> (i32), want (i32) -> (i64)"},
		{name: "env_import", module: wat("env_import"),
			loadErr: "plugins: load plugin[env_import]@1.0.0: import env.foo not allowed"},
		{name: "sock_import", module: wat("sock_import"),
			loadErr: "plugins: load plugin[sock_import]@1.0.0: import wasi_snapshot_preview1.sock_accept not allowed"},
		{name: "wrong_abi_version", module: wat("wrong_abi_version"),
			loadErr: "plugins: load plugin[wrong_abi_version]@1.0.0: abi version 3, want 1 or 2"},
		{name: "init_trap", module: wat("init_trap"),
			loadErr: "plugins: load plugin[init_trap]@1.0.0: instantiate: module[] function[_initialize] failed: wasm error: unreachable\nwasm stack trace:\n\t.$0()"},
		{name: "big_memory", module: wat("big_memory"),
			loadErr: "plugins: load plugin[big_memory]@1.0.0: compile: section memory: min 1024 pages (64 Mi) over limit of 512 pages (32 Mi)"},
		{name: "not_wasm", module: func(*testing.T) []byte { return []byte("\x00asm garbage") },
			loadErr: "plugins: load plugin[not_wasm]@1.0.0: compile: invalid version header"},

		{name: "bomb", module: wat("bomb"), kind: plugins.KindTimeout, export: abi.ExportCall, errHas: "context deadline exceeded"},
		{name: "chain", module: wat("chain"), kind: plugins.KindTimeout, export: abi.ExportCall, errHas: "context deadline exceeded"},
		// deep recursion gets an entry check (it is loop-free recursion): wazero's stack ceiling or the
		// deadline stops it, whichever comes first.
		{name: "deep", module: wat("deep"), kind: plugins.KindTrap, export: abi.ExportCall, errHas: "stack overflow", orTimeout: true},
		{name: "grow", module: wat("grow"), kind: plugins.KindTrap, export: abi.ExportCall, errHas: "unreachable"},
		{name: "spin_wat", module: wat("spin"), kind: plugins.KindTimeout, export: abi.ExportCall, errHas: "context deadline exceeded"},
		{name: "trap", module: wat("trap"), kind: plugins.KindTrap, export: abi.ExportCall, errHas: "wasm error: unreachable"},
		{name: "bad_output", module: wat("bad_output"), kind: plugins.KindABI, export: abi.ExportCall, errHas: "outside guest memory"},
		// JSON that fails the output schema is the host's to refuse (checkout validates every output, and
		// host/upgrade's gate refuses such a version before it serves): the runtime passes it on.
		{name: "bad_schema", module: wat("bad_schema"), errHas: `{"ok":"yes"}`},

		{name: "spin", module: goMod("spin"), op: "spin", kind: plugins.KindTimeout, export: abi.ExportCall, errHas: "context deadline exceeded", ping: true},
		// Go's stack growth reaches the memory limit in tens of milliseconds, unless a loaded machine lets
		// the deadline come first.
		{name: "recursion", module: goMod("recursion"), op: "recurse", kind: plugins.KindTrap, export: abi.ExportCall, errHas: "fatal error: out of memory", orTimeout: true, ping: true},
		{name: "hog", module: goMod("hog"), op: "hog", kind: plugins.KindTrap, export: abi.ExportCall, errHas: "fatal error: out of memory", ping: true},
		{name: "panic", module: goMod("panic"), op: "panic", errHas: `"code":"plugin_panic","message":"panic: hostile panic"`, ping: true},
		{name: "gopanic", module: goMod("panic"), op: "gopanic", kind: plugins.KindTrap, export: abi.ExportCall, errHas: "panic: hostile goroutine panic", ping: true},
		{name: "exit", module: goMod("exit"), op: "exit", kind: plugins.KindExit, export: abi.ExportCall, errHas: "exit_code(3)", ping: true},
		{name: "hugeoutput", module: goMod("hugeoutput"), op: "huge", kind: plugins.KindOutputTooLarge, export: abi.ExportCall,
			errHas: "output of 1048636 bytes exceeds the limit of 65536", ping: true},
		{name: "notjson", module: goMod("notjson"), op: "any", kind: plugins.KindABI, export: abi.ExportCall, errHas: "output is not a JSON object"},
		{name: "deadlock", module: goMod("deadlock"), op: "block", kind: plugins.KindTrap, export: abi.ExportCall, errHas: "all goroutines are asleep - deadlock", ping: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := r.Load(ctx, tc.name, "1.0.0", tc.module(t))
			if tc.loadErr != "" {
				if err == nil {
					t.Fatalf("Load succeeded, want error %q", tc.loadErr)
				}
				if err.Error() != tc.loadErr {
					t.Fatalf("Load error\n got %q\nwant %q", err, tc.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := p.Close(ctx); err != nil {
					t.Error(err)
				}
			}()

			// Keep the good plugin busy while the hostile one misbehaves.
			stop := make(chan struct{})
			var okCalls atomic.Int64
			failures := make(chan error, 1)
			var wg sync.WaitGroup
			wg.Go(func() { hammer(echo, stop, &okCalls, failures) })

			start := time.Now()
			out, err := p.Call(ctx, opInput(tc.op))
			elapsed := time.Since(start)
			t.Logf("contained in %v: %v", elapsed, err)
			if elapsed > hangGuard {
				t.Errorf("call returned after %v", elapsed)
			}
			if tc.kind == "" {
				if err != nil {
					t.Fatalf("Call: %v", err)
				}
				if !strings.Contains(string(out), tc.errHas) {
					t.Fatalf("output %s does not contain %s", out, tc.errHas)
				}
			} else {
				var ce *plugins.CallError
				if !errors.As(err, &ce) {
					t.Fatalf("Call error %v (%T), want a *plugins.CallError", err, err)
				}
				if tc.orTimeout && ce.Kind == plugins.KindTimeout {
					tc.kind, tc.errHas = plugins.KindTimeout, "context deadline exceeded"
				}
				if ce.Kind != tc.kind || ce.Export != tc.export || ce.Plugin != tc.name || ce.Version != "1.0.0" {
					t.Fatalf("CallError{Plugin: %q, Version: %q, Export: %q, Kind: %q}, want {%q, 1.0.0, %q, %q}",
						ce.Plugin, ce.Version, ce.Export, ce.Kind, tc.name, tc.export, tc.kind)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("error %q does not contain %q", err, tc.errHas)
				}
				if tc.kind == plugins.KindTimeout && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("timeout error %v does not wrap context.DeadlineExceeded", err)
				}
				// The failed instance is gone at once and its place is free: no instance of this pool of
				// one is left, and at most one is being started to keep the pool's minimum.
				st := p.Stats()
				if st.Replaced != 1 || st.Failures[tc.kind] != 1 || st.InstancesLive+st.InstancesStarting > 1 {
					t.Errorf("stats %+v, want 1 replaced and 1 %s failure, at most one instance live or starting", st, tc.kind)
				}
			}
			if pages := p.Stats().PeakMemoryPages; pages > limitPages {
				t.Errorf("peak memory %d pages, over the limit of %d", pages, limitPages)
			}
			if tc.ping {
				// Right after the failure, without waiting for anything: the caller gets a fresh instance
				// (the one being started, however long that takes), never a busy refusal.
				out, err := p.Call(ctx, opInput("ping"))
				if err != nil || string(out) != `{"ok":true}` {
					t.Fatalf("ping after the failure: %s, %v", out, err)
				}
				if st := p.Stats(); st.InstancesLive != 1 || st.Failures[plugins.KindBusy] != 0 {
					t.Errorf("after the ping: stats %+v, want 1 instance live and no busy failure", st)
				}
			}

			// The good plugin kept working during the failure and still works after it.
			waitFor(t, "a concurrent echo call", func() bool { return okCalls.Load() > 0 })
			close(stop)
			wg.Wait()
			select {
			case err := <-failures:
				t.Fatalf("concurrent echo call failed: %v", err)
			default:
			}
			if _, err := echo.Call(ctx, echoInput("after-"+tc.name, 1)); err != nil {
				t.Fatalf("echo after %s: %v", tc.name, err)
			}
		})
	}
}
