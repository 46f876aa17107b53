// Package provider owns kasse's outbound HTTP to the payment provider (Vipps MobilePay): it sends the
// requests plugins build, adding every credential header, and it fetches and caches access tokens.
//
// Plugins never see credentials and never do I/O: a plugin returns an abi.Request (method, path, JSON body,
// the name of its idempotency header, and pointers at which host-only values go), and Client.Do checks it,
// fills it in and sends it to the merchant's configured base URL, and nowhere else. A path that would
// leave the base URL, a method other than GET, POST, PUT or DELETE, an idempotency header the provider
// does not use, or a body that is not a JSON object is refused before anything is sent.
//
// Client does not retry, except once after a 401 with a fresh access token; the caller decides whether
// to send a request again. It does not log, and its errors never contain a secret or a token.
package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
	"golang.org/x/sync/singleflight"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/internal/httpclient"
	"github.com/kassehq/kasse/host/internal/jsonvalue"
	"github.com/kassehq/kasse/plugin/abi"
)

// MaxResponseBytes is the largest response body Client reads (1 MiB); a larger one is an error.
const MaxResponseBytes = 1 << 20

// maxSystemHeader is the longest value of a Vipps-System-* header (the access token spec's maxLength).
const maxSystemHeader = 30

// tokenFetchTimeout bounds one access token request, which callers share and none of them can cancel.
const tokenFetchTimeout = 30 * time.Second

// Header names the client sets. A plugin cannot set any header; it can only name its idempotency header,
// which must be one of idempotencyHeaders.
const (
	headerSubscriptionKey = "Ocp-Apim-Subscription-Key"
	headerMSN             = "Merchant-Serial-Number"
	headerSystemName      = "Vipps-System-Name"
	headerSystemVersion   = "Vipps-System-Version"
	headerPluginName      = "Vipps-System-Plugin-Name"
	headerPluginVersion   = "Vipps-System-Plugin-Version"
)

// idempotencyLimit returns the longest key the provider accepts in the idempotency header name (in
// canonical form), and false for a header the provider does not use for idempotency: eCom's X-Request-Id
// takes 40 characters, ePayment's Idempotency-Key 50.
func idempotencyLimit(name string) (int, bool) {
	switch name {
	case "X-Request-Id":
		return 40, true
	case "Idempotency-Key":
		return 50, true
	}
	return 0, false
}

// SystemInfo identifies kasse to the provider in the Vipps-System-Name and Vipps-System-Version headers.
// New truncates each to 30 characters.
type SystemInfo struct {
	Name, Version string
}

// Endpoint is where and as whom a call is sent: one merchant's API settings and credentials.
type Endpoint struct {
	// MerchantID is kasse's id of the merchant; it appears in errors.
	MerchantID string
	// BaseURL is the provider's API base URL, e.g. https://api.vipps.no. Request paths are appended
	// to it; a request may not leave it.
	BaseURL string
	// MerchantSerialNumber is sent as Merchant-Serial-Number.
	MerchantSerialNumber string
	// ClientID and ClientSecret fetch access tokens.
	ClientID     string
	ClientSecret config.Secret
	// SubscriptionKey is sent as Ocp-Apim-Subscription-Key.
	SubscriptionKey config.Secret
}

// Call is one request to send.
type Call struct {
	// Endpoint is the merchant the request is sent for.
	Endpoint Endpoint
	// Request is the request a plugin built.
	Request *abi.Request
	// IdempotencyKey is sent in the header Request.IdempotencyHeader names. Required when it names one.
	IdempotencyKey string
	// Inject holds the host values Request.Inject may ask for, by name (abi.InjectCallbackToken, ...).
	Inject map[string]string
	// PluginName and PluginVersion are sent as Vipps-System-Plugin-Name and -Version.
	PluginName, PluginVersion string
}

