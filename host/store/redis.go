package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/redis/go-redis/v9"

	"github.com/kassehq/kasse/host/payment"
	"sync/atomic"
)

// DefaultKeyPrefix is the prefix of every key the Redis store writes unless RedisOptions says otherwise.
const DefaultKeyPrefix = "kasse:"

// DefaultMaxUpdateAttempts bounds how often Redis.Update tries to write before it returns ErrConflict.
const DefaultMaxUpdateAttempts = 64

// Back-off between conflicting Update attempts: a random wait below min(base<<attempt, max).
const (
	updateBackoffBase = 100 * time.Microsecond
	updateBackoffMax  = 20 * time.Millisecond
)

// RedisOptions configures NewRedis and NewRedisFromClient. The zero value is usable.
type RedisOptions struct {
	// KeyPrefix starts every key (default DefaultKeyPrefix, "kasse:"). Instances that share one Redis
	// share state exactly when their prefixes are equal. A prefix without a hash tag lets the store spread
	// its keys over Partitions hash tags (see the Redis type); a prefix with one ("{kasse}:") puts every key
	// in that one slot, as layout 1 did on a cluster.
	KeyPrefix string
	// MaxUpdateAttempts bounds the optimistic write attempts of one Update (default
	// DefaultMaxUpdateAttempts). Past it Update returns ErrConflict.
	MaxUpdateAttempts int
	// OpTimeout bounds each Redis command (default DefaultOpTimeout). A command that fails or times
	// out because Redis is down, frozen or failing over returns an error wrapping ErrUnavailable.
	OpTimeout time.Duration
	// WaitReplicas, when positive, makes every write that changes a session, a poll or an idempotency
	// key wait (Redis WAIT, on the connection that wrote) until that many replicas have it, for at most
	// WaitTimeout (default DefaultWaitTimeout). Redis replicates asynchronously: without it, a primary
	// killed right after acknowledging a write can lose the write when its replica takes over, while
	// kasse has already acted on it (told a platform, sent a capture). A write that fewer replicas
	// acknowledged in time fails with ErrNotReplicated (an ErrUnavailable), is counted
	// (UnreplicatedWrites), and is not acted on: it is on the primary, so it is treated like a write
	// whose answer was lost (see ErrUnavailable), which the in-doubt operations and the reconciler
	// already settle. A primary left without a live replica therefore refuses kasse's writes until one
	// is back, like Redis's own min-replicas-to-write: run two replicas per primary to ride out one.
	WaitReplicas int
	// WaitTimeout bounds the wait for replicas after each write. Default DefaultWaitTimeout.
	WaitTimeout time.Duration
	// AwaitingSettlement makes every session write keep the index of captured sessions awaiting the
	// merchant's ledger (Settlements.AwaitingSettlement), in the same script as the session; the
	// settlement follower needs it. Off (the default), the index is not written: a deployment that
	// follows no ledger would otherwise keep an entry per capture that nothing reads or removes.
	AwaitingSettlement bool
	// SeparateReads sends every session read (Get, GetByProviderReference and the read of an Update) to
	// Redis on its own. By default they go through go-redis's automatic pipeliner, which sends the reads
	// of concurrent callers in one batch (see RATIONALE.md, "Why session reads are pipelined and writes
	// are not"); writes never do.
	SeparateReads bool
}

// DefaultWaitTimeout bounds the wait for replicas after a write (RedisOptions.WaitReplicas): long
// enough for a replica on a busy machine, short against the operation's own bound.
const DefaultWaitTimeout = 500 * time.Millisecond

