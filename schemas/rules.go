package schemas

import (
	"encoding/json"
	"math"
	"math/big"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// ruled reports whether Validate applies a schema's document rules before the validator's walk: the
// schemas of documents on request paths, each held to the validator by a differential test
// (TestDocumentRulesAgreeWithSchema, TestCheckoutDocumentRulesAgreeWithSchema).
func ruled(name string) bool {
	switch name {
	case Checkout, VippsEcomCallback, VippsEcomShippingDetails, VippsEPaymentWebhook, Operation:
		return true
	}
	return false
}

// rule is a compiled schema's keywords, read at Compile to be applied to a decoded document (Validate's,
// after checkValue) without the validator's walk. accepts only ever accepts: it refuses every document the
// schema refuses, and what it refuses goes to the validator, which decides and explains. The schemas a
// schema refers to ($ref, anyOf, properties, items) are rules of their own. See RATIONALE.md, "Why the
// callbacks' schemas are applied as rules read from them".
type rule struct {
	types   jsonTypes  // 0: any type
	literal bool       // integerLiteral: an integer must be written as an integer literal
	str     stringRule // lengths and pattern for strings; format and enum for every value
	num     numRule
	// Objects.
	required []string
	props    map[string]*rule
	closed   bool // additionalProperties false: no members beyond props
	// Arrays.
	minItems, maxItems int // -1: no limit
	items              *rule
	// In place.
	ref   *rule   // a $ref beside other keywords
	anyOf []*rule // one of them must accept
}

// jsonTypes is a set of JSON Schema types.
type jsonTypes uint8

const (
	typeNull jsonTypes = 1 << iota
	typeBoolean
	typeObject
	typeArray
	typeNumber
	typeInteger
	typeString
)

func typeNamed(name string) jsonTypes {
	switch name {
	case "null":
		return typeNull
	case "boolean":
		return typeBoolean
	case "object":
		return typeObject
	case "array":
		return typeArray
	case "number":
		return typeNumber
	case "integer":
		return typeInteger
	case "string":
		return typeString
	}
	return 0
}

// allows reports whether a value of the types t may pass the "type" keyword.
func (r *rule) allows(t jsonTypes) bool { return r.types == 0 || r.types&t != 0 }

// accepts reports whether the schema accepts v. A Go type other than those encoding/json decodes into an
// any with UseNumber (ValidateValue allows ints and floats) is left to the validator.
func (r *rule) accepts(v any) bool {
	switch x := v.(type) {
	case string:
		if !r.allows(typeString) || !r.str.ok(x) {
			return false
		}
	case json.Number:
		if !r.number(x) || !r.anyValue(v) {
			return false
		}
	case map[string]any:
		if !r.allows(typeObject) || !r.members(x) || !r.anyValue(v) {
			return false
		}
	case []any:
		if !r.allows(typeArray) || !r.elements(x) || !r.anyValue(v) {
			return false
		}
	case bool:
		if !r.allows(typeBoolean) || !r.anyValue(v) {
			return false
		}
	case nil:
		if !r.allows(typeNull) || !r.anyValue(v) {
			return false
		}
	default:
		return false
	}
	if r.ref != nil && !r.ref.accepts(v) {
		return false
	}
	if len(r.anyOf) == 0 {
		return true
	}
	for _, alt := range r.anyOf {
		if alt.accepts(v) {
			return true
		}
	}
	return false
}

// anyValue applies the keywords that judge values of every type to v, which is not a string: an enum
// (of strings only, see readRule) and a format.
func (r *rule) anyValue(v any) bool {
	return r.str.enum == nil && (r.str.format == nil || r.str.format(v))
}

func (r *rule) number(lit json.Number) bool {
	floor, frac, over := parseNumber(string(lit))
	t := typeNumber
	if !frac {
		t |= typeInteger
	}
	if !r.allows(t) || r.literal && strings.ContainsAny(string(lit), ".eE") {
		return false
	}
	return r.num.ok(floor, frac, over)
}

func (r *rule) members(obj map[string]any) bool {
	for _, name := range r.required {
		if _, ok := obj[name]; !ok {
			return false
		}
	}
	if r.props == nil && !r.closed {
		return true
	}
	for name, m := range obj {
		p := r.props[name]
		if p == nil {
			if r.closed {
				return false
			}
			continue
		}
		if !p.accepts(m) {
			return false
		}
	}
	return true
}

func (r *rule) elements(arr []any) bool {
	if r.minItems >= 0 && len(arr) < r.minItems || r.maxItems >= 0 && len(arr) > r.maxItems {
		return false
	}
	if r.items != nil {
		for _, e := range arr {
			if !r.items.accepts(e) {
				return false
			}
		}
	}
	return true
}

// stringRule is a string's keywords.
type stringRule struct {
	minLen, maxLen int // in code points; -1: no limit
	pattern        *regexp.Regexp
	format         func(any) bool
	enum           []string // nil: any value
}

func (r *stringRule) ok(s string) bool {
	if !utf8.ValidString(s) {
		// Decoded documents hold none; encoding/json would write U+FFFD for a Go string's: let the
		// validator judge what is written.
		return false
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

// numRule is a number's keywords: integer bounds and "multipleOf": 1.
type numRule struct {
	min, max       int64
	hasMin, hasMax bool
	whole          bool
}

// ok judges a number from its floor, whether it has a fractional part, and over: +1 or -1 when its floor
// is beyond the int64 range (floor is then meaningless). Bounds are integers, so a number with a fraction
// is >= min when its floor is, and <= max when its floor is < max.
func (r *numRule) ok(floor int64, frac bool, over int) bool {
	if frac && r.whole {
		return false
	}
	switch {
	case over > 0:
		return !r.hasMax
	case over < 0:
		return !r.hasMin
	}
	return (!r.hasMin || floor >= r.min) && (!r.hasMax || floor < r.max || !frac && floor == r.max)
}

// okInt judges an int64.
func (r *numRule) okInt(n int64) bool { return r.ok(n, false, 0) }

// parseNumber reads a JSON number literal exactly: its floor when that is an int64 (over 0), whether it
// has a fractional part, and over +1 or -1 when the floor is above or below the int64 range. checkValue
// has bounded the literal's length and exponent.
func parseNumber(lit string) (floor int64, frac bool, over int) {
	neg := strings.HasPrefix(lit, "-")
	if !strings.ContainsAny(lit, ".eE") {
		n, err := strconv.ParseInt(lit, 10, 64)
		switch {
		case err == nil:
			return n, false, 0
		case neg:
			return 0, false, -1
		default:
			return 0, false, 1
		}
	}
	mant, exp := strings.TrimPrefix(lit, "-"), 0
	if i := strings.IndexAny(mant, "eE"); i >= 0 {
		exp, _ = strconv.Atoi(strings.TrimPrefix(mant[i+1:], "+"))
		mant = mant[:i]
	}
	whole, fraction, _ := strings.Cut(mant, ".")
	// The digits are whole followed by fraction; the decimal point falls after the first point of them.
	point := len(whole) + exp
	digit := func(i int) uint64 {
		switch {
		case i < len(whole):
			return uint64(whole[i] - '0')
		case i < len(whole)+len(fraction):
			return uint64(fraction[i-len(whole)] - '0')
		}
		return 0
	}
	for i := max(point, 0); i < len(whole)+len(fraction); i++ {
		if digit(i) != 0 {
			frac = true
			break
		}
	}
	// The magnitude of the integer part, at most what keeps the floor an int64.
	limit := uint64(math.MaxInt64)
	if neg && !frac {
		limit++
	}
	var mag uint64
	for i := 0; i < point; i++ {
		d := digit(i)
		if mag > (limit-d)/10 {
			if neg {
				return 0, frac, -1
			}
			return 0, frac, 1
		}
		mag = mag*10 + d
	}
	switch {
	case !neg:
		return int64(mag), frac, 0
	case frac:
		return -int64(mag) - 1, true, 0
	}
	return int64(-mag), false, 0 // two's complement: mag may be 2^63
}

// ruleReader reads rules from compiled schemas. blank is a compiled empty schema: its fields hold the
// library's "not specified" values. read holds the rules read, by schema, so that a schema referred to
// from several places is read once; it holds nil for a schema being read, so that a schema that refers
// to itself turns the rules off.
type ruleReader struct {
	blank reflect.Value
	read  map[*jsonschema.Schema]*rule
}

func newRuleReader(blank *jsonschema.Schema) *ruleReader {
	return &ruleReader{blank: reflect.ValueOf(blank).Elem(), read: map[*jsonschema.Schema]*rule{}}
}

// rule reads the rules of s, or returns nil when s (or a schema it refers to) says anything the rules
// cannot apply: a keyword other than the ones readRule names (a field the library adds in a later version
// counts as one), a format the library does not assert, an enum of other values than strings, a bound that
// is not an integer, a multipleOf other than 1, additional properties under a schema. The schema is then
// applied by the validator alone.
func (rd *ruleReader) rule(s *jsonschema.Schema) *rule {
	if s == nil {
		return nil
	}
	if r, seen := rd.read[s]; seen {
		return r
	}
	rd.read[s] = nil
	r := rd.readRule(s)
	rd.read[s] = r
	return r
}

func (rd *ruleReader) readRule(s *jsonschema.Schema) *rule {
	if !rd.only(s, "Types", "Extensions", "Format", "Enum", "Ref", "AnyOf", "Required", "Properties",
		"AdditionalProperties", "MinItems", "MaxItems", "Items2020", "MinLength", "MaxLength", "Pattern",
		"Minimum", "Maximum", "MultipleOf") {
		return nil
	}
	if s.Ref != nil && rd.only(s, "Ref") {
		return rd.rule(s.Ref) // a $ref with nothing but annotations beside it
	}
	r := &rule{required: s.Required, minItems: s.MinItems, maxItems: s.MaxItems,
		str: stringRule{minLen: s.MinLength, maxLen: s.MaxLength, pattern: s.Pattern}}
	for _, name := range s.Types {
		t := typeNamed(name)
		if t == 0 {
			return nil
		}
		r.types |= t
	}
	for name := range s.Extensions {
		if name != integerLiteralExt {
			return nil
		}
		r.literal = true
	}
	if s.Format != "" {
		// The compiler asserts formats with this same table (Compile registers none of its own).
		if r.str.format = jsonschema.Formats[s.Format]; r.str.format == nil {
			return nil
		}
	}
	if s.Enum != nil {
		r.str.enum = make([]string, 0, len(s.Enum))
		for _, v := range s.Enum {
			str, ok := v.(string)
			if !ok {
				return nil
			}
			r.str.enum = append(r.str.enum, str)
		}
	}
	var ok bool
	if r.num.min, r.num.hasMin, ok = bound(s.Minimum); !ok {
		return nil
	}
	if r.num.max, r.num.hasMax, ok = bound(s.Maximum); !ok {
		return nil
	}
	if m := s.MultipleOf; m != nil {
		if m.Cmp(big.NewRat(1, 1)) != 0 {
			return nil
		}
		r.num.whole = true
	}
	switch a := s.AdditionalProperties.(type) {
	case nil:
	case bool:
		r.closed = !a
	default:
		return nil
	}
	if s.Properties != nil {
		r.props = make(map[string]*rule, len(s.Properties))
		for name, p := range s.Properties {
			if r.props[name] = rd.rule(p); r.props[name] == nil {
				return nil
			}
		}
	}
	if s.Items2020 != nil {
		if r.items = rd.rule(s.Items2020); r.items == nil {
			return nil
		}
	}
	if s.Ref != nil {
		if r.ref = rd.rule(s.Ref); r.ref == nil {
			return nil
		}
	}
	for _, alt := range s.AnyOf {
		a := rd.rule(alt)
		if a == nil {
			return nil
		}
		r.anyOf = append(r.anyOf, a)
	}
	return r
}

// bound reads a minimum or maximum: ok is false when it is not an int64.
func bound(m *big.Rat) (n int64, has, ok bool) {
	if m == nil {
		return 0, false, true
	}
	if !m.IsInt() || !m.Num().IsInt64() {
		return 0, false, false
	}
	return m.Num().Int64(), true, true
}

// annotations are the compiled schema's fields that do not constrain a value.
var annotations = []string{"Location", "Draft", "Title", "Description", "Default", "Comment", "ReadOnly",
	"WriteOnly", "Examples", "Deprecated"}

// only reports whether s constrains nothing beyond the named fields of jsonschema.Schema: every other
// exported field holds its "not specified" value. A field the library adds in a later version counts as
// a constraint until it is named here, so an upgrade can only turn the rules off.
func (rd *ruleReader) only(s *jsonschema.Schema, fields ...string) bool {
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
