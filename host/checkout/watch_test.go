package checkout

import (
	"testing"
	"time"

	"github.com/kassehq/kasse/host/payment"
)

// TestWatchAt: an authorized or captured session is checked again VerifyAfter after its money last moved,
// then at doubling intervals, until WatchFor has passed; a delivered platform update does not count as a
// move, and other states are not watched.
func TestWatchAt(t *testing.T) {
	s := &Service{cfg: Config{VerifyAfter: time.Minute, WatchFor: time.Hour}}
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	moved := func(state payment.State, extra ...payment.Event) *payment.Session {
		return &payment.Session{State: state, CreatedAt: t0.Add(-time.Minute),
			History: append([]payment.Event{{At: t0, From: payment.StatePending, To: payment.StateAuthorized}}, extra...)}
	}
	delivered := payment.Event{At: t0.Add(50 * time.Minute), From: payment.StateAuthorized, To: payment.StateAuthorized,
		Cause: "platform update delivered"}
	for _, tc := range []struct {
		name string
		sess *payment.Session
		now  time.Duration // after t0
		want time.Duration // after now; -1: not watched
	}{
		{"just authorized", moved(payment.StateAuthorized), 0, time.Minute},
		{"after the first check", moved(payment.StateAuthorized), time.Minute, time.Minute},
		{"doubling", moved(payment.StateAuthorized), 2 * time.Minute, 2 * time.Minute},
		{"doubling further", moved(payment.StateAuthorized), 16 * time.Minute, 16 * time.Minute},
		{"last check in the window", moved(payment.StateAuthorized), 59 * time.Minute, 59 * time.Minute},
		{"window over", moved(payment.StateAuthorized), time.Hour, -1},
		{"a delivery is not a move", moved(payment.StateAuthorized, delivered), 61 * time.Minute, -1},
		{"captured is watched", moved(payment.StateCaptured), 4 * time.Minute, 4 * time.Minute},
		{"pending is not", moved(payment.StatePending), time.Minute, -1},
		{"refunded is not", moved(payment.StateRefunded), time.Minute, -1},
		{"cancelled is not", moved(payment.StateCancelled), time.Minute, -1},
		{"a divergence is a move", moved(payment.StateCaptured, payment.Event{At: t0.Add(30 * time.Minute),
			From: payment.StateCaptured, To: payment.StateCaptured, Cause: payment.CauseDiverged}), 70 * time.Minute, 40 * time.Minute},
		{"a settled operation is a move", &payment.Session{State: payment.StateCaptured, CreatedAt: t0,
			Operations: []payment.ProviderOp{{SettledAt: t0.Add(30 * time.Minute)}}}, 32 * time.Minute, 2 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := t0.Add(tc.now)
			got := s.watchAt(tc.sess, now)
			switch {
			case tc.want < 0 && !got.IsZero():
				t.Errorf("watched until %v, want not watched", got.Sub(now))
			case tc.want >= 0 && !got.Equal(now.Add(tc.want)):
				t.Errorf("next check in %v, want %v", got.Sub(now), tc.want)
			}
		})
	}
}
