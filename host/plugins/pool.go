package plugins

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kassehq/kasse/plugin/abi"
)

// yieldEvery is how many successful calls an instance serves between two kasse_yield calls. A Go guest that
// allocates needs the yield, or its heap grows without bound (wasm-runtime-notes §5, GC stall); every 16th
// call kept an allocating guest flat in the measurements, and a guest that does not allocate loses little.
// The yield runs in the background, off every caller's path (see release).
const yieldEvery = 16

// pool holds one plugin version's instances: the free ones, and the callers waiting for one. It is the
// only owner of the counts that decide whether to start an instance, so they change together under mu.
//
// A place in the pool is taken by a live instance (free, serving a call or yielding) or by an instance
// being started; there are never more than size places. Instances are handed over directly: a released,
// yielded or newly started instance goes to the caller that has waited longest, and only when nobody
// waits to the free list. A waiting caller gives up with KindBusy after the acquire timeout only if no
// instance is on its way to it: while an instance is being started or is yielding for every caller
// ahead of it and for it, it keeps waiting (see acquire). Starting and yielding are bounded (the
// instantiation timeout and the call timeout), so that wait is too.
type pool struct {
	mu sync.Mutex
	// free holds instances ready to serve, the most recently used last.
	free []*instance
	// waiters are the callers waiting for an instance, the longest waiting first.
	waiters []*waiter
	// live counts instances that exist (free, serving or yielding); starting counts instances being
	// instantiated in the background; yielding counts live instances running kasse_yield in the background.
	live, starting, yielding int
	// closed is set by Close: instances coming back are closed instead of kept.
	closed bool
	// drained is closed once the pool is closed and has no live or starting instance.
	drained chan struct{}
	// startHook and yieldHook, when set (tests only, see export_test.go), run at the beginning of every
	// background start and yield.
	startHook, yieldHook func()
}

// waiter is one caller waiting for an instance. Whoever removes it from pool.waiters sends it exactly one
// grant.
type waiter struct {
	ch chan grant
}

// grant is what a waiter gets: an instance it now owns, or the error of the start that was to serve it.
type grant struct {
	inst *instance
	err  error
}

// acquire takes a free instance, or waits for one: starting one in a free place if there is one (growing
// the pool), and otherwise for one that a call releases. See pool for when a waiting caller gives up.
func (p *Plugin) acquire(ctx context.Context) (*instance, error) {
	pl := &p.pool
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return nil, p.fail("", KindBusy, ErrClosed)
	}
	if n := len(pl.free); n > 0 {
		in := pl.free[n-1]
		pl.free = pl.free[:n-1]
		pl.mu.Unlock()
		return in, nil
	}
	w := &waiter{ch: make(chan grant, 1)}
	pl.waiters = append(pl.waiters, w)
	// Grow when this caller is not already covered by an instance on its way: the new instance goes to
	// whoever waits longest, and a release may well serve this caller sooner than the start does.
	if pl.live+pl.starting < p.r.cfg.poolSize && len(pl.waiters) > pl.starting+pl.yielding {
		p.grown.Add(1)
		p.startLocked()
	}
	pl.mu.Unlock()

	timer := time.NewTimer(p.r.cfg.acquireTimeout)
	defer timer.Stop()
	for {
		select {
		case g := <-w.ch:
			return p.granted(g)
		case <-ctx.Done():
			// An instance granted meanwhile goes on to the next caller: this call could not use it.
			if g, ok := p.leave(w); ok && g.inst != nil {
				p.put(g.inst)
			}
			return nil, p.fail("", KindBusy, fmt.Errorf("no free instance before the context ended: %w", ctx.Err()))
		case <-p.closing:
			if g, ok := p.leave(w); ok && g.inst != nil {
				p.put(g.inst) // closes it
			}
			return nil, p.fail("", KindBusy, ErrClosed)
		case <-timer.C:
			pl.mu.Lock()
			i := slices.Index(pl.waiters, w)
			if i >= 0 && i < pl.starting+pl.yielding {
				// An instance is being started or is yielding for this caller: it comes within the
				// instantiation or call timeout, so refusing the caller now would only refuse work the
				// pool is about to be able to do.
				pl.mu.Unlock()
				p.waitedPast.Add(1)
				timer.Reset(max(p.r.cfg.acquireTimeout, 10*time.Millisecond)) // look again, never spin
				continue
			}
			pl.mu.Unlock()
			if g, ok := p.leave(w); ok {
				return p.granted(g)
			}
			return nil, p.fail("", KindBusy, fmt.Errorf("no free instance of %d within %v", p.r.cfg.poolSize, p.r.cfg.acquireTimeout))
		}
	}
}

// granted turns a grant into acquire's result.
func (p *Plugin) granted(g grant) (*instance, error) {
	if g.err != nil {
		if ce, ok := g.err.(*CallError); ok {
			p.failures[kindIndex(ce.Kind)].Add(1)
			return nil, ce
		}
		return nil, p.fail(abi.StartFunction, KindABI, g.err)
	}
	return g.inst, nil
}

// leave takes w out of the waiters. If w was already granted something, leave returns that grant (ok
// true), which the caller must use or hand on.
func (p *Plugin) leave(w *waiter) (grant, bool) {
	pl := &p.pool
	pl.mu.Lock()
	if i := slices.Index(pl.waiters, w); i >= 0 {
		pl.waiters = slices.Delete(pl.waiters, i, i+1)
		pl.mu.Unlock()
		return grant{}, false
	}
	pl.mu.Unlock()
	return <-w.ch, true // removed by whoever granted it, which sends right after
}

// startLocked starts an instance in the background in a free place. Callers hold pool.mu and have
// checked that there is a free place.
func (p *Plugin) startLocked() {
	p.pool.starting++
	go p.startInstance()
}

