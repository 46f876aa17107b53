package sdk

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/kassehq/kasse/plugin/abi"
)

func TestAppendOutput(t *testing.T) {
	tests := []struct {
		name string
		out  abi.Output
	}{
		{"empty", abi.Output{}},
		{"ok", abi.Output{OK: true}},
		{"error", abi.Output{Error: &abi.Error{Code: "provider_error", Message: "Vipps said \"no\" <&>\u2028",
			ProviderStatus: 400, Retryable: true,
			ProviderErrors: []abi.ProviderError{{Group: "g", Code: "c", Message: "m"}, {Code: "only"}, {}, {Message: "x\ty"}}}}},
		{"request", abi.Output{OK: true, Request: &abi.Request{Method: "POST", Path: "/epayment/v1/payments",
			Body: json.RawMessage(`{"amount":{"value":1000,"currency":"NOK"}}`), IdempotencyHeader: "Idempotency-Key",
			Inject: []abi.Injection{{Pointer: "/webhook/token", Value: abi.InjectCallbackToken}}}}},
		{"bare request", abi.Output{OK: true, Request: &abi.Request{Method: "GET", Path: "/x"}}},
		{"payment", abi.Output{OK: true, Payment: &abi.Payment{State: "authorized", ProviderReference: "p",
			RedirectURL: "https://x/?a=1&b=2", AuthorizedAmount: 1000, CapturedAmount: -1, RefundedAmount: math.MinInt64,
			CancelledAmount: math.MaxInt64, Reason: "é"}}},
		{"bare payment", abi.Output{Payment: &abi.Payment{}}},
		{"express payment", abi.Output{OK: true, Payment: &abi.Payment{State: "authorized",
			Contact:  &abi.Contact{FirstName: "Ada", Email: "ada@example.com"},
			Shipping: &abi.ShippingChoice{MethodID: "posten", Cost: 4900, Address: &abi.Address{City: "Oslo", Country: "NO"}}}}},
		{"empty contact and shipping", abi.Output{Payment: &abi.Payment{Contact: &abi.Contact{},
			Shipping: &abi.ShippingChoice{Address: &abi.Address{}}}}},
		{"reply", abi.Output{OK: true, Reply: &abi.Reply{Status: 200, Body: json.RawMessage(`{"shippingDetails":[]}`)}}},
		{"bare reply", abi.Output{OK: true, Reply: &abi.Reply{}}},
		{"ledgers", abi.Output{OK: true, Ledgers: &abi.LedgerList{Cursor: "c\"1", Ledgers: []abi.Ledger{
			{LedgerID: "302321", Currency: "NOK", PayoutBankAccount: "BBAN:NO:86011117947", RecipientHandles: []string{"api:123455", "NO:1"}},
			{LedgerID: "bare"}}}}},
		{"empty ledgers", abi.Output{OK: true, Ledgers: &abi.LedgerList{Ledgers: []abi.Ledger{}}}},
		{"nil ledgers", abi.Output{OK: true, Ledgers: &abi.LedgerList{}}},
		{"report", abi.Output{OK: true, Report: &abi.ReportPage{LedgerID: "12345", Topic: "funds", Date: "2022-10-01",
			Cursor: "Mw==", HasMore: true, TryLater: true, Entries: []abi.LedgerEntry{
				{EntryType: "capture", Amount: 10000, Currency: "NOK", Reference: "purchase-12", PSPReference: "3343121302",
					Time: "2022-10-01T14:33:00.824993Z", LedgerDate: "2022-10-01", RecipientHandle: "NO:57860", BalanceAfter: 10000},
				{EntryType: "new-type", Amount: math.MinInt64, BalanceBefore: -1, BalanceAfter: math.MaxInt64}}}}},
		{"bare report", abi.Output{OK: true, Report: &abi.ReportPage{Entries: []abi.LedgerEntry{}}}},
		{"nil entries", abi.Output{OK: true, Report: &abi.ReportPage{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(&tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendOutput(nil, &tc.out); !bytes.Equal(got, want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestAppendInt(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 9, 10, 99, 100, 101, 999, 1000, 12345, -12345, 1 << 32, math.MaxInt64, math.MinInt64, math.MinInt64 + 1} {
		if got, want := string(appendInt(nil, v)), strconv.FormatInt(v, 10); got != want {
			t.Errorf("appendInt(%d) = %s", v, got)
		}
	}
}

func TestEncodeAllocations(t *testing.T) {
	out := abi.Output{OK: true, Request: &abi.Request{Method: "POST", Path: "/p", Body: json.RawMessage(`{"a":1}`)},
		Payment: &abi.Payment{State: "pending", AuthorizedAmount: 123456}}
	buf := appendOutput(nil, &out)
	if n := testing.AllocsPerRun(100, func() { buf = appendOutput(buf[:0], &out) }); n != 0 {
		t.Fatalf("%v allocations per encode, want 0", n)
	}
}

func FuzzEncodeOutput(f *testing.F) {
	f.Add(true, "code", "message <&> \u2028 \xff", int64(400), "POST", "/p", []byte(`{"a":[1,2]}`), "pending", int64(-1), "reason")
	f.Add(false, "", "", int64(0), "", "", []byte(nil), "", int64(0), "")
	f.Fuzz(func(t *testing.T, ok bool, code, message string, n int64, method, path string, body []byte, state string, amount int64, reason string) {
		out := abi.Output{OK: ok}
		if code != "" || message != "" {
			out.Error = &abi.Error{Code: code, Message: message, ProviderStatus: int(n % 1000), Retryable: n%2 == 0,
				ProviderErrors: []abi.ProviderError{{Group: reason, Code: code, Message: message}}}
		}
		if method != "" || path != "" {
			// encoding/json compacts a RawMessage; give it a compact one so that bytes can be compared.
			var compact bytes.Buffer
			if json.Compact(&compact, body) == nil && compact.Len() > 0 {
				body = compact.Bytes()
			} else {
				body = nil
			}
			out.Request = &abi.Request{Method: method, Path: path, Body: body, IdempotencyHeader: reason,
				Inject: []abi.Injection{{Pointer: path, Value: state}}}
		}
		if state != "" {
			out.Payment = &abi.Payment{State: state, ProviderReference: code, RedirectURL: path, AuthorizedAmount: amount,
				CapturedAmount: n, RefundedAmount: -amount, CancelledAmount: amount ^ n, Reason: reason}
			if n%3 == 0 {
				out.Payment.Contact = &abi.Contact{UserID: code, Email: message, PhoneNumber: reason}
				out.Payment.Shipping = &abi.ShippingChoice{Method: method, Cost: amount}
				if n%2 == 0 {
					out.Payment.Shipping.Address = &abi.Address{Line1: message, Country: state}
				}
			}
		}
		if ok && n%5 == 0 {
			out.Reply = &abi.Reply{Status: int(amount % 600)}
			if out.Request != nil {
				out.Reply.Body = out.Request.Body
			}
		}
		got := appendOutput(nil, &out)
		want, err := json.Marshal(&out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
		// And the round trip gives back the same value.
		var back, stdBack abi.Output
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		if err := json.Unmarshal(want, &stdBack); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, stdBack) {
			t.Fatalf("round trip %+v, want %+v", back, stdBack)
		}
	})
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "<&>", "\u2028\u2029", "\xff\xfe", "\x00\x1f\b\f\n\r\t\"\\", "é€😀", strings.Repeat("a\"", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}
