package schemas

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/kassehq/kasse/host/payment"
)

// ValidateCheckout judges co exactly as Validate judges its encoding/json encoding against the Checkout
// schema: nil, or the same *ValidationError with the same violations. It is how a checkout built in Go
// (a platform adapter's) is checked.
//
// A checkout the schema accepts is recognised without encoding it: the schema's own rules (limits,
// patterns, formats and enums, read from the compiled schema at Compile) are applied to the Go value,
// which costs about a tenth of encoding, decoding and walking (BenchmarkValidateCheckoutValue). Anything
// else, and every checkout at all when the schema uses a keyword that reading does not know, is encoded
// and validated as before, so that refusals and their messages come from the schema. Validate applies
// the same rules to a decoded Checkout document before it walks the schema. See RATIONALE.md, "Why a
// checkout built in Go is checked without encoding it".
func (s *Set) ValidateCheckout(co *payment.Checkout) error {
	if s.checkout != nil && s.checkout.accepts(co) {
		return nil
	}
	doc, err := json.Marshal(co)
	if err != nil {
		return fmt.Errorf("schemas: %s: encode checkout: %w", Checkout, err)
	}
	return s.Validate(Checkout, doc)
}

// checkoutRules are the Checkout schema's rules for the members encoding/json writes for a
// payment.Checkout. accepts only ever accepts: a checkout it does not accept goes to the validator.
type checkoutRules struct {
	required, lineRequired                                          []string
	merchant, reference, currency, description, returnURL, userFlow stringRule
	amount                                                          intRule
	phone                                                           stringRule
	minLines, maxLines                                              int // -1: no limit
	sku, name                                                       stringRule
	quantity, unitPrice                                             intRule
}

// accepts reports whether the schema accepts co's encoding. The members tagged omitempty are judged only
// when encoding/json writes them.
func (r *checkoutRules) accepts(co *payment.Checkout) bool {
	if !r.merchant.ok(co.Merchant) || !r.reference.ok(co.Reference) || !r.amount.ok(co.Amount) ||
		!r.currency.ok(co.Currency) || !r.description.ok(co.Description) || !r.returnURL.ok(co.ReturnURL) {
		return false
	}
	if co.UserFlow != "" && !r.userFlow.ok(co.UserFlow) {
		return false
	}
	if c := co.Customer; c != nil && c.PhoneNumber != "" && !r.phone.ok(c.PhoneNumber) {
		return false
	}
	if n := len(co.Lines); n > 0 {
		if r.minLines >= 0 && n < r.minLines || r.maxLines >= 0 && n > r.maxLines {
			return false
		}
		for i := range co.Lines {
			l := &co.Lines[i]
			if l.SKU != "" && !r.sku.ok(l.SKU) || !r.name.ok(l.Name) || !r.quantity.ok(l.Quantity) ||
				!r.unitPrice.ok(l.UnitPrice) {
				return false
			}
		}
	}
	return true
}

// acceptsDocument reports whether the schema accepts v, a decoded document (Validate's) that checkValue
// found in range, judging what is there: unlike a payment.Checkout, a document may lack members, hold
// others, hold values of any type, and hold empty strings, arrays and objects that encoding/json would
// have left out.
func (r *checkoutRules) acceptsDocument(v any) bool {
	doc, ok := v.(map[string]any)
	if !ok || !hasAll(doc, r.required) {
		return false
	}
	for name, m := range doc {
		var ok bool
		switch name {
		case "merchant":
			ok = r.merchant.okValue(m)
		case "reference":
			ok = r.reference.okValue(m)
		case "amount":
			ok = r.amount.okValue(m)
		case "currency":
			ok = r.currency.okValue(m)
		case "description":
			ok = r.description.okValue(m)
		case "returnUrl":
			ok = r.returnURL.okValue(m)
		case "userFlow":
			ok = r.userFlow.okValue(m)
		case "customer":
			c, isObject := m.(map[string]any)
			ok = isObject && len(c) <= 1
			if phone, has := c["phoneNumber"]; has {
				ok = ok && r.phone.okValue(phone)
			} else {
				ok = ok && len(c) == 0
			}
		case "lines":
			ok = r.linesOK(m)
		}
		if !ok {
			return false
		}
	}
	return true
}

