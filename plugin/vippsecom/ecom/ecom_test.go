package ecom

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/plugin/abi"
)

// codes are the error codes Handle may report.
var codes = map[string]bool{CodeInvalidInput: true, CodeProviderError: true, CodeUnexpectedResponse: true,
	CodeCallbackMismatch: true, CodeUnsupportedOp: true}

// checkOutput fails the test unless out is a well-formed output for in: ok with the right part, or a coded
// error; valid JSON bodies; canonical states; amounts of -1 or more.
func checkOutput(t *testing.T, in *abi.Input, out *abi.Output) {
	t.Helper()
	if out == nil {
		t.Fatal("nil output")
	}
	if _, err := json.Marshal(out); err != nil {
		t.Fatalf("output does not encode: %v", err)
	}
	if !out.OK {
		if out.Error == nil || !codes[out.Error.Code] || out.Error.Message == "" || !utf8.ValidString(out.Error.Message) {
			t.Fatalf("failure without a known code and a message: %+v", out.Error)
		}
		if out.Request != nil || out.Payment != nil || out.Reply != nil {
			t.Fatalf("failure with a result: %+v", out)
		}
		return
	}
	if out.Error != nil {
		t.Fatalf("ok output with an error: %+v", out.Error)
	}
	if slices.Contains(abi.ReportOps, in.Op) {
		// The report operations speak the Report API (plugin/internal/vipps/report has their tests).
		switch {
		case out.Payment != nil || out.Reply != nil:
			t.Fatalf("report output with a payment or reply: %+v", out)
		case strings.HasPrefix(string(in.Op), "build_") && (out.Request == nil || out.Request.Method != "GET" ||
			!strings.HasPrefix(out.Request.Path, "/report/v2/ledgers/") && !strings.HasPrefix(out.Request.Path, "/settlement/v1/ledgers?")):
			t.Fatalf("report build output: %+v", out.Request)
		case strings.HasPrefix(string(in.Op), "read_") && (out.Ledgers == nil) == (out.Report == nil):
			t.Fatalf("report read output: %+v", out)
		}
		return
	}
	if strings.HasPrefix(string(in.Op), "build_") {
		r := out.Request
		if r == nil || out.Payment != nil {
			t.Fatalf("build output without a request: %+v", out)
		}
		if r.Method != "GET" && r.Method != "POST" && r.Method != "PUT" {
			t.Fatalf("method %q", r.Method)
		}
		if !strings.HasPrefix(r.Path, pathPayments) {
			t.Fatalf("path %q", r.Path)
		}
		if len(r.Body) > 0 && !json.Valid(r.Body) {
			t.Fatalf("invalid JSON body %q", r.Body)
		}
		return
	}
	if in.Op == abi.OpShippingOptions {
		r := out.Reply
		if r == nil || out.Request != nil || out.Payment != nil {
			t.Fatalf("shipping_options output without a reply: %+v", out)
		}
		if r.Status != 200 || !json.Valid(r.Body) {
			t.Fatalf("reply %d %q", r.Status, r.Body)
		}
		return
	}
	p := out.Payment
	if p == nil || out.Request != nil || out.Reply != nil {
		t.Fatalf("read output without a payment: %+v", out)
	}
	if !payment.State(p.State).Valid() {
		t.Fatalf("state %q is not canonical", p.State)
	}
	for _, a := range []int64{p.AuthorizedAmount, p.CapturedAmount, p.RefundedAmount, p.CancelledAmount} {
		if a < -1 {
			t.Fatalf("amount %d in %+v", a, p)
		}
	}
}

// sampleInput is a valid input for every operation: an authorized 499 NOK payment.
func sampleInput(op abi.Op) *abi.Input {
	return &abi.Input{
		Op: op,
		Merchant: abi.Merchant{ID: "acme", MerchantSerialNumber: "123456",
			CallbackPrefix: "https://kasse.example.com/cb", FallBack: "https://kasse.example.com/return/x",
			TransactionTextPrefix: "Acme: "},
		Session: abi.Session{ID: "kx", Reference: "order-1", ProviderReference: "acme-order-1", State: "authorized",
			Amount: 49900, Currency: "NOK", Description: "Socks", CustomerPhone: "91234567", AuthorizedAmount: 49900},
		Operation: &abi.Operation{Amount: 49900, Text: "Shipped"},
	}
}

