package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kassehq/kasse/host/payment"
)

// listBatch is how many index entries one round trip of ListSessions reads.
const listBatch = 100

// listKey is the merchant's creation-time index, or with a state its index of the sessions in that state.
func (r *Redis) listKey(merchant string, state payment.State) string {
	k := r.prefix + "list:" + keyEscaper.Replace(merchant)
	if state != "" {
		k += ":" + string(state)
	}
	return k
}

// ListSessions implements Lister.ListSessions: it walks the merchant's index (of one state, if given)
// newest first in batches of listBatch ids, reads the sessions with one MGET per batch and removes the
// index entries of sessions that have expired.
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
	offset := 0
	for {
		start := hi
		if after != nil {
			start = strconv.FormatInt(after.micros, 10)
		}
		zs, err := r.client.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: r.listKey(q.Merchant, q.State),
			Start: start, Stop: lo, ByScore: true, Rev: true, Offset: int64(offset), Count: listBatch}).Result()
		if err != nil {
			return fail(err)
		}
		if len(zs) == 0 {
			return page, nil
		}
		var pos []listPos
		for _, z := range zs {
			p := listPos{micros: int64(z.Score), id: fmt.Sprint(z.Member)}
			if after != nil && !after.before(p.micros, p.id) {
				offset++ // ties at the cursor's microsecond that the page before already had
				continue
			}
			pos = append(pos, p)
		}
		if len(pos) == 0 {
			continue
		}
		keys := make([]string, len(pos))
		for i, p := range pos {
			keys[i] = r.sessionKey(p.id)
		}
		raws, err := r.client.MGet(ctx, keys...).Result()
		if err != nil {
			return fail(err)
		}
		var gone []string
		for i, raw := range raws {
			if len(page.Sessions) == q.Limit || page.Scanned == q.MaxScan {
				page.Next = after.String()
				r.unlist(ctx, q.Merchant, gone)
				return page, nil
			}
			after = &pos[i]
			str, ok := raw.(string)
			if !ok {
				gone = append(gone, pos[i].id)
				continue
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
		offset = 0
	}
}

// unlist removes expired sessions from the merchant's indexes. It is best effort: an entry left behind
// is skipped by the next listing and removed then.
func (r *Redis) unlist(ctx context.Context, merchant string, ids []string) {
	if len(ids) == 0 {
		return
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, r.listKey(merchant, ""), members...)
		for _, st := range payment.States {
			p.ZRem(ctx, r.listKey(merchant, st), members...)
		}
		return nil
	})
}

// pruneRounds bounds how many batches of expired entries one CountSessions removes before it counts.
const pruneRounds = 20

// prune removes the index entries of the merchant's oldest sessions while they have expired. Sessions
// share one TTL, so they expire roughly in creation order and the expired ones are the oldest entries.
func (r *Redis) prune(ctx context.Context, merchant string) error {
	for range pruneRounds {
		ids, err := r.client.ZRange(ctx, r.listKey(merchant, ""), 0, listBatch-1).Result()
		if err != nil || len(ids) == 0 {
			return err
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

// CountSessions implements Lister.CountSessions with one ZCOUNT per state, after removing the entries
// of expired sessions.
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
			p.ZCount(ctx, r.listKey(merchant, st), lo, hi)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: count sessions of %s: %w", merchant, err)
	}
	out := map[payment.State]int64{}
	for i, c := range cmds {
		if n := c.(*redis.IntCmd).Val(); n > 0 {
			out[payment.States[i]] = n
		}
	}
	return out, nil
}
