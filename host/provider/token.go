package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Access token lifetimes: the cache hands a token out until its expiry minus a margin of 10% of its
// lifetime, at most maxTokenMargin; a lifetime the provider states is believed up to maxTokenLifetime.
const (
	maxTokenMargin   = 5 * time.Minute
	maxTokenLifetime = 24 * time.Hour
	maxTokenBody     = 64 << 10
	maxErrorDetail   = 200
)

// tokenKey identifies the access tokens that can be shared: one client, one sales unit, one API.
func tokenKey(ep Endpoint) string {
	return ep.BaseURL + "\x00" + ep.ClientID + "\x00" + ep.MerchantSerialNumber
}

// token returns a valid access token for ep: the cached one, or a fresh one. Concurrent callers that
// find no valid token share one fetch. The fetch is not cancelled when the caller that started it gives
// up, since the others still wait for it; it has its own timeout.
func (c *Client) token(ctx context.Context, ep Endpoint, call Call) (string, error) {
	key := tokenKey(ep)
	if v, ok := c.cached(key); ok {
		return v, nil
	}
	ch := c.group.DoChan(key, func() (any, error) {
		// A fetch that finished between the look-up above and this call has already stored a token.
		if v, ok := c.cached(key); ok {
			return v, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenFetchTimeout)
		defer cancel()
		return c.fetch(fctx, ep, call)
	})
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	}
}

func (c *Client) cached(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tokens[key]
	if !ok || !c.now().Before(t.refreshAt) {
		return "", false
	}
	return t.value, true
}

// drop forgets the token tok for ep, unless another caller has already replaced it.
func (c *Client) drop(ep Endpoint, tok string) {
	key := tokenKey(ep)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens[key].value == tok {
		delete(c.tokens, key)
	}
}

// tokenResponse is the answer of POST /accesstoken/get. The spec types every field as a string and its
// example quotes the numbers; other examples send numbers. Both are accepted.
type tokenResponse struct {
	TokenType   string  `json:"token_type"`
	AccessToken string  `json:"access_token"`
	ExpiresIn   flexInt `json:"expires_in"`
	ExpiresOn   flexInt `json:"expires_on"`
}

// flexInt is a whole number sent as a JSON number or a string. Anything else reads as 0 (unknown).
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = flexInt(v)
		return nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) &&
		math.Abs(f) < math.MaxInt64/2 {
		*n = flexInt(f)
		return nil
	}
	*n = 0
	return nil
}

// fetch requests a new access token and caches it. The client secret and subscription key go only in
// the request's headers; neither they nor the token appear in an error.
func (c *Client) fetch(ctx context.Context, ep Endpoint, call Call) (string, error) {
	target := strings.TrimRight(ep.BaseURL, "/") + "/accesstoken/get"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return "", &TokenError{Merchant: ep.MerchantID, Err: err}
	}
	// client_id and client_secret are sent exactly as the spec spells them (Header.Set would send
	// Client_id; HTTP header names are case-insensitive, but not every gateway is).
	req.Header["client_id"] = []string{ep.ClientID}
	req.Header["client_secret"] = []string{ep.ClientSecret.Reveal()}
	req.Header.Set(headerSubscriptionKey, ep.SubscriptionKey.Reveal())
	c.systemHeaders(req.Header, ep, call)

	requested := c.now()
	res, err := c.http.Do(req)
	if err != nil {
		return "", &TokenError{Merchant: ep.MerchantID, Err: err}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxTokenBody+1))
	if err != nil {
		return "", &TokenError{Merchant: ep.MerchantID, Status: res.StatusCode, Err: err}
	}
	if res.StatusCode != http.StatusOK {
		return "", &TokenError{Merchant: ep.MerchantID, Status: res.StatusCode, Detail: errorDetail(raw, ep)}
	}
	// From here on the body holds a token: it is never quoted in an error.
	if len(raw) > maxTokenBody {
		return "", &TokenError{Merchant: ep.MerchantID, Status: res.StatusCode, Detail: "answer is over 64 KiB"}
	}
	var tr tokenResponse
	if err := json.Unmarshal(raw, &tr); err != nil {
		return "", &TokenError{Merchant: ep.MerchantID, Status: res.StatusCode, Detail: "answer is not a token response"}
	}
	tok := strings.TrimSpace(tr.AccessToken)
	if tok == "" || strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return "", &TokenError{Merchant: ep.MerchantID, Status: res.StatusCode, Detail: "answer has no usable access_token"}
	}
	if tt := strings.TrimSpace(tr.TokenType); tt != "" && !strings.EqualFold(tt, "Bearer") {
		return "", &TokenError{Merchant: ep.MerchantID, Status: res.StatusCode, Detail: "token_type is not Bearer"}
	}

	var life time.Duration
	switch {
	case tr.ExpiresIn > 0:
		life = time.Duration(min(int64(tr.ExpiresIn), int64(maxTokenLifetime/time.Second))) * time.Second
	case tr.ExpiresOn > 0:
		life = time.Unix(min(int64(tr.ExpiresOn), requested.Unix()+int64(maxTokenLifetime/time.Second)), 0).Sub(requested)
	}
	life = min(life, maxTokenLifetime)
	// A token without a stated lifetime is used by the callers waiting for it and not cached.
	if life > 0 {
		margin := min(maxTokenMargin, life/10)
		c.mu.Lock()
		c.tokens[tokenKey(ep)] = token{value: tok, refreshAt: requested.Add(life - margin)}
		c.mu.Unlock()
	}
	return tok, nil
}

// errorDetail makes a token endpoint's error answer fit for an error message: the client secret and
// subscription key removed wherever they appear, whitespace collapsed, cut to maxErrorDetail bytes.
func errorDetail(raw []byte, ep Endpoint) string {
	s := string(bytes.ToValidUTF8(raw, []byte("?")))
	for _, secret := range []string{ep.ClientSecret.Reveal(), ep.SubscriptionKey.Reveal()} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }), " ")
	if len(s) > maxErrorDetail {
		cut := maxErrorDetail
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
