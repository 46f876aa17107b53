package checkout

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"

	"github.com/kassehq/kasse/plugin/abi"
	"github.com/kassehq/kasse/schemas"
)

// decodeOutput checks a plugin's output against the rules of schemas/plugin-output.schema.json and decodes
// it. The rules are written out in Go (checkOutput) because the generic JSON Schema validator cost more than
// the rest of a plugin call together (about 45 of 70 µs on the host's side of one call); the schema stays
// the contract, and TestOutputCheckAgreesWithSchema holds the two together on the plugins' golden outputs
// and thousands of mutations of them. A refusal is a *schemas.ValidationError naming the field (a JSON
// pointer) as the validator's would be.
//
// Both decoding steps use goccy/go-json, which reads into the same values as encoding/json at a third of
// the cost (TestDecodeOutputMatchesEncodingJSON); see RATIONALE.md, "Why the plugin boundary's host side
// uses goccy/go-json".
//
// The outputs of the request path take a faster road first: fastDecodeOutput reads them in one pass and
// leaves everything it is not sure of to the general path (decodeOutputGeneral), which decides and
// explains.
func decodeOutput(raw []byte) (*abi.Output, error) {
	if out, ok := fastDecodeOutput(raw); ok {
		return out, nil
	}
	return decodeOutputGeneral(raw)
}

// decodeOutputGeneral is decodeOutput for any output: it checks the JSON, decodes it into a tree, checks
// the tree (checkOutput, or the schema itself for the Report API's outputs) and then decodes the output.
func decodeOutputGeneral(raw []byte) (*abi.Output, error) {
	if !json.Valid(raw) {
		// encoding/json's message, for a refusal that reads as it always has.
		var v any
		err := json.Unmarshal(raw, &v)
		if err == nil {
			return nil, refuseOutput("", "not one JSON value")
		}
		var syn *json.SyntaxError
		if errors.As(err, &syn) && syn.Offset > 0 && firstValueEnds(raw, syn.Offset) {
			return nil, refuseOutput("", "unexpected data after the JSON document")
		}
		return nil, refuseOutput("", "not one JSON value: "+err.Error())
	}
	// goccy/go-json keeps invalid UTF-8 as it is; encoding/json, whose values the rest of kasse expects,
	// replaces it with U+FFFD. Such output is rare enough to take the slow path.
	fast := utf8.Valid(raw)
	var tree any
	var err error
	if fast {
		dec := gojson.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		err = dec.Decode(&tree)
	} else {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		err = dec.Decode(&tree)
	}
	if err != nil {
		return nil, refuseOutput("", "not one JSON value: "+err.Error())
	}
	if offHotPath(tree) {
		set, err := outputSchema()
		if err != nil {
			return nil, refuseOutput("", "output schema: "+err.Error())
		}
		if err := set.ValidateValue(schemas.PluginOutput, tree); err != nil {
			return nil, err
		}
	} else if err := checkOutput(tree); err != nil {
		return nil, err
	}
	var out abi.Output
	if fast {
		err = gojson.Unmarshal(raw, &out)
	} else {
		err = json.Unmarshal(raw, &out)
	}
	if err != nil {
		return nil, refuseOutput("", "decode: "+err.Error())
	}
	return &out, nil
}

// firstValueEnds reports whether raw holds one complete JSON value before offset (so that what follows it
// is trailing data rather than a broken value).
func firstValueEnds(raw []byte, offset int64) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var v json.RawMessage
	return dec.Decode(&v) == nil && dec.InputOffset() <= offset
}

// offHotPath reports whether an output is one of the Report API reads (ledgers, a report page), which
// run a few times a minute per merchant: those are checked by the generic validator against the schema
// itself, so checkOutput need only mirror the outputs of the operations on the request path.
func offHotPath(tree any) bool {
	m, ok := tree.(map[string]any)
	if !ok {
		return false
	}
	_, ledgers := m["ledgers"]
	_, report := m["report"]
	return ledgers || report
}

