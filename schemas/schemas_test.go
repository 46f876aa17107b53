package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/kassehq/kasse/host/payment"
	"github.com/kassehq/kasse/plugin/abi"
)

var update = flag.Bool("update", false, "rewrite the *.golden.json files under testdata from the current output")

// owned lists the schemas this package's testdata must cover; other embedded schemas are tested if they
// have a testdata directory.
var owned = []string{Checkout, Session, PluginInput, PluginOutput, VippsEcomCallback, VippsEcomShippingDetails, Operation, Problem}

func compileT(tb testing.TB) *Set {
	tb.Helper()
	s, err := Compile()
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	return s
}

// testdataDir is the directory under testdata for a schema: its file name without ".schema.json".
func testdataDir(name string) string { return strings.TrimSuffix(name, ".schema.json") }

func TestCompile(t *testing.T) {
	s := compileT(t)
	files, err := fs.Glob(FS(), "*.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Names(); !reflect.DeepEqual(got, files) {
		t.Errorf("Names() = %v, want every embedded file %v", got, files)
	}
	for _, name := range append([]string{Config}, owned...) {
		if name == Config {
			if _, err := fs.Stat(FS(), Config); err != nil {
				continue // written by the config owner; compiled as soon as it exists
			}
		}
		if _, ok := s.schemas[name]; !ok {
			t.Errorf("schema %s not compiled", name)
		}
	}
}

func TestUnknownSchema(t *testing.T) {
	s := compileT(t)
	err := s.Validate("nope.schema.json", []byte(`{}`))
	if !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("Validate(unknown) = %v, want ErrUnknownSchema", err)
	}
	if want := `schemas: "nope.schema.json": unknown schema`; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if err := s.ValidateValue("nope.schema.json", map[string]any{}); !errors.Is(err, ErrUnknownSchema) {
		t.Errorf("ValidateValue(unknown) = %v, want ErrUnknownSchema", err)
	}
}

// strictDecoders decode a valid document into the Go type the schema describes, refusing unknown fields,
// so that the schema and the Go type cannot drift apart.
var strictDecoders = map[string]func([]byte) error{
	Checkout:     func(b []byte) error { return decodeStrict(b, &payment.Checkout{}) },
	Session:      func(b []byte) error { return decodeStrict(b, &payment.Session{}) },
	PluginInput:  func(b []byte) error { return decodeStrict(b, &abi.Input{}) },
	PluginOutput: func(b []byte) error { return decodeStrict(b, &abi.Output{}) },
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

type testdoc struct {
	schema, kind, path string
}

func testdocs(t *testing.T) []testdoc {
	t.Helper()
	s := compileT(t)
	var docs []testdoc
	for _, name := range s.Names() {
		for _, kind := range []string{"valid", "invalid"} {
			paths, err := filepath.Glob(filepath.Join("testdata", testdataDir(name), kind, "*.json"))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				if !strings.HasSuffix(p, ".golden.json") {
					docs = append(docs, testdoc{name, kind, p})
				}
			}
		}
	}
	return docs
}

func TestTestdataCoverage(t *testing.T) {
	docs := testdocs(t)
	count := map[string]int{}
	inputs := map[string]bool{}
	for _, d := range docs {
		count[d.schema+"/"+d.kind]++
		inputs[d.path] = true
	}
	for _, name := range owned {
		for _, kind := range []string{"valid", "invalid"} {
			if count[name+"/"+kind] == 0 {
				t.Errorf("no %s documents for %s under testdata/%s/%s", kind, name, testdataDir(name), kind)
			}
		}
	}
	goldens, err := filepath.Glob("testdata/*/*/*.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		return
	}
	for _, g := range goldens {
		if !inputs[strings.TrimSuffix(g, ".golden.json")+".json"] {
			t.Errorf("%s has no input document", g)
		}
	}
}

func TestTestdata(t *testing.T) {
	s := compileT(t)
	for _, d := range testdocs(t) {
		t.Run(strings.TrimPrefix(d.path, "testdata/"), func(t *testing.T) {
			doc, err := os.ReadFile(d.path)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Validate(d.schema, doc)
			if d.kind == "valid" {
				if err != nil {
					t.Fatalf("valid document refused: %v", err)
				}
				if decode := strictDecoders[d.schema]; decode != nil {
					if err := decode(doc); err != nil {
						t.Errorf("valid document does not decode into the Go type: %v", err)
					}
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v (%T), want *ValidationError", err, err)
			}
			if ve.Schema != d.schema || len(ve.Violations) == 0 {
				t.Fatalf("ValidationError{Schema: %q, %d violations}", ve.Schema, len(ve.Violations))
			}
			checkGolden(t, strings.TrimSuffix(d.path, ".json")+".golden.json", ve.Violations)
			checkProblem(t, s, ve)
		})
	}
}

func checkGolden(t *testing.T, path string, got []Violation) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(got); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	if *update {
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("violations differ from %s\ngot:\n%s\nwant:\n%s", path, out, want)
	}
}