// startInstance instantiates an instance and hands it over (put). A failure goes to the caller that waits
// longest, if one does, as its call's error: the start was for it, and a plugin that cannot start must
// not make callers wait for nothing. With nobody waiting the failure is dropped; the next caller that
// finds no free instance starts another and sees the outcome.
func (p *Plugin) startInstance() {
	pl := &p.pool
	if pl.startHook != nil {
		pl.startHook()
	}
	var (
		in  *instance
		err error
	)
	if !p.closed.Load() {
		in, err = p.instantiate(context.Background())
	} else {
		err = ErrClosed
	}
	pl.mu.Lock()
	pl.starting--
	if err != nil {
		if len(pl.waiters) > 0 && !pl.closed {
			w := pl.popWaiter()
			pl.mu.Unlock()
			w.ch <- grant{err: err}
			return
		}
		pl.checkDrainedLocked()
		pl.mu.Unlock()
		return
	}
	pl.live++
	pl.mu.Unlock()
	p.put(in)
}

// popWaiter removes and returns the longest waiting caller. Callers hold mu and have checked there is one.
func (pl *pool) popWaiter() *waiter {
	w := pl.waiters[0]
	pl.waiters[0] = nil
	pl.waiters = pl.waiters[1:]
	return w
}

// put hands an instance that may serve again to the longest waiting caller, or keeps it free. A closed
// pool closes it instead.
func (p *Plugin) put(in *instance) {
	pl := &p.pool
	pl.mu.Lock()
	if pl.closed {
		pl.live--
		pl.checkDrainedLocked()
		pl.mu.Unlock()
		p.closeInstance(in)
		return
	}
	if len(pl.waiters) > 0 {
		w := pl.popWaiter()
		pl.mu.Unlock()
		w.ch <- grant{inst: in}
		return
	}
	pl.free = append(pl.free, in)
	pl.mu.Unlock()
}

// release takes back an instance whose call succeeded. Every yieldEvery calls it yields first, in the
// background; while it does, callers waiting for it keep waiting past the acquire timeout (see acquire),
// so a yield never makes a caller fail.
func (p *Plugin) release(in *instance) {
	in.calls++
	if in.calls%yieldEvery != 0 {
		p.put(in)
		return
	}
	pl := &p.pool
	pl.mu.Lock()
	pl.yielding++
	pl.mu.Unlock()
	go func() {
		if pl.yieldHook != nil {
			pl.yieldHook()
		}
		err := in.yield(p.r.cfg.callTimeout)
		pl.mu.Lock()
		pl.yielding--
		if err != nil || in.tainted {
			p.discardLocked(in)
			return
		}
		pl.mu.Unlock()
		p.put(in)
	}()
}

// discard closes an instance after a failure. Its place is free at once: nobody waits for a replacement
// that holds it. A replacement starts in the background only if a caller waits that no other instance on
// its way covers, or to keep the pool's minimum; otherwise the next caller that finds no free instance
// starts one.
func (p *Plugin) discard(in *instance) {
	p.pool.mu.Lock()
	p.discardLocked(in)
}

// discardLocked is discard for a caller that holds pool.mu; it unlocks it.
func (p *Plugin) discardLocked(in *instance) {
	pl := &p.pool
	pl.live--
	p.replaced.Add(1)
	if !pl.closed && (len(pl.waiters) > pl.starting+pl.yielding || pl.live+pl.starting < p.minInstances()) {
		p.startLocked()
	}
	pl.checkDrainedLocked()
	pl.mu.Unlock()
	p.closeInstance(in)
}

// checkDrainedLocked closes drained once a closed pool has nothing live or starting. Callers hold mu.
func (pl *pool) checkDrainedLocked() {
	if pl.closed && pl.live == 0 && pl.starting == 0 {
		select {
		case <-pl.drained:
		default:
			close(pl.drained)
		}
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

// shrink closes free instances beyond the most that were busy at once since the last look (and beyond the
// minimum), least recently used first. It never does while a caller waits: a caller that arrives
// afterwards and finds none free grows the pool again.
func (p *Plugin) shrink() {
	keep := max(int64(p.minInstances()), p.busyPeak.Swap(p.inFlight.Load()))
	pl := &p.pool
	pl.mu.Lock()
	var closing []*instance
	for int64(pl.live) > keep && len(pl.free) > 0 && len(pl.waiters) == 0 && !pl.closed {
		closing = append(closing, pl.free[0])
		pl.free = slices.Delete(pl.free, 0, 1)
		pl.live--
	}
	pl.mu.Unlock()
	for _, in := range closing {
		p.closeInstance(in)
		p.shrunk.Add(1)
	}
}

// Close waits for in-flight calls (up to ctx), closes every instance and the compiled module. Calls made
// after Close fail with KindBusy and ErrClosed. Close may be called again, for example after its context
// ended, and then finishes the job.
func (p *Plugin) Close(ctx context.Context) error {
	pl := &p.pool
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		pl.mu.Lock()
		pl.closed = true
		free := pl.free
		pl.free = nil
		pl.live -= len(free)
		pl.checkDrainedLocked()
		pl.mu.Unlock()
		close(p.closing)
		for _, in := range free {
			p.closeInstance(in)
		}
	})
	select {
	case <-pl.drained:
	case <-ctx.Done():
		return fmt.Errorf("plugins: close plugin[%s]@%s: %w", p.name, p.version, ctx.Err())
	}
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
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

// poolCounts returns the pool's live, starting and waiting counts together.
func (p *Plugin) poolCounts() (live, starting, waiting int) {
	p.pool.mu.Lock()
	defer p.pool.mu.Unlock()
	return p.pool.live, p.pool.starting, len(p.pool.waiters)
}
