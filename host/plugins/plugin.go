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

// yieldEvery is how many successful calls an instance serves between two kasse_yield calls. A Go guest that
// allocates needs the yield, or its heap grows without bound (wasm-runtime-notes §5, GC stall); every 16th
// call kept an allocating guest flat in the measurements, and a guest that does not allocate loses little.
//
// Where the yield runs (see release): in the background only while another instance is free and no caller
// waits, so that it is never on a caller's path; otherwise synchronously on the releasing caller's
// goroutine, before the instance goes back. A background yield of the last instance once made a waiting
// caller time out with KindBusy on a loaded machine (the yield goroutine was not scheduled, or a host GC
// waited for a guest elsewhere, for longer than the acquire timeout).
const yieldEvery = 16

// Plugin is a loaded plugin version: its compiled module and a pool of instances that grows on demand up to
// the configured size and shrinks when idle (see grow and shrink). It is safe for concurrent use.
type Plugin struct {
	r        *Runtime
	name     string
	version  string
	compiled wazero.CompiledModule

	// slots holds the pool places ready to serve (with an instance, or empty after a failed start), and
	// spare the empty places the pool may grow into. Between them and their current owners (a call, a
	// background start, the janitor) there are always poolSize places. Whoever has taken a slot out of a
	// channel owns it and its instance exclusively, which is what keeps an instance on one goroutine at a
	// time.
	slots     chan *slot
	spare     chan *slot
	closing   chan struct{}
	closeOnce sync.Once
	closed    atomic.Bool
	// closeLock serialises Close; drained counts the slots Close has taken for good.
	closeLock chan struct{}
	drained   int

	calls    atomic.Uint64
	inFlight atomic.Int64
	// waiting counts callers blocked in acquire; release does not yield in the background while any wait.
	waiting    atomic.Int64
	failures   [len(kinds)]atomic.Uint64
	live       atomic.Int64
	replaced   atomic.Uint64
	peakMemory atomic.Uint32
	// busyPeak is the most calls holding an instance at once since the janitor last looked.
	busyPeak atomic.Int64
	// memPages is the sum of the live instances' linear memory in pages, as of the end of their last call.
	memPages      atomic.Int64
	grown, shrunk atomic.Uint64
}

// slot is one place in the pool. inst is nil while the place has no instance: after a failed call, until the
// replacement is ready, or when starting one failed.
type slot struct {
	inst *instance
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
		r:         r,
		name:      name,
		version:   version,
		compiled:  compiled,
		slots:     make(chan *slot, r.cfg.poolSize),
		spare:     make(chan *slot, r.cfg.poolSize),
		closing:   make(chan struct{}),
		closeLock: make(chan struct{}, 1),
	}
}

// start puts the first instance in the pool, starts the rest of the minimum in the background, leaves the
// other places spare, and starts the janitor that shrinks the pool.
func (p *Plugin) start(first *instance) {
	p.slots <- &slot{inst: first}
	keep := p.minInstances()
	for range keep - 1 {
		go p.refill(&slot{})
	}
	for range p.r.cfg.poolSize - keep {
		p.spare <- &slot{}
	}
	go p.janitor()
}

func (p *Plugin) minInstances() int { return min(p.r.cfg.poolMin, p.r.cfg.poolSize) }

// Name returns the plugin's name.
func (p *Plugin) Name() string { return p.name }

// Version returns the plugin's version.
func (p *Plugin) Version() string { return p.version }

// Stats is a snapshot of a plugin's counters.
type Stats struct {
	// Calls counts calls to Call, failed ones included.
	Calls uint64
	// Failures counts failed calls by kind. Kinds without failures are absent.
	Failures map[ErrorKind]uint64
	// InstancesLive is the number of instances currently instantiated.
	InstancesLive int
	// InFlight is the number of calls currently holding an instance (or starting one).
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
}

