package store

import (
	"encoding/json"
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
		"Session.Outbox[].Settlement", "Session.Outbox[].Settlement[].Entries", "Session.Settlement", "Session.Settlement[].Entries", "Session.Applied"}
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

// loadSession is a session as the load benchmark's callbacks and captures see it: cart lines, a
// customer, a few history entries, operations and a notice.
func loadSession() *payment.Session {
	now := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	s := &payment.Session{ID: "kivdfaprd4mzjcvbaojf3m5j52", Merchant: "demo", Reference: "order-1001", State: payment.StateAuthorized,
		Amount: 49900, Currency: "NOK", Description: "One pair of wool socks", ReturnURL: "http://shop.test/orders/1001/thanks",
		Customer: &payment.Customer{PhoneNumber: "91234567"}, Plugin: "vipps-ecom", PluginVersion: "1.4.0",
		ProviderReference: "kivdfaprd4mzjcvbaojf3m5j52", RedirectURL: "http://127.0.0.1:8090/landing?token=abc",
		CallbackToken: "0123456789abcdef0123456789abcdef", AuthorizedAmount: 49900, CapturedAmount: 300,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(24 * time.Hour), NextCheckAt: now.Add(time.Minute), Revision: 7}
	for i := range 3 {
		s.Lines = append(s.Lines, payment.Line{SKU: "SKU-" + string(rune('A'+i)), Name: "Item", Quantity: 1, UnitPrice: 10000})
	}
	for _, st := range []payment.State{payment.StatePending, payment.StateAuthorized, payment.StateCaptured} {
		s.History = append(s.History, payment.Event{At: now, From: payment.StatePending, To: st, Cause: "callback RESERVED"})
	}
	for i := range 3 {
		s.Operations = append(s.Operations, payment.ProviderOp{ID: "req-" + string(rune('a'+i)), Kind: "capture", Attempts: 1, At: now, SettledAt: now})
	}
	return s
}

// TestDecodeSessionMatchesEncodingJSON: decodeSession (a faster decoder) reads what the store writes
// exactly as encoding/json would.
func TestDecodeSessionMatchesEncodingJSON(t *testing.T) {
	for name, s := range map[string]*payment.Session{"load": loadSession(), "bare": {ID: "x", Merchant: "m", History: []payment.Event{}}} {
		t.Run(name, func(t *testing.T) {
			raw, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeSession(string(raw))
			if err != nil {
				t.Fatal(err)
			}
			var want payment.Session
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			normalizeTimes(&want)
			if !reflect.DeepEqual(got, &want) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, &want)
			}
			// Redis.UpdateFrom relies on this: a stored session encodes to the bytes it was read from.
			stored, _ := json.Marshal(clone(s))
			read, _ := decodeSession(string(stored))
			if again, _ := json.Marshal(read); string(again) != string(stored) {
				t.Fatalf("a session read back encodes differently:\n%s\n%s", again, stored)
			}
		})
	}
	if _, err := decodeSession(`{"id": 7}`); err == nil {
		t.Fatal("a session with a number for its id decoded without an error")
	}
}

// BenchmarkDecodeSession is the cost of reading a stored session, paid on every Get and Update.
func BenchmarkDecodeSession(b *testing.B) {
	raw, err := json.Marshal(loadSession())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeSession(string(raw)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPartitionTags: partition i's tag hashes to slot i*16384/Partitions (crc16 checked against the
// reference value of the Redis Cluster specification), so the partitions sit evenly over the slots.
func TestPartitionTags(t *testing.T) {
	if got := crc16("123456789"); got != 0x31C3 {
		t.Fatalf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	tags := partitionTags()
	for i, tag := range tags {
		if slot := int(crc16(tag)) % redisSlots; slot != i*redisSlots/Partitions {
			t.Errorf("partition %d: tag %q is in slot %d, want %d", i, tag, slot, i*redisSlots/Partitions)
		}
	}
	for _, c := range []struct{ a, b string }{
		{"kasse:{12}:session:x", "kasse:{12}:polls"},
		{"{shop}:{12}:session:x", "{shop}:{99}:polls"},
	} {
		if !samePartition(c.a, c.b) {
			t.Errorf("samePartition(%q, %q) = false", c.a, c.b)
		}
	}
	if samePartition("kasse:{1}:x", "kasse:{2}:x") {
		t.Error("different tags share a partition")
	}
}
