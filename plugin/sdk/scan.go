package sdk

import (
	"errors"
	"unicode/utf8"
	"unsafe"
)

// Scanner reads a JSON document (a provider's answer or callback) value by value, without reflection and
// without allocating for strings that have no escapes: a handler reads into its own types with it instead
// of encoding/json, whose reflection-driven decoding costs about 100 µs for a 1-2 KB body in a WebAssembly
// guest with deadline checks (the plugins' BenchmarkPluginBoundary).
//
// It accepts exactly the JSON that encoding/json accepts (numbers, escapes, nesting limit), and a string
// decodes to what encoding/json decodes it to (invalid UTF-8 and unpaired surrogates become U+FFFD).
// Strings without escapes alias the document, so they are valid as long as it is (for an abi.Input's
// Callback and Response.Body: until the handler returns).
//
// [Scanner.Fields] reads an object's members by name and refuses, with [ErrUnlike], what encoding/json
// would read differently from a plain name match (a repeated member, a key equal to a name but for
// case): a handler that must read exactly what encoding/json reads can then fall back to it.
type Scanner struct {
	d     lexer
	depth int
}

// ErrUnlike reports a document that encoding/json would decode differently from [Scanner.Fields] (a
// member that repeats, or whose key matches a field only ignoring case). Decode it with encoding/json.
var ErrUnlike = errors.New("sdk: member needs encoding/json's matching")

// Reset starts reading data.
func (s *Scanner) Reset(data []byte) {
	s.d.data, s.d.pos, s.depth = data, 0, 0
}

// Peek returns the first byte of the next value ('{', '[', '"', a digit or '-', 't', 'f', 'n'), or 0 at
// the end of the document.
func (s *Scanner) Peek() byte { return s.d.peek() }

// End checks that only white space remains.
func (s *Scanner) End() error {
	s.d.ws()
	if s.d.pos != len(s.d.data) {
		return s.d.syntaxError("after top-level value")
	}
	return nil
}

// String reads a string value.
func (s *Scanner) String() (string, error) {
	if s.d.peek() != '"' {
		return "", s.d.syntaxError("looking for a string")
	}
	start := s.d.pos + 1
	end, plain, err := s.d.scanString()
	switch {
	case err != nil:
		return "", err
	case start == end:
		return "", nil
	case plain:
		return unsafe.String(&s.d.data[start], end-start), nil
	}
	// One allocation, sized for the usual case: unescaping shrinks a string unless it holds invalid UTF-8
	// (a byte becomes U+FFFD), and the buffer, referenced by nothing else, becomes the string as it is.
	raw := s.d.data[start:end]
	b := unquote(make([]byte, 0, len(raw)), raw)
	return unsafe.String(unsafe.SliceData(b), len(b)), nil
}

// Number reads a number value and returns it as written.
func (s *Scanner) Number() ([]byte, error) {
	c := s.d.peek()
	if c != '-' && (c < '0' || c > '9') {
		return nil, s.d.syntaxError("looking for a number")
	}
	start := s.d.pos
	if _, err := s.d.number(); err != nil {
		return nil, err
	}
	return s.d.data[start:s.d.pos], nil
}

// NumberString reads a number value and returns it as written, as a string that aliases the document as
// String's do (no allocation).
func (s *Scanner) NumberString() (string, error) {
	n, err := s.Number()
	if err != nil || len(n) == 0 {
		return "", err
	}
	return unsafe.String(&n[0], len(n)), nil
}

// Bool reads true or false.
func (s *Scanner) Bool() (bool, error) {
	switch s.d.peek() {
	case 't':
		return true, s.d.literal("true")
	case 'f':
		return false, s.d.literal("false")
	}
	return false, s.d.syntaxError("looking for a boolean")
}

// Null reads a null if one comes next, and reports whether it did.
func (s *Scanner) Null() (bool, error) {
	if s.d.peek() != 'n' {
		return false, nil
	}
	return true, s.d.literal("null")
}

// Skip reads and discards the next value, whatever it is.
func (s *Scanner) Skip() error {
	if s.d.peek() == 0 {
		return errUnexpectedEnd
	}
	return s.d.skip(s.depth)
}

// Raw reads the next value and returns it as it appears in the document.
func (s *Scanner) Raw() ([]byte, error) {
	if s.d.peek() == 0 {
		return nil, errUnexpectedEnd
	}
	start := s.d.pos
	if err := s.d.skip(s.depth); err != nil {
		return nil, err
	}
	return s.d.data[start:s.d.pos], nil
}

// Fields reads an object. For each member whose key is one of names (exactly), it calls field with the
// name's index, and field must read the value; other members are skipped. A repeated member, or a key that
// equals a name only ignoring case (or has non-ASCII bytes, which encoding/json may fold), is ErrUnlike.
// At most 64 names.
func (s *Scanner) Fields(names []string, field func(i int) error) error {
	return s.fields(names, field, false)
}

// FieldsOnly is Fields for an object that may have no other members: a member whose key is not one of
// names is ErrUnlike too. A reader that applies a closed schema can then leave such objects to a slower
// reader that explains the refusal.
func (s *Scanner) FieldsOnly(names []string, field func(i int) error) error {
	return s.fields(names, field, true)
}