// Stats returns the plugin's counters.
func (p *Plugin) Stats() Stats {
	s := Stats{
		Calls:           p.calls.Load(),
		Failures:        map[ErrorKind]uint64{},
		InstancesLive:   int(p.live.Load()),
		InFlight:        int(p.inFlight.Load()),
		Replaced:        p.replaced.Load(),
		PeakMemoryPages: p.peakMemory.Load(),
		MemoryPages:     uint64(max(0, p.memPages.Load())),
		InstancesMax:    p.r.cfg.poolSize,
		Grown:           p.grown.Load(),
		Shrunk:          p.shrunk.Load(),
	}
	for i, k := range kinds {
		if n := p.failures[i].Load(); n > 0 {
			s.Failures[k] = n
		}
	}
	return s
}

// Call sends input (one abi.Input as JSON) to the plugin and returns its output (one abi.Output as JSON),
// copied out of the guest. It waits up to the acquire timeout for a free instance, honouring ctx, and runs
// the guest under the call timeout (or ctx's deadline, if sooner). Every failure is a *CallError; after a
// timeout, trap, exit, oversized output or ABI violation the instance is discarded and replaced in the
// background.
func (p *Plugin) Call(ctx context.Context, input []byte) ([]byte, error) {
	p.calls.Add(1)
	cfg := p.r.cfg.limitsFor(ctx)
	if len(input) > cfg.maxInputBytes {
		return nil, p.fail("", KindInputTooLarge,
			fmt.Errorf("input of %d bytes exceeds the limit of %d", len(input), cfg.maxInputBytes))
	}
	s, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	busy := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		old := p.busyPeak.Load()
		if busy <= old || p.busyPeak.CompareAndSwap(old, busy) {
			break
		}
	}
	if s.inst == nil {
		inst, err := p.instantiate(ctx)
		if err != nil {
			p.slots <- s
			var ce *CallError
			if errors.As(err, &ce) {
				p.failures[kindIndex(ce.Kind)].Add(1)
				return nil, err
			}
			return nil, p.fail(abi.StartFunction, KindABI, err)
		}
		s.inst = inst
	}
	out, export, kind, err := s.inst.call(ctx, input, cfg)
	if mem := s.inst.mod.Memory(); mem != nil {
		pages := mem.Size() / 65536
		p.memPages.Add(int64(pages) - int64(s.inst.pages))
		s.inst.pages = pages
		for {
			old := p.peakMemory.Load()
			if pages <= old || p.peakMemory.CompareAndSwap(old, pages) {
				break
			}
		}
	}
	if err != nil {
		if tail := s.inst.output.text(); kind == KindTrap && tail != "" {
			err = fmt.Errorf("%w; guest output: %q", err, tail)
		}
		p.discard(s)
		return nil, p.fail(export, kind, err)
	}
	if s.inst.tainted { // the deadline came as the call returned: the result stands, the instance goes
		p.discard(s)
		return out, nil
	}
	p.release(s)
	return out, nil
}

func (p *Plugin) fail(export string, kind ErrorKind, err error) *CallError {
	p.failures[kindIndex(kind)].Add(1)
	return &CallError{Plugin: p.name, Version: p.version, Export: export, Kind: kind, Err: err}
}

// acquire takes a slot out of the pool, waiting up to the acquire timeout.
func (p *Plugin) acquire(ctx context.Context) (*slot, error) {
	var s *slot
	select {
	case s = <-p.slots:
	default:
		p.grow()
		p.waiting.Add(1)
		timer := time.NewTimer(p.r.cfg.acquireTimeout)
		select {
		case s = <-p.slots:
		case <-p.closing:
		case <-ctx.Done():
		case <-timer.C:
		}
		timer.Stop()
		p.waiting.Add(-1)
		if s == nil {
			// One last look: after a stall of the whole process the timer and a released slot can be ready
			// together, and select picks either.
			select {
			case s = <-p.slots:
			default:
			}
		}
		if s == nil {
			switch {
			case p.closed.Load():
				return nil, p.fail("", KindBusy, ErrClosed)
			case ctx.Err() != nil:
				return nil, p.fail("", KindBusy, fmt.Errorf("no free instance before the context ended: %w", ctx.Err()))
			}
			return nil, p.fail("", KindBusy, fmt.Errorf("no free instance of %d within %v", cap(p.slots), p.r.cfg.acquireTimeout))
		}
	}
	if p.closed.Load() {
		p.slots <- s
		return nil, p.fail("", KindBusy, ErrClosed)
	}
	return s, nil
}

