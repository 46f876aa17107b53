package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/kassehq/kasse/host/payment"
	"github.com/redis/go-redis/v9"
)

// This file owns the Redis key layout: every key the Redis store writes is built here, so that a new
// index follows the same partitioning by calling partitionOf and keyIn (see the Redis type, "Keys").

// Partitions is the fixed number of partitions the Redis store spreads its keys over. Each partition has
// its own hash tag, so on Redis Cluster the partitions are spread over the primaries; changing the number
// changes where keys live and needs a migration like a layout change.
const Partitions = 128

// LayoutVersion is the version of the key layout this code writes, kept in the layout marker key.
// Version 1 (no marker) kept every key under the prefix, in one hash slot on a cluster.
const LayoutVersion = "2"

// ErrOldLayout means the Redis store holds keys written in an earlier key layout; see Redis.CheckLayout.
var ErrOldLayout = errors.New("store: redis holds data in an earlier key layout")

// redisSlots is the number of hash slots of Redis Cluster.
const redisSlots = 16384

// partitionTags returns, for each partition, a short hash tag whose Redis Cluster slot is
// partition*redisSlots/Partitions: the partitions sit evenly spaced over the slot space, so that a cluster
// whose primaries own contiguous, equal slot ranges (as redis-cli --cluster create assigns them) holds
// equal numbers of partitions. Random tags would not: 128 tags over 3 primaries vary by about 12%.
// Computed once (about 100,000 CRC16 of short strings) and never changed; a pointer, because every key
// the store names looks a tag up and copying the array cost 1.5% of a GET.
var partitionTags = sync.OnceValue(func() *[Partitions]string {
	tags := new([Partitions]string)
	const step = redisSlots / Partitions
	left := Partitions
	for k := 0; left > 0; k++ {
		s := strconv.Itoa(k)
		slot := int(crc16(s)) % redisSlots
		if slot%step != 0 || tags[slot/step] != "" {
			continue
		}
		tags[slot/step] = s
		left--
	}
	return tags
})

// PartitionTags returns n hash tags evenly spaced over the slots (every Partitions/n-th partition's tag),
// for other shared state kept beside the sessions that wants its own partitions (the outbound queues).
// n must divide Partitions; other values are rounded down to a divisor (at least 1).
func PartitionTags(n int) []string {
	n = max(min(n, Partitions), 1)
	for Partitions%n != 0 {
		n--
	}
	tags := partitionTags()
	out := make([]string, n)
	for i := range out {
		out[i] = tags[i*(Partitions/n)]
	}
	return out
}

// QueuePartitions is the number of partitions of the outbound queues kasse keeps beside the store.
const QueuePartitions = 16

// crc16 is CRC16-CCITT (XMODEM), the checksum Redis Cluster maps keys to slots with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// partitionOf maps a string (a session id, a provider reference, an idempotency key) to its partition.
// A session and the reference key of a provider reference equal to its id land in one partition, which
// is what lets Create and Update write both in one script: kasse's sessions use their id as reference.
func partitionOf(parts ...string) int {
	// FNV-1a (32 bits) written out, as hash/fnv computes it, without its allocations: every key the
	// store names is hashed.
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i, p := range parts {
		if i > 0 {
			h *= prime // a 0 byte between parts: h ^= 0 is h
		}
		for j := 0; j < len(p); j++ {
			h ^= uint32(p[j])
			h *= prime
		}
	}
	return int(h % Partitions)
}

// keyIn returns the key named rest in partition p: "<prefix>{<tag>}:<rest>".
func (r *Redis) keyIn(p int, rest string) string {
	return r.prefix + "{" + partitionTags()[p] + "}:" + rest
}

// globalKey returns a key in the store's one unpartitioned slot, for the little state that multi-key
// scripts touch together and that does not grow with traffic (settlement cursors and ledgers, leases,
// the layout marker): "<prefix>{g}:<rest>".
func (r *Redis) globalKey(rest string) string { return r.prefix + "{g}:" + rest }

func (r *Redis) sessionKey(id string) string { return r.keyIn(partitionOf(id), "session:"+id) }

