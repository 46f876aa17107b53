package store

import (
	"context"
	"time"
)

// UserIndex finds the sessions that hold a payment provider user's personal data, so that kasse can erase
// it when the user withdraws consent (Vipps Express consent removal). Memory and Redis implement it; the
// checkout service asks for it with a type assertion, so other Store implementations keep working.
type UserIndex interface {
	// IndexUser records that session id holds personal data of the provider's user userID at merchant.
	// The entry lives at least ttl (> 0); indexing the same pair again is harmless.
	IndexUser(ctx context.Context, merchant, userID, id string, ttl time.Duration) error
	// SessionsOfUser returns the ids indexed for (merchant, userID), sorted; none is not an error. An id
	// may name a session that has since expired.
	SessionsOfUser(ctx context.Context, merchant, userID string) ([]string, error)
	// ForgetUser removes the index of (merchant, userID).
	ForgetUser(ctx context.Context, merchant, userID string) error
}

// Interface guards.
var (
	_ UserIndex = (*Memory)(nil)
	_ UserIndex = (*Redis)(nil)
)