// release returns a slot whose call succeeded, yielding every yieldEvery calls: in the background when
// another instance is free and no caller waits, else on this goroutine before the slot goes back, so that
// a yield never takes the last instance out of service while someone waits for it.
func (p *Plugin) release(s *slot) {
	s.inst.calls++
	if s.inst.calls%yieldEvery != 0 {
		p.slots <- s
		return
	}
	if p.waiting.Load() > 0 || len(p.slots) == 0 {
		if err := s.inst.yield(p.r.cfg.callTimeout); err != nil || s.inst.tainted {
			p.discard(s)
			return
		}
		p.slots <- s
		return
	}
	go func() {
		if err := s.inst.yield(p.r.cfg.callTimeout); err != nil || s.inst.tainted {
			p.discard(s)
			return
		}
		p.slots <- s
	}()
}

// grow starts an instance in a spare place, if the pool has one, for a caller that found no instance free.
// The caller still waits for whichever comes first, an instance released by another call or the new one,
// so growing never adds an instantiation (several milliseconds) to a call that a release would serve sooner.
func (p *Plugin) grow() {
	select {
	case s := <-p.spare:
		p.grown.Add(1)
		go p.refill(s)
	default:
	}
}

// janitor shrinks the pool once per idle window until the plugin closes.
func (p *Plugin) janitor() {
	t := time.NewTicker(p.r.cfg.poolIdle)
	defer t.Stop()
	for {
		select {
		case <-p.closing:
			return
		case <-t.C:
			p.shrink()
		}
	}
}

// shrink closes ready instances beyond the most that were busy at once since the last look (and beyond the
// minimum), and makes their places spare. It only takes instances nobody is using or waiting for: a caller
// that arrives meanwhile and finds none free grows the pool again.
func (p *Plugin) shrink() {
	keep := max(int64(p.minInstances()), p.busyPeak.Swap(p.inFlight.Load()))
	for p.live.Load() > keep && p.waiting.Load() == 0 {
		var s *slot
		select {
		case s = <-p.slots:
		default:
			return
		}
		if s.inst != nil {
			p.closeInstance(s.inst)
			s.inst = nil
			p.shrunk.Add(1)
		}
		p.spare <- s
	}
}

// discard closes a slot's instance after a failure and replaces it in the background.
func (p *Plugin) discard(s *slot) {
	p.closeInstance(s.inst)
	s.inst = nil
	p.replaced.Add(1)
	go p.refill(s)
}

// refill instantiates an instance for an empty slot and puts the slot back. If that fails, the slot goes
// back empty and the next call that takes it tries again (and reports the error).
func (p *Plugin) refill(s *slot) {
	if !p.closed.Load() {
		if inst, err := p.instantiate(context.Background()); err == nil {
			s.inst = inst
		}
	}
	p.slots <- s
}

// Close waits for in-flight calls (up to ctx), closes every instance and the compiled module. Calls made
// after Close fail with KindBusy and ErrClosed. Close may be called again, for example after its context
// ended, and then finishes the job.
func (p *Plugin) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		close(p.closing)
	})
	select {
	case p.closeLock <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("plugins: close plugin[%s]@%s: %w", p.name, p.version, ctx.Err())
	}
	defer func() { <-p.closeLock }()
	for p.drained < cap(p.slots) {
		var s *slot
		select {
		case s = <-p.slots:
		case s = <-p.spare:
		case <-ctx.Done():
			return fmt.Errorf("plugins: close plugin[%s]@%s: %w", p.name, p.version, ctx.Err())
		}
		p.drained++
		if s.inst != nil {
			p.closeInstance(s.inst)
			s.inst = nil
		}
	}
	if p.compiled != nil {
		err := p.compiled.Close(ctx)
		p.compiled = nil
		p.r.unregister(p)
		if err != nil {
			return fmt.Errorf("plugins: close plugin[%s]@%s: %w", p.name, p.version, err)
		}
	}
	return nil
}

// instance is one instantiated module with its cached exports and buffers. Only the owner of its slot uses
// it.
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
	p.live.Add(1)
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
	p.live.Add(-1)
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
