// Package schemas owns kasse's JSON Schemas (draft 2020-12) for every payload kasse accepts or emits, and
// their compilation: the canonical checkout, the session the HTTP API returns, the plugin ABI messages, the
// Vipps eCom callback and Express shipping question, the Vipps ePayment webhook event, the capture, refund
// and cancel body, the problem document and the merchant config. The *.schema.json files are embedded in
// the binary and compiled once, at start, into a Set; Set.Validate judges a document against one of them
// and reports every offending value as a Violation with an RFC 6901 JSON pointer and a message written for
// the people who sent the document; Set.ValidateCheckout judges a checkout built in Go (a platform
// adapter's) as Validate judges its encoding, without encoding it when the schema accepts it. For the
// documents on request paths (checkouts, callbacks, Express shipping questions, webhook events, capture,
// refund and cancel bodies) Validate first applies rules read from the compiled schema at Compile, which
// only ever accept; the validator decides and explains everything else (see rule). The HTTP layer turns a
// *ValidationError into an RFC 9457 problem+json response; this package does no I/O and knows nothing
// about HTTP. It also embeds openapi.json, the OpenAPI 3.1 document of kasse's HTTP surface, whose payloads
// are references to these files (OpenAPI).
//
// # Integers
//
// Every integer in kasse's payloads ends up in a Go int64, and encoding/json refuses to decode 100.0 or
// 1e2 into one. JSON Schema calls 100.0 an integer; kasse does not: a value the schema says must be an
// integer must be written as a JSON integer literal (no fraction, no exponent), so that a document the
// schema accepts always decodes into kasse's Go types. Numbers are decoded exactly (json.Number), so values
// above 2^53 are compared with the schemas' limits without rounding. Number literals longer than 100
// characters or with an exponent beyond ±400 are refused before validation: no payload needs them and
// exact arithmetic on them is slow.
//
// # Messages
//
// A schema may carry an "errorMessage" object that maps a keyword to the message to show when that keyword
// fails at that place, e.g. {"pattern": "must be an 8-digit Norwegian mobile number"}. Other failures get a
// message generated from the keyword: "is required", "unknown field", "must be >= 100 but found 50".
// Messages never repeat a string value the pattern or format check refused, since those may be personal
// data.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// Names of the embedded schemas.
const (
	// Checkout is the canonical checkout: the body of POST /v1/checkouts (host/payment.Checkout).
	Checkout = "checkout.schema.json"
	// Session is a checkout session as the HTTP API returns it (host/payment.Session without its secret).
	Session = "session.schema.json"
	// PluginInput is the message the host sends a payment plugin (plugin/abi.Input).
	PluginInput = "plugin-input.schema.json"
	// PluginOutput is the message a payment plugin returns (plugin/abi.Output).
	PluginOutput = "plugin-output.schema.json"
	// VippsEcomCallback is the body of the callback Vipps sends to [callbackPrefix]/v2/payments/{orderId}.
	VippsEcomCallback = "vipps-ecom-callback.schema.json"
	// VippsEcomShippingDetails is the body of the Express shipping question Vipps sends to
	// [shippingDetailsPrefix]/v2/payments/{orderId}/shippingDetails (eCom ShippingCostAndMethod).
	VippsEcomShippingDetails = "vipps-ecom-shipping-details.schema.json"
	// VippsEPaymentWebhook is the body of an ePayment webhook event Vipps delivers.
	VippsEPaymentWebhook = "vipps-epayment-webhook.schema.json"
	// Problem is the RFC 9457 problem document kasse answers errors with.
	Problem = "problem.schema.json"
	// Config is the merchant config file (host/config).
	Config = "config.schema.json"
	// Operation is the optional body of a capture, refund or cancel request.
	Operation = "operation.schema.json"
	// SettlementReport is a merchant's settlement report for one ledger date (host/settlement.Report).
	SettlementReport = "settlement-report.schema.json"
)

// BaseURL is the URL the embedded schemas are known by: each file's "$id" is BaseURL followed by its file
// name, so a "$ref" to another file can name the file alone, e.g. "checkout.schema.json#/$defs/line".
const BaseURL = "https://kasse.dev/schemas/"

// ErrUnknownSchema is returned (wrapped) by Set.Validate and Set.ValidateValue for a name that is not one of
// the embedded schemas.
var ErrUnknownSchema = errors.New("unknown schema")

//go:embed *.schema.json
var embedded embed.FS

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of kasse's HTTP surface (openapi.json). Its payload schemas are
// references to the *.schema.json files by file name. The returned slice is a copy.
func OpenAPI() []byte { return bytes.Clone(openAPI) }