// goldenSeeds returns the recorded inputs of the plugin's golden vectors.
func goldenSeeds(t testing.TB) [][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "golden", "*.input.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	var seeds [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzHandle sends every operation (and an unknown one) random answer and callback bodies and statuses.
func FuzzHandle(f *testing.F) {
	for _, seed := range goldenSeeds(f) {
		var in abi.Input
		if err := json.Unmarshal(seed, &in); err != nil {
			f.Fatal(err)
		}
		body := []byte(in.Callback)
		status := 200
		if in.Response != nil {
			body, status = in.Response.Body, in.Response.Status
		}
		for i, op := range abi.Ops {
			if op == in.Op {
				f.Add(uint8(i), status, body)
			}
		}
	}
	f.Add(uint8(200), 200, []byte(`{}`))
	f.Fuzz(func(t *testing.T, opIndex uint8, status int, body []byte) {
		op := abi.Op("no_such_op")
		if int(opIndex) < len(abi.Ops) {
			op = abi.Ops[opIndex]
		}
		in := sampleInput(op)
		in.Response = &abi.Response{Status: status, Body: body}
		in.Callback = body
		checkOutput(t, in, Handle(in))
	})
}

// FuzzHandleInput decodes random bytes as a whole abi.Input (any session, merchant and operation).
func FuzzHandleInput(f *testing.F) {
	for _, seed := range goldenSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var in abi.Input
		if json.Unmarshal(raw, &in) != nil {
			return // not an input the host can send
		}
		checkOutput(t, &in, Handle(&in))
	})
}

// FuzzBuildInitiate checks the initiate body for any description, prefix and phone number: valid JSON, a
// transactionText of 1 to 100 characters, mobileNumber exactly when the phone is 8 digits.
func FuzzBuildInitiate(f *testing.F) {
	f.Add("Acme: ", "Three pairs of socks", "91234567", "order-1")
	f.Add("", "   ", "", "")
	f.Add("", "", "+4791234567", "\xff")
	f.Add("Prefix ", strings.Repeat("blåbær ", 30), "9123456a", "ref")
	f.Add("\u2028", "\"<&>\"\\\x00\x1f", "12345678", "\t")
	f.Fuzz(func(t *testing.T, prefix, description, phone, reference string) {
		in := sampleInput(abi.OpBuildInitiate)
		in.Merchant.TransactionTextPrefix, in.Session.Description, in.Session.CustomerPhone, in.Session.Reference =
			prefix, description, phone, reference
		out := Handle(in)
		checkOutput(t, in, out)
		if !out.OK {
			t.Fatalf("build_initiate failed: %+v", out.Error)
		}
		var body struct {
			CustomerInfo map[string]string `json:"customerInfo"`
			Transaction  struct {
				TransactionText string `json:"transactionText"`
			} `json:"transaction"`
		}
		if err := json.Unmarshal(out.Request.Body, &body); err != nil {
			t.Fatalf("body: %v: %s", err, out.Request.Body)
		}
		text := body.Transaction.TransactionText
		if n := utf8.RuneCountInString(text); n < 1 || n > 100 || strings.TrimSpace(text) != text {
			t.Fatalf("transactionText %q has %d characters", text, n)
		}
		_, hasPhone := body.CustomerInfo["mobileNumber"]
		if want := len(phone) == 8 && allDigits(phone); hasPhone != want {
			t.Fatalf("phone %q: mobileNumber present %v", phone, hasPhone)
		}
	})
}

