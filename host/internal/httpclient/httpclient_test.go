package httpclient_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kassehq/kasse/host/internal/httpclient"
)

// recorder is a second loopback server that records the headers of every request it gets.
type recorder struct {
	srv     *httptest.Server
	mu      sync.Mutex
	headers []http.Header
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) seen() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.headers
}

// TestRedirectsNotFollowed: a configured host that redirects never gets the client to send its secret
// headers to the host the redirect names, whatever the redirect status.
func TestRedirectsNotFollowed(t *testing.T) {
	other := newRecorder(t)
	for _, status := range []int{301, 302, 303, 307, 308} {
		configured := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.srv.URL+r.URL.Path, status)
		}))
		c := httpclient.New(httpclient.Options{})
		req, _ := http.NewRequest("POST", configured.URL+"/accesstoken/get", strings.NewReader(`{}`))
		req.Header.Set("client_secret", "s3cret")
		req.Header.Set("Ocp-Apim-Subscription-Key", "k3y")
		req.Header.Set("Authorization", "Bearer t0ken")
		res, err := c.Do(req)
		if err == nil {
			res.Body.Close()
		}
		if !errors.Is(err, httpclient.ErrRedirect) {
			t.Errorf("%d: got %v, want ErrRedirect", status, err)
		}
		configured.Close()
	}
	if h := other.seen(); len(h) != 0 {
		t.Fatalf("the redirect target got %d requests: %v", len(h), h)
	}
}

func TestResponseSizeCapped(t *testing.T) {
	big := strings.Repeat("x", 2000)
	cases := []struct {
		name    string
		chunked bool
		max     int64
		wantErr bool
	}{
		{"announced, within", false, 2000, false},
		{"announced, over", false, 1999, true},
		{"chunked, within", true, 2000, false},
		{"chunked, over", true, 1999, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.chunked {
					_, _ = io.WriteString(w, big[:1000])
					w.(http.Flusher).Flush()
					_, _ = io.WriteString(w, big[1000:])
					return
				}
				_, _ = io.WriteString(w, big)
			}))
			defer srv.Close()
			res, err := httpclient.New(httpclient.Options{MaxResponseBytes: tc.max}).Get(srv.URL)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(res.Body)
				res.Body.Close()
			}
			if tc.wantErr != errors.Is(err, httpclient.ErrResponseTooLarge) || (!tc.wantErr && len(body) != 2000) {
				t.Fatalf("got %d bytes, %v; want error %v", len(body), err, tc.wantErr)
			}
		})
	}
}

func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	c := httpclient.New(httpclient.Options{})
	for _, u := range []string{"http://shop.example.invalid/x", "http://10.0.0.1/x", "ftp://127.0.0.1/x"} {
		if res, err := c.Get(u); err == nil || !strings.Contains(err.Error(), "refused") {
			if res != nil {
				res.Body.Close()
			}
			t.Errorf("%s: got %v, want a refusal", u, err)
		}
	}
}

func TestOldTLSRefused(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{MaxVersion: tls.VersionTLS11}
	srv.StartTLS()
	defer srv.Close()
	tr := httpclient.Transport()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tr.TLSClientConfig.RootCAs = pool
	res, err := httpclient.New(httpclient.Options{Transport: tr}).Get(srv.URL)
	if err == nil {
		res.Body.Close()
		t.Fatal("a TLS 1.1 server was accepted")
	}

	ok := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer ok.Close()
	tr = httpclient.Transport()
	pool = x509.NewCertPool()
	pool.AddCert(ok.Certificate())
	tr.TLSClientConfig.RootCAs = pool
	res, err = httpclient.New(httpclient.Options{Transport: tr}).Get(ok.URL)
	if err != nil {
		t.Fatalf("a TLS 1.3 server was refused: %v", err)
	}
	res.Body.Close()
}
