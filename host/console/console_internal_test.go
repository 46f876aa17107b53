package console

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kassehq/kasse/host/config"
	"github.com/kassehq/kasse/host/payment"
)

func TestParseMoney(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "200", want: 20000},
		{in: "200,5", want: 20050},
		{in: "200,50", want: 20050},
		{in: "200.05", want: 20005},
		{in: "1 200,00", want: 120000},
		{in: " 0,01 ", want: 1},
		{in: "0", bad: true},
		{in: "0,00", bad: true},
		{in: "12,345", bad: true},
		{in: "-5", bad: true},
		{in: "1e3", bad: true},
		{in: ",50", bad: true},
		{in: "1.000,00", bad: true},
		{in: "99999999999999", bad: true}, // more than 13 digits of kroner: refused, never overflowed
		{in: "", bad: true},
	} {
		got, err := parseMoney(tc.in)
		if tc.bad != (err != nil) || got != tc.want {
			t.Errorf("parseMoney(%q) = %d, %v; want %d (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestMoney(t *testing.T) {
	for in, want := range map[int64]string{0: "0,00", 1: "0,01", 49900: "499,00", 20050: "200,50", -150: "-1,50"} {
		if got := money(in); got != want {
			t.Errorf("money(%d) = %q, want %q", in, got, want)
		}
	}
}

// TestSessionCookie: a cookie is accepted until it expires, and not after its payload or signature is
// changed, or when another token signed it.
func TestSessionCookie(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	c := &Console{key: []byte("k1"), cfg: Config{Now: func() time.Time { return now }}}
	other := &Console{key: []byte("k2"), cfg: c.cfg}
	valid := c.sign(strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + "\x00nonce\x00Kari")
	expired := c.sign(strconv.FormatInt(now.Unix(), 10) + "\x00nonce\x00Kari")
	p64, s64, _ := strings.Cut(valid, ".")
	for _, tc := range []struct {
		name, value string
		who         *Console
		ok          bool
	}{
		{"valid", valid, c, true},
		{"expired", expired, c, false},
		{"other token", valid, other, false},
		{"payload changed", p64 + "x." + s64, c, false},
		{"signature changed", p64 + "." + s64[:len(s64)-2] + "AA", c, false},
		{"no signature", p64, c, false},
		{"garbage", "%%%", c, false},
		{"unsigned shape", c.sign("no separators"), c, false},
	} {
		rec := httptest.NewRecorder()
		ctx, _ := gin.CreateTestContext(rec)
		ctx.Request = httptest.NewRequest(http.MethodGet, "/console/payments", nil)
		ctx.Request.AddCookie(&http.Cookie{Name: cookieName, Value: tc.value})
		op, ok := tc.who.current(ctx)
		if ok != tc.ok || ok && op.Name != "Kari" {
			t.Errorf("%s: got %+v, %v; want ok %v", tc.name, op, ok, tc.ok)
		}
	}
	if c.csrf("a") == c.csrf("b") || c.csrf("a") == other.csrf("a") {
		t.Error("CSRF tokens do not depend on the login and the key")
	}
}

func TestAttention(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	c := &Console{cfg: Config{Config: func() *config.Config {
		return &config.Config{Reconciler: config.Reconciler{PendingTimeout: config.Duration(10 * time.Minute)}}
	}}}
	for _, tc := range []struct {
		name string
		s    payment.Session
		want []string
	}{
		{"healthy", payment.Session{State: payment.StateAuthorized, CreatedAt: now.Add(-time.Hour)}, nil},
		{"pending, young", payment.Session{State: payment.StatePending, CreatedAt: now.Add(-time.Minute)}, nil},
		{"pending too long", payment.Session{State: payment.StatePending, CreatedAt: now.Add(-11 * time.Minute)},
			[]string{attnPending}},
		{"in doubt", payment.Session{State: payment.StateAuthorized, CreatedAt: now,
			Operations: []payment.ProviderOp{{ID: "op1", Kind: "capture", Status: payment.OpInDoubt}}}, []string{attnInDoubt}},
		{"diverged", payment.Session{State: payment.StateCaptured, CreatedAt: now,
			History: []payment.Event{{Cause: "diverged"}, {Cause: "diverged"}}}, []string{attnDiverged}},
		{"paid while another session was the order's", payment.Session{State: payment.StateAuthorized, CreatedAt: now,
			History: []payment.Event{{Cause: payment.CausePaidNotCurrent}}}, []string{attnOrderPaid}},
		{"the order's current session, another took money", payment.Session{State: payment.StateRejected, CreatedAt: now,
			History: []payment.Event{{Cause: payment.CauseOrderPaidElsewhere}}}, []string{attnOrderPaid}},
	} {
		if got := c.attention(&tc.s, now); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