// TestBuildInitiateBodyMatchesEncodingJSON pins the body bytes: the same values marshalled by encoding/json
// in the same key order give the same bytes, whatever the text contains.
func TestBuildInitiateBodyMatchesEncodingJSON(t *testing.T) {
	type merchantInfo struct {
		MerchantSerialNumber string `json:"merchantSerialNumber"`
		CallbackPrefix       string `json:"callbackPrefix"`
		FallBack             string `json:"fallBack"`
		IsApp                bool   `json:"isApp"`
		PaymentType          string `json:"paymentType"`
	}
	type transaction struct {
		OrderID         string `json:"orderId"`
		Amount          int64  `json:"amount"`
		TransactionText string `json:"transactionText"`
	}
	type body struct {
		CustomerInfo struct {
			MobileNumber string `json:"mobileNumber,omitempty"`
		} `json:"customerInfo"`
		MerchantInfo merchantInfo `json:"merchantInfo"`
		Transaction  transaction  `json:"transaction"`
	}
	for _, desc := range []string{"Socks", `"quoted" <b>&amp;</b> \ back`, "line\nbreak\ttab\u2028\u2029", "bad \xff utf8", "æøå 🧦"} {
		in := sampleInput(abi.OpBuildInitiate)
		in.Session.Description = desc
		out := Handle(in)
		if !out.OK {
			t.Fatalf("%q: %+v", desc, out.Error)
		}
		var want body
		want.CustomerInfo.MobileNumber = in.Session.CustomerPhone
		want.MerchantInfo = merchantInfo{in.Merchant.MerchantSerialNumber, in.Merchant.CallbackPrefix, in.Merchant.FallBack, false, paymentTypeRegular}
		want.Transaction = transaction{in.Session.ProviderReference, in.Session.Amount, strings.TrimSpace(in.Merchant.TransactionTextPrefix + desc)}
		wantBytes, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Request.Body, wantBytes) {
			t.Errorf("%q:\ngot  %s\nwant %s", desc, out.Request.Body, wantBytes)
		}
		again := Handle(in)
		if !bytes.Equal(again.Request.Body, out.Request.Body) {
			t.Errorf("%q: second call gave %s", desc, again.Request.Body)
		}
	}
}

func TestTransactionText(t *testing.T) {
	long := strings.Repeat("ø", 150)
	tests := []struct {
		prefix, text, want string
	}{
		{"", "Socks", "Socks"},
		{"Acme: ", "Socks", "Acme: Socks"},
		{"Acme: ", "", "Acme:"},
		{"", "  \t ", ""},
		{"", long, strings.Repeat("ø", 100)},
		{"", strings.Repeat("a", 99) + " b", strings.Repeat("a", 99)},
		{"", strings.Repeat("\xff", 120), strings.Repeat("\xff", 100)},
		{strings.Repeat("p", 100), "text", strings.Repeat("p", 100)},
	}
	for _, tt := range tests {
		if got := transactionText(tt.prefix, tt.text); got != tt.want {
			t.Errorf("transactionText(%q, %q) = %q, want %q", tt.prefix, tt.text, got, tt.want)
		}
	}
}

func TestFlexInt(t *testing.T) {
	tests := []struct {
		json  string
		set   bool
		whole bool
		v     int64
		err   bool
	}{
		{`654`, true, true, 654, false},
		{`654.0`, true, true, 654, false},
		{`6.54e2`, true, true, 654, false},
		{`"654"`, true, true, 654, false},
		{`" 654 "`, true, true, 654, false},
		{`654.5`, true, false, 0, false},
		{`"abc"`, true, false, 0, false},
		{`1e400`, true, false, 0, false},
		{`-100`, true, true, -100, false},
		{`null`, false, false, 0, false},
		{`true`, false, false, 0, true},
		{`{}`, false, false, 0, true},
	}
	for _, tt := range tests {
		var f flexInt
		err := json.Unmarshal([]byte(tt.json), &f)
		if (err != nil) != tt.err || f.Set != tt.set || f.Whole != tt.whole || f.V != tt.v {
			t.Errorf("%s: got %+v, err %v", tt.json, f, err)
		}
	}
	if _, ok := (flexInt{Set: true, Whole: true, V: -1}).amount(); ok {
		t.Error("a negative value is an amount")
	}
}

