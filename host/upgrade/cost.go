package upgrade

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/kassehq/kasse/host/plugins"
)

// GateCost is what the gate measured of a version's cost: its golden vectors run on it and, when the
// plugin has an active version, on the active version too, interleaved, so that both see the same load.
type GateCost struct {
	// Vectors is how many vectors were timed.
	Vectors int `json:"vectors"`
	// Total is the sum of the per-vector times (the faster of two runs each) on this version.
	Total time.Duration `json:"totalNs"`
	// Slowest names the slowest vector on this version and its time.
	Slowest     string        `json:"slowest,omitempty"`
	SlowestTime time.Duration `json:"slowestNs,omitempty"`
	// Active is the version compared with and ActiveTotal its sum over the same vectors; empty when the
	// plugin had no active version.
	Active      string        `json:"active,omitempty"`
	ActiveTotal time.Duration `json:"activeTotalNs,omitempty"`
	// Vector holds each vector's time on this version, by name.
	Vector map[string]time.Duration `json:"-"`
}

func (c GateCost) String() string {
	if c.Vectors == 0 {
		return "no vectors timed"
	}
	s := fmt.Sprintf("%d vectors in %v (slowest %s: %v)", c.Vectors, c.Total.Round(time.Microsecond), c.Slowest,
		c.SlowestTime.Round(time.Microsecond))
	if c.Active != "" {
		s += fmt.Sprintf(", %v on the active %s", c.ActiveTotal.Round(time.Microsecond), c.Active)
	}
	return s
}

// measure times the version's golden vectors on p and on the active version, and refuses p (RuleSlow) when
// it is slower than the active one by both Config.GateSlowdownFactor and, per vector, GateSlowdownMin.
// Each vector runs twice on each version, alternating which goes first, and the faster run counts: a
// stall of the machine then hits both sides or neither. Between vectors the gate yields the processor,
// so that live calls on other goroutines are not kept waiting behind it (guest code cannot be preempted).
func (m *Manager) measure(ctx context.Context, p Caller, active *version, v *Verified) (GateCost, error) {
	c := GateCost{Vector: map[string]time.Duration{}}
	var activeP Caller
	if active != nil {
		active.mu.RLock()
		if active.p != nil {
			activeP = active.p
			c.Active = active.manifest.Version
		}
		active.mu.RUnlock()
	}
	// A call of the new version that fails ends the measurement: the gate, which runs next, reports why.
	var failed bool
	timeOne := func(call Caller, input []byte, isNew bool) time.Duration {
		start := time.Now()
		_, err := call.Call(ctx, input)
		if err != nil && isNew {
			failed = true
		}
		return time.Since(start)
	}
	for i, g := range v.Golden {
		var mine, theirs time.Duration = 1<<62 - 1, 1<<62 - 1
		// Each side gets the vector in its own ABI version's encoding, as live calls do, so that a version
		// of the other ABI than the active one is not timed converting the input.
		myInput, theirInput := encodedFor(p, g.Input), encodedFor(activeP, g.Input)
		for r := range 2 {
			first := (i+r)%2 == 0
			if first {
				mine = min(mine, timeOne(p, myInput, true))
			}
			if activeP != nil {
				theirs = min(theirs, timeOne(activeP, theirInput, false))
			}
			if !first {
				mine = min(mine, timeOne(p, myInput, true))
			}
			runtime.Gosched()
		}
		if failed {
			return c, nil
		}
		c.Vectors++
		c.Total += mine
		c.Vector[g.Name] = mine
		if mine > c.SlowestTime {
			c.Slowest, c.SlowestTime = g.Name, mine
		}
		if activeP != nil {
			c.ActiveTotal += theirs
		}
		if err := ctx.Err(); err != nil {
			return c, fmt.Errorf("upgrade: gate: %w", err)
		}
		// A clearly slower version is refused once enough vectors say so, not after all of them.
		if c.Vectors >= earlyVerdict && c.Vectors < len(v.Golden) {
			if err := m.slower(c, v); err != nil {
				return c, err
			}
		}
	}
	return c, m.slower(c, v)
}

// earlyVerdict is how many vectors measure times before it may refuse a slow version early.
const earlyVerdict = 16

// slower refuses (RuleSlow) a version whose timed vectors so far are slower than the active version's by
// both thresholds.
func (m *Manager) slower(c GateCost, v *Verified) error {
	if c.Active == "" || c.Vectors == 0 {
		return nil
	}
	extra := (c.Total - c.ActiveTotal) / time.Duration(c.Vectors)
	if float64(c.Total) > m.cfg.GateSlowdownFactor*float64(c.ActiveTotal) && extra >= m.cfg.GateSlowdownMin {
		return &RefusedError{Plugin: v.Manifest.Name, Version: v.Manifest.Version, Rule: RuleSlow,
			Err: fmt.Errorf("%s: %v more per vector (thresholds %.1fx and +%v per vector)", c, extra.Round(time.Microsecond),
				m.cfg.GateSlowdownFactor, m.cfg.GateSlowdownMin)}
	}
	return nil
}

// encodedFor returns input (JSON) in the encoding of c's ABI version when c says what it is
// (*plugins.Plugin does), else unchanged.
func encodedFor(c Caller, input []byte) []byte {
	if v, ok := c.(interface{ ABIVersion() int }); ok {
		return plugins.ConvertInput(input, v.ABIVersion())
	}
	return input
}
