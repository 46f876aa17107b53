package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kassehq/kasse/host/payment"
)

// LedgerRecord is one Report API ledger entry as the store keeps it. The store does not read Data; the
// settlement follower owns its shape.
type LedgerRecord struct {
	// ID identifies the entry within its ledger; recording an ID that is already stored keeps the first.
	ID string
	// Date is the entry's ledger date, YYYY-MM-DD.
	Date string
	// Data is the entry, JSON.
	Data []byte
}

// Settlements keeps what the settlement follower shares between kasse instances: a lease per follower,
// the cursor of each Report API feed, the ledger entries read from the feeds (by ledger date), and the
// index of captured sessions still waiting to appear on their merchant's ledger, which the session
// writes themselves keep. Memory and Redis implement it; callers ask for it
// with a type assertion, so other Store implementations keep working.
type Settlements interface {
	// AcquireLease takes the lease name for holder for ttl (> 0) if nobody holds it, or extends it if
	// holder already does. It reports whether holder holds the lease after the call.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if holder holds it; otherwise it changes nothing.
	ReleaseLease(ctx context.Context, name, holder string) error

	// FeedCursor returns the stored cursor of feed, "" if none is stored (read from the start).
	FeedCursor(ctx context.Context, feed string) (string, error)
	// RecordLedger, in one atomic step, stores recs under ledger (an ID already stored keeps its first
	// record) and moves feed's cursor from old to next. If feed's cursor is not old (another follower got
	// there first) it writes nothing and reports false.
	RecordLedger(ctx context.Context, ledger, feed, old, next string, recs []LedgerRecord) (bool, error)
	// LedgerEntries returns the records of ledger with ledger date date, sorted by ID; none is not an error.
	LedgerEntries(ctx context.Context, ledger, date string) ([]LedgerRecord, error)
	// LedgerDates returns the ledger dates ledger has records for, sorted.
	LedgerDates(ctx context.Context, ledger string) ([]string, error)

	// AwaitingSettlement returns the ids of merchant's sessions that have awaited the ledger
	// (payment.Session.AwaitsSettlement) since at or before since, sorted by id. The index it reads is
	// written by Create and Update in the same atomic step as the session: a session enters it, scored
	// by its UpdatedAt, with the write that makes it await the ledger (a capture), keeps that time while
	// it goes on awaiting (a further capture), and leaves it with the write that makes it stop (the
	// ledger's captures caught up, or the merchant changed). An id whose session has expired since, or
	// no longer awaits the ledger, may still be listed; DropAwaitingSettlement removes it.
	AwaitingSettlement(ctx context.Context, merchant string, since time.Time) ([]string, error)
	// DropAwaitingSettlement removes id from merchant's index unless its stored session is merchant's and
	// awaits the ledger (decided atomically with the stored session, so a concurrent capture is not
	// undone): for an expired session, or an entry a write that did not keep the index left behind (an
	// older kasse version's, during an upgrade). Dropping an id that is not listed is not an error.
	DropAwaitingSettlement(ctx context.Context, merchant, id string) error
	// IndexesAwaitingSettlement reports whether this store's session writes keep the index that
	// AwaitingSettlement reads (Memory: always; Redis: with RedisOptions.AwaitingSettlement).
	IndexesAwaitingSettlement() bool
}

// LegacyExpectations is implemented by stores that may hold the expectations kasse wrote before the
// index of sessions awaiting the ledger existed: one sorted set per followed ledger, written by a
// separate call after the capture (Redis: "<prefix>{g}:expect:<ledger>", session ids scored by due time).
// The follower adopts them into the index each round, so that a capture expected by an older version
// (before an upgrade, or by an older instance still running beside new ones during a rolling upgrade)
// is not lost. It can be removed once no older version runs and no such set is left.
type LegacyExpectations interface {
	// AdoptLegacyExpectations moves every id of the legacy set of ledger (the name the older version
	// used: "<merchant>/<ledger id>") into merchant's index of sessions awaiting the ledger, as awaited
	// since its due time less payoutDelay, if its session still awaits the ledger; it reports how many
	// ids it took off the legacy set.
	AdoptLegacyExpectations(ctx context.Context, merchant, ledger string, payoutDelay time.Duration) (int, error)
}

// Interface guards.
var (
	_ Settlements        = (*Memory)(nil)
	_ Settlements        = (*Redis)(nil)
	_ LegacyExpectations = (*Redis)(nil)
)

// awaitingSince is the time a session that starts to await the ledger is indexed under: the time of
// the write that made it await (its capture), as the writer's clock put it in UpdatedAt, in whole
// microseconds like the Redis index's scores.
func awaitingSince(s *payment.Session) time.Time {
	t := s.UpdatedAt
	if t.IsZero() {
		t = s.CreatedAt
	}
	return toMicros(t)
}

// checkLeaseArgs checks the arguments of AcquireLease.
func checkLeaseArgs(name, holder string, ttl time.Duration) error {
	if name == "" || holder == "" {
		return fmt.Errorf("store: acquire lease[%s]: name and holder are required", name)
	}
	if ttl <= 0 {
		return fmt.Errorf("store: acquire lease[%s]: ttl %s is not positive", name, ttl)
	}
	return nil
}

// checkRecords checks the records handed to RecordLedger.
func checkRecords(ledger, feed string, recs []LedgerRecord) error {
	if ledger == "" || feed == "" {
		return errors.New("store: record ledger: ledger and feed are required")
	}
	for i, r := range recs {
		if r.ID == "" || r.Date == "" {
			return fmt.Errorf("store: record ledger[%s]: record %d has no id or date", ledger, i)
		}
	}
	return nil
}
