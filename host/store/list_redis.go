package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kassehq/kasse/host/payment"
)

// listBatch is how many index entries one round of ListSessions reads from each partition.
const listBatch = 100

// The console's index is kept per partition (listKey, in redis_layout.go), in the same slot as the
// sessions it lists, so that the session's script writes it. Reading it merges the partitions: each
// round reads the newest listBatch entries after the cursor from every partition in one pipeline and
// keeps what is certainly in order (see nextListBatch).

// ListSessions implements Lister.ListSessions: it walks the merchant's index (of one state, if given)
// newest first, reads the sessions of each batch in one pipeline and removes the index entries of
// sessions that have expired.
func (r *Redis) ListSessions(ctx context.Context, q ListQuery) (ListPage, error) {
	after, err := q.normalize()
	if err != nil {
		return ListPage{}, err
	}
	fail := func(err error) (ListPage, error) {
		return ListPage{}, fmt.Errorf("store: list sessions of %s: %w", q.Merchant, err)
	}
	hi, lo := "+inf", "-inf"
	if !q.To.IsZero() {
		hi = "(" + strconv.FormatInt(q.To.UnixMicro(), 10)
	}
	if !q.From.IsZero() {
		lo = strconv.FormatInt(q.From.UnixMicro(), 10)
	}
	var page ListPage
	for {
		batch, err := r.nextListBatch(ctx, q, after, hi, lo)
		if err != nil {
			return fail(err)
		}
		if len(batch) == 0 {
			return page, nil
		}
		cmds, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, pos := range batch {
				p.Get(ctx, r.sessionKey(pos.id))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fail(err)
		}
		var gone []string
		for i, c := range cmds {
			if len(page.Sessions) == q.Limit || page.Scanned == q.MaxScan {
				page.Next = after.String()
				r.unlist(ctx, q.Merchant, gone)
				return page, nil
			}
			after = &batch[i]
			str, err := c.(*redis.StringCmd).Result()
			if errors.Is(err, redis.Nil) {
				gone = append(gone, batch[i].id)
				continue
			}
			if err != nil {
				return fail(err)
			}
			s, err := decodeSession(str)
			if err != nil {
				return fail(err)
			}
			page.Scanned++
			if q.wants(s) {
				page.Sessions = append(page.Sessions, s)
			}
		}
		r.unlist(ctx, q.Merchant, gone)
	}
}

// nextListBatch returns the next index entries after the cursor (all of them when after is nil), newest
// first, merged from every partition. A partition that returned a full batch may hold older entries it did
// not return, so the merged list is cut at the newest of those partitions' oldest entries: everything up
// to there is complete. Ties at the cursor's microsecond that were listed already can fill a partition's
// batch; then it reads more.
func (r *Redis) nextListBatch(ctx context.Context, q ListQuery, after *listPos, hi, lo string) ([]listPos, error) {
	start := hi
	if after != nil {
		start = strconv.FormatInt(after.micros, 10)
	}
	for count := int64(listBatch); ; count *= 2 {
		cmds, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for part := range Partitions {
				p.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: r.listKey(part, q.Merchant, q.State),
					Start: start, Stop: lo, ByScore: true, Rev: true, Count: count})
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		var out []listPos
		var cut *listPos // the newest oldest-entry of a partition that returned a full batch
		for _, c := range cmds {
			zs, err := c.(*redis.ZSliceCmd).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return nil, err
			}
			for _, z := range zs {
				pos := listPos{micros: int64(z.Score), id: fmt.Sprint(z.Member)}
				if after == nil || after.before(pos.micros, pos.id) {
					out = append(out, pos)
				}
			}
			if int64(len(zs)) == count {
				last := listPos{micros: int64(zs[len(zs)-1].Score), id: fmt.Sprint(zs[len(zs)-1].Member)}
				if cut == nil || cut.before(last.micros, last.id) {
					cut = &last
				}
			}
		}
		slices.SortFunc(out, func(a, b listPos) int {
			if c := cmp.Compare(b.micros, a.micros); c != 0 {
				return c
			}
			return cmp.Compare(b.id, a.id)
		})
		if cut != nil {
			out = slices.DeleteFunc(out, func(p listPos) bool { return cut.before(p.micros, p.id) })
		}
		if len(out) > 0 || cut == nil {
			return out[:min(len(out), listBatch)], nil
		}
	}
}

// unlist removes expired sessions from the merchant's indexes. It is best effort: an entry left behind
// is skipped by the next listing and removed then.
func (r *Redis) unlist(ctx context.Context, merchant string, ids []string) {
	if len(ids) == 0 {
		return
	}
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			part := partitionOf(id)
			p.ZRem(ctx, r.listKey(part, merchant, ""), id)
			for _, st := range payment.States {
				p.ZRem(ctx, r.listKey(part, merchant, st), id)
			}
		}
		return nil
	})
}

// pruneRounds bounds how many batches of expired entries one CountSessions removes before it counts.
const pruneRounds = 20

// prune removes the index entries of the merchant's oldest sessions while they have expired. Sessions
// share one TTL, so they expire roughly in creation order and the expired ones are the oldest entries of
// each partition.
func (r *Redis) prune(ctx context.Context, merchant string) error {
	for range pruneRounds {
		heads, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for part := range Partitions {
				p.ZRange(ctx, r.listKey(part, merchant, ""), 0, listBatch-1)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		var ids []string
		for _, c := range heads {
			ids = append(ids, c.(*redis.StringSliceCmd).Val()...)
		}
		if len(ids) == 0 {
			return nil
		}
		cmds, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, id := range ids {
				p.Exists(ctx, r.sessionKey(id))
			}
			return nil
		})
		if err != nil {
			return err
		}
		var gone []string
		for i, c := range cmds {
			if c.(*redis.IntCmd).Val() == 0 {
				gone = append(gone, ids[i])
			}
		}
		r.unlist(ctx, merchant, gone)
		if len(gone) < len(ids) {
			return nil
		}
	}
	return nil
}

// CountSessions implements Lister.CountSessions with one ZCOUNT per state and partition, in one
// pipeline, after removing the entries of expired sessions.
func (r *Redis) CountSessions(ctx context.Context, merchant string, from, to time.Time) (map[payment.State]int64, error) {
	if err := r.prune(ctx, merchant); err != nil {
		return nil, fmt.Errorf("store: count sessions of %s: %w", merchant, err)
	}
	hi, lo := "+inf", "-inf"
	if !to.IsZero() {
		hi = "(" + strconv.FormatInt(to.UnixMicro(), 10)
	}
	if !from.IsZero() {
		lo = strconv.FormatInt(from.UnixMicro(), 10)
	}
	cmds, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, st := range payment.States {
			for part := range Partitions {
				p.ZCount(ctx, r.listKey(part, merchant, st), lo, hi)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: count sessions of %s: %w", merchant, err)
	}
	out := map[payment.State]int64{}
	for i, c := range cmds {
		if n := c.(*redis.IntCmd).Val(); n > 0 {
			out[payment.States[i/Partitions]] += n
		}
	}
	return out, nil
}