func (s *Scanner) fields(names []string, field func(i int) error, only bool) error {
	if s.d.peek() != '{' {
		return s.d.syntaxError("looking for an object")
	}
	s.depth++
	if s.depth > maxDepth {
		return errors.New("exceeded max depth")
	}
	s.d.pos++
	var seen uint64
	for first := true; ; first = false {
		c := s.d.peek()
		switch {
		case c == '}':
			s.d.pos++
			s.depth--
			return nil
		case !first && c != ',':
			return s.d.syntaxError("after object key:value pair")
		case !first:
			s.d.pos++
		}
		if s.d.peek() != '"' {
			return s.d.syntaxError("looking for beginning of object key string")
		}
		start := s.d.pos + 1
		end, plain, err := s.d.scanString()
		if err != nil {
			return err
		}
		key := s.d.data[start:end]
		if !plain {
			key = unquote(nil, key)
		}
		if s.d.peek() != ':' {
			return s.d.syntaxError("after object key")
		}
		s.d.pos++
		i := fieldIndex(names, key)
		switch {
		case i >= 0 && seen&(1<<i) != 0:
			return ErrUnlike
		case i >= 0:
			seen |= 1 << i
			if err := field(i); err != nil {
				return err
			}
		case only || foldsToName(names, key):
			return ErrUnlike
		default:
			if err := s.Skip(); err != nil {
				return err
			}
		}
	}
}

// Elements reads an array, calling elem for each element; elem must read the element.
func (s *Scanner) Elements(elem func() error) error {
	if s.d.peek() != '[' {
		return s.d.syntaxError("looking for an array")
	}
	s.depth++
	if s.depth > maxDepth {
		return errors.New("exceeded max depth")
	}
	s.d.pos++
	for first := true; ; first = false {
		c := s.d.peek()
		switch {
		case c == ']':
			s.d.pos++
			s.depth--
			return nil
		case !first && c != ',':
			return s.d.syntaxError("after array element")
		case !first:
			s.d.pos++
		}
		if err := elem(); err != nil {
			return err
		}
	}
}

func fieldIndex(names []string, key []byte) int {
	for i, n := range names {
		if string(key) == n {
			return i
		}
	}
	return -1
}

// foldsToName reports whether encoding/json might match key to one of names ignoring case: it folds
// ASCII case, and a few non-ASCII letters (the Kelvin sign, the long s) to ASCII ones.
func foldsToName(names []string, key []byte) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	for _, n := range names {
		if asciiFold(key, n) {
			return true
		}
	}
	return false
}

func asciiFold(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := range key {
		if key[i]|0x20 != name[i]|0x20 {
			return false
		}
	}
	return true
}

// StringInto reads a string member as encoding/json decodes it into a string field: a string, or null,
// which leaves dst as it is. Anything else is ErrUnlike.
func (s *Scanner) StringInto(dst *string) error {
	switch s.Peek() {
	case '"':
		v, err := s.String()
		*dst = v
		return err
	case 'n':
		_, err := s.Null()
		return err
	}
	return ErrUnlike
}

// BoolInto reads a bool member as encoding/json decodes it into a bool field: true, false, or null, which
// leaves dst as it is. Anything else is ErrUnlike.
func (s *Scanner) BoolInto(dst *bool) error {
	switch s.Peek() {
	case 't', 'f':
		v, err := s.Bool()
		*dst = v
		return err
	case 'n':
		_, err := s.Null()
		return err
	}
	return ErrUnlike
}

// ObjectInto reads a member into a pointer-to-struct field as encoding/json does: an object into a new
// value read by read, or null, which sets dst to nil. Anything else is ErrUnlike.
func ObjectInto[T any](s *Scanner, dst **T, read func(*Scanner, *T) error) error {
	switch s.Peek() {
	case '{':
		*dst = new(T)
		return read(s, *dst)
	case 'n':
		*dst = nil
		_, err := s.Null()
		return err
	}
	return ErrUnlike
}

// ObjectIn is ObjectInto reading an object into mem instead of a new value: a reader that fills several
// pointer fields can allocate their values together (an allocation costs about a microsecond in a
// WebAssembly guest, and lets the guest's garbage collector assist within the call).
func ObjectIn[T any](s *Scanner, dst **T, mem *T, read func(*Scanner, *T) error) error {
	switch s.Peek() {
	case '{':
		*dst = mem
		return read(s, mem)
	case 'n':
		*dst = nil
		_, err := s.Null()
		return err
	}
	return ErrUnlike
}

// ReadObject reads body, one JSON object, into v with read, and hands it to general (from v's zero
// value) when read is nil, gives up, or leaves anything after the object. A plugin's fast reader covers
// the bodies it expects; general (encoding/json) decides everything else, so every outcome, message
// included, is the general reader's.
func ReadObject[T any](body []byte, v *T, read func(*Scanner, *T) error, general func(body []byte, v *T) error) error {
	if read != nil {
		var s Scanner
		s.Reset(body)
		if s.Peek() == '{' {
			if err := read(&s, v); err == nil && s.End() == nil {
				return nil
			}
		}
	}
	var zero T
	*v = zero
	return general(body, v)
}