// refKey returns the reference key of (merchant, ref), or "" if ref is empty. Its partition is the
// reference's own, so that it shares a slot with the session whose id equals the reference.
func (r *Redis) refKey(merchant, ref string) string {
	k := refIndexKey(merchant, ref)
	if k == "" {
		return ""
	}
	return r.keyIn(partitionOf(ref), "ref:"+k)
}

func (r *Redis) idemKey(scope, key string) string {
	return r.keyIn(partitionOf(scope, key), "idem:"+idemIndexKey(scope, key))
}

// pollsKey returns the poll schedule of partition p; a session's entry is in partitionOf(id), the
// session's own slot, so that Create and Update change the session and its schedule in one script.
func (r *Redis) pollsKey(p int) string { return r.keyIn(p, "polls") }

// listKey is the merchant's creation-time index in partition p (the console's listing, see
// list_redis.go), or with a state its index of the sessions in that state.
func (r *Redis) listKey(p int, merchant string, state payment.State) string {
	k := "list:" + keyEscaper.Replace(merchant)
	if state != "" {
		k += ":" + string(state)
	}
	return r.keyIn(p, k)
}

// awaitingKey is the merchant's index in partition p of the sessions awaiting the ledger
// (Settlements.AwaitingSettlement); a session's entry is in partitionOf(id), so that Create and Update
// keep it in the session's own script.
func (r *Redis) awaitingKey(p int, merchant string) string {
	return r.keyIn(p, "awaiting:"+keyEscaper.Replace(merchant))
}

func (r *Redis) shopRefKey(merchant, reference string) string {
	return r.keyIn(partitionOf(merchant, reference), "shopref:"+refIndexKey(merchant, reference))
}

func (r *Redis) userKey(merchant, userID string) string {
	return r.keyIn(partitionOf(merchant, userID), "user:"+refIndexKey(merchant, userID))
}

func (r *Redis) layoutKey() string { return r.globalKey("layout") }

// samePartition reports whether keys a and b carry the same hash tag (and so share a slot).
func samePartition(a, b string) bool { return hashTag(a) == hashTag(b) }

// hashTag returns what Redis Cluster hashes of key: the part between the first "{" and the next "}" if
// that is not empty, else the whole key.
func hashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}

// LayoutOnePrefixes returns the prefixes under which layout 1 kept its keys: the prefix itself on one
// server, the prefix wrapped in a hash tag on a cluster. Its outbound queues were
// outbound.NewRedisStorage(client, p+"outbound:") and p+"inbox:" for each.
func (r *Redis) LayoutOnePrefixes() []string { return r.oldLayoutPrefixes() }

func (r *Redis) oldLayoutPrefixes() []string {
	ps := []string{r.prefix}
	if t := withHashTag(r.prefix); t != r.prefix {
		ps = append(ps, t)
	}
	return ps
}

// maxLayoutScan bounds the SCAN calls per primary that CheckLayout spends looking for old-layout keys
// when the marker is missing (each reads up to 1,000 keys).
const maxLayoutScan = 200

// CheckLayout checks that the keys under the store's prefix are in the layout this code writes. A store
// with the layout marker is fine. A store without it is looked through for keys of layout 1 (the poll
// set, or any session key, under the old prefixes); if there are some, CheckLayout returns an error
// wrapping ErrOldLayout that names one and says what to do (`kasse store migrate`, see MigrateLayout);
// otherwise the store is new, and CheckLayout writes the marker. kasse calls it at start, before serving,
// so that data written by an earlier version is never silently ignored.
func (r *Redis) CheckLayout(ctx context.Context) error {
	v, err := r.client.Get(ctx, r.layoutKey()).Result()
	switch {
	case err == nil && v == LayoutVersion:
		return nil
	case err == nil:
		return fmt.Errorf("store: redis key layout %q under prefix %q is not the %q this kasse writes (a newer kasse wrote it?): %w",
			v, r.prefix, LayoutVersion, ErrOldLayout)
	case !errors.Is(err, redis.Nil):
		return fmt.Errorf("store: read the redis layout marker: %w", err)
	}
	found, err := r.findOldLayoutKey(ctx)
	if err != nil {
		return fmt.Errorf("store: look for keys of an earlier layout: %w", err)
	}
	if found != "" {
		return fmt.Errorf("%w: found %q under prefix %q; kasse does not start on it, so that no session, "+
			"poll or idempotency key is lost: stop every kasse instance, run `kasse store migrate` with the "+
			"same configuration (it rewrites the keys into the partitioned layout and keeps their TTLs), then "+
			"start the new version", ErrOldLayout, found, r.prefix)
	}
	if err := r.client.SetNX(ctx, r.layoutKey(), LayoutVersion, 0).Err(); err != nil {
		return fmt.Errorf("store: write the redis layout marker: %w", err)
	}
	return nil
}

