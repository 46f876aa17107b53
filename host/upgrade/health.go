package upgrade

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/kassehq/kasse/host/plugins"
	"github.com/kassehq/kasse/schemas"
)

// Why a version's health is judged on what users see
//
// A version fails a user when a call traps, times out or exits, when it answers an error as data that is
// its own fault (a plugin_* code, unexpected_response, a code the ABI does not name, or invalid_input for
// an input the host already validated), when its output fails the schema, and when the host refuses what
// it built (Refused: a request that would change a value kasse decides, a redirect outside the allow-list).
// It does not fail a user when the provider refuses an operation (provider_error: a capture over the
// reserved amount, say) or the host could not give it an instance (busy). Failure rate and p99 latency of a
// version on probation are compared with the version it is measured against (the active version, for a
// canary; the version it replaced, for a newly activated one), so that a refusal every version gives (an
// unsupported userFlow) does not roll anything back.

// latencyWindow is how many recent call latencies a version keeps for its p99.
const latencyWindow = 512

// latencyCheckEvery is how often (in probation calls) the p99 of a version on probation is computed.
const latencyCheckEvery = 32

// Defaults of the latency rollback and the gate's cost check.
const (
	// DefaultRollbackLatencyFactor and DefaultRollbackLatencyMin: a version on probation is rolled back
	// when its p99 exceeds its baseline's by this factor and by at least this much.
	DefaultRollbackLatencyFactor = 3.0
	DefaultRollbackLatencyMin    = 20 * time.Millisecond
	// DefaultLatencyMinCalls is how many probation calls a version serves before its p99 is judged.
	DefaultLatencyMinCalls = 100
	// DefaultGateSlowdownFactor and DefaultGateSlowdownMin: a version whose gate is this many times
	// slower than the active version's, and slower by at least this much per vector, is refused.
	DefaultGateSlowdownFactor = 3.0
	DefaultGateSlowdownMin    = 2 * time.Millisecond
)

// latencies is a lock-free ring of recent call latencies in nanoseconds.
type latencies struct {
	n   atomic.Uint64
	buf [latencyWindow]atomic.Int64
}

func (l *latencies) add(d time.Duration) {
	i := l.n.Add(1) - 1
	l.buf[i%latencyWindow].Store(int64(d))
}

// p99 returns the 99th percentile of the recorded latencies and how many it is computed from.
func (l *latencies) p99() (time.Duration, int) {
	n := int(min(l.n.Load(), latencyWindow))
	if n == 0 {
		return 0, 0
	}
	s := make([]int64, n)
	for i := range s {
		s[i] = l.buf[i].Load()
	}
	slices.Sort(s)
	return time.Duration(s[min(n-1, (n*99)/100)]), n
}

