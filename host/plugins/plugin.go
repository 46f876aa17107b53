package plugins

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/kassehq/kasse/plugin/abi"
)

// Plugin is a loaded plugin version: its compiled module and a pool of instances that grows on demand up to
// the configured size and shrinks when idle (pool.go). It is safe for concurrent use.
type Plugin struct {
	r        *Runtime
	name     string
	version  string
	compiled wazero.CompiledModule
	// abiVersion is what the module's kasse_abi_version answered at load: the encoding of its input.
	abiVersion int

	// pool owns the instances; whoever took an instance from it owns that instance exclusively until it
	// gives it back, which is what keeps an instance on one goroutine at a time.
	pool      pool
	closing   chan struct{}
	closeOnce sync.Once
	closed    atomic.Bool
	// closeMu serialises the end of Close (closing the compiled module).
	closeMu sync.Mutex

	calls      atomic.Uint64
	inFlight   atomic.Int64
	failures   [len(kinds)]atomic.Uint64
	replaced   atomic.Uint64
	peakMemory atomic.Uint32
	// busyPeak is the most calls holding an instance at once since the janitor last looked.
	busyPeak atomic.Int64
	// memPages is the sum of the live instances' linear memory in pages, as of the end of their last call.
	memPages      atomic.Int64
	grown, shrunk atomic.Uint64
	// loadTimes is where Load spent its time; written before the plugin is shared.
	loadTimes LoadTimes
	// waitedPast counts acquire timeouts that found an instance on its way to the caller (see acquire).
	waitedPast atomic.Uint64
}

// kinds lists every ErrorKind, indexing Plugin.failures.
var kinds = [...]ErrorKind{KindTimeout, KindTrap, KindExit, KindInputTooLarge, KindOutputTooLarge, KindBusy, KindABI}

func kindIndex(k ErrorKind) int {
	for i, kk := range kinds {
		if kk == k {
			return i
		}
	}
	panic("plugins: unknown error kind " + string(k))
}

func newPlugin(r *Runtime, name, version string, compiled wazero.CompiledModule) *Plugin {
	return &Plugin{
		r:        r,
		name:     name,
		version:  version,
		compiled: compiled,
		pool:     pool{drained: make(chan struct{}), startHook: r.startHook, yieldHook: r.yieldHook},
		closing:  make(chan struct{}),
	}
}

// start puts the first instance in the pool, starts the rest of the minimum in the background, and starts
// the janitor that shrinks the pool.
func (p *Plugin) start(first *instance) {
	p.pool.mu.Lock()
	p.pool.live++
	p.pool.free = append(p.pool.free, first)
	for range p.minInstances() - 1 {
		p.startLocked()
	}
	p.pool.mu.Unlock()
	go p.janitor()
}

func (p *Plugin) minInstances() int { return min(p.r.cfg.poolMin, p.r.cfg.poolSize) }

// Name returns the plugin's name.
func (p *Plugin) Name() string { return p.name }

// Version returns the plugin's version.
func (p *Plugin) Version() string { return p.version }

// ABIVersion returns the ABI version the module reported at load (abi.VersionJSON or abi.VersionBinary):
// the encoding its input takes. Callers on a hot path encode the input in it, so that Call passes it on
// unchanged.
func (p *Plugin) ABIVersion() int { return p.abiVersion }

// Stats is a snapshot of a plugin's counters.
type Stats struct {
	// Calls counts calls to Call, failed ones included.
	Calls uint64
	// Failures counts failed calls by kind. Kinds without failures are absent.
	Failures map[ErrorKind]uint64
	// InstancesLive is the number of instances currently instantiated.
	InstancesLive int
	// InFlight is the number of calls currently holding an instance.
	InFlight int
	// Replaced counts instances discarded after a failure.
	Replaced uint64
	// PeakMemoryPages is the largest linear memory, in 64 KiB pages, seen at the end of a call.
	PeakMemoryPages uint32
	// MemoryPages is the live instances' linear memory together, in 64 KiB pages, as of the end of each
	// one's last call (a page is reserved up to the memory limit but only touched pages cost RAM).
	MemoryPages uint64
	// InstancesMax is the most instances the pool may run (the configured pool size).
	InstancesMax int
	// Grown counts instances started because a caller found none free; Shrunk counts idle ones closed.
	Grown, Shrunk uint64
	// InstancesStarting is the number of instances being started in the background; Waiting the number
	// of callers waiting for an instance.
	InstancesStarting, Waiting int
	// WaitedPastTimeout counts the times a waiting caller's acquire timeout passed while an instance was
	// being started or was yielding for it, so that it went on waiting instead of failing as busy.
	WaitedPastTimeout uint64
}