// findOldLayoutKey returns a key of layout 1 under the store's prefix, or "" if it finds none.
func (r *Redis) findOldLayoutKey(ctx context.Context) (string, error) {
	for _, p := range r.oldLayoutPrefixes() {
		// Layout 1's poll set, and its outbound queues: one hash tag each, "{<prefix>outbound:}".
		for _, k := range []string{p + "polls", "{" + p + "outbound:}jobs", "{" + p + "outbound:}dead",
			"{" + p + "inbox:}jobs", "{" + p + "inbox:}dead"} {
			if n, err := r.client.Exists(ctx, k).Result(); err != nil {
				return "", err
			} else if n > 0 {
				return k, nil
			}
		}
	}
	var (
		mu    sync.Mutex
		found string
	)
	scan := func(ctx context.Context, c *redis.Client) error {
		for _, p := range r.oldLayoutPrefixes() {
			var cursor uint64
			for range maxLayoutScan {
				keys, next, err := c.Scan(ctx, cursor, escapeGlob(p)+"session:*", 1000).Result()
				if err != nil {
					return err
				}
				if len(keys) > 0 {
					mu.Lock()
					found = keys[0]
					mu.Unlock()
					return nil
				}
				if cursor = next; cursor == 0 {
					break
				}
			}
		}
		return nil
	}
	var err error
	switch c := r.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		// A Ring or another client: SCAN through the universal client reaches one shard only; the
		// poll-set check above is what remains.
	}
	return found, err
}

