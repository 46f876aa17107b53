package adapters

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Merchant is what an adapter learns about the merchant a delivery or a status update is for: its id,
// the return URL prefixes its checkouts must respect, and its own platform section with the platform's
// secrets. It deliberately has no field for the merchant's payment provider settings: an adapter,
// third-party ones included, never sees the Vipps client secret or subscription key. The host builds it
// from the merchant's config for every call, so a reloaded config or a rotated key applies at once.
type Merchant struct {
	// ID is the merchant's id in kasse's config and in the hook path.
	ID string
	// ReturnURLPrefixes are the prefixes a checkout's return URL must start with (kasse refuses others),
	// for a Validator that checks the platform's return URL template against them.
	ReturnURLPrefixes []string
	// Platform is the merchant's platform section; nil when the merchant has none (the host calls no
	// adapter then, but an adapter must not panic on it).
	Platform *Platform
}

// Platform is a merchant's platform settings, as in the config file's merchants.{id}.platform, with the
// platform's secrets resolved from the environment. See host/config.Platform for each setting's meaning
// and default.
type Platform struct {
	// Kind is the adapter id (platform.kind).
	Kind string
	// BaseURL is where kasse reaches the platform's API (or, for generic, where status updates go);
	// without a trailing slash.
	BaseURL string
	// APIVersion is the platform API version (Shopify); empty for the adapter's default.
	APIVersion string
	// GatewayID says which orders are paid through kasse; empty for the adapter's default.
	GatewayID string
	// CaptureOnStatus is the order status that captures; empty for the adapter's default.
	CaptureOnStatus string
	// PaidStatus is the order status kasse sets when the payment is reserved; empty for the default.
	PaidStatus string
	// FailedStatus is the order status kasse sets when the payment fails; empty for the default.
	FailedStatus string
	// ReturnURL is the return URL template ("{id}", "{key}"); empty for the adapter's default.
	ReturnURL string
	// Options are adapter-specific settings that are not secrets.
	Options map[string]string

	// WebhookSecretEnv, PreviousWebhookSecretEnv, ConsumerKeyEnv, ConsumerSecretEnv and AccessTokenEnv
	// name the environment variables the secrets below come from, so that a Validator can say which
	// one is missing; an empty name means the setting is not configured.
	WebhookSecretEnv, PreviousWebhookSecretEnv, ConsumerKeyEnv, ConsumerSecretEnv, AccessTokenEnv string

	// WebhookSecret is the secret the platform signs its deliveries with.
	WebhookSecret Secret
	// PreviousWebhookSecret is the secret being rotated out; deliveries signed with it are accepted.
	PreviousWebhookSecret Secret
	// ConsumerKey is the WooCommerce REST API consumer key.
	ConsumerKey Secret
	// ConsumerSecret is the WooCommerce REST API consumer secret.
	ConsumerSecret Secret
	// AccessToken is the platform's API access token (Shopify Admin API, or a third-party platform's).
	AccessToken Secret
}

// redacted is what a Secret shows instead of its value.
const redacted = "[redacted]"

// Secret is one of the platform's credentials. It never shows its value when printed, logged or
// marshalled: every fmt verb, String, GoString, MarshalJSON, MarshalText and LogValue give
// "[redacted]". Reveal returns the value, for the one place that must send it to the platform.
type Secret string

// Reveal returns the secret's value. Call it only where the value is sent to the platform it belongs to
// or used as a signing key.
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
)