// Stats returns the plugin's counters.
func (p *Plugin) Stats() Stats {
	live, starting, waiting := p.poolCounts()
	s := Stats{
		Calls:             p.calls.Load(),
		Failures:          map[ErrorKind]uint64{},
		InstancesLive:     live,
		InstancesStarting: starting,
		Waiting:           waiting,
		WaitedPastTimeout: p.waitedPast.Load(),
		InFlight:          int(p.inFlight.Load()),
		Replaced:          p.replaced.Load(),
		PeakMemoryPages:   p.peakMemory.Load(),
		MemoryPages:       uint64(max(0, p.memPages.Load())),
		InstancesMax:      p.r.cfg.poolSize,
		Grown:             p.grown.Load(),
		Shrunk:            p.shrunk.Load(),
	}
	for i, k := range kinds {
		if n := p.failures[i].Load(); n > 0 {
			s.Failures[k] = n
		}
	}
	return s
}

// Call sends input (one abi.Input, as JSON or in the binary encoding: see abi.IsBinary) to the plugin and
// returns its output (one abi.Output as JSON), copied out of the guest. An input in the other encoding than
// the module's ABI version takes is converted first (ConvertInput): callers off the hot path (golden and
// conformance vectors, the shadow) pass JSON to either version, and the input a caller encoded for one
// version still reaches another correctly. The input size limit applies to the bytes the guest gets.
//
// It waits up to the acquire timeout for a free instance, honouring ctx, and runs the guest under the call
// timeout. Every failure is a *CallError; after a timeout, trap, exit, oversized output or ABI violation the
// instance is discarded and its place freed (pool.go says when a replacement starts).
//
// Once the guest runs, ctx no longer stops it: a call takes microseconds to a few milliseconds and the call
// timeout bounds it anyway, while stopping a guest costs its instance (nothing survives a stopped guest, and a
// new instance takes milliseconds of CPU to start). Stopped for every caller that gave up (a client that hung
// up, a request deadline), a wave of disconnects under load would multiply the load, and each stop would
// count as a timeout against the plugin version (host/upgrade rolls a version back on its failure rate) for
// what was the caller's doing. A caller whose ctx ended before the guest started gets KindBusy and the
// instance serves the next caller.
func (p *Plugin) Call(ctx context.Context, input []byte) ([]byte, error) {
	p.calls.Add(1)
	cfg := p.r.cfg.limitsFor(ctx)
	input = ConvertInput(input, p.abiVersion)
	if len(input) > cfg.maxInputBytes {
		return nil, p.fail("", KindInputTooLarge,
			fmt.Errorf("input of %d bytes exceeds the limit of %d", len(input), cfg.maxInputBytes))
	}
	in, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil { // gave up as it got the instance: nothing ran, the instance is as it was
		p.put(in)
		return nil, p.fail("", KindBusy, fmt.Errorf("the context ended before the call: %w", err))
	}
	busy := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		old := p.busyPeak.Load()
		if busy <= old || p.busyPeak.CompareAndSwap(old, busy) {
			break
		}
	}
	out, export, kind, err := in.call(context.WithoutCancel(ctx), input, cfg)
	if mem := in.mod.Memory(); mem != nil {
		pages := mem.Size() / 65536
		p.memPages.Add(int64(pages) - int64(in.pages))
		in.pages = pages
		for {
			old := p.peakMemory.Load()
			if pages <= old || p.peakMemory.CompareAndSwap(old, pages) {
				break
			}
		}
	}
	if err != nil {
		if tail := in.output.text(); kind == KindTrap && tail != "" {
			err = fmt.Errorf("%w; guest output: %q", err, tail)
		}
		p.discard(in)
		return nil, p.fail(export, kind, err)
	}
	if in.tainted { // the deadline came as the call returned: the result stands, the instance goes
		p.discard(in)
		return out, nil
	}
	p.release(in)
	return out, nil
}

