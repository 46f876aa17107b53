package plugintest

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/kassehq/kasse/plugin/abi"
)

// The call profile below answers "where does a call's time go inside the guest" without a sampling
// profiler: the guest is run by wazero's interpreter under an experimental.FunctionListener that counts
// every guest function call of one kasse_call. A function's inclusive count (the calls made under it,
// itself included) is a proxy for its share of the work, and runtime.mallocgc's count is the guest's
// allocations, which is what lets the guest GC's assists land inside a call.

// FuncCalls is one guest function's part of a [CallProfile].
type FuncCalls struct {
	// Name is the function's name from the module's name section (e.g. "runtime.mallocgc").
	Name string
	// Calls is how often the function was entered. A Go guest unwinds and re-enters its stack when it
	// switches goroutines or grows the stack, so this counts those re-entries too.
	Calls int
	// Inclusive is the number of calls made while the function was on the stack, its own included (a
	// recursive function counts its inner calls once per frame).
	Inclusive int
}

// CallProfile is what one kasse_call ran in the guest.
type CallProfile struct {
	// Calls is the number of guest function calls.
	Calls int
	// Mallocs is the number of calls of runtime.mallocgc: the guest's heap allocations.
	Mallocs int
	// Funcs has every function called, most inclusive calls first.
	Funcs []FuncCalls
	// AllocSites counts the allocations by the innermost function outside the runtime that caused them,
	// with the runtime function it called (e.g. "ecom.readAction via runtime.newobject"), most first.
	AllocSites []FuncCalls
}

// String formats the profile's totals and its top functions by inclusive calls.
func (p CallProfile) String(top int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d guest calls, %d mallocgc\n", p.Calls, p.Mallocs)
	fmt.Fprintf(&b, "  %9s %7s  %s\n", "inclusive", "calls", "function")
	for _, f := range p.Funcs[:min(top, len(p.Funcs))] {
		fmt.Fprintf(&b, "  %9d %7d  %s\n", f.Inclusive, f.Calls, f.Name)
	}
	for _, f := range p.AllocSites {
		fmt.Fprintf(&b, "  alloc %3d  %s\n", f.Calls, f.Name)
	}
	return b.String()
}

// ProfileCalls builds the plugin package pkg with its function names kept, runs each input warm times
// through one instance (yielding after each, as the pool does) and then once more under the counting
// listener, and returns that call's profile for each input. The inputs are abi.Input documents (JSON),
// sent in the encoding of the module's ABI version, as the host sends them; the test fails if a call does
// not return an output.
func ProfileCalls(t testing.TB, pkg string, warm int, inputs ...[]byte) []CallProfile {
	t.Helper()
	ctx := context.Background()
	wasm, err := buildNamed(ModuleRoot(t), t.TempDir(), pkg)
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	prof := &profiler{}
	compiled, err := rt.CompileModule(experimental.WithFunctionListenerFactory(ctx, prof), wasm)
	if err != nil {
		t.Fatalf("plugintest: compile %s: %v", pkg, err)
	}
	mod, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions(abi.StartFunction))
	if err != nil {
		t.Fatalf("plugintest: instantiate %s: %v", pkg, err)
	}
	input, call, yield := mod.ExportedFunction(abi.ExportInput), mod.ExportedFunction(abi.ExportCall), mod.ExportedFunction(abi.ExportYield)
	version := mod.ExportedFunction(abi.ExportABIVersion)
	if input == nil || call == nil || yield == nil || version == nil {
		t.Fatalf("plugintest: %s lacks the ABI's exports", pkg)
	}
	res, err := version.Call(ctx)
	if err != nil {
		t.Fatalf("plugintest: %s: %v", abi.ExportABIVersion, err)
	}
	if int32(res[0]) == abi.VersionBinary { // the host sends a version 2 module its input in binary
		inputs = slices.Clone(inputs)
		for i, in := range inputs {
			var decoded abi.Input
			if err := json.Unmarshal(in, &decoded); err != nil {
				t.Fatalf("plugintest: input %d: %v", i, err)
			}
			inputs[i] = abi.AppendBinary(nil, &decoded)
		}
	}
	run := func(in []byte) {
		t.Helper()
		res, err := input.Call(ctx, uint64(len(in)))
		if err != nil || !mod.Memory().Write(uint32(res[0]), in) {
			t.Fatalf("plugintest: kasse_input: %v", err)
		}
		res, err = call.Call(ctx, uint64(len(in)))
		if err != nil || res[0] == 0 {
			t.Fatalf("plugintest: kasse_call: %v", err)
		}
		out, ok := mod.Memory().Read(uint32(res[0]>>32), uint32(res[0]))
		if !ok || !json.Valid(out) {
			t.Fatalf("plugintest: kasse_call returned no output")
		}
	}
	profiles := make([]CallProfile, 0, len(inputs))
	for _, in := range inputs {
		for range warm {
			run(in)
			if _, err := yield.Call(ctx); err != nil {
				t.Fatalf("plugintest: kasse_yield: %v", err)
			}
		}
		prof.start()
		run(in)
		profiles = append(profiles, prof.stop())
		if _, err := yield.Call(ctx); err != nil {
			t.Fatalf("plugintest: kasse_yield: %v", err)
		}
	}
	return profiles
}

var guestProfile = flag.Bool("guestprofile", false, "log the guest function calls of each vector ProfileVectors profiles")

// AllocBudget is a golden vector and the most guest heap allocations (runtime.mallocgc calls) one call of
// it may make once the instance is warm.
type AllocBudget struct {
	Vector     string
	MaxMallocs int
}