func TestFlexString(t *testing.T) {
	for in, want := range map[string]string{`"123456"`: "123456", `123456`: "123456", `null`: "", `45`: "45"} {
		var s flexString
		if err := json.Unmarshal([]byte(in), &s); err != nil || string(s) != want {
			t.Errorf("%s: got %q, %v", in, s, err)
		}
	}
	for _, in := range []string{`true`, `{}`, `[]`} {
		var s flexString
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

func TestProviderErrorRetryable(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   bool
	}{
		{"400 payment 61", 400, `[{"errorGroup":"Payment","errorCode":"61","errorMessage":"x"}]`, false},
		{"400 vipps 94", 400, `[{"errorGroup":"VippsError","errorCode":"94","errorMessage":"locked"}]`, true},
		{"400 vipps 98", 400, `[{"errorGroup":"VippsError","errorCode":"98","errorMessage":"too many"}]`, true},
		{"400 payment 98", 400, `[{"errorGroup":"Payment","errorCode":"98","errorMessage":"too late"}]`, false},
		{"400 numeric 94", 400, `[{"errorGroup":"VippsError","errorCode":94,"errorMessage":"locked"}]`, true},
		{"429", 429, `{"statusCode":429,"message":"Rate limit is exceeded"}`, true},
		{"500 empty", 500, ``, true},
		{"503 azure", 503, `{"responseInfo":{"responseCode":503,"responseMessage":"Service Unavailable"},"result":{"message":"down"}}`, true},
		{"404", 404, `[{"errorGroup":"Merchant","errorCode":"35","errorMessage":"not found"}]`, false},
	}
	for _, tt := range tests {
		out := providerError(tt.status, []byte(tt.body))
		if out.Error.Retryable != tt.want {
			t.Errorf("%s: retryable %v, want %v (%s)", tt.name, out.Error.Retryable, tt.want, out.Error.Message)
		}
	}
}

func TestProviderErrorMessages(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   string
	}{
		{400, `[{"errorGroup":"Payment","errorCode":"61","errorMessage":"Capture amount exceeds reserved amount","contextId":"x"}]`,
			"Vipps: Payment 61: Capture amount exceeds reserved amount"},
		{400, `{"errorGroup":"Payment","errorCode":"61","errorMessage":"Capture amount exceeds reserved amount"}`,
			"Vipps: Payment 61: Capture amount exceeds reserved amount"},
		{400, `[]`, "Vipps: HTTP 400 with an empty error list"},
		{400, `[null]`, "Vipps: HTTP 400 with an empty error entry"},
		{400, `[1,2]`, "Vipps: HTTP 400 with an unrecognised error body"},
		{400, `{"title":"Bad Request","detail":"Amount too small"}`, "Vipps: HTTP 400: Bad Request: Amount too small"},
		{400, `{"something":"else"}`, "Vipps: HTTP 400 with an unrecognised error body"},
		{401, `{"responseInfo":{"responseCode":401,"responseMessage":"Unauthorized"}}`, "Vipps: HTTP 401 Unauthorized"},
		{401, `{"statusCode":"401","message":"Access\ndenied\t "}`, "Vipps: HTTP 401: Access denied"},
		{500, `"   "`, "Vipps: HTTP 500 with an empty message"},
		{502, `"<html>Bad gateway</html>"`, "Vipps: HTTP 502 with a markup body"},
	}
	for _, tt := range tests {
		out := providerError(tt.status, []byte(tt.body))
		if out.Error.Code != CodeProviderError || out.Error.ProviderStatus != tt.status || out.Error.Message != tt.want {
			t.Errorf("%d %s: got %+v, want message %q", tt.status, tt.body, out.Error, tt.want)
		}
	}
	var many strings.Builder
	many.WriteString("[")
	for i := range 30 {
		if i > 0 {
			many.WriteString(",")
		}
		many.WriteString(`{"errorGroup":"InvalidRequest","errorCode":"f` + itoa(int64(i)) + `","errorMessage":"` + strings.Repeat("x", 500) + `"}`)
	}
	many.WriteString("]")
	out := providerError(400, []byte(many.String()))
	if len(out.Error.ProviderErrors) != maxProviderErrors || utf8.RuneCountInString(out.Error.ProviderErrors[0].Message) > maxErrorText+1 {
		t.Errorf("error list not capped: %d entries, first message %d characters", len(out.Error.ProviderErrors), len(out.Error.ProviderErrors[0].Message))
	}
}