func (p *Plugin) fail(export string, kind ErrorKind, err error) *CallError {
	p.failures[kindIndex(kind)].Add(1)
	return &CallError{Plugin: p.name, Version: p.version, Export: export, Kind: kind, Err: err}
}

// instance is one instantiated module with its cached exports and buffers. Only the caller that took it
// from the pool uses it.
type instance struct {
	mod        api.Module
	abiVersion api.Function
	input      api.Function
	callFn     api.Function
	yieldFn    api.Function
	// stack is reused by every CallWithStack; one slot fits every ABI function's params and results.
	stack []uint64
	// inPtr and inCap describe the guest's input buffer as last returned by kasse_input.
	inPtr, inCap uint32
	calls        uint64
	// pages is the linear memory in pages at the end of the last call, counted in Plugin.memPages.
	pages uint32
	// deadline is the global the host's deadline checks read (deadline.go); tainted is set once a
	// watchdog fired on this instance, which then never serves again.
	deadline api.MutableGlobal
	tainted  bool
	output   *captureWriter
	// busy guards the rule that an instance runs one call at a time: wazero instances are not safe for
	// concurrent use, and sharing one has crashed the host process in the past.
	busy atomic.Bool
}

// instantiationTimeout bounds wazero's instantiation plus the guest's _initialize.
func (p *Plugin) instantiationTimeout() time.Duration {
	return max(time.Second, 10*p.r.cfg.callTimeout)
}

// instantiate creates an instance. Its errors are *CallError for guest failures in _initialize.
func (p *Plugin) instantiate(ctx context.Context) (*instance, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.instantiationTimeout())
	defer cancel()
	out := newCaptureWriter(p.r.stderr)
	// No start function here: _initialize runs below as an export, under a watchdog, because the host's
	// deadline checks can only be armed once the instance exists.
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithStdout(out.stdout()).
		WithStderr(out)
	fail := func(err error) error {
		kind := classify(err)
		if tail := out.text(); tail != "" {
			err = fmt.Errorf("%w; guest output: %q", err, tail)
		}
		return &CallError{Plugin: p.name, Version: p.version, Export: abi.StartFunction, Kind: kind,
			Err: fmt.Errorf("instantiate: %w", err)}
	}
	mod, err := p.r.wz.InstantiateModule(ctx, p.compiled, cfg)
	if err != nil {
		return nil, fail(err)
	}
	deadline, ok := mod.ExportedGlobal(deadlineExport).(api.MutableGlobal)
	if !ok {
		_ = mod.Close(context.Background())
		return nil, fail(errors.New("the module lacks the host's deadline global"))
	}
	if init := mod.ExportedFunction(abi.StartFunction); init != nil {
		boot := &instance{mod: mod, deadline: deadline, stack: make([]uint64, 1)}
		err := boot.run(ctx, init)
		if err == nil && boot.tainted { // finished as the deadline passed: its deadline global may be set
			err = stopped(ctx)
		}
		if err != nil {
			_ = mod.Close(context.Background())
			return nil, fail(fmt.Errorf("module[] function[%s] failed: %w", abi.StartFunction, err))
		}
	}
	var pages uint32
	if mem := mod.Memory(); mem != nil {
		pages = mem.Size() / 65536
		p.memPages.Add(int64(pages))
	}
	return &instance{
		pages:      pages,
		deadline:   deadline,
		mod:        mod,
		abiVersion: mod.ExportedFunction(abi.ExportABIVersion),
		input:      mod.ExportedFunction(abi.ExportInput),
		callFn:     mod.ExportedFunction(abi.ExportCall),
		yieldFn:    mod.ExportedFunction(abi.ExportYield),
		stack:      make([]uint64, 1),
		output:     out,
	}, nil
}

func (p *Plugin) closeInstance(in *instance) {
	_ = in.mod.Close(context.Background())
	p.memPages.Add(-int64(in.pages))
}

