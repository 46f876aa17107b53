package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Duration is a time.Duration written in the config file as a Go duration string ("100ms", "2s",
// "9600h"). The schema accepts only positive durations with a unit.
type Duration time.Duration

// String returns the duration in time.Duration's format.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"2s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// redacted is what a Secret shows instead of its value.
const redacted = "[redacted]"

// Secret is a credential read from the environment. It never shows its value when printed, logged or
// marshalled: every fmt verb, String, GoString, MarshalJSON, MarshalText and LogValue give "[redacted]".
// Reveal returns the value, for the one place that must send it.
type Secret string

// Reveal returns the secret's value. Call it only where the value is sent to the party it belongs to.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]", so %#v does not show the value either.
func (s Secret) GoString() string { return redacted }

// Format writes "[redacted]" for every verb, including %q, %x and %#v.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalJSON returns the JSON string "[redacted]".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[redacted]" (used by encoding/xml, slog's text handler and map keys).
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue returns "[redacted]" for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// Interface guards.
var (
	_ fmt.Formatter  = Secret("")
	_ fmt.Stringer   = Secret("")
	_ fmt.GoStringer = Secret("")
	_ json.Marshaler = Secret("")
	_ slog.LogValuer = Secret("")

	_ json.Marshaler   = Duration(0)
	_ json.Unmarshaler = (*Duration)(nil)
)
