package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/kassehq/kasse/adapters/adaptertest"
)

// ruledCorpus says where the real bodies of a ruled schema (but the checkout, see checkout_test.go) are,
// besides its testdata documents: the plugin's golden inputs of one operation, whose callback member is a
// body Vipps sends (none for the shop API's operation body).
type ruledCorpus struct {
	goldens, op string // the plugin's golden directory and the operation whose inputs hold bodies
	// minInputs and minBodies bound how many there must be, so that a moved directory cannot make the
	// differential test pass on nothing.
	minInputs, minBodies int
	// minTrees bounds how many of the trees TestDocumentRulesAgreeWithSchema judges must be accepted, and
	// how many refused, so that both sides of every bound are exercised.
	minTrees int
}

// ruledBodies are the corpora of the ruled schemas. The operation body has two members, so fewer of its
// trees are accepted: each member set to each boundary value, of which few are in its ranges.
var ruledBodies = map[string]ruledCorpus{
	VippsEcomCallback:        {"../plugin/vippsecom/testdata/golden", "read_callback", 10, 20, 1000},
	VippsEPaymentWebhook:     {"../plugin/vippsepayment/testdata/golden", "read_callback", 10, 20, 1000},
	VippsEcomShippingDetails: {"../plugin/vippsecom/testdata/golden", "shipping_options", 5, 15, 1000},
	Operation:                {"", "", 0, 10, 400},
}