// Redis is the Store shared by every kasse instance that points at the same Redis with the same key prefix.
// It needs Redis 6.0 or later (SET ... KEEPTTL).
//
// # Keys (layout 2)
//
// Keys are spread over Partitions partitions, each with its own Redis Cluster hash tag <t> (a short
// number chosen so that the partitions sit evenly spaced over the 16384 slots; see partitionTags). P(x)
// is the partition of the string x (FNV-1a modulo Partitions). All keys are built in redis_layout.go.
//
//	<prefix>{<t of P(id)>}:session:<id>              the session as JSON, with the session's TTL
//	<prefix>{<t of P(ref)>}:ref:<merchant>:<ref>      the id of the session holding that provider reference
//	<prefix>{<t of P(id)>}:polls                      sorted set: the partition's session ids scored by due
//	                                                  time in Unix microseconds (one set per partition)
//	<prefix>{<t of P(scope,key)>}:idem:<scope>:<key>  an idempotency key's value, with its own TTL
//	<prefix>{<t of P(merchant,ref)>}:shopref:...      the session of a shop's order reference
//	<prefix>{<t of P(merchant,user)>}:user:...        the sessions of a shop's user
//	<prefix>{g}:layout                                the layout marker, "2" (see CheckLayout)
//	<prefix>{g}:...                                   settlement state (see redis_settlements.go)
//	<prefix>{<t of P(id)>}:list:<merchant>            sorted set: the partition's sessions of the merchant
//	                                                  scored by CreatedAt in Unix microseconds (the console's
//	                                                  listing, see Lister; one set per partition)
//	<prefix>{<t of P(id)>}:list:<merchant>:<state>    the same, for the sessions in one state
//	<prefix>{<t of P(id)>}:awaiting:<merchant>        sorted set: the partition's sessions of the merchant
//	                                                  awaiting the ledger, scored by when they began to
//	                                                  (Settlements.AwaitingSettlement; with
//	                                                  RedisOptions.AwaitingSettlement)
//
// ":" and "%" in merchant and scope are percent-escaped so that two pairs never share a key.
//
// A session, its poll entry and the reference key of a provider reference equal to its id share a
// partition, hence a slot: kasse's sessions use their id as provider reference (eCom orderId, ePayment
// reference), so Create and Update write all three in one script on one primary, and the sessions of
// many checkouts spread evenly over the primaries.
//
// # Atomicity
//
// Create runs one Lua script that checks both the session key and the reference key and writes both, so
// two instances creating the same id or reference cannot both win. ClaimDuePolls peeks at every
// partition in one pipeline and claims the earliest due with one script per partition (ZRANGEBYSCORE ...
// LIMIT, then ZADD XX with the lease's end), so each due id goes to one caller per lease.
// Idempotency keys are claimed and released by small scripts (get-or-set, compare-and-delete).
//
// Update is optimistic: it reads the session, runs fn in Go, and writes with a Lua compare-and-set that
// succeeds only if the stored JSON is still byte for byte what was read; otherwise it waits a short
// jittered back-off, reads again and calls fn again, up to MaxUpdateAttempts. The same script checks
// that a new provider reference is free, moves the reference key and keeps the TTL (KEEPTTL), all in one
// step. That was chosen over WATCH/MULTI because a transaction cannot branch on what it reads (is the new
// reference free?) without also WATCHing the reference key, WATCH pins a pooled connection for as long as
// fn runs, and the script writes in one round trip. Comparing the whole value rather than the Revision
// also rules out ABA: a session that expired and was created again with the same id and revision is a
// different value, unless it is identical, in which case applying fn to it is exactly right.
//
// # Redis Cluster
//
// Every multi-key script needs its keys in one slot, which the layout gives for the session, its poll
// entry and a reference equal to the id. A provider reference that differs from the id (a plugin that
// maps sessions to other references) lives in its own partition and is written in two steps: it is
// reserved first in its slot (set if absent, or kept if it already names the session), then the session
// is written; if that write does not happen the reservation is given back (compare-and-delete), and a
// reference the session moved away from is given back after the write. A crash between the steps leaves
// a reference key naming a session that does not hold it: readers ignore it (GetByProviderReference
// checks the session), and it keeps the reference reserved until it expires with the session's TTL.
// See RATIONALE.md, "Why sessions are partitioned by id".
type Redis struct {
	client redis.UniversalClient
	// reads serves the session reads: client's automatic pipeliner, or client itself (readerFor).
	reads       redis.Cmdable
	owned       bool
	prefix      string
	maxAttempts int

	createScript *redis.Script
	update       *redis.Script
	claim        *redis.Script
	release      *redis.Script
	polls        *redis.Script
	cancelPoll   *redis.Script
	swap         *redis.Script
	claimRef     *redis.Script

	waitReplicas int
	waitTimeout  time.Duration
	// awaiting: keep the index of sessions awaiting the ledger (RedisOptions.AwaitingSettlement).
	awaiting     bool
	opTimeout    time.Duration
	unreplicated atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

var (
	_ Store           = (*Redis)(nil)
	_ SnapshotUpdater = (*Redis)(nil)
	_ IndexingCreator = (*Redis)(nil)
)

// createScript: KEYS[1] session key, KEYS[2] poll set, KEYS[3] the merchant's list, KEYS[4] its list
// for the session's state; then, as ARGV[6] says, the optional keys in this order: "r" the provider
// reference key, "s" the shop reference key, "c" an idempotency key to claim (the last two only on a
// standalone Redis: they are in other slots), "a" the merchant's index of sessions awaiting the ledger.
// ARGV[1] session JSON, ARGV[2] TTL in milliseconds ("0": none), ARGV[3] session id, ARGV[4] the
// session's NextCheckAt in Unix microseconds, or "-" for none, ARGV[5] its CreatedAt in Unix microseconds,
// ARGV[6] the flags, ARGV[7] the claim's value and ARGV[8] its TTL in milliseconds, ARGV[9] the time
// the session awaits the ledger since, in Unix microseconds (with "a").
// Returns 0 on success, 1 if the id is taken, 2 if the reference is taken, or, as a string, the value the
// idempotency key already holds (nothing is written then).
const createScript = `
local i = 5
local ref, shop, idem, await
if string.find(ARGV[6], 'r', 1, true) then ref = KEYS[i]; i = i + 1 end
if string.find(ARGV[6], 's', 1, true) then shop = KEYS[i]; i = i + 1 end
if string.find(ARGV[6], 'c', 1, true) then idem = KEYS[i]; i = i + 1 end
if string.find(ARGV[6], 'a', 1, true) then await = KEYS[i] end
if idem then
  local v = redis.call('GET', idem)
  if v then return v end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if ref and redis.call('EXISTS', ref) == 1 then return 2 end
if idem then redis.call('SET', idem, ARGV[7], 'PX', ARGV[8]) end
if ARGV[2] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if ref then redis.call('SET', ref, ARGV[3], 'PX', ARGV[2]) end
  if shop then redis.call('SET', shop, ARGV[3], 'PX', ARGV[2]) end
else
  redis.call('SET', KEYS[1], ARGV[1])
  if ref then redis.call('SET', ref, ARGV[3]) end
  if shop then redis.call('SET', shop, ARGV[3]) end
end
if ARGV[4] ~= '-' then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3]) end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[3])
if await then redis.call('ZADD', await, 'NX', ARGV[9], ARGV[3]) end
return 0
`

// updateScript: KEYS[1] session key, KEYS[2] poll set, then the old reference key if ARGV[4] is "1",
// then the new reference key if ARGV[5] is "1", then the merchant's lists of the old and the new state
// if ARGV[7] is not "-", then the index of sessions awaiting the ledger to leave if ARGV[8] is "1", then
// the one to enter if ARGV[9] is not "-". ARGV[1] the JSON that was read, ARGV[2] the new JSON,
// ARGV[3] session id, ARGV[6] what happens to the poll schedule: "-" nothing, "rem" remove the session,
// else the due time in Unix microseconds, ARGV[7] "-" or, when the state changed, the session's CreatedAt
// in Unix microseconds, ARGV[9] "-" or the time the session awaits the ledger since, in Unix
// microseconds (an earlier time already in the index is kept).
// Returns 0 on success, 1 if the session is gone, 2 if it changed since it was read, 3 if the new
// reference is held by another session.
const updateScript = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 1 end
if cur ~= ARGV[1] then return 2 end
local i = 3
local old, new, lold, lnew, aleave, aenter
if ARGV[4] == '1' then old = KEYS[i]; i = i + 1 end
if ARGV[5] == '1' then new = KEYS[i]; i = i + 1 end
if ARGV[7] ~= '-' then lold = KEYS[i]; lnew = KEYS[i + 1]; i = i + 2 end
if ARGV[8] == '1' then aleave = KEYS[i]; i = i + 1 end
if ARGV[9] ~= '-' then aenter = KEYS[i] end
if new then
  local owner = redis.call('GET', new)
  if owner and owner ~= ARGV[3] then return 3 end
end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
if old and redis.call('GET', old) == ARGV[3] then redis.call('DEL', old) end
if new then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('SET', new, ARGV[3], 'PX', ttl) else redis.call('SET', new, ARGV[3]) end
end
if ARGV[6] == 'rem' then redis.call('ZREM', KEYS[2], ARGV[3])
elseif ARGV[6] ~= '-' then redis.call('ZADD', KEYS[2], ARGV[6], ARGV[3]) end
if lold then
  redis.call('ZREM', lold, ARGV[3])
  redis.call('ZADD', lnew, ARGV[7], ARGV[3])
end
if aleave then redis.call('ZREM', aleave, ARGV[3]) end
if aenter then redis.call('ZADD', aenter, 'NX', ARGV[9], ARGV[3]) end
return 0
`

// swapScript: KEYS[1] idempotency key; ARGV[1] expected value, ARGV[2] new value, ARGV[3] TTL in ms.
const swapScript = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`

// claimRefScript: KEYS[1] reference key; ARGV[1] session id, ARGV[2] TTL in milliseconds ("0": none).
// Reserves a reference that lives in another slot than its session. Returns 0 if it stored ARGV[1], 1
// if the key already named ARGV[1] (it is left as it is), 2 if it names another session.
const claimRefScript = `
local v = redis.call('GET', KEYS[1])
if v then if v == ARGV[1] then return 1 end return 2 end
if ARGV[2] ~= '0' then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) else redis.call('SET', KEYS[1], ARGV[1]) end
return 0
`

// releaseRef deletes reference key k if it still names session id.
func (r *Redis) releaseRef(ctx context.Context, k, id string) error {
	if err := r.write(ctx, r.release, []string{k}, id).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("give back the provider reference: %w", err)
	}
	return nil
}

