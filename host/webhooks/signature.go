// Package webhooks owns kasse's side of the Vipps Webhooks API, which the ePayment API uses instead of
// eCom's callbackPrefix: it checks the signature of every delivery (Verify), and it registers kasse's
// webhook URL for each ePayment merchant, removes stale registrations and keeps each registration's secret
// (Manager). It does not read events or change sessions: host/checkout does that with what Verify accepted.
//
// # Signature
//
// Vipps signs each delivery as Azure does (vipps-reference.md §6.3): x-ms-content-sha256 is the base64
// SHA-256 of the raw body, and Authorization is
//
//	HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<base64 HMAC-SHA256>
//
// over "POST\n" + pathAndQuery + "\n" + x-ms-date + ";" + host + ";" + contentHash, keyed with the UTF-8
// bytes of the registration's secret as given (not base64-decoded). Verify recomputes both with the raw
// body, compares in constant time, and refuses an x-ms-date further than a bounded skew from now, so that
// a recorded delivery cannot be replayed later. (Within the window a replay is harmless: applying an event
// twice changes nothing.)
package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// DefaultMaxSkew is how far x-ms-date may be from kasse's clock, either way, by default.
const DefaultMaxSkew = 5 * time.Minute

// Header names of a signed delivery.
const (
	HeaderDate          = "x-ms-date"
	HeaderContentSHA256 = "x-ms-content-sha256"
	HeaderAuthorization = "Authorization"
)

// signedHeaders is the SignedHeaders value Vipps sends, in its order.
const signedHeaders = "x-ms-date;host;x-ms-content-sha256"

// Request is one webhook delivery as kasse received it: what the signature covers.
type Request struct {
	// Method is the HTTP method; Vipps signs "POST".
	Method string
	// PathAndQuery is the request target as sent: path and, if any, "?" and the raw query.
	PathAndQuery string
	// Host is the Host header (the registered URL's authority, host[:port]).
	Host string
	// Date, ContentSHA256 and Authorization are the x-ms-date, x-ms-content-sha256 and Authorization
	// headers.
	Date, ContentSHA256, Authorization string
	// Body is the raw body, exactly as received.
	Body []byte
}

// RequestFrom collects what Verify needs from r, whose body has already been read into body.
func RequestFrom(r *http.Request, body []byte) Request {
	return Request{
		Method: r.Method, PathAndQuery: r.URL.RequestURI(), Host: r.Host,
		Date: r.Header.Get(HeaderDate), ContentSHA256: r.Header.Get(HeaderContentSHA256),
		Authorization: r.Header.Get(HeaderAuthorization), Body: body,
	}
}

// ErrUnverified is wrapped by every error Verify returns: the delivery is not proven to come from Vipps.
var ErrUnverified = errors.New("webhook delivery not verified")

// VerifyError says why a delivery failed verification. It wraps ErrUnverified.
type VerifyError struct {
	// Reason is a short, secret-free phrase: "body does not match x-ms-content-sha256", ...
	Reason string
}

func (e *VerifyError) Error() string { return "webhooks: " + e.Reason }

// Unwrap returns ErrUnverified.
func (e *VerifyError) Unwrap() error { return ErrUnverified }

func unverified(format string, args ...any) error {
	return &VerifyError{Reason: fmt.Sprintf(format, args...)}
}

// ContentHash returns base64(SHA-256(body)), the x-ms-content-sha256 value.
func ContentHash(body []byte) string {
	sum := sha256.Sum256(body)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Signature returns the base64 HMAC-SHA256, keyed with secret, of the string Vipps signs.
func Signature(secret, method, pathAndQuery, date, host, contentHash string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(method + "\n" + pathAndQuery + "\n" + date + ";" + host + ";" + contentHash))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Authorization returns the Authorization header value for a signature.
func Authorization(signature string) string {
	return "HMAC-SHA256 SignedHeaders=" + signedHeaders + "&Signature=" + signature
}

// Sign fills in req's Date (from now), ContentSHA256 and Authorization as Vipps would with secret. It is
// for tests and simulators; kasse itself only verifies.
func Sign(secret string, req *Request, now time.Time) {
	req.Date = now.UTC().Format(http.TimeFormat)
	req.ContentSHA256 = ContentHash(req.Body)
	req.Authorization = Authorization(Signature(secret, req.Method, req.PathAndQuery, req.Date, req.Host, req.ContentSHA256))
}

// Verify checks req against secret at time now: the body hash, the date within maxSkew of now (0 means
// DefaultMaxSkew), and the HMAC signature, the last two compared in constant time. It returns nil or a
// *VerifyError.
func Verify(secret string, req Request, now time.Time, maxSkew time.Duration) error {
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	if secret == "" {
		return unverified("no webhook secret is known for this merchant")
	}
	if req.Method != http.MethodPost {
		return unverified("method %s is not POST", req.Method)
	}
	if req.Date == "" || req.ContentSHA256 == "" || req.Authorization == "" {
		return unverified("x-ms-date, x-ms-content-sha256 and Authorization are required")
	}
	if subtle.ConstantTimeCompare([]byte(ContentHash(req.Body)), []byte(req.ContentSHA256)) != 1 {
		return unverified("body does not match x-ms-content-sha256")
	}
	at, err := http.ParseTime(req.Date)
	if err != nil {
		return unverified("x-ms-date is not an HTTP date")
	}
	if d := now.Sub(at); d > maxSkew || d < -maxSkew {
		return unverified("x-ms-date is %s away from now, more than the allowed %s", d.Round(time.Second), maxSkew)
	}
	scheme, params, ok := strings.Cut(req.Authorization, " ")
	if !ok || scheme != "HMAC-SHA256" {
		return unverified("Authorization is not HMAC-SHA256")
	}
	var headers, sig string
	for _, kv := range strings.Split(params, "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "SignedHeaders":
			headers = v
		case "Signature":
			sig = v
		}
	}
	if headers != signedHeaders {
		return unverified("Authorization signs %q, want %q", headers, signedHeaders)
	}
	want := Signature(secret, req.Method, req.PathAndQuery, req.Date, req.Host, req.ContentSHA256)
	if subtle.ConstantTimeCompare([]byte(want), []byte(sig)) != 1 {
		return unverified("signature does not match")
	}
	return nil
}