// FS returns the embedded schema files, one *.schema.json per schema, at the root of the file system.
func FS() fs.FS { return embedded }

// maxNumberLen and maxExponent bound the number literals Validate accepts; see "Integers" in the package doc.
const (
	maxNumberLen = 100
	maxExponent  = 400
)

// Set is the compiled form of every embedded schema. It is immutable and safe for concurrent use.
type Set struct {
	schemas map[string]*jsonschema.Schema
	// docs holds each schema file decoded, by URL, to look up keyword values when explaining a failure.
	docs map[string]any
	// rules holds the document rules Validate applies before the validator's walk, by schema name: those
	// of the schemas ruled names whose rules could be read.
	rules map[string]*rule
	// checkout is the Checkout schema's rules for ValidateCheckout; nil when they cannot be read.
	checkout *checkoutRules
}

// Compile compiles every embedded *.schema.json. References between the files are resolved among them;
// nothing is loaded from the network or the file system. It fails if a file is not a valid draft 2020-12
// schema or its "$id" is not BaseURL followed by its file name.
func Compile() (*Set, error) {
	names, err := fs.Glob(embedded, "*.schema.json")
	if err != nil {
		return nil, fmt.Errorf("schemas: list embedded files: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	c.LoadURL = func(u string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("schemas: %s is not an embedded schema", u)
	}
	c.RegisterExtension(integerLiteralExt, nil, integerLiteral{})

	set := &Set{schemas: make(map[string]*jsonschema.Schema, len(names)), docs: make(map[string]any, len(names))}
	for _, name := range names {
		data, err := fs.ReadFile(embedded, name)
		if err != nil {
			return nil, fmt.Errorf("schemas: read %s: %w", name, err)
		}
		doc, err := decodeSchema(data)
		if err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", name, err)
		}
		u := BaseURL + name
		if id, _ := doc["$id"].(string); id != u {
			return nil, fmt.Errorf("schemas: %s: $id is %q, want %q", name, id, u)
		}
		if err := c.AddResource(u, bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("schemas: add %s: %w", name, err)
		}
		set.docs[u] = doc
	}
	for _, name := range names {
		sch, err := c.Compile(BaseURL + name)
		if err != nil {
			return nil, fmt.Errorf("schemas: compile %s: %w", name, err)
		}
		set.schemas[name] = sch
	}
	if err := c.AddResource(BaseURL+"blank.json", strings.NewReader("{}")); err != nil {
		return nil, fmt.Errorf("schemas: add blank schema: %w", err)
	}
	blank, err := c.Compile(BaseURL + "blank.json")
	if err != nil {
		return nil, fmt.Errorf("schemas: compile blank schema: %w", err)
	}
	rd := newRuleReader(blank)
	set.rules = map[string]*rule{}
	for _, name := range names {
		if !ruled(name) {
			continue
		}
		if r := rd.rule(set.schemas[name]); r != nil {
			set.rules[name] = r
		}
	}
	if r := set.rules[Checkout]; r != nil {
		set.checkout = readCheckoutRules(r)
	}
	return set, nil
}

func decodeSchema(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return doc, nil
}