func (r *checkoutRules) linesOK(v any) bool {
	lines, ok := v.([]any)
	if !ok || r.minLines >= 0 && len(lines) < r.minLines || r.maxLines >= 0 && len(lines) > r.maxLines {
		return false
	}
	for _, e := range lines {
		line, ok := e.(map[string]any)
		if !ok || !hasAll(line, r.lineRequired) {
			return false
		}
		for name, m := range line {
			var ok bool
			switch name {
			case "sku":
				ok = r.sku.okValue(m)
			case "name":
				ok = r.name.okValue(m)
			case "quantity":
				ok = r.quantity.okValue(m)
			case "unitPrice":
				ok = r.unitPrice.okValue(m)
			}
			if !ok {
				return false
			}
		}
	}
	return true
}

func hasAll(obj map[string]any, names []string) bool {
	for _, n := range names {
		if _, ok := obj[n]; !ok {
			return false
		}
	}
	return true
}

// stringRule is a string member's keywords.
type stringRule struct {
	minLen, maxLen int // in code points; -1: no limit
	pattern        *regexp.Regexp
	format         func(any) bool
	enum           []string // nil: any string
}

func (r *stringRule) ok(s string) bool {
	if !utf8.ValidString(s) {
		return false // encoding/json would write U+FFFD instead: let the validator judge what it writes
	}
	if r.minLen >= 0 || r.maxLen >= 0 {
		n := utf8.RuneCountInString(s)
		if r.minLen >= 0 && n < r.minLen || r.maxLen >= 0 && n > r.maxLen {
			return false
		}
	}
	if r.enum != nil && !slices.Contains(r.enum, s) {
		return false
	}
	if r.pattern != nil && !r.pattern.MatchString(s) {
		return false
	}
	return r.format == nil || r.format(s)
}

func (r *stringRule) okValue(v any) bool {
	s, ok := v.(string)
	return ok && r.ok(s)
}

// intRule is an integer member's bounds.
type intRule struct{ min, max int64 }

func (r *intRule) ok(n int64) bool { return n >= r.min && n <= r.max }

// okValue accepts a json.Number written as an integer literal (see integerLiteral) within the bounds;
// other Go types, which ValidateValue allows, are left to the validator.
func (r *intRule) okValue(v any) bool {
	lit, ok := v.(json.Number)
	if !ok || strings.ContainsAny(string(lit), ".eE") {
		return false
	}
	n, err := strconv.ParseInt(string(lit), 10, 64)
	return err == nil && r.ok(n)
}

// readCheckoutRules reads the rules from the compiled Checkout schema. It returns nil when the schema
// says anything it does not know how to apply to a payment.Checkout: a keyword other than the ones below,
// a member the Go type may leave out made required, a member the Go type does not have or lacks. The
// schema is then applied by the validator alone.
func readCheckoutRules(root, blank *jsonschema.Schema) *checkoutRules {
	rd := ruleReader{blank: reflect.ValueOf(blank).Elem()}
	var r checkoutRules
	r.required = root.Required
	props, ok := rd.object(root, []string{"merchant", "reference", "amount", "currency", "description", "returnUrl"},
		"customer", "userFlow", "lines")
	if !ok {
		return nil
	}
	customer, ok := rd.object(props["customer"], nil, "phoneNumber")
	if !ok {
		return nil
	}
	lines := rd.deref(props["lines"])
	if !rd.only(lines, "Types", "MinItems", "MaxItems", "Items2020") || !slices.Equal(lines.Types, []string{"array"}) ||
		lines.Items2020 == nil {
		return nil
	}
	r.minLines, r.maxLines = lines.MinItems, lines.MaxItems
	line, ok := rd.object(lines.Items2020, []string{"name", "quantity", "unitPrice"}, "sku")
	if !ok {
		return nil
	}
	r.lineRequired = rd.deref(lines.Items2020).Required
	for dst, s := range map[*stringRule]*jsonschema.Schema{&r.merchant: props["merchant"],
		&r.reference: props["reference"], &r.currency: props["currency"], &r.description: props["description"],
		&r.returnURL: props["returnUrl"], &r.userFlow: props["userFlow"], &r.phone: customer["phoneNumber"],
		&r.sku: line["sku"], &r.name: line["name"]} {
		if !rd.readString(dst, s) {
			return nil
		}
	}
	for dst, s := range map[*intRule]*jsonschema.Schema{&r.amount: props["amount"], &r.quantity: line["quantity"],
		&r.unitPrice: line["unitPrice"]} {
		if !rd.readInt(dst, s) {
			return nil
		}
	}
	return &r
}

