package redact_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/kassehq/kasse/host/internal/redact"
)

func TestString(t *testing.T) {
	cases := []struct{ in, want string }{
		{`Put "http://shop.test/wp-json/wc/v3/orders/7?oauth_consumer_key=ck_abc&oauth_nonce=n&oauth_signature=s%2Bg%3D": EOF`,
			`Put "http://shop.test/wp-json/wc/v3/orders/7?oauth_consumer_key=[redacted]&oauth_nonce=[redacted]&oauth_signature=[redacted]": EOF`},
		{"https://x.test/a?consumer_key=ck_1&consumer_secret=cs_2&page=3", "https://x.test/a?consumer_key=[redacted]&consumer_secret=[redacted]&page=3"},
		{"redis://:pa55@redis.internal:6379/0", "redis://[redacted]@redis.internal:6379/0"},
		{"no url here, key=value", "no url here, key=value"},
		{"https://shop.test/orders?id=7&status=paid", "https://shop.test/orders?id=7&status=paid"},
	}
	for _, c := range cases {
		if got := redact.String(c.in); got != c.want {
			t.Errorf("String(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestHandler(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(redact.Handler(slog.NewTextHandler(&b, nil))).With("base", "http://u:pw@h.test/")
	log.Warn("failed http://h.test/?token=t0k", "err", errors.New(`Get "http://h.test/?oauth_signature=SIG": refused`),
		slog.Group("g", "url", "http://h.test/?api_key=K3Y"))
	for _, secret := range []string{"pw", "t0k", "SIG", "K3Y"} {
		if strings.Contains(b.String(), secret) {
			t.Errorf("log shows %q: %s", secret, b.String())
		}
	}
}
