package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Settlement keys of the Redis store, beside those listed on the Redis type:
//
//	<prefix>{g}:lease:<name>              the holder of a follower lease, with the lease's TTL
//	<prefix>{g}:cursor:<feed>             a Report API feed's cursor
//	<prefix>{g}:ledger:<ledger>:<date>    hash: entry id -> entry JSON, one per ledger date
//	<prefix>{g}:ledgerdates:<ledger>      set of the ledger dates with entries
//	<prefix>{g}:expect:<ledger>           sorted set: session id scored by when its settlement is due
//
// They share the one unpartitioned tag {g} (RecordLedger writes a cursor and ledger hashes in one script;
// the traffic is a follower's, not the checkouts').
//
// RecordLedger is one Lua script (compare the cursor, HSETNX each entry, SET the cursor), so two
// followers that read the same page store it once and move the cursor once.

// leaseScript: KEYS[1] lease key; ARGV[1] holder, ARGV[2] TTL in ms. Returns 1 if holder holds it after.
const leaseScript = `
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`

// recordLedgerScript: KEYS[1] cursor key, KEYS[2] dates set, KEYS[2+i] the hash of record i.
// ARGV[1] old cursor, ARGV[2] next cursor, then per record i: ARGV[3i] id, ARGV[3i+1] date, ARGV[3i+2]
// data. Returns 1 if it wrote, 0 if the cursor was not old.
const recordLedgerScript = `
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
local n = (#ARGV - 2) / 3
for i = 1, n do
  redis.call('HSETNX', KEYS[2 + i], ARGV[3 * i], ARGV[3 * i + 2])
  redis.call('SADD', KEYS[2], ARGV[3 * i + 1])
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`

var (
	leaseRedisScript        = redis.NewScript(leaseScript)
	releaseLeaseRedisScript = redis.NewScript(releaseScript)
	recordLedgerRedisScript = redis.NewScript(recordLedgerScript)
)

func (r *Redis) leaseKey(name string) string   { return r.globalKey("lease:" + name) }
func (r *Redis) cursorKey(feed string) string  { return r.globalKey("cursor:" + feed) }
func (r *Redis) datesKey(ledger string) string { return r.globalKey("ledgerdates:" + ledger) }
func (r *Redis) expectKey(ledger string) string {
	return r.globalKey("expect:" + ledger)
}
func (r *Redis) ledgerKey(ledger, date string) string {
	return r.globalKey("ledger:" + keyEscaper.Replace(ledger) + ":" + date)
}

// AcquireLease implements Settlements.AcquireLease.
func (r *Redis) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := checkLeaseArgs(name, holder, ttl); err != nil {
		return false, err
	}
	n, err := leaseRedisScript.Run(ctx, r.client, []string{r.leaseKey(name)}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("store: acquire lease[%s]: %w", name, err)
	}
	return n == 1, nil
}

// ReleaseLease implements Settlements.ReleaseLease.
func (r *Redis) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := releaseLeaseRedisScript.Run(ctx, r.client, []string{r.leaseKey(name)}, holder).Err(); err != nil &&
		!errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: release lease[%s]: %w", name, err)
	}
	return nil
}

// FeedCursor implements Settlements.FeedCursor.
func (r *Redis) FeedCursor(ctx context.Context, feed string) (string, error) {
	c, err := r.client.Get(ctx, r.cursorKey(feed)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: feed cursor[%s]: %w", feed, err)
	}
	return c, nil
}

// RecordLedger implements Settlements.RecordLedger.
func (r *Redis) RecordLedger(ctx context.Context, ledger, feed, old, next string, recs []LedgerRecord) (bool, error) {
	if err := checkRecords(ledger, feed, recs); err != nil {
		return false, err
	}
	keys := []string{r.cursorKey(feed), r.datesKey(keyEscaper.Replace(ledger))}
	args := []any{old, next}
	for _, rec := range recs {
		keys = append(keys, r.ledgerKey(ledger, rec.Date))
		args = append(args, rec.ID, rec.Date, rec.Data)
	}
	n, err := r.write(ctx, recordLedgerRedisScript, keys, args...).Int()
	if err != nil {
		return false, fmt.Errorf("store: record ledger[%s]: %w", ledger, err)
	}
	return n == 1, nil
}

// LedgerEntries implements Settlements.LedgerEntries.
func (r *Redis) LedgerEntries(ctx context.Context, ledger, date string) ([]LedgerRecord, error) {
	m, err := r.client.HGetAll(ctx, r.ledgerKey(ledger, date)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: ledger entries[%s/%s]: %w", ledger, date, err)
	}
	out := make([]LedgerRecord, 0, len(m))
	for id, data := range m {
		out = append(out, LedgerRecord{ID: id, Date: date, Data: []byte(data)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// LedgerDates implements Settlements.LedgerDates.
func (r *Redis) LedgerDates(ctx context.Context, ledger string) ([]string, error) {
	dates, err := r.client.SMembers(ctx, r.datesKey(keyEscaper.Replace(ledger))).Result()
	if err != nil {
		return nil, fmt.Errorf("store: ledger dates[%s]: %w", ledger, err)
	}
	sort.Strings(dates)
	return dates, nil
}

// ExpectSettlement implements Settlements.ExpectSettlement.
func (r *Redis) ExpectSettlement(ctx context.Context, ledger, id string, due time.Time) error {
	if ledger == "" || id == "" {
		return errors.New("store: expect settlement: ledger and id are required")
	}
	err := r.client.ZAddNX(ctx, r.expectKey(keyEscaper.Replace(ledger)),
		redis.Z{Score: float64(due.UnixMicro()), Member: id}).Err()
	if err != nil {
		return fmt.Errorf("store: expect settlement[%s]: %w", id, err)
	}
	return nil
}

// SettlementArrived implements Settlements.SettlementArrived.
func (r *Redis) SettlementArrived(ctx context.Context, ledger, id string) error {
	if err := r.client.ZRem(ctx, r.expectKey(keyEscaper.Replace(ledger)), id).Err(); err != nil {
		return fmt.Errorf("store: settlement arrived[%s]: %w", id, err)
	}
	return nil
}

// OverdueSettlements implements Settlements.OverdueSettlements.
func (r *Redis) OverdueSettlements(ctx context.Context, ledger string, now time.Time) ([]string, error) {
	ids, err := r.client.ZRangeByScore(ctx, r.expectKey(keyEscaper.Replace(ledger)), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.UnixMicro(), 10)}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: overdue settlements[%s]: %w", ledger, err)
	}
	sort.Strings(ids)
	return ids, nil
}