// Names returns the names of the compiled schemas, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.schemas))
	for name := range s.schemas {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Validate judges the JSON document doc against the schema called name (one of the constants above).
//
// # Errors
//
// A document that is not JSON, or that the schema refuses, gives a *ValidationError: for a syntax error
// with one Violation with the pointer "" and the byte offset of the fault. A name that is not an embedded
// schema gives an error wrapping ErrUnknownSchema.
func (s *Set) Validate(name string, doc []byte) error {
	sch, err := s.lookup(name)
	if err != nil {
		return err
	}
	v, bad := decodeDocument(doc)
	if bad != nil {
		return &ValidationError{Schema: name, Violations: []Violation{*bad}}
	}
	return s.validate(name, sch, v)
}

// ValidateValue judges v, a JSON document already decoded into Go values, against the schema called name.
// v must be made of what encoding/json decodes into an any: nil, bool, string, json.Number or float64,
// []any and map[string]any; int, int8, int32, int64 and their unsigned forms are accepted too. Decode with json.Decoder.UseNumber to keep
// large integers exact and to tell 100.0 from 100.
//
// # Errors
//
// As Validate; v holding another Go type, or a NaN or infinite float, gives an error that is not a
// *ValidationError, because it is a fault of the caller, not of the document.
func (s *Set) ValidateValue(name string, v any) error {
	sch, err := s.lookup(name)
	if err != nil {
		return err
	}
	return s.validate(name, sch, v)
}

func (s *Set) lookup(name string) (*jsonschema.Schema, error) {
	sch, ok := s.schemas[name]
	if !ok {
		return nil, fmt.Errorf("schemas: %q: %w", name, ErrUnknownSchema)
	}
	return sch, nil
}

func (s *Set) validate(name string, sch *jsonschema.Schema, v any) error {
	var out []Violation
	if err := checkValue(v, nil, &out); err != nil {
		return fmt.Errorf("schemas: %s: %w", name, err)
	}
	if len(out) > 0 {
		return &ValidationError{Schema: name, Violations: sortViolations(out)}
	}
	if r := s.rules[name]; r != nil && r.accepts(v) {
		return nil // the schema's rules, read from it at Compile, accept v (see rule)
	}
	return s.walk(name, sch, v)
}

// walk has the validator judge v, a decoded document that checkValue found in range.
func (s *Set) walk(name string, sch *jsonschema.Schema, v any) error {
	err := sch.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("schemas: %s: validate: %w", name, err)
	}
	return &ValidationError{Schema: name, Violations: sortViolations(s.explain(v, ve))}
}

// decodeDocument decodes doc with exact numbers. It returns a Violation for anything that is not exactly one
// JSON value.
func decodeDocument(doc []byte) (any, *Violation) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var syn *json.SyntaxError
		switch {
		case errors.As(err, &syn):
			off := syn.Offset // bytes read, the offending one included
			if strings.HasPrefix(syn.Error(), "invalid character") && off > 0 {
				off--
			}
			return nil, syntaxViolation(off, syn.Error())
		case errors.Is(err, io.EOF):
			return nil, syntaxViolation(int64(len(doc)), "empty document")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, syntaxViolation(int64(len(doc)), "unexpected end of input")
		default:
			return nil, syntaxViolation(dec.InputOffset(), err.Error())
		}
	}
	end := dec.InputOffset()
	if rest := bytes.TrimLeft(doc[end:], " \t\r\n"); len(rest) > 0 {
		return nil, syntaxViolation(int64(len(doc)-len(rest)), "unexpected data after the JSON document")
	}
	return v, nil
}

func syntaxViolation(offset int64, msg string) *Violation {
	return &Violation{Pointer: "", Detail: fmt.Sprintf("invalid JSON at byte offset %d: %s", offset, msg)}
}

// checkValue walks v: it reports number literals too long or too large to judge exactly as violations, and
// Go values that are not decoded JSON as an error. path holds the unescaped tokens leading to v; the pointer
// is only built for a fault.
func checkValue(v any, path []string, out *[]Violation) error {
	switch v := v.(type) {
	case nil, bool, string, int, int8, int32, int64, uint, uint8, uint32, uint64:
		// The scalar types jsonschema accepts.
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("value at %q is %v, not a JSON number", joinPointer(path), v)
		}
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("value at %q is %v, not a JSON number", joinPointer(path), v)
		}
	case json.Number:
		if !numberInRange(string(v)) {
			*out = append(*out, Violation{Pointer: joinPointer(path), Detail: fmt.Sprintf(
				"number must have at most %d characters and an exponent within ±%d", maxNumberLen, maxExponent)})
		}
	case []any:
		for i, e := range v {
			if !isScalar(e) {
				if err := checkValue(e, append(path, strconv.Itoa(i)), out); err != nil {
					return err
				}
			}
		}
	case map[string]any:
		for k, e := range v {
			if !isScalar(e) {
				if err := checkValue(e, append(path, k), out); err != nil {
					return err
				}
			}
		}
	default:
		return fmt.Errorf("value at %q has Go type %T, not a decoded JSON value", joinPointer(path), v)
	}
	return nil
}

// isScalar reports whether checkValue has nothing to check in v.
func isScalar(v any) bool {
	switch v.(type) {
	case nil, bool, string:
		return true
	}
	return false
}

// numberInRange reports whether the literal n is a JSON number short enough, and with an exponent small
// enough, to judge exactly and quickly.
func numberInRange(n string) bool {
	if len(n) == 0 || len(n) > maxNumberLen {
		return false
	}
	i := strings.IndexAny(n, "eE")
	if i < 0 {
		return true
	}
	exp, err := strconv.Atoi(strings.TrimPrefix(n[i+1:], "+"))
	return err == nil && exp >= -maxExponent && exp <= maxExponent
}

