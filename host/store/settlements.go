package store

import (
	"context"
	"errors"
	"fmt"
	"time"
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
// captured sessions still waiting to appear on a ledger. Memory and Redis implement it; callers ask for it
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

	// ExpectSettlement notes that session id of ledger should appear on the ledger by due. Noting it again
	// keeps the earlier due time.
	ExpectSettlement(ctx context.Context, ledger, id string, due time.Time) error
	// SettlementArrived removes the expectation of session id; no expectation is not an error.
	SettlementArrived(ctx context.Context, ledger, id string) error
	// OverdueSettlements returns the ids of ledger whose due time is at or before now, sorted by id.
	OverdueSettlements(ctx context.Context, ledger string, now time.Time) ([]string, error)
}

// Interface guards.
var (
	_ Settlements = (*Memory)(nil)
	_ Settlements = (*Redis)(nil)
)

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
