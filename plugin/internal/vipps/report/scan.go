package report

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// scanner reads a Report API page without reflection, maps or copies. A page holds up to 1000 entries, and
// encoding/json decoding them field by field costs about 1 ms an entry in a WebAssembly guest with deadline
// checks (measured: BenchmarkReadReportPage), which no per-call deadline allows; this reads them in one
// pass. It assumes nothing about the input: any byte sequence gives a value or an error, never a panic.
type scanner struct {
	b []byte
	i int
}

var errEnd = errors.New("unexpected end of JSON")

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) fail(what string) error {
	if s.i >= len(s.b) {
		return errEnd
	}
	return errors.New("invalid JSON at offset " + strconv.Itoa(s.i) + ": " + what)
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.fail("want " + lit)
	}
	s.i += len(lit)
	return nil
}

// object calls field for each member of an object; field must consume the value.
func (s *scanner) object(field func(key []byte) error) error {
	if s.peek() != '{' {
		return s.fail("want an object")
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.fail("want a key")
		}
		key, err := s.rawString()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return s.fail("want ':'")
		}
		s.i++
		if err := field(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.fail("want ',' or '}'")
		}
	}
}

// member starts the next member of an object whose '{' open consumed: it returns the key, or more false
// after the closing '}'. first is true for the first call on an object. It takes no closure, so reading an
// entry allocates nothing but its strings.
func (s *scanner) member(first bool) (key []byte, more bool, err error) {
	c := s.peek()
	switch {
	case c == '}':
		s.i++
		return nil, false, nil
	case !first && c != ',':
		return nil, false, s.fail("want ',' or '}'")
	case !first:
		s.i++
	}
	if s.peek() != '"' {
		return nil, false, s.fail("want a key")
	}
	if key, err = s.rawString(); err != nil {
		return nil, false, err
	}
	if s.peek() != ':' {
		return nil, false, s.fail("want ':'")
	}
	s.i++
	return key, true, nil
}

// open consumes the opening '{' of an object.
func (s *scanner) open() error {
	if s.peek() != '{' {
		return s.fail("want an object")
	}
	s.i++
	return nil
}

// array calls elem for each element; elem must consume it.
func (s *scanner) array(elem func() error) error {
	if s.peek() != '[' {
		return s.fail("want an array")
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.fail("want ',' or ']'")
		}
	}
}

// rawString returns the bytes of a string as written, between the quotes, escapes undone only if there
// are any (then through encoding/json, which undoes them as the rest of kasse does).
func (s *scanner) rawString() ([]byte, error) {
	if s.peek() != '"' {
		return nil, s.fail("want a string")
	}
	start := s.i
	s.i++
	escaped := false
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			if !escaped {
				return s.b[start+1 : s.i-1], nil
			}
			var out string
			if err := json.Unmarshal(s.b[start:s.i], &out); err != nil {
				return nil, errors.New("invalid string: " + err.Error())
			}
			return []byte(out), nil
		case c == '\\':
			escaped = true
			s.i += 2
		case c < ' ':
			return nil, s.fail("control character in a string")
		default:
			s.i++
		}
	}
	return nil, errEnd
}

// number returns the bytes of a number token.
func (s *scanner) number() []byte {
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			s.i++
		default:
			return s.b[start:s.i]
		}
	}
	return s.b[start:s.i]
}

// text reads a string, or a number as written; null is absent.
func (s *scanner) text() (string, bool, error) {
	switch c := s.peek(); {
	case c == '"':
		b, err := s.rawString()
		if err != nil {
			return "", false, err
		}
		if !utf8.Valid(b) {
			b = []byte(string([]rune(string(b)))) // invalid bytes become U+FFFD, as encoding/json does
		}
		return alias(b), true, nil
	case c == '-' || c >= '0' && c <= '9':
		return alias(s.number()), true, nil
	case c == 'n':
		return "", false, s.literal("null")
	}
	return "", false, errors.New("want a string")
}

// textBytes is text without the string conversion: the bytes are valid until the scanner moves on.
func (s *scanner) textBytes() ([]byte, error) {
	switch c := s.peek(); {
	case c == '"':
		b, err := s.rawString()
		if err == nil && !utf8.Valid(b) {
			b = []byte(string([]rune(string(b))))
		}
		return b, err
	case c == '-' || c >= '0' && c <= '9':
		return s.number(), nil
	case c == 'n':
		return nil, s.literal("null")
	}
	return nil, errors.New("want a string")
}

// money reads an amount in minor units: a whole number (10000 or 10000.0) or a string holding one.
func (s *scanner) money() (int64, bool, error) {
	var raw string
	switch c := s.peek(); {
	case c == '"':
		b, err := s.rawString()
		if err != nil {
			return 0, false, err
		}
		raw = string(b)
	case c == '-' || c >= '0' && c <= '9':
		raw = string(s.number())
	case c == 'n':
		return 0, false, s.literal("null")
	default:
		return 0, false, errors.New("want a number")
	}
	if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
		return n, true, nil
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false, errors.New(strconv.Quote(clipText(raw, 30)) + " is not a whole amount in minor units")
	}
	return int64(f), true, nil
}

// flag reads a boolean; null is false.
func (s *scanner) flag() (bool, error) {
	switch s.peek() {
	case 't':
		return true, s.literal("true")
	case 'f':
		return false, s.literal("false")
	case 'n':
		return false, s.literal("null")
	}
	return false, errors.New("want a boolean")
}

// skip consumes any value.
func (s *scanner) skip() error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(func([]byte) error { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == '"':
		_, err := s.rawString()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		s.number()
		return nil
	}
	return s.fail("want a value")
}

// alias returns b as a string without copying it. The strings of a page alias the provider's answer,
// which the SDK keeps unchanged until the output is encoded (everything reachable from the input is valid
// until the handler returns, and the output until it is encoded): copying them cost a third of the time
// of a 1000-entry page in the guest.
func alias(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
