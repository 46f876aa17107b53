//go:build linux

package chaos

import (
	"context"
	"flag"
	"os"
	"testing"
	"time"
)

var durationFlag = flag.Duration("chaos.duration", 0,
	"how long the chaos suite drives load and injects faults (default 90s, or KASSE_CHAOS_DURATION)")

// loadDuration is the run's length: the flag, else KASSE_CHAOS_DURATION, else the short form.
func loadDuration(t *testing.T) time.Duration {
	if *durationFlag > 0 {
		return *durationFlag
	}
	if v := os.Getenv("KASSE_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("KASSE_CHAOS_DURATION=%q: want a positive Go duration such as 10m", v)
		}
		return d
	}
	return 90 * time.Second
}

// TestChaos runs the chaos suite (see the package documentation): load and faults for the duration, then
// the invariants, polled until they hold or the settling deadline passes, printed as a table.
func TestChaos(t *testing.T) {
	duration := loadDuration(t)
	h := start(t)

	ctx, stop := context.WithTimeout(t.Context(), duration)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.runFaults(ctx, duration)
	}()
	// A few scenarios a second at most, and no more than 12 at once: the machine has two cores.
	h.runLoad(ctx, 400*time.Millisecond, 12)
	<-done

	// Every fault undone (runFaults undoes its own when ctx ends); now let kasse settle.
	settle := context.WithoutCancel(t.Context())
	h.setSimFaults(settle, func(d map[string]any) { clear(d) })
	deadline := time.Now().Add(pendingTimeout + 2*maxPoll + 60*time.Second)
	var verdicts []*verdict
	for {
		o, err := h.observe(settle)
		if err == nil {
			verdicts = h.check(o)
			// The 500s counted during the load cannot recover; the rest may still settle.
			if allHold(verdicts[:len(verdicts)-1]) {
				break
			}
		} else {
			t.Logf("observe: %v", err)
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(3 * time.Second)
	}
	if verdicts == nil {
		t.Fatal("the invariants could not be read before the deadline")
	}
	t.Log(h.table(verdicts, duration) + h.metricsSummary(settle))
	if !allHold(verdicts) {
		h.diagnose(settle, verdicts)
	}
	for _, v := range verdicts {
		if v.failed > 0 {
			t.Errorf("invariant failed: %s (%d of %d)", v.name, v.failed, v.checked)
		}
	}
}

func allHold(vs []*verdict) bool {
	for _, v := range vs {
		if v.failed > 0 {
			return false
		}
	}
	return true
}