// outputSchema compiles the embedded schemas once; they never change while the process runs.
var outputSchema = sync.OnceValues(schemas.Compile)

func refuseOutput(pointer, detail string) error {
	return &schemas.ValidationError{Schema: schemas.PluginOutput, Violations: []schemas.Violation{{Pointer: pointer, Detail: detail}}}
}

// Patterns of the output schema, verbatim.
var (
	codePattern     = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	pathPattern     = regexp.MustCompile(`^(?:(?:/[A-Za-z0-9_~-]+(?:\.[A-Za-z0-9_~-]+)*)+/?|/)(?:\?(?:[A-Za-z0-9_~=&,-]|%[0-9A-Fa-f]{2})+(?:\.(?:[A-Za-z0-9_~=&,-]|%[0-9A-Fa-f]{2})+)*)?$`)
	pointerPattern  = regexp.MustCompile(`^(?:/(?:[^~/]|~[01])*)+$`)
	redirectPattern = regexp.MustCompile(`^(?:https?://[^/?#@\s]+(?:[/?#]\S*)?|(?:vipps|vippsMT)://\S*)$`)
)

// Canonical payment states (session.schema.json#/$defs/state).
var paymentStates = []string{"pending", "authorized", "captured", "refunded", "cancelled", "rejected", "expired", "failed"}

// object is a JSON object being checked: its members and its pointer.
type object struct {
	m   map[string]any
	ptr string
}

// walker collects the first violation; every check after it is a no-op, so the rules read as a list.
type walker struct{ err error }

func (w *walker) fail(ptr, detail string) {
	if w.err == nil {
		w.err = refuseOutput(ptr, detail)
	}
}

func child(ptr, key string) string {
	return ptr + "/" + strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}

// obj returns v as an object whose members are all in allowed, or fails.
func (w *walker) obj(v any, ptr string, allowed ...string) (object, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		w.fail(ptr, "must be an object")
		return object{}, false
	}
	for k := range m {
		known := false
		for _, a := range allowed {
			if k == a {
				known = true
				break
			}
		}
		if !known {
			w.fail(child(ptr, k), "is not allowed")
			return object{}, false
		}
	}
	return object{m, ptr}, w.err == nil
}

func (o object) has(k string) bool { _, ok := o.m[k]; return ok }

func (w *walker) require(o object, keys ...string) {
	for _, k := range keys {
		if !o.has(k) {
			w.fail(child(o.ptr, k), "is required")
		}
	}
}

func (w *walker) absent(o object, key, why string) {
	if o.has(key) {
		w.fail(child(o.ptr, key), why)
	}
}

// str checks an optional string member: its length in characters and, when given, a rule.
func (w *walker) str(o object, key string, maxLen int, rule func(string) string) {
	v, ok := o.m[key]
	if !ok {
		return
	}
	s, isStr := v.(string)
	switch {
	case !isStr:
		w.fail(child(o.ptr, key), "must be a string")
	case utf8.RuneCountInString(s) > maxLen:
		w.fail(child(o.ptr, key), "must be at most "+strconv.Itoa(maxLen)+" characters")
	case rule != nil:
		if why := rule(s); why != "" {
			w.fail(child(o.ptr, key), why)
		}
	}
}

