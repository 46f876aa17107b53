package adapters

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// Secrets returns the secrets a delivery to m may be signed with: the platform's webhook secret and,
// during a rotation, the previous one. Empty secrets are left out.
func Secrets(m Merchant) []Secret {
	if m.Platform == nil {
		return nil
	}
	var out []Secret
	for _, s := range []Secret{m.Platform.WebhookSecret, m.Platform.PreviousWebhookSecret} {
		if s.Reveal() != "" {
			out = append(out, s)
		}
	}
	return out
}

// ValidHMACBase64 reports whether signature is base64(HMAC-SHA256(key, body)) for one of keys (the
// scheme of WooCommerce and Shopify). The comparison is constant-time over the decoded MACs; every key is
// tried, so the time does not reveal which one matched.
func ValidHMACBase64(body []byte, signature string, keys ...[]byte) bool {
	got, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	ok := false
	for _, k := range keys {
		mac := hmac.New(sha256.New, k)
		mac.Write(body)
		if hmac.Equal(mac.Sum(nil), got) {
			ok = true
		}
	}
	return ok
}