// call runs one input through the instance. On failure it returns the export that failed and the kind.
func (in *instance) call(ctx context.Context, input []byte, cfg RuntimeConfig) ([]byte, string, ErrorKind, error) {
	if !in.busy.CompareAndSwap(false, true) {
		panic("plugins: an instance was used by two goroutines at once")
	}
	defer in.busy.Store(false)
	ctx, cancel := context.WithTimeout(ctx, cfg.callTimeout)
	defer cancel()
	in.output.reset()
	n := uint32(len(input))
	if n > in.inCap || in.inCap == 0 {
		in.stack[0] = api.EncodeI32(int32(n))
		if err := in.run(ctx, in.input); err != nil {
			return nil, abi.ExportInput, classify(err), guestError(ctx, err)
		}
		ptr := uint32(in.stack[0])
		if ptr == 0 {
			return nil, abi.ExportInput, KindABI, fmt.Errorf("no buffer for %d bytes of input", n)
		}
		in.inPtr, in.inCap = ptr, max(n, 1)
	}
	mem := in.mod.Memory()
	if !mem.Write(in.inPtr, input) {
		return nil, abi.ExportInput, KindABI,
			fmt.Errorf("input buffer at %#x (+%d bytes) outside guest memory of %d bytes", in.inPtr, n, mem.Size())
	}
	in.stack[0] = api.EncodeI32(int32(n))
	if err := in.run(ctx, in.callFn); err != nil {
		return nil, abi.ExportCall, classify(err), guestError(ctx, err)
	}
	ptr, size := uint32(in.stack[0]>>32), uint32(in.stack[0])
	if int64(size) > int64(cfg.maxOutputBytes) {
		return nil, abi.ExportCall, KindOutputTooLarge,
			fmt.Errorf("output of %d bytes exceeds the limit of %d", size, cfg.maxOutputBytes)
	}
	if size == 0 {
		return nil, abi.ExportCall, KindABI, errors.New("empty output")
	}
	view, ok := mem.Read(ptr, size)
	if !ok {
		return nil, abi.ExportCall, KindABI,
			fmt.Errorf("output at %#x (+%d bytes) outside guest memory of %d bytes", ptr, size, mem.Size())
	}
	if err := checkOutput(view); err != nil {
		return nil, abi.ExportCall, KindABI, err
	}
	return append([]byte(nil), view...), "", "", nil
}

// yield calls kasse_yield under the call timeout.
func (in *instance) yield(timeout time.Duration) error {
	if !in.busy.CompareAndSwap(false, true) {
		panic("plugins: an instance was used by two goroutines at once")
	}
	defer in.busy.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return in.run(ctx, in.yieldFn)
}

// run calls fn with the instance's stack under ctx: a watchdog sets the deadline global once ctx is done
// (deadline.go), and the guest then traps at its next check. A call the watchdog stopped returns a
// *sys.ExitError with the code wazero uses for a deadline or a cancellation, so that classify and
// guestError treat it as they treated wazero's own check. Once the watchdog fired the instance is tainted,
// even if the call returned first.
func (in *instance) run(ctx context.Context, fn api.Function) error {
	if ctx.Err() != nil { // already over: do not start the guest at all
		return stopped(ctx)
	}
	w := arm(ctx, in.deadline)
	err := fn.CallWithStack(ctx, in.stack)
	if w.disarm() {
		return err
	}
	in.tainted = true
	if err == nil {
		return nil
	}
	return stopped(ctx)
}

// stopped is the error of a call that ctx ended, in wazero's terms (see run).
func stopped(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return sys.NewExitError(sys.ExitCodeDeadlineExceeded)
	}
	return sys.NewExitError(sys.ExitCodeContextCanceled)
}

// classify maps an error from a guest call to its kind.
func classify(err error) ErrorKind {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			return KindTimeout
		}
		return KindExit
	}
	return KindTrap
}

// guestError makes a timeout's error say why it stopped, and wrap the context's error.
func guestError(ctx context.Context, err error) error {
	if classify(err) == KindTimeout && ctx.Err() != nil {
		return fmt.Errorf("guest stopped: %w", context.Cause(ctx))
	}
	return err
}
