package outbound

import (
	"context"
	"sort"
	"sync"
	"time"
)

// MemoryStorage keeps jobs in this process: the embedded default when no Redis is configured. Jobs do
// not survive a restart and are not shared between processes. It is safe for concurrent use.
type MemoryStorage struct {
	mu     sync.Mutex
	jobs   map[string]Job
	due    map[string]time.Time
	buried map[string]Job
}

// NewMemoryStorage returns an empty MemoryStorage.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{jobs: map[string]Job{}, due: map[string]time.Time{}, buried: map[string]Job{}}
}

// Add implements Storage.
func (m *MemoryStorage) Add(_ context.Context, job Job, due time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.jobs[job.ID]; ok {
		return false, nil
	}
	job.Payload = append([]byte(nil), job.Payload...)
	m.jobs[job.ID] = job
	m.due[job.ID] = due
	return true, nil
}

// Claim implements Storage.
func (m *MemoryStorage) Claim(_ context.Context, now time.Time, limit int, lease time.Duration) ([]Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id, at := range m.due {
		if !at.After(now) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		if a, b := m.due[ids[i]], m.due[ids[j]]; !a.Equal(b) {
			return a.Before(b)
		}
		return ids[i] < ids[j]
	})
	if limit < 0 {
		limit = 0
	}
	if len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]Job, 0, len(ids))
	for _, id := range ids {
		m.due[id] = now.Add(lease)
		out = append(out, m.jobs[id])
	}
	return out, nil
}

// Retry implements Storage.
func (m *MemoryStorage) Retry(_ context.Context, job Job, due time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.jobs[job.ID]; !ok {
		return nil
	}
	m.jobs[job.ID] = job
	m.due[job.ID] = due
	return nil
}

// Done implements Storage.
func (m *MemoryStorage) Done(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.jobs, id)
	delete(m.due, id)
	return nil
}

// Bury implements Storage.
func (m *MemoryStorage) Bury(_ context.Context, job Job) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.jobs, job.ID)
	delete(m.due, job.ID)
	m.buried[job.ID] = job
	return nil
}

// Len implements Storage.
func (m *MemoryStorage) Len(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.jobs), nil
}

// Buried returns the jobs that were given up on, by ID.
func (m *MemoryStorage) Buried() map[string]Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Job, len(m.buried))
	for k, v := range m.buried {
		out[k] = v
	}
	return out
}
