// Package urlsecret owns the unguessable per-merchant path segment of the URLs kasse gives Vipps for
// Express Checkout: shipping details (which reveal a cart) and consent removal (which Vipps calls without
// any authentication, so the URL itself is the credential). The segment is an HMAC of the merchant id
// under a server secret; a previous secret keeps its segments valid while a rotation is under way.
package urlsecret

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"sync/atomic"
)

// Keys derives and checks segments. The zero value and nil derive nothing and accept nothing.
type Keys struct {
	current, previous []byte
	// derived remembers segments already derived, by secret (0 current, 1 previous) and merchant: every
	// Express request checks its segment and builds the merchant's prefix, and two HMACs a request were
	// about 2.5% of the shipping-details path's CPU under load. At most maxDerived are kept, since the
	// merchant checked may come from a request path.
	derived  sync.Map // derivedKey -> string
	nDerived atomic.Int64
}

// derivedKey names a remembered segment.
type derivedKey struct {
	which    int
	merchant string
}

// maxDerived bounds Keys.derived; past it, segments are derived each time.
const maxDerived = 1024

// New returns Keys for the current secret and, while a rotation is under way, the previous one ("" when
// there is none).
func New(current, previous string) *Keys {
	k := &Keys{current: []byte(current)}
	if previous != "" {
		k.previous = []byte(previous)
	}
	return k
}

// derive is base64url(HMAC-SHA256(secret, label || merchant)) cut to 32 characters (192 bits).
func derive(secret []byte, merchant string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("kasse express url segment\x00"))
	m.Write([]byte(merchant))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:32]
}

// segment is derive(secret, merchant) for k.current (which 0) or k.previous (1), remembered.
func (k *Keys) segment(which int, secret []byte, merchant string) string {
	key := derivedKey{which, merchant}
	if v, ok := k.derived.Load(key); ok {
		return v.(string)
	}
	seg := derive(secret, merchant)
	if k.nDerived.Load() < maxDerived {
		if _, loaded := k.derived.LoadOrStore(key, seg); !loaded {
			k.nDerived.Add(1)
		}
	}
	return seg
}

// Segment is merchant's segment under the current secret, or "" without one.
func (k *Keys) Segment(merchant string) string {
	if k == nil || len(k.current) == 0 {
		return ""
	}
	return k.segment(0, k.current, merchant)
}

// Valid reports whether segment is merchant's segment under the current or the previous secret. It
// compares in constant time.
func (k *Keys) Valid(merchant, segment string) bool {
	if k == nil || segment == "" {
		return false
	}
	ok := false
	for which, s := range [2][]byte{k.current, k.previous} {
		if len(s) > 0 && subtle.ConstantTimeCompare([]byte(k.segment(which, s, merchant)), []byte(segment)) == 1 {
			ok = true
		}
	}
	return ok
}