// claimCrossRef reserves reference key k for session id (key sessionKey), whose slot differs, with the
// session's remaining TTL; it returns claimRefScript's answer.
func (r *Redis) claimCrossRef(ctx context.Context, sessionKey, k, id string) (int, error) {
	ttl, err := r.client.PTTL(ctx, sessionKey).Result()
	if err != nil {
		return 0, fmt.Errorf("read the session's TTL: %w", err)
	}
	px := "0"
	if ttl > 0 {
		px = millis(ttl)
	}
	res, err := r.write(ctx, r.claimRef, []string{k}, id, px).Int()
	if err != nil {
		return 0, fmt.Errorf("reserve the provider reference: %w", err)
	}
	return res, nil
}

// cancelPollScript: KEYS[1] poll set, KEYS[2] session key; ARGV[1] session id. Removes the id from the
// schedule unless the stored session still has a nextCheckAt (a concurrent write asked for a check).
const cancelPollScript = `
local s = redis.call('GET', KEYS[2])
if s then
  local ok, t = pcall(cjson.decode, s)
  if ok and type(t) == 'table' and t['nextCheckAt'] then return 0 end
end
return redis.call('ZREM', KEYS[1], ARGV[1])
`

// claimScript: KEYS[1] idempotency key; ARGV[1] value, ARGV[2] TTL in milliseconds.
// Returns the stored value, or "" after storing ARGV[1].
const claimScript = `
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ''
`

// releaseScript: KEYS[1] idempotency key; ARGV[1] value. Deletes the key only if it holds ARGV[1].
const releaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