// outputFailure reports whether an output that decoded without a call error is a failure the plugin is
// to blame for, and why. Callers have checked the schema when they need to.
func outputFailure(out []byte) (bool, string) {
	if bytes.HasPrefix(out, []byte(`{"ok":true`)) {
		return false, ""
	}
	var o struct {
		OK    *bool `json:"ok"`
		Error *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(out, &o); err != nil || o.OK == nil {
		return true, "output is not an abi.Output"
	}
	if *o.OK {
		return false, ""
	}
	if o.Error == nil {
		return true, "ok false without an error"
	}
	switch o.Error.Code {
	case "provider_error":
		return false, "" // the provider refused: expected, the plugin reported it faithfully
	}
	return true, "error " + o.Error.Code
}

// failureOf classifies one call.
func failureOf(err error) bool {
	if err == nil {
		return false
	}
	var ce *plugins.CallError
	if errors.As(err, &ce) {
		return ce.Kind != plugins.KindBusy && ce.Kind != plugins.KindInputTooLarge
	}
	return true
}

// Refused counts against this version something the host refused after the call returned: a built
// request that changes a value kasse decides, or a redirect target outside the merchant's allow-list. The
// checkout service calls it (through an interface check) so that such a version is rolled back like one
// that traps.
func (v *version) Refused(err error) {
	v.refused.Add(1)
	v.record(true, 0, false)
	v.m.log.Warn("plugin output refused by the host", "plugin", v.manifest.Name, "version", v.manifest.Version, "err", err)
}

// observe counts a call, checks a version on probation against the rollback thresholds, and feeds the
// shadow.
// A bulk call (plugins.WithBulk: a settlement page, large by nature) counts as a call and by its outcome,
// but not in the latency compared with the baseline, and is not offered to a shadow.
func (v *version) observe(input, out []byte, err error, took time.Duration, bulk bool) {
	failed := failureOf(err)
	if err == nil {
		if f, _ := outputFailure(out); f {
			failed = true
		} else if v.probation.Load() && v.m.cfg.Schemas.Validate(schemas.PluginOutput, out) != nil {
			failed = true
		}
	}
	if bulk {
		took = 0
	}
	v.record(failed, took, true)
	if sh := v.st.shadow.Load(); !bulk && sh != nil && sh.v != v && v.st.active.Load() == v {
		sh.offer(input, out, err)
	}
}

// record counts one outcome (a call, or a refusal after a call that was already counted: then took is 0
// and counted false) and starts an automatic rollback when a version on probation is clearly worse than
// its baseline.
func (v *version) record(failed bool, took time.Duration, isCall bool) {
	if isCall {
		v.calls.Add(1)
		if took > 0 {
			v.lat.add(took)
		}
	}
	if failed {
		v.failed.Add(1)
	}
	if !v.probation.Load() {
		return
	}
	var calls uint64
	if isCall {
		calls = v.probCalls.Add(1)
	} else {
		calls = v.probCalls.Load()
	}
	f := v.probFailed.Load()
	if failed {
		f = v.probFailed.Add(1)
	}
	if why := v.worse(failed, f, calls); why != "" {
		if v.rollbackStarted.CompareAndSwap(false, true) && !v.m.closed.Load() {
			v.m.bg.Add(1)
			go v.m.autoRollback(v, why)
		}
		return
	}
	if limit := v.probationLimit.Load(); limit > 0 && calls >= limit {
		v.probation.Store(false)
	}
}

// worse says why a version on probation with f failures in calls is clearly worse than its baseline, or
// "" when it is not.
func (v *version) worse(justFailed bool, f, calls uint64) string {
	cfg := v.m.cfg
	base := v.baseline()
	var baseRate float64
	if base != nil {
		if bc := base.calls.Load(); bc > 0 {
			baseRate = float64(base.failed.Load()) / float64(bc)
		}
	}
	if justFailed && calls > 0 && f >= uint64(cfg.RollbackErrors) {
		rate := float64(f) / float64(calls)
		if rate >= cfg.RollbackErrorRate && rate-baseRate >= cfg.RollbackErrorRate {
			return fmt.Sprintf("%d of %d calls failed (%.1f%%, %.1f%% on %s; thresholds %d calls and %.0f points more)",
				f, calls, 100*rate, 100*baseRate, baseName(base), cfg.RollbackErrors, 100*cfg.RollbackErrorRate)
		}
	}
	if calls >= uint64(cfg.LatencyMinCalls) && calls%latencyCheckEvery == 0 && base != nil {
		p99, n := v.lat.p99()
		bp99, bn := base.lat.p99()
		if n >= cfg.LatencyMinCalls && bn >= cfg.LatencyMinCalls &&
			float64(p99) > cfg.RollbackLatencyFactor*float64(bp99) && p99-bp99 >= cfg.RollbackLatencyMin {
			return fmt.Sprintf("p99 latency %v over %d calls, against %v on %s (thresholds %.1fx and +%v)",
				p99.Round(time.Microsecond), n, bp99.Round(time.Microsecond), baseName(base),
				cfg.RollbackLatencyFactor, cfg.RollbackLatencyMin)
		}
	}
	return ""
}

// baseline is the version a version on probation is compared with: the active version for a canary, the
// version it replaced for an activated one.
func (v *version) baseline() *version {
	if b := v.base.Load(); b != nil {
		return b
	}
	if a := v.st.active.Load(); a != nil && a != v {
		return a
	}
	return nil
}

func baseName(b *version) string {
	if b == nil {
		return "no baseline"
	}
	return b.manifest.Version
}