// object reads an object schema whose members are exactly always (which encoding/json always writes) and
// optional (omitempty members); only always members may be required, and no other member is allowed.
func (rd ruleReader) object(s *jsonschema.Schema, always []string, optional ...string) (map[string]*jsonschema.Schema, bool) {
	s = rd.deref(s)
	if !rd.only(s, "Types", "Required", "Properties", "AdditionalProperties") ||
		!slices.Equal(s.Types, []string{"object"}) || s.AdditionalProperties != false ||
		len(s.Properties) != len(always)+len(optional) {
		return nil, false
	}
	for _, name := range s.Required {
		if !slices.Contains(always, name) {
			return nil, false
		}
	}
	for _, name := range append(slices.Clip(always), optional...) {
		if s.Properties[name] == nil {
			return nil, false
		}
	}
	return s.Properties, true
}

func (rd ruleReader) readString(dst *stringRule, s *jsonschema.Schema) bool {
	s = rd.deref(s)
	if !rd.only(s, "Types", "MinLength", "MaxLength", "Pattern", "Format", "Enum") ||
		!slices.Equal(s.Types, []string{"string"}) {
		return false
	}
	*dst = stringRule{minLen: s.MinLength, maxLen: s.MaxLength, pattern: s.Pattern}
	if s.Format != "" {
		// The compiler asserts formats with this same table (Compile registers none of its own).
		if dst.format = jsonschema.Formats[s.Format]; dst.format == nil {
			return false
		}
	}
	if s.Enum != nil {
		dst.enum = make([]string, 0, len(s.Enum))
		for _, v := range s.Enum {
			str, ok := v.(string)
			if !ok {
				return false
			}
			dst.enum = append(dst.enum, str)
		}
	}
	return true
}

func (rd ruleReader) readInt(dst *intRule, s *jsonschema.Schema) bool {
	s = rd.deref(s)
	if !rd.only(s, "Types", "Minimum", "Maximum", "Extensions") || !slices.Equal(s.Types, []string{"integer"}) {
		return false
	}
	for name := range s.Extensions {
		if name != integerLiteralExt { // an int64 is always written as an integer literal
			return false
		}
	}
	*dst = intRule{min: math.MinInt64, max: math.MaxInt64}
	if m := s.Minimum; m != nil {
		if !m.IsInt() || !m.Num().IsInt64() {
			return false
		}
		dst.min = m.Num().Int64()
	}
	if m := s.Maximum; m != nil {
		if !m.IsInt() || !m.Num().IsInt64() {
			return false
		}
		dst.max = m.Num().Int64()
	}
	return true
}

// deref follows a "$ref" that has nothing but annotations beside it.
func (rd ruleReader) deref(s *jsonschema.Schema) *jsonschema.Schema {
	for s != nil && s.Ref != nil && rd.only(s, "Ref") {
		s = s.Ref
	}
	return s
}

// annotations are the compiled schema's fields that do not constrain a value.
var annotations = []string{"Location", "Draft", "Title", "Description", "Default", "Comment", "ReadOnly",
	"WriteOnly", "Examples", "Deprecated"}

// ruleReader reads rules from compiled schemas. blank is a compiled empty schema: its fields hold the
// library's "not specified" values.
type ruleReader struct{ blank reflect.Value }

// only reports whether s constrains nothing beyond the named fields of jsonschema.Schema: every other
// exported field holds its "not specified" value. A field the library adds in a later version counts as
// a constraint until it is named here, so an upgrade can only turn the fast path off.
func (rd ruleReader) only(s *jsonschema.Schema, fields ...string) bool {
	if s == nil {
		return false
	}
	v, b := reflect.ValueOf(s).Elem(), rd.blank
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || slices.Contains(fields, f.Name) || slices.Contains(annotations, f.Name) {
			continue
		}
		if !reflect.DeepEqual(v.Field(i).Interface(), b.Field(i).Interface()) {
			return false
		}
	}
	return true
}
