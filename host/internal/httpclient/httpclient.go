// Package httpclient owns the construction of kasse's outbound HTTP clients: to the payment provider (Vipps
// API and Webhooks API registration) and to the shops' platforms (status updates). Every client it makes
// never follows a redirect (Go would re-send the request, with its credentials, to whatever host the
// redirect names), always has a timeout, caps the size of an answer, and speaks TLS 1.2 or newer; plain
// http goes to loopback hosts only.
package httpclient

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Defaults of Options.
const (
	DefaultTimeout          = 15 * time.Second
	DefaultMaxResponseBytes = 4 << 20
)

// ErrResponseTooLarge is returned (wrapped) by reading an answer's body past Options.MaxResponseBytes.
var ErrResponseTooLarge = errors.New("httpclient: response body too large")

// ErrRedirect is returned (wrapped) for an answer that redirects: clients never follow one.
var ErrRedirect = errors.New("httpclient: redirect not followed")

// Options configure New. The zero value is the default.
type Options struct {
	// Timeout bounds a whole exchange, reading the body included. Default DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes is the largest answer body read. Default DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// Transport, if set, carries the requests instead of kasse's own transport (tests wrap it to look at
	// requests). The redirect, size and scheme rules apply around it.
	Transport http.RoundTripper
}

// New returns a client with the rules of the package. A redirect is answered with ErrRedirect, not followed.
func New(o Options) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	next := o.Transport
	if next == nil {
		next = Transport()
	}
	return &http.Client{
		Timeout:   o.Timeout,
		Transport: &guard{next: next, max: o.MaxResponseBytes},
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			return fmt.Errorf("%w: %s %s", ErrRedirect, req.Method, req.URL.Redacted())
		},
	}
}

// Transport is the transport New uses by default: connections with timeouts of their own, TLS 1.2 or
// newer, no proxy from the environment (a proxy would see every credential).
func Transport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: DefaultTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
	}
}

// guard refuses plain http to hosts other than loopback ones and caps answer bodies.
type guard struct {
	next http.RoundTripper
	max  int64
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.URL.Scheme {
	case "https":
	case "http":
		if !IsLoopback(req.URL.Hostname()) {
			return nil, fmt.Errorf("httpclient: plain http to %s refused: https is required except for loopback hosts", req.URL.Host)
		}
	default:
		return nil, fmt.Errorf("httpclient: scheme %q refused", req.URL.Scheme)
	}
	res, err := g.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if res.ContentLength > g.max {
		res.Body.Close()
		return nil, fmt.Errorf("%w: %d bytes announced, at most %d read", ErrResponseTooLarge, res.ContentLength, g.max)
	}
	res.Body = &capped{rc: res.Body, left: g.max}
	return res, nil
}

// CloseIdleConnections closes the idle connections of the transport underneath, if it keeps any.
func (g *guard) CloseIdleConnections() {
	if c, ok := g.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// capped fails the read that goes past the limit instead of truncating the body silently.
type capped struct {
	rc   io.ReadCloser
	left int64
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more tells a body of exactly the limit from a longer one.
		var b [1]byte
		n, err := c.rc.Read(b[:])
		if n > 0 {
			return 0, ErrResponseTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *capped) Close() error { return c.rc.Close() }

// IsLoopback reports whether host (without port or brackets) is "localhost" or a loopback IP address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
