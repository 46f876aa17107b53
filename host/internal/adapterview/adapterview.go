// Package adapterview owns the one translation from a merchant's config to what a platform adapter may
// see of it (adapters.Merchant): the merchant's id, its return URL prefixes and its platform section with
// the platform's own secrets. The payment provider settings, with the Vipps client secret and
// subscription key, are left behind here, so no adapter can reach them.
package adapterview

import (
	"maps"

	"github.com/kassehq/kasse/adapters"
	"github.com/kassehq/kasse/host/config"
)

// Merchant returns the adapter's view of m. The slices and maps are copies: an adapter cannot change
// the live config through them.
func Merchant(m config.Merchant) adapters.Merchant {
	out := adapters.Merchant{ID: m.ID}
	if m.ReturnURLPrefixes != nil {
		out.ReturnURLPrefixes = append([]string(nil), m.ReturnURLPrefixes...)
	}
	if p := m.Platform; p != nil {
		out.Platform = &adapters.Platform{
			Kind: p.Kind, BaseURL: p.BaseURL, APIVersion: p.APIVersion, GatewayID: p.GatewayID,
			CaptureOnStatus: p.CaptureOnStatus, PaidStatus: p.PaidStatus, FailedStatus: p.FailedStatus,
			ReturnURL: p.ReturnURL, Options: maps.Clone(p.Options),
			WebhookSecretEnv: p.WebhookSecretEnv, PreviousWebhookSecretEnv: p.PreviousWebhookSecretEnv,
			ConsumerKeyEnv: p.ConsumerKeyEnv, ConsumerSecretEnv: p.ConsumerSecretEnv, AccessTokenEnv: p.AccessTokenEnv,
			WebhookSecret:         adapters.Secret(p.WebhookSecret.Reveal()),
			PreviousWebhookSecret: adapters.Secret(p.PreviousWebhookSecret.Reveal()),
			ConsumerKey:           adapters.Secret(p.ConsumerKey.Reveal()),
			ConsumerSecret:        adapters.Secret(p.ConsumerSecret.Reveal()),
			AccessToken:           adapters.Secret(p.AccessToken.Reveal()),
		}
	}
	return out
}
