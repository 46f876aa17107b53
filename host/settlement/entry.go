package settlement

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kassehq/kasse/plugin/abi"
)

// Entry is a ledger entry as the follower keeps it: the provider's entry with the account (topic) it is
// on and an id.
type Entry struct {
	// ID identifies the entry within its ledger (see entryID).
	ID    string `json:"id"`
	Topic string `json:"topic"`
	abi.LedgerEntry
}

// newEntry makes the follower's entry of a feed entry. An entry without a ledger date gets the date of
// its time (UTC): the feed's entries carry ledgerDate, but an answer that leaves it out still files.
func newEntry(topic string, e abi.LedgerEntry) Entry {
	if e.LedgerDate == "" {
		if t, err := time.Parse(time.RFC3339Nano, e.Time); err == nil {
			e.LedgerDate = t.UTC().Format(time.DateOnly)
		} else {
			e.LedgerDate = "0000-00-00"
		}
	}
	return Entry{ID: entryID(topic, e), Topic: topic, LedgerEntry: e}
}

// entryID names an entry by what the provider says about it. The Report API gives entries no id of their
// own, and one pspReference may have several fee entries; the balances around an entry make it unique on
// its account, since every entry moves the balance on from where the previous one left it. The id is
// stable, so the same entry read twice (after a restart, or by two instances) is counted once.
func entryID(topic string, e abi.LedgerEntry) string {
	h := sha256.New()
	for _, s := range []string{topic, e.EntryType, e.Reference, e.PSPReference, e.Time, e.LedgerDate,
		strconv.FormatInt(e.Amount, 10), strconv.FormatInt(e.BalanceBefore, 10),
		strconv.FormatInt(e.BalanceAfter, 10)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return topic + "-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// sortEntries puts entries in ledger order: funds before fees, then by time; a payout is the last entry
// of its day (the guide: "scheduled-for-payout will always be the last entry on the ledger date").
func sortEntries(es []Entry) {
	last := func(e Entry) int {
		if e.EntryType == abi.EntryScheduledForPayout {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(es, func(a, b Entry) int {
		return cmp.Or(-cmp.Compare(a.Topic, b.Topic), // "funds" > "fees": funds first
			strings.Compare(normTime(a.Time), normTime(b.Time)),
			cmp.Compare(last(a), last(b)),
			strings.Compare(a.ID, b.ID))
	})
}

// normTime makes an entry's time sortable as a string.
func normTime(s string) string {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC().Format("2006-01-02T15:04:05.000000000Z")
	}
	return s
}
