package urlsecret_test

import (
	"strconv"
	"testing"

	"github.com/kassehq/kasse/host/internal/urlsecret"
)

func TestSegments(t *testing.T) {
	const a, b = "first-secret-of-at-least-32-characters", "second-secret-of-at-least-32-characters"
	old, rotated, after := urlsecret.New(a, ""), urlsecret.New(b, a), urlsecret.New(b, "")
	seg := old.Segment("demo")
	if len(seg) != 32 || seg == old.Segment("other") || seg == after.Segment("demo") {
		t.Fatalf("segments not per merchant and secret: %q %q %q", seg, old.Segment("other"), after.Segment("demo"))
	}
	cases := []struct {
		name     string
		keys     *urlsecret.Keys
		merchant string
		segment  string
		want     bool
	}{
		{"current", old, "demo", seg, true},
		{"other merchant's", old, "other", seg, false},
		{"previous during rotation", rotated, "demo", seg, true},
		{"new during rotation", rotated, "demo", after.Segment("demo"), true},
		{"previous after rotation", after, "demo", seg, false},
		{"empty", old, "demo", "", false},
		{"truncated", old, "demo", seg[:31], false},
		{"no keys", nil, "demo", seg, false},
	}
	for _, c := range cases {
		if got := c.keys.Valid(c.merchant, c.segment); got != c.want {
			t.Errorf("%s: Valid = %v, want %v", c.name, got, c.want)
		}
	}
	if (*urlsecret.Keys)(nil).Segment("demo") != "" || urlsecret.New("", "").Segment("demo") != "" {
		t.Error("a segment without a secret")
	}
}

// TestSegmentsRemembered: segments are the same whether derived or remembered, also past the number
// remembered, and a remembered current segment does not stand in for the previous secret's.
func TestSegmentsRemembered(t *testing.T) {
	const a, b = "first-secret-of-at-least-32-characters", "second-secret-of-at-least-32-characters"
	rotated, fresh := urlsecret.New(b, a), urlsecret.New(b, a)
	old := urlsecret.New(a, "")
	for i := range 3000 {
		m := "merchant-" + strconv.Itoa(i)
		for range 2 {
			if got, want := rotated.Segment(m), fresh.Segment(m); got != want {
				t.Fatalf("%s: segment %q, want %q", m, got, want)
			}
			if !rotated.Valid(m, old.Segment(m)) || !rotated.Valid(m, rotated.Segment(m)) {
				t.Fatalf("%s: a valid segment refused", m)
			}
			if rotated.Valid(m, old.Segment(m+"x")) || old.Valid(m, rotated.Segment(m)) {
				t.Fatalf("%s: an invalid segment accepted", m)
			}
		}
	}
}