// checkProblem checks that the violations make a problem document that problem.schema.json accepts, as the
// HTTP layer will send them.
func checkProblem(t *testing.T, s *Set, ve *ValidationError) {
	t.Helper()
	doc, err := json.Marshal(map[string]any{
		"type": "https://kasse.dev/problems/invalid-input", "title": "Invalid input", "status": 422,
		"detail": ve.Error(), "errors": ve.Violations,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(Problem, doc); err != nil {
		t.Errorf("violations do not make a valid problem document: %v", err)
	}
}

// TestValidateValue checks that validating an already decoded document gives what Validate gives.
func TestValidateValue(t *testing.T) {
	s := compileT(t)
	for _, d := range testdocs(t) {
		doc, err := os.ReadFile(d.path)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil || dec.More() {
			continue // a syntax error case
		}
		want := s.Validate(d.schema, doc)
		got := s.ValidateValue(d.schema, v)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: ValidateValue = %v, Validate = %v", d.path, got, want)
		}
	}
}

func TestValidateValueRefusesGoValues(t *testing.T) {
	s := compileT(t)
	for _, v := range []any{
		payment.Checkout{Merchant: "acme-shop"},
		map[string]any{"amount": math.NaN()},
		map[string]any{"lines": []any{map[string]any{"quantity": math.Inf(1)}}},
		map[string]any{"merchant": []string{"acme-shop"}},
		map[string]any{"amount": int16(100)},
	} {
		err := s.ValidateValue(Checkout, v)
		var ve *ValidationError
		if err == nil || errors.As(err, &ve) {
			t.Errorf("ValidateValue(%#v) = %v, want a plain error", v, err)
		}
	}
	v := map[string]any{"merchant": "acme-shop", "reference": "1001", "amount": int64(100), "currency": "NOK",
		"description": "Order", "returnUrl": "https://shop.example/", "lines": []any{
			map[string]any{"name": "Socks", "quantity": 1, "unitPrice": 100.0}}}
	if err := s.ValidateValue(Checkout, v); err != nil {
		t.Errorf("ValidateValue with Go integers and a whole float64 = %v", err)
	}
}

func TestExactNumbers(t *testing.T) {
	s := compileT(t)
	callback := `{"merchantSerialNumber":"123456","orderId":"x","transactionInfo":{"amount":100000000000.000001,` +
		`"status":"RESERVED","timeStamp":"2021-10-01T12:38:54.685Z"}}`
	tests := []struct {
		name, schema, doc, want string
	}{
		{"beyond float64 precision", VippsEcomCallback, callback,
			"schemas: vipps-ecom-callback.schema.json: /transactionInfo/amount: must be <= 100000000000 but found " +
				"100000000000.000001; /transactionInfo/amount: must be a whole number of øre"},
		{"above 2^63", Session, sessionWith(t, `"revision":9223372036854775808`),
			"schemas: session.schema.json: /revision: must be <= 9007199254740991 but found 9223372036854775808"},
		{"just above 2^53", Session, sessionWith(t, `"revision":9007199254740993`),
			"schemas: session.schema.json: /revision: must be <= 9007199254740991 but found 9007199254740993"},
		{"2^53 - 1", Session, sessionWith(t, `"revision":9007199254740991`), ""},
		{"1.0 is not an integer", Session, sessionWith(t, `"revision":1.0`),
			"schemas: session.schema.json: /revision: must be an integer but found 1.0"},
		{"1e0 is not an integer", Session, sessionWith(t, `"revision":1e0`),
			"schemas: session.schema.json: /revision: must be an integer but found 1e0"},
		{"1 is an integer", Session, sessionWith(t, `"revision":1`), ""},
		{"-0 is an integer", Session, sessionWith(t, `"revision":-0`), ""},
		{"exponent too large", Session, sessionWith(t, `"revision":1E+401`),
			"schemas: session.schema.json: /revision: number must have at most 100 characters and an exponent within ±400"},
		{"exponent at the limit", Session, sessionWith(t, `"revision":1E-400`),
			"schemas: session.schema.json: /revision: must be an integer but found 1E-400"},
		{"literal too long", Session, sessionWith(t, `"revision":`+strings.Repeat("9", 101)),
			"schemas: session.schema.json: /revision: number must have at most 100 characters and an exponent within ±400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Validate(tt.schema, []byte(tt.doc))
			if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
				t.Errorf("Validate = %v\nwant %q", err, tt.want)
			}
		})
	}

	// The same callback decoded into float64 rounds to the maximum: only exact decoding catches it.
	var v any
	if err := json.Unmarshal([]byte(callback), &v); err != nil {
		t.Fatal(err)
	}
	if err := s.ValidateValue(VippsEcomCallback, v); err != nil {
		t.Errorf("float64-decoded callback: %v (the test no longer shows why numbers are decoded exactly)", err)
	}
}

