package payment

import (
	"errors"
	"testing"
	"time"
)

func obs(state State, auth, capt, ref, canc int64) Observation {
	return Observation{State: state, AuthorizedAmount: auth, CapturedAmount: capt, RefundedAmount: ref, CancelledAmount: canc}
}

func TestApply(t *testing.T) {
	const u = -1 // unknown
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		start   Session
		obs     []Observation
		want    State
		amounts [4]int64 // authorized, captured, refunded, cancelled
		events  int
	}{
		{"callback authorizes", Session{State: StatePending, Amount: 1000},
			[]Observation{obs(StateAuthorized, 1000, u, u, u)}, StateAuthorized, [4]int64{1000, 0, 0, 0}, 1},
		{"same callback twice applies once", Session{State: StatePending, Amount: 1000},
			[]Observation{obs(StateAuthorized, 1000, u, u, u), obs(StateAuthorized, 1000, u, u, u)}, StateAuthorized, [4]int64{1000, 0, 0, 0}, 1},
		{"partial then full capture", Session{State: StateAuthorized, Amount: 1000, AuthorizedAmount: 1000},
			[]Observation{obs(StateCaptured, u, 400, 0, u), obs(StateCaptured, u, 1000, 0, u)}, StateCaptured, [4]int64{1000, 1000, 0, 0}, 2},
		{"stale poll after capture changes nothing", Session{State: StateCaptured, Amount: 1000, AuthorizedAmount: 1000, CapturedAmount: 1000},
			[]Observation{obs(StateAuthorized, 1000, 0, 0, u)}, StateCaptured, [4]int64{1000, 1000, 0, 0}, 0},
		{"partial refund stays captured", Session{State: StateCaptured, Amount: 1000, AuthorizedAmount: 1000, CapturedAmount: 1000},
			[]Observation{obs(StateCaptured, u, 1000, 300, u)}, StateCaptured, [4]int64{1000, 1000, 300, 0}, 1},
		{"full refund", Session{State: StateCaptured, Amount: 1000, AuthorizedAmount: 1000, CapturedAmount: 1000},
			[]Observation{obs(StateCaptured, u, 1000, 1000, u)}, StateRefunded, [4]int64{1000, 1000, 1000, 0}, 1},
		{"refund of a partial capture leaves the rest capturable", Session{State: StateCaptured, Amount: 1000, AuthorizedAmount: 1000, CapturedAmount: 400},
			[]Observation{obs(StateCaptured, u, 400, 400, u)}, StateCaptured, [4]int64{1000, 400, 400, 0}, 1},
		{"cancel after authorize", Session{State: StateAuthorized, Amount: 1000, AuthorizedAmount: 1000},
			[]Observation{obs(StateCancelled, u, 0, u, 1000)}, StateCancelled, [4]int64{1000, 0, 0, 1000}, 1},
		{"cancel of pending", Session{State: StatePending, Amount: 1000},
			[]Observation{obs(StateCancelled, u, u, u, 0)}, StateCancelled, [4]int64{0, 0, 0, 0}, 1},
		{"user rejects", Session{State: StatePending, Amount: 1000},
			[]Observation{obs(StateRejected, u, u, u, u)}, StateRejected, [4]int64{0, 0, 0, 0}, 1},
		{"rejection after authorization is ignored", Session{State: StateAuthorized, Amount: 1000, AuthorizedAmount: 1000},
			[]Observation{obs(StateRejected, u, u, u, u)}, StateAuthorized, [4]int64{1000, 0, 0, 0}, 0},
		{"late authorize after expiry is ignored", Session{State: StateExpired, Amount: 1000},
			[]Observation{obs(StateAuthorized, 1000, u, u, u)}, StateExpired, [4]int64{1000, 0, 0, 0}, 1},
		{"direct sale", Session{State: StatePending, Amount: 1000},
			[]Observation{obs(StateCaptured, 1000, 1000, u, u)}, StateCaptured, [4]int64{1000, 1000, 0, 0}, 1},
		{"release the rest after partial capture", Session{State: StateCaptured, Amount: 1000, AuthorizedAmount: 1000, CapturedAmount: 400},
			[]Observation{obs(StateCancelled, u, 400, u, 600)}, StateCaptured, [4]int64{1000, 400, 0, 600}, 1},
		{"refund everything after releasing the rest", Session{State: StateCaptured, Amount: 1000, AuthorizedAmount: 1000, CapturedAmount: 400, CancelledAmount: 600},
			[]Observation{obs(StateCaptured, u, 400, 400, u)}, StateRefunded, [4]int64{1000, 400, 400, 600}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.start
			for _, o := range c.obs {
				s.Apply(o, "test", now)
			}
			got := [4]int64{s.AuthorizedAmount, s.CapturedAmount, s.RefundedAmount, s.CancelledAmount}
			if s.State != c.want || got != c.amounts || len(s.History) != c.events {
				t.Fatalf("state %s amounts %v events %d; want %s %v %d", s.State, got, len(s.History), c.want, c.amounts, c.events)
			}
		})
	}
}

func TestChecks(t *testing.T) {
	authorized := Session{State: StateAuthorized, Amount: 1000, AuthorizedAmount: 1000}
	partly := Session{State: StateCaptured, Amount: 1000, AuthorizedAmount: 1000, CapturedAmount: 400, RefundedAmount: 100}
	cases := []struct {
		name string
		run  func() (int64, error)
		want int64
		ok   bool
	}{
		{"capture rest", func() (int64, error) { return authorized.CheckCapture(0) }, 1000, true},
		{"capture part", func() (int64, error) { return authorized.CheckCapture(300) }, 300, true},
		{"capture too much", func() (int64, error) { return authorized.CheckCapture(1001) }, 0, false},
		{"capture negative", func() (int64, error) { return authorized.CheckCapture(-1) }, 0, false},
		{"capture the remainder", func() (int64, error) { return partly.CheckCapture(0) }, 600, true},
		{"refund before capture", func() (int64, error) { return authorized.CheckRefund(0) }, 0, false},
		{"refund rest", func() (int64, error) { return partly.CheckRefund(0) }, 300, true},
		{"refund too much", func() (int64, error) { return partly.CheckRefund(301) }, 0, false},
		{"cancel authorized", func() (int64, error) { return 0, authorized.CheckCancel() }, 0, true},
		{"cancel releases remainder", func() (int64, error) { return 0, partly.CheckCancel() }, 0, true},
		{"cancel refunded", func() (int64, error) { s := Session{State: StateRefunded}; return 0, s.CheckCancel() }, 0, false},
		{"capture pending", func() (int64, error) { s := Session{State: StatePending, Amount: 1000}; return s.CheckCapture(0) }, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.run()
			if (err == nil) != c.ok || got != c.want {
				t.Fatalf("got %d, %v; want %d ok=%v", got, err, c.want, c.ok)
			}
			if err != nil && !errors.Is(err, ErrTransition) {
				t.Fatalf("error %v does not wrap ErrTransition", err)
			}
		})
	}
}

func TestStates(t *testing.T) {
	for _, s := range States {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
	}
	if State("paid").Valid() {
		t.Error("unknown state is valid")
	}
	if StateCaptured.Final() || !StateRefunded.Final() || StatePending.Settled() || !StateAuthorized.Settled() {
		t.Error("Final/Settled wrong")
	}
}
