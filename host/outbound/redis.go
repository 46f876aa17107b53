package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix starts the keys of a RedisStorage whose prefix is empty.
const DefaultRedisPrefix = "kasse:outbound:"

// RedisStorage keeps jobs in Redis: a sorted set "<prefix>due" of job IDs scored by due time in Unix
// milliseconds, a hash "<prefix>jobs" of job JSON by ID, and a hash "<prefix>dead" of the jobs given up
// on. Jobs survive a kasse restart, and every instance with the same Redis and prefix shares them; Claim
// is one Lua script, so a due job goes to exactly one instance per lease. The three keys share a hash tag,
// so the storage also works on Redis Cluster.
type RedisStorage struct {
	client          redis.UniversalClient
	due, jobs, dead string
}

// NewRedisStorage returns a RedisStorage using client, with keys starting with prefix (default
// DefaultRedisPrefix). Two queues in one Redis (status updates and webhook inbox) need two prefixes.
// The caller keeps ownership of client.
func NewRedisStorage(client redis.UniversalClient, prefix string) (*RedisStorage, error) {
	if client == nil {
		return nil, errors.New("outbound: new redis storage: nil client")
	}
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	tag := "{" + prefix + "}"
	return &RedisStorage{client: client, due: tag + "due", jobs: tag + "jobs", dead: tag + "dead"}, nil
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
	n, err := addScript.Run(ctx, r.client, []string{r.due, r.jobs}, job.ID, b, due.UnixMilli()).Int()
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

// Claim implements Storage.
func (r *RedisStorage) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	raw, err := claimScript.Run(ctx, r.client, []string{r.due, r.jobs}, now.UnixMilli(), limit,
		now.Add(lease).UnixMilli()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redis claim jobs: %w", err)
	}
	jobs := make([]Job, 0, len(raw))
	for _, s := range raw {
		var j Job
		if err := json.Unmarshal([]byte(s), &j); err != nil {
			return nil, fmt.Errorf("decode job: %w", err)
		}
		jobs = append(jobs, j)
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
	if err := retryScript.Run(ctx, r.client, []string{r.due, r.jobs}, job.ID, b, due.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("redis retry job[%s]: %w", job.ID, err)
	}
	return nil
}

// Done implements Storage.
func (r *RedisStorage) Done(ctx context.Context, id string) error {
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, r.due, id)
		p.HDel(ctx, r.jobs, id)
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
		p.ZRem(ctx, r.due, job.ID)
		p.HDel(ctx, r.jobs, job.ID)
		p.HSet(ctx, r.dead, job.ID, b)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis bury job[%s]: %w", job.ID, err)
	}
	return nil
}

// Len implements Storage.
func (r *RedisStorage) Len(ctx context.Context) (int, error) {
	n, err := r.client.ZCard(ctx, r.due).Result()
	if err != nil {
		return 0, fmt.Errorf("redis count jobs: %w", err)
	}
	return int(n), nil
}

// Buried returns the jobs that were given up on, by ID.
func (r *RedisStorage) Buried(ctx context.Context) (map[string]Job, error) {
	all, err := r.client.HGetAll(ctx, r.dead).Result()
	if err != nil {
		return nil, fmt.Errorf("redis list buried jobs: %w", err)
	}
	out := make(map[string]Job, len(all))
	for id, s := range all {
		var j Job
		if err := json.Unmarshal([]byte(s), &j); err != nil {
			return nil, fmt.Errorf("decode buried job[%s]: %w", id, err)
		}
		out[id] = j
	}
	return out, nil
}

// Interface guards.
var (
	_ Storage = (*RedisStorage)(nil)
	_ Storage = (*MemoryStorage)(nil)
)