// Violation is one reason a document failed validation.
type Violation struct {
	// Pointer is the RFC 6901 JSON pointer to the offending value in the document, e.g. "/amount"; for a
	// missing field it points at where the field should be, and it is "" for the whole document.
	Pointer string `json:"pointer"`
	// Detail says what is wrong, for people, e.g. "must be >= 100 but found 50".
	Detail string `json:"detail"`
}

// ValidationError is a document's failure to validate: every violation found, deduplicated and sorted by
// pointer. The HTTP layer answers it with a 4xx problem document whose errors are Violations.
type ValidationError struct {
	// Schema is the name of the schema the document was judged against, e.g. "checkout.schema.json".
	Schema string
	// Violations is never empty.
	Violations []Violation
}

// Error returns e.g. "schemas: checkout.schema.json: /amount: must be >= 100 but found 50; /merchant: is
// required".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("schemas: ")
	b.WriteString(e.Schema)
	b.WriteString(": ")
	for i, v := range e.Violations {
		if i > 0 {
			b.WriteString("; ")
		}
		if v.Pointer != "" {
			b.WriteString(v.Pointer)
			b.WriteString(": ")
		}
		b.WriteString(v.Detail)
	}
	return b.String()
}

// integerLiteralExt is the name of the integerLiteral extension.
const integerLiteralExt = "kasse-integer-literal"

// integerLiteral is a compiler extension that makes "type": "integer" refuse numbers written with a
// fraction or an exponent (100.0, 1e2). See "Integers" in the package doc.
type integerLiteral struct{}

func (integerLiteral) Compile(_ jsonschema.CompilerContext, m map[string]any) (jsonschema.ExtSchema, error) {
	var types []string
	switch t := m["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok {
				types = append(types, s)
			}
		}
	}
	integer, number := false, false
	for _, t := range types {
		integer = integer || t == "integer"
		number = number || t == "number"
	}
	if integer && !number {
		return integerLiteral{}, nil
	}
	return nil, nil
}

func (integerLiteral) Validate(ctx jsonschema.ValidationContext, v any) error {
	if n, ok := v.(json.Number); ok && strings.ContainsAny(string(n), ".eE") {
		return ctx.Error("type", "expected integer, but got number %s", n)
	}
	return nil
}

// violation is a Violation while it is being explained: required marks a missing field, so that
// alternatives of missing fields can be merged into one message.
type violation struct {
	Violation
	required string
}

// explain flattens jsonschema's nested errors into leaf violations.
func (s *Set) explain(root any, ve *jsonschema.ValidationError) []Violation {
	var vs []violation
	s.collect(root, ve, &vs)
	out := make([]Violation, len(vs))
	for i, v := range vs {
		out[i] = v.Violation
	}
	return out
}

func (s *Set) collect(root any, ve *jsonschema.ValidationError, out *[]violation) {
	if len(ve.Causes) == 0 {
		*out = append(*out, s.leaf(root, ve)...)
		return
	}
	if kw := lastToken(ve.KeywordLocation); kw == "anyOf" || kw == "oneOf" {
		*out = append(*out, s.alternatives(root, ve)...)
		return
	}
	for _, c := range ve.Causes {
		s.collect(root, c, out)
	}
}

// alternatives explains a failed anyOf or oneOf. When every alternative only misses one field, it says which
// fields would do; otherwise it explains the alternative that came closest (fewest violations).
func (s *Set) alternatives(root any, ve *jsonschema.ValidationError) []violation {
	var best []violation
	var fields []string
	onlyRequired := true
	for i, c := range ve.Causes {
		var vs []violation
		s.collect(root, c, &vs)
		if len(vs) != 1 || vs[0].required == "" {
			onlyRequired = false
		} else {
			fields = append(fields, vs[0].required)
		}
		if i == 0 || len(vs) < len(best) {
			best = vs
		}
	}
	if !onlyRequired || len(fields) == 0 {
		return best
	}
	return []violation{{Violation: Violation{Pointer: instancePointer(ve.InstanceLocation), Detail: "must have " + orList(fields)}}}
}