// sessionWith returns testdata/session/valid/pending.json with its revision replaced by field.
func sessionWith(t *testing.T, field string) string {
	t.Helper()
	doc, err := os.ReadFile("testdata/session/valid/pending.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "revision")
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(out), "}") + "," + field + "}"
}

func TestValidationErrorMessages(t *testing.T) {
	s := compileT(t)
	tests := []struct {
		name, schema, doc, want string
	}{
		{"example from the doc", Checkout,
			`{"merchant":"acme-shop","reference":"1","amount":50,"currency":"NOK","description":"d","returnUrl":"https://a.example/"}`,
			"schemas: checkout.schema.json: /amount: must be >= 100 but found 50"},
		{"root pointer is left out", Checkout, `[]`,
			"schemas: checkout.schema.json: must be an object but found an array"},
		{"syntax error", Checkout, `{"merchant": acme}`,
			"schemas: checkout.schema.json: invalid JSON at byte offset 13: invalid character 'a' looking for beginning of value"},
		{"escaped property names", Checkout,
			`{"merchant":"a","reference":"1","amount":100,"currency":"NOK","description":"d","returnUrl":"https://a.example/",` +
				`"a/b~c":1,"it's \"q\"":2,"a b%":3,"ø":4}`,
			`schemas: checkout.schema.json: /a b%: unknown field; /a~1b~0c: unknown field; /it's "q": unknown field; /ø: unknown field`},
		{"array indexes sort numerically", Checkout,
			`{"merchant":"a","reference":"1","amount":100,"currency":"NOK","description":"d","returnUrl":"https://a.example/",` +
				`"lines":[{},{},{},{},{},{},{},{},{},{},{"name":"x","quantity":1,"unitPrice":0},{"name":"x","quantity":1}]}`,
			"schemas: checkout.schema.json: " + lineErrors(10) + "; /lines/11/unitPrice: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fmt.Sprint(s.Validate(tt.schema, []byte(tt.doc))); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func lineErrors(n int) string {
	var parts []string
	for i := 0; i < n; i++ {
		for _, f := range []string{"name", "quantity", "unitPrice"} {
			parts = append(parts, fmt.Sprintf("/lines/%d/%s: is required", i, f))
		}
	}
	return strings.Join(parts, "; ")
}

func TestQuotedNames(t *testing.T) {
	tests := map[string][]string{
		`missing properties: 'a', 'b'`:                      {"a", "b"},
		`additionalProperties 'it\'s "q"', 'x' not allowed`: {`it's "q"`, "x"},
		`additionalProperties '\t\u00e9' not allowed`:       {"\t\u00e9"},
		`no names`:          nil,
		`unterminated 'abc`: nil,
	}
	for msg, want := range tests {
		if got := quotedNames(msg); !reflect.DeepEqual(got, want) {
			t.Errorf("quotedNames(%q) = %q, want %q", msg, got, want)
		}
	}
}

// TestDescriptions checks that every property of every embedded schema, and every schema under $defs, says
// what it is: the schemas are the reference documentation of kasse's payloads.
func TestDescriptions(t *testing.T) {
	s := compileT(t)
	for _, name := range s.Names() {
		doc := s.docs[BaseURL+name].(map[string]any)
		if _, ok := doc["description"].(string); !ok {
			t.Errorf("%s: the schema has no description", name)
		}
		walkSchemas(doc, "", func(ptr string, sch map[string]any, isProperty bool) {
			if d, ok := sch["description"].(string); isProperty && (!ok || strings.TrimSpace(d) == "") {
				t.Errorf("%s#%s: property has no description", name, ptr)
			}
		})
		if defs, ok := doc["$defs"].(map[string]any); ok {
			for k, d := range defs {
				if m, ok := d.(map[string]any); ok {
					if _, ok := m["description"].(string); !ok {
						t.Errorf("%s#/$defs/%s: has no description", name, k)
					}
				}
			}
		}
	}
}

// walkSchemas calls fn for every subschema of sch, with isProperty set for members of "properties".
func walkSchemas(sch map[string]any, ptr string, fn func(ptr string, sch map[string]any, isProperty bool)) {
	visit := func(v any, p string, isProperty bool) {
		if m, ok := v.(map[string]any); ok {
			fn(p, m, isProperty)
			walkSchemas(m, p, fn)
		}
	}
	for _, kw := range []string{"properties", "patternProperties", "$defs", "dependentSchemas"} {
		if m, ok := sch[kw].(map[string]any); ok {
			for k, v := range m {
				visit(v, ptr+"/"+kw+"/"+escapeToken(k), kw == "properties")
			}
		}
	}
	for _, kw := range []string{"items", "additionalProperties", "unevaluatedProperties", "not", "if", "then", "else", "contains", "propertyNames"} {
		visit(sch[kw], ptr+"/"+kw, false)
	}
	for _, kw := range []string{"allOf", "anyOf", "oneOf", "prefixItems"} {
		if a, ok := sch[kw].([]any); ok {
			for i, v := range a {
				visit(v, fmt.Sprintf("%s/%s/%d", ptr, kw, i), false)
			}
		}
	}
}

func TestEnumsMatchGo(t *testing.T) {
	s := compileT(t)
	var ops []string
	for _, op := range append(append([]abi.Op(nil), abi.Ops...), abi.ReportOps...) {
		ops = append(ops, string(op))
	}
	var states []string
	for _, st := range payment.States {
		states = append(states, string(st))
	}
	tests := []struct {
		schema, ptr string
		want        []string
	}{
		{PluginInput, "/properties/op/enum", ops},
		{Session, "/$defs/state/enum", states},
		{Session, "/$defs/event/properties/from/enum", append([]string{""}, states...)},
		{PluginOutput, "/$defs/injection/properties/value/enum", []string{abi.InjectCallbackToken}},
		{Checkout, "/properties/userFlow/enum", []string{payment.UserFlowWebRedirect, payment.UserFlowNativeRedirect,
			payment.UserFlowPushMessage, payment.UserFlowQR}},
	}
	for _, tt := range tests {
		v, ok := resolve(s.docs[BaseURL+tt.schema], tt.ptr)
		if !ok {
			t.Errorf("%s#%s: not found", tt.schema, tt.ptr)
			continue
		}
		var got []string
		for _, e := range v.([]any) {
			got = append(got, e.(string))
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s#%s = %q, want %q", tt.schema, tt.ptr, got, tt.want)
		}
	}
}

// TestPropertiesMatchGoTypes checks that each object schema has exactly the JSON fields of its Go type, and
// requires exactly the fields the Go type always writes (those without omitempty).
func TestPropertiesMatchGoTypes(t *testing.T) {
	s := compileT(t)
	tests := []struct {
		schema, ptr string
		typ         reflect.Type
		// without lists Go fields the schema leaves out; optional lists Go fields the schema does not require.
		without, optional []string
	}{
		{Checkout, "", reflect.TypeFor[payment.Checkout](), nil, nil},
		{Checkout, "/$defs/customer", reflect.TypeFor[payment.Customer](), nil, nil},
		{Checkout, "/$defs/line", reflect.TypeFor[payment.Line](), nil, nil},
		{Checkout, "/$defs/line", reflect.TypeFor[abi.Line](), nil, nil},
		{Session, "", reflect.TypeFor[payment.Session](), []string{"callbackToken", "outbox", "noticeSeq", "nextCheckAt", "applied"},
			[]string{"revision", "operations"}},
		{Session, "/$defs/event", reflect.TypeFor[payment.Event](), nil, nil},
		{Session, "/$defs/operation", reflect.TypeFor[payment.ProviderOp](), []string{"key"}, []string{"text", "settledAt", "lastError"}},
		{PluginInput, "", reflect.TypeFor[abi.Input](), nil, nil},
		{PluginInput, "/$defs/merchant", reflect.TypeFor[abi.Merchant](), nil, nil},
		{PluginInput, "/$defs/session", reflect.TypeFor[abi.Session](), nil, nil},
		{PluginInput, "/$defs/operation", reflect.TypeFor[abi.Operation](), nil, nil},
		{PluginInput, "/$defs/response", reflect.TypeFor[abi.Response](), nil, nil},
		{PluginOutput, "", reflect.TypeFor[abi.Output](), nil, nil},
		{PluginOutput, "/$defs/error", reflect.TypeFor[abi.Error](), nil, nil},
		{PluginOutput, "/$defs/providerError", reflect.TypeFor[abi.ProviderError](), nil, nil},
		{PluginOutput, "/$defs/request", reflect.TypeFor[abi.Request](), nil, nil},
		{PluginOutput, "/$defs/injection", reflect.TypeFor[abi.Injection](), nil, nil},
		{PluginOutput, "/$defs/payment", reflect.TypeFor[abi.Payment](), nil, nil},
		{PluginOutput, "/$defs/ledgerList", reflect.TypeFor[abi.LedgerList](), nil, nil},
		{PluginOutput, "/$defs/ledger", reflect.TypeFor[abi.Ledger](), nil, nil},
		{PluginOutput, "/$defs/reportPage", reflect.TypeFor[abi.ReportPage](), nil, nil},
		{PluginOutput, "/$defs/ledgerEntry", reflect.TypeFor[abi.LedgerEntry](), nil, nil},
		{Problem, "/$defs/violation", reflect.TypeFor[Violation](), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.schema+"#"+tt.ptr, func(t *testing.T) {
			v, ok := resolve(s.docs[BaseURL+tt.schema], tt.ptr)
			if !ok {
				t.Fatalf("not found")
			}
			sch := v.(map[string]any)
			if sch["additionalProperties"] != false {
				t.Errorf("additionalProperties is %v, want false", sch["additionalProperties"])
			}
			var props, required []string
			for k := range sch["properties"].(map[string]any) {
				props = append(props, k)
			}
			if r, ok := sch["required"].([]any); ok {
				for _, e := range r {
					required = append(required, e.(string))
				}
			}
			var wantProps, wantRequired []string
			for i := 0; i < tt.typ.NumField(); i++ {
				name, opts, _ := strings.Cut(tt.typ.Field(i).Tag.Get("json"), ",")
				if name == "" || name == "-" || contains(tt.without, name) {
					continue
				}
				wantProps = append(wantProps, name)
				if !strings.Contains(opts, "omitempty") && !contains(tt.optional, name) {
					wantRequired = append(wantRequired, name)
				}
			}
			sort.Strings(props)
			sort.Strings(required)
			sort.Strings(wantProps)
			sort.Strings(wantRequired)
			if !reflect.DeepEqual(props, wantProps) {
				t.Errorf("properties = %q\nGo fields  = %q", props, wantProps)
			}
			if !reflect.DeepEqual(required, wantRequired) {
				t.Errorf("required = %q\nwant      %q", required, wantRequired)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func TestConcurrentValidate(t *testing.T) {
	s := compileT(t)
	valid, err := os.ReadFile("testdata/checkout/valid/full.json")
	if err != nil {
		t.Fatal(err)
	}
	invalid, err := os.ReadFile("testdata/checkout/invalid/lines.json")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(s.Validate(Checkout, invalid))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if err := s.Validate(Checkout, valid); err != nil {
					errs <- err
					return
				}
				if got := fmt.Sprint(s.Validate(Checkout, invalid)); got != want {
					errs <- fmt.Errorf("got %s, want %s", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func FuzzValidate(f *testing.F) {
	paths, err := filepath.Glob("testdata/checkout/*/*.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		if strings.HasSuffix(p, ".golden.json") {
			continue
		}
		doc, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(doc)
	}
	f.Add([]byte(`{"amount":1e400000000}`))
	f.Add([]byte(`{"lines":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`))
	s := compileT(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := s.Validate(Checkout, doc)
		if err == nil {
			if err := decodeStrict(doc, &payment.Checkout{}); err != nil {
				t.Fatalf("accepted a document that does not decode into payment.Checkout: %v\n%q", err, doc)
			}
			return
		}
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("Validate = %v (%T), want *ValidationError", err, err)
		}
		if len(ve.Violations) == 0 {
			t.Fatalf("ValidationError without violations for %q", doc)
		}
	})
}

func BenchmarkValidateCheckout(b *testing.B) {
	s := compileT(b)
	doc, err := os.ReadFile("testdata/checkout/valid/full.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if err := s.Validate(Checkout, doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateCheckoutInvalid(b *testing.B) {
	s := compileT(b)
	doc, err := os.ReadFile("testdata/checkout/invalid/lines.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Validate(Checkout, doc); err == nil {
			b.Fatal("invalid document accepted")
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(); err != nil {
			b.Fatal(err)
		}
	}
}
