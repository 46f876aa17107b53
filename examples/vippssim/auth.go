package vippssim

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// accessToken is an issued bearer token.
type accessToken struct {
	tenant  int
	expires time.Time
}

// tokenHeaderMSN is the access token spec's Merchant-Serial-Number pattern.
var tokenHeaderMSN = regexp.MustCompile(`^[0-9]{4,6}$`)

func secureEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// handleAccessToken serves POST /accesstoken/get: credentials in the
// client_id, client_secret and Ocp-Apim-Subscription-Key headers, no body.
func (s *Server) handleAccessToken(w http.ResponseWriter, r *http.Request) {
	clientID := r.Header.Get("client_id")
	secret := r.Header.Get("client_secret")
	subKey := r.Header.Get("Ocp-Apim-Subscription-Key")
	if subKey == "" {
		writeAPIError(w, newAzureError(http.StatusUnauthorized, "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."))
		return
	}
	if clientID == "" || secret == "" {
		writeAPIError(w, newAzureError(http.StatusUnauthorized, "client_id and client_secret headers are required"))
		return
	}
	idx, ok := s.byClient[clientID]
	if !ok {
		writeAPIError(w, newAzureError(http.StatusUnauthorized, "Invalid client_id or client_secret"))
		return
	}
	t := s.tenants[idx]
	if !secureEqual(subKey, t.SubscriptionKey) {
		writeAPIError(w, newAzureError(http.StatusUnauthorized, "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."))
		return
	}
	if !secureEqual(secret, t.ClientSecret) {
		writeAPIError(w, newAzureError(http.StatusUnauthorized, "Invalid client_id or client_secret"))
		return
	}
	if msn := r.Header.Get("Merchant-Serial-Number"); msn != "" {
		if !tokenHeaderMSN.MatchString(msn) {
			writeAPIError(w, newAzureError(http.StatusBadRequest, "Merchant-Serial-Number must be 4 to 6 digits"))
			return
		}
		if msn != t.MerchantSerialNumber {
			writeAPIError(w, newAzureError(http.StatusUnauthorized, "Merchant-Serial-Number does not belong to these credentials"))
			return
		}
	}

	var raw [32]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (Go 1.24+).
	// Hex keeps the token valid for the spec's `format: byte` (base64
	// alphabet, length a multiple of 4); real tokens are JWTs.
	token := hex.EncodeToString(raw[:])
	now := s.now()
	expires := now.Add(s.cfg.TokenTTL)

	s.mu.Lock()
	for k, v := range s.tokens { // keep the map bounded by live tokens
		if !now.Before(v.expires) {
			delete(s.tokens, k)
		}
	}
	s.tokens[token] = accessToken{tenant: idx, expires: expires}
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, map[string]string{
		"token_type":     "Bearer",
		"expires_in":     strconv.FormatInt(int64(s.cfg.TokenTTL/time.Second), 10),
		"ext_expires_in": "0",
		"expires_on":     strconv.FormatInt(expires.Unix(), 10),
		"not_before":     strconv.FormatInt(now.Unix(), 10),
		"resource":       "00000002-0000-0000-c000-000000000000",
		"access_token":   token,
	})
}

// authorize checks the headers every eCom call carries: the subscription key,
// the bearer token (issued to the tenant owning that key, not expired) and,
// when present, Merchant-Serial-Number. It writes the error itself.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (Tenant, bool) {
	subKey := r.Header.Get("Ocp-Apim-Subscription-Key")
	if subKey == "" {
		writeAPIError(w, newAzureError(http.StatusUnauthorized, "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."))
		return Tenant{}, false
	}
	known := false
	for _, t := range s.tenants {
		if secureEqual(subKey, t.SubscriptionKey) {
			known = true
		}
	}
	if !known {
		writeAPIError(w, newAzureError(http.StatusUnauthorized, "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."))
		return Tenant{}, false
	}
	authz := r.Header.Get("Authorization")
	scheme, token, found := strings.Cut(authz, " ")
	if authz == "" {
		writeAPIError(w, newAzureError(http.StatusUnauthorized, "Authorization header missing: send Authorization: Bearer <access token>"))
		return Tenant{}, false
	}
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		writeAPIError(w, newAzureError(http.StatusUnauthorized, "Authorization header must be: Bearer <access token>"))
		return Tenant{}, false
	}
	token = strings.TrimSpace(token)

	s.mu.Lock()
	at, ok := s.tokens[token]
	s.mu.Unlock()
	if !ok {
		writeAPIError(w, newAzureError(http.StatusUnauthorized, "Invalid access token"))
		return Tenant{}, false
	}
	if !s.now().Before(at.expires) {
		writeAPIError(w, newAzureError(http.StatusUnauthorized, "Access token has expired"))
		return Tenant{}, false
	}
	t := s.tenants[at.tenant]
	if !secureEqual(subKey, t.SubscriptionKey) {
		writeAPIError(w, newAzureError(http.StatusUnauthorized, "Access token was not issued for this subscription key"))
		return Tenant{}, false
	}
	if msn := r.Header.Get("Merchant-Serial-Number"); msn != "" && msn != t.MerchantSerialNumber {
		writeAPIError(w, newVippsError(http.StatusForbidden, groupAuthentication, "merchantSerialNumber.forbidden",
			"Merchant-Serial-Number %q does not belong to these credentials", msn))
		return Tenant{}, false
	}
	return t, true
}
