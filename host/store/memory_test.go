package store_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/host/store"
	"github.com/kassehq/kasse/host/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	storetest.Run(t, func(t *testing.T) store.Store {
		return store.NewMemory(store.WithNow(clock.Now))
	}, storetest.WithClock(clock))
}

func TestMemoryWithoutJanitor(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	storetest.Run(t, func(t *testing.T) store.Store {
		return store.NewMemory(store.WithNow(clock.Now), store.WithJanitorInterval(0))
	}, storetest.WithClock(clock))
}

func BenchmarkMemoryUpdate(b *testing.B) {
	m := store.NewMemory()
	defer m.Close()
	benchUpdate(b, m)
}

// benchUpdate measures one Update that changes a field of a full session.
func benchUpdate(b *testing.B, st store.Store) {
	ctx := b.Context()
	if err := st.Create(ctx, storetest.Sample("bench", "bench-ref"), time.Hour); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		_, err := st.Update(ctx, "bench", func(s *payment.Session) (bool, error) {
			s.CapturedAmount = int64(i)
			return true, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchUpdateParallel measures Updates from many goroutines, each on its own session.
func benchUpdateParallel(b *testing.B, st store.Store) {
	ctx := b.Context()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		id := "bench-par-" + strconv.FormatInt(next.Add(1), 10)
		if err := st.Create(ctx, storetest.Sample(id, ""), time.Hour); err != nil {
			b.Error(err)
			return
		}
		i := int64(0)
		for pb.Next() {
			i++
			_, err := st.Update(ctx, id, func(s *payment.Session) (bool, error) {
				s.CapturedAmount = i
				return true, nil
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkMemoryUpdateParallel(b *testing.B) {
	m := store.NewMemory()
	defer m.Close()
	benchUpdateParallel(b, m)
}
