package sdk

import (
	"encoding/json"
	"errors"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/kassehq/kasse/plugin/abi"
)

// decoder decodes abi.Input into a reused value without encoding/json: one pass, no reflection, and no
// allocation once its buffers have grown to the inputs it sees.
//
// It accepts exactly what encoding/json accepts (the whole input is validated, including values it skips),
// and what it decodes equals what json.Unmarshal decodes into a zero abi.Input, with two documented
// differences: object keys match field names case-sensitively (encoding/json also accepts "OP" for "op"),
// and when a key repeats, its last value replaces the earlier ones (encoding/json merges a repeated
// "lines" array into the earlier one's elements).
//
// Strings without escapes alias the input; strings with escapes or invalid UTF-8 (replaced by U+FFFD, as
// encoding/json does) are written to an arena. json.RawMessage fields are copied into buffers of their own.
// All of them are reused by the next decode.
type decoder struct {
	in       abi.Input
	op       abi.Operation
	resp     abi.Response
	express  abi.Express
	lines    []abi.Line
	methods  []abi.ShippingMethod
	rules    []abi.ShippingRule
	strs     []string // backing of every []string field
	arena    []byte
	callback []byte
	body     []byte
	lexer
}

// lexer is a reading position in a JSON document and the primitives that validate it exactly as
// encoding/json does. The decoder and Scanner share it; it is small, so a Scanner costs nothing to make.
type lexer struct {
	data  []byte
	pos   int
	stack []byte // open containers while skipping a value
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

var errUnexpectedEnd = errors.New("unexpected end of JSON input")

func (d *lexer) syntaxError(what string) error {
	if d.pos >= len(d.data) {
		return errUnexpectedEnd
	}
	return errors.New("invalid character " + quoteChar(d.data[d.pos]) + " " + what + " at offset " + strconv.Itoa(d.pos))
}

func typeError(value, field string) error {
	return errors.New("cannot unmarshal " + value + " into field " + field)
}

func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

// decode decodes data. The returned Input is the decoder's own, valid until the next decode.
func (d *decoder) decode(data []byte) (*abi.Input, error) {
	d.data, d.pos = data, 0
	d.arena = d.arena[:0]
	if d.strs == nil {
		d.strs = make([]string, 0, 16)
	}
	d.strs = d.strs[:0]
	d.in = abi.Input{}
	d.ws()
	if d.pos >= len(d.data) {
		return nil, errUnexpectedEnd
	}
	var err error
	switch d.data[d.pos] {
	case '{':
		err = d.input()
	case 'n':
		err = d.literal("null")
	default:
		if err = d.skip(0); err == nil {
			err = typeError("value", "abi.Input")
		}
	}
	if err != nil {
		return nil, err
	}
	d.ws()
	if d.pos != len(d.data) {
		return nil, d.syntaxError("after top-level value")
	}
	return &d.in, nil
}

// ws skips JSON whitespace.
func (d *lexer) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (d *lexer) peek() byte {
	d.ws()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *lexer) literal(lit string) error {
	if len(d.data)-d.pos < len(lit) {
		for i := 0; d.pos < len(d.data); i++ {
			if d.data[d.pos] != lit[i] {
				return d.syntaxError("in literal " + lit)
			}
			d.pos++
		}
		return errUnexpectedEnd
	}
	for i := 0; i < len(lit); i++ {
		if d.data[d.pos] != lit[i] {
			return d.syntaxError("in literal " + lit)
		}
		d.pos++
	}
	return nil
}

// fieldID names a known object key: the JSON name of a field of abi.Input or a type under it.
type fieldID uint8

const (
	fUnknown fieldID = iota
	fOp
	fMerchant
	fSession
	fOperation
	fResponse
	fCallback
	fID
	fMerchantSerialNumber
	fCallbackPrefix
	fFallBack
	fTransactionTextPrefix
	fReference
	fProviderReference
	fState
	fAmount
	fCurrency
	fDescription
	fCustomerPhone
	fAuthorizedAmount
	fCapturedAmount
	fRefundedAmount
	fCancelledAmount
	fLines
	fSKU
	fName
	fQuantity
	fUnitPrice
	fText
	fStatus
	fBody
	fExpress
	fShippingDetailsPrefix
	fConsentRemovalPrefix
	fShipping
	fMode
	fMethods
	fRules
	fCost
	fDefault
	fPickupPoint
	fCountries
	fPostCodePrefixes
	fMinAmount
	fUserFlow
	numFields
)

var fieldNames = [numFields]string{"", "op", "merchant", "session", "operation", "response", "callback",
	"id", "merchantSerialNumber", "callbackPrefix", "fallBack", "transactionTextPrefix",
	"reference", "providerReference", "state", "amount", "currency", "description", "customerPhone",
	"authorizedAmount", "capturedAmount", "refundedAmount", "cancelledAmount", "lines",
	"sku", "name", "quantity", "unitPrice", "text", "status", "body",
	"express", "shippingDetailsPrefix", "consentRemovalPrefix", "shipping", "mode", "methods", "rules", "cost",
	"default", "pickupPoint", "countries", "postCodePrefixes", "minAmount", "userFlow"}

// maxKeyLen bounds the keys looked up; every field name is shorter.
const maxKeyLen = 24

// keyWords is a key as its length and three little-endian words, zero-padded.
type keyWords struct {
	n int
	w [3]uint64
}

// Key lookup is a perfect hash of (length, first word) into keyTable, then one comparison of the words:
// no per-byte loop and no string comparison, both of which are slow in a Go wasm guest.
var (
	fieldKeys [numFields]keyWords
	keyTable  [256]fieldID
	keyMul    uint64
)

func init() {
	for id := fOp; id < numFields; id++ {
		fieldKeys[id] = wordsOf([]byte(fieldNames[id]))
	}
	for mul := uint64(0x9E3779B97F4A7C15); ; mul += 2 {
		keyMul = mul
		keyTable = [256]fieldID{}
		ok := true
		for id := fOp; id < numFields && ok; id++ {
			h := keyHash(&fieldKeys[id])
			ok = keyTable[h] == fUnknown
			keyTable[h] = id
		}
		if ok {
			return
		}
	}
}

func wordsOf(key []byte) keyWords {
	var buf [maxKeyLen]byte
	copy(buf[:], key)
	return keyWords{n: len(key), w: [3]uint64{
		*(*uint64)(unsafe.Pointer(&buf[0])),
		*(*uint64)(unsafe.Pointer(&buf[8])),
		*(*uint64)(unsafe.Pointer(&buf[16])),
	}}
}

func keyHash(k *keyWords) uint8 {
	return uint8(((k.w[0] + uint64(k.n)) * keyMul) >> 56)
}

// lookup returns the field a key names, or fUnknown.
func lookup(key []byte) fieldID {
	if len(key) == 0 || len(key) > maxKeyLen {
		return fUnknown
	}
	k := wordsOf(key)
	id := keyTable[keyHash(&k)]
	if fieldKeys[id] == k {
		return id
	}
	return fUnknown
}

// open enters an object at d.pos ('{'), checking the nesting limit.
func (d *decoder) open(depth int) error {
	if depth > maxDepth {
		return errors.New("exceeded max depth")
	}
	d.pos++
	return nil
}

// next moves to the next member of the object being read: past the comma (unless first), the key and the
// colon, to the value. It returns the key's field, or done at the object's end.
func (d *decoder) next(first bool) (id fieldID, done bool, err error) {
	data := d.data
	i := d.pos
	if i < len(data) && (data[i] == ',' && !first || data[i] == '}') {
		// Compact input: no whitespace to skip.
	} else {
		d.ws()
		i = d.pos
		if i >= len(data) {
			return 0, false, errUnexpectedEnd
		}
	}
	switch c := data[i]; {
	case c == '}':
		d.pos = i + 1
		return 0, true, nil
	case first:
	case c == ',':
		i++
		d.pos = i
		if i >= len(data) || data[i] != '"' {
			d.ws()
			i = d.pos
		}
	default:
		return 0, false, d.syntaxError("after object key:value pair")
	}
	if i >= len(data) || data[i] != '"' {
		return 0, false, d.syntaxError("looking for beginning of object key string")
	}
	key, err := d.key()
	if err != nil {
		return 0, false, err
	}
	i = d.pos
	if i >= len(data) || data[i] != ':' {
		d.ws()
		i = d.pos
		if i >= len(data) || data[i] != ':' {
			return 0, false, d.syntaxError("after object key")
		}
	}
	i++
	d.pos = i
	if i >= len(data) || data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r' {
		d.ws()
		if d.pos >= len(data) {
			return 0, false, errUnexpectedEnd
		}
	}
	return lookup(key), false, nil
}

