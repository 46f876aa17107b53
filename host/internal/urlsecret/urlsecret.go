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
)

// Keys derives and checks segments. The zero value and nil derive nothing and accept nothing.
type Keys struct {
	current, previous []byte
}

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

// Segment is merchant's segment under the current secret, or "" without one.
func (k *Keys) Segment(merchant string) string {
	if k == nil || len(k.current) == 0 {
		return ""
	}
	return derive(k.current, merchant)
}

// Valid reports whether segment is merchant's segment under the current or the previous secret. It
// compares in constant time.
func (k *Keys) Valid(merchant, segment string) bool {
	if k == nil || segment == "" {
		return false
	}
	ok := false
	for _, s := range [][]byte{k.current, k.previous} {
		if len(s) > 0 && subtle.ConstantTimeCompare([]byte(derive(s, merchant)), []byte(segment)) == 1 {
			ok = true
		}
	}
	return ok
}