// Client sends plugin-built requests to the provider. It is safe for concurrent use, and it keeps one
// access token per (base URL, client id, MSN), shared by all callers, until shortly before it expires.
type Client struct {
	http  *http.Client
	sys   SystemInfo
	now   func() time.Time
	group singleflight.Group

	mu     sync.Mutex
	tokens map[string]token
}

// token is a cached access token.
type token struct {
	value string
	// refreshAt is when the token is no longer handed out: its expiry minus a safety margin.
	refreshAt time.Time
}

// New returns a Client that sends requests with httpClient, identifies itself with sys, and reads the time
// from now (nil means time.Now). nil httpClient means kasse's outbound client (host/internal/httpclient):
// a timeout, no redirects followed, answers capped, TLS 1.2 or newer. A client given here should have the
// same properties: the Vipps guide asks for at least 1 s to connect and 5 s to read, and a followed
// redirect would re-send client_secret and Ocp-Apim-Subscription-Key to the host it names.
func New(httpClient *http.Client, sys SystemInfo, now func() time.Time) *Client {
	if httpClient == nil {
		httpClient = httpclient.New(httpclient.Options{})
	}
	if now == nil {
		now = time.Now
	}
	return &Client{
		http:   httpClient,
		sys:    SystemInfo{Name: headerValue(sys.Name), Version: headerValue(sys.Version)},
		now:    now,
		tokens: map[string]token{},
	}
}

// RequestError is a plugin-built request the client refuses to send. Sending it again cannot succeed:
// the plugin or the call is wrong.
type RequestError struct {
	// Merchant is the merchant the request was for.
	Merchant string
	// Reason says what is wrong with the request.
	Reason string
}

func (e *RequestError) Error() string {
	if e.Merchant == "" {
		return "provider: " + e.Reason
	}
	return fmt.Sprintf("provider: merchant[%s]: %s", e.Merchant, e.Reason)
}

// TokenError is a failed access token request. Status is the provider's HTTP status, or 0 if no answer
// came (then Err is the transport error). Detail is the provider's answer, cut short, with the client
// secret and subscription key removed.
type TokenError struct {
	Merchant string
	Status   int
	Detail   string
	Err      error
}

// Error does not repeat the merchant: Do wraps it as "provider: merchant[id] METHOD path: access token: ...".
func (e *TokenError) Error() string {
	switch {
	case e.Err != nil:
		return fmt.Sprintf("access token: %v", e.Err)
	case e.Detail != "":
		return fmt.Sprintf("access token: status %d: %s", e.Status, e.Detail)
	default:
		return fmt.Sprintf("access token: status %d", e.Status)
	}
}

func (e *TokenError) Unwrap() error { return e.Err }

// Do checks call.Request, fills in the injected values and credential headers, sends it to the merchant's
// base URL and returns the provider's answer, whatever its status.
//
// The answer's body is passed on as it came when it is JSON; any other body (an HTML error page from
// the API gateway, say) is passed on as a JSON string, so the plugin still sees it.
//
// # Errors
//
// A request the client refuses is a *RequestError, before anything is sent. A failed access token
// request is a *TokenError; a transport error, a timeout or a response body over MaxResponseBytes is
// wrapped with the merchant, method and path: "provider: merchant[demo] POST /ecomm/v2/payments: ...".
// After a 401 the client fetches a new token and sends the request once more; the second answer is
// returned as it is.
func (c *Client) Do(ctx context.Context, call Call) (*abi.Response, error) {
	ep := call.Endpoint
	target, body, err := c.prepare(call)
	if err != nil {
		return nil, err
	}
	req := call.Request
	wrap := func(err error) error {
		return fmt.Errorf("provider: merchant[%s] %s %s: %w", ep.MerchantID, req.Method, req.Path, err)
	}

	tok, err := c.token(ctx, ep, call)
	if err != nil {
		return nil, wrap(err)
	}
	resp, err := c.send(ctx, call, target, body, tok)
	if err != nil {
		return nil, wrap(err)
	}
	if resp.Status == http.StatusUnauthorized {
		c.drop(ep, tok)
		if tok, err = c.token(ctx, ep, call); err != nil {
			return nil, wrap(err)
		}
		if resp, err = c.send(ctx, call, target, body, tok); err != nil {
			return nil, wrap(err)
		}
	}
	return resp, nil
}