func TestReadDetailsEdges(t *testing.T) {
	details := func(body string) *abi.Output {
		in := sampleInput(abi.OpReadDetails)
		in.Response = &abi.Response{Status: 200, Body: []byte(body)}
		return Handle(in)
	}
	tests := []struct {
		name, body string
		want       abi.Payment
		code       string
	}{
		{"empty object", `{}`, abi.Payment{State: "pending", AuthorizedAmount: -1, CapturedAmount: -1, RefundedAmount: -1, CancelledAmount: -1}, ""},
		{"summary without a log", `{"transactionSummary":{"capturedAmount":100,"remainingAmountToCapture":400,"refundedAmount":0,"remainingAmountToRefund":100}}`,
			abi.Payment{State: "captured", AuthorizedAmount: 500, CapturedAmount: 100}, ""},
		{"summary with a bad amount", `{"transactionSummary":{"capturedAmount":-5,"refundedAmount":0}}`, abi.Payment{}, CodeUnexpectedResponse},
		{"successful capture without amount", `{"transactionLogHistory":[{"operation":"CAPTURE","operationSuccess":true}]}`, abi.Payment{}, CodeUnexpectedResponse},
		{"failed capture without amount", `{"transactionLogHistory":[{"operation":"CAPTURE","operationSuccess":false},{"operation":"RESERVE","amount":49900,"operationSuccess":true}]}`,
			abi.Payment{State: "authorized", AuthorizedAmount: 49900}, ""},
		{"unknown operation", `{"transactionLogHistory":[{"operation":"REGISTER","amount":1,"operationSuccess":true},{"operation":"INITIATE","amount":49900,"operationSuccess":true}]}`,
			abi.Payment{State: "pending"}, ""},
		{"cancel after reserve", `{"transactionLogHistory":[{"operation":"CANCEL","amount":49900,"operationSuccess":true},{"operation":"RESERVE","amount":49900,"operationSuccess":true}]}`,
			abi.Payment{State: "cancelled", AuthorizedAmount: 49900, CancelledAmount: 49900}, ""},
		{"capture overflow", `{"transactionLogHistory":[{"operation":"CAPTURE","amount":9223372036854775807,"operationSuccess":true},{"operation":"CAPTURE","amount":1,"operationSuccess":true}]}`,
			abi.Payment{}, CodeUnexpectedResponse},
		{"not an object", `[]`, abi.Payment{}, CodeUnexpectedResponse},
		{"wrong log type", `{"transactionLogHistory":{}}`, abi.Payment{}, CodeUnexpectedResponse},
	}
	for _, tt := range tests {
		out := details(tt.body)
		if tt.code != "" {
			if out.OK || out.Error.Code != tt.code {
				t.Errorf("%s: got %+v %+v, want error %s", tt.name, out.Payment, out.Error, tt.code)
			}
			continue
		}
		if !out.OK || *out.Payment != tt.want {
			t.Errorf("%s: got %+v %+v, want %+v", tt.name, out.Payment, out.Error, tt.want)
		}
	}
}

func TestReadCancelWithoutSummary(t *testing.T) {
	in := sampleInput(abi.OpReadCancel)
	in.Session.State, in.Session.CapturedAmount = "captured", 20000
	in.Response = &abi.Response{Status: 200, Body: []byte(`{"orderId":"acme-order-1","transactionInfo":{"amount":49900,"status":"Cancelled","timeStamp":"t","transactionText":"x"}}`)}
	out := Handle(in)
	want := abi.Payment{State: "cancelled", AuthorizedAmount: -1, CapturedAmount: -1, RefundedAmount: -1, CancelledAmount: 29900}
	if !out.OK || *out.Payment != want {
		t.Errorf("got %+v %+v, want %+v", out.Payment, out.Error, want)
	}
}

