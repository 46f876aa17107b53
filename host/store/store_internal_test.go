package store

import (
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/payment"
)

// TestCloneCoversReferenceFields fails when payment.Session (or a type inside it) gains a pointer, slice,
// map or similar field: clone must then be taught to copy it, and this list updated.
func TestCloneCoversReferenceFields(t *testing.T) {
	var shared []string
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		if typ == reflect.TypeFor[time.Time]() {
			return // a value type; its *Location is immutable
		}
		switch typ.Kind() {
		case reflect.Struct:
			for f := range typ.Fields() {
				walk(path+"."+f.Name, f.Type)
			}
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface, reflect.Chan, reflect.Func,
			reflect.UnsafePointer:
			shared = append(shared, path)
			if typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
				walk(path+"[]", typ.Elem())
			}
		case reflect.Array:
			walk(path+"[]", typ.Elem())
		}
	}
	walk("Session", reflect.TypeFor[payment.Session]())
	want := []string{"Session.Customer", "Session.Lines", "Session.History", "Session.Operations", "Session.Outbox",
		"Session.Outbox[].Settlement", "Session.Outbox[].Settlement[].Entries", "Session.Settlement", "Session.Settlement[].Entries"}
	if !slices.Equal(shared, want) {
		t.Fatalf("fields that share memory: %q; clone copies %q", shared, want)
	}
}

func TestHashTag(t *testing.T) {
	for _, c := range []struct{ prefix, want string }{
		{"kasse:", "{kasse}:"},
		{"kasse", "{kasse}"},
		{"kasse:test:3:", "{kasse:test:3}:"},
		{"{shop}:kasse:", "{shop}:kasse:"},
		{"a{b}c:", "a{b}c:"},
		{"{}kasse:", "{{}kasse}:"},
		{":", "{kasse}:"},
	} {
		if got := withHashTag(c.prefix); got != c.want {
			t.Errorf("withHashTag(%q) = %q, want %q", c.prefix, got, c.want)
		}
	}
}

func TestMemoryJanitorSweepsAndStops(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock atomicTime
	clock.set(now)
	m := NewMemory(WithNow(clock.get), WithJanitorInterval(time.Millisecond))
	ctx := t.Context()
	if err := m.Create(ctx, &payment.Session{ID: "s", Merchant: "m", ProviderReference: "r"}, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ClaimIdempotencyKey(ctx, "sc", "k", "v", time.Second); err != nil {
		t.Fatal(err)
	}
	clock.set(now.Add(time.Second))
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		n := len(m.sessions) + len(m.refs) + len(m.idem)
		m.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("janitor left %d expired entries", n)
		}
		time.Sleep(time.Millisecond)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.done:
	default:
		t.Fatal("janitor still running after Close")
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := m.Ping(ctx); err == nil {
		t.Fatal("Ping after Close succeeded")
	}
	if _, err := m.Get(ctx, "s"); err == nil {
		t.Fatal("Get after Close succeeded")
	}
}

// atomicTime is a settable clock for the janitor test.
type atomicTime struct {
	mu sync.Mutex
	t  time.Time
}

func (a *atomicTime) set(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.t = t
}

func (a *atomicTime) get() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.t
}
