package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kassehq/kasse/host/payment"
)

// Lister lists a merchant's sessions newest first and counts them by state, for the operator console.
// Memory and Redis implement it; callers ask for it with a type assertion (as for UserIndex), so other
// Store implementations keep working.
//
// The index behind it is by creation time per merchant (and per merchant and state), written in the same
// atomic step as the session. A session whose Merchant an Update changes stays listed under the merchant
// it was created for until it expires; ListSessions skips it there.
type Lister interface {
	// ListSessions returns one page of q.Merchant's live sessions, newest first (ties by id,
	// descending). The page ends after q.Limit sessions, after q.MaxScan sessions were read without
	// filling it, or when none is left; Next is the cursor of the following page, "" at the end.
	ListSessions(ctx context.Context, q ListQuery) (ListPage, error)
	// CountSessions counts merchant's live sessions created in [from, to) by state; a zero from or to
	// leaves that end open. States without a session are absent.
	CountSessions(ctx context.Context, merchant string, from, to time.Time) (map[payment.State]int64, error)
}

// Interface guards.
var (
	_ Lister = (*Memory)(nil)
	_ Lister = (*Redis)(nil)
)

// ListQuery selects sessions for ListSessions.
type ListQuery struct {
	// Merchant whose sessions are listed. Required.
	Merchant string
	// State, if set, lists only sessions in that state (read from the index: cheap on Redis).
	State payment.State
	// From and To bound CreatedAt to [From, To); zero leaves that end open.
	From, To time.Time
	// Match, if set, keeps only the sessions it returns true for (plugin version, "needs attention").
	// It must not modify or keep the session it is given. Sessions it drops still count towards MaxScan.
	Match func(*payment.Session) bool
	// Limit is the page size. Default DefaultListLimit, at most MaxListLimit.
	Limit int
	// MaxScan bounds how many sessions one call reads when Match drops some. Default DefaultListScan.
	MaxScan int
	// Cursor is ListPage.Next of the page before; "" starts at the newest session.
	Cursor string
}

// ListPage is one page of ListSessions.
type ListPage struct {
	Sessions []*payment.Session
	// Next is the cursor of the following page; "" when there is none.
	Next string
	// Scanned is how many sessions were read to build the page.
	Scanned int
}

// List limits.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
	DefaultListScan  = 2000
)

// ErrBadCursor is returned (wrapped) for a ListQuery.Cursor that no ListPage.Next produced.
var ErrBadCursor = errors.New("malformed list cursor")

// listPos is a position in a merchant's creation-time index: a session's CreatedAt in Unix microseconds
// and its id. Pages go newest first, so the following page holds the sessions before the position.
type listPos struct {
	micros int64
	id     string
}

func (p listPos) String() string { return strconv.FormatInt(p.micros, 10) + ":" + p.id }

// before reports whether (micros, id) comes after p in newest-first order.
func (p listPos) before(micros int64, id string) bool {
	return micros < p.micros || micros == p.micros && id < p.id
}

func parseCursor(c string) (*listPos, error) {
	if c == "" {
		return nil, nil
	}
	ms, id, ok := strings.Cut(c, ":")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || id == "" {
		return nil, fmt.Errorf("store: list sessions: cursor %q: %w", c, ErrBadCursor)
	}
	return &listPos{micros: n, id: id}, nil
}

// normalize applies the defaults and checks q.
func (q *ListQuery) normalize() (*listPos, error) {
	if q.Merchant == "" {
		return nil, errors.New("store: list sessions: merchant is required")
	}
	if q.State != "" && !q.State.Valid() {
		return nil, fmt.Errorf("store: list sessions: unknown state %q", q.State)
	}
	if q.Limit <= 0 {
		q.Limit = DefaultListLimit
	}
	q.Limit = min(q.Limit, MaxListLimit)
	if q.MaxScan <= 0 {
		q.MaxScan = DefaultListScan
	}
	q.MaxScan = max(q.MaxScan, q.Limit)
	return parseCursor(q.Cursor)
}

// inRange reports whether t is in [from, to), zero ends open.
func inRange(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || t.Before(to))
}

// wants reports whether s belongs on q's page (index lookups aside).
func (q *ListQuery) wants(s *payment.Session) bool {
	return s.Merchant == q.Merchant && (q.State == "" || s.State == q.State) &&
		inRange(s.CreatedAt, q.From, q.To) && (q.Match == nil || q.Match(s))
}

// ListSessions implements Lister.ListSessions. It scans every session of the process, which is fine for
// the number one in-process store holds.
func (m *Memory) ListSessions(_ context.Context, q ListQuery) (ListPage, error) {
	after, err := q.normalize()
	if err != nil {
		return ListPage{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ListPage{}, fmt.Errorf("store: list sessions: %w", errClosed)
	}
	var cands []*payment.Session
	for id := range m.sessions {
		e, ok := m.liveLocked(id)
		if !ok || e.s.Merchant != q.Merchant || (q.State != "" && e.s.State != q.State) ||
			!inRange(e.s.CreatedAt, q.From, q.To) {
			continue
		}
		if after != nil && !after.before(e.s.CreatedAt.UnixMicro(), id) {
			continue
		}
		cands = append(cands, e.s)
	}
	slices.SortFunc(cands, func(a, b *payment.Session) int {
		if c := cmp.Compare(b.CreatedAt.UnixMicro(), a.CreatedAt.UnixMicro()); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	var page ListPage
	for i, s := range cands {
		if len(page.Sessions) == q.Limit || page.Scanned == q.MaxScan {
			page.Next = listPos{cands[i-1].CreatedAt.UnixMicro(), cands[i-1].ID}.String()
			break
		}
		page.Scanned++
		if q.Match == nil || q.Match(s) {
			page.Sessions = append(page.Sessions, clone(s))
		}
	}
	return page, nil
}

// CountSessions implements Lister.CountSessions.
func (m *Memory) CountSessions(_ context.Context, merchant string, from, to time.Time) (map[payment.State]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("store: count sessions: %w", errClosed)
	}
	out := map[payment.State]int64{}
	for id := range m.sessions {
		if e, ok := m.liveLocked(id); ok && e.s.Merchant == merchant && inRange(e.s.CreatedAt, from, to) {
			out[e.s.State]++
		}
	}
	return out, nil
}
