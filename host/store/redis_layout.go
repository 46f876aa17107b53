package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"

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
// Computed once (about 100,000 CRC16 of short strings) and never changed.
var partitionTags = sync.OnceValue(func() [Partitions]string {
	var tags [Partitions]string
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
	h := fnv.New32a()
	for i, p := range parts {
		if i > 0 {
			_, _ = h.Write([]byte{0})
		}
		_, _ = h.Write([]byte(p))
	}
	return int(h.Sum32() % Partitions)
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

// oldLayoutPrefixes are the prefixes under which layout 1 kept its keys: the prefix itself on one server,
// the prefix wrapped in a hash tag on a cluster.
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
		for _, k := range []string{p + "polls", "{" + p + "outbound:}jobs", "{" + p + "inbox:}jobs"} {
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