// leaf explains one failed keyword.
func (s *Set) leaf(root any, ve *jsonschema.ValidationError) []violation {
	ptr := instancePointer(ve.InstanceLocation)
	inst, _ := resolve(root, ptr)
	docURL, kwPtr, _ := strings.Cut(ve.AbsoluteKeywordLocation, "#")
	kwTokens := splitPointer(kwPtr)
	kw := ""
	if len(kwTokens) > 0 {
		kw = kwTokens[len(kwTokens)-1]
	}
	kwValue, _ := resolve(s.docs[docURL], kwPtr)
	var parent map[string]any
	if len(kwTokens) > 0 {
		p, _ := resolve(s.docs[docURL], joinPointer(kwTokens[:len(kwTokens)-1]))
		parent, _ = p.(map[string]any)
	}
	custom := ""
	if msgs, ok := parent["errorMessage"].(map[string]any); ok {
		custom, _ = msgs[kw].(string)
	}
	one := func(detail string) []violation {
		if custom != "" {
			detail = custom
		}
		return []violation{{Violation: Violation{Pointer: ptr, Detail: detail}}}
	}

	if b, ok := kwValue.(bool); ok && !b && ve.Message == "not allowed" { // a false schema
		if kw == "additionalProperties" || kw == "unevaluatedProperties" {
			return one("unknown field")
		}
		return one("must not be present")
	}
	if len(kwTokens) >= 3 && kwTokens[len(kwTokens)-3] == "dependentRequired" {
		field, _ := kwValue.(string)
		detail := "is required when " + kwTokens[len(kwTokens)-2] + " is present"
		if custom != "" {
			detail = custom
		}
		return []violation{{Violation: Violation{Pointer: ptr + "/" + escapeToken(field), Detail: detail}, required: field}}
	}

	switch kw {
	case "required", "additionalProperties":
		detail := "is required"
		if kw == "additionalProperties" {
			detail = "unknown field"
		}
		if custom != "" {
			detail = custom
		}
		var out []violation
		for _, name := range quotedNames(ve.Message) {
			v := violation{Violation: Violation{Pointer: ptr + "/" + escapeToken(name), Detail: detail}}
			if kw == "required" {
				v.required = name
			}
			out = append(out, v)
		}
		if len(out) > 0 {
			return out
		}
		return one(ve.Message)
	case "type":
		var want []string
		switch t := parent["type"].(type) {
		case string:
			want = []string{article(t)}
		case []any:
			for _, e := range t {
				if s, ok := e.(string); ok {
					want = append(want, article(s))
				}
			}
		}
		return one("must be " + orList(want) + " but found " + describe(inst, true))
	case "enum":
		vals, _ := kwValue.([]any)
		if len(vals) == 1 {
			return one("must be " + literal(vals[0]) + " but found " + describe(inst, false))
		}
		lits := make([]string, len(vals))
		for i, v := range vals {
			lits[i] = literal(v)
		}
		return one("must be one of " + strings.Join(lits, ", ") + " but found " + describe(inst, false))
	case "const":
		return one("must be " + literal(kwValue) + " but found " + describe(inst, false))
	case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
		op := map[string]string{"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kw]
		return one(fmt.Sprintf("must be %s %v but found %s", op, kwValue, describe(inst, false)))
	case "multipleOf":
		return one(fmt.Sprintf("must be a multiple of %v but found %s", kwValue, describe(inst, false)))
	case "minLength", "maxLength":
		n := number(kwValue)
		str, _ := inst.(string)
		got := utf8.RuneCountInString(str)
		if kw == "minLength" {
			if n == 1 && got == 0 {
				return one("must not be empty")
			}
			return one(fmt.Sprintf("must be at least %d characters long but has %d", n, got))
		}
		return one(fmt.Sprintf("must be at most %d characters long but has %d", n, got))
	case "minItems", "maxItems":
		n := number(kwValue)
		arr, _ := inst.([]any)
		if kw == "minItems" {
			if n == 1 && len(arr) == 0 {
				return one("must not be empty")
			}
			return one(fmt.Sprintf("must have at least %d items but has %d", n, len(arr)))
		}
		return one(fmt.Sprintf("must have at most %d items but has %d", n, len(arr)))
	case "minProperties", "maxProperties":
		n := number(kwValue)
		obj, _ := inst.(map[string]any)
		if kw == "minProperties" {
			return one(fmt.Sprintf("must have at least %d fields but has %d", n, len(obj)))
		}
		return one(fmt.Sprintf("must have at most %d fields but has %d", n, len(obj)))
	case "uniqueItems":
		return one("must not contain duplicates, but " + ve.Message)
	case "pattern":
		return one(fmt.Sprintf("must match the pattern %v", kwValue))
	case "format":
		f, _ := kwValue.(string)
		return one("must be " + formatName(f))
	case "not":
		return one("must not match the schema at " + kwPtr)
	}
	return one(ve.Message)
}

// quotedNames returns the names jsonschema quotes in messages such as "missing properties: 'a', 'b'".
// The library writes each name with Go's %q inside single quotes, with ' escaped and " unescaped.
func quotedNames(msg string) []string {
	var names []string
	for {
		start := strings.IndexByte(msg, '\'')
		if start < 0 {
			return names
		}
		i := start + 1
		for i < len(msg) && msg[i] != '\'' {
			if msg[i] == '\\' {
				i++
			}
			i++
		}
		if i >= len(msg) {
			return names
		}
		inner := strings.ReplaceAll(msg[start+1:i], `\'`, `'`)
		inner = strings.ReplaceAll(inner, `"`, `\"`)
		if name, err := strconv.Unquote(`"` + inner + `"`); err == nil {
			names = append(names, name)
		}
		msg = msg[i+1:]
	}
}

// orList joins items as "a", "a or b", "a, b or c".
func orList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func article(t string) string {
	switch t {
	case "integer", "object", "array":
		return "an " + t
	case "null":
		return "null"
	}
	return "a " + t
}

func formatName(f string) string {
	switch f {
	case "uri":
		return "an absolute URI"
	case "uri-reference":
		return "a URI reference"
	case "date-time":
		return "an RFC 3339 date-time, e.g. 2024-05-01T12:00:00Z"
	case "date":
		return "an RFC 3339 date, e.g. 2024-05-01"
	case "json-pointer":
		return "a JSON pointer (RFC 6901)"
	case "email":
		return "an email address"
	case "hostname":
		return "a hostname"
	case "duration":
		return "an ISO 8601 duration, e.g. PT10M"
	}
	return "a valid " + f
}

// describe names a found value for a message: numbers, booleans and null as written; strings quoted and cut
// short, or as "a string" when typeOnly is set; objects and arrays by their type.
func describe(v any, typeOnly bool) string {
	switch v := v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		if typeOnly {
			return "a string"
		}
		return literal(v)
	}
	return literal(v)
}