// escapeGlob escapes the characters SCAN MATCH treats specially.
func escapeGlob(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`).Replace(s)
}

// MigrationReport says what MigrateLayout moved.
type MigrationReport struct {
	// Keys is the number of layout 1 keys rewritten into layout 2 (a poll set counts once).
	Keys int
	// Polls is the number of poll entries moved into their partitions' schedules.
	Polls int
	// Skipped lists old keys that were not recognised and were left where they are.
	Skipped []string
}

// MigrateLayout rewrites the keys of layout 1 under the store's prefix into layout 2 and then writes the
// layout marker. Every key is copied with its value and remaining TTL (DUMP, RESTORE) to its new name
// before the old key is deleted; the poll set is split into the partitions' schedules. A key already at
// its new name is kept (a migration that stopped half-way can be run again), and an old key that is not
// the store's is listed in the report and left alone. Run it with every kasse instance stopped: an
// instance of the earlier version would go on writing the old keys. The outbound queues of layout 1 are
// moved by the caller (outbound.RedisStorage.MoveTo), before MigrateLayout writes the marker.
func (r *Redis) MigrateLayout(ctx context.Context) (MigrationReport, error) {
	var rep MigrationReport
	if v, err := r.client.Get(ctx, r.layoutKey()).Result(); err == nil && v == LayoutVersion {
		return rep, nil
	} else if err != nil && !errors.Is(err, redis.Nil) {
		return rep, fmt.Errorf("store: migrate: read the layout marker: %w", err)
	}
	var keys []string
	var mu sync.Mutex
	collect := func(ctx context.Context, c *redis.Client) error {
		for _, p := range r.oldLayoutPrefixes() {
			iter := c.Scan(ctx, 0, escapeGlob(p)+"*", 1000).Iterator()
			for iter.Next(ctx) {
				mu.Lock()
				keys = append(keys, iter.Val())
				mu.Unlock()
			}
			if err := iter.Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	switch c := r.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, collect)
	case *redis.Client:
		err = collect(ctx, c)
	default:
		err = errors.New("only a single server or a cluster client can be migrated")
	}
	if err != nil {
		return rep, fmt.Errorf("store: migrate: list the old keys: %w", err)
	}
	for _, k := range keys {
		old, rest := r.splitOldKey(k)
		if old == "" {
			continue // a layout 2 key, or another prefix's
		}
		if rest == "polls" {
			n, err := r.migratePolls(ctx, k)
			if err != nil {
				return rep, err
			}
			rep.Keys++
			rep.Polls += n
			continue
		}
		nk := r.newKeyOf(rest)
		if nk == "" {
			rep.Skipped = append(rep.Skipped, k)
			continue
		}
		if err := r.moveKey(ctx, k, nk); err != nil {
			return rep, err
		}
		rep.Keys++
	}
	if err := r.client.Set(ctx, r.layoutKey(), LayoutVersion, 0).Err(); err != nil {
		return rep, fmt.Errorf("store: migrate: write the layout marker: %w", err)
	}
	return rep, nil
}

// splitOldKey returns the old prefix and the rest of key k if k is a layout 1 key of the store ("" if
// not: layout 2 keys carry a "{" right after the prefix).
func (r *Redis) splitOldKey(k string) (prefix, rest string) {
	for _, p := range r.oldLayoutPrefixes() {
		if strings.HasPrefix(k, p) && !strings.HasPrefix(k[len(p):], "{") {
			return p, k[len(p):]
		}
	}
	return "", ""
}

// unescapeKeyPart undoes keyEscaper.
func unescapeKeyPart(s string) string {
	return strings.NewReplacer("%3A", ":", "%25", "%").Replace(s)
}

// newKeyOf maps the part of a layout 1 key after the prefix to its layout 2 key, or "" if it is not a
// key the store wrote.
func (r *Redis) newKeyOf(rest string) string {
	kind, tail, ok := strings.Cut(rest, ":")
	if !ok {
		return ""
	}
	pair := func() (string, string, bool) {
		a, b, ok := strings.Cut(tail, ":")
		return unescapeKeyPart(a), b, ok
	}
	switch kind {
	case "session":
		return r.sessionKey(tail)
	case "ref", "shopref", "user", "idem":
		a, b, ok := pair()
		if !ok {
			return ""
		}
		switch kind {
		case "ref":
			return r.refKey(a, b)
		case "shopref":
			return r.shopRefKey(a, b)
		case "user":
			return r.userKey(a, b)
		}
		return r.idemKey(a, b)
	case "lease", "cursor", "ledger", "ledgerdates", "expect":
		return r.globalKey(rest)
	}
	return ""
}

// moveKey copies old to nk with its value and TTL, unless nk exists, then deletes old.
func (r *Redis) moveKey(ctx context.Context, old, nk string) error {
	dump, err := r.client.Dump(ctx, old).Result()
	if errors.Is(err, redis.Nil) {
		return nil // expired meanwhile
	}
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", old, err)
	}
	ttl, err := r.client.PTTL(ctx, old).Result()
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", old, err)
	}
	if ttl == -2 {
		return nil
	}
	if ttl < 0 {
		ttl = 0
	}
	err = r.client.Restore(ctx, nk, ttl, dump).Err()
	if err != nil && !strings.Contains(err.Error(), "BUSYKEY") {
		return fmt.Errorf("store: migrate %s to %s: %w", old, nk, err)
	}
	if err := r.client.Del(ctx, old).Err(); err != nil {
		return fmt.Errorf("store: migrate: delete %s: %w", old, err)
	}
	return nil
}

// migratePolls splits the old poll set k into the partitions' schedules (ZADD NX: an entry already
// there stays) and deletes it.
func (r *Redis) migratePolls(ctx context.Context, k string) (int, error) {
	zs, err := r.client.ZRangeWithScores(ctx, k, 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("store: migrate %s: %w", k, err)
	}
	for _, z := range zs {
		id, _ := z.Member.(string)
		if err := r.client.ZAddNX(ctx, r.pollsKey(partitionOf(id)), z).Err(); err != nil {
			return 0, fmt.Errorf("store: migrate %s: poll of %s: %w", k, id, err)
		}
	}
	if err := r.client.Del(ctx, k).Err(); err != nil {
		return 0, fmt.Errorf("store: migrate: delete %s: %w", k, err)
	}
	return len(zs), nil
}
