package outbound

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix starts the keys of a RedisStorage whose prefix is empty.
const DefaultRedisPrefix = "kasse:outbound:"

// RedisStorage keeps jobs in Redis, spread over partitions, each a sorted set "<prefix>{<tag>}:due" of
// job IDs scored by due time in Unix milliseconds, a hash "<prefix>{<tag>}:jobs" of job JSON by ID, and a
// hash "<prefix>{<tag>}:dead" of the jobs given up on; a job lives in the partition its ID hashes to
// (FNV-1a). The keys of one partition share a hash tag, so each script stays in one slot, while on Redis
// Cluster the partitions, hence the queue's traffic, spread over the primaries. Jobs survive a kasse
// restart, and every instance with the same Redis and prefix shares them; Claim looks at every partition
// and claims with one script per partition, so a due job goes to exactly one instance per lease.
type RedisStorage struct {
	client redis.UniversalClient
	parts  []redisPartition
}

// redisPartition is the keys of one partition.
type redisPartition struct{ due, jobs, dead string }

// NewRedisStorage returns a RedisStorage using client with one partition, with keys starting with
// prefix (default DefaultRedisPrefix) and the hash tag "{<prefix>}". Two queues in one Redis (status
// updates and webhook inbox) need two prefixes. The caller keeps ownership of client.
func NewRedisStorage(client redis.UniversalClient, prefix string) (*RedisStorage, error) {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return NewPartitionedRedisStorage(client, "", []string{prefix})
}

// NewPartitionedRedisStorage returns a RedisStorage with one partition per hash tag in tags, its keys
// "<prefix>{<tag>}:due" and so on. The tags and their order are part of the stored layout: jobs are
// found by hashing their ID over len(tags). The caller keeps ownership of client.
func NewPartitionedRedisStorage(client redis.UniversalClient, prefix string, tags []string) (*RedisStorage, error) {
	if client == nil {
		return nil, errors.New("outbound: new redis storage: nil client")
	}
	if len(tags) == 0 {
		return nil, errors.New("outbound: new redis storage: no partitions")
	}
	parts := make([]redisPartition, len(tags))
	for i, t := range tags {
		k := prefix + "{" + t + "}"
		if prefix != "" {
			k += ":"
		}
		parts[i] = redisPartition{due: k + "due", jobs: k + "jobs", dead: k + "dead"}
	}
	return &RedisStorage{client: client, parts: parts}, nil
}

// part returns the partition of job id.
func (r *RedisStorage) part(id string) redisPartition {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return r.parts[h.Sum32()%uint32(len(r.parts))]
}

var addScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1`)

// Add implements Storage.
func (r *RedisStorage) Add(ctx context.Context, job Job, due time.Time) (bool, error) {
	b, err := json.Marshal(job)
	if err != nil {
		return false, fmt.Errorf("encode job[%s]: %w", job.ID, err)
	}
	n, err := addScript.Run(ctx, r.client, []string{r.part(job.ID).due, r.part(job.ID).jobs}, job.ID, b, due.UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("redis add job[%s]: %w", job.ID, err)
	}
	return n == 1, nil
}

// claimScript takes up to ARGV[2] ids due at or before ARGV[1], moves them to ARGV[3] and returns the
// jobs. An id without a job (removed meanwhile) is dropped from the schedule.
var claimScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local job = redis.call('HGET', KEYS[2], id)
  if job then
    redis.call('ZADD', KEYS[1], ARGV[3], id)
    table.insert(out, job)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out`)

// Claim implements Storage: one pipeline reads the first limit due IDs of every partition, the earliest
// limit of them overall are chosen, and a second pipeline claims them with claimScript per partition.
func (r *RedisStorage) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	upTo := strconv.FormatInt(now.UnixMilli(), 10)
	peeks := make([]*redis.ZSliceCmd, len(r.parts))
	if _, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range r.parts {
			peeks[i] = p.ZRangeByScoreWithScores(ctx, k.due, &redis.ZRangeBy{Min: "-inf", Max: upTo, Count: int64(limit)})
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redis claim jobs: %w", err)
	}
	type due struct {
		score float64
		part  int
	}
	var all []due
	for i, c := range peeks {
		zs, err := c.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("redis claim jobs: %w", err)
		}
		for _, z := range zs {
			all = append(all, due{z.Score, i})
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	slices.SortStableFunc(all, func(a, b due) int { return cmp.Compare(a.score, b.score) })
	counts := make(map[int]int)
	for _, d := range all[:min(limit, len(all))] {
		counts[d.part]++
	}
	claims := make([]*redis.Cmd, 0, len(counts))
	if _, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for part, n := range counts {
			k := r.parts[part]
			claims = append(claims, claimScript.Eval(ctx, p, []string{k.due, k.jobs}, now.UnixMilli(), n,
				now.Add(lease).UnixMilli()))
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redis claim jobs: %w", err)
	}
	var jobs []Job
	for _, c := range claims {
		raw, err := c.StringSlice()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("redis claim jobs: %w", err)
		}
		for _, s := range raw {
			var j Job
			if err := json.Unmarshal([]byte(s), &j); err != nil {
				return nil, fmt.Errorf("decode job: %w", err)
			}
			jobs = append(jobs, j)
		}
	}
	return jobs, nil
}

var retryScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1`)

// Retry implements Storage.
func (r *RedisStorage) Retry(ctx context.Context, job Job, due time.Time) error {
	b, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("encode job[%s]: %w", job.ID, err)
	}
	if err := retryScript.Run(ctx, r.client, []string{r.part(job.ID).due, r.part(job.ID).jobs}, job.ID, b, due.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("redis retry job[%s]: %w", job.ID, err)
	}
	return nil
}

// Done implements Storage.
func (r *RedisStorage) Done(ctx context.Context, id string) error {
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		k := r.part(id)
		p.ZRem(ctx, k.due, id)
		p.HDel(ctx, k.jobs, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis remove job[%s]: %w", id, err)
	}
	return nil
}

// Bury implements Storage.
func (r *RedisStorage) Bury(ctx context.Context, job Job) error {
	b, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("encode job[%s]: %w", job.ID, err)
	}
	_, err = r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		k := r.part(job.ID)
		p.ZRem(ctx, k.due, job.ID)
		p.HDel(ctx, k.jobs, job.ID)
		p.HSet(ctx, k.dead, job.ID, b)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis bury job[%s]: %w", job.ID, err)
	}
	return nil
}

// Len implements Storage.
func (r *RedisStorage) Len(ctx context.Context) (int, error) {
	cards := make([]*redis.IntCmd, len(r.parts))
	if _, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range r.parts {
			cards[i] = p.ZCard(ctx, k.due)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("redis count jobs: %w", err)
	}
	n := 0
	for _, c := range cards {
		n += int(c.Val())
	}
	return n, nil
}

// Buried returns the jobs that were given up on, by ID.
func (r *RedisStorage) Buried(ctx context.Context) (map[string]Job, error) {
	out := make(map[string]Job)
	for _, k := range r.parts {
		all, err := r.client.HGetAll(ctx, k.dead).Result()
		if err != nil {
			return nil, fmt.Errorf("redis list buried jobs: %w", err)
		}
		for id, s := range all {
			var j Job
			if err := json.Unmarshal([]byte(s), &j); err != nil {
				return nil, fmt.Errorf("decode buried job[%s]: %w", id, err)
			}
			out[id] = j
		}
	}
	return out, nil
}

// MoveTo moves every job of r (scheduled and buried, with their due times) into dst, a storage over the
// same client with other keys (another prefix or other partitions), and deletes r's keys; a job already
// in dst stays as it is there. It returns the number of jobs moved. It is for changing the key layout
// (`kasse store migrate`) while no instance uses the queue.
func (r *RedisStorage) MoveTo(ctx context.Context, dst *RedisStorage) (int, error) {
	n := 0
	for _, k := range r.parts {
		jobs, err := r.client.HGetAll(ctx, k.jobs).Result()
		if err != nil {
			return n, fmt.Errorf("redis move jobs of %s: %w", k.jobs, err)
		}
		due, err := r.client.ZRangeWithScores(ctx, k.due, 0, -1).Result()
		if err != nil {
			return n, fmt.Errorf("redis move jobs of %s: %w", k.due, err)
		}
		dead, err := r.client.HGetAll(ctx, k.dead).Result()
		if err != nil {
			return n, fmt.Errorf("redis move jobs of %s: %w", k.dead, err)
		}
		for _, z := range due {
			id, _ := z.Member.(string)
			job, ok := jobs[id]
			if !ok {
				continue
			}
			d := dst.part(id)
			if err := addScript.Run(ctx, dst.client, []string{d.due, d.jobs}, id, job, int64(z.Score)).Err(); err != nil {
				return n, fmt.Errorf("redis move job[%s]: %w", id, err)
			}
			n++
		}
		for id, job := range dead {
			if err := dst.client.HSetNX(ctx, dst.part(id).dead, id, job).Err(); err != nil {
				return n, fmt.Errorf("redis move buried job[%s]: %w", id, err)
			}
			n++
		}
		for _, key := range []string{k.due, k.jobs, k.dead} {
			if err := r.client.Del(ctx, key).Err(); err != nil {
				return n, fmt.Errorf("redis move jobs: delete %s: %w", key, err)
			}
		}
	}
	return n, nil
}

// Interface guards.
var (
	_ Storage = (*RedisStorage)(nil)
	_ Storage = (*MemoryStorage)(nil)
)
