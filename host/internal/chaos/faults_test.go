//go:build linux

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"syscall"
	"time"
)

// faultLog counts the faults injected by kind and keeps notes on what could not be injected.
type faultLog struct {
	mu    sync.Mutex
	count map[string]int
	notes []string
}

func newFaultLog() *faultLog { return &faultLog{count: map[string]int{}} }

func (f *faultLog) injected(kind string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count[kind]++
}

func (f *faultLog) note(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notes = append(f.notes, fmt.Sprintf(format, args...))
}

func (f *faultLog) kinds() (kinds []string, counts map[string]int, notes []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	counts = map[string]int{}
	for k, n := range f.count {
		kinds = append(kinds, k)
		counts[k] = n
	}
	sort.Strings(kinds)
	return kinds, counts, append([]string(nil), f.notes...)
}

// fault is one scheduled fault: it starts at the fraction at of a 120-second cycle and lasts hold
// (0: a one-off).
type fault struct {
	at   float64
	kind string
	hold time.Duration
}

// cycle is the schedule of one 120-second cycle; every kind occurs once in it.
var cycle = []fault{
	{0.04, "callbacks-drop-30%", 30 * time.Second},
	{0.10, "kasse-kill-9", 0},
	{0.22, "sim-freeze", 20 * time.Second}, // longer than kasse's 15 s provider timeout
	{0.33, "redis-primary-kill", 0},
	{0.45, "callbacks-duplicate-reorder", 25 * time.Second},
	{0.50, "sim-slow", 15 * time.Second},
	{0.62, "platform-down", 15 * time.Second},
	{0.78, "kasse-kill-9", 0},
}

// runFaults injects the cycle's faults, the cycle scaled to duration when that is shorter than 120 s
// and repeated when it is longer, until ctx is done. Each fault is undone when its hold ends or ctx is
// done.
func (h *harness) runFaults(ctx context.Context, duration time.Duration) {
	cycleLen := 120 * time.Second
	if duration < cycleLen {
		cycleLen = duration
	}
	start := time.Now()
	var wg sync.WaitGroup
	defer wg.Wait()
	victim := 0
	for c := 0; time.Duration(c)*cycleLen < duration; c++ {
		for _, f := range cycle {
			at := start.Add(time.Duration(c)*cycleLen + time.Duration(f.at*float64(cycleLen)))
			if !sleep(ctx, time.Until(at)) {
				return
			}
			hold := f.hold
			if cycleLen < 120*time.Second {
				hold = time.Duration(float64(hold) * float64(cycleLen) / float64(120*time.Second))
				hold = max(hold, 4*time.Second)
				if f.kind == "sim-freeze" {
					hold = f.hold // the point is to outlast kasse's provider timeout
				}
			}
			switch f.kind {
			case "kasse-kill-9":
				h.killKasse(ctx, victim%len(h.kasses))
				victim++
			case "redis-primary-kill":
				h.killRedisPrimary(ctx)
			default:
				// Faults with a hold run beside the schedule so that they may overlap.
				wg.Add(1)
				go func() {
					defer wg.Done()
					h.holdFault(ctx, f.kind, hold)
				}()
			}
		}
	}
}

// killKasse kills instance i with SIGKILL, leaves it down for a few seconds, and restarts it.
func (h *harness) killKasse(ctx context.Context, i int) {
	k := h.kasses[i]
	k.proc.kill()
	h.faults.injected("kasse-kill-9")
	sleep(ctx, time.Duration(2000+rand.IntN(2000))*time.Millisecond)
	if err := k.proc.start(); err != nil {
		h.t.Errorf("restart %s: %v", k.proc.name, err)
		return
	}
	if err := k.proc.waitHTTP(context.WithoutCancel(ctx), k.url+"/readyz", 90*time.Second); err != nil {
		h.t.Errorf("restart: %v", err)
	}
}

// killRedisPrimary kills the Redis primary holding the most keys (kasse's data, while it all lives in one
// hash slot) without warning, and waits until its replica took over and the old primary rejoined as a
// replica.
func (h *harness) killRedisPrimary(ctx context.Context) {
	killed, err := h.cluster.KillBusiestPrimary(context.WithoutCancel(ctx))
	h.faults.injected("redis-primary-kill")
	if err != nil {
		h.t.Errorf("redis failover (killed %s): %v", killed, err)
	}
}

// holdFault turns a fault on, holds it, and turns it off.
func (h *harness) holdFault(ctx context.Context, kind string, hold time.Duration) {
	undo := func() {}
	switch kind {
	case "sim-freeze":
		if err := h.sim.signal(syscall.SIGSTOP); err != nil {
			h.t.Errorf("freeze simulator: %v", err)
			return
		}
		undo = func() {
			if err := h.sim.signal(syscall.SIGCONT); err != nil {
				h.t.Errorf("thaw simulator: %v", err)
			}
		}
	case "sim-slow":
		if !h.setSimFaults(ctx, func(d map[string]any) { d["latency"] = "200ms..2s" }) {
			h.faults.note("sim-slow not injected: the simulator has no PUT /_sim/faults")
			return
		}
		undo = func() { h.setSimFaults(context.WithoutCancel(ctx), func(d map[string]any) { delete(d, "latency") }) }
	case "callbacks-drop-30%":
		if !h.setSimFaults(ctx, func(d map[string]any) { callbacks(d)["drop"] = 0.3 }) {
			// The simulator without faults can only drop every callback.
			if a, err := h.simDo(ctx, "PUT", "/_sim/callback-mode", map[string]string{"mode": "drop"}); err != nil || a.status >= 300 {
				h.faults.note("callbacks-drop not injected: no /_sim/faults and no /_sim/callback-mode")
				return
			}
			h.faults.note("callbacks-drop: the simulator has no PUT /_sim/faults; dropped ALL callbacks (/_sim/callback-mode) instead of 30%%")
			undo = func() {
				_, _ = h.simDo(context.WithoutCancel(ctx), "PUT", "/_sim/callback-mode", map[string]string{"mode": "deliver"})
			}
			break
		}
		undo = func() {
			h.setSimFaults(context.WithoutCancel(ctx), func(d map[string]any) { delete(callbacks(d), "drop") })
		}
	case "callbacks-duplicate-reorder":
		if !h.setSimFaults(ctx, func(d map[string]any) {
			cb := callbacks(d)
			cb["duplicate"], cb["delay"], cb["reorder"] = 0.3, "0s..2s", true
		}) {
			h.faults.note("callbacks-duplicate-reorder not injected: the simulator has no PUT /_sim/faults")
			return
		}
		undo = func() {
			h.setSimFaults(context.WithoutCancel(ctx), func(d map[string]any) {
				cb := callbacks(d)
				delete(cb, "duplicate")
				delete(cb, "delay")
				delete(cb, "reorder")
			})
		}
	case "platform-down":
		h.plat.down.Store(true)
		undo = func() { h.plat.down.Store(false) }
	default:
		h.t.Errorf("unknown fault %q", kind)
		return
	}
	h.faults.injected(kind)
	sleep(ctx, hold)
	undo()
}

func callbacks(d map[string]any) map[string]any {
	cb, ok := d["callbacks"].(map[string]any)
	if !ok {
		cb = map[string]any{}
		d["callbacks"] = cb
	}
	return cb
}