// testdataBodies returns the documents (not the goldens) of a schema's testdata.
func testdataBodies(t testing.TB, name string) [][]byte {
	t.Helper()
	var bodies [][]byte
	docs, err := filepath.Glob(filepath.Join("testdata", testdataDir(name), "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range docs {
		if !strings.HasSuffix(p, ".golden.json") {
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			bodies = append(bodies, raw)
		}
	}
	return bodies
}

// goldenBody returns the callback member of a plugin's golden input, compacted, or nil when it has none.
func goldenBody(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var in struct{ Callback json.RawMessage }
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(in.Callback) == 0 {
		return nil // the plugin's refusal of a missing body
	}
	var body bytes.Buffer
	if err := json.Compact(&body, in.Callback); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return body.Bytes()
}

func realBodies(t testing.TB, name string) [][]byte {
	t.Helper()
	c := ruledBodies[name]
	bodies := testdataBodies(t, name)
	var inputs []string
	if c.goldens != "" {
		var err error
		if inputs, err = filepath.Glob(filepath.Join(c.goldens, c.op+"-*.input.json")); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range inputs {
		if body := goldenBody(t, p); body != nil {
			bodies = append(bodies, body)
		}
	}
	if len(inputs) < c.minInputs || len(bodies) < c.minBodies {
		t.Fatalf("%s: only %d bodies (%d golden inputs)", name, len(bodies), len(inputs))
	}
	return bodies
}

// validateByWalk is Validate without the rules: the validator decides.
func validateByWalk(s *Set, name string, doc []byte) error {
	v, bad := decodeDocument(doc)
	if bad != nil {
		return &ValidationError{Schema: name, Violations: []Violation{*bad}}
	}
	var out []Violation
	if err := checkValue(v, nil, &out); err != nil {
		return err
	}
	if len(out) > 0 {
		return &ValidationError{Schema: name, Violations: sortViolations(out)}
	}
	return s.walk(name, s.schemas[name], v)
}

// treeVariants returns documents made from the decoded document doc: in each object in it, each member
// (and a member named x) deleted and set to each of values.
func treeVariants(t testing.TB, doc []byte, values []any) []any {
	t.Helper()
	fresh := func() any {
		v, bad := decodeDocument(doc)
		if bad != nil {
			t.Fatal(bad)
		}
		return v
	}
	var objects [][]string // the pointers to the objects, as tokens
	var find func(v any, path []string)
	find = func(v any, path []string) {
		switch v := v.(type) {
		case map[string]any:
			objects = append(objects, path)
			for k, e := range v {
				find(e, append(path[:len(path):len(path)], k))
			}
		case []any:
			for i, e := range v {
				find(e, append(path[:len(path):len(path)], strconv.Itoa(i)))
			}
		}
	}
	find(fresh(), nil)
	var out []any
	for _, path := range objects {
		at := func(root any) map[string]any {
			v, _ := resolve(root, joinPointer(path))
			return v.(map[string]any)
		}
		names := []string{"x"} // JSONVariants gives the members' names in other cases
		for name := range at(fresh()) {
			names = append(names, name)
		}
		for _, name := range names {
			root := fresh()
			delete(at(root), name)
			out = append(out, root)
			for _, v := range values {
				root := fresh()
				at(root)[name] = v
				out = append(out, root)
			}
		}
	}
	return out
}

// rulesAgree checks that the rules of the schema name accept exactly the trees, of those checkValue finds
// in range, that the validator accepts. It returns how many were judged and accepted.
func rulesAgree(t *testing.T, s *Set, name string, trees []any) (judged, accepted int) {
	t.Helper()
	r := s.rules[name]
	for _, v := range trees {
		var out []Violation
		if err := checkValue(v, nil, &out); err != nil || len(out) > 0 {
			continue
		}
		want := s.walk(name, s.schemas[name], v) == nil
		if got := r.accepts(v); got != want {
			b, _ := json.Marshal(v)
			t.Fatalf("%s: the rules accept %s: %v, the validator: %v", name, b, got, want)
		}
		judged++
		if want {
			accepted++
		}
	}
	return judged, accepted
}

// boundaryValues are values around the limits of the ruled schemas: numbers around each bound, as
// integers, decimals and with exponents, beyond int64; strings around each length limit, pattern (Arabic-
// Indic digits for \d), enum and format; and values of every JSON type.
func boundaryValues() []any {
	var values []any
	for _, n := range []string{"0", "-0", "-1", "1", "0.5", "1.0", "1e2", "1E+2", "-0.0", "0e0", "654.0", "654.5",
		"999", "1000", "9999", "999999", "1000000", "1000000.0", "65000000", "65000001", "64999999.5", "9999999999",
		"10000000000", "100000000000", "100000000000.0", "100000000000.5", "99999999999.5", "100000000001", "1e11",
		"1.00000000001e11", "1e-400", "-1e-400", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"-9223372036854775809", "99999999999999999999", "-99999999999999999999", "9.3e18", "-9.3e18", "123456",
		"1234", "123", "99", "100", "100.0", "101", "65000000.0", "64999999"} {
		values = append(values, json.Number(n))
	}
	rep := strings.Repeat
	for _, s := range []string{"", " ", "x", "123456", "1234", "123", "1234567", "12345678901", "12a456", "9999999999",
		"NOK", "nok", "DKK", "EUR", "SEK", "AUTHORIZED", "authorized", "A", "_A", "A_", rep("A", 40), rep("A", 41),
		"kq3x7mfa2bcdeghijklmnprstv", "abc-1234", "abc_1234", "abc-123", rep("a", 50), rep("a", 51), rep("a", 20),
		rep("a", 21), rep("ø", 20), rep("ø", 21), rep("a", 100), rep("a", 101), rep("€", 100), rep("€", 101),
		rep("a", 200), rep("a", 201), rep("a", 1000), rep("a", 1001), rep("😀", 1000), rep("😀", 1001),
		"2026-11-25T12:48:46.260Z", "2026-11-25T12:48:46Z", "2026-11-25T12:48:46", "2026-13-25T12:48:46Z",
		"2026-11-25t12:48:46+01:00", "RESERVED", "RESERVE", "Y", "\u00e9", "a\u0000b", "0154", "0154 ", "01540",
		"\u0660\u0661\u0662\u0663", "H", "W", "O", "h", "HW", "[A-Z]", "Norway", "NO"} {
		values = append(values, s)
	}
	return append(values, nil, true, false, []any{}, []any{json.Number("1")}, map[string]any{},
		map[string]any{"zipCode": "9008"}, map[string]any{"postCode": "9008"}, map[string]any{"zipCode": json.Number("1")},
		map[string]any{"currency": "NOK", "value": json.Number("100")}, map[string]any{"x": nil})
}

// TestDocumentRulesAgreeWithSchema holds the rules of the ruled schemas (the callbacks', the Express
// shipping question's and the operation body's) to the validator: on the real bodies and the variants
// adaptertest.JSONVariants makes of them (bytes deleted and replaced, member names changed, values of
// every JSON type, repeated members), Validate gives what the validator alone gives (nil or the same
// violations); and on those bodies' trees and their variants (each member of each object deleted and set
// to values around every bound of the schemas, unknown members added) the rules accept exactly what the
// validator accepts.
func TestDocumentRulesAgreeWithSchema(t *testing.T) {
	s := compileT(t)
	values := boundaryValues()
	for name := range ruledBodies {
		t.Run(name, func(t *testing.T) {
			if s.rules[name] == nil {
				t.Fatalf("the rules of %s could not be read: its documents take the validator's path", name)
			}
			var trees []any
			docs, same := 0, 0
			for _, body := range realBodies(t, name) {
				for _, doc := range adaptertest.JSONVariants(body) {
					want := validateByWalk(s, name, doc)
					if got := s.Validate(name, doc); !reflect.DeepEqual(got, want) {
						t.Fatalf("Validate(%s) = %v, the validator says %v", doc, got, want)
					}
					docs++
					if v, bad := decodeDocument(doc); bad == nil {
						trees = append(trees, v)
					}
				}
				if _, bad := decodeDocument(body); bad == nil {
					trees = append(trees, treeVariants(t, body, values)...)
				}
				same++
			}
			judged, accepted := rulesAgree(t, s, name, trees)
			t.Logf("%d bodies, %d variants of them validated the same; %d trees judged, %d accepted", same, docs,
				judged, accepted)
			if min := ruledBodies[name].minTrees; accepted < min || judged-accepted < min {
				t.Fatalf("the corpus is lopsided: %d of %d accepted", accepted, judged)
			}
		})
	}
}

func TestEveryRuledSchemaHasRules(t *testing.T) {
	s := compileT(t)
	for _, name := range s.Names() {
		if got := s.rules[name] != nil; got != ruled(name) {
			t.Errorf("%s: rules read %v, ruled %v", name, got, ruled(name))
		}
	}
}

// compileEdited compiles the schema doc (which refers to no other file) and an empty schema, for a rule
// reader.
func compileEdited(t *testing.T, doc []byte) (sch, blank *jsonschema.Schema) {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	c.RegisterExtension(integerLiteralExt, nil, integerLiteral{})
	for name, doc := range map[string]string{"edited.json": string(doc), "blank.json": "{}"} {
		if err := c.AddResource(BaseURL+name, strings.NewReader(doc)); err != nil {
			t.Fatal(err)
		}
	}
	sch, err1 := c.Compile(BaseURL + "edited.json")
	blank, err2 := c.Compile(BaseURL + "blank.json")
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return sch, blank
}

// TestDocumentRulesRefuseUnknownKeywords checks that a ruled schema with a keyword the rule reader does not
// know, at its root or deep inside, has no rules (its documents go to the validator), rather than rules
// that ignore the keyword.
func TestDocumentRulesRefuseUnknownKeywords(t *testing.T) {
	// Where each schema is edited besides its root: a number deep inside.
	deep := map[string]string{
		Checkout:                 "/$defs/line/properties/quantity",
		VippsEcomCallback:        "/$defs/transactionInfo/properties/amount",
		VippsEPaymentWebhook:     "/properties/amount/properties/value",
		VippsEcomShippingDetails: "/properties/addressId",
		Operation:                "/properties/amount",
	}
	edits := map[string]any{
		"uniqueItems": true, "const": "x", "not": map[string]any{}, "allOf": []any{map[string]any{}},
		"oneOf": []any{map[string]any{}}, "if": map[string]any{"required": []any{"a"}}, "multipleOf": 2,
		"exclusiveMinimum": 0, "exclusiveMaximum": 10, "minimum": 0.5, "maximum": 1e20, "format": "no-such-format",
		"enum": []any{"a", 1}, "dependentRequired": map[string]any{"a": []any{"b"}},
		"dependentSchemas": map[string]any{"a": map[string]any{}}, "patternProperties": map[string]any{"^x": map[string]any{}},
		"additionalProperties": map[string]any{"type": "string"}, "propertyNames": map[string]any{"maxLength": 3},
		"minProperties": 1, "maxProperties": 9, "unevaluatedProperties": false, "prefixItems": []any{map[string]any{}},
		"contains": map[string]any{}, "contentEncoding": "base64",
		"properties": map[string]any{"self": map[string]any{"$ref": "#"}},
	}
	for name := range deep {
		raw, err := embedded.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, place := range []string{"", deep[name]} {
			names := []string{"(none)"}
			for kw := range edits {
				names = append(names, kw)
			}
			for _, kw := range names {
				t.Run(fmt.Sprintf("%s%s/%s", name, place, kw), func(t *testing.T) {
					// Exact numbers: a bound such as the largest int64 must survive the round trip.
					root, err := decodeSchema(raw)
					if err != nil {
						t.Fatal(err)
					}
					at, ok := resolve(root, place)
					if !ok {
						t.Fatalf("no %s in %s", place, name)
					}
					if kw != "(none)" {
						at.(map[string]any)[kw] = edits[kw]
					}
					root["$id"] = BaseURL + "edited.json"
					doc, _ := json.Marshal(root)
					sch, blank := compileEdited(t, doc)
					r := newRuleReader(blank).rule(sch)
					if got, want := r != nil, kw == "(none)"; got != want {
						t.Fatalf("rules read: %v, want %v", got, want)
					}
				})
			}
		}
	}
}

// numberLiterals are JSON number literals around the int64 range and integer bounds: integers, decimals
// and exponents, both signs.
func numberLiterals() []string {
	var lits []string
	for _, sign := range []string{"", "-"} {
		for _, whole := range []string{"0", "1", "9", "10", "123", "922337203685477580", "9223372036854775807",
			"9223372036854775808", "9223372036854775809", "99999999999999999999"} {
			for _, fraction := range []string{"", ".0", ".5", ".000", ".001", ".10", ".9999999999999999999999"} {
				for _, exp := range []string{"", "e0", "e1", "e-1", "e+2", "E-3", "e18", "e19", "e-20", "e400", "e-400"} {
					lits = append(lits, sign+whole+fraction+exp)
				}
			}
		}
	}
	return lits
}

func rat(t *testing.T, lit string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(lit)
	if !ok {
		t.Fatalf("big.Rat cannot read %s", lit)
	}
	return r
}

// TestParseNumber holds parseNumber to exact rational arithmetic.
func TestParseNumber(t *testing.T) {
	minInt, maxInt := big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)
	for _, lit := range numberLiterals() {
		r := rat(t, lit)
		fl := new(big.Int).Div(r.Num(), r.Denom()) // Euclidean: the floor, as the denominator is positive
		wantOver := 0
		switch {
		case fl.Cmp(maxInt) > 0:
			wantOver = 1
		case fl.Cmp(minInt) < 0:
			wantOver = -1
		}
		floor, frac, over := parseNumber(lit)
		if frac != !r.IsInt() || over != wantOver || over == 0 && floor != fl.Int64() {
			t.Errorf("parseNumber(%s) = %d, %v, %d; want %s, %v, %d", lit, floor, frac, over, fl, !r.IsInt(), wantOver)
		}
	}
}

// TestNumRule holds numRule to the validator's arithmetic (big.Rat comparisons and multipleOf 1) for
// bounds around zero and the int64 limits, each present or absent.
func TestNumRule(t *testing.T) {
	bounds := []int64{math.MinInt64, -1, 0, 1, 9, 10, 123, math.MaxInt64 - 1, math.MaxInt64}
	for _, lit := range numberLiterals() {
		v := rat(t, lit)
		floor, frac, over := parseNumber(lit)
		for _, whole := range []bool{false, true} {
			for i := -1; i < len(bounds); i++ {
				for j := -1; j < len(bounds); j++ {
					r := numRule{whole: whole}
					want := !whole || v.IsInt()
					if i >= 0 {
						r.min, r.hasMin = bounds[i], true
						want = want && v.Cmp(new(big.Rat).SetInt64(r.min)) >= 0
					}
					if j >= 0 {
						r.max, r.hasMax = bounds[j], true
						want = want && v.Cmp(new(big.Rat).SetInt64(r.max)) <= 0
					}
					if got := r.ok(floor, frac, over); got != want {
						t.Fatalf("%+v.ok(%s) = %v, want %v", r, lit, got, want)
					}
				}
			}
		}
	}
}

// BenchmarkValidateCallback measures Validate on the bodies of the ruled request-path documents: a real
// eCom callback body (the Express one, the largest of the golden bodies, and a regular one), an ePayment
// webhook event, an Express shipping question (the guide's example) and a capture body; with the rules,
// and with the validator's walk alone.
func BenchmarkValidateCallback(b *testing.B) {
	s := compileT(b)
	for _, tc := range []struct{ name, schema, file, body string }{
		{"ecom-reserved", VippsEcomCallback, "read_callback-reserved.input.json", ""},
		{"ecom-express", VippsEcomCallback, "read_callback-express-shipping-in-amount-postcode.input.json", ""},
		{"epayment-authorized", VippsEPaymentWebhook, "read_callback-authorized.input.json", ""},
		{"ecom-shipping-details", VippsEcomShippingDetails, "shipping_options-oslo-norway-postcode.input.json", ""},
		{"operation-capture", Operation, "", `{"amount":100,"text":"Order 1234 shipped"}`},
	} {
		body := []byte(tc.body)
		if tc.file != "" {
			body = goldenBody(b, filepath.Join(ruledBodies[tc.schema].goldens, tc.file))
		}
		b.Run(tc.name+"/rules", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Validate(tc.schema, body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/walk", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := validateByWalk(s, tc.schema, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
