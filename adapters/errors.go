package adapters

import (
	"errors"
	"fmt"
)

// ErrUnauthorized is returned (wrapped) by Verify for a delivery whose signature is missing or wrong.
var ErrUnauthorized = errors.New("delivery signature is missing or wrong")

// InputError is a delivery body an adapter cannot translate.
type InputError struct {
	// Pointer is the RFC 6901 pointer to the offending field of the body ("" for the whole body).
	Pointer string
	// Detail says what is wrong.
	Detail string
}

// Error returns the pointer and the detail.
func (e *InputError) Error() string {
	if e.Pointer == "" {
		return "adapters: body: " + e.Detail
	}
	return fmt.Sprintf("adapters: %s: %s", e.Pointer, e.Detail)
}

// Unauthorized returns an error wrapping ErrUnauthorized with a reason (never a secret or a signature).
func Unauthorized(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrUnauthorized)
}