// key reads an object key. Keys without escapes alias the input; others are unescaped into the arena.
func (d *decoder) key() ([]byte, error) {
	start := d.pos + 1
	end, plain, err := d.scanString()
	if err != nil {
		return nil, err
	}
	if plain {
		return d.data[start:end], nil
	}
	n := len(d.arena)
	d.arena = unquote(d.arena, d.data[start:end])
	return d.arena[n:], nil
}

// str reads a string value.
func (d *decoder) str() (string, error) {
	start := d.pos + 1
	end, plain, err := d.scanString()
	if err != nil {
		return "", err
	}
	if start == end {
		return "", nil
	}
	if plain {
		return unsafe.String(&d.data[start], end-start), nil
	}
	n := len(d.arena)
	d.arena = unquote(d.arena, d.data[start:end])
	if len(d.arena) == n {
		return "", nil
	}
	return unsafe.String(&d.arena[n], len(d.arena)-n), nil
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// scanString validates the string starting at d.pos (at its opening quote) and moves past it. It returns
// the index of the closing quote and whether the contents can be used as they are (no escapes, valid
// UTF-8). It reads eight bytes at a time while none of them needs a closer look.
func (d *lexer) scanString() (end int, plain bool, err error) {
	data := d.data
	i := d.pos + 1
	plain = true
	for {
		for i+8 <= len(data) {
			x := *(*uint64)(unsafe.Pointer(&data[i]))
			// A byte needs a look if it is a quote, a backslash, a control byte or not ASCII.
			q := x ^ (lsb * '"')
			b := x ^ (lsb * '\\')
			m := ((q - lsb) &^ q) | ((b - lsb) &^ b) | ((x - lsb*0x20) &^ x) | x
			m &= msb
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
			break
		}
		if i >= len(data) {
			d.pos = i
			return 0, false, errUnexpectedEnd
		}
		c := data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return i, plain, nil
		case c == '\\':
			plain = false
			if i+1 >= len(data) {
				d.pos = len(data)
				return 0, false, errUnexpectedEnd
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := 2; k < 6; k++ {
					if i+k >= len(data) {
						d.pos = len(data)
						return 0, false, errUnexpectedEnd
					}
					if !isHex(data[i+k]) {
						d.pos = i + k
						return 0, false, d.syntaxError("in \\u hexadecimal character escape")
					}
				}
				i += 6
			default:
				d.pos = i + 1
				return 0, false, d.syntaxError("in string escape code")
			}
		case c < 0x20:
			d.pos = i
			return 0, false, d.syntaxError("in string literal")
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				plain = false
			}
			i += size
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hexVal(c byte) rune {
	switch {
	case c <= '9':
		return rune(c - '0')
	case c >= 'a':
		return rune(c - 'a' + 10)
	default:
		return rune(c - 'A' + 10)
	}
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' || !isHex(s[2]) || !isHex(s[3]) || !isHex(s[4]) || !isHex(s[5]) {
		return -1
	}
	return hexVal(s[2])<<12 | hexVal(s[3])<<8 | hexVal(s[4])<<4 | hexVal(s[5])
}

// unquote appends the unescaped contents of a validated string (without its quotes) to b, exactly as
// encoding/json unescapes: invalid UTF-8 and unpaired surrogates become U+FFFD.
func unquote(b, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch s[i+1] {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := getu4(s[i:])
				i += 6
				if utf16.IsSurrogate(r) {
					if dec := utf16.DecodeRune(r, getu4(s[i:])); dec != utf8.RuneError {
						b = utf8.AppendRune(b, dec)
						i += 6
						continue
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default: // '"', '\\', '/'
				b = append(b, s[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return b
}

// stringField decodes a string field: a string, or null (which leaves it unchanged).
func (d *decoder) stringField(dst *string, name string) error {
	switch d.data[d.pos] {
	case '"':
		s, err := d.str()
		if err != nil {
			return err
		}
		*dst = s
		return nil
	case 'n':
		return d.literal("null")
	}
	return d.mismatch(name)
}

// mismatch validates and skips a value of the wrong JSON type for field name, and reports the mismatch.
func (d *decoder) mismatch(name string) error {
	if err := d.skip(0); err != nil {
		return err
	}
	return typeError("value", name)
}

// intField decodes an integer field: an integer literal in range, or null (which leaves it unchanged).
func (d *decoder) intField(dst *int64, name string) error {
	data := d.data
	start := d.pos
	c := data[start]
	if c == 'n' {
		return d.literal("null")
	}
	if c != '-' && (c < '0' || c > '9') {
		return d.mismatch(name)
	}
	// Fast path: validate and convert in one pass over a plain integer.
	i := start
	if c == '-' {
		i++
	}
	j := i
	var u uint64
	for j < len(data) && data[j]-'0' <= 9 {
		u = u*10 + uint64(data[j]-'0')
		j++
	}
	if n := j - i; n > 0 && n <= 19 && (data[i] != '0' || n == 1) &&
		(j == len(data) || data[j] != '.' && data[j] != 'e' && data[j] != 'E') {
		d.pos = j
		switch {
		case c != '-' && u <= 1<<63-1:
			*dst = int64(u)
			return nil
		case c == '-' && u <= 1<<63:
			*dst = -int64(u)
			return nil
		}
		return typeError("number "+string(data[start:j]), name)
	}
	// Everything else: validate as a number, then explain why it does not fit.
	integer, err := d.number()
	if err != nil {
		return err
	}
	if !integer || j-i > 19 {
		return typeError("number "+string(data[start:d.pos]), name)
	}
	*dst = 0 // "0" followed by digits; the caller reports the syntax error
	return nil
}

// number validates a JSON number at d.pos and moves past it; integer reports whether it has neither a
// fraction nor an exponent.
func (d *lexer) number() (integer bool, err error) {
	data := d.data
	i := d.pos
	if data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		d.pos = i
		return false, errUnexpectedEnd
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		for i++; i < len(data) && '0' <= data[i] && data[i] <= '9'; i++ {
		}
	default:
		d.pos = i
		return false, d.syntaxError("in numeric literal")
	}
	integer = true
	if i < len(data) && data[i] == '.' {
		integer = false
		i++
		if i >= len(data) {
			d.pos = i
			return false, errUnexpectedEnd
		}
		if data[i] < '0' || data[i] > '9' {
			d.pos = i
			return false, d.syntaxError("after decimal point in numeric literal")
		}
		for i++; i < len(data) && '0' <= data[i] && data[i] <= '9'; i++ {
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		integer = false
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) {
			d.pos = i
			return false, errUnexpectedEnd
		}
		if data[i] < '0' || data[i] > '9' {
			d.pos = i
			return false, d.syntaxError("in exponent of numeric literal")
		}
		for i++; i < len(data) && '0' <= data[i] && data[i] <= '9'; i++ {
		}
	}
	d.pos = i
	return integer, nil
}

// skip validates and skips one value of any type; depth is the nesting depth of its container.
func (d *lexer) skip(depth int) error {
	d.stack = d.stack[:0]
	for {
		if d.pos >= len(d.data) {
			return errUnexpectedEnd
		}
		// One value.
		switch c := d.data[d.pos]; {
		case c == '{' || c == '[':
			if depth+len(d.stack)+1 > maxDepth {
				return errors.New("exceeded max depth")
			}
			d.pos++
			closer := byte('}')
			if c == '[' {
				closer = ']'
			}
			if d.peek() == closer {
				d.pos++
				break
			}
			d.stack = append(d.stack, closer)
			if closer == '}' {
				if err := d.skipKey(); err != nil {
					return err
				}
			}
			continue
		case c == '"':
			if _, _, err := d.scanString(); err != nil {
				return err
			}
		case c == '-' || '0' <= c && c <= '9':
			if _, err := d.number(); err != nil {
				return err
			}
		case c == 't':
			if err := d.literal("true"); err != nil {
				return err
			}
		case c == 'f':
			if err := d.literal("false"); err != nil {
				return err
			}
		case c == 'n':
			if err := d.literal("null"); err != nil {
				return err
			}
		default:
			return d.syntaxError("looking for beginning of value")
		}
		// After a value: close containers, or move to the next element or member.
		for {
			if len(d.stack) == 0 {
				return nil
			}
			closer := d.stack[len(d.stack)-1]
			switch d.peek() {
			case ',':
				d.pos++
				if closer == '}' {
					if err := d.skipKey(); err != nil {
						return err
					}
				}
				d.ws()
			case closer:
				d.pos++
				d.stack = d.stack[:len(d.stack)-1]
				continue
			default:
				if closer == '}' {
					return d.syntaxError("after object key:value pair")
				}
				return d.syntaxError("after array element")
			}
			break
		}
	}
}

// skipKey skips `"key":` and the space after it.
func (d *lexer) skipKey() error {
	if d.peek() != '"' {
		return d.syntaxError("looking for beginning of object key string")
	}
	if _, _, err := d.scanString(); err != nil {
		return err
	}
	if d.peek() != ':' {
		return d.syntaxError("after object key")
	}
	d.pos++
	d.ws()
	return nil
}

// raw captures one value as it appears in the input, copied into buf.
func (d *decoder) raw(buf *[]byte, depth int) (json.RawMessage, error) {
	start := d.pos
	if err := d.skip(depth); err != nil {
		return nil, err
	}
	*buf = append((*buf)[:0], d.data[start:d.pos]...)
	return *buf, nil
}

// object checks that the next value is an object (or null, reported as false) for field name.
func (d *decoder) object(name string) (bool, error) {
	switch d.data[d.pos] {
	case '{':
		return true, nil
	case 'n':
		return false, d.literal("null")
	}
	return false, d.mismatch(name)
}

func (d *decoder) input() error {
	in := &d.in
	if err := d.open(1); err != nil {
		return err
	}
	for first := true; ; first = false {
		id, done, err := d.next(first)
		if err != nil || done {
			return err
		}
		switch id {
		case fOp:
			err = d.stringField((*string)(&in.Op), "op")
		case fMerchant:
			err = d.merchant(&in.Merchant)
		case fSession:
			err = d.session(&in.Session)
		case fOperation:
			switch d.data[d.pos] {
			case 'n':
				in.Operation = nil
				err = d.literal("null")
			case '{':
				if in.Operation == nil {
					d.op = abi.Operation{}
					in.Operation = &d.op
				}
				err = d.operation(in.Operation)
			default:
				err = d.mismatch("operation")
			}
		case fResponse:
			switch d.data[d.pos] {
			case 'n':
				in.Response = nil
				err = d.literal("null")
			case '{':
				if in.Response == nil {
					d.resp = abi.Response{}
					in.Response = &d.resp
				}
				err = d.response(in.Response)
			default:
				err = d.mismatch("response")
			}
		case fCallback:
			in.Callback, err = d.raw(&d.callback, 1)
		default:
			err = d.skip(1)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) merchant(m *abi.Merchant) error {
	if ok, err := d.object("merchant"); !ok {
		return err
	}
	if err := d.open(2); err != nil {
		return err
	}
	for first := true; ; first = false {
		id, done, err := d.next(first)
		if err != nil || done {
			return err
		}
		switch id {
		case fID:
			err = d.stringField(&m.ID, "merchant.id")
		case fMerchantSerialNumber:
			err = d.stringField(&m.MerchantSerialNumber, "merchant.merchantSerialNumber")
		case fCallbackPrefix:
			err = d.stringField(&m.CallbackPrefix, "merchant.callbackPrefix")
		case fFallBack:
			err = d.stringField(&m.FallBack, "merchant.fallBack")
		case fTransactionTextPrefix:
			err = d.stringField(&m.TransactionTextPrefix, "merchant.transactionTextPrefix")
		case fExpress:
			switch d.data[d.pos] {
			case 'n':
				m.Express = nil
				err = d.literal("null")
			case '{':
				if m.Express == nil {
					d.express = abi.Express{}
					m.Express = &d.express
				}
				err = d.expressObject(m.Express)
			default:
				err = d.mismatch("merchant.express")
			}
		default:
			err = d.skip(2)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) session(s *abi.Session) error {
	if ok, err := d.object("session"); !ok {
		return err
	}
	if err := d.open(2); err != nil {
		return err
	}
	for first := true; ; first = false {
		id, done, err := d.next(first)
		if err != nil || done {
			return err
		}
		switch id {
		case fID:
			err = d.stringField(&s.ID, "session.id")
		case fReference:
			err = d.stringField(&s.Reference, "session.reference")
		case fProviderReference:
			err = d.stringField(&s.ProviderReference, "session.providerReference")
		case fState:
			err = d.stringField(&s.State, "session.state")
		case fAmount:
			err = d.intField(&s.Amount, "session.amount")
		case fCurrency:
			err = d.stringField(&s.Currency, "session.currency")
		case fDescription:
			err = d.stringField(&s.Description, "session.description")
		case fCustomerPhone:
			err = d.stringField(&s.CustomerPhone, "session.customerPhone")
		case fAuthorizedAmount:
			err = d.intField(&s.AuthorizedAmount, "session.authorizedAmount")
		case fCapturedAmount:
			err = d.intField(&s.CapturedAmount, "session.capturedAmount")
		case fRefundedAmount:
			err = d.intField(&s.RefundedAmount, "session.refundedAmount")
		case fCancelledAmount:
			err = d.intField(&s.CancelledAmount, "session.cancelledAmount")
		case fLines:
			err = d.linesField(s)
		case fUserFlow:
			err = d.stringField(&s.UserFlow, "session.userFlow")
		default:
			err = d.skip(2)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) linesField(s *abi.Session) error {
	switch d.data[d.pos] {
	case 'n':
		s.Lines = nil
		return d.literal("null")
	case '[':
	default:
		return d.mismatch("session.lines")
	}
	d.pos++
	if d.lines == nil {
		d.lines = make([]abi.Line, 0, 8)
	}
	lines := d.lines[:0]
	if d.peek() == ']' {
		d.pos++
		s.Lines = lines
		return nil
	}
	for {
		lines = append(lines, abi.Line{})
		l := &lines[len(lines)-1]
		if d.peek() == 0 {
			return errUnexpectedEnd
		}
		switch d.data[d.pos] {
		case 'n':
			if err := d.literal("null"); err != nil {
				return err
			}
		case '{':
			if err := d.line(l); err != nil {
				return err
			}
		default:
			return d.mismatch("session.lines[]")
		}
		switch d.peek() {
		case ',':
			d.pos++
			continue
		case ']':
			d.pos++
			d.lines = lines
			s.Lines = lines
			return nil
		}
		return d.syntaxError("after array element")
	}
}

func (d *decoder) line(l *abi.Line) error {
	if err := d.open(4); err != nil {
		return err
	}
	for first := true; ; first = false {
		id, done, err := d.next(first)
		if err != nil || done {
			return err
		}
		switch id {
		case fSKU:
			err = d.stringField(&l.SKU, "session.lines.sku")
		case fName:
			err = d.stringField(&l.Name, "session.lines.name")
		case fQuantity:
			err = d.intField(&l.Quantity, "session.lines.quantity")
		case fUnitPrice:
			err = d.intField(&l.UnitPrice, "session.lines.unitPrice")
		default:
			err = d.skip(4)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) operation(o *abi.Operation) error {
	if err := d.open(2); err != nil {
		return err
	}
	for first := true; ; first = false {
		id, done, err := d.next(first)
		if err != nil || done {
			return err
		}
		switch id {
		case fAmount:
			err = d.intField(&o.Amount, "operation.amount")
		case fText:
			err = d.stringField(&o.Text, "operation.text")
		default:
			err = d.skip(2)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) response(r *abi.Response) error {
	if err := d.open(2); err != nil {
		return err
	}
	for first := true; ; first = false {
		id, done, err := d.next(first)
		if err != nil || done {
			return err
		}
		switch id {
		case fStatus:
			if d.data[d.pos] == 'n' {
				err = d.literal("null")
				break
			}
			v := int64(r.Status)
			err = d.intField(&v, "response.status")
			r.Status = int(v)
		case fBody:
			r.Body, err = d.raw(&d.body, 2)
		default:
			err = d.skip(2)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) expressObject(e *abi.Express) error {
	if err := d.open(3); err != nil {
		return err
	}
	for first := true; ; first = false {
		id, done, err := d.next(first)
		if err != nil || done {
			return err
		}
		switch id {
		case fShippingDetailsPrefix:
			err = d.stringField(&e.ShippingDetailsPrefix, "merchant.express.shippingDetailsPrefix")
		case fConsentRemovalPrefix:
			err = d.stringField(&e.ConsentRemovalPrefix, "merchant.express.consentRemovalPrefix")
		case fShipping:
			err = d.shipping(&e.Shipping)
		default:
			err = d.skip(3)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) shipping(s *abi.Shipping) error {
	if ok, err := d.object("merchant.express.shipping"); !ok {
		return err
	}
	if err := d.open(4); err != nil {
		return err
	}
	for first := true; ; first = false {
		id, done, err := d.next(first)
		if err != nil || done {
			return err
		}
		switch id {
		case fMode:
			err = d.stringField(&s.Mode, "merchant.express.shipping.mode")
		case fMethods:
			err = objectArray(d, "merchant.express.shipping.methods", &d.methods, &s.Methods, (*decoder).method)
		case fRules:
			err = objectArray(d, "merchant.express.shipping.rules", &d.rules, &s.Rules, (*decoder).rule)
		default:
			err = d.skip(4)
		}
		if err != nil {
			return err
		}
	}
}

// arrayStart enters an array field: it reports false (and sets nothing) for null, and an error for any
// other non-array value.
func (d *decoder) arrayStart(name string) (bool, error) {
	switch d.data[d.pos] {
	case 'n':
		return false, d.literal("null")
	case '[':
		d.pos++
		return true, nil
	}
	return false, d.mismatch(name)
}

// arrayNext moves past the separator after an element (or, for the first, to the first element). It
// reports done at the array's end.
func (d *decoder) arrayNext(first bool) (done bool, err error) {
	c := d.peek()
	switch {
	case c == ']':
		d.pos++
		return true, nil
	case first:
	case c == ',':
		d.pos++
		c = d.peek()
	default:
		return false, d.syntaxError("after array element")
	}
	if c == 0 {
		return false, errUnexpectedEnd
	}
	return false, nil
}

// objectArray decodes an array of objects with elem into the decoder's reused slice *reuse, so that
// steady-state decoding allocates nothing, and stores the result in *dst; null sets *dst to nil. elem is a
// method expression, not a method value, so passing it allocates no closure.
func objectArray[T any](d *decoder, name string, reuse, dst *[]T, elem func(*decoder, *T) error) error {
	if ok, err := d.arrayStart(name); !ok {
		if err == nil {
			*dst = nil
		}
		return err
	}
	if *reuse == nil {
		*reuse = make([]T, 0, 4)
	}
	list := (*reuse)[:0]
	for first := true; ; first = false {
		done, err := d.arrayNext(first)
		if err != nil {
			return err
		}
		if done {
			*reuse = list
			*dst = list
			return nil
		}
		var zero T
		list = append(list, zero)
		if err := elem(d, &list[len(list)-1]); err != nil {
			return err
		}
	}
}

func (d *decoder) method(m *abi.ShippingMethod) error {
	const name = "merchant.express.shipping.methods[]"
	if ok, err := d.object(name); !ok {
		return err
	}
	if err := d.open(6); err != nil {
		return err
	}
	for first := true; ; first = false {
		id, done, err := d.next(first)
		if err != nil || done {
			return err
		}
		switch id {
		case fID:
			err = d.stringField(&m.ID, name+".id")
		case fName:
			err = d.stringField(&m.Name, name+".name")
		case fCost:
			err = d.intField(&m.Cost, name+".cost")
		case fDefault:
			err = d.boolField(&m.Default, name+".default")
		case fPickupPoint:
			err = d.boolField(&m.PickupPoint, name+".pickupPoint")
		case fCountries:
			err = d.stringsField(&m.Countries, name+".countries", name+".countries[]", 6)
		case fPostCodePrefixes:
			err = d.stringsField(&m.PostCodePrefixes, name+".postCodePrefixes", name+".postCodePrefixes[]", 6)
		default:
			err = d.skip(6)
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) rule(r *abi.ShippingRule) error {
	const name = "merchant.express.shipping.rules[]"
	if ok, err := d.object(name); !ok {
		return err
	}
	if err := d.open(6); err != nil {
		return err
	}
	for first := true; ; first = false {
		id, done, err := d.next(first)
		if err != nil || done {
			return err
		}
		switch id {
		case fMethods:
			err = d.stringsField(&r.Methods, name+".methods", name+".methods[]", 6)
		case fCountries:
			err = d.stringsField(&r.Countries, name+".countries", name+".countries[]", 6)
		case fPostCodePrefixes:
			err = d.stringsField(&r.PostCodePrefixes, name+".postCodePrefixes", name+".postCodePrefixes[]", 6)
		case fMinAmount:
			err = d.intField(&r.MinAmount, name+".minAmount")
		case fCost:
			err = d.intField(&r.Cost, name+".cost")
		default:
			err = d.skip(6)
		}
		if err != nil {
			return err
		}
	}
}

// boolField decodes a boolean field: true, false, or null (which leaves it unchanged).
func (d *decoder) boolField(dst *bool, name string) error {
	switch d.data[d.pos] {
	case 't':
		*dst = true
		return d.literal("true")
	case 'f':
		*dst = false
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return d.mismatch(name)
}

// stringsField decodes a []string field (an array of strings or nulls, or null) into the decoder's shared
// string backing; elemName names its elements in errors, and depth is the array's parent's nesting depth.
func (d *decoder) stringsField(dst *[]string, name, elemName string, depth int) error {
	if ok, err := d.arrayStart(name); !ok {
		if err == nil {
			*dst = nil
		}
		return err
	}
	if depth > maxDepth {
		return errors.New("exceeded max depth")
	}
	start := len(d.strs)
	for first := true; ; first = false {
		done, err := d.arrayNext(first)
		if err != nil {
			return err
		}
		if done {
			*dst = d.strs[start:len(d.strs):len(d.strs)]
			return nil
		}
		d.strs = append(d.strs, "")
		if err := d.stringField(&d.strs[len(d.strs)-1], elemName); err != nil {
			return err
		}
	}
}
