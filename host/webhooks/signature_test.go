package webhooks_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kassehq/kasse/host/webhooks"
)

// The official test vector (vipps-reference.md §6.3, re-computed there with Python).
const (
	vectorSecret = "A0+AeKBRG2KRGvnNwJpQlb6IJFk48CKXCIcrLoHncVJKDILsQSxS6NWCccwWm6r6FhGKhiHTBsG2wo/xU6FY/A=="
	vectorURL    = "https://webhook.site/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63"
	vectorBody   = `{"some-unique-content":"ee6e441b-cc4a-46f8-895d-a5af79bcc233/hello-world"}`
	vectorDate   = "Thu, 30 Mar 2023 08:38:32 GMT"
	vectorHash   = "lNlsp1XA03N34HrQsVzPgJKtC+r7l/RBF4V3JQUWMj4="
	vectorAuth   = "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=agAiSyogQbDHpeucoNwYz+yAr5nJ+v+zasdkSbqzv+U="
)

var vectorTime = time.Date(2023, 3, 30, 8, 38, 40, 0, time.UTC)

// vectorRequest is the test vector's delivery as an http.Request reaching kasse.
func vectorRequest() webhooks.Request {
	r := httptest.NewRequest(http.MethodPost, vectorURL, strings.NewReader(vectorBody))
	r.Header.Set("x-ms-date", vectorDate)
	r.Header.Set("x-ms-content-sha256", vectorHash)
	r.Header.Set("Authorization", vectorAuth)
	return webhooks.RequestFrom(r, []byte(vectorBody))
}

func TestVectorParts(t *testing.T) {
	if got := webhooks.ContentHash([]byte(vectorBody)); got != vectorHash {
		t.Errorf("content hash %s, want %s", got, vectorHash)
	}
	req := vectorRequest()
	if req.Host != "webhook.site" || req.PathAndQuery != "/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63" {
		t.Fatalf("host %q path %q", req.Host, req.PathAndQuery)
	}
	sig := webhooks.Signature(vectorSecret, "POST", req.PathAndQuery, vectorDate, req.Host, vectorHash)
	if got := webhooks.Authorization(sig); got != vectorAuth {
		t.Errorf("authorization\n got %s\nwant %s", got, vectorAuth)
	}
}

func TestVerify(t *testing.T) {
	otherSecret := strings.Replace(vectorSecret, "A0", "B0", 1)
	tests := []struct {
		name   string
		secret string
		edit   func(r *webhooks.Request)
		now    time.Time
		reason string // "" means verified
	}{
		{name: "test vector", secret: vectorSecret},
		{name: "tampered body", secret: vectorSecret, edit: func(r *webhooks.Request) {
			r.Body = []byte(strings.Replace(vectorBody, "hello", "hellO", 1))
		}, reason: "body does not match x-ms-content-sha256"},
		{name: "tampered body with its own hash", secret: vectorSecret, edit: func(r *webhooks.Request) {
			r.Body = []byte(strings.Replace(vectorBody, "hello", "hellO", 1))
			r.ContentSHA256 = webhooks.ContentHash(r.Body)
		}, reason: "signature does not match"},
		{name: "wrong secret", secret: otherSecret, reason: "signature does not match"},
		{name: "secret base64-decoded is not the key", secret: "QTArQWVLQlJHMktSR3ZuTndKcFFsYjZJSkZrNDhDS1hDSWNyTG9IbmNWSktETElMc1FTeFM2TldDY2N3V202cjZGaEdLaGlIVEJzRzJ3by94VTZGWS9BPT0=", reason: "signature does not match"},
		{name: "no secret", secret: "", reason: "no webhook secret is known for this merchant"},
		{name: "other path", secret: vectorSecret, edit: func(r *webhooks.Request) { r.PathAndQuery += "?x=1" }, reason: "signature does not match"},
		{name: "other host", secret: vectorSecret, edit: func(r *webhooks.Request) { r.Host = "webhook.site:443" }, reason: "signature does not match"},
		{name: "date changed", secret: vectorSecret, edit: func(r *webhooks.Request) { r.Date = "Thu, 30 Mar 2023 08:38:33 GMT" }, reason: "signature does not match"},
		{name: "stale replay", secret: vectorSecret, now: vectorTime.Add(6 * time.Minute), reason: "x-ms-date is 6m8s away from now, more than the allowed 5m0s"},
		{name: "from the future", secret: vectorSecret, now: vectorTime.Add(-6 * time.Minute), reason: "x-ms-date is -5m52s away from now, more than the allowed 5m0s"},
		{name: "date not HTTP", secret: vectorSecret, edit: func(r *webhooks.Request) { r.Date = "2023-03-30T08:38:32Z" }, reason: "x-ms-date is not an HTTP date"},
		{name: "no date", secret: vectorSecret, edit: func(r *webhooks.Request) { r.Date = "" }, reason: "x-ms-date, x-ms-content-sha256 and Authorization are required"},
		{name: "bearer", secret: vectorSecret, edit: func(r *webhooks.Request) { r.Authorization = "Bearer x" }, reason: "Authorization is not HMAC-SHA256"},
		{name: "other signed headers", secret: vectorSecret, edit: func(r *webhooks.Request) {
			r.Authorization = strings.Replace(r.Authorization, "x-ms-date;host;", "host;x-ms-date;", 1)
		}, reason: `Authorization signs "host;x-ms-date;x-ms-content-sha256", want "x-ms-date;host;x-ms-content-sha256"`},
		{name: "GET", secret: vectorSecret, edit: func(r *webhooks.Request) { r.Method = "GET" }, reason: "method GET is not POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := vectorRequest()
			if tt.edit != nil {
				tt.edit(&req)
			}
			now := tt.now
			if now.IsZero() {
				now = vectorTime
			}
			err := webhooks.Verify(tt.secret, req, now, 0)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			var ve *webhooks.VerifyError
			if !errors.As(err, &ve) || !errors.Is(err, webhooks.ErrUnverified) {
				t.Fatalf("Verify = %v, want a *VerifyError wrapping ErrUnverified", err)
			}
			if ve.Reason != tt.reason {
				t.Errorf("reason %q, want %q", ve.Reason, tt.reason)
			}
		})
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	req := webhooks.Request{Method: "POST", PathAndQuery: "/v1/vipps/demo/webhooks", Host: "pay.example.com",
		Body: []byte(`{"msn":"123456"}`)}
	webhooks.Sign("s3cret", &req, now)
	if err := webhooks.Verify("s3cret", req, now.Add(time.Minute), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := webhooks.Verify("s3cret", req, now.Add(2*time.Minute), time.Minute); err == nil {
		t.Fatal("a delivery older than the skew verified")
	}
}

func BenchmarkVerify(b *testing.B) {
	req := vectorRequest()
	for b.Loop() {
		if err := webhooks.Verify(vectorSecret, req, vectorTime, 0); err != nil {
			b.Fatal(err)
		}
	}
}