// prepare checks the call and returns the URL to send to and the body to send (nil for none).
func (c *Client) prepare(call Call) (string, []byte, error) {
	ep := call.Endpoint
	refuse := func(format string, args ...any) error {
		return &RequestError{Merchant: ep.MerchantID, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case call.Request == nil:
		return "", nil, refuse("no request")
	case ep.BaseURL == "":
		return "", nil, refuse("no base URL")
	case ep.ClientID == "" || ep.ClientSecret.Reveal() == "" || ep.SubscriptionKey.Reveal() == "":
		return "", nil, refuse("credentials incomplete: client id, client secret and subscription key are required")
	}
	req := call.Request
	switch req.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete:
	default:
		return "", nil, refuse("method %q is not allowed (want GET, POST, PUT or DELETE)", req.Method)
	}
	target, rerr := resolve(ep.BaseURL, req.Path)
	if rerr != nil {
		rerr.Merchant = ep.MerchantID
		return "", nil, rerr
	}

	body, err := buildBody(req, call.Inject)
	if err != nil {
		return "", nil, refuse("%s %s: %v", req.Method, req.Path, err)
	}
	if body != nil && req.Method == http.MethodGet {
		return "", nil, refuse("GET %s: a GET request has no body", req.Path)
	}

	if req.IdempotencyHeader != "" {
		name := textproto.CanonicalMIMEHeaderKey(req.IdempotencyHeader)
		limit, ok := idempotencyLimit(name)
		switch {
		case !ok:
			return "", nil, refuse("idempotency header %q is not one the provider uses (X-Request-Id, Idempotency-Key)", req.IdempotencyHeader)
		case call.IdempotencyKey == "":
			return "", nil, refuse("%s %s: idempotency header %s needs a key", req.Method, req.Path, name)
		case len(call.IdempotencyKey) > limit:
			return "", nil, refuse("%s %s: %s is %d characters, more than %d", req.Method, req.Path, name, len(call.IdempotencyKey), limit)
		case strings.ContainsFunc(call.IdempotencyKey, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
			return "", nil, refuse("%s %s: %s must be printable ASCII without spaces", req.Method, req.Path, name)
		}
	}
	return target, body, nil
}

// resolve appends path to base and checks that the result is still under base: same scheme, same host,
// base's path as a prefix, no user info, no fragment. It fails closed. Credentials travel in plain http
// only to a loopback host (a local simulator).
func resolve(base, path string) (string, *RequestError) {
	escapes := &RequestError{Reason: fmt.Sprintf("request path %q leaves the merchant's base URL", path)}
	b, err := url.Parse(base)
	if err != nil || (b.Scheme != "https" && b.Scheme != "http") || b.Host == "" || b.User != nil ||
		b.RawQuery != "" || b.Fragment != "" {
		// The URL is not shown: it may carry a password.
		return "", &RequestError{Reason: "base URL is not an absolute http(s) URL without user info, query or fragment"}
	}
	if b.Scheme == "http" && !config.IsLoopback(b.Hostname()) {
		return "", &RequestError{Reason: fmt.Sprintf("base URL %q must be https (plain http only to loopback hosts)", base)}
	}
	if !strings.HasPrefix(path, "/") || !pathIsClean(path) || strings.ContainsAny(path, "# ") {
		return "", escapes
	}
	// A server may decode the path before it routes it: the decoded path must be clean too. The query is
	// not routed: a Report API cursor (base64) may decode to "//" there.
	p, query, _ := strings.Cut(path, "?")
	if decoded, err := url.PathUnescape(p); err != nil || !pathIsClean(decoded) {
		return "", escapes
	}
	if decoded, err := url.QueryUnescape(query); err != nil || strings.Contains(decoded, "..") || strings.ContainsAny(decoded, "\\") ||
		strings.ContainsFunc(decoded, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", escapes
	}
	basePath := strings.TrimRight(b.Path, "/")
	target := b.Scheme + "://" + b.Host + basePath + path
	u, err := url.Parse(target)
	if err != nil || u.Scheme != b.Scheme || u.Host != b.Host || u.User != nil || u.Fragment != "" ||
		u.Opaque != "" || !strings.HasPrefix(u.Path, basePath+"/") {
		return "", escapes
	}
	return target, nil
}

// pathIsClean reports whether p has no "//", no "..", no backslash and no control character.
func pathIsClean(p string) bool {
	return !strings.Contains(p, "//") && !strings.Contains(p, "..") && !strings.Contains(p, "\\") &&
		!strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// buildBody checks the request body (none, or a JSON object) and writes the injected values into it.
func buildBody(req *abi.Request, values map[string]string) ([]byte, error) {
	raw := bytes.TrimSpace(req.Body)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		if len(req.Inject) > 0 {
			return nil, errors.New("inject needs a request body")
		}
		return nil, nil
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return nil, errors.New("request body is not a JSON object")
	}
	if len(req.Inject) == 0 {
		return raw, nil
	}
	return injectWith(raw, req.Inject, values, codec{decode: decodeBody, encode: encodeBody})
}

// codec is how injectWith decodes and encodes a body (the tests hold decodeBody and encodeBody to
// encoding/json).
type codec struct {
	decode func(raw []byte) (any, bool, error)
	encode func(doc any, fast bool) ([]byte, error)
}

// injectWith writes the injected values into raw (one JSON object) and encodes the result as
// encoding/json encodes a map: members sorted, no white space, numbers as written, no HTML escaping.
func injectWith(raw []byte, inject []abi.Injection, values map[string]string, c codec) ([]byte, error) {
	doc, fast, err := c.decode(raw)
	if err != nil {
		return nil, fmt.Errorf("request body: %w", err)
	}
	for _, in := range inject {
		v, ok := values[in.Value]
		if !ok || v == "" {
			return nil, fmt.Errorf("inject %s: host value %q is not available", in.Pointer, in.Value)
		}
		if err := setPointer(doc, in.Pointer, v); err != nil {
			return nil, fmt.Errorf("inject %s: %w", in.Pointer, err)
		}
		fast = fast && utf8.ValidString(v)
	}
	return c.encode(doc, fast)
}

// decodeBody decodes raw (valid JSON) as encoding/json's Decoder with UseNumber does, amounts exact (see
// jsonvalue.Decode); fast says goccy/go-json decoded it, so that encodeBody may encode with it too.
func decodeBody(raw []byte) (any, bool, error) { return jsonvalue.Decode(raw) }

// encodeBody encodes doc as encoding/json's Encoder without HTML escaping does, without the newline.
// goccy/go-json's Marshal writes the same bytes (members sorted, U+2028 and U+2029 escaped) for a tree whose
// strings are all valid UTF-8 (fast); any other tree takes encoding/json.
func encodeBody(doc any, fast bool) ([]byte, error) {
	if fast {
		b, err := gojson.MarshalWithOption(doc, gojson.DisableHTMLEscape())
		if err != nil {
			return nil, fmt.Errorf("request body: %w", err)
		}
		return b, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("request body: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// setPointer sets the value at the RFC 6901 pointer ptr in doc to v. Every container on the way must
// exist; the last token may name a new member of an object, or an existing element of an array.
func setPointer(doc any, ptr, v string) error {
	if ptr == "" || ptr[0] != '/' {
		return errors.New("pointer must start with \"/\" (the body itself cannot be replaced)")
	}
	tokens := strings.Split(ptr[1:], "/")
	for i, t := range tokens {
		tokens[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	cur := doc
	for i, t := range tokens {
		last := i == len(tokens)-1
		switch node := cur.(type) {
		case map[string]any:
			if last {
				node[t] = v
				return nil
			}
			next, ok := node[t]
			if !ok {
				return fmt.Errorf("no member %q", t)
			}
			cur = next
		case []any:
			n, ok := arrayIndex(t, len(node))
			if !ok {
				return fmt.Errorf("no element %q", t)
			}
			if last {
				node[n] = v
				return nil
			}
			cur = node[n]
		default:
			return fmt.Errorf("%q is inside a value that is not an object or array", t)
		}
	}
	return nil
}

// arrayIndex parses an RFC 6901 array index (no leading zeros) below n.
func arrayIndex(t string, n int) (int, bool) {
	if t == "" || len(t) > 9 || (len(t) > 1 && t[0] == '0') {
		return 0, false
	}
	i := 0
	for _, r := range t {
		if r < '0' || r > '9' {
			return 0, false
		}
		i = i*10 + int(r-'0')
	}
	return i, i < n
}

// send sends one attempt and reads the answer.
func (c *Client) send(ctx context.Context, call Call, target string, body []byte, tok string) (*abi.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, call.Request.Method, target, rd)
	if err != nil {
		return nil, err
	}
	ep := call.Endpoint
	h := req.Header
	h.Set("Authorization", "Bearer "+tok)
	h.Set(headerSubscriptionKey, ep.SubscriptionKey.Reveal())
	c.systemHeaders(h, ep, call)
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	if name := call.Request.IdempotencyHeader; name != "" {
		h.Set(name, call.IdempotencyKey)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := readLimited(res)
	if err != nil {
		return nil, fmt.Errorf("status %d: %w", res.StatusCode, err)
	}
	out := &abi.Response{Status: res.StatusCode}
	switch trimmed := bytes.TrimSpace(raw); {
	case len(trimmed) == 0:
	case json.Valid(trimmed):
		out.Body = trimmed
	default:
		out.Body, _ = json.Marshal(string(raw)) // a string always marshals
	}
	return out, nil
}

// systemHeaders sets Merchant-Serial-Number, the Vipps-System-* headers and User-Agent.
func (c *Client) systemHeaders(h http.Header, ep Endpoint, call Call) {
	if ep.MerchantSerialNumber != "" {
		h.Set(headerMSN, ep.MerchantSerialNumber)
	}
	if c.sys.Name != "" {
		h.Set(headerSystemName, c.sys.Name)
		h.Set("User-Agent", c.sys.Name+"/"+c.sys.Version)
	}
	if c.sys.Version != "" {
		h.Set(headerSystemVersion, c.sys.Version)
	}
	if v := headerValue(call.PluginName); v != "" {
		h.Set(headerPluginName, v)
	}
	if v := headerValue(call.PluginVersion); v != "" {
		h.Set(headerPluginVersion, v)
	}
}

// readLimited reads a response body of at most MaxResponseBytes.
func readLimited(res *http.Response) ([]byte, error) {
	if res.ContentLength > MaxResponseBytes {
		return nil, fmt.Errorf("response body of %d bytes is over the %d byte limit", res.ContentLength, MaxResponseBytes)
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read response body: %w", err)
	}
	if len(raw) > MaxResponseBytes {
		return nil, fmt.Errorf("response body is over the %d byte limit", MaxResponseBytes)
	}
	return raw, nil
}

// headerValue makes s a Vipps-System-* header value: printable ASCII, at most 30 characters.
func headerValue(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() == maxSystemHeader {
			break
		}
		if r >= ' ' && r < 0x7f {
			b.WriteRune(r)
		}
	}
	return b.String()
}
