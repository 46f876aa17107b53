package schemas

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kassehq/kasse/host/payment"
)

// checkoutCorpus returns the checkouts of testdata/checkout that decode into payment.Checkout, and about
// 16,000 variants of them: every member set to boundary and odd values (lengths around each limit in
// ASCII and in multi-byte characters, control and format characters, spaces at either end, invalid
// UTF-8, URLs of every kind, enum values in other cases, integers around each bound), customers and
// lines present, empty and absent, line counts around the limit.
func checkoutCorpus(t testing.TB) []payment.Checkout {
	t.Helper()
	paths, err := filepath.Glob("testdata/checkout/*/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var bases []payment.Checkout
	for _, p := range paths {
		if strings.HasSuffix(p, ".golden.json") {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var co payment.Checkout
		if json.Unmarshal(raw, &co) == nil {
			bases = append(bases, co)
		}
	}
	if len(bases) < 10 {
		t.Fatalf("only %d checkouts in testdata/checkout decode", len(bases))
	}
	rep := func(s string, n int) string { return strings.Repeat(s, n) }
	texts := []string{"", " ", "a", "Order 1", " a", "a ", "a  b", "a\tb", "\ta", "a\n", "\x00", "a\x7fb", "a\u0085b",
		"a\u00a0b", "\u00a0", "a\u200bb", "\u200b", "a\u2028b", "a\ufeffb", "a\ue000b", "\U0001F600", "Ø", "– x –",
		"\xff", "a\xed\xa0\x80b", "a\xc3", "<&>", `"\`, rep("a", 63), rep("a", 64), rep("a", 65), rep("ø", 64),
		rep("ø", 65), rep("a", 99), rep("a", 100), rep("a", 101), rep("€", 100), rep("€", 101), rep("a", 254),
		rep("a", 255), rep("a", 256), rep("😀", 255), rep("😀", 256), rep("a", 2048), rep("a", 2049)}
	ids := []string{"acme", "acme-shop", "-acme", "Acme", "a_b", "0", rep("a", 63), rep("a", 64), "ø"}
	urls := []string{"http://a", "https://shop.example/o/1?key=k#x", "http://127.0.0.1:8080//checkout/?key=a%20b",
		"HTTP://A/", "ftp://a/", "http://", "https://", "http:///x", "http://a b/", "http://a/b c", "http://u@a/",
		"http://u:p@a/", "//a/b", "/a", "a", "http://[::1]/", "http://[zz]/", "http://a:99999/", "http://a/%zz",
		"http://a/\u00e6", "http://a/\x01", "http://a\tb/", "https://a/" + rep("x", 2030), "https://a/" + rep("x", 2050),
		"http://a?b", "http://a#b", "http://a/?q=<>"}
	phones := []string{"91234567", "9123456", "912345678", "+4791234567", "9123 4567", "９１２３４５６７", "abcdefgh", ""}
	enums := []string{"NOK", "nok", "SEK", "WEB_REDIRECT", "web_redirect", "NATIVE_REDIRECT", "PUSH_MESSAGE", "QR",
		"qr", " QR"}
	ints := []int64{math.MinInt64, -1, 0, 1, 2, 99, 100, 101, 999999, 1000000, 1000001, 64999999, 65000000, 65000001,
		1 << 53, math.MaxInt64}

	var out []payment.Checkout
	for _, base := range bases {
		out = append(out, base)
		vary := func(f func(co *payment.Checkout)) {
			co := base
			co.Lines = append([]payment.Line(nil), base.Lines...)
			if base.Customer != nil {
				c := *base.Customer
				co.Customer = &c
			}
			f(&co)
			out = append(out, co)
		}
		for _, s := range append(append(slicesConcat(texts, ids), urls...), enums...) {
			vary(func(co *payment.Checkout) { co.Merchant = s })
			vary(func(co *payment.Checkout) { co.Reference = s })
			vary(func(co *payment.Checkout) { co.Description = s })
			vary(func(co *payment.Checkout) { co.Currency = s })
			vary(func(co *payment.Checkout) { co.UserFlow = s })
			vary(func(co *payment.Checkout) { co.ReturnURL = s })
			vary(func(co *payment.Checkout) {
				co.Lines = append(co.Lines, payment.Line{SKU: s, Name: "x", Quantity: 1, UnitPrice: 100})
			})
			vary(func(co *payment.Checkout) {
				co.Lines = append(co.Lines, payment.Line{Name: s, Quantity: 1, UnitPrice: 100})
			})
		}
		for _, s := range append(phones, texts...) {
			vary(func(co *payment.Checkout) { co.Customer = &payment.Customer{PhoneNumber: s} })
		}
		for _, n := range ints {
			vary(func(co *payment.Checkout) { co.Amount = n })
			vary(func(co *payment.Checkout) {
				co.Lines = append(co.Lines, payment.Line{Name: "x", Quantity: n, UnitPrice: 1})
			})
			vary(func(co *payment.Checkout) {
				co.Lines = append(co.Lines, payment.Line{Name: "x", Quantity: 1, UnitPrice: n})
			})
		}
		for _, n := range []int{0, 1, 499, 500, 501} {
			vary(func(co *payment.Checkout) {
				co.Lines = make([]payment.Line, n)
				for i := range co.Lines {
					co.Lines[i] = payment.Line{Name: "x", Quantity: 1, UnitPrice: int64(i)}
				}
			})
		}
		vary(func(co *payment.Checkout) { co.Customer = nil })
		vary(func(co *payment.Checkout) { co.Customer = &payment.Customer{} })
		vary(func(co *payment.Checkout) { co.Lines = []payment.Line{} })
	}
	return out
}

func slicesConcat(a, b []string) []string { return append(append([]string(nil), a...), b...) }

// TestValidateCheckoutAgreesWithSchema holds the rules read from the schema to the validator: on every
// checkout of the corpus, ValidateCheckout gives what the validator gives for its encoding (nil or the
// same violations), and the rules alone accept exactly the checkouts the validator accepts, except those
// with invalid UTF-8, which they leave to the validator.
func TestValidateCheckoutAgreesWithSchema(t *testing.T) {
	s := compileT(t)
	if s.checkout == nil {
		t.Fatal("the rules of checkout.schema.json could not be read: every checkout takes the validator's path")
	}
	corpus := checkoutCorpus(t)
	accepted, refused := 0, 0
	for i := range corpus {
		co := &corpus[i]
		doc, err := json.Marshal(co)
		if err != nil {
			t.Fatal(err)
		}
		want := s.Validate(Checkout, doc)
		got := s.ValidateCheckout(co)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ValidateCheckout(%s) = %v, the validator says %v", doc, got, want)
		}
		fast := s.checkout.accepts(co)
		switch {
		case fast && want != nil:
			t.Fatalf("the rules accept %s, which the schema refuses: %v", doc, want)
		case !fast && want == nil && validUTF8(co):
			t.Errorf("the rules refuse %s, which the schema accepts", doc)
		}
		if want == nil {
			accepted++
		} else {
			refused++
		}
	}
	t.Logf("%d checkouts: %d accepted, %d refused", len(corpus), accepted, refused)
	if accepted < 1000 || refused < 1000 {
		t.Fatalf("the corpus is lopsided: %d accepted, %d refused", accepted, refused)
	}
}

func validUTF8(co *payment.Checkout) bool {
	strs := []string{co.Merchant, co.Reference, co.Currency, co.Description, co.ReturnURL, co.UserFlow}
	if co.Customer != nil {
		strs = append(strs, co.Customer.PhoneNumber)
	}
	for _, l := range co.Lines {
		strs = append(strs, l.SKU, l.Name)
	}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// TestCheckoutRulesRefuseUnknownSchemas checks that a schema saying anything the rules reader does not
// know leaves every checkout to the validator, rather than being half applied.
func TestCheckoutRulesRefuseUnknownSchemas(t *testing.T) {
	raw, err := embedded.ReadFile(Checkout)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(root map[string]any)
	}{
		{"as embedded", func(map[string]any) {}},
		{"uniqueItems on lines", func(r map[string]any) { prop(r, "lines")["uniqueItems"] = true }},
		{"customer required", func(r map[string]any) { r["required"] = append(r["required"].([]any), "customer") }},
		{"sku required", func(r map[string]any) {
			line := r["$defs"].(map[string]any)["line"].(map[string]any)
			line["required"] = append(line["required"].([]any), "sku")
		}},
		{"phone required", func(r map[string]any) {
			r["$defs"].(map[string]any)["customer"].(map[string]any)["required"] = []any{"phoneNumber"}
		}},
		{"a member the Go type lacks", func(r map[string]any) {
			r["properties"].(map[string]any)["note"] = map[string]any{"type": "string"}
		}},
		{"a member of the Go type missing", func(r map[string]any) { delete(r["properties"].(map[string]any), "userFlow") }},
		{"additional members allowed", func(r map[string]any) { r["additionalProperties"] = true }},
		{"multipleOf", func(r map[string]any) { prop(r, "amount")["multipleOf"] = 100 }},
		{"exclusiveMaximum", func(r map[string]any) { prop(r, "amount")["exclusiveMaximum"] = 100000 }},
		{"a fractional minimum", func(r map[string]any) { prop(r, "amount")["minimum"] = 0.5 }},
		{"a number type", func(r map[string]any) { prop(r, "amount")["type"] = "number" }},
		{"two types", func(r map[string]any) { prop(r, "userFlow")["type"] = []any{"string", "null"} }},
		{"an unknown format", func(r map[string]any) { prop(r, "description")["format"] = "no-such-format" }},
		{"a const", func(r map[string]any) { prop(r, "currency")["const"] = "NOK" }},
		{"not", func(r map[string]any) { prop(r, "reference")["not"] = map[string]any{"const": "x"} }},
		{"allOf", func(r map[string]any) { r["allOf"] = []any{map[string]any{"required": []any{"lines"}}} }},
		{"a non-string enum", func(r map[string]any) { prop(r, "currency")["enum"] = []any{"NOK", 1} }},
		{"dependentRequired", func(r map[string]any) {
			r["dependentRequired"] = map[string]any{"userFlow": []any{"customer"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var root map[string]any
			if err := json.Unmarshal(raw, &root); err != nil {
				t.Fatal(err)
			}
			tc.edit(root)
			edited, _ := json.Marshal(root)
			sch, blank := compileEdited(t, edited)
			rules := readCheckoutRules(newRuleReader(blank).rule(sch))
			if got, want := rules != nil, tc.name == "as embedded"; got != want {
				t.Fatalf("rules read: %v, want %v", got, want)
			}
		})
	}
}

func prop(root map[string]any, name string) map[string]any {
	return root["properties"].(map[string]any)[name].(map[string]any)
}

// wooCheckout is the checkout the WooCommerce adapter makes of its order.created fixture.
var wooCheckout = payment.Checkout{Merchant: "woo", Reference: "727", Amount: 2935, Currency: "NOK",
	Description: "Order 727", ReturnURL: "http://127.0.0.1:1234//checkout/order-received/727/?key=wc_order_58d2d042d1d",
	Lines: []payment.Line{{Name: "2 × Woo Single #1", Quantity: 1, UnitPrice: 645},
		{SKU: "Bar3", Name: "Ship Your Idea – Color: Black, Size: M Test", Quantity: 1, UnitPrice: 1290}}}

// BenchmarkValidateCheckoutValue compares ValidateCheckout with what the hooks did before it: encode the
// checkout, decode it and walk the schema.
func BenchmarkValidateCheckoutValue(b *testing.B) {
	s := compileT(b)
	b.Run("rules", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.ValidateCheckout(&wooCheckout); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode+walk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			doc, _ := json.Marshal(&wooCheckout)
			v, _ := decodeDocument(doc)
			if err := s.walk(Checkout, s.schemas[Checkout], v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCheckoutDocumentRulesAgreeWithSchema holds the rules to the validator for documents, as Validate
// decodes them: the testdata documents, the encodings of the checkout corpus, and documents made from
// accepted ones by deleting each member, setting it to values of every JSON type (integers written as
// 1.0 and 1e2, beyond int64, around each bound; empty strings, arrays and objects; null), adding unknown
// members and renaming members in another case. The rules accept exactly the documents the validator
// accepts.
func TestCheckoutDocumentRulesAgreeWithSchema(t *testing.T) {
	s := compileT(t)
	docs := testdataBodies(t, Checkout)
	var accepted [][]byte
	for _, co := range checkoutCorpus(t) {
		doc, err := json.Marshal(co)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
		if len(accepted) < 60 && s.Validate(Checkout, doc) == nil {
			accepted = append(accepted, doc)
		}
	}
	values := []any{nil, true, "x", "", json.Number("0"), json.Number("1"), json.Number("1.0"), json.Number("1e2"),
		json.Number("-1"), json.Number("100"), json.Number("99999999999999999999"), json.Number("65000000"),
		json.Number("65000001"), json.Number("1000001"), []any{}, []any{"x"}, map[string]any{},
		map[string]any{"phoneNumber": "91234567"}, "91234567", "NOK", "QR", "http://a/"}
	var trees []any
	for _, doc := range accepted {
		fresh := func() map[string]any {
			v, bad := decodeDocument(doc)
			if bad != nil {
				t.Fatal(bad)
			}
			return v.(map[string]any)
		}
		// Each object in the document whose members are varied: the root, the customer and the first line.
		objects := func(root map[string]any) []map[string]any {
			out := []map[string]any{root}
			if c, ok := root["customer"].(map[string]any); ok {
				out = append(out, c)
			}
			if ls, ok := root["lines"].([]any); ok && len(ls) > 0 {
				out = append(out, ls[0].(map[string]any))
			}
			return out
		}
		for i := range objects(fresh()) {
			names := []string{"x", "Amount", "phonenumber", "SKU"}
			for name := range objects(fresh())[i] {
				names = append(names, name)
			}
			for _, name := range names {
				root := fresh()
				delete(objects(root)[i], name)
				trees = append(trees, root)
				for _, v := range values {
					root := fresh()
					objects(root)[i][name] = v
					trees = append(trees, root)
				}
			}
		}
		root := fresh()
		root["lines"] = []any{"x"}
		trees = append(trees, root)
	}
	for _, doc := range docs {
		if v, bad := decodeDocument(doc); bad == nil {
			trees = append(trees, v)
		}
	}
	agreed, acceptedN := rulesAgree(t, s, Checkout, trees)
	t.Logf("%d documents, %d accepted", agreed, acceptedN)
	if acceptedN < 1000 || agreed-acceptedN < 1000 {
		t.Fatalf("the corpus is lopsided: %d of %d accepted", acceptedN, agreed)
	}
}

// BenchmarkValidateCheckoutDocument measures Validate on the WooCommerce fixture's checkout as a
// document (POST /v1/checkouts' path): with the rules, and with the validator's walk alone.
func BenchmarkValidateCheckoutDocument(b *testing.B) {
	s := compileT(b)
	doc, err := json.Marshal(&wooCheckout)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("rules", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Validate(Checkout, doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("walk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, _ := decodeDocument(doc)
			if err := s.walk(Checkout, s.schemas[Checkout], v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