func TestReadStatusOutOfRange(t *testing.T) {
	for _, status := range []int{0, 99, 600, -1, math.MaxInt32} {
		in := sampleInput(abi.OpReadCapture)
		in.Response = &abi.Response{Status: status}
		if out := Handle(in); out.OK || out.Error.Code != CodeInvalidInput {
			t.Errorf("status %d: got %+v", status, out.Error)
		}
	}
	in := sampleInput(abi.OpReadCapture)
	in.Response = &abi.Response{Status: 204}
	if out := Handle(in); out.OK || out.Error.Code != CodeUnexpectedResponse {
		t.Errorf("204 without body: got %+v", out.Error)
	}
}

func TestHandleNil(t *testing.T) {
	if out := Handle(nil); out.OK || out.Error.Code != CodeInvalidInput {
		t.Errorf("got %+v", out)
	}
}

func TestRedirectURL(t *testing.T) {
	for u, want := range map[string]bool{
		"https://api.vipps.no/dwo?v=2&token=x": true,
		"HTTP://127.0.0.1:8090/landing/x":      true,
		"https://":                             false,
		"https:///path":                        false,
		"javascript:alert(1)":                  false,
		"vipps://?token=x":                     false,
		"https://a.example/ x":                 false,
		"https://a.example/\nx":                false,
		"":                                     false,
	} {
		if got := redirectURL(u); got != want {
			t.Errorf("redirectURL(%q) = %v", u, got)
		}
	}
}

// FuzzShippingOptions checks the shipping answer for any address and cart: valid JSON echoing the
// addressId, every option priced in NOK with two decimals and exactly one default.
func FuzzShippingOptions(f *testing.F) {
	f.Add(int64(3960), "0191", "Norway", int64(49900))
	f.Add(int64(1), "9008", "NO", int64(120000))
	f.Add(int64(7), "", "", int64(0))
	f.Add(int64(8), "11151", "SE", int64(100))
	f.Fuzz(func(t *testing.T, addressID int64, postCode, country string, unitPrice int64) {
		if addressID < 0 || unitPrice < 0 || unitPrice > 65000000 {
			return
		}
		in := sampleInput(abi.OpShippingOptions)
		in.Session.Lines = []abi.Line{{Name: "Socks", Quantity: 1, UnitPrice: unitPrice}}
		in.Merchant.Express = &abi.Express{Shipping: abi.Shipping{Mode: abi.ShippingDynamic,
			Methods: []abi.ShippingMethod{{ID: "a", Name: "A", Cost: 9900}, {ID: "b", Name: "B", Cost: 5, Default: true,
				PostCodePrefixes: []string{"0"}}},
			Rules: []abi.ShippingRule{{Methods: []string{"a"}, MinAmount: 100000, Cost: 0}}}}
		body, _ := json.Marshal(map[string]any{"addressId": addressID, "postCode": postCode, "country": country})
		in.Callback = body
		out := Handle(in)
		checkOutput(t, in, out)
		var resp struct {
			AddressID       int64  `json:"addressId"`
			OrderID         string `json:"orderId"`
			ShippingDetails []struct {
				IsDefault    string      `json:"isDefault"`
				ShippingCost json.Number `json:"shippingCost"`
			} `json:"shippingDetails"`
		}
		if err := json.Unmarshal(out.Reply.Body, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.AddressID != addressID || resp.OrderID != in.Session.ProviderReference {
			t.Fatalf("answer %s does not echo addressId %d and the orderId", out.Reply.Body, addressID)
		}
		defaults := 0
		for _, d := range resp.ShippingDetails {
			if d.IsDefault == "Y" {
				defaults++
			}
			if s := d.ShippingCost.String(); len(s) < 4 || s[len(s)-3] != '.' {
				t.Fatalf("shippingCost %s is not NOK with two decimals", s)
			}
		}
		if defaults != 1 || len(resp.ShippingDetails) == 0 {
			t.Fatalf("%d options, %d defaults: %s", len(resp.ShippingDetails), defaults, out.Reply.Body)
		}
		free := strings.Contains(string(out.Reply.Body), `"shippingCost":0.00,"shippingMethod":"A"`)
		if free != (unitPrice >= 100000) {
			t.Fatalf("free shipping from 1000 NOK: cart %d øre, answer %s", unitPrice, out.Reply.Body)
		}
	})
}
