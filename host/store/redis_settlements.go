package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
)

// Settlement keys of the Redis store, beside those listed on the Redis type:
//
//	<prefix>{g}:lease:<name>              the holder of a follower lease, with the lease's TTL
//	<prefix>{g}:cursor:<feed>             a Report API feed's cursor
//	<prefix>{g}:ledger:<ledger>:<date>    hash: entry id -> entry JSON, one per ledger date
//	<prefix>{g}:ledgerdates:<ledger>      set of the ledger dates with entries
//	<prefix>{g}:expect:<ledger>           written by older versions only: session id scored by when its
//	                                      settlement is due; AdoptLegacyExpectations empties it
//
// They share the one unpartitioned tag {g} (RecordLedger writes a cursor and ledger hashes in one script;
// the traffic is a follower's, not the checkouts').
//
// The index of sessions awaiting the ledger is not here: it lives in the sessions' partitions (see the
// Redis type), written by their create and update scripts.
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

// awaitsLua defines awaits(raw, merchant): whether the stored session JSON raw is merchant's and awaits
// the ledger (payment.Session.AwaitsSettlement: captured more than its settlement's captures). The
// scripts that index or unindex a session outside its own writes decide with it, atomically with the
// stored session, so that they can never undo a write made in the meantime.
const awaitsLua = `
local function awaits(raw, merchant)
  if not raw then return false end
  local ok, t = pcall(cjson.decode, raw)
  if not ok or type(t) ~= 'table' or t['merchant'] ~= merchant then return false end
  local captured = tonumber(t['capturedAmount']) or 0
  local settled = 0
  if type(t['settlement']) == 'table' then settled = tonumber(t['settlement']['captured']) or 0 end
  return captured > 0 and settled < captured
end
`

// dropAwaitingScript: KEYS[1] session key, KEYS[2] the merchant's index of sessions awaiting the
// ledger (one slot: the session's partition); ARGV[1] session id, ARGV[2] merchant. Removes the id
// unless the stored session is the merchant's and awaits the ledger.
const dropAwaitingScript = awaitsLua + `
if awaits(redis.call('GET', KEYS[1]), ARGV[2]) then return 0 end
return redis.call('ZREM', KEYS[2], ARGV[1])
`

var dropAwaitingRedisScript = redis.NewScript(dropAwaitingScript)

// AwaitingSettlement implements Settlements.AwaitingSettlement. The index is one sorted set per
// partition (a session's entry is written by the session's own script, in its slot), so it reads every
// partition's set in one pipeline: one round trip per primary, once per follower round.
func (r *Redis) AwaitingSettlement(ctx context.Context, merchant string, since time.Time) ([]string, error) {
	upTo := micros(since)
	parts := make([]*redis.StringSliceCmd, Partitions)
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range parts {
			parts[i] = p.ZRangeByScore(ctx, r.awaitingKey(i, merchant), &redis.ZRangeBy{Min: "-inf", Max: upTo})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: sessions awaiting settlement[%s]: %w", merchant, err)
	}
	var ids []string
	for _, c := range parts {
		got, err := c.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("store: sessions awaiting settlement[%s]: %w", merchant, err)
		}
		ids = append(ids, got...)
	}
	sort.Strings(ids)
	return ids, nil
}

// DropAwaitingSettlement implements Settlements.DropAwaitingSettlement.
func (r *Redis) DropAwaitingSettlement(ctx context.Context, merchant, id string) error {
	keys := []string{r.sessionKey(id), r.awaitingKey(partitionOf(id), merchant)}
	if err := r.write(ctx, dropAwaitingRedisScript, keys, id, merchant).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: drop awaiting settlement[%s]: %w", id, err)
	}
	return nil
}

// IndexesAwaitingSettlement implements Settlements: whether RedisOptions.AwaitingSettlement was set.
func (r *Redis) IndexesAwaitingSettlement() bool { return r.awaiting }

// adoptScript: KEYS[1] session key, KEYS[2] the merchant's index of sessions awaiting the ledger (the
// session's slot); ARGV[1] session id, ARGV[2] since (Unix microseconds), ARGV[3] merchant. Indexes the
// session if it is the merchant's and awaits the ledger (awaitsLua), keeping an earlier time already
// indexed.
const adoptScript = awaitsLua + `
if not awaits(redis.call('GET', KEYS[1]), ARGV[3]) then return 0 end
return redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])
`

var adoptRedisScript = redis.NewScript(adoptScript)

// AdoptLegacyExpectations implements LegacyExpectations. Each id is indexed in its session's slot first
// and only then taken off the legacy set (another slot), so a crash between the two adopts it again,
// which changes nothing.
func (r *Redis) AdoptLegacyExpectations(ctx context.Context, merchant, ledger string, payoutDelay time.Duration) (int, error) {
	key := r.globalKey("expect:" + keyEscaper.Replace(ledger))
	zs, err := r.client.ZRangeWithScores(ctx, key, 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("store: adopt legacy expectations[%s]: %w", ledger, err)
	}
	n := 0
	for _, z := range zs {
		id, _ := z.Member.(string)
		since := int64(z.Score) - payoutDelay.Microseconds()
		keys := []string{r.sessionKey(id), r.awaitingKey(partitionOf(id), merchant)}
		if err := r.write(ctx, adoptRedisScript, keys, id, since, merchant).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return n, fmt.Errorf("store: adopt legacy expectation[%s]: %w", id, err)
		}
		// Lost in a failover, it is adopted again next round, which changes nothing: no replica wait.
		if err := r.client.ZRem(ctx, key, id).Err(); err != nil {
			return n, fmt.Errorf("store: adopt legacy expectation[%s]: %w", id, err)
		}
		n++
	}
	return n, nil
}