// integer checks an optional integer member within [lo, hi].
func (w *walker) integer(o object, key string, lo, hi int64) {
	v, ok := o.m[key]
	if !ok {
		return
	}
	n, isNum := v.(json.Number)
	if !isNum {
		w.fail(child(o.ptr, key), "must be an integer")
		return
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	switch {
	case err != nil:
		w.fail(child(o.ptr, key), "must be an integer")
	case i < lo || i > hi:
		w.fail(child(o.ptr, key), "must be from "+strconv.FormatInt(lo, 10)+" to "+strconv.FormatInt(hi, 10))
	}
}

func (w *walker) boolean(o object, key string) {
	if v, ok := o.m[key]; ok {
		if _, isBool := v.(bool); !isBool {
			w.fail(child(o.ptr, key), "must be a boolean")
		}
	}
}

func (w *walker) isObject(o object, key string) {
	if v, ok := o.m[key]; ok {
		if _, isObj := v.(map[string]any); !isObj {
			w.fail(child(o.ptr, key), "must be an object")
		}
	}
}

func oneOf(values ...string) func(string) string {
	return func(s string) string {
		for _, v := range values {
			if s == v {
				return ""
			}
		}
		return "must be one of " + strings.Join(values, ", ")
	}
}

func matches(re *regexp.Regexp, why string) func(string) string {
	return func(s string) string {
		if !re.MatchString(s) {
			return why
		}
		return ""
	}
}

// checkOutput applies plugin-output.schema.json to a decoded output (json.Decoder with UseNumber).
func checkOutput(v any) error {
	w := &walker{}
	root, ok := w.obj(v, "", "ok", "error", "request", "payment", "reply")
	if !ok {
		return w.err
	}
	w.require(root, "ok")
	w.boolean(root, "ok")
	if w.err != nil {
		return w.err
	}
	if e, ok := root.m["error"]; ok {
		w.checkError(e, "/error")
	}
	if r, ok := root.m["request"]; ok {
		w.checkRequest(r, "/request")
	}
	if p, ok := root.m["payment"]; ok {
		w.checkPayment(p, "/payment")
	}
	if r, ok := root.m["reply"]; ok {
		w.checkReply(r, "/reply")
	}
	if root.has("request") {
		w.absent(root, "payment", "must not be present together with request")
	}
	if root.m["ok"] == true {
		w.absent(root, "error", "must not be present when ok is true")
		if !root.has("request") && !root.has("payment") && !root.has("reply") {
			w.fail("", "must have a request, a payment or a reply when ok is true")
		}
	} else {
		w.require(root, "error")
		for _, k := range []string{"request", "payment", "reply"} {
			w.absent(root, k, "must not be present when ok is false")
		}
	}
	return w.err
}

func (w *walker) checkError(v any, ptr string) {
	o, ok := w.obj(v, ptr, "code", "message", "providerStatus", "providerErrors", "retryable")
	if !ok {
		return
	}
	w.require(o, "code", "message")
	w.str(o, "code", 1<<30, matches(codePattern, "must be a snake_case code of at most 64 characters, e.g. provider_error"))
	w.str(o, "message", 1000, func(s string) string {
		if s == "" {
			return "must not be empty"
		}
		return ""
	})
	w.integer(o, "providerStatus", 100, 599)
	w.boolean(o, "retryable")
	if pe, ok := o.m["providerErrors"]; ok {
		list, isList := pe.([]any)
		switch {
		case !isList:
			w.fail(child(ptr, "providerErrors"), "must be an array")
		case len(list) > 50:
			w.fail(child(ptr, "providerErrors"), "must have at most 50 items")
		}
		for i, item := range list {
			e, ok := w.obj(item, child(ptr, "providerErrors")+"/"+strconv.Itoa(i), "group", "code", "message")
			if !ok {
				return
			}
			w.str(e, "group", 100, nil)
			w.str(e, "code", 200, nil)
			w.str(e, "message", 1000, nil)
		}
	}
}

func (w *walker) checkRequest(v any, ptr string) {
	o, ok := w.obj(v, ptr, "method", "path", "body", "idempotencyHeader", "inject")
	if !ok {
		return
	}
	w.require(o, "method", "path")
	w.str(o, "method", 1<<30, oneOf("GET", "POST", "PUT", "DELETE"))
	w.str(o, "path", 4096, matches(pathPattern, `must be a path starting with "/" made of letters, digits, "-", "_", "~" and single dots, without "//", "..", a scheme or a host`))
	w.isObject(o, "body")
	w.str(o, "idempotencyHeader", 1<<30, oneOf("X-Request-Id", "Idempotency-Key"))
	if o.m["method"] == "GET" {
		w.absent(o, "body", "must not be present on a GET request")
	}
	inj, ok := o.m["inject"]
	if !ok {
		return
	}
	w.require(o, "body")
	list, isList := inj.([]any)
	switch {
	case !isList:
		w.fail(child(ptr, "inject"), "must be an array")
		return
	case len(list) < 1 || len(list) > 8:
		w.fail(child(ptr, "inject"), "must have 1 to 8 items")
		return
	}
	seen := map[[2]string]bool{}
	for i, item := range list {
		ip := child(ptr, "inject") + "/" + strconv.Itoa(i)
		e, ok := w.obj(item, ip, "pointer", "value")
		if !ok {
			return
		}
		w.require(e, "pointer", "value")
		w.str(e, "pointer", 200, matches(pointerPattern, "must be a JSON pointer (RFC 6901) below the body's root, e.g. /merchantInfo/authToken"))
		w.str(e, "value", 1<<30, oneOf(abi.InjectCallbackToken))
		if w.err != nil {
			return
		}
		key := [2]string{e.m["pointer"].(string), e.m["value"].(string)}
		if seen[key] {
			w.fail(child(ptr, "inject"), "must not repeat an item")
			return
		}
		seen[key] = true
	}
}

// redirectRule is the redirectUrl's pattern and its "uri" format: an absolute URL that net/url parses,
// with an IPv6 host only in brackets.
func redirectRule(s string) string {
	const why = "must be an absolute http or https URL or a vipps:// or vippsMT:// app link"
	if !redirectPattern.MatchString(s) {
		return why
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() {
		return why
	}
	if h := u.Hostname(); strings.IndexByte(h, ':') >= 0 {
		if !strings.Contains(u.Host, "[") || !strings.Contains(u.Host, "]") {
			return why
		}
		if ip := net.ParseIP(h); ip == nil || ip.To4() != nil {
			return why
		}
	}
	return ""
}

func (w *walker) checkPayment(v any, ptr string) {
	o, ok := w.obj(v, ptr, "state", "providerReference", "redirectUrl", "authorizedAmount", "capturedAmount",
		"refundedAmount", "cancelledAmount", "reason", "contact", "shipping")
	if !ok {
		return
	}
	w.require(o, "state", "authorizedAmount", "capturedAmount", "refundedAmount", "cancelledAmount")
	w.str(o, "state", 1<<30, oneOf(paymentStates...))
	w.str(o, "providerReference", 100, nil)
	w.str(o, "redirectUrl", 4096, redirectRule)
	for _, k := range []string{"authorizedAmount", "capturedAmount", "refundedAmount", "cancelledAmount"} {
		w.integer(o, k, -1, 65000000)
	}
	w.str(o, "reason", 1000, nil)
	if c, ok := o.m["contact"]; ok {
		if c, ok := w.obj(c, child(ptr, "contact"), "userId", "firstName", "lastName", "email", "phoneNumber"); ok {
			w.str(c, "userId", 100, nil)
			for _, k := range []string{"firstName", "lastName", "email", "phoneNumber"} {
				w.str(c, k, 1000, nil)
			}
		}
	}
	if s, ok := o.m["shipping"]; ok {
		if s, ok := w.obj(s, child(ptr, "shipping"), "methodId", "method", "cost", "address"); ok {
			w.str(s, "methodId", 100, nil)
			w.str(s, "method", 1000, nil)
			w.integer(s, "cost", 0, 65000000)
			if a, ok := s.m["address"]; ok {
				if a, ok := w.obj(a, child(s.ptr, "address"), "line1", "line2", "postCode", "city", "country"); ok {
					w.str(a, "postCode", 20, nil)
					for _, k := range []string{"line1", "line2", "city", "country"} {
						w.str(a, k, 1000, nil)
					}
				}
			}
		}
	}
}

func (w *walker) checkReply(v any, ptr string) {
	o, ok := w.obj(v, ptr, "status", "body")
	if !ok {
		return
	}
	w.require(o, "status")
	w.integer(o, "status", 200, 599)
	w.isObject(o, "body")
}