// ProfileVectors runs each budget's golden vector in dir (e.g. "read_capture-partial") through the plugin
// package pkg as ProfileCalls runs it, and fails the test when a call makes more guest heap allocations
// than its budget: an allocation in a call is what lets the guest's garbage collector land in a call, and
// counting them is exact where timing them is not. The vectors' inputs are sent compact, as the host
// sends them. With -guestprofile it also logs each profile's top functions and allocation sites.
func ProfileVectors(t *testing.T, pkg, dir string, budgets ...AllocBudget) {
	inputs := make([][]byte, len(budgets))
	for i, b := range budgets {
		raw, err := os.ReadFile(filepath.Join(dir, b.Vector+".input.json"))
		if err != nil {
			t.Fatal(err)
		}
		var in abi.Input
		if err := json.Unmarshal(raw, &in); err != nil {
			t.Fatalf("%s: %v", b.Vector, err)
		}
		if inputs[i], err = json.Marshal(&in); err != nil {
			t.Fatalf("%s: %v", b.Vector, err)
		}
	}
	for i, p := range ProfileCalls(t, pkg, 20, inputs...) {
		b := budgets[i]
		if *guestProfile {
			t.Logf("%s: %s", b.Vector, p.String(25))
		}
		if p.Mallocs > b.MaxMallocs {
			t.Errorf("%s: %d guest allocations in one call, budget %d (run with -args -guestprofile for the sites):\n%s",
				b.Vector, p.Mallocs, b.MaxMallocs, p.String(10))
		}
	}
}

// buildNamed is build without -ldflags=-s -w, so that the module keeps its name section.
func buildNamed(root, dir, pkg string) ([]byte, error) {
	out := filepath.Join(dir, "plugin-named.wasm")
	cmd := exec.Command(goTool(), "build", "-buildmode=c-shared", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("plugintest: build %s: %w\n%s", pkg, err, msg)
	}
	return os.ReadFile(out)
}

// profiler is the listener factory: one counting listener per guest function, all sharing its counts.
// It counts only between start and stop. An instance runs one call at a time, so it needs no locking.
type profiler struct {
	on        bool
	names     []string
	calls     []int
	inclusive []int
	total     int
	stack     []frame
	malloc    int // the index of runtime.mallocgc, or -1
	sites     map[string]int
}

type frame struct{ fn, totalAtEntry int }

func (p *profiler) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	if p.names == nil {
		p.malloc = -1
	}
	p.names = append(p.names, cmp.Or(def.Name(), def.DebugName()))
	if def.Name() == "runtime.mallocgc" {
		p.malloc = len(p.names) - 1
	}
	p.calls = append(p.calls, 0)
	p.inclusive = append(p.inclusive, 0)
	return &listener{p: p, fn: len(p.names) - 1}
}

func (p *profiler) start() {
	clear(p.calls)
	clear(p.inclusive)
	p.total, p.stack, p.sites, p.on = 0, p.stack[:0], map[string]int{}, true
}

func (p *profiler) stop() CallProfile {
	p.on = false
	// Frames still open (a call that unwound without After) count up to here.
	for _, f := range p.stack {
		p.inclusive[f.fn] += p.total - f.totalAtEntry
	}
	prof := CallProfile{Calls: p.total}
	for i, n := range p.calls {
		if n == 0 {
			continue
		}
		prof.Funcs = append(prof.Funcs, FuncCalls{Name: p.names[i], Calls: n, Inclusive: p.inclusive[i]})
		if p.names[i] == "runtime.mallocgc" {
			prof.Mallocs = n
		}
	}
	slices.SortStableFunc(prof.Funcs, func(a, b FuncCalls) int {
		return cmp.Or(cmp.Compare(b.Inclusive, a.Inclusive), cmp.Compare(a.Name, b.Name))
	})
	for site, n := range p.sites {
		prof.AllocSites = append(prof.AllocSites, FuncCalls{Name: site, Calls: n})
	}
	slices.SortFunc(prof.AllocSites, func(a, b FuncCalls) int {
		return cmp.Or(cmp.Compare(b.Calls, a.Calls), cmp.Compare(a.Name, b.Name))
	})
	return prof
}

// allocSite names the innermost open frame outside the runtime and the runtime function it called.
func (p *profiler) allocSite() string {
	via := "runtime.mallocgc"
	for i := len(p.stack) - 1; i >= 0; i-- {
		name := p.names[p.stack[i].fn]
		if !strings.HasPrefix(name, "runtime.") {
			return name + " via " + via
		}
		via = name
	}
	return via
}

type listener struct {
	p  *profiler
	fn int
}

func (l *listener) Before(context.Context, api.Module, api.FunctionDefinition, []uint64, experimental.StackIterator) {
	p := l.p
	if !p.on {
		return
	}
	p.total++
	p.calls[l.fn]++
	if l.fn == p.malloc {
		p.sites[p.allocSite()]++
	}
	p.stack = append(p.stack, frame{fn: l.fn, totalAtEntry: p.total - 1})
}

func (l *listener) After(context.Context, api.Module, api.FunctionDefinition, []uint64) { l.pop() }

func (l *listener) Abort(context.Context, api.Module, api.FunctionDefinition, error) { l.pop() }

// pop closes the innermost frame of this function, if counting saw it open.
func (l *listener) pop() {
	p := l.p
	if !p.on || len(p.stack) == 0 || p.stack[len(p.stack)-1].fn != l.fn {
		return
	}
	f := p.stack[len(p.stack)-1]
	p.stack = p.stack[:len(p.stack)-1]
	p.inclusive[f.fn] += p.total - f.totalAtEntry
}