// literal writes v as JSON, strings cut to 40 characters.
func literal(v any) string {
	if s, ok := v.(string); ok && utf8.RuneCountInString(s) > 40 {
		v = string([]rune(s)[:40]) + "…"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func number(v any) int64 {
	if n, ok := v.(json.Number); ok {
		i, _ := n.Int64()
		return i
	}
	return 0
}

// instancePointer turns jsonschema's instance location, whose tokens it also URL-path-escapes, into an RFC
// 6901 JSON pointer.
func instancePointer(loc string) string {
	if loc == "" {
		return ""
	}
	tokens := strings.Split(loc, "/")
	for i, t := range tokens {
		if u, err := url.PathUnescape(t); err == nil {
			tokens[i] = u
		}
	}
	return strings.Join(tokens, "/")
}

// splitPointer splits an RFC 6901 pointer (as jsonschema writes them) into unescaped tokens.
func splitPointer(ptr string) []string {
	if ptr == "" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i, p := range parts {
		if u, err := url.PathUnescape(p); err == nil {
			p = u
		}
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	return parts
}

func joinPointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escapeToken(t))
	}
	return b.String()
}

func escapeToken(t string) string {
	return strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
}

// resolve returns the value at ptr in v.
func resolve(v any, ptr string) (any, bool) {
	for _, t := range splitPointer(ptr) {
		switch c := v.(type) {
		case map[string]any:
			e, ok := c[t]
			if !ok {
				return nil, false
			}
			v = e
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func lastToken(ptr string) string {
	return ptr[strings.LastIndexByte(ptr, '/')+1:]
}

// sortViolations removes duplicates and sorts by pointer (array indexes numerically), then by detail.
func sortViolations(vs []Violation) []Violation {
	seen := make(map[Violation]bool, len(vs))
	out := vs[:0:0]
	for _, v := range vs {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if c := comparePointers(out[i].Pointer, out[j].Pointer); c != 0 {
			return c < 0
		}
		return out[i].Detail < out[j].Detail
	})
	return out
}

func comparePointers(a, b string) int {
	ta, tb := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(ta) && i < len(tb); i++ {
		if ta[i] == tb[i] {
			continue
		}
		if allDigits(ta[i]) && allDigits(tb[i]) && len(ta[i]) != len(tb[i]) {
			if len(ta[i]) < len(tb[i]) {
				return -1
			}
			return 1
		}
		return strings.Compare(ta[i], tb[i])
	}
	return len(ta) - len(tb)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