// pollsScript: KEYS[1] poll set; ARGV[1] now, ARGV[2] limit, ARGV[3] lease end (Unix microseconds).
// Returns the claimed ids, earliest due first.
const pollsScript = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', ARGV[3], id) end
return ids
`

// NewRedis connects to the Redis at rawURL (redis://[user:password@]host:port/db or rediss://, as
// redis.ParseURL reads it), checks it answers PING within ctx, and returns a store that owns the
// connection: Close closes it. Errors never contain the URL's password.
func NewRedis(ctx context.Context, rawURL string, opts RedisOptions) (*Redis, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the whole URL, password included.
		return nil, errors.New("store: redis url is malformed (not shown: it may hold a password)")
	}
	shown := u.Redacted()
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store: redis url %s: %w", shown, err)
	}
	// Deadlines come from the context (see the bounded hook), so a frozen Redis cannot hold a request
	// past OpTimeout.
	o.ContextTimeoutEnabled = true
	client := redis.NewClient(o)
	r, err := NewRedisFromClient(client, opts)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	r.owned = true
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("store: connect to redis %s: %w", shown, err)
	}
	return r, nil
}

// NewRedisFromClient returns a store over an existing client: a *redis.Client, a *redis.ClusterClient
// (see RedisOptions.KeyPrefix) or anything else implementing redis.UniversalClient. The caller keeps
// ownership of client: Close does not close it. The store adds a hook to client that bounds every command
// by RedisOptions.OpTimeout and marks failures meaning "Redis is not there" with ErrUnavailable; set
// ContextTimeoutEnabled in the client's options so that the deadline also cuts blocked reads short.
func NewRedisFromClient(client redis.UniversalClient, opts RedisOptions) (*Redis, error) {
	if client == nil {
		return nil, errors.New("store: new redis store: nil client")
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	attempts := opts.MaxUpdateAttempts
	if attempts <= 0 {
		attempts = DefaultMaxUpdateAttempts
	}
	timeout := opts.OpTimeout
	if timeout <= 0 {
		timeout = DefaultOpTimeout
	}
	client.AddHook(bounded{timeout: timeout})
	reads, err := readerFor(client, opts.SeparateReads)
	if err != nil {
		return nil, err
	}
	wait := opts.WaitTimeout
	if wait <= 0 {
		wait = DefaultWaitTimeout
	}
	return &Redis{
		waitReplicas: max(opts.WaitReplicas, 0),
		awaiting:     opts.AwaitingSettlement,
		waitTimeout:  wait,
		opTimeout:    timeout,
		client:       client,
		reads:        reads,
		prefix:       prefix,
		maxAttempts:  attempts,
		createScript: redis.NewScript(createScript),
		update:       redis.NewScript(updateScript),
		claim:        redis.NewScript(claimScript),
		release:      redis.NewScript(releaseScript),
		polls:        redis.NewScript(pollsScript),
		cancelPoll:   redis.NewScript(cancelPollScript),
		swap:         redis.NewScript(swapScript),
		claimRef:     redis.NewScript(claimRefScript),
	}, nil
}

// KeyPrefix returns the prefix the store's keys start with, after any hash tag was added.
func (r *Redis) KeyPrefix() string { return r.prefix }

// hasHashTag reports whether key has a Redis Cluster hash tag: a "{" followed later by a "}" with at
// least one byte between them (Redis hashes only the part between the first such pair).
func hasHashTag(key string) bool {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return false
	}
	return strings.IndexByte(key[i+1:], '}') > 0
}

// withHashTag returns prefix unchanged if it has a hash tag, and otherwise wraps it in one, keeping a
// trailing ":" outside the braces ("kasse:" -> "{kasse}:"): the prefix layout 1 used on a cluster.
func withHashTag(prefix string) string {
	if hasHashTag(prefix) {
		return prefix
	}
	tag, sep := prefix, ""
	if strings.HasSuffix(tag, ":") {
		tag, sep = strings.TrimSuffix(tag, ":"), ":"
	}
	if tag == "" {
		tag = strings.TrimSuffix(DefaultKeyPrefix, ":")
	}
	return "{" + tag + "}" + sep
}

// millis converts a positive TTL to whole milliseconds for PX, rounding up so that it never becomes 0.
func millis(d time.Duration) string {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(int64(ms), 10)
}

func micros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// encodeSession encodes a session for storing. It is goccy/go-json's encoder, in about half
// encoding/json's time for a session, and gives exactly encoding/json's bytes (HTML escaped, omitzero, U+2028,
// invalid UTF-8; TestEncodeSessionIsEncodingJSON): an update from a snapshot compares the snapshot's
// encoding with what is stored, which an older kasse may have written with encoding/json.
func encodeSession(s *payment.Session) ([]byte, error) { return gojson.Marshal(s) }

// decodeSession reads a stored session. Every Get and Update pays for it, so it uses goccy/go-json's
// decoder, which reads encoding/json's output into the same values in a fraction of the time (see
// RATIONALE.md, "Why sessions are encoded and decoded with goccy/go-json"); encodeSession writes what
// encoding/json would, omitzero included, which the Lua scripts rely on (cancelPollScript looks for
// nextCheckAt).
func decodeSession(raw string) (*payment.Session, error) {
	var s payment.Session
	if err := gojson.UnmarshalNoEscape([]byte(raw), &s); err != nil {
		return nil, fmt.Errorf("decode stored session: %w", err)
	}
	normalizeTimes(&s)
	return &s, nil
}

// Create implements Store.Create.
func (r *Redis) Create(ctx context.Context, s *payment.Session, ttl time.Duration) error {
	ctx, sp := span(ctx, "create", "redis")
	defer sp.End()
	_, err := r.create(ctx, s, ttl, false, nil)
	return err
}

// CreateIndexed implements IndexingCreator. On a standalone Redis without a replica wait one script
// claims the idempotency key, creates the session and sets the shop reference key (one round trip instead
// of three). On a cluster those keys are in other slots, and with waitReplicas a write may be refused as
// not replicated while it is on the primary, and such a create must not become what a lookup of the shop's
// order finds: there the claim, the session and the reference key are three writes, as ClaimIdempotencyKey,
// Create and IndexReference make them. (A create whose answer is lost after the script ran leaves the
// session indexed, as a crash after all three writes always could: it is pending with its initiate in
// doubt and on the poll schedule, and the reconciler settles it.)
func (r *Redis) CreateIndexed(ctx context.Context, s *payment.Session, ttl time.Duration, claim *Claim) (string, error) {
	ctx, sp := span(ctx, "create", "redis")
	defer sp.End()
	if claim != nil {
		if err := checkClaim(claim.Scope, claim.Key, claim.Value, claim.TTL); err != nil {
			return "", err
		}
	}
	if _, cluster := r.client.(*redis.ClusterClient); !cluster && r.waitReplicas == 0 {
		return r.create(ctx, s, ttl, s.Reference != "", claim)
	}
	return createInSteps(ctx, r, s, ttl, claim, func(ctx context.Context) error {
		_, err := r.create(ctx, s, ttl, false, nil)
		return err
	})
}

// create is Create; with shopRef the script also points the shop reference at the session, and with a
// claim it claims the idempotency key first (standalone Redis only: see CreateIndexed). It returns the
// value the claimed key already held, if it held one; then nothing is written.
func (r *Redis) create(ctx context.Context, s *payment.Session, ttl time.Duration, shopRef bool, claim *Claim) (string, error) {
	if err := validateNew(s); err != nil {
		return "", err
	}
	c := clone(s)
	c.Revision = 1
	data, err := encodeSession(c)
	if err != nil {
		return "", fmt.Errorf("store: create session[%s]: encode: %w", s.ID, err)
	}
	sk := r.sessionKey(s.ID)
	part := partitionOf(s.ID)
	keys := []string{sk, r.pollsKey(part), r.listKey(part, c.Merchant, ""), r.listKey(part, c.Merchant, c.State)}
	px := "0"
	if ttl > 0 {
		px = millis(ttl)
	}
	refTaken := func() error {
		return fmt.Errorf("store: create session[%s]: provider reference %q of merchant %q is taken: %w",
			s.ID, s.ProviderReference, s.Merchant, ErrExists)
	}
	// A reference in another slot than the session is reserved first, in its own slot, and given back
	// if the session cannot be written (see the Redis type, "Redis Cluster").
	var crossRef, flags string
	claimedRef := false
	if k := r.refKey(s.Merchant, s.ProviderReference); k != "" {
		if samePartition(k, sk) {
			keys, flags = append(keys, k), flags+"r"
		} else {
			res, err := r.write(ctx, r.claimRef, []string{k}, s.ID, px).Int()
			if err != nil {
				return "", fmt.Errorf("store: create session[%s]: reserve the provider reference: %w", s.ID, err)
			}
			if res == 2 {
				return "", refTaken()
			}
			crossRef, claimedRef = k, res == 0
		}
	}
	due := "-"
	if !c.NextCheckAt.IsZero() {
		due = micros(c.NextCheckAt)
	}
	if shopRef {
		keys, flags = append(keys, r.shopRefKey(s.Merchant, s.Reference)), flags+"s"
	}
	claimValue, claimTTL := "", "0"
	if claim != nil {
		keys, flags = append(keys, r.idemKey(claim.Scope, claim.Key)), flags+"c"
		claimValue, claimTTL = claim.Value, millis(claim.TTL)
	}
	since := "-"
	if r.awaiting && c.AwaitsSettlement() {
		keys, flags = append(keys, r.awaitingKey(part, c.Merchant)), flags+"a"
		since = micros(awaitingSince(c))
	}
	res, err := r.write(ctx, r.createScript, keys, data, px, s.ID, due, c.CreatedAt.UnixMicro(), flags, claimValue, claimTTL, since).Result()
	code, isCode := res.(int64)
	if err == nil && !(isCode && code == 0) && claimedRef {
		err = r.releaseRef(ctx, crossRef, s.ID)
	}
	if err != nil {
		return "", fmt.Errorf("store: create session[%s]: %w", s.ID, err)
	}
	if existing, ok := res.(string); ok {
		return existing, nil
	}
	switch {
	case isCode && code == 0:
		s.Revision = 1
		return "", nil
	case isCode && code == 1:
		return "", fmt.Errorf("store: create session[%s]: %w", s.ID, ErrExists)
	case isCode && code == 2:
		return "", refTaken()
	}
	return "", fmt.Errorf("store: create session[%s]: unexpected script result %v", s.ID, res)
}

// get reads and decodes session id; raw is the stored JSON.
func (r *Redis) get(ctx context.Context, id string) (s *payment.Session, raw string, err error) {
	raw, err = r.reads.Get(ctx, r.sessionKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", err
	}
	s, err = decodeSession(raw)
	return s, raw, err
}

// Get implements Store.Get.
func (r *Redis) Get(ctx context.Context, id string) (*payment.Session, error) {
	ctx, sp := span(ctx, "get", "redis")
	defer sp.End()
	s, _, err := r.get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("store: get session[%s]: %w", id, err)
	}
	return s, nil
}

// GetByProviderReference implements Store.GetByProviderReference. It reads the reference key, then the
// session, and checks that the session still holds the reference.
//
// kasse's own sessions use their id as the provider reference (eCom orderId, ePayment reference), so one
// MGET reads the reference key together with the session key named by the reference: when the reference
// key names that session, which is the usual case, the lookup costs one round trip instead of two. Both
// keys are in the reference's partition (a session's is its id's), so the MGET never crosses slots.
func (r *Redis) GetByProviderReference(ctx context.Context, merchant, ref string) (*payment.Session, error) {
	ctx, sp := span(ctx, "get_by_provider_reference", "redis")
	defer sp.End()
	fail := func(err error) (*payment.Session, error) {
		return nil, fmt.Errorf("store: get session by reference[%s/%s]: %w", merchant, ref, err)
	}
	k := r.refKey(merchant, ref)
	if k == "" {
		return fail(ErrNotFound)
	}
	vals, err := r.reads.MGet(ctx, k, r.sessionKey(ref)).Result()
	if err != nil {
		return fail(err)
	}
	id, ok := vals[0].(string)
	if !ok {
		return fail(ErrNotFound)
	}
	var s *payment.Session
	if raw, ok := vals[1].(string); ok && id == ref {
		s, err = decodeSession(raw)
	} else {
		s, _, err = r.get(ctx, id)
	}
	if err != nil {
		return fail(err)
	}
	if s.Merchant != merchant || s.ProviderReference != ref {
		// The session moved on between the two reads.
		return fail(ErrNotFound)
	}
	return s, nil
}

// Update implements Store.Update with an optimistic compare-and-set; see the Redis type.
func (r *Redis) Update(ctx context.Context, id string, fn func(s *payment.Session) (bool, error)) (*payment.Session, error) {
	return r.doUpdate(ctx, id, nil, fn)
}

// UpdateFrom implements SnapshotUpdater: Update whose first attempt starts from snap instead of reading
// the session. The compare-and-set compares the stored JSON with snap's encoding, which is byte for byte
// what the store wrote for that value (the store writes encoding/json's output of the normalized
// session, and decoding and encoding again gives the same bytes), so a write happens only if the stored
// session is still exactly snap. If it is not, or snap came from elsewhere, the script refuses and the
// next attempt reads the session as Update does, at once: a stale snapshot is not a conflict to back off
// from. That saves the read, one round trip, on every update that follows a read.
func (r *Redis) UpdateFrom(ctx context.Context, snap *payment.Session, fn func(s *payment.Session) (bool, error)) (*payment.Session, error) {
	if snap == nil {
		return nil, errors.New("store: update from a snapshot: nil session")
	}
	return r.doUpdate(ctx, snap.ID, snap, fn)
}

// doUpdate is Update, starting from snap if it is not nil.
func (r *Redis) doUpdate(ctx context.Context, id string, snap *payment.Session, fn func(s *payment.Session) (bool, error)) (*payment.Session, error) {
	ctx, sp := span(ctx, "update", "redis")
	defer sp.End()
	fail := func(err error) (*payment.Session, error) {
		return nil, fmt.Errorf("store: update session[%s]: %w", id, err)
	}
	key := r.sessionKey(id)
	conflicts := 0
	for attempt := 0; attempt < r.maxAttempts; attempt++ {
		if conflicts > 0 {
			if err := backoff(ctx, conflicts); err != nil {
				return fail(err)
			}
		}
		var (
			cur *payment.Session
			raw string
			err error
		)
		fromSnap := attempt == 0 && snap != nil
		if fromSnap {
			cur = clone(snap)
			var data []byte
			if data, err = encodeSession(cur); err != nil {
				return fail(fmt.Errorf("encode the snapshot: %w", err))
			}
			raw = string(data)
		} else if cur, raw, err = r.get(ctx, id); err != nil {
			return fail(err)
		}
		next := clone(cur)
		changed, err := fn(next)
		if err != nil {
			return fail(err)
		}
		if !changed {
			return cur, nil
		}
		if next.ID != id {
			return fail(fmt.Errorf("the update changed the id to %q", next.ID))
		}
		next.Revision = cur.Revision + 1
		next = clone(next) // fn may still hold its copy
		data, err := encodeSession(next)
		if err != nil {
			return fail(fmt.Errorf("encode: %w", err))
		}
		keys := []string{key, r.pollsKey(partitionOf(id))}
		due := "-"
		switch {
		case next.NextCheckAt.Equal(cur.NextCheckAt):
		case next.NextCheckAt.IsZero():
			due = "rem"
		default:
			due = micros(next.NextCheckAt)
		}
		oldK := r.refKey(cur.Merchant, cur.ProviderReference)
		newK := r.refKey(next.Merchant, next.ProviderReference)
		hasOld, hasNew := "0", "0"
		var crossOld, crossNew string
		claimedNew := false
		if oldK != newK {
			if oldK != "" {
				if samePartition(oldK, key) {
					keys, hasOld = append(keys, oldK), "1"
				} else {
					crossOld = oldK
				}
			}
			if newK != "" {
				if samePartition(newK, key) {
					keys, hasNew = append(keys, newK), "1"
				} else {
					// Reserved before the session is written, given back if the write does not happen.
					res, err := r.claimCrossRef(ctx, key, newK, id)
					if err != nil {
						return fail(err)
					}
					if res == 2 {
						return fail(fmt.Errorf("provider reference %q of merchant %q is taken: %w",
							next.ProviderReference, next.Merchant, ErrExists))
					}
					crossNew, claimedNew = newK, res == 0
				}
			}
		}
		part := partitionOf(id)
		moved := "-"
		if next.State != cur.State {
			keys = append(keys, r.listKey(part, cur.Merchant, cur.State), r.listKey(part, cur.Merchant, next.State))
			moved = strconv.FormatInt(cur.CreatedAt.UnixMicro(), 10)
		}
		// The index of sessions awaiting the ledger follows the session in the same script (see
		// Settlements.AwaitingSettlement): entered (keeping an earlier time) on every write of a session
		// that awaits it, left when it stops or moves to another merchant.
		leave, enter := "0", "-"
		if r.awaiting {
			if cur.AwaitsSettlement() && (!next.AwaitsSettlement() || cur.Merchant != next.Merchant) {
				keys, leave = append(keys, r.awaitingKey(part, cur.Merchant)), "1"
			}
			if next.AwaitsSettlement() {
				keys, enter = append(keys, r.awaitingKey(part, next.Merchant)), micros(awaitingSince(next))
			}
		}
		res, err := r.write(ctx, r.update, keys, raw, data, id, hasOld, hasNew, due, moved, leave, enter).Int()
		if err == nil && res != 0 && claimedNew {
			err = r.releaseRef(ctx, crossNew, id)
		}
		if err == nil && res == 0 && crossOld != "" {
			// The session no longer holds it; a crash before this line leaves a key that readers
			// ignore (GetByProviderReference checks the session) and that expires with the session.
			err = r.releaseRef(ctx, crossOld, id)
		}
		if err != nil {
			return fail(err)
		}
		switch res {
		case 0:
			return next, nil
		case 1:
			return fail(ErrNotFound)
		case 2:
			if !fromSnap {
				conflicts++
			}
			continue // changed since read
		case 3:
			return fail(fmt.Errorf("provider reference %q of merchant %q is taken: %w",
				next.ProviderReference, next.Merchant, ErrExists))
		default:
			return fail(fmt.Errorf("unexpected script result %d", res))
		}
	}
	return fail(fmt.Errorf("gave up after %d attempts: %w", r.maxAttempts, ErrConflict))
}

// backoff waits a random time below min(base<<attempt, max), or until ctx is done.
func backoff(ctx context.Context, attempt int) error {
	ceiling := min(updateBackoffBase<<min(attempt, 16), updateBackoffMax)
	t := time.NewTimer(rand.N(ceiling) + 1)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ClaimIdempotencyKey implements Store.ClaimIdempotencyKey.
func (r *Redis) ClaimIdempotencyKey(ctx context.Context, scope, key, value string, ttl time.Duration) (string, error) {
	if err := checkClaim(scope, key, value, ttl); err != nil {
		return "", err
	}
	v, err := r.write(ctx, r.claim, []string{r.idemKey(scope, key)}, value, millis(ttl)).Text()
	if err != nil {
		return "", fmt.Errorf("store: claim idempotency key[%s/%s]: %w", scope, key, err)
	}
	return v, nil
}

// ReleaseIdempotencyKey implements Store.ReleaseIdempotencyKey.
func (r *Redis) ReleaseIdempotencyKey(ctx context.Context, scope, key, value string) error {
	if err := r.release.Run(ctx, r.client, []string{r.idemKey(scope, key)}, value).Err(); err != nil {
		return fmt.Errorf("store: release idempotency key[%s/%s]: %w", scope, key, err)
	}
	return nil
}

// SwapIdempotencyKey implements Store.SwapIdempotencyKey.
func (r *Redis) SwapIdempotencyKey(ctx context.Context, scope, key, old, value string, ttl time.Duration) (bool, error) {
	if err := checkClaim(scope, key, value, ttl); err != nil {
		return false, err
	}
	n, err := r.write(ctx, r.swap, []string{r.idemKey(scope, key)}, old, value, millis(ttl)).Int()
	if err != nil {
		return false, fmt.Errorf("store: swap idempotency key[%s/%s]: %w", scope, key, err)
	}
	return n == 1, nil
}

// SchedulePoll implements Store.SchedulePoll. Due times are kept to the microsecond.
func (r *Redis) SchedulePoll(ctx context.Context, id string, at time.Time) error {
	err := r.client.ZAdd(ctx, r.pollsKey(partitionOf(id)), redis.Z{Score: float64(at.UnixMicro()), Member: id}).Err()
	if err != nil {
		return fmt.Errorf("store: schedule poll[%s]: %w", id, err)
	}
	return nil
}

// CancelPoll implements Store.CancelPoll.
func (r *Redis) CancelPoll(ctx context.Context, id string) error {
	if err := r.write(ctx, r.cancelPoll, []string{r.pollsKey(partitionOf(id)), r.sessionKey(id)}, id).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: cancel poll[%s]: %w", id, err)
	}
	return nil
}

// ClaimDuePolls implements Store.ClaimDuePolls over the partitions of the schedule: one pipeline reads
// the first limit due ids of every partition (one round trip per primary), the earliest limit of them
// overall are chosen, and a second pipeline claims them with one script per partition that has any
// (ZRANGEBYSCORE ... LIMIT, then ZADD XX with the lease's end), so each due id still goes to one caller
// per lease. Every caller looks at every partition, so no partition waits for an instance to own it.
func (r *Redis) ClaimDuePolls(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]string, error) {
	if err := checkLease(lease); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	fail := func(err error) ([]string, error) { return nil, fmt.Errorf("store: claim due polls: %w", err) }
	upTo := micros(now)
	peeks := make([]*redis.ZSliceCmd, Partitions)
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range peeks {
			peeks[i] = p.ZRangeByScoreWithScores(ctx, r.pollsKey(i), &redis.ZRangeBy{Min: "-inf", Max: upTo, Count: int64(limit)})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fail(err)
	}
	type due struct {
		id    string
		score float64
		part  int
	}
	var all []due
	for i, c := range peeks {
		zs, err := c.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fail(err)
		}
		for _, z := range zs {
			id, _ := z.Member.(string)
			all = append(all, due{id, z.Score, i})
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	byDue := func(a, b due) int {
		if c := cmpFloat(a.score, b.score); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	}
	slices.SortFunc(all, byDue)
	all = all[:min(limit, len(all))]
	counts := make(map[int]int)
	for _, d := range all {
		counts[d.part]++
	}
	claims := make(map[int]*redis.Cmd, len(counts))
	_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for part, n := range counts {
			claims[part] = r.polls.Eval(ctx, p, []string{r.pollsKey(part)}, upTo, n, micros(now.Add(lease)))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fail(err)
	}
	score := make(map[string]float64, len(all))
	for _, d := range all {
		score[d.id] = d.score
	}
	var got []due
	for part, c := range claims {
		ids, err := c.StringSlice()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fail(err)
		}
		for _, id := range ids {
			s, ok := score[id]
			if !ok {
				s = float64(now.UnixMicro()) // due since the peek: still due now
			}
			got = append(got, due{id, s, part})
		}
	}
	slices.SortFunc(got, byDue)
	out := make([]string, len(got))
	for i, d := range got {
		out[i] = d.id
	}
	return out, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Ping implements Store.Ping.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("store: ping redis: %w", err)
	}
	return nil
}

// Close closes the client if NewRedis created it; a client passed to NewRedisFromClient stays open.
func (r *Redis) Close() error {
	if r == nil {
		return nil
	}
	r.closeOnce.Do(func() {
		if r.owned {
			r.closeErr = r.client.Close()
		}
	})
	return r.closeErr
}

// IndexReference implements Store.IndexReference.
func (r *Redis) IndexReference(ctx context.Context, merchant, reference, id string, ttl time.Duration) error {
	if reference == "" || id == "" || ttl <= 0 {
		return fmt.Errorf("store: index reference[%s/%s]: reference, id and a positive ttl are required", merchant, reference)
	}
	return r.indexReference(ctx, merchant, reference, id, ttl)
}

// indexReference sets the shop reference key; ttl <= 0: no expiry.
func (r *Redis) indexReference(ctx context.Context, merchant, reference, id string, ttl time.Duration) error {
	if err := r.client.Set(ctx, r.shopRefKey(merchant, reference), id, max(ttl, 0)).Err(); err != nil {
		return fmt.Errorf("store: index reference[%s/%s]: %w", merchant, reference, err)
	}
	return nil
}

// GetByReference implements Store.GetByReference.
func (r *Redis) GetByReference(ctx context.Context, merchant, reference string) (*payment.Session, error) {
	ctx, sp := span(ctx, "get_by_reference", "redis")
	defer sp.End()
	if reference == "" {
		return nil, fmt.Errorf("store: get session by shop reference[%s/%s]: %w", merchant, reference, ErrNotFound)
	}
	id, err := r.client.Get(ctx, r.shopRefKey(merchant, reference)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: get session by shop reference[%s/%s]: %w", merchant, reference, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get session by shop reference[%s/%s]: %w", merchant, reference, err)
	}
	return r.Get(ctx, id)
}

// IndexUser implements UserIndex.IndexUser: a set of session ids per user, whose TTL is pushed out to the
// newest session's.
func (r *Redis) IndexUser(ctx context.Context, merchant, userID, id string, ttl time.Duration) error {
	if userID == "" || id == "" || ttl <= 0 {
		return fmt.Errorf("store: index user of session[%s]: user id, id and a positive ttl are required", id)
	}
	k := r.userKey(merchant, userID)
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, k, id)
		p.Expire(ctx, k, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: index user of session[%s]: %w", id, err)
	}
	return nil
}

// SessionsOfUser implements UserIndex.SessionsOfUser.
func (r *Redis) SessionsOfUser(ctx context.Context, merchant, userID string) ([]string, error) {
	ids, err := r.client.SMembers(ctx, r.userKey(merchant, userID)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: sessions of a user of merchant %s: %w", merchant, err)
	}
	sort.Strings(ids)
	return ids, nil
}

// ForgetUser implements UserIndex.ForgetUser.
func (r *Redis) ForgetUser(ctx context.Context, merchant, userID string) error {
	if err := r.client.Del(ctx, r.userKey(merchant, userID)).Err(); err != nil {
		return fmt.Errorf("store: forget a user of merchant %s: %w", merchant, err)
	}
	return nil
}

// Client is the Redis client the store uses, for other shared state kept beside the sessions (the
// outbound queues). The store owns it if NewRedis created it.
func (r *Redis) Client() redis.UniversalClient { return r.client }

// UnreplicatedWrites counts the writes that fewer than RedisOptions.WaitReplicas replicas acknowledged
// within the wait (0 when waiting is off).
func (r *Redis) UnreplicatedWrites() uint64 { return r.unreplicated.Load() }

// write runs a script that writes, then, with WaitReplicas set, waits for the replicas on the same
// connection: WAIT counts the replicas that have everything this connection wrote, so the script and the
// WAIT go in one pipeline on the primary that owns the keys (on a cluster, the master for the first key,
// which every key of a script shares). EVAL rather than EVALSHA, because a pipeline cannot fall back on
// NOSCRIPT. A failover in progress fails the pipeline like any unavailable store; a write that too few
// replicas have when the wait ends fails with ErrNotReplicated.
func (r *Redis) write(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	if r.waitReplicas == 0 {
		return script.Run(ctx, r.client, keys, args...)
	}
	var node *redis.Client
	switch c := r.client.(type) {
	case *redis.Client:
		node = c
	case *redis.ClusterClient:
		ctx, cancel := context.WithTimeout(ctx, r.opTimeout)
		m, err := c.MasterForKey(ctx, keys[0])
		cancel()
		if err != nil {
			cmd := redis.NewCmd(ctx)
			cmd.SetErr(mark(err))
			return cmd
		}
		node = m
	default:
		return script.Run(ctx, r.client, keys, args...)
	}
	ctx, cancel := context.WithTimeout(ctx, r.opTimeout+r.waitTimeout)
	defer cancel()
	pipe := node.Pipeline()
	cmd := script.Eval(ctx, pipe, keys, args...)
	wait := pipe.Do(ctx, "wait", r.waitReplicas, r.waitTimeout.Milliseconds())
	_, _ = pipe.Exec(ctx)
	if err := mark(cmd.Err()); err != nil {
		if c, ok := r.client.(*redis.ClusterClient); ok {
			// The pipeline went to one node directly, so go-redis did not see the MOVED or the dead
			// node that a failover leaves: have it read the cluster's slots again for the next write.
			c.ReloadState(context.WithoutCancel(ctx))
		}
		cmd.SetErr(err)
		return cmd
	}
	if acked, err := wait.Int64(); err != nil || acked < int64(r.waitReplicas) {
		r.unreplicated.Add(1)
		if err == nil {
			err = fmt.Errorf("%d of %d replicas within %s", acked, r.waitReplicas, r.waitTimeout)
		}
		cmd.SetErr(fmt.Errorf("store: write to %s: %w (%w)", keys[0], ErrNotReplicated, err))
	}
	return cmd
}

// readerFor returns what serves the session reads of client: its automatic pipeliner (the blocking face,
// shared by every caller of the client), which sends the reads of concurrent callers to Redis in one batch,
// or client itself when separate is set or client has no pipeliner. Only reads take this path: a read
// that the pipeliner sends again after a broken connection reads again, while a write sent twice could be
// applied twice.
func readerFor(client redis.UniversalClient, separate bool) (redis.Cmdable, error) {
	if separate {
		return client, nil
	}
	var (
		ap  *redis.AutoPipeliner
		err error
	)
	switch c := client.(type) {
	case *redis.Client:
		ap, err = c.AutoPipeline()
	case *redis.ClusterClient:
		ap, err = c.AutoPipeline()
	default:
		return client, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: new redis store: read pipeline: %w", err)
	}
	return ap, nil
}
